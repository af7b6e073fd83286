// The replica identity warnings of `sluice run`'s start, for the shapes a schema can take: a table that is both a
// root and a node below it (a self-referencing tree) needs its old rows like any child table; a root only its key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warnReplicaIdentity } from '../../src/cli/commands/run.js';
import { compileAgainst } from '../helpers/fixtures.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;

const schema = [
  {
    database: 'unused',
    index: 'category',
    nodes: {
      table: 'category',
      columns: ['id', 'name'],
      children: [{ table: 'category', label: 'subcategories', columns: ['id', 'name'], relationship: { variant: 'object', type: 'one_to_many', foreign_key: { child: ['parent_id'], parent: ['id'] } } }],
    },
  },
  { database: 'unused', index: 'tag', nodes: { table: 'tag', columns: ['id', 'label'] } },
];

function capture(): { warnings: Array<{ tables: string[]; msg: string }>; logger: Parameters<typeof warnReplicaIdentity>[2] } {
  const warnings: Array<{ tables: string[]; msg: string }> = [];
  const logger = { warn: (fields: { tables: string[] }, msg: string) => void warnings.push({ tables: fields.tables, msg }) };
  return { warnings, logger: logger as unknown as Parameters<typeof warnReplicaIdentity>[2] };
}

describe('replica identity warnings at start', () => {
  beforeAll(async () => {
    db = await createTestDatabase('replident');
    await db.query(`
      CREATE TABLE category (id int PRIMARY KEY, parent_id int REFERENCES category (id), name text, code text UNIQUE NOT NULL);
      CREATE TABLE tag (id int PRIMARY KEY, label text, code text UNIQUE NOT NULL);`);
  });
  afterAll(async () => db?.drop());

  async function warningsFor(identities: string): Promise<Array<{ tables: string[]; msg: string }>> {
    await db.query(identities);
    const { plans, problems } = await compileAgainst(db.url, schema.map((e) => ({ ...e, database: db.name })));
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    const { warnings, logger } = capture();
    const pool = testPool(db.url, 1);
    try {
      await warnReplicaIdentity(pool, plans, logger);
    } finally {
      await pool.end();
    }
    return warnings;
  }

  it('is silent when every table has REPLICA IDENTITY FULL', async () => {
    expect(await warningsFor(`ALTER TABLE category REPLICA IDENTITY FULL; ALTER TABLE tag REPLICA IDENTITY FULL`)).toEqual([]);
  });

  it('names a self-referencing root among the tables needing FULL, even under its primary key; a plain root keeps DEFAULT', async () => {
    const warnings = await warningsFor(`ALTER TABLE category REPLICA IDENTITY DEFAULT; ALTER TABLE tag REPLICA IDENTITY DEFAULT`);
    expect(warnings).toEqual([{ tables: ['public.category'], msg: expect.stringMatching(/^REPLICA IDENTITY is not FULL/) }]);
  });

  it('names a self-referencing root under USING INDEX once, as a table needing FULL; a plain root under USING INDEX as a root', async () => {
    const warnings = await warningsFor(`ALTER TABLE category REPLICA IDENTITY USING INDEX category_code_key; ALTER TABLE tag REPLICA IDENTITY USING INDEX tag_code_key`);
    expect(warnings).toEqual([
      { tables: ['public.category'], msg: expect.stringMatching(/^REPLICA IDENTITY is not FULL/) },
      { tables: ['public.tag'], msg: expect.stringMatching(/^REPLICA IDENTITY USING INDEX/) },
    ]);
  });
});
