// A root table whose primary key has several columns, in an order other than alphabetical (PGSync's `_id` order):
// the snapshot's key ranges walk the primary-key index in its own column order, so each boundary and chunk query is
// an index range scan, not a scan and sort of the whole table per chunk; every row is read exactly once; and a
// snapshot checkpointed by a version that walked the keys in alphabetical order starts over instead of resuming
// from a point that means something else now. A key declared with primary_key (a view) that is NULL in some row
// is refused with a clear error instead of the row being skipped.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCheckpointStore } from '../../src/checkpoint/file-checkpoint-store.js';
import { entryFingerprint } from '../../src/lifecycle/generation-names.js';
import { runFullSync, type ActionWriter } from '../../src/pipeline/full-sync.js';
import { resumePoint, runSnapshotPhase } from '../../src/pipeline/snapshot-phase.js';
import type { BulkAction } from '../../src/sink/document-sink.js';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { buildDocumentQuery, buildKeyBoundaryQuery } from '../../src/transform/document-query.js';
import { compileAgainst } from '../helpers/fixtures.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

const ORDERS = 10_000;
const LINES = 10;

let db: TestDatabase;
let pool: pg.Pool;
let plan: EntryPlan;

/** A writer that keeps the ids it is given. */
function collectingWriter(): ActionWriter & { ids: string[] } {
  const ids: string[] = [];
  return { ids, add: async (action: BulkAction) => void ids.push(action.id), flush: async () => undefined };
}

/** Every node type of an EXPLAIN (FORMAT JSON) plan. */
function nodeTypes(node: { 'Node Type': string; Plans?: unknown[] }): string[] {
  return [node['Node Type'], ...((node.Plans ?? []) as Array<typeof node>).flatMap(nodeTypes)];
}

async function explain(query: { text: string; values: unknown[] }): Promise<string[]> {
  const { rows } = await pool.query<{ 'QUERY PLAN': [{ Plan: { 'Node Type': string } }] }>({ text: `EXPLAIN (FORMAT JSON) ${query.text}`, values: query.values });
  return nodeTypes(rows[0]!['QUERY PLAN'][0].Plan);
}

beforeAll(async () => {
  db = await createTestDatabase('composite_key');
  await db.query(`CREATE TABLE order_line (order_id int, line_no int, item text NOT NULL, PRIMARY KEY (order_id, line_no))`);
  await db.query(`INSERT INTO order_line SELECT o, l, 'item ' || o || '/' || l FROM generate_series(1, ${ORDERS}) o, generate_series(1, ${LINES}) l`);
  await db.query('ANALYZE order_line');
  pool = testPool(db.url, 4);
  const compiled = await compileAgainst(db.url, [{ database: db.name, index: 'lines', nodes: { table: 'order_line' } }]);
  plan = compiled.plans[0]!;
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('a root with a composite primary key', () => {
  it('keeps key values in alphabetical column order and scans in the index order', () => {
    expect(plan.root.primaryKey).toEqual(['line_no', 'order_id']);
    expect(plan.root.keyOrder).toEqual(['order_id', 'line_no']);
    // The scan order shapes no document: the generation's fingerprint is the one of versions scanning alphabetically.
    expect(entryFingerprint(plan)).toBe(entryFingerprint({ ...plan, root: { ...plan.root, keyOrder: undefined } }));
  });

  it('walks the primary-key index for chunk boundaries and chunks: no scan and sort of the table', async () => {
    // After line 7 of order 150 (values in alphabetical column order: line_no, order_id).
    const boundary = await explain(buildKeyBoundaryQuery(plan, ['7', '150'], 99));
    expect(boundary).not.toContain('Sort');
    expect(boundary).not.toContain('Seq Scan');
    // A chunk is a range of the index (read in order, or as a bitmap and its few rows sorted).
    const chunk = await explain(buildDocumentQuery(plan, { kind: 'range', after: ['7', '150'], upTo: ['3', '160'] }));
    expect(chunk).not.toContain('Seq Scan');
    expect(chunk.some((t) => t.includes('Index'))).toBe(true);
  });

  it('reads every row exactly once in chunks, and from a resume point only the keys after it in index order', async () => {
    const writer = collectingWriter();
    await runFullSync(plan, pool, writer, { chunkSize: 50, concurrency: 3 });
    expect(writer.ids).toHaveLength(ORDERS * LINES);
    expect(new Set(writer.ids).size).toBe(ORDERS * LINES);

    const resumed = collectingWriter();
    await runFullSync(plan, pool, resumed, { chunkSize: 50, concurrency: 3, resumeAfter: ['4', '9999'] });
    // Order 9999 from line 5 on, and order 10000.
    expect(resumed.ids.sort()).toEqual([...['5', '6', '7', '8', '9', '10'].map((l) => `${l}|9999`), ...Array.from({ length: LINES }, (_, i) => `${i + 1}|10000`)].sort());
  });

  it('starts a snapshot over when its checkpoint was reached in alphabetical column order, and records the order', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-composite-'));
    const store = await FileCheckpointStore.open(dir);
    try {
      const writer = collectingWriter();
      // Progress saved by a version scanning (line_no, order_id): "done up to line 9 of order 1" covered lines 1-9 of
      // every order, which in index order would skip nearly everything.
      const old = { slot: 'lines', snapshot: { consistentLsn: '0/1000000', complete: false, doneUpTo: ['9', '1'] }, updatedAt: 't' };
      const done = await runSnapshotPhase(plan, pool, writer, store, old, { name: 'lines', chunkSize: 50, concurrency: 2 });
      expect(new Set(writer.ids).size).toBe(ORDERS * LINES);
      expect(done.snapshot).toMatchObject({ complete: true, keyOrder: ['order_id', 'line_no'] });
      // Progress in index order is kept where versions scanning alphabetically do not look: they would start over.
      const stored = (await store.load('lines'))?.snapshot;
      expect(stored?.keyOrder).toEqual(['order_id', 'line_no']);
      expect(stored?.doneInKeyOrder).toBeDefined();
      expect(stored?.doneUpTo).toBeUndefined();

      // Progress saved in index order resumes from where it was.
      const again = collectingWriter();
      const current = { slot: 'lines', snapshot: { consistentLsn: '0/1000000', complete: false, doneInKeyOrder: ['10', '9998'], keyOrder: ['order_id', 'line_no'] }, updatedAt: 't' };
      await runSnapshotPhase(plan, pool, again, store, current, { name: 'lines', chunkSize: 50, concurrency: 2 });
      expect(again.ids).toHaveLength(2 * LINES);
      // An older version that ran meanwhile wrote its own alphabetical doneUpTo beside it: ignored, the index-order
      // point still holds (the documents before it are still there).
      expect(resumePoint(plan, { ...current.snapshot, doneUpTo: ['3', '5000'] })).toEqual(['10', '9998']);
      expect(resumePoint(plan, { consistentLsn: '0/1000000', complete: false, doneUpTo: ['3', '5000'] })).toBeUndefined();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('saves snapshot progress only forward, though chunks finishing side by side flush at different speeds', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-progress-'));
    const store = await FileCheckpointStore.open(dir);
    // The first flush is slow: the chunks finished meanwhile extend the durable prefix and are saved first.
    let flushes = 0;
    const writer: ActionWriter = { add: async () => undefined, flush: () => new Promise((resolve) => setTimeout(resolve, ++flushes === 1 ? 300 : 0)) };
    const saved: Array<[number, number]> = [];
    const recording = Object.create(store) as FileCheckpointStore;
    recording.save = async (name, checkpoint, fence) => {
      const upTo = checkpoint.snapshot?.doneInKeyOrder;
      // Key values in alphabetical column order (line_no, order_id); the index order is (order_id, line_no).
      if (upTo !== undefined) saved.push([Number(upTo[1]), Number(upTo[0])]);
      await store.save(name, checkpoint, fence);
    };
    try {
      const start = { slot: 'forward', snapshot: { consistentLsn: '0/1000000', complete: false }, updatedAt: 't' };
      await runSnapshotPhase(plan, pool, writer, recording, start, { name: 'forward', chunkSize: 500, concurrency: 2 });
      expect(saved.length).toBeGreaterThan(2);
      for (let i = 1; i < saved.length; i++) {
        const [before, now] = [saved[i - 1]!, saved[i]!];
        expect(now[0] > before[0] || (now[0] === before[0] && now[1] >= before[1]), `progress ${JSON.stringify(before)} then ${JSON.stringify(now)}`).toBe(true);
      }
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses, naming the view and the key, a root read through primary_key whose key is NULL in some row', async () => {
    await db.query(`CREATE VIEW line_or_none AS SELECT CASE WHEN order_id = 42 AND line_no = 1 THEN NULL ELSE order_id END AS order_id, line_no, item FROM order_line`);
    const view = (await compileAgainst(db.url, [{ database: db.name, index: 'maybe', nodes: { table: 'line_or_none', primary_key: ['order_id', 'line_no'] } }])).plans[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'sluice-null-key-'));
    const store = await FileCheckpointStore.open(dir);
    try {
      const start = { slot: 'maybe', snapshot: { consistentLsn: '0/1000000', complete: false }, updatedAt: 't' };
      await expect(runSnapshotPhase(view, pool, collectingWriter(), store, start, { name: 'maybe', chunkSize: 1000, concurrency: 2 })).rejects.toMatchObject({
        code: 'SCH_INVALID',
        message: expect.stringMatching(/"public.line_or_none" has rows whose primary_key \(line_no, order_id\) is NULL/) as unknown,
      });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
