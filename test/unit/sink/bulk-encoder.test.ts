import { describe, expect, it } from 'vitest';
import { encodeAction, encodeBody } from '../../../src/sink/elasticsearch/bulk-encoder.js';

describe('encodeAction', () => {
  it('encodes an index action with the source appended as is', () => {
    const source = '{"b": 1,  "a":[true,null]}';
    const e = encodeAction({ op: 'index', index: 'books', id: '7', source });
    expect(e.text).toBe(`{"index":{"_index":"books","_id":"7"}}\n${source}\n`);
    expect(e.bytes).toBe(Buffer.byteLength(e.text));
  });

  it('adds routing, pipeline and an external version as an integer literal', () => {
    const e = encodeAction({
      op: 'index',
      index: 'books',
      id: '1',
      source: '{}',
      routing: 'r1',
      pipeline: 'p',
      version: 12345678901234567890n,
    });
    expect(e.text).toBe(
      '{"index":{"_index":"books","_id":"1","routing":"r1","pipeline":"p","version":12345678901234567890,"version_type":"external_gte"}}\n{}\n',
    );
  });

  it('encodes a delete without a source line and without pipeline', () => {
    const e = encodeAction({ op: 'delete', index: 'books', id: '9', routing: 'x', version: 5n });
    expect(e.text).toBe('{"delete":{"_index":"books","_id":"9","routing":"x","version":5,"version_type":"external_gte"}}\n');
  });

  it('JSON-escapes ids with quotes, backslashes, control characters and unicode', () => {
    const id = 'a"b\\c\n\u0001é漢😀';
    const e = encodeAction({ op: 'delete', index: 'i', id });
    const parsed = JSON.parse(e.text.trimEnd()) as { delete: { _id: string } };
    expect(parsed.delete._id).toBe(id);
    expect(e.text.split('\n')).toHaveLength(2);
    expect(e.bytes).toBe(Buffer.from(e.text, 'utf8').length);
    expect(e.bytes).toBeGreaterThan(e.text.length);
  });

  it('keeps a source on one line when PostgreSQL json carries line feeds between tokens', () => {
    const e = encodeAction({ op: 'index', index: 'i', id: '1', source: '{\n  "a": "x\\ny"\n}' });
    expect(e.text).toBe('{"index":{"_index":"i","_id":"1"}}\n{   "a": "x\\ny" }\n');
    expect(JSON.parse(e.text.split('\n')[1]!)).toEqual({ a: 'x\ny' });
  });

  it('joins encoded actions into a body', () => {
    const a = encodeAction({ op: 'index', index: 'i', id: '1', source: '{"x":1}' });
    const b = encodeAction({ op: 'delete', index: 'i', id: '2' });
    expect(encodeBody([a, b])).toBe(a.text + b.text);
  });
});
