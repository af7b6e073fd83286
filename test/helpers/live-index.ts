// One index synced by a running `sluice run` over a fresh test database: database, engine, schema file,
// bootstrap, process, and the teardown of all of them.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from './engine.js';
import { compileAgainst } from './fixtures.js';
import { startSluice, type RunningSluice } from './live-sluice.js';
import { runCli, sluiceEnv } from './run-cli.js';
import { createTestDatabase, type TestDatabase } from './test-env.js';

export interface LiveIndex {
  db: TestDatabase;
  engine: EngineUnderTest;
  /** The one schema entry's compiled plan, for the convergence oracle. */
  plan: EntryPlan;
  sluice: RunningSluice;
  /** Stops the process (printing its output unless it exited 0) and removes everything. */
  close(): Promise<void>;
}

/**
 * Creates a database named after `prefix`, runs `setupSql` in it, writes the schema `schemaFor(database)` (one
 * entry), bootstraps as the test's superuser and starts `sluice run` with a file checkpoint store.
 */
export async function startLiveIndex(
  prefix: string,
  setupSql: string[],
  schemaFor: (database: string) => object[],
  extraEnv: Record<string, string> = {},
  bootstrapFlags: string[] = [],
): Promise<LiveIndex> {
  const db = await createTestDatabase(prefix);
  for (const sql of setupSql) await db.query(sql);
  const engine = await engineForTest('es8');
  const work = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`));
  const schema = schemaFor(db.name);
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  const plan = (await compileAgainst(db.url, schema)).plans[0]!;
  const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', ...extraEnv });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap', ...bootstrapFlags], env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  const sluice = startSluice(['-c', schemaPath], env);
  return {
    db,
    engine,
    plan,
    sluice,
    close: async () => {
      const code = await sluice.stop();
      if (code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice.output());
      await engine.close();
      await db.drop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
