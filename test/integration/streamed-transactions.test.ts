// pgoutput v2 streaming of in-progress transactions (design.md §4): with logical_decoding_work_mem at its minimum
// (64kB, set on the test database, which the walsender of its slot applies), PostgreSQL streams every large
// transaction before its commit. Nothing of it may reach the index before the Stream Commit, a rolled back one (or
// subtransaction) must leave no trace, a SIGKILL in the middle of one must converge after a restart, and a
// transaction far larger than the V8 heap must go through with bounded memory.
//
// Needs the project's test engine (a delay fault holds bulk requests for the kill).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { parseLsn } from '../../src/source/postgres/lsn.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { engineCall, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { trackPeakRss } from '../helpers/process-stats.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const BOOKS = 2000;
const index = 'streamed_book';
const HEAP_LIMIT_MB = 80;
const PEAK_RSS_LIMIT_MB = 300;
/** Rows of the memory test's one transaction, each with a 2 kB description: far more row data than the heap. */
const MEMORY_ROWS = 100_000;

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let env: Record<string, string>;
let schemaPath: string;
let slot: string;
let sluice: RunningSluice | undefined;
let failed = false;
let nextId = 1_000_000;

async function connect(): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  return client;
}

interface SlotStats {
  streamTxns: number;
  streamCount: number;
}

async function slotStats(): Promise<SlotStats> {
  const { rows } = await db.query<{ stream_txns: string; stream_count: string }>('SELECT stream_txns, stream_count FROM pg_stat_replication_slots WHERE slot_name = $1', [slot]);
  return { streamTxns: Number(rows[0]?.stream_txns ?? 0), streamCount: Number(rows[0]?.stream_count ?? 0) };
}

/** Waits until the server has streamed more of an in-progress transaction than `before`. */
async function waitForStreaming(before: SlotStats): Promise<void> {
  await waitFor('PostgreSQL to stream the open transaction', async () => ((await slotStats()).streamCount > before.streamCount ? true : undefined), 60_000);
}

async function confirmedFlush(): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return parseLsn(rows[0]!.lsn);
}

/** SQL inserting `count` books from id `from` on, each with a rating (root and child rows). */
function newBooks(from: number, count: number, description = `'streamed'`): string {
  return `
INSERT INTO book (id, isbn, title, description, publisher_id)
  SELECT i, 's' || i, 'Streamed ' || i, ${description}, 1 + i % 100 FROM generate_series(${from}, ${from + count - 1}) i;
INSERT INTO rating (book_isbn, value) SELECT 's' || i, (i % 50) / 10.0 FROM generate_series(${from}, ${from + count - 1}) i;`;
}

function takeIds(count: number): number {
  const from = nextId;
  nextId += count;
  return from;
}

/** Documents (id → version) of the given ids that exist in the index. */
async function versions(ids: string[]): Promise<Map<string, number>> {
  await engineCall(engine.url, 'POST', `/${index}/_refresh`);
  const found = await engineCall(engine.url, 'POST', `/${index}/_search`, { size: ids.length, version: true, query: { ids: { values: ids } } });
  return new Map((found.json.hits.hits as { _id: string; _version: number }[]).map((h) => [h._id, h._version]));
}

async function documentCount(): Promise<number> {
  await engineCall(engine.url, 'POST', `/${index}/_refresh`);
  return (await engineCall(engine.url, 'GET', `/${index}/_count`)).json.count as number;
}

function range(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, i) => String(from + i));
}

function start(extra: Record<string, string> = {}): RunningSluice {
  sluice = startSluice(['-c', schemaPath], { ...env, ...extra });
  return sluice;
}

beforeAll(async () => {
  db = await createTestDatabase('streamed');
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(BOOKS));
  await db.query(`ALTER DATABASE ${db.name} SET logical_decoding_work_mem = '64kB'`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-streamed-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  slot = slotNameFor(db.name, index);
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_BATCH_SIZE: '500' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  start();
  await waitFor('the snapshot', async () => ((await documentCount().catch(() => 0)) === BOOKS ? true : undefined), 60_000);
}, 120_000);

afterEach((context) => {
  if (context.task.result?.state === 'fail') failed = true;
});

afterAll(async () => {
  const code = await sluice?.stop();
  if (failed || code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice?.output());
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe.skipIf(REAL_ENGINE_URL !== undefined)('transactions streamed before their commit (pgoutput v2)', () => {
  it('a large transaction over root and child tables is streamed, reaches the index only after its commit, and equals a full sync', async () => {
    const client = await connect();
    try {
      const before = await slotStats();
      const from = takeIds(10_000);
      const count = await documentCount();
      await client.query('BEGIN');
      await client.query(newBooks(from, 10_000));
      await client.query(`UPDATE book SET title = title || ' (open)' WHERE id <= 500`);
      await waitForStreaming(before);
      expect((await slotStats()).streamTxns).toBeGreaterThan(before.streamTxns);
      // Several flush intervals with the streamed changes in Sluice's hands: none of them may show.
      await sleep(1500);
      expect(await documentCount()).toBe(count);
      expect((await versions(range(from, 100))).size).toBe(0);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await expectConverged(db.url, plan, engine.url, 60_000);
  }, 120_000);

  it('a large transaction that rolls back leaves the index untouched', async () => {
    const sample = range(1, 300);
    const beforeVersions = await versions(sample);
    const count = await documentCount();
    const client = await connect();
    try {
      const before = await slotStats();
      await client.query('BEGIN');
      await client.query(newBooks(takeIds(8000), 8000));
      await client.query(`UPDATE book SET title = 'rolled back' WHERE id <= 300`);
      await client.query(`DELETE FROM rating WHERE book_isbn IN (SELECT isbn FROM book WHERE id <= 300)`);
      await waitForStreaming(before);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    // A later transaction: once it is in, everything before it has been processed.
    const marker = takeIds(1);
    await db.query(newBooks(marker, 1));
    await waitFor('the marker document', async () => ((await versions([String(marker)])).size === 1 ? true : undefined));
    expect(await documentCount()).toBe(count + 1);
    expect(await versions(sample)).toEqual(beforeVersions);
    await expectConverged(db.url, plan, engine.url);
  }, 120_000);

  it('a large transaction with a rolled back subtransaction keeps only the surviving changes', async () => {
    const kept = takeIds(3000);
    const aborted = takeIds(5000);
    const after = takeIds(100);
    const client = await connect();
    try {
      await client.query('BEGIN');
      await client.query(newBooks(kept, 3000));
      await client.query('SAVEPOINT s');
      const before = await slotStats();
      await client.query(newBooks(aborted, 5000));
      await client.query(`UPDATE book SET title = 'from the aborted subtransaction' WHERE id <= 200`);
      // The subtransaction's changes were streamed before its rollback.
      await waitForStreaming(before);
      await client.query('ROLLBACK TO SAVEPOINT s');
      await client.query(newBooks(after, 100));
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    await expectConverged(db.url, plan, engine.url, 60_000);
    expect((await versions(range(kept, 50))).size).toBe(50);
    expect((await versions(range(after, 50))).size).toBe(50);
    expect((await versions(range(aborted, 5000))).size).toBe(0);
  }, 120_000);

  it('a large transaction written under a replication origin (a logical-replication subscriber\'s) is applied', async () => {
    // A subscription's apply worker writes under an origin; pgoutput then sends an Origin message inside the first
    // streamed block, without the xid other messages there carry.
    const origin = `sluice_test_origin_${db.name}`.slice(0, 60);
    await db.query(`SELECT pg_replication_origin_create($1) WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = $1)`, [origin]);
    const from = takeIds(3000);
    const client = await connect();
    try {
      const before = await slotStats();
      await client.query('SELECT pg_replication_origin_session_setup($1)', [origin]);
      await client.query('BEGIN');
      // Where its first change goes in the WAL, at the earliest.
      const start = parseLsn((await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn);
      await client.query(newBooks(from, 3000));
      await waitForStreaming(before);
      // While it is open, acknowledgements still move up to its first change: its Stream Start came without an LSN
      // (sent in one group with the Origin message), which the Origin message then gives. Taken for 0/0, it held
      // every acknowledgement back for as long as the transaction was open.
      await db.query(`UPDATE book SET title = 'acknowledged meanwhile' WHERE id = 1`);
      await waitFor('acknowledgements up to the open transaction', async () => ((await confirmedFlush()) >= start ? true : undefined), 30_000);
      await client.query('COMMIT');
      await client.query('SELECT pg_replication_origin_session_reset()');
    } finally {
      await client.end();
      await db.query('SELECT pg_replication_origin_drop($1)', [origin]).catch(() => undefined);
    }
    await expectConverged(db.url, plan, engine.url, 60_000);
    expect((await versions(range(from, 50))).size).toBe(50);
  }, 120_000);

  it('SIGKILL while a transaction is streamed and again while its batches are applied, then a restart, converges', async () => {
    const client = await connect();
    let commitAfter: bigint;
    try {
      const before = await slotStats();
      await client.query('BEGIN');
      await client.query(`UPDATE book SET description = 'killed ' || id`);
      await client.query(newBooks(takeIds(5000), 5000));
      await waitForStreaming(before);
      await sluice!.kill();
      const { rows } = await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn');
      commitAfter = parseLsn(rows[0]!.lsn);
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    // Bulk requests held for a while each: the restarted process is killed between batches of the transaction.
    engine.server!.faults.inject({ kind: 'delay', ms: 150, path: '_bulk$', times: 10_000 });
    const bulks = () => engine.server!.requests.filter((r) => r.path.endsWith('_bulk')).length;
    const bulksBefore = bulks();
    start();
    await waitFor('a few bulk requests of the committed transaction', async () => (bulks() >= bulksBefore + 5 ? true : undefined), 60_000);
    await sluice!.kill();
    // Its changes were only partly applied: the slot must still hold all of them.
    expect(await confirmedFlush()).toBeLessThan(commitAfter);
    engine.server!.faults.clear();
    start();
    await expectConverged(db.url, plan, engine.url, 90_000);
  }, 180_000);

  it(`a transaction of ${MEMORY_ROWS} rows of 2 kB goes through with a ${HEAP_LIMIT_MB} MB heap and a bounded peak RSS`, async () => {
    await sluice!.stop();
    const capped = start({ NODE_OPTIONS: `--max-old-space-size=${HEAP_LIMIT_MB}` });
    const peak = trackPeakRss(capped.child.pid!, 50);
    // Up and streaming: a small change goes through.
    const probe = takeIds(1);
    await db.query(newBooks(probe, 1));
    await waitFor('the restarted process', async () => ((await versions([String(probe)])).size === 1 ? true : undefined), 60_000);
    const before = await slotStats();
    const from = takeIds(MEMORY_ROWS);
    await db.query(`BEGIN; ${newBooks(from, MEMORY_ROWS, `repeat(md5(i::text), 64)`)} COMMIT;`);
    await waitFor('PostgreSQL to stream the transaction', async () => ((await slotStats()).streamTxns > before.streamTxns ? true : undefined), 60_000);
    await waitFor('the last document of the transaction', async () => ((await versions([String(from + MEMORY_ROWS - 1)])).size === 1 ? true : undefined), 300_000);
    const peakMb = peak.stop() / 1024;
    const { rows } = await db.query<{ mb: string }>(`SELECT (sum(octet_length(description)) / 1048576)::int AS mb FROM book WHERE id >= $1`, [from]);
    console.log(`one transaction of ${MEMORY_ROWS} books and ${MEMORY_ROWS} ratings (${rows[0]!.mb} MB of descriptions): peak RSS ${peakMb.toFixed(0)} MB with a ${HEAP_LIMIT_MB} MB heap`);
    expect(capped.child.exitCode).toBeNull();
    expect(peakMb).toBeLessThan(PEAK_RSS_LIMIT_MB);
    await expectConverged(db.url, plan, engine.url, 120_000);
  }, 600_000);
});
