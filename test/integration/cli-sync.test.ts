import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments, deleteIndex, engineCall, engineForTest, indexExists, indexMapping, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let index: string;

function writeSchema(name: string, schema: unknown): string {
  const path = join(work, name);
  writeFileSync(path, JSON.stringify(schema));
  return path;
}

beforeAll(async () => {
  db = await createTestDatabase('cli_sync');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-cli-'));
  index = `book_${db.name.slice(-6)}`;
});

afterAll(async () => {
  await deleteIndex(engine.url, index).catch(() => undefined);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice sync --once', () => {
  it('creates the index from setting and mapping and indexes every document', async () => {
    const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
    const result = await runCli(['-c', writeSchema('book.json', schema), 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^index\\s+documents\\s+rejected\\s+seconds\\s+docs/s\\n${index}\\s+3\\s+0\\s`));
    const docs = await allDocuments(engine.url, index);
    expect([...docs.keys()].sort()).toEqual(['1', '2', '3']);
    expect(docs.get('2')).toMatchObject({ book_id: 2, book_isbn: 'XX2', languages: ['de=DE'] });
    const mapping = await indexMapping(engine.url, index);
    expect(mapping).toMatchObject({ _routing: { required: true }, properties: { book_id: { type: 'long' }, authors: { type: 'nested' } } });
  });

  it('sync again is idempotent: same documents, no duplicates', async () => {
    const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
    const result = await runCli(['-c', writeSchema('book.json', schema), 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
    expect(result.code).toBe(0);
    expect((await allDocuments(engine.url, index)).size).toBe(3);
  });

  it('a missing ingest pipeline stops it before anything is written, naming the pipeline; once created, it syncs', async () => {
    const piped = `${index}_piped`;
    const pipeline = `enrich_${db.name.slice(-6)}`;
    const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index: piped, pipeline }));
    const path = writeSchema('piped.json', schema);
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
    const missing = await runCli(['-c', path, 'sync', '--once'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`ingest pipeline "${pipeline}" (the schema entry's "pipeline") does not exist in the search engine`);
    expect(await indexExists(engine.url, piped)).toBe(false);
    expect((await engineCall(engine.url, 'PUT', `/_ingest/pipeline/${pipeline}`, { processors: [] })).status).toBe(200);
    try {
      const synced = await runCli(['-c', path, 'sync', '--once'], env);
      expect(synced.code, synced.stderr).toBe(0);
      expect((await allDocuments(engine.url, piped)).size).toBe(3);
    } finally {
      await deleteIndex(engine.url, piped).catch(() => undefined);
      await engineCall(engine.url, 'DELETE', `/_ingest/pipeline/${pipeline}`);
    }
  });
});

describe.runIf(!REAL_ENGINE_URL).each(['es7', 'es9', 'opensearch2'] as const)('sluice sync --once into %s', (flavor) => {
  it('indexes the same documents with the same mappings', async () => {
    const other = await engineForTest(flavor);
    try {
      const schema = [...fixtureSchema('book.json', db.name), ...fixtureSchema('shop.json', db.name)];
      await db.query(fixtureSql('shop.sql')).catch(() => undefined);
      const result = await runCli(['-c', writeSchema(`multi-${flavor}.json`, schema), 'sync', '--once'], sluiceEnv(db.url, other.url, { CHECKPOINT_PATH: work }));
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/\nbook\s+3\s+0\s/);
      expect(result.stdout).toMatch(/\nshops\s+2\s+0\s/);
      expect((await allDocuments(other.url, 'book')).get('1')).toMatchObject({ book_isbn: 'XX1', ratings: { value: 4.5 } });
      expect((await allDocuments(other.url, 'shops')).get('1')).toMatchObject({ name: 'Downtown Mall' });
      expect(await indexMapping(other.url, 'book')).toMatchObject({ properties: { authors: { type: 'nested' } } });
    } finally {
      await other.close();
    }
  });
});

describe('bad input gets a clear error and writes nothing', () => {
  it('an invalid schema: exit 3, every problem with its location, no index created', async () => {
    const broken = [{ database: db.name, index: 'never_created', nodes: { table: 'book', columns: ['id', 'nope'], children: [{ table: 'bok', relationship: { type: 'one_to_many', variant: 'object' } }] } }];
    const path = writeSchema('broken.json', broken);
    for (const command of [['validate'], ['sync', '--once']]) {
      const result = await runCli(['-c', path, ...command], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
      expect(result.code).toBe(3);
      expect(result.stderr).toContain('error at $[0].nodes.columns[1]: column "nope" not found on "public.book"');
      expect(result.stderr).toContain('error at $[0].nodes.children[0].table: table "public.bok" does not exist');
    }
    expect(await indexExists(engine.url, 'never_created')).toBe(false);
  });

  it('entries whose slot names collide (PGSync drops "-" and folds case; rebuild slots end in "_r"): exit 3, no slot made', async () => {
    const entry = (index: string, table: string) => ({ database: db.name, index, nodes: { table, columns: ['id'] } });
    const path = writeSchema('colliding.json', [entry('my-books', 'book'), entry('mybooks', 'author'), entry('mybooks_r', 'publisher')]);
    for (const command of [['validate'], ['bootstrap']]) {
      const result = await runCli(['-c', path, ...command], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
      expect(result.code, result.stderr).toBe(3);
      const slot = `${db.name}_mybooks`;
      expect(result.stderr).toContain(`error at $[1].index: index "mybooks" (database "${db.name}") gets the replication slot and checkpoint name "${slot}", which is the replication slot and checkpoint name of index "my-books"`);
      expect(result.stderr).toContain(`error at $[2].index: index "mybooks_r" (database "${db.name}") gets the replication slot and checkpoint name "${slot}_r", which is the rebuild slot name of index "my-books"`);
    }
    const { rows } = await db.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE $1`, [`${db.name}_mybooks%`]);
    expect(rows).toEqual([]);
  });

  it('a view in the tree: bootstrap refuses it naming the node (exit 3, nothing created); sync --once reads it', async () => {
    await db.query(`CREATE OR REPLACE VIEW book_titles AS SELECT id, title FROM book`);
    const path = writeSchema('view.json', [{ database: db.name, index: 'viewed_books', nodes: { table: 'book_titles', primary_key: ['id'], base_tables: ['book'] } }]);
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
    const bootstrap = await runCli(['-c', path, 'bootstrap'], env);
    expect(bootstrap.code, bootstrap.stderr).toBe(3);
    expect(bootstrap.stderr).toContain(`error at $[0].nodes.table: "public.book_titles" is a view: its changes are not in the WAL`);
    const { rows } = await db.query(`SELECT slot_name FROM pg_replication_slots WHERE slot_name = $1`, [`${db.name}_viewed_books`]);
    expect(rows).toEqual([]);
    const once = await runCli(['-c', path, 'sync', '--once'], env);
    expect(once.code, once.stderr).toBe(0);
    expect(await indexExists(engine.url, 'viewed_books')).toBe(true);
  });

  it('a child joined by a generated column: bootstrap refuses it naming the column; sync --once reads it', async () => {
    await db.query(`CREATE TABLE post (id int PRIMARY KEY, title text);
      CREATE TABLE post_comment (id int PRIMARY KEY, body text, meta jsonb, post_id int GENERATED ALWAYS AS ((meta->>'post')::int) STORED REFERENCES post);
      INSERT INTO post VALUES (1, 'one'); INSERT INTO post_comment (id, body, meta) VALUES (1, 'hi', '{"post": 1}')`);
    const path = writeSchema('generated.json', [
      { database: db.name, index: 'posts', nodes: { table: 'post', columns: ['id', 'title'], children: [{ table: 'post_comment', columns: ['id', 'body'], relationship: { type: 'one_to_many', variant: 'object' } }] } },
    ]);
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
    const bootstrap = await runCli(['-c', path, 'bootstrap'], env);
    expect(bootstrap.code, bootstrap.stderr).toBe(3);
    expect(bootstrap.stderr).toContain('error at $[0].nodes.children[0]: public.post_comment.post_id is a generated column that keys or joins this node');
    const once = await runCli(['-c', path, 'sync', '--once'], env);
    expect(once.code, once.stderr).toBe(0);
    // A child's own key may be generated: changes reach the post through post_ref, which the WAL carries.
    await db.query(`CREATE TABLE post_tag (n int, label text, id text GENERATED ALWAYS AS (label || '#' || n) STORED PRIMARY KEY, post_ref int REFERENCES post)`);
    const keyed = writeSchema('generated-key.json', [
      { database: db.name, index: 'tagged_posts', nodes: { table: 'post', columns: ['id', 'title'], children: [{ table: 'post_tag', columns: ['label'], relationship: { type: 'one_to_many', variant: 'object' } }] } },
    ]);
    const printed = await runCli(['-c', keyed, 'bootstrap', '--print-sql'], env);
    expect(printed.code, printed.stderr).toBe(0);
  });

  it('invalid settings: exit 3 naming each variable; a missing schema file: exit 3', async () => {
    const path = writeSchema('ok.json', fixtureSchema('book.json', db.name));
    const bad = await runCli(['-c', path, 'validate'], sluiceEnv(db.url, engine.url, { PG_PORT: 'abc', PGSYNC_BATCH_SIZE: '-5' }));
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/PG_PORT/);
    expect(bad.stderr).toMatch(/PGSYNC_BATCH_SIZE/);
    const missing = await runCli(['-c', join(work, 'absent.json'), 'validate'], sluiceEnv(db.url, engine.url));
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/absent\.json: file not found/);
  });

  it('an unreachable database is a runtime failure (exit 1), and usage errors exit 2', async () => {
    const path = writeSchema('ok.json', fixtureSchema('book.json', db.name));
    const down = await runCli(['-c', path, 'validate'], sluiceEnv(db.url, engine.url, { PG_PORT: '1' }));
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(/SRC_CONNECT/);
    expect((await runCli(['sync'], {})).code).toBe(2);
    expect((await runCli(['frobnicate'], {})).code).toBe(2);
  });

  it.runIf(!REAL_ENGINE_URL)('SIGTERM during sync --once exits 130 (interrupted), not 0 or 1', async () => {
    const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index: `${index}_term` }));
    engine.server!.faults.inject({ kind: 'delay', ms: 1500, path: '_bulk$', times: 1 });
    const bulks = () => engine.server!.requests.filter((r) => r.path === '/_bulk').length;
    const before = bulks();
    const result = await runCli(['-c', writeSchema('term.json', schema), 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }), {
      onSpawn: (child) => {
        const poll = setInterval(() => {
          if (bulks() > before) {
            clearInterval(poll);
            child.kill('SIGTERM');
          }
        }, 10);
        child.on('exit', () => clearInterval(poll));
      },
    });
    engine.server!.faults.clear();
    expect(result.code, result.stderr).toBe(130);
    await deleteIndex(engine.url, `${index}_term`);
  });

  it('validate prints the entries it checked', async () => {
    const result = await runCli(['-c', writeSchema('ok.json', fixtureSchema('book.json', db.name)), 'validate'], sluiceEnv(db.url, engine.url));
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`book: database ${db.name}, root public.book, 10 tables`);
  });
});
