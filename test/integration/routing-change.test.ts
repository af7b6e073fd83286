// A root row's routing column changes while `sluice run` streams: with several primary shards the document
// then belongs on another shard, and the copy on the old one must be deleted, or the index holds the id twice
// (a search returns both; only the new one is ever updated). The engine models shards with Elasticsearch's
// own routing, so the routing values below land on different shards there and on a real cluster alike.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { shardFor } from '../es-server/routing.js';
import { allDocuments, engineCall, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { buildDocuments, compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, logLines, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const SHARDS = 4;
const index = 'routed_book';
/** Routed by a nullable column, in a mapping that does not require routing: a null value stores a copy without one. */
const memoIndex = 'routed_memo';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice;
let schemaPath: string;
let env: Record<string, string>;

interface Copy {
  id: string;
  routing?: string;
}

const byId = (a: Copy, b: Copy): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** A POST to the engine that must succeed; its parsed body. */
async function post(path: string, body: unknown = {}): Promise<any> {
  const { status, json } = await engineCall(engine.url, 'POST', path, body);
  if (status !== 200) throw new Error(`${path}: ${status} ${JSON.stringify(json)}`);
  return json;
}

/** Every stored copy of these ids, over every shard (or only the shards `routing` picks). */
async function copiesOf(ids: string[], routing?: string, of = index): Promise<Copy[]> {
  await post(`/${of}/_refresh`);
  const query = routing === undefined ? '' : `?routing=${encodeURIComponent(routing)}`;
  const json = await post(`/${of}/_search${query}`, { size: 100, track_total_hits: true, _source: false, query: { ids: { values: ids } } });
  expect(json.hits.total.value).toBe(json.hits.hits.length);
  // Sorted by id, then routing: a leftover copy shows next to the current one.
  return (json.hits.hits as Array<{ _id: string; _routing?: string }>)
    .map((h) => ({ id: h._id, ...(h._routing !== undefined ? { routing: h._routing } : {}) }))
    .sort((a, b) => byId(a, b) || ((a.routing ?? '') < (b.routing ?? '') ? -1 : 1));
}

/** Routing of every root as a fresh full sync would write it. */
async function expectedRoutings(): Promise<Map<string, string>> {
  return new Map((await buildDocuments(db.url, plan)).map((d) => [d.id, d.routing as string]));
}

/**
 * The index holds exactly one copy of each document, under the routing a fresh full sync would use (and none of
 * `gone`, roots deleted since), and equals that sync. Copies are compared first: the convergence oracle reads
 * documents into a map by id, where a leftover copy would be hidden or would only show as different content.
 */
async function expectOneCopyEach(gone: string[] = []): Promise<void> {
  const expected = await expectedRoutings();
  const ids = [...new Set([...expected.keys(), ...gone])];
  const want: Copy[] = [...expected].map(([id, routing]) => ({ id, routing })).sort(byId);
  let actual: Copy[] = [];
  try {
    await waitFor('one copy of each document under its routing', async () => {
      actual = await copiesOf(ids);
      return JSON.stringify(actual) === JSON.stringify(want) ? true : undefined;
    });
  } catch (error) {
    expect(actual).toEqual(want);
    throw error;
  }
  await expectConverged(db.url, plan, engine.url);
  expect((await post(`/${index}/_count`)).count).toBe(expected.size);
}

/** An isbn (routing value as is: no "00" for the schema's replace transform) whose shard is, or is not, `shard`. */
function isbnOnShard(prefix: string, wanted: (shard: number) => boolean): string {
  for (let i = 1; i < 1000; i++) {
    const isbn = `${prefix}${i}`;
    if (!isbn.includes('00') && wanted(shardFor(isbn, SHARDS))) return isbn;
  }
  throw new Error('no isbn found');
}

beforeAll(async () => {
  db = await createTestDatabase('routing_change');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  await db.query('CREATE TABLE memo (id int PRIMARY KEY, owner text, body text)');
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-routing-'));
  const schema: object[] = fixtureSchema('book.json', db.name).map((e) => {
    const entry = e as { setting?: Record<string, unknown> };
    return { ...entry, index, setting: { ...entry.setting, number_of_shards: SHARDS } };
  });
  schema.push({
    database: db.name,
    index: memoIndex,
    routing: 'owner',
    setting: { number_of_shards: SHARDS },
    mappings: { _routing: { required: false } },
    nodes: { table: 'memo', columns: ['id', 'owner', 'body'] },
  });
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  expect(plan.routing).toBe('book_isbn');
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
  await waitFor('the snapshot', async () => ((await allDocuments(engine.url, index).catch(() => new Map())).size === 3 ? true : undefined));
});

afterAll(async () => {
  const code = await sluice?.stop();
  if (code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice?.output());
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('a root whose routing value changes moves to its new shard', () => {
  it('the index has the shards the schema asks for, and the snapshot one copy per book', async () => {
    const settings = (await engineCall(engine.url, 'GET', `/${index}/_settings`)).json as Record<string, { settings: { index: { number_of_shards: string } } }>;
    expect(Object.values(settings).map((s) => s.settings.index.number_of_shards)).toEqual([String(SHARDS)]);
    await expectOneCopyEach();
  });

  it('an isbn update deletes the copy under the old routing; the new routing is on another shard', async () => {
    const before = await expectedRoutings();
    const moves = ['1', '2'].map((id) => {
      const old = before.get(id)!;
      return { id, old, isbn: isbnOnShard(`m${id}-`, (shard) => shard !== shardFor(old, SHARDS)) };
    });
    for (const { old, isbn } of moves) expect(shardFor(isbn, SHARDS)).not.toBe(shardFor(old, SHARDS));
    // One transaction moves both (ON UPDATE CASCADE rewrites their child rows too).
    await db.query(`BEGIN; ${moves.map(({ id, isbn }) => `UPDATE book SET isbn = '${isbn}' WHERE id = ${id};`).join(' ')} COMMIT;`);
    await expectOneCopyEach();
    const after = await expectedRoutings();
    for (const { id, old, isbn } of moves) {
      expect(after.get(id)).toBe(isbn);
      expect(await copiesOf([id])).toEqual([{ id, routing: isbn }]);
      // The shard the old routing picks no longer holds the id; the new one does.
      expect(await copiesOf([id], old)).toEqual([]);
      expect(await copiesOf([id], isbn)).toEqual([{ id, routing: isbn }]);
    }
    if (engine.server) for (const { id, isbn } of moves) expect(engine.server.store.copies(index, id).map((c) => [c.shard, c.routing])).toEqual([[shardFor(isbn, SHARDS), isbn]]);
  });

  it('a routing value changed to another one on the same shard also leaves one copy', async () => {
    const old = (await expectedRoutings()).get('3')!;
    const isbn = isbnOnShard('s3-', (shard) => shard === shardFor(old, SHARDS));
    await db.query(`UPDATE book SET isbn = '${isbn}' WHERE id = 3`);
    await expectOneCopyEach();
    expect(await copiesOf(['3'])).toEqual([{ id: '3', routing: isbn }]);
  });

  it('two routing changes in quick succession, then a delete of the root: no copy anywhere', async () => {
    const start = (await expectedRoutings()).get('1')!;
    const a = isbnOnShard('qa-', (shard) => shard !== shardFor(start, SHARDS));
    const b = isbnOnShard('qb-', (shard) => shard !== shardFor(start, SHARDS) && shard !== shardFor(a, SHARDS));
    await db.query(`UPDATE book SET isbn = '${a}' WHERE id = 1`);
    await db.query(`UPDATE book SET isbn = '${b}' WHERE id = 1`);
    await expectOneCopyEach();
    expect(await copiesOf(['1'])).toEqual([{ id: '1', routing: b }]);
    for (const r of [start, a]) expect(await copiesOf(['1'], r)).toEqual([]);

    await db.query(`DELETE FROM book WHERE id = 1`);
    await expectOneCopyEach(['1']);
    expect(await copiesOf(['1'])).toEqual([]);
    for (const r of [start, a, b]) expect(await copiesOf(['1'], r)).toEqual([]);
    if (engine.server) expect(engine.server.store.copies(index, '1')).toEqual([]);
  });

  it('stray copies on other shards (an outside write) go with the next change of their root, and with its delete', async () => {
    const stray = async (id: string, prefix: string) => {
      const current = (await expectedRoutings()).get(id)!;
      const routing = isbnOnShard(prefix, (shard) => shard !== shardFor(current, SHARDS));
      const put = await engineCall(engine.url, 'PUT', `/${index}/_doc/${id}?routing=${routing}&refresh=true`, { book_title: 'stray copy' });
      expect(put.status).toBe(201);
      expect(await copiesOf([id])).toHaveLength(2);
    };
    await stray('2', 'z2-');
    const isbn = isbnOnShard('n2-', () => true);
    await db.query(`UPDATE book SET isbn = '${isbn}' WHERE id = 2`);
    await expectOneCopyEach(['1']);
    expect(await copiesOf(['2'])).toEqual([{ id: '2', routing: isbn }]);

    await stray('3', 'z3-');
    await db.query(`DELETE FROM book WHERE id = 3`);
    await expectOneCopyEach(['1', '3']);
    expect(await copiesOf(['3'])).toEqual([]);
  });
});

describe('an index that starts over', () => {
  it('deletes the copy left under a routing the old slot had not yet moved (sluice reset)', async () => {
    expect(await sluice.stop()).toBe(0);
    const old = (await expectedRoutings()).get('2')!;
    const isbn = isbnOnShard('r2-', (shard) => shard !== shardFor(old, SHARDS));
    // Held only by the slot that reset drops: the new snapshot writes the new copy, nothing streams the move.
    await db.query(`UPDATE book SET isbn = '${isbn}' WHERE id = 2`);
    const reset = await runCli(['-c', schemaPath, 'reset', index], env);
    expect(reset.code, reset.stderr).toBe(0);
    sluice = startSluice(['-c', schemaPath], env);
    await expectOneCopyEach(['1', '3']);
    expect(await copiesOf(['2'])).toEqual([{ id: '2', routing: isbn }]);
    expect(await copiesOf(['2'], old)).toEqual([]);
    expect(sluice.output()).toContain('deleted copies stored under a routing their rows no longer have');
  });
});

describe('a root whose routing value is null (routing not required)', () => {
  const memoCopies = async (): Promise<Copy[]> => copiesOf(['1'], undefined, memoIndex);
  const settle = (want: Copy[]) =>
    waitFor(`memo 1 stored as ${JSON.stringify(want)}`, async () => {
      const copies = await memoCopies().catch(() => undefined);
      return JSON.stringify(copies) === JSON.stringify(want) ? true : undefined;
    });

  it('is stored without routing, and that copy goes when the value is set, as the routed one goes when it is cleared', async () => {
    await db.query(`INSERT INTO memo VALUES (1, NULL, 'first')`);
    await settle([{ id: '1' }]);
    // Set: the copy without routing lives on the shard its id picks and must be deleted there.
    await db.query(`UPDATE memo SET owner = 'alice', body = 'second' WHERE id = 1`);
    await settle([{ id: '1', routing: 'alice' }]);
    await db.query(`UPDATE memo SET owner = NULL WHERE id = 1`);
    await settle([{ id: '1' }]);
    await db.query(`DELETE FROM memo WHERE id = 1`);
    await settle([]);
    if (engine.server) expect(engine.server.store.copies(memoIndex, '1')).toEqual([]);
  });

  it('an empty routing value is no routing, as the engines store it: updates and a start-over keep the document', async () => {
    const memo2 = async () => (await allDocuments(engine.url, memoIndex)).get('2') as { body?: string } | undefined;
    await db.query(`INSERT INTO memo VALUES (2, '', 'empty owner')`);
    await waitFor('memo 2', async () => ((await memo2())?.body === 'empty owner' ? true : undefined));
    expect(await copiesOf(['2'], undefined, memoIndex)).toEqual([{ id: '2' }]);
    // Compared with the engine's answer (no routing), '' was read as another routing: each change deleted the copy
    // before writing it again.
    await db.query(`UPDATE memo SET body = 'updated' WHERE id = 2`);
    await db.query(`INSERT INTO memo VALUES (3, 'carol', 'marker')`);
    await waitFor('memo 3', async () => ((await allDocuments(engine.url, memoIndex)).has('3') ? true : undefined));
    expect(await memo2()).toMatchObject({ body: 'updated' });
    // A start-over sweeps copies under a routing their row no longer has: this one is where it belongs.
    expect(await sluice.stop()).toBe(0);
    const reset = await runCli(['-c', schemaPath, 'reset', memoIndex], env);
    expect(reset.code, reset.stderr).toBe(0);
    sluice = startSluice(['-c', schemaPath], env);
    await waitFor('the memo index synced again', async () =>
      logLines(sluice.output()).some((l) => l.msg === 'snapshot finished; streaming' && String(l.generation).startsWith(`${memoIndex}-`)) ? true : undefined,
    );
    expect(await copiesOf(['2'], undefined, memoIndex)).toEqual([{ id: '2' }]);
    expect(await memo2()).toMatchObject({ body: 'updated' });
    // The sweep took the copy for one under another routing ('' against none), deleted it and counted it misrouted.
    const misrouted = logLines(sluice.output()).filter((l) => String(l.msg).startsWith('deleted copies stored under a routing') && String(l.generation).startsWith(`${memoIndex}-`));
    expect(misrouted).toEqual([]);
  });
});
