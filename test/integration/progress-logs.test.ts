// `sluice sync --once` with standard error on a pipe writes pure JSON lines (no progress bar, no colours), and the
// snapshot's row estimate comes from PostgreSQL cheaply, with or without statistics.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { estimateRootRows, ROW_COUNT_LIMIT } from '../../src/pipeline/snapshot-phase.js';
import { deleteIndex, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

const CONTROL = /[\x1b\r]/;

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let index: string;
let schemaPath: string;

beforeAll(async () => {
  db = await createTestDatabase('progress_logs');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-progress-'));
  index = `book_${db.name.slice(-6)}`;
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }))));
});

afterAll(async () => {
  await deleteIndex(engine.url, index).catch(() => undefined);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice sync --once logs on a pipe', () => {
  it('are JSON lines only, at every level, with no terminal control characters', async () => {
    const result = await runCli(['-c', schemaPath, 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'trace' }));
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).not.toMatch(CONTROL);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    const records = lines.map((line) => JSON.parse(line) as { msg?: string; index?: string });
    expect(records.some((r) => r.msg === 'full sync finished' && r.index === index)).toBe(true);
    expect(records.some((r) => r.msg === 'chunk written')).toBe(true);
    expect(result.stdout).not.toMatch(CONTROL);
  });

  it('are human-readable without colour when SLUICE_LOG_FORMAT=pretty, and JSON again with json', async () => {
    const pretty = await runCli(['-c', schemaPath, 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'info', SLUICE_LOG_FORMAT: 'pretty' }));
    expect(pretty.code, pretty.stderr).toBe(0);
    expect(pretty.stderr).not.toMatch(CONTROL);
    expect(pretty.stderr).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d INFO  \\[${index}\\] full sync finished  documents=3 `, 'm'));
    const json = await runCli(['-c', schemaPath, 'sync', '--once'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'info', SLUICE_LOG_FORMAT: 'JSON' }));
    expect(json.code, json.stderr).toBe(0);
    for (const line of json.stderr.trimEnd().split('\n')) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });

  it('rejects an unknown SLUICE_LOG_FORMAT naming the variable', async () => {
    const result = await runCli(['-c', schemaPath, 'validate'], sluiceEnv(db.url, engine.url, { SLUICE_LOG_FORMAT: 'yaml' }));
    expect(result.code).toBe(3);
    expect(result.stderr).toContain('SLUICE_LOG_FORMAT');
  });
});

describe('estimateRootRows', () => {
  it('counts a table without statistics, uses them once analyzed, and estimates what is left after a key', async () => {
    await db.query('CREATE TABLE big (id integer PRIMARY KEY, label text) WITH (autovacuum_enabled = false)');
    await db.query(`INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, ${String(ROW_COUNT_LIMIT + 50_000)}) AS g`);
    await db.query('CREATE TABLE small (id integer PRIMARY KEY) WITH (autovacuum_enabled = false)');
    await db.query('INSERT INTO small SELECT generate_series(1, 7)');
    const { plans, problems } = await compileAgainst(db.url, [
      { database: db.name, index: 'big', nodes: { table: 'big' } },
      { database: db.name, index: 'small', nodes: { table: 'small' } },
    ]);
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    const [big, small] = plans as [NonNullable<(typeof plans)[0]>, NonNullable<(typeof plans)[0]>];
    const pool = testPool(db.url, 2);
    try {
      expect(await estimateRootRows(small, pool)).toBe(7);
      // Past the counting limit the planner's estimate takes over; it is at least what was counted.
      expect(await estimateRootRows(big, pool)).toBeGreaterThan(ROW_COUNT_LIMIT);
      await db.query('ANALYZE big');
      const analyzed = await estimateRootRows(big, pool);
      expect(analyzed).toBeGreaterThan(0.9 * (ROW_COUNT_LIMIT + 50_000));
      expect(analyzed).toBeLessThan(1.1 * (ROW_COUNT_LIMIT + 50_000));
      const rest = await estimateRootRows(big, pool, [String(ROW_COUNT_LIMIT)]);
      expect(rest).toBeGreaterThan(25_000);
      expect(rest).toBeLessThan(100_000);
      const missing = { ...small, root: { ...small.root, table: 'gone' } };
      expect(await estimateRootRows(missing, pool)).toBeUndefined();
    } finally {
      await pool.end();
    }
  });
});
