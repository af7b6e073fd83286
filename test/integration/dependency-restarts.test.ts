// Dependencies going away while `sluice run` streams: PostgreSQL restarts, the search engine fails requests
// (503s and dropped connections), Redis restarts and loses its data (no persistence) — with changes made in
// between. Sluice waits each one out without exiting, starts the index over when its checkpoint is gone, and the
// index ends equal to a fresh full sync. Also the seed's runbook: `redis-cli del "queue:<slot>:meta"` then a
// restart of Sluice syncs the index again.
//
// Uses a dedicated PostgreSQL cluster and Redis (both are restarted) and the project's test engine (faults).
// Seeded: SLUICE_TEST_SEED=<integer> replays another workload (the seed is logged).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { runRandomWorkload, testSeed } from '../helpers/random-workload.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';

const SEED = testSeed(31_337);
const database = 'deps';
const index = 'deps_book';

let cluster: PostgresCluster;
let redis: RedisTestServer;
let redisClient: Redis;
let engine: EngineUnderTest;
let work: string;
let dbUrl: string;
let plan: EntryPlan;
let env: Record<string, string>;
let schemaPath: string;
let slot: string;
let key: string;
let sluice: RunningSluice | undefined;
const runs: RunningSluice[] = [];
let failed = false;
let round = 0;

function start(): RunningSluice {
  sluice = startSluice(['-c', schemaPath], env);
  runs.push(sluice);
  return sluice;
}

function alive(running: RunningSluice): boolean {
  return running.child.exitCode === null && running.child.signalCode === null;
}

/** A round of random changes (each round its own seed, derived from SEED). */
async function changes(operations = 250): Promise<void> {
  const result = await runRandomWorkload(dbUrl, { seed: SEED + round++, operations, maxTransactionSize: 6 });
  expect(result.failures).toEqual([]);
}

/** The server's run_id: changes with every start. */
async function redisRunId(): Promise<string | undefined> {
  return /run_id:(\w+)/.exec(await redisClient.info('server'))?.[1];
}

async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Log messages of `running` from character `from` of its output on. */
function messagesSince(running: RunningSluice, from: number): string[] {
  return running
    .output()
    .slice(from)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => {
      try {
        return String((JSON.parse(line) as { msg?: unknown }).msg);
      } catch {
        return '';
      }
    });
}

const tracked = (body: () => Promise<void>) => async () => {
  try {
    await body();
  } catch (error) {
    failed = true;
    throw error;
  }
};

beforeAll(async () => {
  [cluster, redis] = await Promise.all([startPostgresCluster(), startRedisServer()]);
  dbUrl = await cluster.createDatabase(database);
  await sql(fixtureSql('book.sql'));
  await sql(fixtureSql('book-data.sql'));
  redisClient = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 50 });
  redisClient.on('error', () => undefined);
  await redisClient.connect();
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-deps-'));
  const schema = fixtureSchema('book.json', database).map((e) => ({ ...(e as object), index }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(dbUrl, schema)).plans[0]!;
  slot = slotNameFor(database, index);
  key = `queue:${slot}:meta`;
  env = sluiceEnv(dbUrl, engine.url, {
    REDIS_CHECKPOINT: 'true',
    REDIS_URL: redis.url,
    // Dead letters (none expected) go next to it.
    CHECKPOINT_PATH: work,
    PGSYNC_FLUSH_INTERVAL: '0.1',
    PGSYNC_BATCH_SIZE: '50',
    PGSYNC_LOG_LEVEL: 'info',
    SLUICE_RETRY_INITIAL_MS: '100',
    SLUICE_RETRY_MAX_MS: '500',
  });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr + bootstrap.stdout).toBe(0);
});

afterAll(async () => {
  await sluice?.stop();
  if (failed || process.env.SHOW_SLUICE_OUTPUT) runs.forEach((run, i) => console.log(`---- sluice run ${i + 1} ----\n${run.output()}`));
  redisClient?.disconnect();
  await engine?.close();
  await redis?.stop();
  await cluster?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(REAL_ENGINE_URL)('dependencies restarting under a running Sluice', () => {
  it(
    'PostgreSQL restarts, engine outages and Redis restarts (losing the checkpoint) with changes in between: Sluice never exits and converges',
    tracked(async () => {
      const running = start();
      await expectConverged(dbUrl, plan, engine.url, 60_000);

      // PostgreSQL restarts right after a burst of changes, while Sluice is still applying them (slowed down).
      engine.server!.faults.inject({ kind: 'delay', ms: 200, path: '_bulk$', times: 10 });
      await changes();
      let mark = running.output().length;
      await cluster.restart();
      await changes();
      await expectConverged(dbUrl, plan, engine.url, 60_000);
      engine.server!.faults.clear();
      expect(alive(running), 'Sluice kept running through the PostgreSQL restart').toBe(true);
      expect(messagesSince(running, mark)).toContain('sync interrupted; retrying');

      // The engine fails: 503 on 20 bulk requests, then 5 connections dropped, while changes keep coming.
      // (A real restart of the test engine would come back empty, which no real engine does.)
      engine.server!.faults.inject({ kind: 'status', status: 503, path: '_bulk$', times: 20 });
      engine.server!.faults.inject({ kind: 'drop', path: '_bulk$', times: 5 });
      await changes();
      await expectConverged(dbUrl, plan, engine.url, 90_000);
      expect(engine.server!.faults.pending(), 'every injected failure hit Sluice').toBe(0);
      expect(alive(running), 'Sluice kept running through the engine outage').toBe(true);

      // Redis restarts while Sluice streams, its data gone: the next batch stores the checkpoint again.
      await changes();
      const before = await redisRunId();
      await redis.restart();
      expect(await redisRunId(), 'a new Redis server (empty: no persistence)').not.toBe(before);
      await changes();
      await expectConverged(dbUrl, plan, engine.url, 60_000);
      const stored = await waitFor('the checkpoint to be stored again', async () => (await redisClient.hget(key, 'sluice')) ?? undefined);
      expect(JSON.parse(stored)).toMatchObject({ slot, snapshot: { complete: true } });
      expect(alive(running), 'Sluice kept running through the Redis restart').toBe(true);

      // Redis loses its data while PostgreSQL is down: Sluice comes back to no checkpoint, must start the index
      // over (new slot, new snapshot) — and changes made just before, not yet applied, must not be lost.
      engine.server!.faults.inject({ kind: 'delay', ms: 200, path: '_bulk$', times: 10 });
      await changes();
      mark = running.output().length;
      await cluster.stop({ keepData: true });
      await redis.restart();
      await cluster.start();
      await waitFor('Sluice to start the index over', async () => (messagesSince(running, mark).some((m) => m.startsWith('starting the index over')) ? true : undefined), 60_000);
      engine.server!.faults.clear();
      await changes();
      await expectConverged(dbUrl, plan, engine.url, 60_000);
      expect(alive(running), 'Sluice kept running through all of it').toBe(true);
    }),
    240_000,
  );

  it(
    'the seed runbook: deleting the Redis key and restarting Sluice syncs the index again, with what changed meanwhile',
    tracked(async () => {
      expect(await sluice!.stop()).toBe(0);
      expect(await redisClient.del(key)).toBe(1);
      // Changes while Sluice is down: they are in the old slot, which the restart drops.
      await changes();
      const running = start();
      await waitFor('Sluice to start the index over', async () => (messagesSince(running, 0).some((m) => m.startsWith('starting the index over')) ? true : undefined));
      await expectConverged(dbUrl, plan, engine.url, 60_000);
      await changes();
      await expectConverged(dbUrl, plan, engine.url, 60_000);
      expect(alive(running)).toBe(true);
    }),
    120_000,
  );
});
