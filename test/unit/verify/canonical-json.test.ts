import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalNumber, contentHash, parseExactJson } from '../../../src/verify/canonical-json.js';

const canon = (text: string) => canonicalJson(parseExactJson(text));

describe('canonical JSON for document comparison', () => {
  it('sorts keys at every level and drops insignificant whitespace', () => {
    expect(canon('{"b" : 1, "a" : {"d" : [3, {"z":1,"y":2}], "c" : null}}')).toBe('{"a":{"c":null,"d":[3,{"y":2,"z":1}]},"b":1}');
    expect(contentHash(parseExactJson('{"a":1,"b":"x"}'))).toBe(contentHash(parseExactJson('{ "b" : "x", "a" : 1 }')));
  });

  it('spells equal numbers alike and keeps every digit of large ones', () => {
    expect(['899.00', '899', '8.99e2', '89900E-2', '899.0e0'].map(canonicalNumber)).toEqual(Array(5).fill('899'));
    expect(['0', '-0', '0.000', '0e10'].map(canonicalNumber)).toEqual(['0', '0', '0', '0']);
    expect(canonicalNumber('1200')).toBe('12e2');
    expect(canonicalNumber('-0.0015')).toBe('-15e-4');
    expect(canonicalNumber('1e400')).toBe('1e400');
    expect(canon('[9007199254740993]')).not.toBe(canon('[9007199254740992]'));
    expect(canon('[4.5]')).not.toBe(canon('[4.50001]'));
  });

  it('normalises string escapes and keeps arrays in order', () => {
    expect(canon('["caf\\u00e9", "a\\/b"]')).toBe('["café","a/b"]');
    expect(canon('[2,1]')).not.toBe(canon('[1,2]'));
    expect(canon('{"__proto__": 1}')).toBe('{"__proto__":1}');
  });

  it('rejects text that is not JSON', () => {
    for (const bad of ['{"a":1', '[1,]', '01', '{"a" 1}', 'nul', '"x', '[1] 2', '']) expect(() => parseExactJson(bad), bad).toThrow(SyntaxError);
  });
});
