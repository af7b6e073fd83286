// A routing value made of a child's fields (a root concat naming a child object): a TRUNCATE of that child changes
// the routing of every root that had a child row, and the rebuild writes each document on its new shard. The copy
// on the old shard must go too, or the index holds those ids twice (an UPDATE of a child row already moved it).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineCall, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { buildDocuments, compileAgainst } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const index = 'child_routed_item';
let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice | undefined;

interface Copy {
  id: string;
  routing?: string;
}

/** Every stored copy, over every shard, sorted by id then routing. */
async function copies(): Promise<Copy[]> {
  await engineCall(engine.url, 'POST', `/${index}/_refresh`);
  const { json } = await engineCall(engine.url, 'POST', `/${index}/_search`, { size: 1000, _source: false, query: { match_all: {} } });
  return (json.hits.hits as Array<{ _id: string; _routing?: string }>)
    .map((h) => ({ id: h._id, ...(h._routing !== undefined ? { routing: h._routing } : {}) }))
    .sort((a, b) => (a.id + (a.routing ?? '') < b.id + (b.routing ?? '') ? -1 : 1));
}

/** One copy per document, under the routing a fresh full sync gives it. */
async function expectOneCopyEach(): Promise<void> {
  const want = (await buildDocuments(db.url, plan)).map((d) => ({ id: d.id, routing: d.routing as string })).sort((a, b) => (a.id + a.routing < b.id + b.routing ? -1 : 1));
  let actual: Copy[] = [];
  try {
    await waitFor('one copy of each document under its routing', async () => {
      actual = await copies();
      return JSON.stringify(actual) === JSON.stringify(want) ? true : undefined;
    });
  } catch (error) {
    expect(actual).toEqual(want);
    throw error;
  }
  await expectConverged(db.url, plan, engine.url);
}

beforeAll(async () => {
  db = await createTestDatabase('child_routing');
  await db.query(`CREATE TABLE item (id int PRIMARY KEY, code text NOT NULL);
    CREATE TABLE note (id int PRIMARY KEY, item_id int NOT NULL REFERENCES item (id), grp int);
    ALTER TABLE note REPLICA IDENTITY FULL;
    INSERT INTO item SELECT g, 'c' || g FROM generate_series(1, 12) g;
    INSERT INTO note SELECT g, g, g * 7 FROM generate_series(1, 12) g`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-child-routing-'));
  const schema = [
    {
      database: db.name,
      index,
      routing: 'route',
      setting: { number_of_shards: 4 },
      nodes: {
        table: 'item',
        columns: ['id', 'code'],
        transform: { concat: [{ columns: ['code', 'note'], destination: 'route', delimiter: '-' }] },
        children: [{ table: 'note', columns: ['grp'], relationship: { type: 'one_to_one', variant: 'object', foreign_key: { child: ['item_id'], parent: ['id'] } } }],
      },
    },
  ];
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  const compiled = await compileAgainst(db.url, schema);
  expect(compiled.problems.filter((p) => p.severity === 'error')).toEqual([]);
  plan = compiled.plans[0]!;
  const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
  await expectOneCopyEach();
});

afterAll(async () => {
  await sluice?.stop();
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('a routing value made of a child field', () => {
  it('an UPDATE of the child row moves its document to the new routing', async () => {
    await db.query(`UPDATE note SET grp = 1000 WHERE id = 1`);
    await expectOneCopyEach();
    expect((await copies()).find((c) => c.id === '1')?.routing).toContain('1000');
  });

  it('a TRUNCATE of the child table leaves one copy of each document, under its new routing', async () => {
    const before = await copies();
    await db.query(`TRUNCATE note`);
    await expectOneCopyEach();
    // Every routing changed (the child part is gone).
    const after = await copies();
    for (const copy of after) expect(before.find((b) => b.id === copy.id)?.routing).not.toBe(copy.routing);
  });
});
