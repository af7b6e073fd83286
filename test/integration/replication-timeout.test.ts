// A replication connection that goes silent without closing (a failover, a NAT dropping the flow: simulated by
// stopping the walsender with SIGSTOP) is taken for dead after SLUICE_REPLICATION_TIMEOUT_SECONDS and reopened;
// once PostgreSQL serves the slot again, changes flow and the index converges.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, logLines, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const index = 'silent_book';
let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice | undefined;
let stopped: number | undefined;

beforeAll(async () => {
  db = await createTestDatabase('silent');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-silent-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info', SLUICE_REPLICATION_TIMEOUT_SECONDS: '15' });
  expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
});

afterAll(async () => {
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  const code = await sluice?.stop();
  if (code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice?.output());
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('a replication connection gone silent', () => {
  it('is given up after SLUICE_REPLICATION_TIMEOUT_SECONDS and reopened; changes then flow again', async () => {
    await waitFor('the stream', async () => (sluice!.output().includes('snapshot finished; streaming') ? true : undefined));
    await expectConverged(db.url, plan, engine.url);
    const slot = slotNameFor(db.name, index);
    const pid = await waitFor('the walsender', async () => (await db.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]?.pid ?? undefined);
    process.kill(pid, 'SIGSTOP');
    stopped = pid;
    try {
      await waitFor(
        'the silent stream to be given up',
        async () => (logLines(sluice!.output()).some((l) => String(l.err ?? '').includes('sent nothing on the replication stream')) ? true : undefined),
        60_000,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
    await db.query(`UPDATE book SET title = 'After the silence' WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url, 60_000);
  }, 120_000);
});
