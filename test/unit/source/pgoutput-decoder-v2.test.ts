// pgoutput protocol version 2 (streaming of in-progress transactions), byte layouts from PostgreSQL's "Logical
// Replication Message Formats" (PostgreSQL 15): inside a Stream Start … Stream Stop block every message carries the
// xid of its (sub)transaction right after its tag.
import { describe, expect, it } from 'vitest';
import { PgoutputDecoder } from '../../../src/source/postgres/pgoutput-decoder.js';
import { Bytes, decodeError, relation, TS_DATE, TS_MICROS, tuple } from './pgoutput-fixtures.js';

const TOP = 0x0102_0304;
const SUB = 0xfffffffe;

function streamStart(xid: number, first: boolean): Buffer {
  return new Bytes().char('S').int32(xid).int8(first ? 1 : 0).build();
}
const STREAM_STOP = new Bytes().char('E').build();

/** Relation with the xid field of a streamed block. */
function streamedRelation(xid: number): Buffer {
  const plain = relation(16384, 'public', 'items', 'd', [{ name: 'id', key: true, oid: 23 }, { name: 'name' }]);
  return new Bytes().char('R').int32(xid).raw(plain.subarray(1)).build();
}

describe('PgoutputDecoder, protocol version 2', () => {
  it('decodes Stream Start (xid, first-segment flag, the XLogData start as its LSN) and Stream Stop', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(streamStart(TOP, true), 0x16_0000_0100n)).toEqual({ type: 'stream-start', xid: TOP, firstSegment: true, lsn: 0x16_0000_0100n });
    expect(d.decode(STREAM_STOP)).toEqual({ type: 'stream-stop' });
    expect(d.decode(streamStart(TOP, false), 0x200n)).toEqual({ type: 'stream-start', xid: TOP, firstSegment: false, lsn: 0x200n });
  });

  it('decodes Stream Commit: xid, flags, commit LSN, end LSN, commit time', () => {
    const msg = new Bytes().char('c').int32(TOP).int8(0).int64(0x1_0000_0100n).int64(0x1_0000_0130n).int64(TS_MICROS).build();
    expect(msg).toHaveLength(1 + 4 + 1 + 8 + 8 + 8);
    expect(new PgoutputDecoder().decode(msg)).toEqual({ type: 'stream-commit', xid: TOP, commitLsn: 0x1_0000_0100n, endLsn: 0x1_0000_0130n, commitTime: TS_DATE });
  });

  it('decodes Stream Abort of a transaction and of a subtransaction', () => {
    const d = new PgoutputDecoder();
    expect(d.decode(new Bytes().char('A').int32(TOP).int32(TOP).build())).toEqual({ type: 'stream-abort', xid: TOP, subxid: TOP });
    expect(d.decode(new Bytes().char('A').int32(TOP).int32(SUB).build())).toEqual({ type: 'stream-abort', xid: TOP, subxid: SUB });
  });

  it('reads the xid of Relation, Type, Insert, Update, Delete, Truncate and Message inside a streamed block', () => {
    const d = new PgoutputDecoder();
    d.decode(streamStart(TOP, true));
    expect(d.decode(streamedRelation(TOP))).toBeUndefined();
    expect(d.relation(16384)).toMatchObject({ schema: 'public', table: 'items', columns: [{ name: 'id', isKey: true, typeOid: 23 }, { name: 'name' }] });
    expect(d.decode(new Bytes().char('Y').int32(TOP).int32(90001).string('public').string('mood').build())).toBeUndefined();

    const insert = tuple(new Bytes().char('I').int32(SUB).int32(16384).char('N'), ['1', 'Zoë']).build();
    expect(d.decode(insert)).toEqual({ type: 'change', xid: SUB, change: { kind: 'insert', schema: 'public', table: 'items', new: { id: '1', name: 'Zoë' }, oldIsKeyOnly: false } });

    const update = tuple(tuple(new Bytes().char('U').int32(TOP).int32(16384).char('K'), ['1', null]).char('N'), ['2', 'UNCHANGED']).build();
    expect(d.decode(update)).toEqual({
      type: 'change',
      xid: TOP,
      change: { kind: 'update', schema: 'public', table: 'items', old: { id: '1' }, new: { id: '2', name: undefined }, oldIsKeyOnly: true },
    });

    const del = tuple(new Bytes().char('D').int32(SUB).int32(16384).char('O'), ['2', 'x']).build();
    expect(d.decode(del)).toEqual({ type: 'change', xid: SUB, change: { kind: 'delete', schema: 'public', table: 'items', old: { id: '2', name: 'x' }, oldIsKeyOnly: false } });

    const truncate = new Bytes().char('T').int32(TOP).int32(1).int8(1).int32(16384).build();
    expect(d.decode(truncate)).toEqual({ type: 'change', xid: TOP, change: { kind: 'truncate', relations: [{ schema: 'public', table: 'items' }], cascade: true, restartIdentity: false } });

    const message = new Bytes().char('M').int32(TOP).int8(1).int64(0x55n).string('app').int32(2).raw(Buffer.from('hi')).build();
    expect(d.decode(message)).toEqual({ type: 'message', lsn: 0x55n, transactional: true, prefix: 'app', content: Buffer.from('hi') });

    expect(d.decode(STREAM_STOP)).toEqual({ type: 'stream-stop' });
    // Outside the block again: no xid field.
    expect(d.decode(tuple(new Bytes().char('I').int32(16384).char('N'), ['3', 'c']).build())).toEqual({
      type: 'change',
      change: { kind: 'insert', schema: 'public', table: 'items', new: { id: '3', name: 'c' }, oldIsKeyOnly: false },
    });
  });

  it("takes the start LSN from the Origin message sent, without an xid, after a transaction's first Stream Start", () => {
    // pgoutput_stream_start: a transaction written under a replication origin (a subscriber's apply worker). The two go
    // in one group, whose first write the walsender sends with LSN 0/0; the Origin message, the last, has the LSN.
    const d = new PgoutputDecoder();
    expect(d.decode(streamStart(TOP, true), 0n)).toEqual({ type: 'stream-start', xid: TOP, firstSegment: true, lsn: 0n });
    expect(d.decode(new Bytes().char('O').int64(0x1_0000_0000n).string('pg_16400').build(), 0x16_0000_0200n)).toEqual({
      type: 'stream-start',
      xid: TOP,
      firstSegment: false,
      lsn: 0x16_0000_0200n,
    });
    expect(d.decode(streamedRelation(TOP))).toBeUndefined();
    const insert = tuple(new Bytes().char('I').int32(TOP).int32(16384).char('N'), ['1', 'a']).build();
    expect(d.decode(insert)).toMatchObject({ type: 'change', xid: TOP, change: { kind: 'insert', new: { id: '1', name: 'a' } } });
    // A Stream Start that had its LSN is not completed again by an Origin message.
    const e = new PgoutputDecoder();
    e.decode(streamStart(SUB, true), 0x300n);
    expect(e.decode(new Bytes().char('O').int64(1n).string('pg_1').build(), 0x400n)).toBeUndefined();
  });

  it('rejects messages that cannot occur in the streamed block structure', () => {
    const d = new PgoutputDecoder();
    expect(decodeError(d, STREAM_STOP).message).toMatch(/Stream Stop outside a streamed block/);
    d.decode(streamStart(TOP, true));
    expect(decodeError(d, streamStart(TOP, false)).message).toMatch(/Stream Start inside a streamed block/);
    expect(decodeError(d, new Bytes().char('B').int64(1n).int64(TS_MICROS).int32(1).build()).message).toMatch(/'B' inside a streamed block/);
    expect(decodeError(new PgoutputDecoder(), new Bytes().char('c').int32(TOP).int8(0).int64(1n).build())).toMatchObject({ code: 'SRC_PROTOCOL', message: expect.stringMatching(/malformed pgoutput message 'c'/) });
    expect(decodeError(new PgoutputDecoder(), new Bytes().char('A').int32(TOP).build()).message).toMatch(/malformed pgoutput message 'A'/);
  });
});
