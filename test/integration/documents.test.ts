import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDocuments, compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';
import type { EntryPlan } from '../../src/schema/sync-plan.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('documents');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  await db.query(fixtureSql('shop.sql'));
});

afterAll(async () => {
  await db?.drop();
});

async function plan(schema: unknown): Promise<EntryPlan> {
  const { plans, problems } = await compileAgainst(db.url, schema);
  expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
  return plans[0]!;
}

function entry(nodes: Record<string, unknown>, extra: Record<string, unknown> = {}): unknown[] {
  return [{ database: db.name, index: 'test', nodes, ...extra }];
}

describe('book fixture (through tables, scalars, one_to_one chain, JSON paths, transforms)', () => {
  it('builds every document as specified', async () => {
    const docs = await buildDocuments(db.url, await plan(fixtureSchema('book.json', db.name)));
    expect(docs.map((d) => [d.id, d.routing])).toEqual([['1', 'XX1'], ['2', 'XX2'], ['3', 'XX3']]);
    expect(docs[0]!.source).toEqual({
      book_id: 1,
      book_isbn: 'XX1',
      book_title: 'It',
      description: 'A horror novel',
      tags: ['horror', 'classic'],
      doc_firstname: 'Stephen',
      'doc_a,b,c_4': 40,
      doc_x: [{ y: 1 }, { z: 'zz' }],
      doc_x_0_y: 1,
      doc_x_1_z: 'zz',
      'doc_x,1,z': 'zz',
      publish_date: '1986-09-15T00:00:00',
      publisher_label: { publisher_name: 'Penguin', is_active: true, xyz: '1_Penguin_true_foo', abc: '1-Penguin-bar' },
      publisher_ref: { id: 1 },
      book_languages: [{ book_isbn: '001', language_id: 2 }, { book_isbn: '001', language_id: 1 }],
      authors: [
        { id: 1, name: 'Alice Dupont', date_of_birth: '1970-03-01', city_label: { name: 'Paris', id: 1, country_label: { name: 'France', id: 1, continent_label: { name: 'Europe' } } } },
        { id: 2, name: 'Bob Martin', date_of_birth: '1965-11-30', city_label: { name: 'Toronto', id: 2, country_label: { name: 'Canada', id: 2, continent_label: { name: 'North America' } } } },
      ],
      languages: ['en=GB', 'fr=FR'],
      subjects: ['Fiction', 'Horror'],
      ratings: { value: 4.5 },
    });
    expect(docs[1]!.source).toMatchObject({
      book_id: 2,
      tags: null,
      publisher_label: { publisher_name: 'Hachette', is_active: false, xyz: '2_Hachette_false_foo' },
      publisher_ref: { id: 2 },
      authors: [{ id: 3, name: 'Carol Smith', date_of_birth: null }],
      languages: ['de=DE'],
      subjects: null,
      ratings: null,
    });
    // No children at all: null, not [] (PGSync's shape); a missing one_to_one parent leaves the move out.
    expect(docs[2]!.source).toMatchObject({ book_id: 3, tags: [], authors: null, languages: null, book_languages: null, publisher_label: null });
    expect(docs[2]!.source).not.toHaveProperty('publisher_ref');
    for (const doc of docs) expect(doc.raw).not.toContain('\n');
  });

  it('builds only the requested roots, by key list and by key range', async () => {
    const p = await plan(fixtureSchema('book.json', db.name));
    expect((await buildDocuments(db.url, p, { kind: 'keys', keys: [['3'], ['1']] })).map((d) => d.id)).toEqual(['1', '3']);
    expect((await buildDocuments(db.url, p, { kind: 'range', after: ['1'], upTo: ['2'] })).map((d) => d.id)).toEqual(['2']);
    expect((await buildDocuments(db.url, p, { kind: 'range', after: ['2'] })).map((d) => d.id)).toEqual(['3']);
  });
});

describe('shop fixture (explicit foreign keys, three levels)', () => {
  it('nests departments and products in key order and keeps numerics exactly', async () => {
    const docs = await buildDocuments(db.url, await plan(fixtureSchema('shop.json', db.name)));
    expect(docs[0]!.source).toEqual({
      id: 1,
      name: 'Downtown Mall',
      city: 'Springfield',
      departments: [
        { id: 1, name: 'Electronics', floor: 1, products: [{ id: 1, name: 'Headphones', price: 49.99 }, { id: 2, name: 'Laptop', price: 899 }] },
        { id: 2, name: 'Books', floor: 2, products: [{ id: 3, name: 'Novel', price: 14.5 }, { id: 4, name: 'Cookbook', price: 22 }] },
      ],
    });
    expect(docs[0]!.raw).toMatch(/"price" ?: ?899\.00/);
    expect(docs[1]!.source).toEqual({ id: 2, name: 'Empty Shop', city: null, departments: null });
  });
});

describe('relationship kinds', () => {
  const author = { table: 'author', columns: ['name', 'id'] };

  it('through + one_to_one + object is one object (PGSync gave an array of first columns)', async () => {
    const docs = await buildDocuments(db.url, await plan(entry({ table: 'book', columns: ['id'], children: [{ ...author, label: 'author', relationship: { type: 'one_to_one', variant: 'object', through_tables: ['book_author'] } }] })));
    expect(docs.map((d) => d.source)).toEqual([
      { id: 1, author: { name: 'Alice Dupont', id: 1 } },
      { id: 2, author: { name: 'Carol Smith', id: 3 } },
      { id: 3, author: null },
    ]);
  });

  it('through + one_to_one + scalar is one value; one_to_many + scalar is an array', async () => {
    const docs = await buildDocuments(
      db.url,
      await plan(entry({
        table: 'book',
        columns: ['id'],
        children: [
          { ...author, label: 'first_author', relationship: { type: 'one_to_one', variant: 'scalar', through_tables: ['public.book_author'] } },
          { ...author, label: 'author_names', relationship: { type: 'one_to_many', variant: 'scalar', through_tables: ['book_author'] } },
        ],
      })),
    );
    expect(docs[0]!.source).toEqual({ id: 1, first_author: 'Alice Dupont', author_names: ['Alice Dupont', 'Bob Martin'] });
    expect(docs[2]!.source).toEqual({ id: 3, first_author: null, author_names: null });
  });

  it('one_to_one scalar and a one_to_many whose foreign key is on the parent', async () => {
    const docs = await buildDocuments(
      db.url,
      await plan(entry({
        table: 'book',
        columns: ['id'],
        children: [
          { table: 'publisher', label: 'publisher_name', columns: ['name'], relationship: { type: 'one_to_one', variant: 'scalar' } },
          { table: 'publisher', label: 'publishers', columns: ['id', 'name'], relationship: { type: 'one_to_many', variant: 'object' } },
        ],
      })),
    );
    expect(docs[0]!.source).toEqual({ id: 1, publisher_name: 'Penguin', publishers: [{ id: 1, name: 'Penguin' }] });
    expect(docs[2]!.source).toEqual({ id: 3, publisher_name: null, publishers: null });
  });

  it('a one_to_one scalar child of text, integer or numeric type feeds a concat and the routing as its own value', async () => {
    const docs = await buildDocuments(
      db.url,
      await plan(
        entry(
          {
            table: 'book',
            columns: ['id'],
            transform: { concat: [{ columns: ['publisher_name', 'publisher_id', 'rating'], destination: 'route', delimiter: '/' }] },
            children: [
              { table: 'publisher', label: 'publisher_name', columns: ['name'], relationship: { type: 'one_to_one', variant: 'scalar' } },
              { table: 'publisher', label: 'publisher_id', columns: ['id'], relationship: { type: 'one_to_one', variant: 'scalar' } },
              { table: 'rating', label: 'rating', columns: ['value'], relationship: { type: 'one_to_one', variant: 'scalar', foreign_key: { child: ['book_isbn'], parent: ['isbn'] } } },
            ],
          },
          { routing: 'route' },
        ),
      ),
    );
    expect(docs[0]!.source).toMatchObject({ id: 1, publisher_name: 'Penguin', publisher_id: 1, route: 'Penguin/1/4.5' });
    expect(docs[0]!.routing).toBe('Penguin/1/4.5');
    // No child row: NULL parts are skipped, as in any concat.
    expect(docs[2]!.source).toMatchObject({ id: 3, publisher_name: null, publisher_id: null });
  });

  it('a child table reached from the other side: author → books through book_author', async () => {
    const docs = await buildDocuments(
      db.url,
      await plan(entry({ table: 'author', columns: ['id'], children: [{ table: 'book', label: 'titles', columns: ['title'], relationship: { type: 'one_to_many', variant: 'scalar', through_tables: ['book_author'] } }] })),
    );
    expect(docs.map((d) => d.source)).toEqual([{ id: 1, titles: ['It'] }, { id: 2, titles: ['It'] }, { id: 3, titles: ['Carrie'] }]);
  });
});

describe('one_to_one children joined on their primary key', () => {
  beforeAll(async () => {
    await db.query(`
      CREATE TABLE j_country (code text PRIMARY KEY, name text NOT NULL);
      CREATE TABLE j_author (id int PRIMARY KEY, name text NOT NULL, born date, country_code text REFERENCES j_country (code));
      CREATE TABLE j_award (id int PRIMARY KEY, author_id int NOT NULL REFERENCES j_author (id), name text NOT NULL);
      CREATE TABLE j_shop (id int PRIMARY KEY, name text NOT NULL);
      CREATE TABLE j_item (id int PRIMARY KEY, shop_id int REFERENCES j_shop (id), author_id int REFERENCES j_author (id), title text);
      INSERT INTO j_country VALUES ('FR', 'France');
      INSERT INTO j_author VALUES (1, 'Alice', '1970-03-01', 'FR'), (2, 'Bob', NULL, NULL);
      INSERT INTO j_award VALUES (2, 1, 'Nebula'), (1, 1, 'Hugo');
      INSERT INTO j_shop VALUES (1, 'Main'), (2, 'Empty');
      INSERT INTO j_item VALUES (1, 1, 1, 'One'), (2, 1, 2, 'Two'), (3, 1, NULL, 'Three'), (4, NULL, 1, 'Four');`);
  });

  const authorNode = {
    table: 'j_author',
    label: 'author',
    columns: ['id', 'name'],
    relationship: { type: 'one_to_one', variant: 'object' },
    children: [
      { table: 'j_country', label: 'country', columns: ['name'], relationship: { type: 'one_to_one', variant: 'object' } },
      { table: 'j_award', label: 'awards', columns: ['name'], relationship: { type: 'one_to_many', variant: 'scalar' } },
    ],
  };

  it('gives the child when present, null when missing, null for a NULL scalar column, and nested grandchildren', async () => {
    const p = await plan(entry({
      table: 'j_item',
      columns: ['id', 'title'],
      children: [authorNode, { table: 'j_author', label: 'born', columns: ['born'], relationship: { type: 'one_to_one', variant: 'scalar' } }],
    }));
    const docs = await buildDocuments(db.url, p);
    expect(docs.map((d) => d.source)).toEqual([
      { id: 1, title: 'One', author: { id: 1, name: 'Alice', country: { name: 'France' }, awards: ['Hugo', 'Nebula'] }, born: '1970-03-01' },
      { id: 2, title: 'Two', author: { id: 2, name: 'Bob', country: null, awards: null }, born: null },
      { id: 3, title: 'Three', author: null, born: null },
      { id: 4, title: 'Four', author: { id: 1, name: 'Alice', country: { name: 'France' }, awards: ['Hugo', 'Nebula'] }, born: '1970-03-01' },
    ]);
    expect((await buildDocuments(db.url, p, { kind: 'keys', keys: [['3'], ['2']] })).map((d) => d.source.author)).toEqual([{ id: 2, name: 'Bob', country: null, awards: null }, null]);
  });

  it('gives a one_to_one under a one_to_many in each array element', async () => {
    const p = await plan(entry({
      table: 'j_shop',
      columns: ['id', 'name'],
      children: [{ table: 'j_item', label: 'items', columns: ['id', 'title'], relationship: { type: 'one_to_many', variant: 'object' }, children: [authorNode] }],
    }));
    const docs = await buildDocuments(db.url, p);
    expect(docs.map((d) => d.source)).toEqual([
      {
        id: 1,
        name: 'Main',
        items: [
          { id: 1, title: 'One', author: { id: 1, name: 'Alice', country: { name: 'France' }, awards: ['Hugo', 'Nebula'] } },
          { id: 2, title: 'Two', author: { id: 2, name: 'Bob', country: null, awards: null } },
          { id: 3, title: 'Three', author: null },
        ],
      },
      { id: 2, name: 'Empty', items: null },
    ]);
  });

  it('takes the first row by key when the join is not on the primary key', async () => {
    const p = await plan(entry({ table: 'j_author', columns: ['id'], children: [{ table: 'j_award', label: 'first_award', columns: ['id', 'name'], relationship: { type: 'one_to_one', variant: 'object' } }] }));
    expect((await buildDocuments(db.url, p)).map((d) => d.source)).toEqual([{ id: 1, first_award: { id: 1, name: 'Hugo' } }, { id: 2, first_award: null }]);
  });
});

describe('transforms', () => {
  it('replace on text arrays and JSON strings, concat keeps 0/false and skips NULL, relative move', async () => {
    await db.query(`CREATE TABLE gadget (id int PRIMARY KEY, code text, codes text[], meta jsonb, qty int, flag boolean, note text)`);
    await db.query(`INSERT INTO gadget VALUES (1, 'a-b', '{x-y,NULL,z}', '{"s": "p-q", "n": 1}', 0, false, NULL), (2, NULL, NULL, NULL, 5, true, 'n')`);
    const docs = await buildDocuments(
      db.url,
      await plan(entry({
        table: 'gadget',
        columns: ['id', 'code', 'codes', 'meta->s', 'meta->n', 'qty', 'flag', 'note'],
        transform: {
          replace: { code: { '-': '+' }, codes: { '-': '+' }, 'meta_s': { '-': '/' }, 'meta_n': { '1': '2' } },
          rename: { qty: 'quantity' },
          concat: [{ columns: ['code', 'quantity', 'flag', 'note', 'literal'], destination: 'summary', delimiter: ':' }],
          move: [{ column: 'quantity', destination: 'stock.count' }],
        },
      })),
    );
    expect(docs[0]!.source).toEqual({ id: 1, code: 'a+b', codes: ['x+y', null, 'z'], meta_s: 'p/q', meta_n: 1, flag: false, note: null, summary: 'a+b:0:false:literal', stock: { count: 0 } });
    expect(docs[1]!.source).toEqual({ id: 2, code: null, codes: null, meta_s: null, meta_n: null, flag: true, note: 'n', summary: '5:true:n:literal', stock: { count: 5 } });
  });

  it('JSON paths: ->> and #>> give text under PGSync key names', async () => {
    const docs = await buildDocuments(db.url, await plan(entry({ table: 'book', columns: ['id', 'doc->>firstname', 'doc#>>{a,b,c}', 'doc->x->>0'] })));
    expect(docs[0]!.source).toEqual({ id: 1, doc_firstname: 'Stephen', 'doc_a,b,c': '[0, 1, 2, 3, 40]', doc_x_0: '{"y": 1}' });
  });
});

describe('values are faithful to PostgreSQL', () => {
  it('keeps bigint and numeric lossless, timestamps ISO-8601, json nested, arrays, uuid, bytea base64 and NULLs', async () => {
    await db.query(`CREATE TABLE zoo (
      id bigint PRIMARY KEY, big bigint, exact numeric, nan numeric, real_v real, dbl double precision, ts timestamp, tstz timestamptz,
      d date, t time, iv interval, u uuid, bin bytea, j json, jb jsonb, ints int[], texts text[], b boolean, nothing text, money_v money)`);
    await db.query(`INSERT INTO zoo VALUES (9007199254740993, 9223372036854775807, 123456789012345678901234567890.123456789012, 'NaN', 1.5, 0.1,
      '2024-02-29 23:59:59.123456', '2024-01-01 12:00:00+02', '2024-02-29', '13:14:15', '1 day 2 hours', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '\\x00ff10', '{"n": 1.50, "k": [1, {"z": null}]}', '{"big": 12345678901234567890}', '{1,2,NULL}', '{"a,b","c\\"d"}', true, NULL, 12.5)`);
    const [doc] = await buildDocuments(db.url, await plan(entry({ table: 'zoo' })));
    expect(doc!.id).toBe('9007199254740993');
    expect(doc!.raw).toMatch(/"id" ?: ?9007199254740993\b/);
    expect(doc!.raw).toMatch(/"big" ?: ?9223372036854775807\b/);
    expect(doc!.raw).toMatch(/"exact" ?: ?123456789012345678901234567890\.123456789012\b/);
    expect(doc!.raw).toMatch(/"jb" ?: ?\{"big": ?12345678901234567890\}/);
    expect(doc!.source).toMatchObject({
      nan: 'NaN',
      real_v: 1.5,
      dbl: 0.1,
      ts: '2024-02-29T23:59:59.123456',
      tstz: '2024-01-01T10:00:00+00:00',
      d: '2024-02-29',
      t: '13:14:15',
      iv: '1 day 02:00:00',
      u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      bin: Buffer.from([0, 255, 16]).toString('base64'),
      j: { n: 1.5, k: [1, { z: null }] },
      ints: [1, 2, null],
      texts: ['a,b', 'c"d'],
      b: true,
      nothing: null,
      money_v: '$12.50',
    });
  });

  it('uses the sorted composite primary key for _id, returns rows in the key index order, and reads views through primary_key', async () => {
    await db.query(`CREATE TABLE pair (zeta text, alpha int, v text, PRIMARY KEY (zeta, alpha))`);
    await db.query(`INSERT INTO pair VALUES ('b', 2, 'x'), ('a', 10, 'y')`);
    await db.query(`CREATE VIEW pair_view AS SELECT * FROM pair`);
    const docs = await buildDocuments(db.url, await plan(entry({ table: 'pair' })));
    // _id in alphabetical column order (alpha, zeta); rows in the order of the key's index (zeta, alpha).
    expect(docs.map((d) => d.id)).toEqual(['10|a', '2|b']);
    const viewDocs = await buildDocuments(db.url, await plan(entry({ table: 'pair_view', primary_key: ['zeta', 'alpha'] })));
    expect(viewDocs.map((d) => d.id).sort()).toEqual(['10|a', '2|b']);
  });

  it('builds objects wider than PostgreSQL\'s 100-argument limit', async () => {
    const columns = Array.from({ length: 60 }, (_, i) => `c${i} int DEFAULT ${i}`);
    await db.query(`CREATE TABLE wide (id int PRIMARY KEY, ${columns.join(', ')})`);
    await db.query(`INSERT INTO wide (id) VALUES (1)`);
    const [doc] = await buildDocuments(db.url, await plan(entry({ table: 'wide' })));
    expect(Object.keys(doc!.source)).toHaveLength(61);
    expect(doc!.source.c59).toBe(59);
  });
});
