import type pg from 'pg';
import type { Checkpoint, CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import { parseLsn } from '../source/postgres/lsn.js';
import { runFullSync, type ActionWriter, type KeyRange } from './full-sync.js';

export interface SnapshotPhaseOptions {
  name: string;
  chunkSize: number;
  concurrency: number;
  /** Exported snapshot of a slot created just now; absent when resuming after a restart. */
  snapshotName?: string;
  signal?: AbortSignal;
  onProgress?: (documents: number) => void;
}

/**
 * The initial load of one index: every root, chunk by chunk, written with the slot's consistent LSN as
 * version. After each chunk the writer is flushed and the longest run of finished chunks is checkpointed,
 * so a crash resumes after the last durable chunk instead of starting over. Chunks read after a restart see
 * a newer state than the slot's start; the stream replays every change since then, so that converges.
 */
export async function runSnapshotPhase(
  plan: EntryPlan,
  pool: pg.Pool,
  writer: ActionWriter,
  store: CheckpointStore,
  checkpoint: Checkpoint,
  options: SnapshotPhaseOptions,
): Promise<Checkpoint> {
  const snapshot = checkpoint.snapshot!;
  const version = parseLsn(snapshot.consistentLsn);
  const started: KeyRange[] = [];
  const done = new Set<KeyRange>();
  let current = checkpoint;
  let documents = 0;
  await runFullSync(plan, pool, writer, {
    chunkSize: options.chunkSize,
    concurrency: options.concurrency,
    snapshotName: options.snapshotName,
    resumeAfter: snapshot.doneUpTo,
    version,
    signal: options.signal,
    onChunkStarted: (range) => started.push(range),
    onChunkWritten: async (range, count) => {
      documents += count;
      options.onProgress?.(documents);
      done.add(range);
      let prefix: KeyRange | undefined;
      while (started.length > 0 && done.has(started[0]!)) prefix = started.shift();
      if (!prefix) return;
      await writer.flush();
      current = { ...current, snapshot: { ...snapshot, doneUpTo: prefix.upTo ?? current.snapshot?.doneUpTo, complete: false }, updatedAt: new Date().toISOString() };
      await store.save(options.name, current);
    },
  });
  current = { ...current, snapshot: { ...snapshot, doneUpTo: current.snapshot?.doneUpTo, complete: true, snapshotName: undefined }, updatedAt: new Date().toISOString() };
  await store.save(options.name, current);
  return current;
}
