// The orphan sweep of an index starting over deletes the documents whose root row is gone, and only those. Ids
// join composite keys with "|" (PGSync's rule), so a key value containing "|" makes an id with more parts than key
// columns: it must be looked up (every way of cutting it), not taken for an orphan.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteOrphans } from '../../src/pipeline/change-applier.js';
import type { BulkAction } from '../../src/sink/document-sink.js';
import { compileAgainst } from '../helpers/fixtures.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
const many = Array.from({ length: 70 }, (_, i) => `p${i}`).join('|');

beforeAll(async () => {
  db = await createTestDatabase('orphans');
  await db.query(`CREATE TABLE pair (a text, b text, title text, PRIMARY KEY (a, b))`);
  await db.query(`INSERT INTO pair VALUES ('x|y', 'z', 'pipe in a'), ('p', 'q|r', 'pipe in b'), ('m', 'n', 'plain'), ($1, 'last', 'many pipes')`, [many]);
  await db.query(`CREATE TABLE page (tenant int, slug text, PRIMARY KEY (tenant, slug))`);
  await db.query(`INSERT INTO page SELECT i, 'a|' || i FROM generate_series(1, 1000, 2) i`);
});

afterAll(async () => {
  await db?.drop();
});

/** Sweeps an index whose stored ids are `stored` over `schema`'s root table: the deletes, and the queries it took. */
async function sweep(schema: object[], stored: string[]): Promise<{ removed: number; deletes: string[]; queries: number }> {
  const plan = (await compileAgainst(db.url, schema)).plans[0]!;
  const scanner = {
    refresh: async () => undefined,
    documents: async function* () {
      for (const id of stored) yield { id };
    },
  };
  const deletes: string[] = [];
  const writer = { add: async (action: BulkAction) => void deletes.push(action.id), flush: async () => undefined };
  const pool = testPool(db.url, 2);
  let queries = 0;
  const counting = { query: (...args: Parameters<typeof pool.query>) => (queries++, (pool.query as (...a: unknown[]) => unknown)(...args)) };
  try {
    const { documents: removed, misrouted } = await deleteOrphans(plan, counting as never, writer, scanner as never, 10n, 'orphan:test');
    expect(misrouted).toBe(0);
    return { removed, deletes, queries };
  } finally {
    await pool.end();
  }
}

describe('the orphan sweep', () => {
  it('keeps documents whose composite key has "|" in a value, deletes those whose row is gone', async () => {
    const schema = [{ database: db.name, index: 'pairs', nodes: { table: 'pair', columns: ['a', 'b', 'title'] } }];
    const stored = ['x|y|z', 'p|q|r', 'm|n', `${many}|last`, 'gone|row', 'x|y|gone', 'no-pipe', `${many}|other`];
    const { removed, deletes } = await sweep(schema, stored);
    expect(deletes.sort()).toEqual(['gone|row', 'x|y|gone', 'no-pipe', `${many}|other`].sort());
    expect(removed).toBe(4);
  });

  it('looks up a page of ids in one query when their cuts include values the key type refuses', async () => {
    // (tenant int, slug text) with "|" in slugs; ids put the key columns in alphabetical order, so "a|7|7" cuts into
    // ("a", "7|7") and ("a|7", "7"), and the first one's tenant is no integer. Looked up together, such a cut fails
    // the whole query and the lookup halves down to single ids.
    const schema = [{ database: db.name, index: 'pages', nodes: { table: 'page', columns: ['tenant', 'slug'] } }];
    const { removed, deletes, queries } = await sweep(schema, Array.from({ length: 1000 }, (_, i) => `a|${i + 1}|${i + 1}`));
    // Rows exist for odd tenants only.
    expect(removed).toBe(500);
    expect(deletes.every((id) => Number(id.split('|')[2]) % 2 === 0)).toBe(true);
    expect(queries).toBe(1);
  });
});
