import type { Duplex } from 'node:stream';
import pg from 'pg';
import type { PostgresConfig } from '../../config/config-types.js';
import { AppError } from '../../errors/app-error.js';
import type { ReplicationStream, ReplicationStreamOptions, StreamMessage } from '../change-source.js';
import { connectionOptions, endClient } from './connect.js';
import { formatLsn } from './lsn.js';
import { PgoutputDecoder, dateToPgMicros, pgMicrosToDate } from './pgoutput-decoder.js';
import { quoteIdent } from '../../transform/sql.js';
import { releaseSlot, replicationClientOptions, replicationError } from './replication-slot.js';
import { withTimeout } from '../../util/timeout.js';

export interface StartReplicationOptions extends ReplicationStreamOptions {
  /** Standby status updates are also sent this often, so the walsender does not time out (default 10 s). */
  statusIntervalMs?: number;
  /** Decoded messages buffered before the socket is paused (default 1000). */
  bufferSize?: number;
  /**
   * Ask for in-progress transactions to be streamed (pgoutput protocol version 2), which PostgreSQL 14 and newer
   * support (default: whenever the server does). Without it a large transaction reaches the stream only once
   * committed, after the server has decoded it whole (spilling it to disk past logical_decoding_work_mem).
   */
  streaming?: boolean;
}

/** The first server version whose pgoutput streams in-progress transactions (protocol version 2). */
export const STREAMING_SERVER_VERSION = 140_000;
/** The first server version whose pgoutput knows the `messages` option (older ones refuse the command). */
const MESSAGES_SERVER_VERSION = 140_000;

export interface ReplicationStreamStats {
  /** Decoded messages waiting for the consumer. */
  buffered: number;
  /** Highest `buffered` so far; never above `capacity`. */
  maxBuffered: number;
  capacity: number;
  /** Undecoded CopyData bytes held while the buffer is full: at most what one socket read delivered. */
  pendingBytes: number;
  maxPendingBytes: number;
  /** Times the socket was paused because the consumer lagged. */
  pauses: number;
  paused: boolean;
  /** Last LSN passed to `acknowledge()` (0n before any). */
  acknowledgedLsn: bigint;
  /** In-progress transactions are streamed (pgoutput protocol version 2). */
  streaming: boolean;
}

export interface PostgresReplicationStream extends ReplicationStream {
  stats(): ReplicationStreamStats;
  /**
   * The next message if one is already decoded, else undefined (then wait with the iterator). Throws the
   * stream's failure. Draining a backlog this way costs no promise per message.
   */
  read(): StreamMessage | undefined;
}

export type ReplicationFrame =
  | { kind: 'xlog'; walStart: bigint; walEnd: bigint; serverTime: Date; data: Buffer }
  | { kind: 'keepalive'; walEnd: bigint; serverTime: Date; replyRequested: boolean };

/** Parses one CopyData payload of the streaming replication protocol ('w' XLogData, 'k' keepalive). */
export function parseReplicationFrame(chunk: Buffer): ReplicationFrame {
  const tag = chunk.length > 0 ? String.fromCharCode(chunk[0] ?? 0) : '';
  if (tag === 'w' && chunk.length >= 25) {
    return { kind: 'xlog', walStart: chunk.readBigUInt64BE(1), walEnd: chunk.readBigUInt64BE(9), serverTime: pgMicrosToDate(chunk.readBigInt64BE(17)), data: chunk.subarray(25) };
  }
  if (tag === 'k' && chunk.length >= 18) {
    return { kind: 'keepalive', walEnd: chunk.readBigUInt64BE(1), serverTime: pgMicrosToDate(chunk.readBigInt64BE(9)), replyRequested: chunk[17] === 1 };
  }
  throw new AppError('SRC_PROTOCOL', `unexpected replication CopyData message '${tag}' of ${chunk.length} bytes`);
}

/** Standby status update 'r': written = flushed = applied = `lsn`. */
export function standbyStatusUpdate(lsn: bigint, now: Date, replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf.write('r', 0, 'latin1');
  buf.writeBigUInt64BE(lsn, 1);
  buf.writeBigUInt64BE(lsn, 9);
  buf.writeBigUInt64BE(lsn, 17);
  buf.writeBigInt64BE(dateToPgMicros(now), 25);
  buf.writeUInt8(replyRequested ? 1 : 0, 33);
  return buf;
}

/** The parts of pg's Connection used here (not in @types/pg). */
interface WireConnection {
  stream: Duplex;
  on(event: 'copyData', listener: (msg: { chunk: Buffer }) => void): unknown;
  once(event: 'replicationStart', listener: () => void): unknown;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** A FIFO with amortised O(1) shift. */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get size(): number {
    return this.items.length - this.head;
  }
  push(item: T): void {
    this.items.push(item);
  }
  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };
const XLOG_DATA = 0x77; // 'w'
const STREAM_START = 0x53; // 'S'
const ORIGIN = 0x4f; // 'O'
const CLOSE_STEP_TIMEOUT_MS = 2000;
/** SLUICE_REPLICATION_TIMEOUT_SECONDS's default. */
const DEFAULT_REPLICATION_TIMEOUT_MS = 120_000;

class PgReplicationStream implements PostgresReplicationStream {
  private readonly connection: WireConnection;
  private readonly decoder: PgoutputDecoder;
  private readonly queue = new Fifo<StreamMessage>();
  private readonly pending = new Fifo<Buffer>();
  private readonly capacity: number;
  private waiter: { resolve: (r: IteratorResult<StreamMessage>) => void; reject: (e: unknown) => void } | undefined;
  private failure: AppError | undefined;
  private closing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ackScheduled = false;
  private copyDone = false;
  private acked = 0n;
  private counters = { maxBuffered: 0, pendingBytes: 0, maxPendingBytes: 0, pauses: 0, paused: false };
  /** When the last CopyData arrived, and when the consumer began waiting for the next message: the watchdog's clock. */
  private lastReceived = Date.now();
  private waitingSince = Date.now();
  private finished: Promise<void> = Promise.resolve();

  constructor(
    private readonly client: pg.Client,
    private readonly config: PostgresConfig,
    private readonly database: string,
    private readonly options: StartReplicationOptions,
    private readonly walsenderPid: number | undefined,
    private readonly streaming: boolean,
    private readonly serverVersion: number,
  ) {
    this.connection = client.connection as unknown as WireConnection;
    this.decoder = new PgoutputDecoder(options.columns);
    this.capacity = Math.max(1, options.bufferSize ?? 1000);
  }

  async start(): Promise<void> {
    const { slot } = this.options;
    const sql = startReplicationSql(this.options, this.serverVersion, this.streaming);
    this.connection.on('copyData', (msg) => this.onCopyData(msg.chunk));
    this.client.on('error', (error) => this.fail(replicationError(error, slot, 'streaming', this.config, this.database)));
    let started = false;
    await new Promise<void>((resolve, reject) => {
      this.connection.once('replicationStart', () => {
        started = true;
        resolve();
      });
      this.finished = this.client.query(sql).then(
        () => this.fail(new AppError('SRC_CONNECT', `PostgreSQL ended the replication stream of slot "${slot}"`)),
        (error: unknown) => {
          const doing = started ? `streaming from slot "${slot}"` : `START_REPLICATION of slot "${slot}"`;
          const mapped = replicationError(error, slot, doing, this.config, this.database);
          reject(mapped);
          this.fail(mapped);
        },
      );
    });
    this.lastReceived = Date.now();
    const silenceLimitMs = this.config.replicationTimeoutMs ?? DEFAULT_REPLICATION_TIMEOUT_MS;
    this.timer = setInterval(() => {
      // A connection dropped without a FIN or RST (failover, a NAT forgetting it) is otherwise noticed only after the
      // kernel's retransmissions, some fifteen minutes. While the consumer waits for a message, a live stream is never
      // quiet this long: the consumer emits a heartbeat every heartbeat interval and it comes back through the stream.
      // While the consumer is busy (a long TRUNCATE rebuild) it emits none, and the quiet proves nothing.
      if (this.waiter !== undefined && Date.now() - Math.max(this.lastReceived, this.waitingSince) > silenceLimitMs) {
        this.fail(new AppError('SRC_CONNECT', `PostgreSQL sent nothing on the replication stream of slot "${slot}" for ${Math.round(silenceLimitMs / 1000)} s (SLUICE_REPLICATION_TIMEOUT_SECONDS): the connection is taken for dead and reopened`));
        return;
      }
      this.sendStatus();
    }, Math.min(this.options.statusIntervalMs ?? 10_000, silenceLimitMs / 2));
    this.timer.unref();
  }

  acknowledge(lsn: bigint): void {
    if (lsn <= this.acked || this.closing) return;
    this.acked = lsn;
    if (this.ackScheduled) return;
    // Coalesces acknowledgements made in one turn of the event loop into one status update.
    this.ackScheduled = true;
    setImmediate(() => {
      this.ackScheduled = false;
      this.sendStatus();
    });
  }

  stats(): ReplicationStreamStats {
    const { maxBuffered, pendingBytes, maxPendingBytes, pauses, paused } = this.counters;
    return { buffered: this.queue.size, maxBuffered, capacity: this.capacity, pendingBytes, maxPendingBytes, pauses, paused, acknowledgedLsn: this.acked, streaming: this.streaming };
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamMessage> {
    // return() does not close: a later loop continues where this one stopped. Call close() to end.
    return { next: () => this.next(), return: () => Promise.resolve(DONE) };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  read(): StreamMessage | undefined {
    if (this.failure !== undefined) throw this.failure;
    // A pending next() is owed the next message.
    if (this.waiter !== undefined) return undefined;
    const message = this.queue.shift();
    if (message !== undefined) this.refill();
    return message;
  }

  private next(): Promise<IteratorResult<StreamMessage>> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const message = this.queue.shift();
    if (message !== undefined) {
      this.refill();
      return Promise.resolve({ done: false, value: message });
    }
    if (this.closing) return Promise.resolve(DONE);
    if (this.waiter !== undefined) return Promise.reject(new Error('replication stream: next() called while a previous next() is pending'));
    this.waitingSince = Date.now();
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  private onCopyData(chunk: Buffer): void {
    this.lastReceived = Date.now();
    if (this.closing || this.failure) return;
    // Answer at once even when the buffer is full, and only with the acknowledged position.
    if (chunk[0] === 0x6b && chunk[17] === 1) this.sendStatus();
    if (this.pending.size > 0 || this.queue.size >= this.capacity) {
      // The parser emits every message of a socket read synchronously; hold the rest undecoded, in order.
      const copy = Buffer.from(chunk);
      this.pending.push(copy);
      this.counters.pendingBytes += copy.length;
      this.counters.maxPendingBytes = Math.max(this.counters.maxPendingBytes, this.counters.pendingBytes);
      this.pause();
      return;
    }
    this.process(chunk);
    if (this.queue.size >= this.capacity) this.pause();
  }

  private process(chunk: Buffer): void {
    try {
      let message: StreamMessage | undefined;
      // XLogData, nearly every frame: its header (two LSNs and a time, three BigInts and a Date) is only read for
      // a Stream Start (or the Origin message that may complete it), whose start LSN tells where the streamed
      // transaction's changes begin.
      if (chunk[0] === XLOG_DATA && chunk.length >= 25) message = this.decoder.decode(chunk.subarray(25), chunk[25] === STREAM_START || chunk[25] === ORIGIN ? chunk.readBigUInt64BE(1) : 0n);
      else {
        const frame = parseReplicationFrame(chunk);
        message = frame.kind === 'xlog' ? this.decoder.decode(frame.data, frame.walStart) : { type: 'keepalive', walEnd: frame.walEnd, serverTime: frame.serverTime };
      }
      if (message === undefined) return;
      if (this.waiter !== undefined) {
        const { resolve } = this.waiter;
        this.waiter = undefined;
        resolve({ done: false, value: message });
        return;
      }
      this.queue.push(message);
      this.counters.maxBuffered = Math.max(this.counters.maxBuffered, this.queue.size);
    } catch (error) {
      this.fail(error instanceof AppError ? error : new AppError('SRC_PROTOCOL', `replication stream: ${(error as Error).message}`, { cause: error }));
    }
  }

  private refill(): void {
    while (this.pending.size > 0 && this.queue.size < this.capacity && this.failure === undefined) {
      const chunk = this.pending.shift() as Buffer;
      this.counters.pendingBytes -= chunk.length;
      this.process(chunk);
    }
    if (this.counters.paused && this.pending.size === 0 && this.queue.size <= this.capacity / 2) {
      this.counters.paused = false;
      this.connection.stream.resume();
    }
  }

  private pause(): void {
    if (this.counters.paused) return;
    this.counters.paused = true;
    this.counters.pauses++;
    this.connection.stream.pause();
  }

  private sendStatus(): void {
    if (this.copyDone || this.failure !== undefined) return;
    this.connection.sendCopyFromChunk(standbyStatusUpdate(this.acked, new Date()));
  }

  private fail(error: AppError): void {
    if (this.failure !== undefined || this.closing) return;
    this.failure = error;
    clearInterval(this.timer);
    this.queue.clear();
    this.pending.clear();
    if (this.waiter !== undefined) {
      const { reject } = this.waiter;
      this.waiter = undefined;
      reject(error);
    }
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    this.queue.clear();
    this.pending.clear();
    this.waiter?.resolve(DONE);
    this.waiter = undefined;
    if (this.failure === undefined) {
      this.sendStatus();
      this.connection.endCopyFrom();
      this.copyDone = true;
    }
    // Read (and drop) what the server still sends, so it can see our CopyDone and answer.
    this.connection.stream.resume();
    await withTimeout(this.finished, CLOSE_STEP_TIMEOUT_MS);
    await endClient(this.client);
    await this.waitForWalsenderExit();
  }

  private async waitForWalsenderExit(): Promise<void> {
    const client = new pg.Client(connectionOptions(this.config, this.database));
    client.on('error', () => undefined);
    try {
      await client.connect();
      await releaseSlot(client, this.options.slot, this.walsenderPid);
    } catch (error) {
      throw replicationError(error, this.options.slot, `waiting for the walsender of slot "${this.options.slot}" to exit`, this.config, this.database);
    } finally {
      await endClient(client);
    }
  }
}

/**
 * The START_REPLICATION command: pgoutput protocol 2 with `streaming` when asked (14+), else 1. Logical decoding
 * messages (`messages`) are asked for from PostgreSQL 14 on: older pgoutput refuses any option it does not know.
 */
export function startReplicationSql(options: Pick<StartReplicationOptions, 'slot' | 'publication' | 'startLsn'>, serverVersion: number, streaming: boolean): string {
  const publications = quoteIdent(options.publication).replace(/'/g, "''");
  const parts = [streaming ? `proto_version '2', streaming 'on'` : `proto_version '1'`, `publication_names '${publications}'`];
  if (serverVersion >= MESSAGES_SERVER_VERSION) parts.push(`messages 'true'`);
  return `START_REPLICATION SLOT ${quoteIdent(options.slot)} LOGICAL ${formatLsn(options.startLsn)} (${parts.join(', ')})`;
}

/**
 * Starts streaming pgoutput changes of `options.slot` from `options.startLsn`: protocol version 2 with in-progress
 * transactions streamed on PostgreSQL 14 and newer (unless `options.streaming` is false), else version 1. Resolves once the
 * server has entered CopyBoth mode; a missing or invalidated slot rejects with SRC_SLOT_MISSING /
 * SRC_SLOT_LOST. Later errors surface from the iterator. Nothing is acknowledged unless `acknowledge()` is called.
 */
export async function startReplicationStream(config: PostgresConfig, database: string, options: StartReplicationOptions): Promise<PostgresReplicationStream> {
  const client = new pg.Client(replicationClientOptions(config, database));
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.query<{ pid: number; version: string }>(`SELECT pg_backend_pid() AS pid, current_setting('server_version_num') AS version`);
    const version = Number(info.rows[0]?.version);
    const streaming = (options.streaming ?? true) && version >= STREAMING_SERVER_VERSION;
    const stream = new PgReplicationStream(client, config, database, options, info.rows[0]?.pid, streaming, version);
    await stream.start();
    return stream;
  } catch (error) {
    await endClient(client);
    throw replicationError(error, options.slot, 'starting replication', config, database);
  }
}
