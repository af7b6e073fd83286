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
});

afterAll(async () => {
  await db?.drop();
});

describe('the orphan sweep', () => {
  it('keeps documents whose composite key has "|" in a value, deletes those whose row is gone', async () => {
    const schema = [{ database: db.name, index: 'pairs', nodes: { table: 'pair', columns: ['a', 'b', 'title'] } }];
    const plan = (await compileAgainst(db.url, schema)).plans[0]!;
    const stored = ['x|y|z', 'p|q|r', 'm|n', `${many}|last`, 'gone|row', 'x|y|gone', 'no-pipe', `${many}|other`];
    const scanner = {
      refresh: async () => undefined,
      documents: async function* () {
        for (const id of stored) yield { id };
      },
    };
    const deletes: string[] = [];
    const writer = { add: async (action: BulkAction) => void deletes.push(action.id), flush: async () => undefined };
    const pool = testPool(db.url, 2);
    try {
      const removed = await deleteOrphans(plan, pool, writer, scanner as never, 10n, 'orphan:test');
      expect(deletes.sort()).toEqual(['gone|row', 'x|y|gone', 'no-pipe', `${many}|other`].sort());
      expect(removed).toBe(4);
    } finally {
      await pool.end();
    }
  });
});
