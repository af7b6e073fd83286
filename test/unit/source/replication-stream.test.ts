import { describe, expect, it } from 'vitest';
import { parseReplicationFrame, standbyStatusUpdate, startReplicationSql } from '../../../src/source/postgres/replication-stream.js';
import { Bytes, TS_DATE, TS_MICROS } from './pgoutput-fixtures.js';

describe('replication protocol frames', () => {
  it('parses XLogData', () => {
    const payload = Buffer.from('B...');
    const frame = parseReplicationFrame(new Bytes().char('w').int64(0x10n).int64(0x20n).int64(TS_MICROS).raw(payload).build());
    expect(frame).toEqual({ kind: 'xlog', walStart: 0x10n, walEnd: 0x20n, serverTime: TS_DATE, data: payload });
  });

  it('parses primary keepalives with and without a reply request', () => {
    expect(parseReplicationFrame(new Bytes().char('k').int64(0x1_0000_0020n).int64(TS_MICROS).int8(1).build())).toEqual({
      kind: 'keepalive',
      walEnd: 0x1_0000_0020n,
      serverTime: TS_DATE,
      replyRequested: true,
    });
    expect(parseReplicationFrame(new Bytes().char('k').int64(1n).int64(0n).int8(0).build())).toMatchObject({ replyRequested: false });
  });

  it('rejects unknown or short frames', () => {
    expect(() => parseReplicationFrame(Buffer.from('x'))).toThrow(/unexpected replication CopyData message 'x'/);
    expect(() => parseReplicationFrame(Buffer.from('k123'))).toThrow(/'k' of 4 bytes/);
    expect(() => parseReplicationFrame(Buffer.alloc(0))).toThrow(/SRC_PROTOCOL|unexpected/);
  });

  it('encodes a 34-byte standby status update with write = flush = apply', () => {
    const buf = standbyStatusUpdate(0x16_b374_d848n, new Date('2000-01-01T00:00:02Z'), true);
    expect(buf).toHaveLength(34);
    expect(buf.toString('latin1', 0, 1)).toBe('r');
    for (const offset of [1, 9, 17]) expect(buf.readBigUInt64BE(offset)).toBe(0x16_b374_d848n);
    expect(buf.readBigInt64BE(25)).toBe(2_000_000n);
    expect(buf[33]).toBe(1);
    expect(standbyStatusUpdate(0n, new Date())[33]).toBe(0);
  });
});

describe('START_REPLICATION', () => {
  const options = { slot: 'app_book', publication: "pub'x", startLsn: 0x1_0000_0010n };

  it('asks PostgreSQL 14+ for protocol 2 with streaming, and for logical decoding messages', () => {
    expect(startReplicationSql(options, 150004, true)).toBe(
      `START_REPLICATION SLOT "app_book" LOGICAL 1/10 (proto_version '2', streaming 'on', publication_names '"pub''x"', messages 'true')`,
    );
    expect(startReplicationSql(options, 140000, false)).toBe(`START_REPLICATION SLOT "app_book" LOGICAL 1/10 (proto_version '1', publication_names '"pub''x"', messages 'true')`);
  });

  it('sends PostgreSQL 12 and 13 no option their pgoutput does not know (it refuses the command otherwise)', () => {
    for (const version of [120018, 130014]) {
      expect(startReplicationSql(options, version, false)).toBe(`START_REPLICATION SLOT "app_book" LOGICAL 1/10 (proto_version '1', publication_names '"pub''x"')`);
    }
  });
});
