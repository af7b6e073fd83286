// Snapshot chunk queries run for seconds each. While other indexes snapshot (or one rebuilds beside its live
// generation), a streaming index's changes must not wait for one of those connections to come free: its document
// queries go through connections of their own. Here three snapshots are held on a lock with every snapshot
// connection taken, and a change to a fourth, streaming index must still reach the engine.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { logLines, startSluice, waitFor, type RunningSluice, stopShowingOutput } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

/** Rows of the snapshotting indexes' table: enough that their snapshots are still running when the lock is taken. */
const BIG_ROWS = 300_000;
const SNAPSHOTTING = ['big_a', 'big_b', 'big_c'];
/** SLUICE_SNAPSHOT_CONCURRENCY: the snapshot pool then has 1 + 2 connections, fewer than the snapshots running. */
const CONCURRENCY = 1;

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let sluice: RunningSluice | undefined;
let locker: pg.Client | undefined;

beforeAll(async () => {
  db = await createTestDatabase('query_pools');
  await db.query(`CREATE TABLE live (id int PRIMARY KEY, title text); INSERT INTO live VALUES (1, 'before')`);
  await db.query(`CREATE TABLE big (id int PRIMARY KEY, title text); INSERT INTO big SELECT g, 'title ' || g FROM generate_series(1, ${BIG_ROWS}) g`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-pools-'));
});

afterAll(async () => {
  await locker?.end().catch(() => undefined);
  await stopShowingOutput(sluice);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

/** Sluice's sessions of the test database waiting for a lock. */
async function sessionsWaitingOnLock(): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sluice' AND wait_event_type = 'Lock'`,
    [db.name],
  );
  return rows[0]!.n;
}

describe('query connections', () => {
  it('a streaming index applies its changes while other snapshots hold every snapshot connection', async () => {
    const schema = [
      { database: db.name, index: 'live_items', nodes: { table: 'live', columns: ['id', 'title'] } },
      ...SNAPSHOTTING.map((index) => ({ database: db.name, index, nodes: { table: 'big', columns: ['id', 'title'] } })),
    ];
    const schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify(schema));
    const env = sluiceEnv(db.url, engine.url, {
      CHECKPOINT_PATH: work,
      PGSYNC_FLUSH_INTERVAL: '0.1',
      PGSYNC_LOG_LEVEL: 'info',
      SLUICE_SNAPSHOT_CONCURRENCY: String(CONCURRENCY),
      SLUICE_SNAPSHOT_CHUNK_SIZE: '2000',
    });
    const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
    expect(bootstrap.code, bootstrap.stderr).toBe(0);
    const running = startSluice(['-c', schemaPath], env);
    sluice = running;
    const url = await waitFor('the HTTP server', async () => logLines(running.output()).find((l) => typeof l.url === 'string' && l.msg?.startsWith('HTTP server'))?.url as string | undefined);
    const phases = async (): Promise<Map<string, string>> => {
      const body = (await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ index: string; phase: string }> };
      return new Map(body.indexes.map((s) => [s.index, s.phase]));
    };
    const finished = async (): Promise<string[]> => {
      const now = await phases();
      return SNAPSHOTTING.filter((index) => now.get(index) !== 'snapshot');
    };
    await waitFor('the small index streaming', async () => ((await phases()).get('live_items') === 'streaming' ? true : undefined), 60_000);

    // Queued behind the chunk queries running now, the lock then holds every later one: each snapshot keeps the
    // connection it asked with, and the snapshot pool runs dry.
    locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE big IN ACCESS EXCLUSIVE MODE');
    expect(await finished(), 'a snapshot finished before the lock: raise BIG_ROWS').toEqual([]);
    await waitFor('every snapshot connection waiting on the lock', async () => ((await sessionsWaitingOnLock()) >= CONCURRENCY + 2 ? true : undefined));

    await db.query(`INSERT INTO live VALUES (2, 'while the others snapshot'); UPDATE live SET title = 'changed' WHERE id = 1`);
    const documents = await waitFor('the change in the streaming index', async () => {
      const docs = await allDocuments(engine.url, 'live_items');
      return docs.get('2') !== undefined && (docs.get('1') as { title?: string } | undefined)?.title === 'changed' ? docs : undefined;
    });
    expect(documents.get('2')).toEqual({ id: 2, title: 'while the others snapshot' });
    // The snapshots were held the whole time.
    expect(await sessionsWaitingOnLock()).toBeGreaterThanOrEqual(CONCURRENCY + 2);
    expect(await finished()).toEqual([]);

    await locker.query('ROLLBACK');
    await locker.end();
    locker = undefined;
    expect(await running.stop()).toBe(0);
    sluice = undefined;
  });
});
