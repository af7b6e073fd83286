// Schema changes without downtime (docs/design.md §7): the index is an alias over a generation; a changed entry is
// built beside the live one while a writer keeps changing rows and a reader keeps searching the alias, then
// swapped in. Every search succeeds and sees a complete index; afterwards the index equals a fresh full sync of
// the new schema. Also: a crash mid-rebuild resumes it, `sluice reindex` rebuilds on request, and a concrete
// index of the alias' name (a seed deployment) is adopted.
//
// Needs the project's test engine for the fault injection that slows the rebuild down; the rest runs anywhere.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/checkpoint/checkpoint-store.js';
import { rebuildSlotName } from '../../src/lifecycle/generation-names.js';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { deleteIndex, engineCall, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { backgroundWorkload, testSeed } from '../helpers/random-workload.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const SEED = testSeed(7_007);
const BOOKS = 2000;

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let env: Record<string, string>;
let sluice: RunningSluice | undefined;
const outputs: string[] = [];
let failed = false;

interface BookEntry {
  database: string;
  index: string;
  nodes: { table: string; columns: string[]; transform?: object; children: object[] };
}

/** Version 1: books with their publisher. */
function schemaV1(index: string): BookEntry[] {
  const publisher = {
    table: 'publisher',
    label: 'publisher',
    columns: ['id', 'name'],
    relationship: { variant: 'object', type: 'one_to_one', foreign_key: { child: ['id'], parent: ['publisher_id'] } },
  };
  return [{ database: db.name, index, nodes: { table: 'book', columns: ['id', 'isbn', 'title', 'publisher_id'], children: [publisher] } }];
}

/** Version 2: a renamed column, an added child (authors through book_author) and a changed mapping. */
function schemaV2(index: string): BookEntry[] {
  const [entry] = schemaV1(index);
  entry!.nodes.transform = { rename: { title: 'book_title' }, mapping: { isbn: { type: 'keyword' } } };
  entry!.nodes.children.push({ table: 'author', label: 'authors', columns: ['id', 'name'], relationship: { type: 'one_to_many', variant: 'object', through_tables: ['book_author'] } });
  return [entry!];
}

/** Version 3: one more column. */
function schemaV3(index: string): BookEntry[] {
  const [entry] = schemaV2(index);
  entry!.nodes.columns.push('publish_date');
  return [entry!];
}

/** An entry that stays the same while the others change. */
function stableEntry(): object {
  return { database: db.name, index: 'stable_publisher', nodes: { table: 'publisher', columns: ['id', 'name'] } };
}

async function writeSchema(schema: object[]): Promise<{ path: string; plan: EntryPlan; plans: EntryPlan[] }> {
  const path = join(work, 'schema.json');
  writeFileSync(path, JSON.stringify(schema));
  const bootstrap = await runCli(['-c', path, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr + bootstrap.stdout).toBe(0);
  const { plans } = await compileAgainst(db.url, schema);
  return { path, plan: plans[0]!, plans };
}

function start(schemaPath: string, extra: Record<string, string> = {}): RunningSluice {
  sluice = startSluice(['-c', schemaPath], { ...env, ...extra });
  return sluice;
}

async function stop(): Promise<void> {
  if (!sluice) return;
  const code = await sluice.stop();
  outputs.push(sluice.output());
  sluice = undefined;
  expect(code).toBe(0);
}

function engineJson(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return engineCall(engine.url, method, path, body);
}

/** The indices behind the alias `index`, or undefined when `index` is not an alias. */
async function aliasTargets(index: string): Promise<string[] | undefined> {
  const { status, json } = await engineJson('GET', `/_alias/${index}`);
  return status === 200 ? Object.keys(json as object).sort() : undefined;
}

function checkpoint(index: string, rebuild = false): Checkpoint | undefined {
  const slot = slotNameFor(db.name, index);
  const path = join(work, `.${rebuild ? rebuildSlotName(slot) : slot}.sluice.json`);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Checkpoint) : undefined;
}

/** Searches the alias without pause; records every failed search and the smallest hit count seen. */
function searchLoop(index: string): { stop(): Promise<{ searches: number; failures: string[]; minHits: number }> } {
  let running = true;
  const failures: string[] = [];
  let searches = 0;
  let minHits = Number.POSITIVE_INFINITY;
  const done = (async () => {
    while (running) {
      try {
        const { status, json } = await engineJson('POST', `/${index}/_search`, { size: 1, track_total_hits: true, query: { match_all: {} } });
        searches += 1;
        if (status !== 200) failures.push(`${status} ${JSON.stringify(json).slice(0, 300)}`);
        else minHits = Math.min(minHits, typeof json.hits.total === 'number' ? json.hits.total : json.hits.total.value);
      } catch (error) {
        failures.push(String(error));
      }
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return { searches, failures, minHits };
    },
  };
}

/** The random workload (no TRUNCATE: an emptied table would empty the index legitimately), paced, until stopped. */
function writerLoop(seed: number): ReturnType<typeof backgroundWorkload> {
  return backgroundWorkload(db, { seed, operations: 200, maxTransactionSize: 4, truncateChance: 0, pauseMs: 10, log: () => undefined });
}

beforeAll(async () => {
  db = await createTestDatabase('evolve');
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(BOOKS));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-evolve-'));
  env = sluiceEnv(db.url, engine.url, {
    CHECKPOINT_PATH: work,
    PGSYNC_FLUSH_INTERVAL: '0.1',
    PGSYNC_BATCH_SIZE: '100',
    PGSYNC_LOG_LEVEL: 'info',
    SLUICE_SNAPSHOT_CHUNK_SIZE: '100',
    SLUICE_RETRY_INITIAL_MS: '100',
    SLUICE_RETRY_MAX_MS: '1000',
    SLUICE_REINDEX_GRACE_SECONDS: '1',
  });
});

afterEach((context) => {
  if (context.task.result?.state === 'fail') failed = true;
});

afterAll(async () => {
  if (sluice) {
    await sluice.kill();
    outputs.push(sluice.output());
  }
  if (failed || process.env.SHOW_SLUICE_OUTPUT) outputs.forEach((out, i) => console.log(`---- sluice run ${i + 1} ----\n${out}`));
  engine?.server?.faults.clear();
  await engine?.close();
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('schema changes without downtime', () => {
  const index = 'evolving_book';

  it('a changed entry is rebuilt beside the live generation and swapped in while searches keep working', async () => {
    const v1 = await writeSchema([...schemaV1(index), stableEntry()]);
    start(v1.path);
    await expectConverged(db.url, v1.plan, engine.url, 60_000);
    await expectConverged(db.url, v1.plans[1]!, engine.url, 60_000);
    const [first] = (await aliasTargets(index))!;
    const stableBefore = await aliasTargets('stable_publisher');
    expect(first).toMatch(new RegExp(`^${index}-[0-9a-f]{12}$`));

    const reader = searchLoop(index);
    const writer = writerLoop(SEED);
    await sleep(300);
    await stop();
    const v2 = await writeSchema([...schemaV2(index), stableEntry()]);
    start(v2.path);
    const second = await waitFor(
      'the alias to move to a new generation',
      async () => {
        const targets = await aliasTargets(index);
        return targets?.length === 1 && targets[0] !== first ? targets[0] : undefined;
      },
      120_000,
    );
    await sleep(500);
    const written = await writer.stop();
    const seen = await reader.stop();

    expect(seen.failures).toEqual([]);
    expect(seen.searches).toBeGreaterThan(50);
    // Never a missing, empty or half-built index: the workload keeps the book count near BOOKS.
    expect(seen.minHits).toBeGreaterThan(BOOKS * 0.9);
    expect(written.reduce((sum, r) => sum + r.committed, 0)).toBeGreaterThan(20);
    await expectConverged(db.url, v2.plan, engine.url, 60_000);
    // The unchanged entry kept its generation and streamed on.
    expect(await aliasTargets('stable_publisher')).toEqual(stableBefore);
    await expectConverged(db.url, v2.plans[1]!, engine.url, 60_000);
    expect(sluice!.output().match(/building a new generation/g)).toHaveLength(1);
    const mapping = await engineJson('GET', `/${index}/_mapping`);
    expect(Object.keys(mapping.json)).toEqual([second]);
    expect(mapping.json[second!].mappings.properties.isbn.type).toBe('keyword');
    // The rebuild's own slot and checkpoint are gone; the old generation goes after its grace period (1 s here).
    expect(checkpoint(index)?.generation).toBe(second);
    expect(checkpoint(index)?.rebuild).toBeUndefined();
    expect(checkpoint(index, true)).toBeUndefined();
    const slots = await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1`, [rebuildSlotName(slotNameFor(db.name, index))]);
    expect(slots.rows).toEqual([]);
    await waitFor('the old generation to be deleted', async () => ((await engineJson('GET', `/${first}`)).status === 404 ? true : undefined), 30_000);

    // Restarting with the same schema changes nothing.
    await stop();
    start(v2.path);
    await db.query(`UPDATE book SET title = 'After restart' WHERE id = 5`);
    await expectConverged(db.url, v2.plan, engine.url, 60_000);
    expect(await aliasTargets(index)).toEqual([second]);
    expect(sluice!.output()).not.toContain('building a new generation');
  }, 300_000);

  it.runIf(!REAL_ENGINE_URL)('a crash in the middle of a rebuild resumes it', async () => {
    await stop();
    const v3 = await writeSchema(schemaV3(index));
    const [live] = (await aliasTargets(index))!;
    // Slow bulks: the rebuild's snapshot takes long enough to be killed in the middle.
    engine.server!.faults.inject({ kind: 'delay', ms: 150, path: '_bulk$', times: 1_000_000 });
    let running = start(v3.path);
    const progress = await waitFor('the rebuild to finish some chunks', async () => checkpoint(index, true)?.snapshot?.doneUpTo, 60_000);
    const generation = checkpoint(index)!.rebuild!.generation;
    // Both generations show while the rebuild runs.
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(running.output())![1];
    const status = (await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ generation: string; phase: string; rebuild?: { generation: string; phase: string; snapshotDocuments: number } }> };
    expect(status.indexes[0]).toMatchObject({ generation: live, phase: 'streaming', rebuild: { generation, phase: 'snapshot' } });
    expect(status.indexes[0]!.rebuild!.snapshotDocuments).toBeGreaterThan(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain(`sluice_generation_info{index="${index}",generation="${live}",role="live"} 1`);
    expect(metrics).toContain(`sluice_generation_info{index="${index}",generation="${generation}",role="rebuild"} 1`);
    await running.kill();
    outputs.push(running.output());
    expect(checkpoint(index, true)!.snapshot!.complete).toBe(false);
    engine.server!.faults.clear();

    running = start(v3.path);
    await waitFor('the alias to move to the rebuilt generation', async () => ((await aliasTargets(index))?.[0] === generation ? true : undefined), 120_000);
    const lines = running.output();
    // Resumed, not restarted: the same generation, its snapshot continued after the chunks already done.
    expect(lines).toContain('resuming snapshot');
    expect(lines).not.toContain('building a new generation');
    expect(lines).not.toContain('abandoning');
    expect(Number(progress[0])).toBeGreaterThan(0);
    expect(generation).not.toBe(live);
    await expectConverged(db.url, v3.plan, engine.url, 60_000);
  }, 300_000);

  it('`sluice reindex` builds a new generation of an unchanged entry and swaps it in', async () => {
    const v3 = await writeSchema(schemaV3(index));
    if (!sluice) start(v3.path);
    const [before] = (await waitFor('an alias', () => aliasTargets(index)))!;
    const reindex = await runCli(['-c', v3.path, 'reindex', index], env);
    expect(reindex.code, reindex.stderr).toBe(0);
    expect(reindex.stdout).toContain('reindex requested');
    const after = await waitFor('the alias to move', async () => {
      const targets = await aliasTargets(index);
      return targets?.length === 1 && targets[0] !== before ? targets[0] : undefined;
    }, 120_000);
    // Same fingerprint, so the same prefix, with a suffix that tells the generations apart.
    expect(after!.startsWith(`${before!.slice(0, index.length + 13)}-`)).toBe(true);
    await db.query(`UPDATE book SET title = 'After reindex' WHERE id = 6`);
    await expectConverged(db.url, (await compileAgainst(db.url, schemaV3(index))).plans[0]!, engine.url, 60_000);
    const unknown = await runCli(['-c', v3.path, 'reindex', 'nope'], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no schema entry writes index "nope"');
  }, 300_000);

  it('a concrete index of the alias name (a seed deployment) keeps answering, then is replaced by the alias', async () => {
    await stop();
    const adopted = 'seed_book';
    await deleteIndex(engine.url, adopted);
    // What PGSync left: a plain index with (here, stale) documents.
    expect((await engineJson('PUT', `/${adopted}`, {})).status).toBe(200);
    const seedDocs = [1, 2, 3].map((id) => `${JSON.stringify({ index: { _index: adopted, _id: String(id) } })}\n${JSON.stringify({ title: 'from the seed' })}\n`).join('');
    const bulk = await request(`${engine.url}/_bulk?refresh=true`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: seedDocs });
    expect(bulk.statusCode).toBe(200);
    await bulk.body.text();
    const reader = searchLoop(adopted);
    const seedSchema = await writeSchema(schemaV1(adopted));
    start(seedSchema.path);
    const generation = await waitFor('the alias to replace the index', async () => (await aliasTargets(adopted))?.[0], 120_000);
    const seen = await reader.stop();
    expect(seen.failures).toEqual([]);
    expect(seen.minHits).toBeGreaterThanOrEqual(3);
    expect(generation).toMatch(new RegExp(`^${adopted}-[0-9a-f]{12}$`));
    await expectConverged(db.url, seedSchema.plan, engine.url, 60_000);
    expect(sluice!.output()).toContain('alias replaced the concrete index');
    // evolving_book left schema.json: its slot (which would hold WAL forever) and checkpoint went; its index stays.
    expect(sluice!.output()).toContain('schema entry removed from schema.json');
    const slots = await db.query<{ slot_name: string }>(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE '%evolving_book%'`);
    expect(slots.rows).toEqual([]);
    expect(checkpoint('evolving_book')).toBeUndefined();
    expect(await aliasTargets('evolving_book')).toHaveLength(1);
  }, 300_000);

  it('a schema rolled back within the grace period builds a fresh generation, not into the retired one', async () => {
    await stop();
    const rolled = 'rolled_book';
    const a = await writeSchema(schemaV1(rolled));
    const grace = { SLUICE_REINDEX_GRACE_SECONDS: '600' };
    start(a.path, grace);
    await expectConverged(db.url, a.plan, engine.url, 60_000);
    const [genA] = (await aliasTargets(rolled))!;
    await stop();
    const b = await writeSchema(schemaV2(rolled));
    start(b.path, grace);
    await waitFor('the alias to move to B', async () => ((await aliasTargets(rolled))?.[0] !== genA ? true : undefined), 120_000);
    await expectConverged(db.url, b.plan, engine.url, 60_000);
    await stop();
    // Back to A while A's generation is still retired (600 s): a new name, so its deletion cannot hit the rebuild.
    const back = await writeSchema(schemaV1(rolled));
    start(back.path, grace);
    const genBack = await waitFor('the alias to move back', async () => {
      const [target] = (await aliasTargets(rolled)) ?? [];
      return target !== undefined && target.startsWith(`${genA}-`) ? target : undefined;
    }, 120_000);
    expect(genBack).not.toBe(genA);
    await expectConverged(db.url, back.plan, engine.url, 60_000);
    expect((await engineJson('GET', `/${genA}`)).status).toBe(200);
  }, 300_000);
});
