// Values a document uses that an UPDATE's WAL record does not show changing: a generated column (pgoutput leaves
// it out, and its sources need not be in the document) and xmin (changes with every update, even one that
// rewrites a row with the same values). Updates of such tables are never skipped as irrelevant.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst } from '../helpers/fixtures.js';
import { expectConverged, startSluice, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const index = 'unsent_person';
let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice | undefined;

beforeAll(async () => {
  db = await createTestDatabase('unsent');
  await db.query(`
    CREATE TABLE person (id int PRIMARY KEY, first text NOT NULL, last text NOT NULL, full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED);
    CREATE TABLE pet (id int PRIMARY KEY, person_id int NOT NULL REFERENCES person (id), name text NOT NULL);
    INSERT INTO person VALUES (1, 'Ada', 'Lovelace'), (2, 'Alan', 'Turing');
    INSERT INTO pet VALUES (1, 1, 'Babbage'), (2, 2, 'Enigma');`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-unsent-'));
  const schema = [
    {
      database: db.name,
      index,
      nodes: {
        table: 'person',
        columns: ['id', 'full_name'],
        children: [{ table: 'pet', columns: ['id', 'name', 'xmin'], relationship: { type: 'one_to_many', variant: 'object' } }],
      },
    },
  ];
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1' });
  expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
});

afterAll(async () => {
  const code = await sluice?.stop();
  if (code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice?.output());
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('values an update does not show changing', () => {
  it('a generated column changed through a column no document names reaches the index', async () => {
    await expectConverged(db.url, plan, engine.url);
    await db.query(`UPDATE person SET first = 'Augusta' WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url);
  });

  it('xmin changed by an update that rewrites the same values reaches the index', async () => {
    await db.query(`UPDATE pet SET name = name WHERE id = 2`);
    await expectConverged(db.url, plan, engine.url);
  });
});
