import type { ColumnSelection, RelationRef, RowChange, RowValues, StreamMessage } from '../change-source.js';
import { AppError } from '../../errors/app-error.js';

/**
 * Decoder of pgoutput messages (the payload of XLogData), protocol version 1 and 2, without type parsing. Version 2
 * adds the streaming of in-progress transactions: between Stream Start and Stream Stop every message carries the xid
 * of the (sub)transaction it belongs to, right after its tag.
 */

export interface RelationColumn {
  name: string;
  /** Part of the replica identity (primary key or REPLICA IDENTITY USING INDEX columns). */
  isKey: boolean;
  typeOid: number;
  typeMod: number;
}

export interface Relation extends RelationRef {
  id: number;
  /** relreplident: d default, n nothing, f full, i index. */
  replicaIdentity: string;
  columns: RelationColumn[];
  /** Per column: made into a string (DECODED) or skipped (SKIPPED). */
  decode: Uint8Array;
  /** Per column: 1 when a complete old value is compared with the new one (a selection's compared columns). */
  compare: Uint8Array;
  /** The selection compares old and new values for this table (an update changing none of them can be skipped). */
  selective: boolean;
}

const SKIPPED = 0;
const DECODED = 1;

const PG_EPOCH_MS = 946_684_800_000; // 2000-01-01T00:00:00Z

/** PostgreSQL timestamps on the wire: microseconds since 2000-01-01 UTC. */
export function pgMicrosToDate(micros: bigint): Date {
  return new Date(Number(micros / 1000n) + PG_EPOCH_MS);
}

export function dateToPgMicros(date: Date): bigint {
  return BigInt(date.getTime() - PG_EPOCH_MS) * 1000n;
}

class Reader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  byte(): number {
    return this.buf.readUInt8(this.pos++);
  }
  char(): string {
    return String.fromCharCode(this.byte());
  }
  int16(): number {
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }
  int32(): number {
    const v = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint32(): number {
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }
  uint64(): bigint {
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  int64(): bigint {
    const v = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return v;
  }
  timestamp(): Date {
    return pgMicrosToDate(this.int64());
  }
  /** Null-terminated UTF-8 string. */
  string(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new RangeError('unterminated string');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  bytes(length: number): Buffer {
    if (length < 0 || this.pos + length > this.buf.length) throw new RangeError(`${length} bytes requested past the end`);
    const b = this.buf.subarray(this.pos, this.pos + length);
    this.pos += length;
    return b;
  }
}

export class PgoutputDecoder {
  private readonly relations = new Map<number, Relation>();
  /** Between Stream Start and Stream Stop. */
  private streaming = false;

  /** `columns`: decode only these (see ColumnSelection); a backlog's cost is mostly making strings of values. */
  constructor(private readonly columns?: ColumnSelection) {}

  /** The relation last described by an 'R' message with this id. */
  relation(id: number): Relation | undefined {
    return this.relations.get(id);
  }

  /**
   * Decodes one pgoutput message. Returns undefined for messages that only feed the decoder
   * (relation, type, origin). Throws AppError SRC_PROTOCOL on malformed or unsupported input.
   */
  decode(data: Buffer, walStart = 0n): StreamMessage | undefined {
    const r = new Reader(data);
    this.walStart = walStart;
    const tag = data.length > 0 ? r.char() : '';
    try {
      return this.decodeTagged(tag, r);
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw protocolError(`malformed pgoutput message '${tag}': ${(error as Error).message}`, error);
    }
  }

  /** XLogData start of the message being decoded (only Stream Start and Origin report it). */
  private walStart = 0n;
  /** The transaction of a Stream Start that came without a start LSN, until the Origin message that carries it. */
  private startLsnPendingFor: number | undefined;

  private decodeTagged(tag: string, r: Reader): StreamMessage | undefined {
    switch (tag) {
      case 'S': {
        if (this.streaming) throw protocolError('Stream Start inside a streamed block');
        this.streaming = true;
        const xid = r.uint32();
        const firstSegment = r.byte() === 1;
        // 0 when the server sent it in one group with an Origin message (only a group's last write carries an LSN): the
        // Origin message that follows tells it (see decodeStreamed).
        this.startLsnPendingFor = this.walStart === 0n && firstSegment ? xid : undefined;
        return { type: 'stream-start', xid, firstSegment, lsn: this.walStart };
      }
      case 'E':
        if (!this.streaming) throw protocolError('Stream Stop outside a streamed block');
        this.streaming = false;
        return { type: 'stream-stop' };
      case 'c': {
        const xid = r.uint32();
        r.byte(); // flags, unused
        const commitLsn = r.uint64();
        const endLsn = r.uint64();
        return { type: 'stream-commit', xid, commitLsn, endLsn, commitTime: r.timestamp() };
      }
      case 'A': {
        // PostgreSQL 16 appends the abort LSN and time only with streaming 'parallel', never requested here.
        const xid = r.uint32();
        return { type: 'stream-abort', xid, subxid: r.uint32() };
      }
      default:
        return this.streaming ? this.decodeStreamed(tag, r) : this.decodeData(tag, r);
    }
  }

  /** A message inside a streamed block: its xid, then the message as outside. */
  private decodeStreamed(tag: string, r: Reader): StreamMessage | undefined {
    // A transaction written under a replication origin (a subscriber's apply worker) has its Origin message sent right
    // after its first Stream Start, and without an xid. It carries the LSN that Stream Start could not: passed on as the
    // Stream Start again, which only completes the transaction's start (acknowledgements would otherwise wait at 0/0
    // for as long as such a transaction is open).
    if (tag === 'O') {
      const xid = this.startLsnPendingFor;
      this.startLsnPendingFor = undefined;
      return xid !== undefined && this.walStart !== 0n ? { type: 'stream-start', xid, firstSegment: false, lsn: this.walStart } : undefined;
    }
    this.startLsnPendingFor = undefined;
    if (tag === 'B' || tag === 'C') throw protocolError(`pgoutput message '${tag}' inside a streamed block`);
    const xid = r.uint32();
    const message = this.decodeData(tag, r);
    if (message?.type === 'change') message.xid = xid;
    return message;
  }

  private decodeData(tag: string, r: Reader): StreamMessage | undefined {
    switch (tag) {
      case 'B': {
        const finalLsn = r.uint64();
        const commitTime = r.timestamp();
        return { type: 'begin', finalLsn, commitTime, xid: r.uint32() };
      }
      case 'C': {
        r.byte(); // flags, unused
        const commitLsn = r.uint64();
        const endLsn = r.uint64();
        return { type: 'commit', commitLsn, endLsn, commitTime: r.timestamp() };
      }
      case 'O':
      case 'Y':
        return undefined;
      case 'R':
        this.readRelation(r);
        return undefined;
      case 'M': {
        const transactional = (r.byte() & 1) === 1;
        const lsn = r.uint64();
        const prefix = r.string();
        // Copied: the input may be a view into a buffer the driver reuses.
        const content = Buffer.from(r.bytes(r.uint32()));
        return { type: 'message', lsn, transactional, prefix, content };
      }
      case 'I': {
        const rel = this.lookup(r.uint32());
        expectTag(r, 'N', 'insert');
        return row(rel, 'insert', { new: this.readTuple(r, rel, false), oldIsKeyOnly: false });
      }
      case 'U': {
        const rel = this.lookup(r.uint32());
        let tupleTag = r.char();
        let old: RowValues | undefined;
        const oldIsKeyOnly = tupleTag === 'K';
        // Only a complete old row ('O') can be compared with the new one.
        const comparing = rel.selective && tupleTag === 'O';
        if (tupleTag === 'K' || tupleTag === 'O') {
          old = this.readTuple(r, rel, oldIsKeyOnly, comparing ? 'remember' : undefined);
          tupleTag = r.char();
        }
        if (tupleTag !== 'N') throw protocolError(`update of ${rel.schema}.${rel.table}: expected new tuple 'N', got '${tupleTag}'`);
        const values = this.readTuple(r, rel, false, comparing ? 'compare' : undefined);
        if (comparing) return row(rel, 'update', { old, new: values, oldIsKeyOnly, comparedChanged: this.comparedChanged });
        return row(rel, 'update', old === undefined ? { new: values, oldIsKeyOnly } : { old, new: values, oldIsKeyOnly });
      }
      case 'D': {
        const rel = this.lookup(r.uint32());
        const tupleTag = r.char();
        if (tupleTag !== 'K' && tupleTag !== 'O') throw protocolError(`delete from ${rel.schema}.${rel.table}: expected old tuple 'K' or 'O', got '${tupleTag}'`);
        return row(rel, 'delete', { old: this.readTuple(r, rel, tupleTag === 'K'), oldIsKeyOnly: tupleTag === 'K' });
      }
      case 'T': {
        const count = r.int32();
        const flags = r.byte();
        const relations: RelationRef[] = [];
        for (let i = 0; i < count; i++) {
          const rel = this.lookup(r.uint32());
          relations.push({ schema: rel.schema, table: rel.table });
        }
        return { type: 'change', change: { kind: 'truncate', relations, cascade: (flags & 1) !== 0, restartIdentity: (flags & 2) !== 0 } };
      }
      default:
        throw protocolError(`unsupported pgoutput message type '${tag}' (protocol version 1 or 2 expected)`);
    }
  }

  private readRelation(r: Reader): void {
    const id = r.uint32();
    // pgoutput sends an empty namespace for pg_catalog.
    const schema = r.string() || 'pg_catalog';
    const table = r.string();
    const replicaIdentity = String.fromCharCode(r.byte());
    const count = r.int16();
    const columns: RelationColumn[] = [];
    for (let i = 0; i < count; i++) {
      const isKey = (r.byte() & 1) === 1;
      const name = r.string();
      const typeOid = r.uint32();
      columns.push({ name, isKey, typeOid, typeMod: r.int32() });
    }
    const selected = this.columns?.get(`${schema}.${table}`);
    const decode = new Uint8Array(count).fill(DECODED);
    const compare = new Uint8Array(count);
    if (selected !== undefined) {
      columns.forEach((column, i) => {
        decode[i] = selected.identifying.has(column.name) ? DECODED : SKIPPED;
        compare[i] = selected.compared?.has(column.name) ? 1 : 0;
      });
    }
    this.relations.set(id, { id, schema, table, replicaIdentity, columns, decode, compare, selective: selected?.compared !== undefined });
    if (this.oldKinds.length < count) {
      this.oldKinds = new Uint8Array(count);
      this.oldStarts = new Int32Array(count);
      this.oldEnds = new Int32Array(count);
    }
  }

  /** Where each value of the old tuple being compared lies in the message (kind byte, start, end). */
  private oldKinds = new Uint8Array(0);
  private oldStarts = new Int32Array(0);
  private oldEnds = new Int32Array(0);
  /** Set by readTuple(…, 'compare'): some compared column differs from the remembered old tuple. */
  private comparedChanged = false;

  private lookup(id: number): Relation {
    const rel = this.relations.get(id);
    if (rel === undefined) throw protocolError(`pgoutput referenced relation id ${id} before describing it in a Relation message`);
    return rel;
  }

  /**
   * TupleData; with `keyOnly` ('K' old tuple) the non-key columns, sent as nulls, are left out, and so are the columns
   * not selected for decoding. `remember` notes where each value of this (old) tuple lies; `compare` then sets
   * `comparedChanged` from the compared columns of this (new) tuple against those, byte for byte: values that are
   * only compared are never made into strings.
   */
  private readTuple(r: Reader, rel: Relation, keyOnly: boolean, comparison?: 'remember' | 'compare'): RowValues {
    const count = r.int16();
    if (count !== rel.columns.length) {
      throw protocolError(`tuple of ${rel.schema}.${rel.table} has ${count} columns, its Relation message ${rel.columns.length}`);
    }
    const values = Object.create(ROW_PROTOTYPE) as RowValues;
    // Runs for every column of every row of a backlog: bytes are compared and text decoded in place, without a
    // one-character string or a Buffer view per value.
    const buf = r.buf;
    const decode = rel.decode;
    const compare = rel.compare;
    if (comparison === 'compare') this.comparedChanged = false;
    let pos = r.pos;
    for (let i = 0; i < rel.columns.length; i++) {
      const column = rel.columns[i]!;
      if (pos >= buf.length) throw new RangeError('tuple ends early');
      const kind = buf[pos++]!;
      const wanted = decode[i] === DECODED;
      let start = pos;
      if (kind === TEXT) {
        const length = buf.readInt32BE(pos);
        start = pos + 4;
        pos = start + length;
        if (length < 0 || pos > buf.length) throw new RangeError(`${length} bytes requested past the end`);
      }
      if (comparison === 'remember') {
        this.oldKinds[i] = kind;
        this.oldStarts[i] = start;
        this.oldEnds[i] = pos;
      } else if (comparison === 'compare' && compare[i] === 1 && kind !== UNCHANGED_TOAST && !this.comparedChanged) {
        // As isRelevant on decoded values: an unchanged TOASTed new value is no change; else kind and text must match.
        const oldStart = this.oldStarts[i]!;
        this.comparedChanged = kind !== this.oldKinds[i] || (kind === TEXT && !sameBytes(buf, oldStart, this.oldEnds[i]!, start, pos));
      }
      let value: string | null | undefined;
      if (kind === TEXT) {
        if (!wanted) continue;
        value = buf.toString('utf8', start, pos);
      } else if (kind === NULL) {
        value = null;
      } else if (kind === UNCHANGED_TOAST) {
        value = undefined;
      } else if (kind === BINARY) {
        throw protocolError(`binary value for ${rel.schema}.${rel.table}.${column.name}: binary mode was not requested`);
      } else {
        throw protocolError(`unknown tuple value kind '${String.fromCharCode(kind)}' for ${rel.schema}.${rel.table}.${column.name}`);
      }
      if (wanted && (!keyOnly || column.isKey)) values[column.name] = value;
    }
    r.pos = pos;
    return values;
  }
}

/**
 * The prototype of decoded rows: empty and without a prototype of its own, so a column named like an Object method
 * ("constructor", "toString", "__proto__") is an ordinary key and a missing one reads undefined. Unlike
 * Object.create(null), whose objects V8 keeps as hash tables, rows created from a shared prototype get compact shapes
 * shared by every row of a table: a backlog allocates two per change.
 */
const ROW_PROTOTYPE: object = Object.freeze(Object.create(null) as object);

const TEXT = 0x74; // 't'
const NULL = 0x6e; // 'n'
const UNCHANGED_TOAST = 0x75; // 'u'
const BINARY = 0x62; // 'b'

/** Whether two ranges of `buf` hold the same bytes; a loop, because Buffer.compare's native call costs more for short values. */
function sameBytes(buf: Buffer, aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  const length = aEnd - aStart;
  if (length !== bEnd - bStart) return false;
  if (length > 64) return buf.compare(buf, aStart, aEnd, bStart, bEnd) === 0;
  for (let k = 0; k < length; k++) if (buf[aStart + k] !== buf[bStart + k]) return false;
  return true;
}

function row(rel: Relation, kind: 'insert' | 'update' | 'delete', parts: { old?: RowValues; new?: RowValues; oldIsKeyOnly: boolean; comparedChanged?: boolean }): StreamMessage {
  const change: RowChange = { kind, schema: rel.schema, table: rel.table, oldIsKeyOnly: parts.oldIsKeyOnly };
  if (parts.old !== undefined) change.old = parts.old;
  if (parts.new !== undefined) change.new = parts.new;
  if (parts.comparedChanged !== undefined) change.comparedChanged = parts.comparedChanged;
  return { type: 'change', change };
}

function expectTag(r: Reader, expected: string, what: string): void {
  const tag = r.char();
  if (tag !== expected) throw protocolError(`${what}: expected tuple tag '${expected}', got '${tag}'`);
}

function protocolError(message: string, cause?: unknown): AppError {
  return new AppError('SRC_PROTOCOL', message, cause === undefined ? {} : { cause });
}
