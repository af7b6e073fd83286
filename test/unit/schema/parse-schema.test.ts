import { describe, expect, it } from 'vitest';
import { parseColumnSpec } from '../../../src/schema/parse-column.js';
import { parseSchema } from '../../../src/schema/parse-schema.js';

const node = { table: 'book', columns: ['id'] };

function errors(document: unknown, env: Record<string, string> = {}) {
  return parseSchema(document, env).problems.filter((p) => p.severity === 'error');
}

describe('parseColumnSpec', () => {
  it.each([
    ['doc->firstname', 'doc_firstname', [{ operator: '->', argument: 'firstname' }]],
    ['doc->>firstname', 'doc_firstname', [{ operator: '->>', argument: 'firstname' }]],
    ['doc->x->0->y', 'doc_x_0_y', [{ operator: '->', argument: 'x' }, { operator: '->', argument: 0 }, { operator: '->', argument: 'y' }]],
    ['doc#>{a,b,c}->4', 'doc_a,b,c_4', [{ operator: '#>', argument: ['a', 'b', 'c'] }, { operator: '->', argument: 4 }]],
    ['doc#>>{a,b}', 'doc_a,b', [{ operator: '#>>', argument: ['a', 'b'] }]],
  ])('%s → key %s', (raw, key, path) => {
    expect(parseColumnSpec(raw, '$')).toMatchObject({ column: 'doc', key, path });
  });

  it('rejects an operator without a column or an argument', () => {
    expect(parseColumnSpec('->x', '$')).toMatch(/no column name/);
    expect(parseColumnSpec('doc->', '$')).toMatch(/nothing after/);
  });

  it('rejects an empty path element and an array index past the safe integers', () => {
    expect(parseColumnSpec('doc#>{}', '$')).toMatch(/empty element in its path "\{\}"/);
    expect(parseColumnSpec('doc#>{a,,b}', '$')).toMatch(/empty element/);
    expect(parseColumnSpec('doc->99999999999999999999', '$')).toMatch(/array index out of range/);
    expect(parseColumnSpec('doc->9007199254740991', '$')).toMatchObject({ path: [{ operator: '->', argument: 9007199254740991 }] });
  });
});

describe('parseSchema', () => {
  it('accepts the PGSync shape and defaults index, schema and label', () => {
    const { entries, problems } = parseSchema([{ database: 'db', nodes: { ...node, children: [{ table: 'author', relationship: { type: 'one_to_many', variant: 'object' } }] } }]);
    expect(problems).toEqual([]);
    expect(entries[0]).toMatchObject({ database: 'db', index: 'db', nodes: { schema: 'public', label: 'book', children: [{ label: 'author', schema: 'public' }] } });
  });

  it('substitutes $NAME and ${NAME} in top-level strings only, leaving unknown names', () => {
    const { entries } = parseSchema([{ database: '$DB', index: '${IDX}', pipeline: '$UNKNOWN', nodes: { table: '$DB' } }], { DB: 'app', IDX: 'company' });
    expect(entries[0]).toMatchObject({ database: 'app', index: 'company', pipeline: '$UNKNOWN', nodes: { table: '$DB' } });
  });

  it('reports every structural mistake at once, each with its JSON location', () => {
    const problems = errors([
      {
        database: 'db',
        index: 'Bad Index',
        colour: 1,
        plugins: ['Groot'],
        nodes: {
          table: 'book',
          lable: 'x',
          columns: ['id', 3, 'doc->'],
          children: [
            { table: 'author' },
            { table: 'city', relationship: { type: 'ONE_TO_MANY', variant: 'objet', through_tables: ['a', 'b'], extra: true } },
            { table: 'tag', relationship: { type: 'one_to_many', variant: 'object', foreign_key: { parent: ['id'], child: [] } } },
            { table: 'x', label: 'dup', relationship: { type: 'one_to_one', variant: 'object' } },
            { table: 'y', label: 'dup', relationship: { type: 'one_to_one', variant: 'object' } },
          ],
          transform: { rename: { a: '' }, concat: { destination: 'd' }, move: { column: 'a', destination: 'x..y' }, mapping: { f: { type: 'strng' } }, shuffle: {} },
        },
      },
      { index: 'other', nodes: [node] },
    ]);
    const locations = problems.map((p) => p.location);
    expect(locations).toEqual(
      expect.arrayContaining([
        '$[0].colour',
        '$[0].index',
        '$[0].plugins',
        '$[0].nodes.lable',
        '$[0].nodes.columns[1]',
        '$[0].nodes.columns[2]',
        '$[0].nodes.children[0]',
        '$[0].nodes.children[1].relationship.type',
        '$[0].nodes.children[1].relationship.variant',
        '$[0].nodes.children[1].relationship.through_tables',
        '$[0].nodes.children[1].relationship.extra',
        '$[0].nodes.children[2].relationship.foreign_key',
        '$[0].nodes.children[4].label',
        '$[0].nodes.transform.rename.a',
        '$[0].nodes.transform.concat.columns',
        '$[0].nodes.transform.move.destination',
        '$[0].nodes.transform.mapping.f.type',
        '$[0].nodes.transform.shuffle',
        '$[1].database',
        '$[1].nodes',
      ]),
    );
    expect(problems.find((p) => p.location === '$[0].nodes.lable')?.message).toMatch(/did you mean "label"/);
    expect(problems.find((p) => p.location === '$[0].nodes.children[1].relationship.type')?.message).toMatch(/case-sensitive/);
    expect(problems.find((p) => p.location === '$[1].nodes')?.message).toMatch(/v1 format/);
  });

  it('rejects a document that is not a list, and duplicate indexes', () => {
    expect(errors({ database: 'db' })[0]?.message).toMatch(/JSON array/);
    const dup = errors([{ database: 'a', index: 'i', nodes: node }, { database: 'b', index: 'i', nodes: node }]);
    expect(dup).toEqual([expect.objectContaining({ location: '$[1].index' })]);
  });

  it('refuses "index": null, and says where an index name taken from the database comes from', () => {
    expect(errors([{ database: 'db', index: null, nodes: node }])).toEqual([{ location: '$[0].index', severity: 'error', message: expect.stringContaining('"index" must be a non-empty string, got null') }]);
    expect(errors([{ database: 'MyDb', nodes: node }])).toEqual([
      { location: '$[0].database', severity: 'error', message: expect.stringContaining('must be lowercase (without "index", the index is named after the database; set "index")') },
    ]);
    expect(errors([{ database: '$PG_DB', nodes: node }])[0]?.message).toContain('"$PG_DB" was not substituted: that environment variable is not set');
  });

  it('warns that a top-level "schema" is not used when the root node reads another schema', () => {
    const warnings = (document: unknown) => parseSchema(document).problems.filter((p) => p.severity === 'warning');
    expect(warnings([{ database: 'db', schema: 'sales', nodes: node }])).toEqual([{ location: '$[0].schema', severity: 'warning', message: expect.stringContaining('the root table is read from schema "public"; set "schema" on each node') }]);
    expect(warnings([{ database: 'db', schema: 'sales', nodes: { ...node, schema: 'sales' } }])).toEqual([]);
    expect(warnings([{ database: 'db', schema: 'public', nodes: node }])).toEqual([]);
  });

  it('refuses a move to "$root" without a field name', () => {
    expect(errors([{ database: 'db', nodes: { ...node, transform: { move: { column: 'id', destination: '$root' } } } }])).toEqual([
      { location: '$[0].nodes.transform.move.destination', severity: 'error', message: 'destination "$root" needs a field name: "$root.<name>" (a field of the root document)' },
    ]);
  });
});
