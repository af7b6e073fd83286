import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments, deleteIndex, engineCall, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { buildDocuments, compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let env: Record<string, string>;
let suffix: string;
const created: string[] = [];

function es(method: 'GET' | 'PUT' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  return engineCall(engine.url, method, path, body);
}

/** A schema file for the book fixture writing `index`. */
function schemaFor(index: string): string {
  const path = join(work, `${index}.json`);
  writeFileSync(path, JSON.stringify(fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }))));
  return path;
}

async function fullSync(index: string): Promise<void> {
  created.push(index);
  const result = await runCli(['-c', schemaFor(index), 'sync', '--once'], env);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
}

const verify = (index: string, ...args: string[]) => runCli(['-c', schemaFor(index), 'verify', index, ...args], env);

async function planOf(index: string) {
  return (await compileAgainst(db.url, fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index })))).plans[0]!;
}

beforeAll(async () => {
  db = await createTestDatabase('verify');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-verify-'));
  suffix = db.name.slice(-6);
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
});

afterAll(async () => {
  for (const index of created) await deleteIndex(engine.url, index).catch(() => undefined);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice verify', () => {
  it('--help describes the command, --repair and the drift exit code', async () => {
    const help = await runCli(['verify', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: sluice verify [options] <index>');
    expect(help.stdout).toContain('--repair');
    expect(help.stdout).toContain('--limit <n>');
    const top = await runCli(['--help'], {});
    expect(top.stdout).toMatch(/verify \[options\] <index>/);
    expect(top.stdout).toMatch(/\n {2}4 {4}drift: `sluice verify` found documents missing, different or extra/);
    // Digits only, as the settings take them (Number() alone would take 1e3, 0x10 and spaces).
    for (const value of ['0', '1e3', '0x10', ' 12 ', '5001']) {
      const bad = await runCli(['verify', 'x', '--batch-size', value], {});
      expect(bad.code, value).toBe(2);
      expect(bad.stderr).toContain(`argument '${value}' is invalid. expected an integer from 1 to 5000`);
    }
  });

  it('reports an index in sync with exit 0, whatever the key order and spacing of the stored source', async () => {
    const index = `verify_ok_${suffix}`;
    await fullSync(index);
    // The same content re-serialised with keys reversed and no spaces is not drift.
    const doc = (await buildDocuments(db.url, await planOf(index), { kind: 'keys', keys: [['3']] }))[0]!;
    const reversed = Object.fromEntries(Object.entries(doc.source).reverse());
    expect((await es('PUT', `/${index}/_doc/3?routing=${doc.routing}&refresh=true`, reversed)).status).toBe(200);
    const result = await verify(index);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe(`${index}: 3 document(s) in PostgreSQL, 3 in the index\nin sync\n`);
    expect(result.code).toBe(0);
  });

  it('finds a changed, a deleted and an extra document (exit 4); --repair fixes them; the index then equals a fresh full sync', async () => {
    const index = `verify_drift_${suffix}`;
    await fullSync(index);
    const stored = (await es('GET', `/${index}/_doc/1?routing=XX1`)).json._source as Record<string, unknown>;
    expect((await es('PUT', `/${index}/_doc/1?routing=XX1`, { ...stored, book_title: 'Not It' })).status).toBe(200);
    expect((await es('DELETE', `/${index}/_doc/2?routing=XX2`)).status).toBe(200);
    expect((await es('PUT', `/${index}/_doc/999?routing=XX999`, { book_id: 999, book_title: 'Stray' })).status).toBe(201);

    // Batches of 2 roots: several key-range chunks and several scroll pages.
    const drift = await verify(index, '--batch-size', '2');
    expect(drift.stderr).toBe('');
    expect(drift.stdout).toBe(
      [
        `${index}: 3 document(s) in PostgreSQL, 3 in the index`,
        '  missing   1: 2',
        '  different 1: 1',
        '  extra     1: 999',
        `drift: 3 document(s) (\`sluice verify ${index} --repair\` rewrites them from PostgreSQL and deletes the extra ones)`,
        '',
      ].join('\n'),
    );
    expect(drift.code).toBe(4);

    const repair = await verify(index, '--repair', '--batch-size', '2');
    expect(repair.stderr).toBe('');
    expect(repair.stdout).toContain('repaired: 2 document(s) rewritten from PostgreSQL, 1 deleted\n');
    expect(repair.code).toBe(0);

    const again = await verify(index);
    expect(again.stdout).toBe(`${index}: 3 document(s) in PostgreSQL, 3 in the index\nin sync\n`);
    expect(again.code).toBe(0);
    await expectConverged(db.url, await planOf(index), engine.url);
  });

  it('prints the first --limit ids of each kind with the total', async () => {
    const index = `verify_limit_${suffix}`;
    await fullSync(index);
    for (const id of ['1', '2', '3']) await es('DELETE', `/${index}/_doc/${id}?routing=XX${id}`);
    await es('POST', `/${index}/_refresh`);
    const result = await verify(index, '--limit', '2');
    expect(result.stdout).toContain(`${index}: 3 document(s) in PostgreSQL, 0 in the index\n  missing   3, first 2: 1, 2\n`);
    expect(result.code).toBe(4);
  });

  it('--repair does not overwrite a document written with a newer version (a concurrent `sluice run`)', async () => {
    const index = `verify_newer_${suffix}`;
    await fullSync(index);
    const stored = (await es('GET', `/${index}/_doc/1?routing=XX1`)).json._source as Record<string, unknown>;
    // A version far above the current WAL position stands for a change committed after the repair read PostgreSQL.
    const newer = await es('PUT', `/${index}/_doc/1?routing=XX1&version=${2n ** 62n}&version_type=external_gte&refresh=true`, { ...stored, book_title: 'Newer' });
    expect(newer.status).toBe(200);
    const repair = await verify(index, '--repair');
    expect(repair.stdout).toContain('  different 1: 1\n');
    expect(repair.code).toBe(0);
    expect((await es('GET', `/${index}/_doc/1?routing=XX1`)).json).toMatchObject({ _version: Number(2n ** 62n), _source: { book_title: 'Newer' } });
  });

  it('verifies and repairs through an alias over a versioned physical index', async () => {
    const alias = `verify_alias_${suffix}`;
    // A first sync creates the entry's first generation behind an alias of the index name.
    await fullSync(alias);
    const [physical] = Object.keys((await es('GET', `/_alias/${alias}`)).json as object);
    expect(physical).toMatch(new RegExp(`^${alias}-[0-9a-f]{12}$`));
    expect((await verify(alias)).code).toBe(0);

    await es('DELETE', `/${alias}/_doc/3?routing=XX3`);
    // An id that is no integer cannot be a root of this table: extra, found without a failed query.
    await es('PUT', `/${alias}/_doc/not-a-book?routing=x`, { book_title: 'Stray' });
    await es('POST', `/${alias}/_refresh`);
    const drift = await verify(alias);
    expect(drift.stderr).toBe('');
    expect(drift.stdout).toContain('  missing   1: 3\n  extra     1: not-a-book\n');
    expect(drift.code).toBe(4);
    const repair = await verify(alias, '--repair');
    expect(repair.stdout).toContain('repaired: 1 document(s) rewritten from PostgreSQL, 1 deleted\n');
    expect(repair.code).toBe(0);
    expect((await verify(alias)).code).toBe(0);
    expect([...(await allDocuments(engine.url, physical!)).keys()].sort()).toEqual(['1', '2', '3']);
  });

  it('an index missing from the engine is a clear error (exit 1); an index of no schema entry is exit 3', async () => {
    const index = `verify_none_${suffix}`;
    const missing = await verify(index);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`index "${index}" does not exist in the search engine`);
    const unknown = await runCli(['-c', schemaFor(index), 'verify', 'nope'], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain(`no schema entry writes index "nope" (indexes: ${index})`);
  });
});

describe.runIf(!REAL_ENGINE_URL).each(['es7', 'opensearch2'] as const)('sluice verify against %s', (flavor) => {
  it('finds and repairs drift', async () => {
    const other = await engineForTest(flavor);
    try {
      const otherEnv = sluiceEnv(db.url, other.url, { CHECKPOINT_PATH: work });
      const index = `verify_${flavor}_${suffix}`;
      const schema = schemaFor(index);
      expect((await runCli(['-c', schema, 'sync', '--once'], otherEnv)).code).toBe(0);
      await request(`${other.url}/${index}/_doc/2?routing=XX2&refresh=true`, { method: 'DELETE' });
      const drift = await runCli(['-c', schema, 'verify', index], otherEnv);
      expect(drift.stdout).toContain('  missing   1: 2\n');
      expect(drift.code).toBe(4);
      expect((await runCli(['-c', schema, 'verify', index, '--repair'], otherEnv)).code).toBe(0);
      expect((await runCli(['-c', schema, 'verify', index], otherEnv)).code).toBe(0);
    } finally {
      await other.close();
    }
  });
});
