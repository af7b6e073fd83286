import type pg from 'pg';
import type { EntryPlan } from '../schema/sync-plan.js';
import type { BulkAction } from '../sink/document-sink.js';
import { buildDocumentQuery, buildKeyBoundaryQuery, storedRouting } from '../transform/document-query.js';
import { quoteLiteral } from '../transform/sql.js';

/** Where the documents go: the bulk writer (buffers with backpressure; flush makes everything durable). */
export interface ActionWriter {
  add(action: BulkAction): Promise<void>;
  flush(): Promise<void>;
  /** Stops the writer: waits for requests in flight to settle and drops what is buffered. */
  close?(): Promise<void>;
  /** Counts so far; `stale`: versioned writes refused because the engine had a higher version of the document. */
  stats?(): { stale: number; newestRefusingVersion?: bigint };
}

/** A key range of the root table: keys after `after` (exclusive) up to `upTo` (inclusive); open ends when absent. */
export interface KeyRange {
  after?: string[];
  upTo?: string[];
}

export interface FullSyncOptions {
  /** Root rows per chunk. */
  chunkSize: number;
  /** Chunks queried at once. */
  concurrency: number;
  /** Exported snapshot every chunk reads in (SET TRANSACTION SNAPSHOT), for a consistent handoff to streaming. */
  snapshotName?: string;
  /** External version written with every document (the slot's consistent LSN, or a truncate's LSN). */
  version?: bigint;
  /** Resume after this key (chunks up to it are done). */
  resumeAfter?: string[];
  /** Called for each chunk, in key order, when its query starts. */
  onChunkStarted?: (range: KeyRange) => void;
  /** Called after each chunk's documents were handed to the writer (not yet flushed). */
  onChunkWritten?: (range: KeyRange, documents: number) => Promise<void> | void;
  signal?: AbortSignal;
}

export interface FullSyncResult {
  documents: number;
  chunks: number;
}

/**
 * Streams the root table in key-range chunks, several in flight, building each chunk's documents with one
 * query and handing them to the writer. Memory holds at most `concurrency` chunks, whatever the table size.
 */
export async function runFullSync(plan: EntryPlan, pool: pg.Pool, writer: ActionWriter, options: FullSyncOptions): Promise<FullSyncResult> {
  const result: FullSyncResult = { documents: 0, chunks: 0 };
  const ranges = keyRanges(plan, pool, options);
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  for await (const range of ranges) {
    if (failure !== undefined || options.signal?.aborted) break;
    options.onChunkStarted?.(range);
    const task = syncChunk(plan, pool, writer, range, options)
      .then(async (documents) => {
        result.documents += documents;
        result.chunks += 1;
        await options.onChunkWritten?.(range, documents);
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => inFlight.delete(task));
    inFlight.add(task);
    if (inFlight.size >= options.concurrency) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  options.signal?.throwIfAborted();
  await writer.flush();
  return result;
}

/** Chunk boundaries found by walking the primary-key index `chunkSize` rows at a time. */
async function* keyRanges(plan: EntryPlan, pool: pg.Pool, options: FullSyncOptions): AsyncGenerator<KeyRange> {
  let after = options.resumeAfter;
  for (;;) {
    const query = buildKeyBoundaryQuery(plan, after, options.chunkSize - 1);
    const rows = await inSnapshot(pool, options.snapshotName, (client) => client.query({ text: query.text, values: query.values, rowMode: 'array' }));
    const upTo = rows.rows[0] as string[] | undefined;
    yield { after, upTo };
    if (!upTo) return;
    after = upTo;
  }
}

async function syncChunk(plan: EntryPlan, pool: pg.Pool, writer: ActionWriter, range: KeyRange, options: FullSyncOptions): Promise<number> {
  const query = buildDocumentQuery(plan, { kind: 'range', after: range.after, upTo: range.upTo });
  const result = await inSnapshot(pool, options.snapshotName, (client) =>
    client.query<[string, string | null, string]>({ text: query.text, values: query.values, rowMode: 'array' }),
  );
  const position = `snapshot:${range.after ? range.after.join('|') : ''}..${range.upTo ? range.upTo.join('|') : ''}`;
  for (const [id, routing, source] of result.rows) {
    await writer.add({
      op: 'index',
      index: plan.index,
      id,
      source,
      ...(storedRouting(routing) !== null ? { routing: routing! } : {}),
      ...(plan.pipeline ? { pipeline: plan.pipeline } : {}),
      ...(options.version !== undefined ? { version: options.version } : {}),
      position,
    });
  }
  return result.rows.length;
}

async function inSnapshot<T>(pool: pg.Pool, snapshotName: string | undefined, run: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    if (!snapshotName) return await run(client);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
    const value = await run(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    client.release(broken);
  }
}
