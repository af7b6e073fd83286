// Builders of pgoutput v1 messages, byte by byte as the server writes them (src/backend/replication/logical/proto.c).
import { expect } from 'vitest';
import { AppError } from '../../../src/errors/app-error.js';
import type { PgoutputDecoder } from '../../../src/source/postgres/pgoutput-decoder.js';

export class Bytes {
  private readonly parts: Buffer[] = [];
  char(c: string): this {
    this.parts.push(Buffer.from(c, 'latin1'));
    return this;
  }
  int8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
    return this;
  }
  int16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  int32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }
  int64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt.asIntN(64, v));
    this.parts.push(b);
    return this;
  }
  string(s: string): this {
    this.parts.push(Buffer.from(s, 'utf8'), Buffer.from([0]));
    return this;
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Microseconds since 2000-01-01 of 2024-05-06T07:08:09.123Z. */
export const TS_MICROS = BigInt(Date.parse('2024-05-06T07:08:09.123Z') - 946_684_800_000) * 1000n + 456n;
export const TS_DATE = new Date('2024-05-06T07:08:09.123Z');

export type Value = string | null | 'UNCHANGED';

export function relation(id: number, schema: string, table: string, identity: string, columns: { name: string; key?: boolean; oid?: number }[]): Buffer {
  const b = new Bytes().char('R').int32(id).string(schema).string(table).char(identity).int16(columns.length);
  for (const c of columns) b.int8(c.key ? 1 : 0).string(c.name).int32(c.oid ?? 25).int32(0xffffffff);
  return b.build();
}

export function tuple(b: Bytes, values: Value[]): Bytes {
  b.int16(values.length);
  for (const v of values) {
    if (v === null) b.char('n');
    else if (v === 'UNCHANGED') b.char('u');
    else {
      const data = Buffer.from(v, 'utf8');
      b.char('t').int32(data.length).raw(data);
    }
  }
  return b;
}

/** The AppError the decoder throws for `data` (fails the test when it does not throw). */
export function decodeError(d: PgoutputDecoder, data: Buffer): AppError {
  try {
    d.decode(data);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error('expected the decoder to throw');
}
