import { describe, expect, it } from 'vitest';
import { encodeAction, encodeBody, type EncodedAction } from '../../../src/sink/elasticsearch/bulk-encoder.js';

/** The NDJSON lines of one encoded action, as sent. */
const textOf = (e: EncodedAction): string => encodeBody([e]).toString('utf8');

describe('encodeAction', () => {
  it('encodes an index action with the source appended as is', () => {
    const source = '{"b": 1,  "a":[true,null]}';
    const e = encodeAction({ op: 'index', index: 'books', id: '7', source });
    expect(textOf(e)).toBe(`{"index":{"_index":"books","_id":"7"}}\n${source}\n`);
    expect(e.bytes).toBe(Buffer.byteLength(textOf(e)));
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
    expect(textOf(e)).toBe(
      '{"index":{"_index":"books","_id":"1","routing":"r1","pipeline":"p","version":12345678901234567890,"version_type":"external_gte"}}\n{}\n',
    );
  });

  it('encodes a delete without a source line and without pipeline', () => {
    const e = encodeAction({ op: 'delete', index: 'books', id: '9', routing: 'x', version: 5n });
    expect(textOf(e)).toBe('{"delete":{"_index":"books","_id":"9","routing":"x","version":5,"version_type":"external_gte"}}\n');
  });

  it('JSON-escapes ids with quotes, backslashes, control characters and unicode', () => {
    const id = 'a"b\\c\n\u0001é漢😀';
    const e = encodeAction({ op: 'delete', index: 'i', id });
    const parsed = JSON.parse(textOf(e).trimEnd()) as { delete: { _id: string } };
    expect(parsed.delete._id).toBe(id);
    expect(textOf(e).split('\n')).toHaveLength(2);
    expect(e.bytes).toBe(Buffer.from(textOf(e), 'utf8').length);
    expect(e.bytes).toBeGreaterThan(textOf(e).length);
  });

  it('keeps a source on one line when PostgreSQL json carries line feeds between tokens', () => {
    const e = encodeAction({ op: 'index', index: 'i', id: '1', source: '{\n  "a": "x\\ny"\n}' });
    expect(textOf(e)).toBe('{"index":{"_index":"i","_id":"1"}}\n{   "a": "x\\ny" }\n');
    expect(JSON.parse(textOf(e).split('\n')[1]!)).toEqual({ a: 'x\ny' });
  });

  it('joins encoded actions into a body', () => {
    const a = encodeAction({ op: 'index', index: 'i', id: '1', source: '{"x":1}' });
    const b = encodeAction({ op: 'delete', index: 'i', id: '2' });
    expect(encodeBody([a, b]).toString('utf8')).toBe(textOf(a) + textOf(b));
  });

  it('sizes the body exactly for multi-byte ids and sources and for lone surrogates', () => {
    const a = encodeAction({ op: 'index', index: 'ïndex', id: 'é漢😀', source: '{"t":"漢😀\u00e9","raw":"\ud800"}', version: 7n });
    const b = encodeAction({ op: 'index', index: 'i', id: 'x\ud800', source: '{"s":"\udc00"}' });
    const body = encodeBody([a, b]);
    expect(body.length).toBe(a.bytes + b.bytes);
    expect(body.toString('utf8')).toBe(textOf(a) + textOf(b));
    expect(JSON.parse(body.toString('utf8').split('\n')[1]!)).toEqual({ t: '漢😀é', raw: '\ufffd' });
  });
});
