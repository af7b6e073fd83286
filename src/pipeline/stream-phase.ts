import type pg from 'pg';
import type { Checkpoint, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import type { ReplicationStream, RowChange, StreamMessage, TruncateChange } from '../source/change-source.js';
import { formatLsn } from '../source/postgres/lsn.js';
import { tableKey, type ChangeRoutes } from '../transform/change-routes.js';
import { applyRowChanges, type IndexScanner } from './change-applier.js';
import { runFullSync, type ActionWriter } from './full-sync.js';

export interface StreamPhaseOptions {
  name: string;
  /** Row changes per batch (PGSYNC_BATCH_SIZE). */
  batchSize: number;
  /** A partial batch is applied after this long without a new message (PGSYNC_FLUSH_INTERVAL). */
  flushIntervalMs: number;
  chunkSize: number;
  signal: AbortSignal;
  /** After each applied batch: its size, and the commit times of its oldest and newest transaction (for lag). */
  onBatch?: (stats: { changes: number; transactions: number; indexed: number; deleted: number; lsn: bigint; oldestCommitTime?: Date; newestCommitTime?: Date }) => void;
  onIdle?: () => Promise<void>;
}

/**
 * Applies the replication stream to the index, batch by batch, in LSN order. A batch's LSN is acknowledged
 * to PostgreSQL only after its documents are durable in the engine and the checkpoint is stored, and only up to
 * the last complete transaction. Returns when `signal` aborts (after finishing the batch in hand).
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
  let pendingNext: Promise<IteratorResult<StreamMessage>> | undefined;
  let changes: RowChange[] = [];
  let version = 0n;
  let inTransaction = false;
  let lastCommitEnd = 0n;
  let lastCommitTime: Date | undefined;
  let oldestCommitTime: Date | undefined;
  let transactions = 0;
  let acknowledged = 0n;
  let current = checkpoint;

  const flush = async () => {
    batchStartedAt = undefined;
    if (changes.length > 0) {
      const batch = changes;
      changes = [];
      const result = await applyRowChanges(plan, routes, pool, writer, batch, version, `lsn:${formatLsn(version)}`, scanner);
      await writer.flush();
      options.onBatch?.({ changes: batch.length, transactions, indexed: result.indexed, deleted: result.deleted, lsn: version, oldestCommitTime, newestCommitTime: lastCommitTime });
    }
    oldestCommitTime = undefined;
    transactions = 0;
    if (lastCommitEnd > acknowledged) {
      current = { ...current, lsn: formatLsn(lastCommitEnd), updatedAt: new Date().toISOString() };
      await store.save(options.name, current);
      stream.acknowledge(lastCommitEnd);
      acknowledged = lastCommitEnd;
    }
  };

  // The oldest unapplied work: a batch is applied once it is this old, even while messages keep coming.
  let batchStartedAt: number | undefined;
  for (;;) {
    pendingNext ??= iterator.next();
    if (batchStartedAt === undefined && (changes.length > 0 || lastCommitEnd > acknowledged)) batchStartedAt = Date.now();
    const waitMs = batchStartedAt === undefined ? options.flushIntervalMs : Math.max(0, batchStartedAt + options.flushIntervalMs - Date.now());
    const wait = timeoutOrAbort(waitMs, options.signal);
    const next = await Promise.race([pendingNext, wait.promise]);
    wait.cancel();
    if (next === 'aborted') {
      await flush();
      return;
    }
    if (next === 'timeout') {
      await flush();
      batchStartedAt = undefined;
      if (!inTransaction && changes.length === 0) await options.onIdle?.();
      continue;
    }
    pendingNext = undefined;
    if (next.done) {
      await flush();
      return;
    }
    const message = next.value;
    switch (message.type) {
      case 'begin':
        inTransaction = true;
        if (message.finalLsn > version) version = message.finalLsn;
        break;
      case 'change':
        if (message.change.kind === 'truncate') {
          await flush();
          await applyTruncate(plan, pool, writer, scanner, message.change, version, options.chunkSize);
        } else {
          changes.push(message.change);
          if (changes.length >= options.batchSize) await flush();
        }
        break;
      case 'commit':
        inTransaction = false;
        lastCommitEnd = message.endLsn;
        lastCommitTime = message.commitTime;
        oldestCommitTime ??= message.commitTime;
        transactions += 1;
        if (changes.length >= options.batchSize) await flush();
        break;
      case 'keepalive':
        // Everything before walEnd was sent; with nothing in hand, nothing before it is ours to apply.
        if (!inTransaction && changes.length === 0 && message.walEnd > lastCommitEnd) lastCommitEnd = message.walEnd;
        break;
      case 'message':
        break;
    }
  }
}

/**
 * A promise settled by a timer or by `signal`, with a `cancel` that removes both. (Racing one long-lived
 * "aborted" promise against every message would keep a reaction per message alive until shutdown.)
 */
function timeoutOrAbort(ms: number, signal: AbortSignal): { promise: Promise<'timeout' | 'aborted'>; cancel(): void } {
  let cancel = () => undefined as void;
  const promise = new Promise<'timeout' | 'aborted'>((resolve) => {
    if (signal.aborted) return resolve('aborted');
    const onAbort = () => resolve('aborted');
    const timer = setTimeout(() => resolve('timeout'), ms);
    signal.addEventListener('abort', onAbort, { once: true });
    cancel = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    };
  });
  return { promise, cancel };
}

/**
 * TRUNCATE of the root table deletes every document; of a child table, rebuilds every root (their children
 * there are gone, and which roots had some is no longer known).
 */
async function applyTruncate(plan: EntryPlan, pool: pg.Pool, writer: ActionWriter, scanner: IndexScanner, change: TruncateChange, version: bigint, chunkSize: number): Promise<void> {
  const tables = new Set(change.relations.map((r) => tableKey(r.schema, r.table)));
  const position = `lsn:${formatLsn(version)}:truncate`;
  if (tables.has(tableKey(plan.root.schema, plan.root.table))) {
    const ids: string[] = [];
    for await (const id of scanner.documentIds(plan.index)) ids.push(id);
    const routing = plan.routing === undefined ? new Map<string, string>() : await scanner.routingOf(plan.index, ids);
    for (const id of ids) await writer.add({ op: 'delete', index: plan.index, id, version, position, ...(routing.has(id) ? { routing: routing.get(id)! } : {}) });
    await writer.flush();
    return;
  }
  if (treeTables(plan).some((t) => tables.has(t))) {
    await runFullSync(plan, pool, writer, { chunkSize, concurrency: 1, version });
  }
}

function treeTables(plan: EntryPlan): string[] {
  const out: string[] = [];
  const visit = (node: EntryPlan['root']) => {
    out.push(tableKey(node.schema, node.table));
    if (node.relationship?.through) out.push(tableKey(node.relationship.through.schema, node.relationship.through.table));
    node.children.forEach(visit);
  };
  visit(plan.root);
  return out;
}
