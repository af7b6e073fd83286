import type pg from 'pg';
import type { Checkpoint, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import type { ReplicationStream, RowChange, StreamMessage, TruncateChange } from '../source/change-source.js';
import { durableWalEnd } from '../source/postgres/database-origin.js';
import { formatLsn } from '../source/postgres/lsn.js';
import { assertNotSynchronousStandby, awaitVisible } from '../source/postgres/transaction-visibility.js';
import { tableKey, type ChangeRoutes } from '../transform/change-routes.js';
import { buildChanges, deleteOrphans, routingSourceTables, subtreeTables, writeBuiltChanges, type IndexScanner, type RoutingLookup } from './change-applier.js';
import { checkpointPosition } from './database-history.js';
import { runFullSync, type ActionWriter } from './full-sync.js';
import { StreamedTransactions, type CommittedTransaction, type StreamedTransactionsOptions } from './streamed-transactions.js';

/**
 * Least time between two checkpoint saves (and acknowledgements) while batches keep coming. A backlog applies a
 * batch every 10-15 ms, and saving each one took about as much of the event loop as decoding its changes (the
 * file store: open, write, fsync, rename, fsync of the directory). After a crash, at most this much more is
 * applied again, which external versions make harmless.
 */
const CHECKPOINT_INTERVAL_MS = 100;

/** How far past a write's version the saved version ceiling may go (16 MiB of WAL): see `cover`. */
const CEILING_STEP = 0x1000000n;

export interface StreamPhaseOptions {
  name: string;
  /** Row changes per batch (PGSYNC_BATCH_SIZE). */
  batchSize: number;
  /** A partial batch is applied after this long without a new message (PGSYNC_FLUSH_INTERVAL). */
  flushIntervalMs: number;
  chunkSize: number;
  signal: AbortSignal;
  /**
   * Batches handed on whose writes are not yet durable (default 2): while one batch's bulk requests are in flight,
   * the next is read, resolved and built. 1 applies batches strictly one after another.
   */
  maxBatchesInFlight?: number;
  /** After each applied batch: its size, and the commit times of its oldest and newest transaction (for lag). */
  onBatch?: (stats: { changes: number; transactions: number; indexed: number; deleted: number; lsn: bigint; oldestCommitTime?: Date; newestCommitTime?: Date }) => void;
  onIdle?: () => Promise<void>;
  /**
   * The commit time of the oldest transaction received and not yet applied (undefined: none), whenever it changes:
   * how far behind the index is while a batch waits for the engine or PostgreSQL, when no batch completes to say so.
   */
  onUnapplied?: (oldest: Date | undefined) => void;
  /** A batch's transactions have been committed but invisible to other sessions for a while (synchronous replication). */
  onInvisible?: (xids: number[], waitedMs: number) => void;
  /** Buffering of transactions streamed before their commit (pgoutput v2). */
  streamed?: StreamedTransactionsOptions;
}

/** A writer that can wait for the actions added so far without waiting for those added later (BulkWriter). */
interface SettlingWriter extends ActionWriter {
  settled(): Promise<void>;
}

/** A stream that hands out already decoded messages synchronously (PostgresReplicationStream). */
interface ReadableStream extends ReplicationStream {
  read(): StreamMessage | undefined;
}

function canRead(stream: ReplicationStream): stream is ReadableStream {
  return typeof (stream as Partial<ReadableStream>).read === 'function';
}

function canSettle(writer: ActionWriter): writer is SettlingWriter {
  return typeof (writer as Partial<SettlingWriter>).settled === 'function';
}

/** A batch handed to the pipeline: what to acknowledge once it is durable. */
interface Dispatched {
  changes: number;
  transactions: number;
  version: bigint;
  /** End of the last complete transaction it contains (or a keepalive position): acknowledged once durable. */
  ackLsn: bigint;
  oldestCommitTime?: Date;
  newestCommitTime?: Date;
}

/**
 * Applies the replication stream to the index, batch by batch, in LSN order. A batch's LSN is acknowledged
 * to PostgreSQL only after its documents and those of every earlier batch are durable in the engine and the
 * checkpoint is stored, and only up to the last complete transaction. Returns when `signal` aborts (after
 * finishing the batches in hand).
 *
 * Batches overlap in five stages: reading and decoding (this loop), building (root resolution and the first
 * document query, started as the batch is handed on), applying (handing actions to the writer: one batch at a time,
 * in order), committing (waiting for the batch's writes: one batch at a time, in order) and saving (the checkpoint,
 * then the acknowledgement, of the newest committed position: one save at a time, at most every
 * CHECKPOINT_INTERVAL_MS, each covering every batch committed since the previous one). So batch N+1 is read and
 * built while batch N is handed to the writer and its bulk requests are in flight.
 * Per document, writes still reach the writer in LSN order (the apply stage is sequential) and the writer never
 * has two requests for one document in flight.
 * Batch N+1's document queries may read rows before batch N's, and before batch N's writes are in the engine; that
 * is harmless because every query runs once its batch's transactions and all earlier ones are visible (awaitVisible:
 * decoded is not yet visible), documents are built from current rows, and they carry their batch's commit LSN as
 * external version (`external_gte`): the write with the highest version, built from rows at least that new, is the
 * one that stays.
 *
 * A transaction streamed before its commit (pgoutput v2) is buffered, reduced to what root resolution needs, and
 * applied at its Stream Commit, in commit order, as batches with the commit LSN as version; an aborted one (or
 * subtransaction) is dropped. While one is open nothing at or past its first change is acknowledged: its changes are
 * durable only in the slot, and a restart must receive them again.
 */
export async function runStreamPhase(
  plan: EntryPlan,
  routes: ChangeRoutes,
  pool: pg.Pool,
  stream: ReplicationStream,
  writer: ActionWriter,
  scanner: IndexScanner,
  store: CheckpointStore,
  checkpoint: Checkpoint,
  options: StreamPhaseOptions,
): Promise<void> {
  const iterator = stream[Symbol.asyncIterator]();
  const readNow = canRead(stream) ? () => stream.read() : undefined;
  const maxInFlight = Math.max(1, options.maxBatchesInFlight ?? 2);
  let pendingNext: Promise<IteratorResult<StreamMessage>> | undefined;
  let changes: RowChange[] = [];
  /** The transactions the batch in hand has changes of; the open one carries on into the next batch. */
  let batchXids: number[] = [];
  let currentXid: number | undefined;
  /** The transaction being read has changes in the batch in hand (or handed on): its xid is needed in batchXids. */
  let currentHasChanges = false;
  let version = 0n;
  let inTransaction = false;
  /**
   * Resolves once `xids` and every transaction of earlier calls are visible. In commit order, not each batch on its
   * own: a later transaction can be visible before an earlier one (committed with synchronous_commit = local while the
   * earlier waits for a standby), and a batch reading a document then would miss the earlier transaction's rows of
   * it, yet carry the higher version and so replace the earlier batch's complete document.
   */
  let visibleSoFar: Promise<void> = Promise.resolve();
  const visible = (xids: number[]) => {
    const earlier = visibleSoFar;
    visibleSoFar = earlier.then(() =>
      awaitVisible(pool, xids, options.signal, { onSlow: options.onInvisible, whileSlow: () => assertNotSynchronousStandby(pool, options.name) }),
    );
    return visibleSoFar;
  };
  let lastCommitEnd = 0n;
  let lastCommitTime: Date | undefined;
  /** The commit time of the transaction being read (its Begin carries it): its changes are pending from then on. */
  let openCommitTime: Date | undefined;
  let oldestCommitTime: Date | undefined;
  let transactions = 0;
  /** Highest LSN handed to the pipeline for acknowledgement. */
  let dispatchedLsn = 0n;
  let acknowledged = 0n;
  let current = checkpoint;
  const streamed = new StreamedTransactions(routes, options.streamed);
  /** The top-level xid of the streamed block being read (between stream-start and stream-stop). */
  let streamXid: number | undefined;
  /** The first change of a committed streamed transaction whose batches are still being handed on. */
  let replayFloor: bigint | undefined;
  /** What may be acknowledged once everything dispatched is durable: never at or past an open streamed transaction. */
  const ackable = (): bigint => {
    let lsn = lastCommitEnd;
    const open = streamed.oldestStart();
    if (open !== undefined && open < lsn) lsn = open;
    if (replayFloor !== undefined && replayFloor < lsn) lsn = replayFloor;
    return lsn;
  };

  /** Per dispatched batch with changes, in order until it completes: its oldest commit time. */
  const unapplied: Array<Date | undefined> = [];
  /** The commit time of a streamed transaction, or of the transaction whose TRUNCATE is, being applied. */
  let applyingSince: Date | undefined;
  let reportedOldest: Date | undefined;
  /** The oldest commit time among the changes in hand: of committed transactions, else of the one being read. */
  const inHandSince = (): Date | undefined => oldestCommitTime ?? (inTransaction && changes.length > 0 ? openCommitTime : undefined);
  const reportUnapplied = () => {
    let oldest = unapplied.find((time) => time !== undefined);
    for (const time of [inHandSince(), applyingSince]) if (time !== undefined && (oldest === undefined || time < oldest)) oldest = time;
    if (oldest === reportedOldest) return;
    reportedOldest = oldest;
    options.onUnapplied?.(oldest);
  };

  let failure: { error: unknown } | undefined;
  /** Wakes the reader's wait for a message when a stage fails. */
  let wake: (() => void) | undefined;
  const fail = (error: unknown) => {
    failure ??= { error };
    wake?.();
  };
  /** The tail of the apply stage and of the commit stage; each link runs after the previous one. */
  let applying: Promise<void> = Promise.resolve();
  let committing: Promise<void> = Promise.resolve();
  /**
   * Dispatched batches with changes not yet complete (for backpressure). A batch that only moves the acknowledged
   * position (a keepalive's) holds no memory and is not counted: counting it would keep the next batch from being
   * read until the previous one's writes are done.
   */
  let inFlight = 0;
  /** Resolves when a dispatched batch completes (or fails). */
  let completed: (() => void) | undefined;

  const durable = (): Promise<void> => (canSettle(writer) ? writer.settled() : writer.flush());
  // The engine's answer about where a routed document lives is only current once the earlier batches' writes
  // (which may have moved it) are in: otherwise a delete would go to the shard it has already left.
  const routing: RoutingLookup = {
    routingsOf: async (index, ids) => {
      await durable();
      return scanner.routingsOf(index, ids);
    },
  };

  // Saving the checkpoint (a file's fsyncs, a Redis or PostgreSQL round trip) takes milliseconds: done once per
  // batch and in line, it held every batch behind it. A batch is complete once its writes are durable; positions
  // are then saved one save at a time, at most every CHECKPOINT_INTERVAL_MS, each save covering every position
  // reported since the previous one. Those saves and the version ceiling's (`cover`) go through one queue, each save
  // the newest of both.
  let saving: Promise<void> = Promise.resolve();
  const saveCurrent = (): Promise<void> => {
    const saved = saving.then(() => store.save(options.name, { ...current, updatedAt: new Date().toISOString() }));
    saving = saved.then(
      () => undefined,
      () => undefined,
    );
    return saved;
  };
  const checkpoints = new LatestPositionSaver(
    async (lsn) => {
      current = { ...current, lsn: formatLsn(lsn) };
      await saveCurrent();
      stream.acknowledge(lsn);
      acknowledged = lsn;
    },
    fail,
    CHECKPOINT_INTERVAL_MS,
  );
  /**
   * Writes run ahead of the saved position, so before one carries a version above the recorded ceiling, a higher
   * ceiling is saved: a server whose history later turns out to have left the timeline below it (a failover to a
   * replica that had not received everything) is then known to lack changes the index has (database-history.ts).
   * Raised to the server's flushed WAL (at most CEILING_STEP past the version), so a backlog saves it rarely.
   */
  let ceiling = checkpointPosition(checkpoint);
  let raising: Promise<void> | undefined;
  const cover = async (writeVersion: bigint): Promise<void> => {
    while (writeVersion > ceiling) {
      raising ??= (async () => {
        const flushed = await durableWalEnd(pool);
        const step = writeVersion + CEILING_STEP;
        const raised = flushed === undefined || flushed < writeVersion ? writeVersion : flushed < step ? flushed : step;
        current = { ...current, ceiling: formatLsn(raised) };
        await saveCurrent();
        ceiling = raised;
      })().finally(() => (raising = undefined));
      await raising;
    }
  };

  const commit = (batch: Dispatched, indexed: number, deleted: number) => {
    if (batch.changes > 0) {
      options.onBatch?.({ changes: batch.changes, transactions: batch.transactions, indexed, deleted, lsn: batch.version, oldestCommitTime: batch.oldestCommitTime, newestCommitTime: batch.newestCommitTime });
    }
    if (batch.ackLsn > acknowledged) checkpoints.request(batch.ackLsn);
  };

  /** Hands the batch in hand to the pipeline and starts a new one. */
  const dispatch = () => {
    batchStartedAt = undefined;
    const ackLsn = ackable();
    if (changes.length === 0 && ackLsn <= dispatchedLsn) {
      oldestCommitTime = undefined;
      transactions = 0;
      reportUnapplied();
      return;
    }
    const rows = changes;
    const xids = batchXids;
    // Changes of the transaction still being read are part of the batch (a batch ends at batchSize changes): its commit
    // time, from its Begin, is the batch's newest, and the oldest when no transaction of the batch has committed yet.
    const openInBatch = inTransaction && openCommitTime !== undefined && changes.length > 0;
    const batch: Dispatched = {
      changes: rows.length,
      transactions,
      version,
      ackLsn,
      oldestCommitTime: inHandSince(),
      newestCommitTime: openInBatch ? openCommitTime : lastCommitTime,
    };
    changes = [];
    batchXids = inTransaction && currentXid !== undefined ? [currentXid] : [];
    oldestCommitTime = undefined;
    transactions = 0;
    if (ackLsn > dispatchedLsn) dispatchedLsn = ackLsn;
    if (rows.length > 0) {
      inFlight += 1;
      unapplied.push(batch.oldestCommitTime);
    }
    reportUnapplied();
    // The batch's roots are resolved and their documents read at once, while earlier batches are still being handed
    // to the writer: PostgreSQL builds documents while this process encodes and sends.
    // Documents are read from current rows only once every transaction of the batch is visible to the query.
    const built = failure || rows.length === 0 ? undefined : visible(xids).then(() => buildChanges(plan, routes, pool, rows));
    // Awaited by the apply stage, possibly after an earlier batch failed: keep that from being an unhandled rejection.
    built?.catch(() => undefined);
    // The apply stage hands this batch's actions to the writer after the previous batch's, then asks the writer
    // for a promise of exactly these actions (and earlier ones) being durable, without waiting for it.
    const applied = applying.then(async () => {
      if (failure || built === undefined) return { indexed: 0, deleted: 0, written: Promise.resolve() };
      const resolved = await built;
      await cover(batch.version);
      const result = await writeBuiltChanges(plan, pool, writer, resolved, batch.version, `lsn:${formatLsn(batch.version)}`, routing);
      const written = durable();
      // Awaited by the commit stage, possibly after it has rejected: keep that from being an unhandled rejection.
      written.catch(() => undefined);
      return { indexed: result.indexed, deleted: result.deleted, written };
    });
    applying = applied.then(
      () => undefined,
      (error: unknown) => fail(error),
    );
    committing = committing.then(async () => {
      try {
        if (failure) return;
        const { indexed, deleted, written } = await applied;
        await written;
        if (failure) return;
        commit(batch, indexed, deleted);
      } catch (error) {
        fail(error);
      } finally {
        if (rows.length > 0) {
          inFlight -= 1;
          unapplied.shift();
          reportUnapplied();
        }
        completed?.();
      }
    });
  };

  /** Waits until fewer than `limit` dispatched batches are incomplete; throws a stage's failure. */
  const drain = async (limit: number) => {
    while (inFlight >= limit && !failure) {
      await new Promise<void>((resolve) => (completed = resolve));
      completed = undefined;
    }
    if (failure) throw failure.error;
  };

  /** Hands on the batch in hand and waits until every dispatched batch is committed and its position saved. */
  const finish = async () => {
    dispatch();
    await committing;
    await checkpoints.idle();
    if (failure) throw failure.error;
  };

  /**
   * A committed streamed transaction: after the batches before it, its truncates, then its changes in batches, the
   * last one carrying the commit (and the acknowledgement of its end).
   */
  const applyStreamed = async (txn: CommittedTransaction, xid: number, commitLsn: bigint, endLsn: bigint, commitTime: Date, startLsn: bigint) => {
    let held: RowChange[] | undefined;
    // Everything after the commit took it from the buffer's open transactions is in the try: its spill file is
    // closed (and its disk space freed) whatever fails, the wait for its visibility included.
    try {
      dispatch();
      applyingSince = commitTime;
      reportUnapplied();
      await visible([xid]);
      replayFloor = startLsn;
      if (commitLsn > version) version = commitLsn;
      for (const truncate of txn.truncates) {
        await finish();
        await cover(version);
        await applyTruncate(plan, pool, writer, scanner, truncate, version, options.chunkSize, options.signal);
      }
      for await (const rows of txn.changes(options.batchSize)) {
        // A large transaction is stopped part-way on SIGTERM: nothing of it is acknowledged (replayFloor) until it ends.
        options.signal.throwIfAborted();
        if (held !== undefined) {
          changes = held;
          dispatch();
          await drain(maxInFlight);
        }
        held = rows;
      }
    } finally {
      await txn.close();
    }
    applyingSince = undefined;
    replayFloor = undefined;
    if (endLsn > lastCommitEnd) lastCommitEnd = endLsn;
    lastCommitTime = commitTime;
    oldestCommitTime ??= commitTime;
    transactions += 1;
    changes = held ?? [];
    dispatch();
    await drain(maxInFlight);
  };

  // The oldest unapplied work: a batch is applied once it is this old, even while messages keep coming.
  let batchStartedAt: number | undefined;
  try {
    for (;;) {
      if (failure) throw failure.error;
      if (batchStartedAt === undefined && (changes.length > 0 || ackable() > dispatchedLsn)) batchStartedAt = Date.now();
      if (options.signal.aborted) {
        await finish();
        return;
      }
      if (batchStartedAt !== undefined && Date.now() - batchStartedAt >= options.flushIntervalMs) {
        dispatch();
        await drain(maxInFlight);
        continue;
      }
      // A message already decoded is taken at once; only an empty buffer costs a timer and a race.
      let message = pendingNext === undefined ? readNow?.() : undefined;
      if (message === undefined) {
        pendingNext ??= iterator.next();
        const waitMs = batchStartedAt === undefined ? options.flushIntervalMs : Math.max(0, batchStartedAt + options.flushIntervalMs - Date.now());
        const wait = timeoutOrAbort(waitMs, options.signal, (w) => (wake = w));
        const next = await Promise.race([pendingNext, wait.promise]);
        wait.cancel();
        wake = undefined;
        if (next === 'woken' || next === 'aborted') continue;
        if (next === 'timeout') {
          dispatch();
          await drain(maxInFlight);
          if (!inTransaction && changes.length === 0 && inFlight === 0) await options.onIdle?.();
          continue;
        }
        pendingNext = undefined;
        if (next.done) {
          await finish();
          return;
        }
        message = next.value;
      }
      switch (message.type) {
        case 'begin':
          inTransaction = true;
          openCommitTime = message.commitTime;
          currentXid = message.xid;
          currentHasChanges = false;
          batchXids.push(message.xid);
          if (message.finalLsn > version) version = message.finalLsn;
          break;
        case 'change':
          if (streamXid !== undefined) {
            const spilling = streamed.add(streamXid, message.xid ?? streamXid, message.change);
            if (spilling !== undefined) await spilling;
          } else if (message.change.kind === 'truncate') {
            // Deletes or rebuilds everything: every earlier batch must be in the engine first.
            await finish();
            applyingSince = openCommitTime;
            reportUnapplied();
            if (currentXid !== undefined) await visible([currentXid]);
            await cover(version);
            await applyTruncate(plan, pool, writer, scanner, message.change, version, options.chunkSize, options.signal);
            applyingSince = undefined;
            reportUnapplied();
          } else {
            changes.push(message.change);
            currentHasChanges = true;
            if (changes.length === 1 && oldestCommitTime === undefined) reportUnapplied();
            if (changes.length >= options.batchSize) {
              dispatch();
              await drain(maxInFlight);
            }
          }
          break;
        case 'commit':
          inTransaction = false;
          // A transaction without changes (empty on PostgreSQL 14, a logical message, a TRUNCATE applied on its own)
          // leaves nothing for a document query to wait for. While a streamed transaction holds the acknowledgement
          // back, batches without changes are not dispatched, and a busy database's xids would pile up until the next
          // change.
          if (!currentHasChanges && batchXids[batchXids.length - 1] === currentXid) batchXids.pop();
          lastCommitEnd = message.endLsn;
          lastCommitTime = message.commitTime;
          if (oldestCommitTime === undefined) {
            oldestCommitTime = message.commitTime;
            reportUnapplied();
          }
          transactions += 1;
          if (changes.length >= options.batchSize) {
            dispatch();
            await drain(maxInFlight);
          }
          break;
        case 'keepalive':
          // Everything before walEnd was sent; with nothing in hand, nothing before it is ours to apply.
          if (!inTransaction && changes.length === 0 && message.walEnd > lastCommitEnd) lastCommitEnd = message.walEnd;
          break;
        case 'message':
          break;
        case 'stream-start':
          streamXid = message.xid;
          streamed.start(message.xid, message.lsn);
          break;
        case 'stream-stop':
          streamXid = undefined;
          break;
        case 'stream-abort':
          await streamed.abort(message.xid, message.subxid);
          break;
        case 'stream-commit': {
          const startLsn = streamed.startOf(message.xid) ?? 0n;
          const txn = streamed.commit(message.xid);
          if (txn === undefined) {
            // No change of it was streamed here (none survived PostgreSQL's filtering): only its position counts.
            if (message.endLsn > lastCommitEnd) lastCommitEnd = message.endLsn;
            break;
          }
          await applyStreamed(txn, message.xid, message.commitLsn, message.endLsn, message.commitTime, startLsn);
          break;
        }
      }
    }
  } finally {
    // On a failure, let the stages that are still running end before the caller closes the writer and the stream.
    await Promise.allSettled([applying, committing]);
    await checkpoints.idle();
    await streamed.discardAll();
  }
}

/**
 * Saves positions one save at a time, starting saves at least `minIntervalMs` apart: a position requested meanwhile
 * is saved next, together with (that is, superseded by) any later one. Positions only grow. `idle()` cuts a wait
 * short. After a failed save (reported to `onError`) nothing more is saved.
 */
export class LatestPositionSaver {
  private wanted = 0n;
  private saved = 0n;
  private running: Promise<void> | undefined;
  private failed = false;
  private lastStart = -Infinity;
  private hurry = false;
  private wake: (() => void) | undefined;

  constructor(
    private readonly save: (lsn: bigint) => Promise<void>,
    private readonly onError: (error: unknown) => void,
    private readonly minIntervalMs = 0,
  ) {}

  request(lsn: bigint): void {
    if (lsn > this.wanted) this.wanted = lsn;
    if (this.running === undefined && !this.failed && this.wanted > this.saved) this.running = this.run();
  }

  /** Saves what is wanted without waiting out the interval; resolves once no save is running or wanted (at once after a failure). */
  async idle(): Promise<void> {
    this.hurry = true;
    this.wake?.();
    try {
      while (this.running !== undefined) await this.running;
    } finally {
      this.hurry = false;
    }
  }

  private async run(): Promise<void> {
    try {
      while (this.wanted > this.saved) {
        const wait = this.lastStart + this.minIntervalMs - Date.now();
        if (wait > 0 && !this.hurry) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, wait);
            this.wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          this.wake = undefined;
        }
        const lsn = this.wanted;
        this.lastStart = Date.now();
        await this.save(lsn);
        this.saved = lsn;
      }
    } catch (error) {
      this.failed = true;
      this.onError(error);
    } finally {
      this.running = undefined;
    }
  }
}

/**
 * A promise settled by a timer, by `signal` or by the `wake` function handed to `onWake`, with a `cancel` that
 * removes all three. (Racing one long-lived "aborted" promise against every message would keep a reaction per
 * message alive until shutdown.)
 */
function timeoutOrAbort(ms: number, signal: AbortSignal, onWake: (wake: () => void) => void): { promise: Promise<'timeout' | 'aborted' | 'woken'>; cancel(): void } {
  let cancel = () => undefined as void;
  const promise = new Promise<'timeout' | 'aborted' | 'woken'>((resolve) => {
    if (signal.aborted) return resolve('aborted');
    const onAbort = () => resolve('aborted');
    const timer = setTimeout(() => resolve('timeout'), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    onWake(() => resolve('woken'));
    cancel = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
  });
  return { promise, cancel };
}

/**
 * TRUNCATE of the root table deletes every document; of a child table, rebuilds every root (their children
 * there are gone, and which roots had some is no longer known), and with a routing made of child fields also deletes
 * the copies left under routings that changed. Stopped part-way when `signal` aborts: the TRUNCATE is not
 * acknowledged, so it is applied again after a restart.
 */
async function applyTruncate(
  plan: EntryPlan,
  pool: pg.Pool,
  writer: ActionWriter,
  scanner: IndexScanner,
  change: TruncateChange,
  version: bigint,
  chunkSize: number,
  signal: AbortSignal,
): Promise<void> {
  const tables = new Set(change.relations.map((r) => tableKey(r.schema, r.table)));
  const position = `lsn:${formatLsn(version)}:truncate`;
  if (tables.has(tableKey(plan.root.schema, plan.root.table))) {
    // A page of the scan at a time, each stored copy under its own routing. A scroll sees only refreshed documents:
    // one written since the last refresh would otherwise outlive the TRUNCATE.
    await scanner.refresh(plan.index);
    for await (const copy of scanner.documents(plan.index)) {
      signal.throwIfAborted();
      await writer.add({ op: 'delete', index: plan.index, id: copy.id, version, position, ...(copy.routing !== undefined ? { routing: copy.routing } : {}) });
    }
    await writer.flush();
    return;
  }
  if (subtreeTables(plan.root).some((t) => tables.has(t))) {
    await runFullSync(plan, pool, writer, { chunkSize, concurrency: 1, version, signal });
    // A routing value made of this child's fields may have changed for any root: the rebuild wrote each document under
    // its new routing, and a copy left under the old one (on another shard) would stay beside it for good.
    if ([...routingSourceTables(plan)].some((t) => tables.has(t))) {
      await writer.flush();
      await deleteOrphans(plan, pool, writer, scanner, version, position, signal);
    }
  }
}
