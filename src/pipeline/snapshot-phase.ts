import type pg from 'pg';
import type { Checkpoint, CheckpointStore, SnapshotProgress } from '../checkpoint/checkpoint-store.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import { walHandedOut } from '../source/postgres/database-origin.js';
import { formatLsn, parseLsn } from '../source/postgres/lsn.js';
import { scanOrder } from '../transform/document-query.js';
import { qualified, quoteIdent, quoteLiteral } from '../transform/sql.js';
import { AppError } from '../errors/app-error.js';
import { historyChanged } from './database-history.js';
import { runFullSync, type ActionWriter, type KeyRange } from './full-sync.js';
import { recordSnapshotProgress, startSnapshotProgress, type IndexStatus } from './index-status.js';

export interface SnapshotPhaseOptions {
  name: string;
  chunkSize: number;
  concurrency: number;
  /** Exported snapshot of a slot created just now; absent when resuming after a restart. */
  snapshotName?: string;
  signal?: AbortSignal;
  /** Receives the estimate of rows to read and the documents written so far. */
  status?: IndexStatus;
  onProgress?: (documents: number) => void;
  /** The writer's `stale` count before the sync's first write to this generation in this attempt (default 0). */
  staleBefore?: number;
}

/**
 * The initial load of one index: every root, chunk by chunk, written with the slot's consistent LSN as
 * version. After each chunk the writer is flushed and the longest run of finished chunks is checkpointed,
 * so a crash resumes after the last durable chunk instead of starting over. Chunks read after a restart see
 * a newer state than the slot's start; the stream replays every change since then, so that converges.
 *
 * No version written from this server's history is past the WAL it has handed out, so the engine refusing a snapshot
 * write for a document with such a version proves another history: a database restored from a dump or moved to
 * another cluster, then the checkpoint deleted or reset, which leaves no recorded origin to compare. The snapshot
 * then stops, marking its checkpoint `diverged`, and the lifecycle builds a new generation (SRC_HISTORY_CHANGED).
 */
export async function runSnapshotPhase(
  plan: EntryPlan,
  pool: pg.Pool,
  writer: ActionWriter,
  store: CheckpointStore,
  checkpoint: Checkpoint,
  options: SnapshotPhaseOptions,
): Promise<Checkpoint> {
  const resumeAfter = resumePoint(plan, checkpoint.snapshot!);
  const snapshot: SnapshotProgress = { ...checkpoint.snapshot!, keyOrder: scanOrder(plan) };
  let doneUpTo = resumeAfter;
  const version = parseLsn(snapshot.consistentLsn);
  const started: KeyRange[] = [];
  const done = new Set<KeyRange>();
  let current: Checkpoint = { ...checkpoint, snapshot };
  let documents = 0;
  /** Durable prefixes found so far, and the newest of them saved (progress only moves forward). */
  let prefixesTaken = 0;
  let prefixesSaved = 0;
  let staleSeen = options.staleBefore ?? 0;
  const refuseNewerVersions = async () => {
    const stats = writer.stats?.();
    if (stats === undefined || stats.stale <= staleSeen) return;
    staleSeen = stats.stale;
    // Documents written from this history after the slot's position (`sluice verify --repair` writes at the current
    // WAL position) rightly refuse the snapshot's older writes; only versions beyond all WAL this server has handed out
    // prove another history. Without the version in the engine's message, any refusal counts.
    const newest = stats.newestRefusingVersion;
    const handedOut = newest === undefined ? undefined : await walHandedOut(pool);
    if (newest !== undefined && handedOut !== undefined && newest <= handedOut) return;
    const reason =
      `the engine refused ${stats.stale - (options.staleBefore ?? 0)} of this snapshot's writes as older than documents already in the index` +
      (newest !== undefined && handedOut !== undefined ? `, with versions up to ${formatLsn(newest)}, past all WAL of this server (${formatLsn(handedOut)})` : '') +
      `: they were written from another history of the database (restored from a dump, or on another cluster) before its checkpoint was removed`;
    current = { ...current, diverged: reason, updatedAt: new Date().toISOString() };
    await store.save(options.name, current);
    throw historyChanged(plan.index, reason);
  };
  await refuseNullKeys(plan, pool);
  if (options.status !== undefined) startSnapshotProgress(options.status, await estimateRootRows(plan, pool, resumeAfter));
  await runFullSync(plan, pool, writer, {
    chunkSize: options.chunkSize,
    concurrency: options.concurrency,
    snapshotName: options.snapshotName,
    resumeAfter,
    version,
    signal: options.signal,
    onChunkStarted: (range) => started.push(range),
    onChunkWritten: async (range, count) => {
      documents += count;
      if (options.status !== undefined) recordSnapshotProgress(options.status, documents);
      options.onProgress?.(documents);
      done.add(range);
      let prefix: KeyRange | undefined;
      // Finished chunks leave both lists as the durable prefix grows: memory holds the chunks in flight, not the table's.
      while (started.length > 0 && done.has(started[0]!)) {
        prefix = started.shift()!;
        done.delete(prefix);
      }
      if (!prefix) return;
      // Chunks finish side by side: a later prefix may be flushed and saved while this one still waits for its flush.
      // Saving this one after it would move the progress back (chunks redone after a crash, nothing lost).
      const taken = ++prefixesTaken;
      await writer.flush();
      await refuseNewerVersions();
      if (taken < prefixesSaved) return;
      prefixesSaved = taken;
      doneUpTo = prefix.upTo ?? doneUpTo;
      current = { ...current, snapshot: { ...progressUpTo(plan, snapshot, doneUpTo), complete: false }, updatedAt: new Date().toISOString() };
      await store.save(options.name, current);
    },
  });
  await writer.flush();
  await refuseNewerVersions();
  current = { ...current, snapshot: { ...progressUpTo(plan, snapshot, doneUpTo), complete: true, snapshotName: undefined }, updatedAt: new Date().toISOString() };
  await store.save(options.name, current);
  return current;
}

/**
 * The key after which a snapshot resumes: its progress, when it was made in the order this version scans; otherwise
 * none, and the snapshot starts again from the first key (documents rewritten at the same version, harmlessly).
 * Chunks done in another column order do not cover "every key up to" that key in this one.
 */
export function resumePoint(plan: EntryPlan, progress: SnapshotProgress): string[] | undefined {
  const order = scanOrder(plan).join();
  if (scansAlphabetically(plan)) return (progress.keyOrder ?? plan.root.primaryKey).join() === order ? progress.doneUpTo : undefined;
  return progress.keyOrder?.join() === order ? progress.doneInKeyOrder : undefined;
}

/**
 * Progress up to `upTo`. Scanned in alphabetical column order it is `doneUpTo`, as versions before `keyOrder`
 * stored it; in another order it is `doneInKeyOrder`, which those versions do not read: one of them taking the
 * index over mid-snapshot starts it again instead of resuming from a key that means another set of keys to it.
 */
function progressUpTo(plan: EntryPlan, snapshot: SnapshotProgress, upTo: string[] | undefined): SnapshotProgress {
  const { doneUpTo: _alphabetical, doneInKeyOrder: _inKeyOrder, ...rest } = snapshot;
  if (upTo === undefined) return rest;
  return scansAlphabetically(plan) ? { ...rest, doneUpTo: upTo } : { ...rest, doneInKeyOrder: upTo };
}

/** The key is scanned in alphabetical column order (one column, or an index in that order), as older versions did. */
function scansAlphabetically(plan: EntryPlan): boolean {
  return scanOrder(plan).join() === plan.root.primaryKey.join();
}

/**
 * A root read through `primary_key` (a view, a table without a primary key) may have rows whose key is NULL: such a
 * row has no document id, and key ranges compare it with nothing, so the snapshot would skip it without a word.
 */
async function refuseNullKeys(plan: EntryPlan, pool: pg.Pool): Promise<void> {
  const root = plan.root;
  if (root.declaredKey !== true) return;
  const anyNull = root.primaryKey.map((c) => `n.${quoteIdent(c)} IS NULL`).join(' OR ');
  const { rows } = await pool.query(`SELECT 1 FROM ${qualified(root.schema, root.table)} AS n WHERE ${anyNull} LIMIT 1`);
  if (rows.length === 0) return;
  throw new AppError(
    'SCH_INVALID',
    `${root.location}.primary_key: "${root.schema}.${root.table}" has rows whose primary_key (${root.primaryKey.join(', ')}) is NULL: ` +
      'a root row needs a key for its document id. Choose columns that are never NULL, or leave those rows out of the view',
  );
}

/** Up to this many rows are counted when the table has no statistics; past it, the planner's estimate is used. */
export const ROW_COUNT_LIMIT = 100_000;

/**
 * About how many root rows a snapshot will read (after `resumeAfter`, when resuming), cheaply: the table's
 * statistics scaled to its current size, as the planner does; without statistics (never analyzed, a view) a
 * count stopped at ROW_COUNT_LIMIT rows, then the planner's estimate. Undefined when PostgreSQL cannot say:
 * the estimate only feeds progress reports, so it never fails the sync.
 */
export async function estimateRootRows(plan: EntryPlan, pool: pg.Pool, resumeAfter?: string[]): Promise<number | undefined> {
  const table = qualified(plan.root.schema, plan.root.table);
  try {
    if (resumeAfter !== undefined) return await plannerRows(pool, `SELECT 1 FROM ${table} AS n WHERE ${afterKey(plan, resumeAfter)}`);
    const { rows } = await pool.query<{ reltuples: number; relpages: number; pages: number }>(
      `SELECT c.reltuples::float8 AS reltuples, c.relpages::float8 AS relpages,
              (pg_relation_size(c.oid) / current_setting('block_size')::int)::float8 AS pages
         FROM pg_class c WHERE c.oid = $1::regclass`,
      [table],
    );
    const stats = rows[0];
    if (stats !== undefined && stats.reltuples > 0) {
      return Math.round(stats.relpages > 0 ? (stats.reltuples / stats.relpages) * stats.pages : stats.reltuples);
    }
    const counted = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM (SELECT 1 FROM ${table} LIMIT ${String(ROW_COUNT_LIMIT + 1)}) AS s`);
    const n = counted.rows[0]?.n ?? 0;
    if (n <= ROW_COUNT_LIMIT) return n;
    return Math.max(n, (await plannerRows(pool, `SELECT 1 FROM ${table}`)) ?? 0);
  } catch {
    return undefined;
  }
}

async function plannerRows(pool: pg.Pool, select: string): Promise<number | undefined> {
  const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan?: { 'Plan Rows'?: number } }] }>(`EXPLAIN (FORMAT JSON) ${select}`);
  const planRows = rows[0]?.['QUERY PLAN'][0].Plan?.['Plan Rows'];
  return typeof planRows === 'number' ? Math.round(planRows) : undefined;
}

/** The same order as the chunk boundaries: the key columns, compared as a row. Literals, because EXPLAIN takes no parameters here. */
function afterKey(plan: EntryPlan, after: string[]): string {
  const columns = scanOrder(plan);
  const literals = columns.map((c) => `${quoteLiteral(after[plan.root.primaryKey.indexOf(c)] ?? '')}::${plan.root.primaryKeyTypes[c] ?? 'text'}`);
  return `(${columns.map((c) => `n.${quoteIdent(c)}`).join(', ')}) > (${literals.join(', ')})`;
}
