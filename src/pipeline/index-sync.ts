import type pg from 'pg';
import type { Checkpoint, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { AppError, toError } from '../errors/app-error.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import type { ChangeSource, CreatedSlot } from '../source/change-source.js';
import { formatLsn, parseLsn } from '../source/postgres/lsn.js';
import { columnSelection, compileChangeRoutes } from '../transform/change-routes.js';
import { backoffDelayMs, sleep } from '../util/backoff.js';
import type { ActionWriter } from './full-sync.js';
import { deleteOrphans, type IndexScanner } from './change-applier.js';
import { checkHistory, historyChanged } from './database-history.js';
import { resumePoint, runSnapshotPhase } from './snapshot-phase.js';
import { newIndexStatus, type IndexStatus } from './index-status.js';
import { runStreamPhase } from './stream-phase.js';

export interface IndexSyncLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface IndexTarget extends IndexScanner {
  /** Creates `plan.index` unless it exists; true when it was created now. */
  ensureIndex(plan: EntryPlan): Promise<boolean>;
  /** A writer for one attempt; once `stop` aborts it sends nothing again after a failed request (SIGTERM). */
  writer(stop?: AbortSignal): ActionWriter;
}

export interface IndexSyncDeps {
  plan: EntryPlan;
  /** Slot and checkpoint name: `<database>_<index>`. */
  name: string;
  publication: string;
  /** The stream's queries: document queries of batches, visibility, slot state. Short, and waited for by every change. */
  pool: pg.Pool;
  /**
   * Snapshot chunk queries and the start-over sweep, which run for seconds each. Kept apart from `pool` so that a
   * snapshot (another index's, or a rebuild's beside its live generation) does not hold the stream's changes back.
   * Defaults to `pool`.
   */
  snapshotPool?: pg.Pool;
  source: ChangeSource;
  target: IndexTarget;
  store: CheckpointStore;
  logger: IndexSyncLogger;
  /** Updated in place as the sync goes; the status surfaces read it. */
  status?: IndexStatus;
  /** Called with the code of every error that interrupted the sync (for the error counter). */
  onError?: (code: string) => void;
}

export interface IndexSyncOptions {
  batchSize: number;
  flushIntervalMs: number;
  chunkSize: number;
  concurrency: number;
  heartbeatIntervalMs: number;
  retryInitialMs: number;
  retryMaxMs: number;
  signal: AbortSignal;
}

/** Error codes after which waiting and starting again can help (a dependency is away); others stop the process. */
// CKP_CORRUPT too: one index's unreadable checkpoint must not stop the others, nor, the process restarted, make a crash
// loop of every process sharing the store. The index waits, showing the error, until the record is repaired or deleted.
const RETRYABLE = new Set(['SRC_CONNECT', 'SRC_QUERY', 'SRC_SYNC_STANDBY', 'SNK_CONNECT', 'SNK_UNAVAILABLE', 'CKP_UNAVAILABLE', 'CKP_CORRUPT', 'SRC_SLOT_LOST', 'SRC_SLOT_MISSING', 'CKP_NOT_OWNER']);

export function isRetryable(error: unknown): boolean {
  if (error instanceof AppError) {
    // The engine refusing the credentials (revoked, rotated) or the certificate does not pass by waiting; stopped,
    // the process is restarted with the new settings, as at start-up, where these errors are not waited out either.
    const { status, retryable } = error.details as { status?: unknown; retryable?: unknown };
    if (error.code === 'SNK_CONNECT' && (status === 401 || status === 403 || retryable === false)) return false;
    // Refused by the store's access rules (a Redis ACL): a grant is missing, which waiting does not bring.
    if (error.code === 'CKP_UNAVAILABLE' && retryable === false) return false;
    return RETRYABLE.has(error.code);
  }
  const code = (error as { code?: string }).code;
  // Driver-level network errors, PostgreSQL shutdown/connection classes (57P, 08), a query cancelled (by an
  // administrator, 57014) and a lock not granted in lock_timeout (55P03): all pass by trying again.
  return typeof code === 'string' && (/^E[A-Z]+$/.test(code) || code.startsWith('57P') || code.startsWith('08') || code === '57014' || code === '55P03');
}

/**
 * Keeps one index in sync until `signal` aborts: first start (slot with exported snapshot, then the snapshot),
 * resume of an unfinished snapshot, then streaming. A dependency going away is waited for with backoff; a lost
 * slot or a forgotten checkpoint starts the index over.
 */
export async function runIndexSync(deps: IndexSyncDeps, options: IndexSyncOptions): Promise<void> {
  const { logger, name } = deps;
  deps.status ??= newIndexStatus(deps.plan.index);
  let attempt = 0;
  while (!options.signal.aborted) {
    try {
      await runOnce(deps, options, () => (attempt = 0));
      deps.status.phase = 'stopped';
      return;
    } catch (error) {
      if (options.signal.aborted) return;
      const code = error instanceof AppError ? error.code : (error as { code?: string }).code;
      deps.status.lastError = { code: code ?? 'UNKNOWN', message: toError(error).message, at: new Date().toISOString() };
      deps.onError?.(code ?? 'UNKNOWN');
      if (!isRetryable(error)) throw error;
      deps.status.phase = 'waiting';
      if (code === 'SRC_SLOT_LOST') {
        logger.error({ generation: deps.plan.index, slot: name }, 'replication slot was invalidated (WAL it needed is gone): re-syncing the index from a fresh snapshot');
        await deps.store.remove(name).catch(() => undefined);
      }
      const delay = backoffDelayMs(attempt++, options.retryInitialMs, options.retryMaxMs);
      logger.warn({ generation: deps.plan.index, code, err: toError(error).message, retryInMs: delay }, 'sync interrupted; retrying');
      await sleep(delay, options.signal).catch(() => undefined);
    }
  }
}

async function runOnce(deps: IndexSyncDeps, options: IndexSyncOptions, onProgress: () => void): Promise<void> {
  const writer = deps.target.writer(options.signal);
  try {
    await runWith(writer, deps, options, onProgress);
  } finally {
    // A failed attempt's requests still in flight (or retrying) must not land after the next attempt's writes.
    await writer.close?.();
  }
}

async function runWith(writer: ActionWriter, deps: IndexSyncDeps, options: IndexSyncOptions, onProgress: () => void): Promise<void> {
  const { plan, name, source, store, logger, target } = deps;
  const status = deps.status!;
  let checkpoint = await store.load(name);
  const staleBefore = writer.stats?.().stale ?? 0;
  // Every attempt: a reconnect may reach a server promoted or restored meanwhile. The lifecycle builds a new generation.
  const history = await checkHistory(source, checkpoint);
  if (history.diverged !== undefined) throw historyChanged(plan.index, history.diverged);
  const slot = await source.slotState(name);
  let created: CreatedSlot | undefined;
  // Created just now although the checkpoint has progress: the index was deleted under us, its documents are gone.
  const recreated = (await target.ensureIndex(plan)) && checkpoint?.snapshot !== undefined;
  // Sluice acknowledges a position only after storing it, so its own slot is never ahead of its checkpoint. One that is
  // was made by someone else after ours was lost (`sluice bootstrap` or a DBA recreating it, a restored or failed-over
  // server): it starts after changes the index never got, which only a new snapshot brings back.
  const stored = checkpoint?.snapshot ? maxLsn(checkpoint.lsn, checkpoint.snapshot.consistentLsn) : undefined;
  const foreign = slot.exists && stored !== undefined && slot.confirmedLsn !== undefined && slot.confirmedLsn > stored;
  if (!checkpoint?.snapshot || !slot.exists || slot.invalidated || recreated || foreign) {
    if (slot.exists) {
      if (foreign) {
        logger.warn(
          { generation: plan.index, slot: name, reason: 'slot ahead of checkpoint', slotLsn: formatLsn(slot.confirmedLsn!), checkpointLsn: formatLsn(stored!) },
          'starting the index over: the replication slot starts after the checkpoint, so it is not the one the checkpoint was taken from (recreated after it was lost?)',
        );
      } else if (recreated) {
        logger.warn({ generation: plan.index, slot: name, reason: 'index missing' }, 'starting the index over: the index was missing from the engine and was created empty');
      } else if (slot.invalidated) {
        logger.warn({ generation: plan.index, slot: name, reason: 'slot invalidated' }, 'starting the index over: the replication slot was invalidated (it fell behind max_slot_wal_keep_size)');
      } else {
        // The usual first start after `sluice bootstrap`, or a checkpoint deleted on purpose (the seed runbook).
        logger.info({ generation: plan.index, slot: name, reason: 'no checkpoint' }, 'starting the index over: replacing its replication slot with one that exports a snapshot');
      }
      // Stopped, or the lease lost, meanwhile: the slot may be a new owner's by now.
      options.signal.throwIfAborted();
      await source.dropSlot(name);
    } else if (checkpoint?.snapshot) {
      logger.warn({ generation: plan.index, slot: name }, 'replication slot is missing: starting the index over');
    }
    // The old checkpoint (snapshot complete) must not survive next to the new slot if we crash before saving the new one.
    if (checkpoint) await store.remove(name);
    created = await source.createSlot(name, options.signal);
    try {
      // Before the new checkpoint exists, so a crash meanwhile starts over (and sweeps) again.
      const removed = await deleteOrphans(plan, deps.snapshotPool ?? deps.pool, writer, target, created.consistentLsn, `orphan:${formatLsn(created.consistentLsn)}`, options.signal);
      if (removed.documents > 0) logger.warn({ generation: plan.index, documents: removed.documents }, 'deleted documents whose rows are gone (changes the old slot still held)');
      if (removed.misrouted > 0) {
        logger.warn({ generation: plan.index, copies: removed.misrouted }, 'deleted copies stored under a routing their rows no longer have (routing changes the old slot still held)');
      }
      checkpoint = { slot: name, snapshot: { consistentLsn: formatLsn(created.consistentLsn), complete: false }, origin: history.origin, updatedAt: new Date().toISOString() };
      await store.save(name, checkpoint);
    } catch (error) {
      await created.release();
      throw error;
    }
    logger.info({ generation: plan.index, slot: name, lsn: checkpoint.snapshot!.consistentLsn }, 'replication slot created');
  }
  // Recorded with the next save: a timeline change the positions survived (a clean switchover) is the new reference.
  checkpoint = { ...checkpoint, origin: history.origin };
  try {
    if (!checkpoint.snapshot?.complete) {
      status.phase = 'snapshot';
      const resumeAfter = checkpoint.snapshot ? resumePoint(plan, checkpoint.snapshot) : undefined;
      logger.info({ generation: plan.index, resumeAfter }, resumeAfter ? 'resuming snapshot' : 'snapshot started');
      checkpoint = await runSnapshotPhase(plan, deps.snapshotPool ?? deps.pool, writer, store, checkpoint, {
        name,
        chunkSize: options.chunkSize,
        concurrency: options.concurrency,
        snapshotName: created?.snapshotName,
        signal: options.signal,
        staleBefore,
        status,
        onProgress: () => onProgress(),
      });
      logger.info({ generation: plan.index }, 'snapshot finished; streaming');
    }
  } finally {
    await created?.release();
  }
  if (options.signal.aborted) return;
  const routes = compileChangeRoutes(plan);
  // Only the values that lead to roots, and those compared to skip irrelevant updates, are decoded.
  const stream = await source.stream({ slot: name, publication: deps.publication, startLsn: 0n, columns: columnSelection(routes) });
  let lastHeartbeat = Date.now();
  status.phase = 'streaming';
  // Unknown until this stream applies a batch or idles: a lag left from an earlier sync (one before a new snapshot)
  // would make a generation that has not caught up look as if it had.
  status.lagSeconds = undefined;
  const stopPolling = new AbortController();
  const polling = pollSlot(deps, status, Math.max(100, options.heartbeatIntervalMs / 2), stopPolling.signal);
  let failed = false;
  try {
    await runStreamPhase(plan, routes, deps.pool, stream, writer, target, store, checkpoint, {
      name,
      batchSize: options.batchSize,
      flushIntervalMs: options.flushIntervalMs,
      chunkSize: options.chunkSize,
      signal: options.signal,
      onBatch: (stats) => {
        onProgress();
        status.changesApplied += stats.changes;
        status.documentsIndexed += stats.indexed;
        status.documentsDeleted += stats.deleted;
        status.lastAppliedLsn = formatLsn(stats.lsn);
        if (stats.newestCommitTime) {
          status.lastCommitTime = stats.newestCommitTime.toISOString();
          status.lagSeconds = Math.max(0, (Date.now() - stats.newestCommitTime.getTime()) / 1000);
        }
        logger.info({ generation: plan.index, ...stats, lsn: formatLsn(stats.lsn) }, 'changes applied');
      },
      onInvisible: (xids, waitedMs) =>
        logger.warn(
          { generation: plan.index, xids, waitedSeconds: Math.round(waitedMs / 1000) },
          'waiting for committed transactions to become visible before reading their documents (synchronous replication waiting for a standby?)',
        ),
      onUnapplied: (oldest) => {
        if (oldest === undefined) delete status.unappliedSince;
        else status.unappliedSince = oldest.toISOString();
      },
      onIdle: async () => {
        if (Date.now() - lastHeartbeat < options.heartbeatIntervalMs) return;
        lastHeartbeat = Date.now();
        status.lagSeconds = 0;
        await source.emitHeartbeat();
      },
    });
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    delete status.unappliedSince;
    stopPolling.abort();
    await polling;
    // Closing a stream that failed can fail too (its walsender not gone yet): the first error is the one to report.
    await stream.close().catch((error: unknown) => {
      if (!failed) throw error;
    });
  }
}

/**
 * Reads the slot's retained WAL and distance from the server every half heartbeat interval while streaming,
 * busy or idle: a sync that falls behind or stalls must show it, not the figures of its last idle moment.
 */
async function pollSlot(deps: IndexSyncDeps, status: IndexStatus, intervalMs: number, signal: AbortSignal): Promise<void> {
  const { source, name, logger, plan } = deps;
  while (!signal.aborted) {
    await sleep(intervalMs, signal).catch(() => undefined);
    if (signal.aborted) return;
    try {
      const slot = await source.slotState(name);
      if (slot.retainedBytes !== undefined) status.retainedWalBytes = Number(slot.retainedBytes);
      if (slot.lagBytes !== undefined) status.lagBytes = Number(slot.lagBytes);
      if (slot.atRisk && !status.slotAtRisk) {
        logger.warn({ generation: plan.index, slot: name, retainedWalBytes: status.retainedWalBytes }, 'replication slot is past max_wal_size and will be invalidated at max_slot_wal_keep_size: Sluice is falling behind');
      }
      status.slotAtRisk = slot.atRisk;
    } catch (error) {
      // The stream meets the same trouble and handles it; the figures just stay as they were.
      logger.warn({ generation: plan.index, slot: name, err: toError(error).message }, 'could not read the replication slot state');
    }
  }
}

export type { Checkpoint };

/** The later of a checkpoint's positions (text LSNs); an absent one counts as 0/0. */
function maxLsn(...positions: Array<string | undefined>): bigint {
  return positions.reduce((max, lsn) => {
    const value = lsn === undefined ? 0n : parseLsn(lsn);
    return value > max ? value : max;
  }, 0n);
}
