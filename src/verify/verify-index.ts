/**
 * Drift between PostgreSQL and an index: documents missing from the index, stored with other content or
 * routing, or in the index without a root row. Memory holds one batch of documents and one page of ids,
 * whatever the sizes of the table and the index.
 */
import type pg from 'pg';
import type { ActionWriter } from '../pipeline/full-sync.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import { parseLsn } from '../source/postgres/lsn.js';
import { buildDocumentQuery, buildKeyBoundaryQuery, storedRouting } from '../transform/document-query.js';
import { qualified, quoteIdent } from '../transform/sql.js';
import { contentHash, parseExactJson, type JsonValue } from './canonical-json.js';

/** A document as the engine stores it. */
export interface EngineDocument {
  id: string;
  routing?: string;
  source: JsonValue;
}

/** What verification reads from the engine (the Elasticsearch adapter's document-lookup functions). */
export interface VerifyEngine {
  refresh(index: string): Promise<void>;
  count(index: string): Promise<number>;
  /** The stored documents with these ids; an id stored under several routings comes back once per copy. */
  documents(index: string, ids: string[]): Promise<EngineDocument[]>;
  /** Every stored document's id and routing, a page at a time. */
  refs(index: string, pageSize: number): AsyncIterable<Array<{ id: string; routing?: string }>>;
}

export interface VerifyOptions {
  /** Root rows per PostgreSQL query and engine lookup, and ids per scroll page. */
  batchSize: number;
  /** Ids kept per kind of drift for the report (the totals count them all). */
  sampleLimit: number;
  /** Rewrite and delete drifted documents through this writer (flushed before returning). */
  repair?: ActionWriter;
  signal?: AbortSignal;
}

export interface DriftList {
  total: number;
  /** The first `sampleLimit` ids, in the order found. */
  ids: string[];
}

export interface VerifyReport {
  index: string;
  postgresDocuments: number;
  indexDocuments: number;
  /** In PostgreSQL, not in the index. */
  missing: DriftList;
  /** In both, with other content or routing (or stored more than once under different routings). */
  different: DriftList;
  /** In the index without a root row in PostgreSQL. */
  extra: DriftList;
  /** False when documents pass through an ingest pipeline: the index stores its output, so only ids are compared. */
  contentCompared: boolean;
  /** Actions sent to the writer by `--repair`. */
  repaired?: { indexed: number; deleted: number };
}

export function driftTotal(report: VerifyReport): number {
  return report.missing.total + report.different.total + report.extra.total;
}

/**
 * Compares the index with PostgreSQL in two passes. First the root table in primary-key batches: each
 * batch's documents are built by the document query and looked up in the engine by id (missing,
 * different). Then the engine's ids, a scroll page at a time, are looked up in PostgreSQL (extra).
 */
export async function verifyIndex(plan: EntryPlan, pool: pg.Pool, engine: VerifyEngine, options: VerifyOptions): Promise<VerifyReport> {
  const sample = options.sampleLimit;
  const list = (): DriftList => ({ total: 0, ids: [] });
  const note = (drift: DriftList, id: string) => {
    drift.total++;
    if (drift.ids.length < sample) drift.ids.push(id);
  };
  const writer = options.repair;
  await engine.refresh(plan.index);
  const report: VerifyReport = {
    index: plan.index,
    postgresDocuments: 0,
    indexDocuments: await engine.count(plan.index),
    missing: list(),
    different: list(),
    extra: list(),
    contentCompared: plan.pipeline === undefined,
    ...(writer ? { repaired: { indexed: 0, deleted: 0 } } : {}),
  };
  const write = async (action: Parameters<ActionWriter['add']>[0]) => {
    await writer!.add(action);
    if (action.op === 'index') report.repaired!.indexed++;
    else report.repaired!.deleted++;
  };

  let after: string[] | undefined;
  for (;;) {
    options.signal?.throwIfAborted();
    const boundary = buildKeyBoundaryQuery(plan, after, options.batchSize - 1);
    const upTo = (await pool.query<string[]>({ text: boundary.text, values: boundary.values, rowMode: 'array' })).rows[0];
    const version = writer ? await currentLsn(pool) : undefined;
    const query = buildDocumentQuery(plan, { kind: 'range', after, upTo });
    const rows = (await pool.query<[string, string | null, string]>({ text: query.text, values: query.values, rowMode: 'array' })).rows;
    report.postgresDocuments += rows.length;
    const stored = new Map<string, EngineDocument[]>();
    for (const doc of await engine.documents(plan.index, rows.map(([id]) => id))) {
      stored.set(doc.id, [...(stored.get(doc.id) ?? []), doc]);
    }
    for (const [id, routing, source] of rows) {
      const copies = stored.get(id) ?? [];
      const expectedRouting = storedRouting(routing) ?? undefined;
      const hash = report.contentCompared ? contentHash(parseExactJson(source)) : '';
      const same = (copy: EngineDocument) => copy.routing === expectedRouting && (!report.contentCompared || contentHash(copy.source) === hash);
      if (copies.length === 1 && same(copies[0]!)) continue;
      note(copies.length === 0 ? report.missing : report.different, id);
      if (!writer) continue;
      // A copy under another routing lives on another shard: indexing with the right routing would leave it.
      for (const copy of copies) {
        if (copy.routing !== expectedRouting) await write({ op: 'delete', index: plan.index, id, ...(copy.routing !== undefined ? { routing: copy.routing } : {}), ...versioned(version) });
      }
      await write({
        op: 'index',
        index: plan.index,
        id,
        source,
        ...(expectedRouting !== undefined ? { routing: expectedRouting } : {}),
        ...(plan.pipeline ? { pipeline: plan.pipeline } : {}),
        ...versioned(version),
        position: 'verify --repair',
      });
    }
    if (!upTo) break;
    after = upTo;
  }

  for await (const page of engine.refs(plan.index, options.batchSize)) {
    options.signal?.throwIfAborted();
    const version = writer ? await currentLsn(pool) : undefined;
    const existing = await existingIds(plan, pool, [...new Set(page.map((ref) => ref.id))]);
    for (const ref of page) {
      if (existing.has(ref.id)) continue;
      note(report.extra, ref.id);
      if (writer) await write({ op: 'delete', index: plan.index, id: ref.id, ...(ref.routing !== undefined ? { routing: ref.routing } : {}), ...versioned(version), position: 'verify --repair' });
    }
  }
  if (writer) await writer.flush();
  return report;
}

function versioned(version: bigint | undefined): { version?: bigint } {
  return version === undefined ? {} : { version };
}

/**
 * The external version repairs are written with. `sluice run` writes each document with the commit LSN of
 * its batch (version_type external_gte), and rebuilds it from the rows as they are when it applies the batch.
 * This position is read before the documents are built (or the orphans looked up), so every transaction
 * committed before it is visible to that query: the repair contains every change up to this version.
 * Anything committed later has a higher LSN, so `run`'s write for it wins whichever lands first: a repair
 * arriving after it gets a version conflict (which the writer counts as done) and keeps the newer document.
 * A version taken when the repair is sent instead could be above a change the repair did not see.
 */
async function currentLsn(pool: pg.Pool): Promise<bigint> {
  const { rows } = await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
  return parseLsn(rows[0]!.lsn);
}

/**
 * The ids among `ids` that are documents of PostgreSQL roots. An id is parsed back into key values (PGSync's
 * `_id` joins them with "|" in alphabetical column order, which is the plan's key order) so that the
 * primary-key index answers; the query returns the ids PostgreSQL would build, so a non-canonical spelling
 * (`01` for key 1) is not a match, as it is not the document Sluice writes.
 */
async function existingIds(plan: EntryPlan, pool: pg.Pool, ids: string[]): Promise<Set<string>> {
  const columns = plan.root.primaryKey;
  const parsed: string[][] = [];
  const unsplittable: string[] = [];
  for (const id of ids) {
    const parts = columns.length === 1 ? [id] : id.split('|');
    if (parts.length === columns.length) parsed.push(parts);
    else unsplittable.push(id);
  }
  const found = new Set<string>();
  for (const id of await idsByKeys(plan, pool, parsed)) found.add(id);
  if (unsplittable.length > 0) {
    // A key value containing "|" makes the split ambiguous: compare whole ids (a scan, for such ids only).
    const idExpr = idExpression(plan);
    const text = `SELECT s._id FROM (SELECT ${idExpr} AS _id FROM ${qualified(plan.root.schema, plan.root.table)} AS n) AS s WHERE s._id = ANY($1::text[])`;
    for (const row of (await pool.query<[string]>({ text, values: [unsplittable], rowMode: 'array' })).rows) found.add(row[0]);
  }
  return found;
}

async function idsByKeys(plan: EntryPlan, pool: pg.Pool, keys: string[][]): Promise<string[]> {
  if (keys.length === 0) return [];
  const columns = plan.root.primaryKey;
  const types = columns.map((c) => plan.root.primaryKeyTypes[c] ?? 'text');
  const keyList = columns.map((c) => `n.${quoteIdent(c)}`).join(', ');
  const where =
    columns.length === 1
      ? `n.${quoteIdent(columns[0]!)} = ANY($1::${types[0]}[])`
      : `(${keyList}) IN (SELECT * FROM unnest(${types.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}))`;
  const text = `SELECT ${idExpression(plan)} FROM ${qualified(plan.root.schema, plan.root.table)} AS n WHERE ${where}`;
  try {
    const { rows } = await pool.query<[string]>({ text, values: columns.map((_, i) => keys.map((key) => key[i])), rowMode: 'array' });
    return rows.map((row) => row[0]);
  } catch (error) {
    // Class 22 (data exception): some id is no value of the key type (`abc` for an integer key), so it is
    // no root's id. Halving finds those ids in a few queries and keeps the index lookups for the rest.
    if (!String((error as { code?: unknown }).code ?? '').startsWith('22')) throw error;
    if (keys.length === 1) return [];
    const mid = Math.ceil(keys.length / 2);
    return [...(await idsByKeys(plan, pool, keys.slice(0, mid))), ...(await idsByKeys(plan, pool, keys.slice(mid)))];
  }
}

/** The document query's `_id` expression over the root at alias `n`. */
function idExpression(plan: EntryPlan): string {
  return `concat_ws('|', ${plan.root.primaryKey.map((c) => `n.${quoteIdent(c)}::text`).join(', ')})`;
}
