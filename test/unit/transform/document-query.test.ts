import { describe, expect, it } from 'vitest';
import type { EntryPlan, PlanColumn, PlanNode, PlanRelationship } from '../../../src/schema/sync-plan.js';
import type { TransformSpec } from '../../../src/schema/schema-types.js';
import { buildDocumentQuery } from '../../../src/transform/document-query.js';

function transform(): TransformSpec {
  return { rename: new Map(), replace: new Map(), concat: [], move: [], mapping: new Map() };
}

function column(name: string): PlanColumn {
  const text = name === 'name';
  return {
    spec: { raw: name, column: name, path: [], key: name, location: `columns.${name}` },
    info: { name, type: text ? 'text' : 'integer', baseTypeName: text ? 'text' : 'int4', isArray: false, category: text ? 'S' : 'N' },
  };
}

function node(table: string, options: { columns?: string[]; primaryKey?: string[]; relationship?: PlanRelationship; children?: PlanNode[] } = {}): PlanNode {
  const primaryKey = options.primaryKey ?? ['id'];
  return {
    location: table,
    schema: 'public',
    table,
    label: table,
    outputKey: table,
    primaryKey,
    primaryKeyTypes: Object.fromEntries(primaryKey.map((c) => [c, 'integer'])),
    columns: (options.columns ?? ['id', 'name']).map(column),
    children: options.children ?? [],
    relationship: options.relationship,
    transform: transform(),
    singleValued: true,
  };
}

function oneToOne(parentColumns: string[], childColumns: string[], variant: 'object' | 'scalar' = 'object'): PlanRelationship {
  return { type: 'one_to_one', variant, join: { parentColumns, childColumns } };
}

function oneToMany(parentColumns: string[], childColumns: string[]): PlanRelationship {
  return { type: 'one_to_many', variant: 'object', join: { parentColumns, childColumns } };
}

function sql(root: PlanNode): string {
  const plan: EntryPlan = { entry: {} as EntryPlan['entry'], database: 'db', index: 'test', root };
  return buildDocumentQuery(plan, { kind: 'all' }).text;
}

describe('buildDocumentQuery: one_to_one children', () => {
  it('reads a one_to_one child joined on its primary key with a correlated subquery, not a join of the root FROM', () => {
    // A LEFT JOIN is faster only while the child table is small; see the comment in childValue.
    expect(sql(node('item', { children: [node('author', { relationship: oneToOne(['author_id'], ['id']) })] }))).toBe(
      [
        `SELECT concat_ws('|', n0."id"::text) AS _id,`,
        `       NULL::text AS _routing,`,
        `       replace((json_build_object('id', n0."id", 'name', n0."name", 'author', (SELECT json_build_object('id', n1."id", 'name', n1."name") FROM "public"."author" AS n1 WHERE n1."id" = n0."author_id" ORDER BY n1."id" LIMIT 1)))::text, E'\\n', '') AS _source`,
        `  FROM "public"."item" AS n0`,
        ` ORDER BY n0."id"`,
      ].join('\n'),
    );
  });

  it('takes the first row by key when the join columns are not the whole primary key, object or scalar', () => {
    const notKey = sql(node('book', { children: [node('rating', { relationship: oneToOne(['isbn'], ['book_isbn']) })] }));
    expect(notKey).toContain(`(SELECT json_build_object('id', n1."id", 'name', n1."name") FROM "public"."rating" AS n1 WHERE n1."book_isbn" = n0."isbn" ORDER BY n1."id" LIMIT 1)`);

    const partOfKey = sql(node('item', { children: [node('edition', { primaryKey: ['book_id', 'no'], columns: ['name'], relationship: oneToOne(['id'], ['book_id'], 'scalar') })] }));
    expect(partOfKey).toContain(`'edition', (SELECT n1."name" FROM "public"."edition" AS n1 WHERE n1."book_id" = n0."id" ORDER BY n1."book_id", n1."no" LIMIT 1)`);
  });

  it('orders a one_to_one through a table by the child key, then the through key', () => {
    const child = node('author', {
      relationship: {
        type: 'one_to_one',
        variant: 'object',
        through: { schema: 'public', table: 'book_author', primaryKey: ['id'], parentJoin: { parentColumns: ['isbn'], childColumns: ['book_isbn'] }, childJoin: { parentColumns: ['author_id'], childColumns: ['id'] } },
      },
    });
    expect(sql(node('book', { children: [child] }))).toContain(
      `(SELECT json_build_object('id', n1."id", 'name', n1."name") FROM "public"."book_author" AS t2 JOIN "public"."author" AS n1 ON n1."id" = t2."author_id" WHERE t2."book_isbn" = n0."isbn" ORDER BY n1."id", t2."id" LIMIT 1)`,
    );
  });

  it('nests grandchildren of a one_to_one as subqueries on the child alias', () => {
    const city = node('city', { relationship: oneToOne(['city_id'], ['id']) });
    const awards = node('award', { relationship: oneToMany(['id'], ['author_id']) });
    const text = sql(node('item', { children: [node('author', { relationship: oneToOne(['author_id'], ['id']), children: [city, awards] })] }));
    expect(text).toContain(`'city', (SELECT json_build_object('id', n2."id", 'name', n2."name") FROM "public"."city" AS n2 WHERE n2."id" = n1."city_id" ORDER BY n2."id" LIMIT 1)`);
    expect(text).toContain(`'award', (SELECT json_agg(json_build_object('id', n3."id", 'name', n3."name") ORDER BY n3."id") FROM "public"."award" AS n3 WHERE n3."author_id" = n1."id")`);
    expect(text).toMatch(/\n {2}FROM "public"."item" AS n0\n ORDER BY n0."id"$/);
  });

  it('puts a one_to_one under a one_to_many inside the json_agg subquery, on the array element alias', () => {
    const items = node('item', { relationship: oneToMany(['id'], ['shop_id']), children: [node('author', { relationship: oneToOne(['author_id'], ['id']) })] });
    const text = sql(node('shop', { children: [items] }));
    expect(text).toContain(
      `(SELECT json_agg(json_build_object('id', n1."id", 'name', n1."name", 'author', (SELECT json_build_object('id', n2."id", 'name', n2."name") FROM "public"."author" AS n2 WHERE n2."id" = n1."author_id" ORDER BY n2."id" LIMIT 1)) ORDER BY n1."id") FROM "public"."item" AS n1 WHERE n1."shop_id" = n0."id")`,
    );
  });
});
