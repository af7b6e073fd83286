// The book fixture on a PostgreSQL cluster of the test's own (for tests that restart, restore or reconfigure the
// server): database, engine, schema file, bootstrap, and the environment to run `sluice run` on it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from './engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from './fixtures.js';
import { startPostgresCluster, type PostgresCluster } from './postgres-cluster.js';
import { runCli, sluiceEnv } from './run-cli.js';

export interface ClusterBookIndex {
  cluster: PostgresCluster;
  engine: EngineUnderTest;
  /** CHECKPOINT_PATH, beside the schema file. */
  work: string;
  dbUrl: string;
  plan: EntryPlan;
  schemaPath: string;
  /** `sluice` environment: file checkpoint store, 0.1 s flush interval, info logs. */
  env: Record<string, string>;
  /** Stops the engine and the cluster and removes the files. */
  close(): Promise<void>;
}

/**
 * Starts a cluster (`settings` in postgresql.conf), creates database `name` with the book fixture and `extraSql`,
 * writes the book schema as index `<name>_book` and bootstraps it as the cluster's superuser.
 */
export async function startClusterBookIndex(name: string, options: { settings?: Record<string, string>; extraSql?: string } = {}): Promise<ClusterBookIndex> {
  const cluster = await startPostgresCluster(options.settings ? { settings: options.settings } : {});
  const dbUrl = await cluster.createDatabase(name);
  await cluster.psql(fixtureSql('book.sql') + fixtureSql('book-data.sql') + (options.extraSql ?? ''), name);
  const engine = await engineForTest('es8');
  const work = mkdtempSync(join(tmpdir(), `sluice-${name}-`));
  const schema = fixtureSchema('book.json', name).map((e) => ({ ...(e as object), index: `${name}_book` }));
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  const plan = (await compileAgainst(dbUrl, schema)).plans[0]!;
  const env = sluiceEnv(dbUrl, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info' });
  expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
  return {
    cluster,
    engine,
    work,
    dbUrl,
    plan,
    schemaPath,
    env,
    close: async () => {
      await engine.close();
      await cluster.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
