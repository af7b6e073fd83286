// Several `sluice run` processes sharing one checkpoint store (design §9, for availability): each index is synced by
// one process at a time, the holder of its lease in the store; the others stand by. Started together, only one
// snapshots; a SIGKILLed owner's index is taken over once its lease expires, without a new snapshot; a SIGTERMed
// owner releases the lease, so a standby takes over at once. The index converges through every hand-over.
//
// Run over Redis (the seed's store) and over PostgreSQL (a table in the first entry's database, on connections of its
// own); the store suite runs the lease contract over the file store too.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, logLines, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, testRedisUrl, type TestDatabase } from '../helpers/test-env.js';

const BOOKS = 400;
const index = 'standby_book';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let schemaPath: string;
let env: Record<string, string>;
/** The checkpoint store of the describe block running. */
let storeEnv: Record<string, string> = {};
const runs: RunningSluice[] = [];
let failed = false;

const logged = (running: RunningSluice, msg: string) => logLines(running.output()).filter((l) => l.msg === msg);
const holderOf = (running: RunningSluice) => logLines(running.output()).find((l) => typeof l.holder === 'string')?.holder as string | undefined;

function start(ttlSeconds: number): RunningSluice {
  const running = startSluice(['-c', schemaPath], { ...env, ...storeEnv, SLUICE_LEASE_TTL_SECONDS: String(ttlSeconds) });
  runs.push(running);
  return running;
}

async function statusOf(running: RunningSluice): Promise<{ phase: string; owner?: string }> {
  const url = await waitFor('the HTTP server', async () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(running.output())?.[1]);
  const body = (await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ phase: string; owner?: string }> };
  return body.indexes[0]!;
}

beforeAll(async () => {
  db = await createTestDatabase('standby');
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(BOOKS));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-standby-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  env = sluiceEnv(db.url, engine.url, {
    CHECKPOINT_PATH: work,
    PGSYNC_FLUSH_INTERVAL: '0.1',
    PGSYNC_LOG_LEVEL: 'info',
    SLUICE_SNAPSHOT_CHUNK_SIZE: '50',
    SLUICE_RETRY_INITIAL_MS: '100',
    SLUICE_RETRY_MAX_MS: '1000',
  });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr + bootstrap.stdout).toBe(0);
});

afterAll(async () => {
  for (const running of runs) await running.kill();
  if (failed || process.env.SHOW_SLUICE_OUTPUT) runs.forEach((running, i) => console.log(`---- sluice run ${i + 1} ----\n${running.output()}`));
  await engine?.close();
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const stores: Array<[string, () => Record<string, string>]> = [
  ['redis', () => ({ REDIS_URL: testRedisUrl() })],
  ['postgres', () => ({ SLUICE_CHECKPOINT_STORE: 'postgres' })],
];

describe.each(stores)('processes sharing the checkpoint store take turns on an index (%s store)', (kind, settings) => {
  beforeAll(async () => {
    storeEnv = settings();
    // Each store starts without a checkpoint: the first pair snapshots again.
    for (const running of runs) await running.kill();
  });
  const tracked = (body: () => Promise<void>) => async () => {
    try {
      await body();
    } catch (error) {
      failed = true;
      throw error;
    }
  };
  let owner: RunningSluice;
  let standby: RunningSluice;

  it(
    'started together, one process snapshots and streams while the other stands by',
    tracked(async () => {
      const pair = [start(3), start(3)];
      // The index may hold the same documents already (an earlier store's run): convergence alone proves no snapshot.
      await waitFor('a process to snapshot', async () => (pair.some((running) => logged(running, 'snapshot finished; streaming').length > 0) ? true : undefined), 60_000);
      await expectConverged(db.url, plan, engine.url, 60_000);
      const snapshotters = pair.filter((running) => logged(running, 'snapshot started').length > 0);
      expect(snapshotters).toHaveLength(1);
      owner = snapshotters[0]!;
      standby = pair.find((running) => running !== owner)!;
      const waiting = logged(standby, 'standing by: another process owns this index');
      expect(waiting.map((l) => l.owner)).toEqual([holderOf(owner)]);
      // The standby touched neither the slot nor the index.
      expect(logged(standby, 'replication slot created')).toEqual([]);
      expect(logged(standby, 'snapshot finished; streaming')).toEqual([]);
      expect(await statusOf(standby)).toMatchObject({ phase: 'standby', owner: holderOf(owner) });
      expect((await statusOf(owner)).phase).toBe('streaming');

      await db.query(`UPDATE book SET title = 'While both run (${kind})' WHERE id <= 5`);
      await expectConverged(db.url, plan, engine.url);
    }),
    90_000,
  );

  it(
    'a SIGKILLed owner\'s index is taken over by the standby once the lease expires, resuming the stream (no new snapshot)',
    tracked(async () => {
      await owner.kill();
      await db.query(`UPDATE book SET title = 'After the kill (${kind})' WHERE id BETWEEN 6 AND 10`);
      await db.query(`DELETE FROM book_author WHERE book_isbn IN (SELECT isbn FROM book WHERE id = ${kind === 'redis' ? 11 : 21})`);
      await expectConverged(db.url, plan, engine.url, 60_000);
      expect(logged(standby, 'took over the index: this process owns it now')).toHaveLength(1);
      expect(logged(standby, 'snapshot started')).toEqual([]);
      expect(logged(standby, 'resuming snapshot')).toEqual([]);
      owner = standby;
    }),
    90_000,
  );

  it(
    'a SIGTERMed owner releases the lease: the standby takes over without waiting for it to expire',
    tracked(async () => {
      // The next owner holds a lease of 120 s: only a release can hand its index over within the wait below.
      const longLease = start(120);
      await waitFor('the new process to stand by', async () => (logged(longLease, 'standing by: another process owns this index').length > 0 ? true : undefined));
      expect(await owner.stop()).toBe(0);
      await waitFor('the long-lease process to take over', async () => (logged(longLease, 'took over the index: this process owns it now').length > 0 ? true : undefined));
      const next = start(3);
      await waitFor('a process to stand by behind it', async () => (logged(next, 'standing by: another process owns this index').length > 0 ? true : undefined));
      await db.query(`UPDATE book SET title = 'Owned by the long lease (${kind})' WHERE id BETWEEN 12 AND 15`);
      await expectConverged(db.url, plan, engine.url);
      expect(await longLease.stop()).toBe(0);
      await waitFor('the last process to take over well before 120 s', async () => (logged(next, 'took over the index: this process owns it now').length > 0 ? true : undefined), 30_000);
      await db.query(`UPDATE book SET title = 'Handed over twice (${kind})' WHERE id BETWEEN 16 AND 20`);
      await expectConverged(db.url, plan, engine.url);
      for (const running of [longLease, next]) expect(logged(running, 'snapshot started')).toEqual([]);
      expect(await next.stop()).toBe(0);
    }),
    120_000,
  );
});
