import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('validation');
  await db.query(fixtureSql('book.sql'));
  await db.query(`CREATE TABLE trade (id int PRIMARY KEY, buyer_id int REFERENCES author (id), seller_id int REFERENCES author (id))`);
  await db.query(`CREATE TABLE loose (id int PRIMARY KEY, note text)`);
  await db.query(`CREATE TABLE nokey (id int, note text)`);
  await db.query(`CREATE VIEW book_view AS SELECT id, title FROM book`);
  await db.query(`CREATE SCHEMA other`);
});

afterAll(async () => {
  await db?.drop();
});

async function errorsOf(nodes: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const { problems } = await compileAgainst(db.url, [{ database: db.name, index: 'test', nodes, ...extra }]);
  return problems.filter((p) => p.severity === 'error').map((p) => ({ location: p.location, message: p.message }));
}

const child = (table: string, relationship: Record<string, unknown> = { type: 'one_to_many', variant: 'object' }, more: Record<string, unknown> = {}) => ({ table, relationship, ...more });

describe('schema checked against the database catalog', () => {
  it('accepts the book fixture', async () => {
    const { problems } = await compileAgainst(db.url, fixtureSchema('book.json', db.name));
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
  });

  it.each([
    ['unknown schema', { table: 'book', schema: 'nope' }, {}, '$[0].nodes.schema', /schema "nope" does not exist/],
    ['unknown table', { table: 'bok' }, {}, '$[0].nodes.table', /"public.bok" does not exist/],
    ['table in another schema', { table: 'book', schema: 'other' }, {}, '$[0].nodes.table', /"other.book" does not exist/],
    ['unknown column', { table: 'book', columns: ['id', 'titel'] }, {}, '$[0].nodes.columns[1]', /column "titel" not found on "public.book"/],
    ['JSON path on a non-JSON column', { table: 'book', columns: ['title->x'] }, {}, '$[0].nodes.columns[0]', /not json or jsonb/],
    ['missing foreign key', { table: 'book', children: [child('loose')] }, {}, '$[0].nodes.children[0].relationship', /no foreign key between "public.book" and "public.loose"/],
    ['ambiguous foreign key', { table: 'trade', children: [child('author')] }, {}, '$[0].nodes.children[0].relationship', /ambiguous: 2 foreign keys/],
    ['foreign_key naming an unknown column', { table: 'book', children: [child('loose', { type: 'one_to_one', variant: 'object', foreign_key: { parent: ['id'], child: ['book_id'] } })] }, {}, '$[0].nodes.children[0].relationship.foreign_key.child', /book_id not found on child/],
    ['missing through table', { table: 'book', children: [child('author', { type: 'one_to_many', variant: 'object', through_tables: ['book_writer'] })] }, {}, '$[0].nodes.children[0].relationship.through_tables', /"public.book_writer" does not exist/],
    ['through table without a link to the child', { table: 'book', children: [child('subject', { type: 'one_to_many', variant: 'object', through_tables: ['book_author'] })] }, {}, '$[0].nodes.children[0].relationship.through_tables', /no foreign key between "public.book_author" and "public.subject"/],
    ['view without primary_key', { table: 'book_view' }, {}, '$[0].nodes.primary_key', /view "public.book_view" needs "primary_key"/],
    ['table without a primary key', { table: 'nokey' }, {}, '$[0].nodes.primary_key', /has no primary key/],
    ['rename of a field the node does not produce', { table: 'book', columns: ['id'], transform: { rename: { title: 'name' } } }, {}, '$[0].nodes.transform.rename.title', /does not produce/],
    ['$root move out of a to-many child', { table: 'book', columns: ['id'], children: [child('book_author', { type: 'one_to_many', variant: 'object' }, { columns: ['author_id'], transform: { move: { column: 'author_id', destination: '$root.first_author' } } })] }, {}, '$[0].nodes.children[0].transform.move.destination', /one_to_one/],
    ['routing field that is not in the document', { table: 'book', columns: ['id'] }, { routing: 'isbn' }, '$[0].routing', /routing field "isbn"/],
    ['conflicting mappings', { table: 'book', columns: ['id'], transform: { mapping: { id: { type: 'keyword' } } } }, { mapping: { id: { type: 'long' } } }, '$[0].nodes.transform.mapping', /mapping conflict at "properties.id.type"/],
  ])('%s', async (_name, nodes, extra, location, message) => {
    const errors = await errorsOf(nodes, extra);
    expect(errors).toContainEqual({ location, message: expect.stringMatching(message) });
  });

  it('warns about a mapping of a field the node does not produce, and a child named like a column', async () => {
    const { problems } = await compileAgainst(db.url, [
      {
        database: db.name,
        index: 'test',
        nodes: {
          table: 'book',
          columns: ['id', 'title', 'isbn'],
          transform: { rename: { isbn: 'code' }, mapping: { titel: { type: 'text' }, isbn: { type: 'keyword' }, code: { type: 'keyword' } } },
          children: [child('publisher', { type: 'one_to_one', variant: 'object' }, { label: 'title', columns: ['id'] })],
        },
      },
    ]);
    expect(problems.filter((p) => p.severity === 'error')).toEqual([]);
    const warnings = problems.filter((p) => p.severity === 'warning').map((p) => ({ location: p.location, message: p.message }));
    expect(warnings).toContainEqual({ location: '$[0].nodes.transform.mapping.titel', message: expect.stringContaining('mapping of "titel", which the node does not produce') });
    expect(warnings).toContainEqual({ location: '$[0].nodes.transform.mapping.isbn', message: expect.stringContaining('which is renamed to "code"') });
    expect(warnings).toContainEqual({ location: '$[0].nodes.children[0].label', message: expect.stringContaining('the child "title" has the name of a column of book') });
    expect(warnings.filter((w) => w.location === '$[0].nodes.transform.mapping.code')).toEqual([]);
  });

  it('reports every mistake of every node at once', async () => {
    const errors = await errorsOf({
      table: 'book',
      columns: ['id', 'nope'],
      children: [child('loose'), child('bok'), child('author', { type: 'one_to_many', variant: 'object' }, { columns: ['zzz'] }), child('book_view', { type: 'one_to_one', variant: 'object', foreign_key: { parent: ['id'], child: ['id'] } })],
    });
    expect(errors.map((e) => e.location).sort()).toEqual(
      [
        '$[0].nodes.columns[1]',
        '$[0].nodes.children[0].relationship',
        '$[0].nodes.children[1].table',
        '$[0].nodes.children[2].columns[0]',
        '$[0].nodes.children[2].relationship',
        '$[0].nodes.children[3].primary_key',
      ].sort(),
    );
  });

  it('merges transform mappings under their labels with the top-level mapping and the routing requirement', async () => {
    const { plans } = await compileAgainst(db.url, fixtureSchema('book.json', db.name));
    expect(plans[0]!.mappings).toEqual({
      properties: {
        authors: { type: 'nested', properties: { city_label: { properties: { country_label: { properties: { continent_label: { properties: { name: { type: 'keyword' } } } } } } } } },
        book_id: { type: 'long' },
        book_isbn: { type: 'text', fields: { ngram: { type: 'text', analyzer: 'ngram_analyzer' } } },
        publisher_label: { properties: { publisher_name: { type: 'keyword' } } },
      },
      _routing: { required: true },
    });
  });
});
