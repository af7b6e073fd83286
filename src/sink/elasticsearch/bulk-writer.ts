/**
 * Buffers bulk actions and sends them as `_bulk` requests bounded by action count and bytes, several in
 * flight, never two requests carrying the same document at once (so per-document order holds).
 * Transient failures are retried with full-jitter backoff; rejected documents go to the dead-letter store.
 */
import type { EngineConfig } from '../../config/config-types.js';
import { AppError, toError } from '../../errors/app-error.js';
import { backoffDelayMs, sleep } from '../../util/backoff.js';
import type { BulkAction, BulkStats, DeadLetter, DeadLetterStore } from '../document-sink.js';
import type { EncodedAction } from './bulk-encoder.js';
import { encodeAction } from './bulk-encoder.js';
import { letterOf, sendBulk, tallyOutcomes } from './bulk-request.js';
import type { ItemOutcome } from './bulk-response.js';
import type { EngineClient, SinkLogger } from './engine-client.js';

type WriterConfig = Pick<
  EngineConfig,
  'bulkMaxActions' | 'bulkMaxBytes' | 'bulkConcurrency' | 'retryInitialMs' | 'retryMaxMs' | 'retryGiveUpMs'
>;

export interface BulkWriterOptions {
  /** Randomness for backoff jitter (tests). Default Math.random. */
  random?: () => number;
  /** Treat a missing index as fatal (default true: indices are created by ensureIndex first). */
  expectIndex?: boolean;
  /** Called after every `_bulk` request with its duration (for the latency histogram). */
  onRequest?: (durationSeconds: number) => void;
  /** Called with the actions that went to the dead-letter store. */
  onDeadLetters?: (letters: DeadLetter[]) => void;
  /** Called once the writer is closed (its owner lets go of it). */
  onClose?: () => void;
  /**
   * Once aborted (SIGTERM), requests in flight still finish but a failed one is not retried: waiting out an engine
   * that is down could outlast any shutdown grace period, and what was not written is not acknowledged anyway.
   */
  stop?: AbortSignal;
}

/** An action in the writer, numbered in the order it was added, with its document's key (see keyOf). */
interface Queued extends EncodedAction {
  seq: number;
  key: string;
}

/** Actions of one request still to be settled, with their retry state. */
interface Pending {
  items: EncodedAction[];
  attempt: number;
  /** Start of the current run of failures without progress (ms since epoch). */
  failingSince?: number;
}

export class BulkWriter {
  private pending: Queued[] = [];
  private pendingBytes = 0;
  /** Number of the last action added. */
  private added = 0;
  /** Buffered actions up to this number are sent without waiting for a full request (a `settled()` waits on them). */
  private sendThrough = 0;
  /** Lowest action number of each request in flight (a request's actions are settled together, when it finishes). */
  private readonly inFlightFirst = new Set<number>();
  /** `_index` + `_id` of every action in a request that has not finished (including its retries). */
  private readonly busyKeys = new Set<string>();
  private inFlight = 0;
  private flushing = 0;
  /** Effective max actions per request: halved on throttling, recovers gradually. */
  private maxActions: number;
  private failure: Error | undefined;
  private closed = false;
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];
  private readonly tasks = new Set<Promise<void>>();
  /** Server errors of each action in a row (a document that breaks the engine is dead-lettered after a few). */
  private readonly strikes = new WeakMap<EncodedAction, number>();
  private readonly counters: BulkStats = { indexed: 0, deleted: 0, stale: 0, deadLettered: 0, retries: 0, requests: 0 };
  private readonly config: WriterConfig;

  constructor(
    private readonly client: EngineClient,
    config: WriterConfig,
    private readonly deadLetters: DeadLetterStore,
    private readonly logger?: SinkLogger,
    private readonly options: BulkWriterOptions = {},
  ) {
    this.config = {
      ...config,
      bulkMaxActions: Math.max(1, config.bulkMaxActions),
      bulkConcurrency: Math.max(1, config.bulkConcurrency),
    };
    this.maxActions = this.config.bulkMaxActions;
  }

  /**
   * Buffers one action. Resolves once it is buffered; while the buffer is full and `bulkConcurrency`
   * requests are in flight it waits (backpressure). Rejects once the writer has failed.
   */
  add(action: BulkAction): Promise<void> {
    try {
      this.assertUsable();
    } catch (error) {
      return Promise.reject(error);
    }
    const invalid = invalidId(action.id);
    if (invalid !== undefined) return this.refuse(action, invalid);
    const { head, source, bytes } = encodeAction(action);
    this.pending.push({ action, head, source, bytes, seq: ++this.added, key: keyOf(action) });
    this.pendingBytes += bytes;
    this.pump();
    // Not an async function: a backlog adds an action per change, and most need no wait.
    return this.bufferFull() ? this.waitForRoom() : BUFFERED;
  }

  /**
   * The engine validates ids for the whole request: one it refuses would fail the bulk with every other document in
   * it, on every retry and restart. Such an action goes to the dead letters at once, durably, before `add` resolves.
   */
  private async refuse(action: BulkAction, reason: string): Promise<void> {
    try {
      await this.deadLetter([letterOf(action, 400, 'invalid_id', reason)]);
    } catch (error) {
      this.fail(error);
      throw error;
    }
  }

  private async waitForRoom(): Promise<void> {
    while (this.bufferFull()) {
      await this.changed();
      this.assertUsable();
      this.pump();
    }
  }

  /**
   * Sends everything buffered and waits for every request to settle. When it resolves, every action added
   * so far is in the engine or in the dead-letter store. Rejects with the writer's failure
   * (`SNK_UNAVAILABLE` after `retryGiveUpMs` of failures, `SNK_REQUEST`/`SNK_CONNECT` for fatal refusals).
   */
  async flush(): Promise<void> {
    this.assertUsable();
    this.flushing++;
    try {
      for (;;) {
        this.pump();
        if (this.pending.length === 0 && this.inFlight === 0) return;
        await this.changed();
        this.assertUsable();
      }
    } finally {
      this.flushing--;
    }
  }

  /**
   * Resolves once every action added before this call is in the engine or in the dead-letter store, without
   * waiting for actions added after it (unlike `flush()`), so a caller can go on adding the next batch while
   * this one's requests are in flight. What is buffered of it is sent at once. Rejects with the writer's failure.
   */
  async settled(): Promise<void> {
    this.assertUsable();
    const upTo = this.added;
    if (upTo > this.sendThrough) this.sendThrough = upTo;
    for (;;) {
      this.pump();
      if (this.firstUnsettled() > upTo) return;
      await this.changed();
      this.assertUsable();
    }
  }

  stats(): BulkStats {
    return { ...this.counters };
  }

  /**
   * Stops the writer: aborts retry waits, waits for in-flight requests to settle and discards what is
   * still buffered (call `flush()` first to keep it). Idempotent.
   */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.abort.abort(new AppError('SNK_UNAVAILABLE', 'the bulk writer was closed'));
      // What is still buffered is discarded: up to a full request of documents, not to be kept alive by a reference.
      this.pending = [];
      this.pendingBytes = 0;
      this.notify();
    }
    await Promise.allSettled([...this.tasks]);
    this.options.onClose?.();
  }

  private assertUsable(): void {
    if (this.failure) throw this.failure;
    if (this.closed) throw new AppError('SNK_UNAVAILABLE', 'the bulk writer is closed');
  }

  private bufferFull(): boolean {
    return this.pending.length >= this.maxActions || this.pendingBytes >= this.config.bulkMaxBytes;
  }

  /** The number of the oldest action not yet settled (buffered or in a request); past `added` when none. */
  private firstUnsettled(): number {
    let first = this.pending.length > 0 ? this.pending[0]!.seq : this.added + 1;
    for (const seq of this.inFlightFirst) if (seq < first) first = seq;
    return first;
  }

  /** Starts requests while slots are free and there is a full buffer (or a flush or `settled()` is waiting). */
  private pump(): void {
    while (this.inFlight < this.config.bulkConcurrency && this.pending.length > 0 && !this.failure && !this.closed) {
      if (this.flushing === 0 && !this.bufferFull() && this.pending[0]!.seq > this.sendThrough) return;
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.start(batch);
    }
  }

  /**
   * Takes the next request's actions in order, skipping documents already in flight (they wait their turn), and
   * marks the taken documents busy. A request carries one action per document at most.
   */
  private takeBatch(): Queued[] {
    const batch: Queued[] = [];
    const rest: Queued[] = [];
    /** Documents with an action left in `pending`: their later actions stay behind it. */
    const held = new Set<string>();
    let bytes = 0;
    let full = false;
    for (const item of this.pending) {
      const key = item.key;
      if (full || this.busyKeys.has(key) || (held.size > 0 && held.has(key))) {
        rest.push(item);
        held.add(key);
        continue;
      }
      if (batch.length > 0 && bytes + item.bytes > this.config.bulkMaxBytes) {
        full = true;
        rest.push(item);
        held.add(key);
        continue;
      }
      batch.push(item);
      this.busyKeys.add(key);
      bytes += item.bytes;
      full = batch.length >= this.maxActions || bytes >= this.config.bulkMaxBytes;
    }
    this.pending = rest;
    this.pendingBytes -= bytes;
    return batch;
  }

  private start(batch: Queued[]): void {
    this.inFlight++;
    // Taken in order from `pending`, so the first action has the batch's lowest number.
    const first = batch[0]!.seq;
    this.inFlightFirst.add(first);
    const task = this.runBatch(batch)
      .catch((err: unknown) => this.fail(err))
      .finally(() => {
        this.inFlight--;
        this.inFlightFirst.delete(first);
        for (const item of batch) this.busyKeys.delete(item.key);
        this.tasks.delete(task);
        this.notify();
        this.pump();
      });
    this.tasks.add(task);
  }

  /** Sends one batch until every action is settled; 413 splits it, retries re-send only what failed. */
  private async runBatch(batch: EncodedAction[]): Promise<void> {
    const queue: Pending[] = [{ items: batch, attempt: 0 }];
    while (queue.length > 0 && !this.failure && !this.closed) {
      // Throttling elsewhere may have shrunk the batch size since these actions were taken.
      if (queue[0]!.items.length > this.maxActions) queue.splice(0, 1, ...this.rechunk(queue[0]!));
      const sub = queue[0]!;
      const started = process.hrtime.bigint();
      const result = await sendBulk(this.client, sub.items, { expectIndex: this.options.expectIndex ?? true });
      this.options.onRequest?.(Number(process.hrtime.bigint() - started) / 1e9);
      this.counters.requests++;
      if (result.kind === 'tooLarge') {
        queue.shift();
        if (sub.items.length > 1) {
          const mid = Math.ceil(sub.items.length / 2);
          queue.unshift({ items: sub.items.slice(0, mid), attempt: 0 }, { items: sub.items.slice(mid), attempt: 0 });
        } else {
          await this.deadLetter([letterOf(sub.items[0]!.action, 413, 'request_too_large', result.reason)]);
        }
      } else if (result.kind === 'retry') {
        if (result.throttled) this.throttle(result.timedOut ? sub.items.length : undefined);
        await this.backoff(sub, sub.items.length, result.reason, 1);
      } else {
        const retry = await this.settleItems(sub.items, result.outcomes);
        if (retry.items.length === 0) {
          queue.shift();
          continue;
        }
        if (retry.progress) sub.failingSince = undefined;
        sub.items = retry.items;
        await this.backoff(sub, retry.items.length, retry.reason, retry.items.length);
      }
    }
  }

  /** Counts successes, dead-letters document errors, throws on fatal ones; returns the items to retry. */
  private async settleItems(items: EncodedAction[], outcomes: ItemOutcome[]): Promise<{ items: EncodedAction[]; progress: boolean; reason: string }> {
    const tally = tallyOutcomes(items, outcomes, this.strikes);
    this.counters.indexed += tally.indexed;
    this.counters.deleted += tally.deleted;
    this.counters.stale += tally.stale;
    const newest = this.counters.newestRefusingVersion;
    if (tally.newestRefusing !== undefined && (newest === undefined || tally.newestRefusing > newest)) this.counters.newestRefusingVersion = tally.newestRefusing;
    await this.deadLetter(tally.letters);
    if (tally.fatal) throw tally.fatal;
    if (tally.throttled) this.throttle();
    else if (tally.retry.length === 0) this.recover();
    return { items: tally.retry, progress: tally.retry.length < items.length, reason: tally.reason };
  }

  private async deadLetter(letters: DeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.deadLetters.record(letters);
    this.counters.deadLettered += letters.length;
    this.options.onDeadLetters?.(letters);
    this.logger?.warn({ count: letters.length, first: { id: letters[0]!.id, errorType: letters[0]!.errorType } }, 'documents rejected by the search engine');
  }

  /** Waits before the next attempt; gives up with SNK_UNAVAILABLE after `retryGiveUpMs` without progress. */
  private async backoff(sub: Pending, actions: number, reason: string, retries: number): Promise<void> {
    const now = Date.now();
    sub.failingSince ??= now;
    const elapsedMs = now - sub.failingSince;
    if (elapsedMs >= this.config.retryGiveUpMs) {
      throw new AppError(
        'SNK_UNAVAILABLE',
        `the search engine kept failing for ${elapsedMs} ms (retry budget ${this.config.retryGiveUpMs} ms); last error: ${reason}`,
        { details: { actions, attempts: sub.attempt + 1 } },
      );
    }
    const delayMs = Math.min(
      backoffDelayMs(sub.attempt, this.config.retryInitialMs, this.config.retryMaxMs, this.options.random),
      this.config.retryGiveUpMs - elapsedMs,
    );
    const stop = this.options.stop;
    if (stop?.aborted) throw new AppError('SNK_UNAVAILABLE', `stopping: a failed bulk request is not retried (${reason})`, { details: { actions } });
    sub.attempt++;
    this.counters.retries += retries;
    this.logger?.warn({ actions, attempt: sub.attempt, delayMs, reason }, 'bulk request will be retried');
    await sleep(delayMs, stop ? AbortSignal.any([this.abort.signal, stop]) : this.abort.signal).catch((error: unknown) => {
      if (!stop?.aborted || this.abort.signal.aborted) throw error;
    });
    if (stop?.aborted) throw new AppError('SNK_UNAVAILABLE', `stopping: a failed bulk request is not retried (${reason})`, { details: { actions } });
  }

  /** Splits a throttled request to the reduced batch size; each part keeps the retry state. */
  private rechunk(sub: Pending): Pending[] {
    const parts: Pending[] = [];
    for (let i = 0; i < sub.items.length; i += this.maxActions) {
      parts.push({ items: sub.items.slice(i, i + this.maxActions), attempt: sub.attempt, failingSince: sub.failingSince });
    }
    return parts;
  }

  /**
   * Halves the request size. After a timeout, half of the request that timed out (`size` actions) when that is
   * smaller: only a smaller request can be answered in time.
   */
  private throttle(size = Infinity): void {
    const next = Math.max(1, Math.floor(Math.min(this.maxActions, size) / 2));
    if (next !== this.maxActions) this.logger?.info({ maxActions: next }, 'search engine is throttling or too slow; smaller bulk requests');
    this.maxActions = next;
  }

  private recover(): void {
    const step = Math.max(1, Math.ceil(this.config.bulkMaxActions / 16));
    this.maxActions = Math.min(this.config.bulkMaxActions, this.maxActions + step);
  }

  private fail(err: unknown): void {
    if (this.failure || this.closed) return;
    this.failure = toError(err);
    this.abort.abort(this.failure);
    this.logger?.error({ err: this.failure }, 'bulk writer failed');
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

const BUFFERED: Promise<void> = Promise.resolve();

function keyOf(action: BulkAction): string {
  return `${action.index}\u0000${action.id}`;
}

/** Elasticsearch and OpenSearch refuse an empty `_id` and one longer than 512 bytes (UTF-8). */
const MAX_ID_BYTES = 512;

function invalidId(id: string): string | undefined {
  if (id === '') return 'the document id is empty (the root row\'s primary key is an empty string)';
  const bytes = Buffer.byteLength(id, 'utf8');
  if (bytes > MAX_ID_BYTES) return `the document id is ${bytes} bytes long, over the engine's limit of ${MAX_ID_BYTES}`;
  return undefined;
}
