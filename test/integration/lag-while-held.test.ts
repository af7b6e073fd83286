// The lag Sluice reports while work it has received is held up (the engine answering slowly), for the shapes a
// transaction's changes take in batches: a transaction larger than a batch is applied in several batches before its
// commit is read, and those batches must count as behind from its commit time, as the last one does.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { allDocuments, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice, stopShowingOutput } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice | undefined;
const index = 'held_items';

describe.runIf(!REAL_ENGINE_URL)('lag while a batch is held up', () => {
  beforeAll(async () => {
    db = await createTestDatabase('lag_held');
    await db.query(`CREATE TABLE item (id int PRIMARY KEY, title text); INSERT INTO item SELECT i, 'item ' || i FROM generate_series(1, 60) AS i`);
    engine = await engineForTest('es8');
    work = mkdtempSync(join(tmpdir(), 'sluice-lag-held-'));
    const schema = [{ database: db.name, index, nodes: { table: 'item', columns: ['id', 'title'] } }];
    const schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify(schema));
    plan = (await compileAgainst(db.url, schema)).plans[0]!;
    // Batches of 10 changes: a transaction of 60 is applied in six, five of them before its commit is read.
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_BATCH_SIZE: '10', PGSYNC_LOG_LEVEL: 'info' });
    expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(db.url, plan, engine.url);
  });

  afterAll(async () => {
    await stopShowingOutput(sluice);
    await engine?.close();
    await db?.drop();
    rmSync(work, { recursive: true, force: true });
  });

  it('counts a transaction larger than a batch as behind from its commit, while its first batch is held', async () => {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(sluice!.output())![1]!;
    const lagOf = async () => ((await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ lagSeconds?: number }> }).indexes[0]!.lagSeconds;
    // A small change first, so that the last applied batch's lag is a fraction of a second.
    await db.query(`UPDATE item SET title = 'first' WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url);
    // Every bulk is held: the writer has two in flight at once.
    engine.server!.faults.inject({ kind: 'delay', ms: 8000, method: 'POST', path: '_bulk$', times: 10 });
    await db.query(`UPDATE item SET title = title || ' (renamed in one transaction)'`);
    const held = await waitFor('the lag of the held batch', async () => {
      const lag = await lagOf();
      return lag !== undefined && lag >= 2 ? lag : undefined;
    });
    expect(held).toBeLessThan(60);
    // Seen while held: no document of the transaction is in the index yet.
    const titles = [...(await allDocuments(engine.url, index)).values()].map((doc) => (doc as { title: string }).title);
    expect(titles.filter((title) => title.endsWith('(renamed in one transaction)'))).toEqual([]);
    await expectConverged(db.url, plan, engine.url);
    await waitFor('the lag to fall back once applied', async () => ((await lagOf())! < 2 ? true : undefined));
  });
});
