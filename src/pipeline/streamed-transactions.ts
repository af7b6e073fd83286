import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Change, RowChange, RowValues, TruncateChange } from '../source/change-source.js';
import { tableKey, type ChangeRoutes } from '../transform/change-routes.js';
import { isRelevant } from './change-applier.js';

export interface StreamedTransactionsOptions {
  /**
   * Bytes of buffered changes held in memory, over all open streamed transactions, before they are written to
   * temporary files (default 8 MiB).
   */
  memoryBytes?: number;
  /** Where the temporary files go (default the OS temporary directory). */
  directory?: string;
}

export interface StreamedTransactionsStats {
  /** Streamed transactions neither committed nor aborted. */
  open: number;
  memoryBytes: number;
  /** Bytes written to temporary files so far (all transactions, ever). */
  spilledBytes: number;
}

/** A committed streamed transaction, to be applied once: truncates first, then its row changes in batches. */
export interface CommittedTransaction {
  truncates: TruncateChange[];
  /** The surviving row changes, reduced to what root resolution reads, in batches of at most `size`. */
  changes(size: number): AsyncGenerator<RowChange[]>;
  /** Frees its temporary file; call after `changes()` is done (or abandoned). */
  close(): Promise<void>;
}

const DEFAULT_MEMORY_BYTES = 8 * 1024 * 1024;
/** Estimated cost of a buffered line besides its characters (string header, set entry). */
const ENTRY_OVERHEAD = 64;
const READ_CHUNK = 1024 * 1024;

interface OpenTransaction {
  xid: number;
  /** Where its first streamed change is in the WAL. */
  startLsn: bigint;
  /** Reduced changes per (sub)transaction xid, as lines: the set removes duplicates. */
  memory: Map<number, Set<string>>;
  memoryBytes: number;
  truncates: { subxid: number; change: TruncateChange }[];
  /** Subtransactions aborted after some of their changes went to the file: skipped when it is read back. */
  aborted: Set<number>;
  file?: FileHandle;
  fileBytes: number;
}

/**
 * Changes of in-progress transactions streamed by pgoutput v2, held until their Stream Commit, per top-level
 * transaction and subtransaction so that an aborted subtransaction can be dropped alone.
 *
 * Memory stays bounded whatever a transaction's size. Documents are rebuilt from current rows after the commit, so
 * of a row change only the columns that lead to root documents matter (the `valueColumns` of its table's routes, in
 * the old and the new row): each change is reduced to them, and changes reducing to the same values are kept once.
 * Past `memoryBytes` the reduced changes go to a temporary file per transaction, deleted as soon as it is created so
 * that even a killed process leaves nothing behind. Changes of tables outside the document tree, and updates that
 * changed no column a document uses, are not kept at all.
 */
export class StreamedTransactions {
  private readonly open = new Map<number, OpenTransaction>();
  private readonly limit: number;
  private readonly directory: string;
  private memoryBytes = 0;
  private spilledBytes = 0;

  constructor(
    private readonly routes: ChangeRoutes,
    options: StreamedTransactionsOptions = {},
  ) {
    this.limit = Math.max(0, options.memoryBytes ?? DEFAULT_MEMORY_BYTES);
    this.directory = options.directory ?? tmpdir();
  }

  get size(): number {
    return this.open.size;
  }

  stats(): StreamedTransactionsStats {
    return { open: this.open.size, memoryBytes: this.memoryBytes, spilledBytes: this.spilledBytes };
  }

  /** The WAL position of the oldest open transaction's first change: nothing at or past it may be acknowledged. */
  oldestStart(): bigint | undefined {
    let oldest: bigint | undefined;
    for (const txn of this.open.values()) if (oldest === undefined || txn.startLsn < oldest) oldest = txn.startLsn;
    return oldest;
  }

  /** Where the open transaction `xid`'s first streamed change is in the WAL. */
  startOf(xid: number): bigint | undefined {
    return this.open.get(xid)?.startLsn;
  }

  /**
   * A Stream Start: `xid` is open from here on. A later segment of an open transaction changes nothing, except a start
   * LSN the first did not have (0/0: it came with an Origin message, which then tells it).
   */
  start(xid: number, startLsn: bigint): void {
    const open = this.open.get(xid);
    if (open !== undefined) {
      if (open.startLsn === 0n) open.startLsn = startLsn;
      return;
    }
    this.open.set(xid, { xid, startLsn, memory: new Map(), memoryBytes: 0, truncates: [], aborted: new Set(), fileBytes: 0 });
  }

  /**
   * Buffers a change of subtransaction `subxid` (the top-level `xid` itself for its own changes). Returns a promise
   * when buffered changes are being written out: await it before adding more.
   */
  add(xid: number, subxid: number, change: Change): Promise<void> | undefined {
    let txn = this.open.get(xid);
    if (txn === undefined) {
      this.start(xid, 0n);
      txn = this.open.get(xid)!;
    }
    if (change.kind === 'truncate') {
      txn.truncates.push({ subxid, change });
      return undefined;
    }
    const line = this.reduce(change);
    if (line === undefined) return undefined;
    let lines = txn.memory.get(subxid);
    if (lines === undefined) txn.memory.set(subxid, (lines = new Set()));
    if (lines.has(line)) return undefined;
    lines.add(line);
    const bytes = line.length * 2 + ENTRY_OVERHEAD;
    txn.memoryBytes += bytes;
    this.memoryBytes += bytes;
    return this.memoryBytes > this.limit ? this.spillAll() : undefined;
  }

  /** A Stream Abort: the whole transaction when `subxid` is `xid`, else only that subtransaction. */
  async abort(xid: number, subxid: number): Promise<void> {
    const txn = this.open.get(xid);
    if (txn === undefined) return;
    if (subxid === xid) {
      this.open.delete(xid);
      this.memoryBytes -= txn.memoryBytes;
      await txn.file?.close();
      return;
    }
    const lines = txn.memory.get(subxid);
    if (lines !== undefined) {
      const bytes = lineBytes(lines);
      txn.memoryBytes -= bytes;
      this.memoryBytes -= bytes;
      txn.memory.delete(subxid);
    }
    txn.truncates = txn.truncates.filter((t) => t.subxid !== subxid);
    if (txn.file !== undefined) txn.aborted.add(subxid);
  }

  /** A Stream Commit: hands the transaction over (undefined if none of its changes was streamed here). */
  commit(xid: number): CommittedTransaction | undefined {
    const txn = this.open.get(xid);
    if (txn === undefined) return undefined;
    this.open.delete(xid);
    this.memoryBytes -= txn.memoryBytes;
    const memory = txn.memory;
    txn.memory = new Map();
    txn.memoryBytes = 0;
    return {
      truncates: txn.truncates.map((t) => t.change),
      changes: (size) => readBack(txn, memory, Math.max(1, size)),
      close: async () => {
        const file = txn.file;
        txn.file = undefined;
        await file?.close();
      },
    };
  }

  /** Drops every open transaction (the stream is ending: the slot will send them again). */
  async discardAll(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    this.memoryBytes = 0;
    await Promise.allSettled(all.map((txn) => txn.file?.close()));
  }

  /** The change as a line of JSON: [schema, table, old values, new values], values as [column, value, …] or 0. */
  private reduce(change: RowChange): string | undefined {
    const key = tableKey(change.schema, change.table);
    const lookup = this.routes.rowLookups.get(key);
    if (lookup === undefined) return undefined;
    const columns = lookup.valueColumns;
    if (!isRelevant(change, this.routes.relevantColumns.get(key))) return undefined;
    const old = change.old === undefined ? 0 : pick(columns, change.old, undefined);
    let updated = change.new === undefined ? 0 : pick(columns, change.new, change.old);
    // A value column neither row shows (an unchanged TOASTed value, no old row): keep the row's key as well, so that
    // the applier can read the value from the row (ChangeRoutes.rowLookups).
    if (change.new !== undefined && (updated === 0 || updated.length < columns.length * 2)) {
      updated = pick([...columns, ...lookup.keyColumns.filter((c) => !columns.includes(c))], change.new, change.old);
    }
    // Neither row has a value column: no root can be found from it (the applier would skip it too).
    if (old === 0 && updated === 0) return undefined;
    const oldJson = JSON.stringify(old);
    const newJson = JSON.stringify(updated);
    // An update that kept every value column leads to the same roots through its new row alone.
    return `[${JSON.stringify(change.schema)},${JSON.stringify(change.table)},${oldJson === newJson ? '0' : oldJson},${newJson}]`;
  }

  private async spillAll(): Promise<void> {
    for (const txn of this.open.values()) {
      if (txn.memoryBytes === 0) continue;
      let text = '';
      for (const [subxid, lines] of txn.memory) for (const line of lines) text += `${subxid}\t${line}\n`;
      txn.file ??= await temporaryFile(this.directory, txn.xid);
      const data = Buffer.from(text, 'utf8');
      await writeFully(txn.file, data, txn.fileBytes);
      txn.fileBytes += data.length;
      this.spilledBytes += data.length;
      this.memoryBytes -= txn.memoryBytes;
      txn.memoryBytes = 0;
      txn.memory = new Map();
    }
  }
}

/**
 * Writes all of `data` at `position`. A write may take fewer bytes than asked (a file system nearly full): the rest
 * would otherwise be a hole of zero bytes that the read-back takes for a spilled change.
 */
export async function writeFully(file: Pick<FileHandle, 'write'>, data: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await file.write(data, written, data.length - written, position + written);
    // Counted as a full disk (waited out and retried, as a write failing with ENOSPC is): the cause is the same.
    if (bytesWritten <= 0) throw Object.assign(new Error(`spilling a streamed transaction: the file took no more bytes at ${position + written}`), { code: 'ENOSPC' });
    written += bytesWritten;
  }
}

async function temporaryFile(directory: string, xid: number): Promise<FileHandle> {
  const path = join(directory, `sluice-txn-${process.pid}-${xid}-${randomBytes(4).toString('hex')}`);
  const file = await open(path, 'wx+', 0o600);
  // Unlinked at once: the open handle keeps the data, and the kernel frees it when the process ends, however it ends.
  await unlink(path);
  return file;
}

async function* readBack(txn: OpenTransaction, memory: Map<number, Set<string>>, size: number): AsyncGenerator<RowChange[]> {
  let batch: RowChange[] = [];
  if (txn.file !== undefined) {
    const buffer = Buffer.alloc(READ_CHUNK);
    let position = 0;
    let rest = Buffer.alloc(0);
    while (position < txn.fileBytes) {
      const { bytesRead } = await txn.file.read(buffer, 0, Math.min(READ_CHUNK, txn.fileBytes - position), position);
      if (bytesRead === 0) break;
      position += bytesRead;
      const data = rest.length > 0 ? Buffer.concat([rest, buffer.subarray(0, bytesRead)]) : buffer.subarray(0, bytesRead);
      // Decoded only up to the last complete line: a multi-byte character may straddle two reads.
      const lastNewline = data.lastIndexOf(0x0a);
      rest = Buffer.from(data.subarray(lastNewline + 1));
      if (lastNewline < 0) continue;
      const text = data.toString('utf8', 0, lastNewline);
      for (const entry of text.split('\n')) {
        const tab = entry.indexOf('\t');
        if (txn.aborted.has(Number(entry.slice(0, tab)))) continue;
        batch.push(parseLine(entry.slice(tab + 1)));
        if (batch.length >= size) {
          yield batch;
          batch = [];
        }
      }
    }
  }
  for (const lines of memory.values()) {
    for (const line of lines) {
      batch.push(parseLine(line));
      if (batch.length >= size) {
        yield batch;
        batch = [];
      }
    }
  }
  if (batch.length > 0) yield batch;
}

type Pairs = (string | null)[] | 0;

function parseLine(line: string): RowChange {
  const [schema, table, old, updated] = JSON.parse(line) as [string, string, Pairs, Pairs];
  const change: RowChange = { kind: old === 0 ? 'insert' : updated === 0 ? 'delete' : 'update', schema, table, oldIsKeyOnly: true };
  if (old !== 0) change.old = values(old);
  if (updated !== 0) change.new = values(updated);
  return change;
}

function values(pairs: (string | null)[]): RowValues {
  // No prototype: a column named like an Object method must read as absent when it is.
  const row = Object.create(null) as RowValues;
  for (let i = 0; i < pairs.length; i += 2) row[pairs[i] as string] = pairs[i + 1];
  return row;
}

/**
 * The values of `columns` as [column, value, …], 0 when there are none; an unchanged TOASTed value (undefined) is
 * taken from `fallback`.
 */
function pick(columns: string[], row: RowValues, fallback: RowValues | undefined): Pairs {
  const pairs: (string | null)[] = [];
  for (const column of columns) {
    let value = row[column];
    if (value === undefined && fallback !== undefined) value = fallback[column];
    if (value !== undefined) pairs.push(column, value);
  }
  return pairs.length === 0 ? 0 : pairs;
}

function lineBytes(lines: Set<string>): number {
  let bytes = 0;
  for (const line of lines) bytes += line.length * 2 + ENTRY_OVERHEAD;
  return bytes;
}
