// Guarantee 2 of docs/design.md §2, randomised: after any mix of inserts, updates, deletes, truncates,
// primary-key changes and foreign-key moves on every table of the book tree, applied while `sluice run` streams,
// the index equals what a fresh full sync produces (same ids, same documents, nothing extra).
//
// The workload is seeded and reproducible; the seed is logged. Knobs:
//   SLUICE_TEST_SEED=<integer>        another (or a failing run's) seed
//   SLUICE_CONVERGENCE_OPS=<n>        operations (CI default 1,500). A larger run:
//     SLUICE_CONVERGENCE_OPS=20000 npx vitest run test/integration/convergence.test.ts
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, type RunningSluice } from '../helpers/live-sluice.js';
import { OPERATION_KINDS, runRandomWorkload, testSeed } from '../helpers/random-workload.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const SEED = testSeed(20_240_601);
const OPERATIONS = Number(process.env.SLUICE_CONVERGENCE_OPS ?? 1500);
/** The workload runs in rounds; the index must equal a fresh full sync after each (a stale document is caught before a later change rebuilds it). */
const ROUND = 250;
const INITIAL_BOOKS = 1000;
const index = 'convergence_book';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice | undefined;
let failed = false;

beforeAll(async () => {
  db = await createTestDatabase('convergence');
  await db.query(fixtureSql('book.sql'));
  // Enough rows that a change is rarely hidden by a later rebuild of the same document before the check.
  await db.query(bookScaleSql(INITIAL_BOOKS));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-convergence-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  const env = sluiceEnv(db.url, engine.url, {
    CHECKPOINT_PATH: work,
    PGSYNC_FLUSH_INTERVAL: '0.1',
    // Small batches: the stream applies the workload in many batches, each checkpointed and acknowledged.
    PGSYNC_BATCH_SIZE: '50',
    PGSYNC_LOG_LEVEL: 'info',
  });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr + bootstrap.stdout).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
  await expectConverged(db.url, plan, engine.url);
});

afterAll(async () => {
  const code = await sluice?.stop();
  if (failed || code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice?.output());
  await engine?.close();
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('randomised convergence (guarantee 2)', () => {
  it(
    `a random workload on every table of the tree, applied live, ends with the index equal to a fresh full sync (seed ${SEED}, ${OPERATIONS} operations)`,
    async () => {
      try {
        console.log(`convergence: SLUICE_TEST_SEED=${SEED} SLUICE_CONVERGENCE_OPS=${OPERATIONS}`);
        const byKind: Record<string, number> = {};
        for (let done = 0, round = 0; done < OPERATIONS; done += ROUND, round++) {
          const operations = Math.min(ROUND, OPERATIONS - done);
          const result = await runRandomWorkload(db, { seed: SEED + round * 7919, operations, maxTransactionSize: 8, log: () => undefined });
          // Every statement of the workload is valid against the constraints: a rollback means a broken workload, which would test nothing.
          expect(result.failures).toEqual([]);
          expect(result.committed).toBe(result.transactions);
          for (const [kind, n] of Object.entries(result.byKind)) byKind[kind] = (byKind[kind] ?? 0) + n;
          await expectConverged(db.url, plan, engine.url, 60_000);
          expect(sluice!.child.exitCode, 'Sluice kept running').toBeNull();
        }
        console.log(`operations by kind: ${JSON.stringify(byKind)}`);
        if (OPERATIONS >= 1000) {
          const table = (kind: string) => kind.split('.')[0]!;
          const untouched = [...new Set(OPERATION_KINDS.map(table))].filter((t) => t !== 'truncate' && !Object.keys(byKind).some((k) => table(k) === t));
          expect(untouched, 'tables the workload never changed').toEqual([]);
        }
        const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM book');
        console.log(`converged: ${rows[0]!.n} books in the table and in the index`);
      } catch (error) {
        failed = true;
        throw error;
      }
    },
    Math.max(120_000, OPERATIONS * 60),
  );
});
