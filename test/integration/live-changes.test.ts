import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { allDocuments, engineCall, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let sluice: RunningSluice;
let env: Record<string, string>;
let schemaPath: string;
const index = 'live_book';

beforeAll(async () => {
  db = await createTestDatabase('live');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-live-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.stderr + bootstrap.stdout).toContain('slots');
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

async function change(sql: string): Promise<void> {
  await db.query(sql);
  await expectConverged(db.url, plan, engine.url);
}

describe('changes on every level of the book tree reach the index', () => {
  it('root: insert, update', async () => {
    await change(`INSERT INTO book (id, isbn, title, publisher_id) VALUES (10, '010', 'New', 2)`);
    await change(`UPDATE book SET title = 'Renamed', tags = '["x"]' WHERE id = 1`);
  });

  it('one_to_one child through a foreign key on the root: publisher renamed', async () => {
    await change(`UPDATE publisher SET name = 'Penguin Books' WHERE id = 1`);
  });

  it('through table: insert, delete, and a row repointed to another book', async () => {
    await change(`INSERT INTO book_author (id, book_isbn, author_id) VALUES (10, '002', 1)`);
    await change(`DELETE FROM book_author WHERE id = 3`);
    await change(`UPDATE book_author SET book_isbn = '003' WHERE id = 1`);
  });

  it('grandchild chain: a city and a continent renamed, an author moved to another city', async () => {
    await change(`UPDATE city SET name = 'Paris-Ville' WHERE id = 1`);
    await change(`UPDATE continent SET name = 'Europa' WHERE id = 1`);
    await change(`UPDATE author SET city_id = 2 WHERE id = 1`);
  });

  it('a child moved to another parent rebuilds both parents', async () => {
    await change(`UPDATE rating SET book_isbn = '002' WHERE id = 1`);
    await change(`UPDATE book_language SET book_isbn = '003' WHERE id = 2`);
  });

  it('a child shared by more roots than one document query reads rebuilds all of them', async () => {
    // A batch reads its first 1,000 roots' documents ahead and the rest while writing: 2,500 roots take both paths.
    await change(`INSERT INTO book (id, isbn, title, publisher_id) SELECT 1000 + i, 'fan-' || i, 'Fan ' || i, 1 FROM generate_series(1, 2500) i`);
    await change(`UPDATE publisher SET name = 'Penguin Fan' WHERE id = 1`);
    await change(`DELETE FROM book WHERE id > 1000`);
  });

  it('scalar children through join tables: languages and subjects', async () => {
    await change(`UPDATE language SET code = 'es-ES' WHERE id = 2`);
    await change(`INSERT INTO book_subject (id, book_isbn, subject_id) VALUES (10, '003', 1)`);
  });

  it('a primary-key change deletes the old document', async () => {
    await change(`UPDATE book SET id = 20 WHERE id = 10`);
    expect((await allDocuments(engine.url, index)).has('10')).toBe(false);
  });

  it('several changes in one transaction, then deletes of child and root', async () => {
    await change(`BEGIN; INSERT INTO book (id, isbn, title) VALUES (30, '030', 'Tx'); INSERT INTO book_author (book_isbn, author_id) VALUES ('030', 2); UPDATE author SET name = 'Bob M.' WHERE id = 2; COMMIT;`);
    await change(`DELETE FROM rating WHERE id = 1`);
    await change(`DELETE FROM book WHERE id = 30`);
  });

  it.runIf(!REAL_ENGINE_URL)('an update of a column no document uses writes nothing', async () => {
    const before = engine.server!.store.version(index, '1');
    await db.query(`UPDATE book SET copyright = 'changed' WHERE id = 1`);
    await change(`INSERT INTO book (id, isbn, title) VALUES (40, '040', 'Marker')`);
    expect(engine.server!.store.version(index, '1')).toBe(before);
  });

  it('the running process answers /healthz, /readyz, /status and /metrics', async () => {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(sluice.output())?.[1];
    expect(url).toBeDefined();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
    const status = (await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ index: string; phase: string; changesApplied: number }> };
    expect(status.indexes).toEqual([expect.objectContaining({ index, phase: 'streaming' })]);
    expect(status.indexes[0]!.changesApplied).toBeGreaterThan(0);
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^sluice_changes_applied_total\\{index="${index}"\\} [1-9]`, 'm'));
    expect(metrics).toMatch(new RegExp(`^sluice_phase\\{index="${index}",phase="streaming"\\} 1$`, 'm'));
    expect(metrics).toMatch(/^sluice_bulk_request_duration_seconds_count [1-9]\d*$/m);
    expect(metrics).toMatch(new RegExp(`^sluice_generation_info\\{index="${index}",generation="${index}-[0-9a-f]{12}",role="live"\\} 1$`, 'm'));
    // The slot is polled every few seconds, busy or idle.
    await waitFor('slot figures in /metrics', async () => {
      const text = await (await fetch(`${url}/metrics`)).text();
      return /^sluice_replication_lag_bytes\{index="live_book"\} \d+$/m.test(text) && /^sluice_retained_wal_bytes\{index="live_book"\} [1-9]\d*$/m.test(text) ? true : undefined;
    });
  });

  it.runIf(!REAL_ENGINE_URL)("while the engine holds a batch up, /status and /metrics show the lag growing, not the last batch's", async () => {
    const url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(sluice.output())![1]!;
    const lagOf = async () => ((await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ lagSeconds?: number }> }).indexes[0]!.lagSeconds;
    await change(`UPDATE book SET title = 'Applied at once' WHERE id = 3`);
    engine.server!.faults.inject({ kind: 'delay', ms: 8000, method: 'POST', path: '_bulk$' });
    await db.query(`UPDATE book SET title = 'Held up by the engine' WHERE id = 3`);
    // The last applied batch's lag was a fraction of a second; the held one's grows by the second, while it is held.
    const held = await waitFor('the lag of the held batch', async () => {
      const lag = await lagOf();
      return lag !== undefined && lag >= 2 ? lag : undefined;
    });
    expect(held).toBeLessThan(60);
    expect((await allDocuments(engine.url, index)).get('3')).toMatchObject({ book_title: 'Applied at once' });
    expect(await (await fetch(`${url}/metrics`)).text()).toMatch(new RegExp(`^sluice_lag_seconds\\{index="${index}"\\} ([2-9]|\\d{2,})(\\.\\d+)?$`, 'm'));
    await expectConverged(db.url, plan, engine.url);
    await waitFor('the lag to fall back once applied', async () => ((await lagOf())! < 2 ? true : undefined));
  });

  it.runIf(!REAL_ENGINE_URL)('a child change in a routed index asks the engine for no routing; a root change does', async () => {
    // The sync writes to the alias' physical generation, `<index>-<fingerprint>`.
    const routingLookups = () => engine.server!.requests.filter((r) => r.path.startsWith(`/${index}-`) && r.path.endsWith('/_search')).length;
    const before = routingLookups();
    await change(`UPDATE publisher SET name = 'Hachette Livre' WHERE id = 2`);
    expect(routingLookups()).toBe(before);
    await change(`UPDATE book SET isbn = '099' WHERE id = 2`);
    expect(routingLookups()).toBeGreaterThan(before);
  });

  it('TRUNCATE of a child table rebuilds every root; of the root deletes every document', async () => {
    await change(`TRUNCATE book_subject`);
    await change(`TRUNCATE book CASCADE`);
    expect((await allDocuments(engine.url, index)).size).toBe(0);
    await change(`INSERT INTO book (id, isbn, title) VALUES (50, '050', 'After truncate')`);
  });

  it('TRUNCATE of the root also deletes documents written since the last refresh', async () => {
    // Periodic refresh off: a document written moments ago is not yet visible to a scroll, only to a realtime get.
    expect((await engineCall(engine.url, 'PUT', `/${index}/_settings`, { index: { refresh_interval: '-1' } })).status).toBe(200);
    try {
      await db.query(`INSERT INTO book (id, isbn, title) VALUES (51, '051', 'Unrefreshed')`);
      await waitFor('book 51 to be written', async () => ((await engineCall(engine.url, 'GET', `/${index}/_doc/51?routing=051`)).status === 200 ? true : undefined));
      await change(`TRUNCATE book CASCADE`);
      expect((await allDocuments(engine.url, index)).size).toBe(0);
    } finally {
      await engineCall(engine.url, 'PUT', `/${index}/_settings`, { index: { refresh_interval: null } });
    }
  });
});
