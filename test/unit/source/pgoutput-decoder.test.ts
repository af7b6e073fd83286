import { describe, expect, it } from 'vitest';
import { dateToPgMicros, PgoutputDecoder, pgMicrosToDate } from '../../../src/source/postgres/pgoutput-decoder.js';
import { Bytes, decodeError, relation, TS_DATE, TS_MICROS, tuple } from './pgoutput-fixtures.js';

const ITEMS = relation(16384, 'public', 'items', 'd', [{ name: 'id', key: true, oid: 23 }, { name: 'name' }, { name: 'body' }]);

function decoderWithItems(): PgoutputDecoder {
  const d = new PgoutputDecoder();
  expect(d.decode(ITEMS)).toBeUndefined();
  return d;
}

describe('PgoutputDecoder', () => {
  it('decodes Begin', () => {
    const msg = new Bytes().char('B').int64(0x16_b374d848n).int64(TS_MICROS).int32(0xfffffff0).build();
    expect(new PgoutputDecoder().decode(msg)).toEqual({ type: 'begin', finalLsn: 0x16_b374d848n, commitTime: TS_DATE, xid: 0xfffffff0 });
  });

  it('decodes Commit', () => {
    const msg = new Bytes().char('C').int8(0).int64(0x100n).int64(0x130n).int64(TS_MICROS).build();
    expect(new PgoutputDecoder().decode(msg)).toEqual({ type: 'commit', commitLsn: 0x100n, endLsn: 0x130n, commitTime: TS_DATE });
  });

  it('consumes Origin and Type without output', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(new Bytes().char('O').int64(0x55n).string('node_a').build())).toBeUndefined();
    expect(d.decode(new Bytes().char('Y').int32(90001).string('public').string('mood').build())).toBeUndefined();
  });

  it('caches Relation, mapping the empty namespace to pg_catalog, and replaces it when re-sent', () => {
    const d = decoderWithItems();
    expect(d.relation(16384)).toEqual({
      id: 16384,
      schema: 'public',
      table: 'items',
      replicaIdentity: 'd',
      columns: [
        { name: 'id', isKey: true, typeOid: 23, typeMod: -1 },
        { name: 'name', isKey: false, typeOid: 25, typeMod: -1 },
        { name: 'body', isKey: false, typeOid: 25, typeMod: -1 },
      ],
      decode: new Uint8Array([1, 1, 1]),
      compare: new Uint8Array([0, 0, 0]),
      selective: false,
    });
    d.decode(relation(16384, '', 'items2', 'f', [{ name: 'x' }]));
    expect(d.relation(16384)).toMatchObject({ schema: 'pg_catalog', table: 'items2', replicaIdentity: 'f' });
  });

  it('decodes Insert with text, null and multi-byte values', () => {
    const d = decoderWithItems();
    const msg = tuple(new Bytes().char('I').int32(16384).char('N'), ['1', 'Zoë ✓', null]).build();
    expect(d.decode(msg)).toEqual({
      type: 'change',
      change: { kind: 'insert', schema: 'public', table: 'items', new: { id: '1', name: 'Zoë ✓', body: null }, oldIsKeyOnly: false },
    });
  });

  it('decodes Update without an old tuple, an unchanged TOAST value becoming undefined', () => {
    const d = decoderWithItems();
    const change = d.decode(tuple(new Bytes().char('U').int32(16384).char('N'), ['1', 'b', 'UNCHANGED']).build());
    expect(change).toEqual({ type: 'change', change: { kind: 'update', schema: 'public', table: 'items', new: { id: '1', name: 'b', body: undefined }, oldIsKeyOnly: false } });
    if (change?.type !== 'change' || change.change.kind === 'truncate') throw new Error('row change expected');
    expect('old' in change.change).toBe(false);
    expect(Object.keys(change.change.new ?? {})).toEqual(['id', 'name', 'body']);
    expect(change.change.new?.['body']).toBeUndefined();
  });

  it("decodes Update with a 'K' old tuple (key columns only)", () => {
    const d = decoderWithItems();
    const b = tuple(new Bytes().char('U').int32(16384).char('K'), ['1', null, null]);
    const change = d.decode(tuple(b.char('N'), ['2', 'a', null]).build());
    expect(change).toEqual({
      type: 'change',
      change: { kind: 'update', schema: 'public', table: 'items', old: { id: '1' }, new: { id: '2', name: 'a', body: null }, oldIsKeyOnly: true },
    });
  });

  it("decodes Update with an 'O' old tuple (REPLICA IDENTITY FULL)", () => {
    const d = decoderWithItems();
    const b = tuple(new Bytes().char('U').int32(16384).char('O'), ['1', 'old', null]);
    expect(d.decode(tuple(b.char('N'), ['1', 'new', 'UNCHANGED']).build())).toEqual({
      type: 'change',
      change: { kind: 'update', schema: 'public', table: 'items', old: { id: '1', name: 'old', body: null }, new: { id: '1', name: 'new', body: undefined }, oldIsKeyOnly: false },
    });
  });

  it("decodes Delete with 'K' and with 'O'", () => {
    const d = decoderWithItems();
    expect(d.decode(tuple(new Bytes().char('D').int32(16384).char('K'), ['7', null, null]).build())).toEqual({
      type: 'change',
      change: { kind: 'delete', schema: 'public', table: 'items', old: { id: '7' }, oldIsKeyOnly: true },
    });
    expect(d.decode(tuple(new Bytes().char('D').int32(16384).char('O'), ['7', 'x', null]).build())).toEqual({
      type: 'change',
      change: { kind: 'delete', schema: 'public', table: 'items', old: { id: '7', name: 'x', body: null }, oldIsKeyOnly: false },
    });
  });

  it('decodes only the identifying columns of a selection and compares the compared ones without decoding them', () => {
    const selection = new Map([['public.items', { identifying: new Set(['id']), compared: new Set(['id', 'name']) }]]);
    const d = new PgoutputDecoder(selection);
    d.decode(ITEMS);
    d.decode(relation(16390, 'shop', 'orders', 'd', [{ name: 'id', key: true }, { name: 'note' }]));
    const changeOf = (msg: Buffer) => {
      const decoded = d.decode(msg);
      if (decoded?.type !== 'change' || decoded.change.kind === 'truncate') throw new Error('row change expected');
      return decoded.change;
    };
    const update = (old: (string | null)[], values: (string | null)[]) => changeOf(tuple(tuple(new Bytes().char('U').int32(16384).char('O'), old).char('N'), values).build());
    const insert = changeOf(tuple(new Bytes().char('I').int32(16384).char('N'), ['1', 'Zoë', 'long text']).build());
    expect(insert.new).toEqual({ id: '1' });
    expect(Object.keys(insert.new ?? {})).toEqual(['id']);
    expect('comparedChanged' in insert).toBe(false);
    const noOld = changeOf(tuple(new Bytes().char('U').int32(16384).char('N'), ['1', 'b', 'c']).build());
    expect(noOld.new).toEqual({ id: '1' });
    expect('comparedChanged' in noOld).toBe(false);
    // Only `body`, which no document uses, changed.
    const unused = update(['1', 'Zoë', 'x'], ['1', 'Zoë', 'y']);
    expect(unused).toMatchObject({ old: { id: '1' }, new: { id: '1' }, comparedChanged: false });
    expect(Object.keys(unused.old ?? {})).toEqual(['id']);
    expect(update(['1', 'Zoë', 'x'], ['1', 'Zoe', 'x']).comparedChanged).toBe(true);
    expect(update(['1', 'abc', 'x'], ['1', 'abcd', 'x']).comparedChanged).toBe(true);
    expect(update(['1', null, 'x'], ['1', '', 'x']).comparedChanged).toBe(true);
    expect(update(['1', 'a', 'x'], ['1', null, 'x']).comparedChanged).toBe(true);
    expect(update(['1', null, 'x'], ['1', null, 'y']).comparedChanged).toBe(false);
    expect(update(['1', 'a', 'x'], ['2', 'a', 'x'])).toMatchObject({ old: { id: '1' }, new: { id: '2' }, comparedChanged: true });
    // An unchanged TOASTed value is no change.
    expect(update(['1', 'long', 'x'], ['1', 'UNCHANGED', 'x']).comparedChanged).toBe(false);
    const keyOnly = changeOf(tuple(tuple(new Bytes().char('U').int32(16384).char('K'), ['1', null, null]).char('N'), ['2', 'a', null]).build());
    expect(keyOnly).toMatchObject({ old: { id: '1' }, new: { id: '2' }, oldIsKeyOnly: true });
    expect('comparedChanged' in keyOnly).toBe(false);
    const deleted = changeOf(tuple(new Bytes().char('D').int32(16384).char('O'), ['7', 'x', null]).build());
    expect(deleted.old).toEqual({ id: '7' });
    // A table the selection does not list keeps every column.
    expect(changeOf(tuple(new Bytes().char('I').int32(16390).char('N'), ['3', 'n']).build()).new).toEqual({ id: '3', note: 'n' });
  });

  it('decodes Truncate with its flags', () => {
    const d = decoderWithItems();
    d.decode(relation(16390, 'shop', 'orders', 'd', [{ name: 'id', key: true }]));
    const msg = (flags: number): Buffer => new Bytes().char('T').int32(2).int8(flags).int32(16384).int32(16390).build();
    const relations = [{ schema: 'public', table: 'items' }, { schema: 'shop', table: 'orders' }];
    expect(d.decode(msg(0))).toEqual({ type: 'change', change: { kind: 'truncate', relations, cascade: false, restartIdentity: false } });
    expect(d.decode(msg(1))).toEqual({ type: 'change', change: { kind: 'truncate', relations, cascade: true, restartIdentity: false } });
    expect(d.decode(msg(3))).toEqual({ type: 'change', change: { kind: 'truncate', relations, cascade: true, restartIdentity: true } });
  });

  it('decodes a logical decoding Message, transactional or not, copying its content', () => {
    const content = Buffer.from([0x78, 0x00, 0xff]);
    const input = new Bytes().char('M').int8(1).int64(0x1234n).string('sluice').int32(3).raw(content).build();
    const decoded = new PgoutputDecoder().decode(input);
    expect(decoded).toEqual({ type: 'message', lsn: 0x1234n, transactional: true, prefix: 'sluice', content });
    input.fill(0);
    expect(decoded?.type === 'message' && [...decoded.content]).toEqual([0x78, 0x00, 0xff]);
    const plain = new Bytes().char('M').int8(0).int64(0x1n).string('p').int32(0).build();
    expect(new PgoutputDecoder().decode(plain)).toMatchObject({ type: 'message', transactional: false, prefix: 'p', content: Buffer.alloc(0) });
  });

  it('rejects an unknown relation id with a clear error', () => {
    const error = decodeError(new PgoutputDecoder(), tuple(new Bytes().char('I').int32(4242).char('N'), ['1']).build());
    expect(error.code).toBe('SRC_PROTOCOL');
    expect(error.message).toMatch(/relation id 4242 before describing it/);
    const truncate = decodeError(new PgoutputDecoder(), new Bytes().char('T').int32(1).int8(0).int32(4243).build());
    expect(truncate.message).toMatch(/relation id 4243/);
  });

  it('rejects binary values, unknown messages, column-count mismatches and truncated input', () => {
    const d = decoderWithItems();
    const binary = new Bytes().char('I').int32(16384).char('N').int16(3).char('b').int32(1).raw(Buffer.from([1])).char('n').char('n').build();
    expect(decodeError(d, binary).message).toMatch(/binary value for public\.items\.id/);
    expect(decodeError(d, new Bytes().char('Z').int32(1).build()).message).toMatch(/unsupported pgoutput message type 'Z'/);
    expect(decodeError(d, tuple(new Bytes().char('I').int32(16384).char('N'), ['1']).build()).message).toMatch(/has 1 columns, its Relation message 3/);
    expect(decodeError(d, new Bytes().char('B').int32(1).build())).toMatchObject({ code: 'SRC_PROTOCOL', message: expect.stringMatching(/malformed pgoutput message 'B'/) });
    expect(decodeError(d, new Bytes().char('R').int32(1).raw(Buffer.from('abc')).build()).message).toMatch(/unterminated string/);
    expect(decodeError(d, Buffer.alloc(0)).code).toBe('SRC_PROTOCOL');
  });

  it('converts PostgreSQL timestamps both ways', () => {
    expect(pgMicrosToDate(0n).toISOString()).toBe('2000-01-01T00:00:00.000Z');
    expect(dateToPgMicros(new Date('2000-01-01T00:00:01Z'))).toBe(1_000_000n);
    expect(pgMicrosToDate(-1_000_000n).toISOString()).toBe('1999-12-31T23:59:59.000Z');
  });
});
