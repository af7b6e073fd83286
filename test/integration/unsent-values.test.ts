// Values a document uses that an UPDATE's WAL record does not show changing: a generated column (pgoutput leaves
// it out, and its sources need not be in the document) and xmin (changes with every update, even one that
// rewrites a row with the same values). Updates of such tables are never skipped as irrelevant. And a join value
// an UPDATE's WAL record does not carry at all: an unchanged TOASTed value, on a table without REPLICA IDENTITY FULL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments } from '../helpers/engine.js';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged } from '../helpers/live-sluice.js';

let live: LiveIndex;
let toasted: LiveIndex;
/** Join values stored out of line (STORAGE EXTERNAL: never compressed, so anything over ~2 kB is TOASTed). */
const CODE_A = `${'a'.repeat(4000)}-one`;
const CODE_B = `${'b'.repeat(4000)}-two`;

beforeAll(async () => {
  live = await startLiveIndex(
    'unsent',
    [
      `CREATE TABLE person (id int PRIMARY KEY, first text NOT NULL, last text NOT NULL, full_name text GENERATED ALWAYS AS (first || ' ' || last) STORED);
       CREATE TABLE pet (id int PRIMARY KEY, person_id int NOT NULL REFERENCES person (id), name text NOT NULL);
       INSERT INTO person VALUES (1, 'Ada', 'Lovelace'), (2, 'Alan', 'Turing');
       INSERT INTO pet VALUES (1, 1, 'Babbage'), (2, 2, 'Enigma');`,
    ],
    (database) => [
      {
        database,
        index: 'unsent_person',
        nodes: {
          table: 'person',
          columns: ['id', 'full_name'],
          children: [{ table: 'pet', columns: ['id', 'name', 'xmin'], relationship: { type: 'one_to_many', variant: 'object' } }],
        },
      },
    ],
  );
});

beforeAll(async () => {
  toasted = await startLiveIndex(
    'toasted',
    [
      `CREATE TABLE shelf (id int PRIMARY KEY, code text NOT NULL UNIQUE, title text NOT NULL);
       CREATE TABLE note (id int PRIMARY KEY, shelf_code text NOT NULL, body text NOT NULL);
       ALTER TABLE shelf ALTER code SET STORAGE EXTERNAL;
       ALTER TABLE note ALTER shelf_code SET STORAGE EXTERNAL;
       INSERT INTO shelf VALUES (1, '${CODE_A}', 'one'), (2, '${CODE_B}', 'two');
       INSERT INTO note VALUES (1, '${CODE_A}', 'first'), (2, '${CODE_B}', 'second'), (3, '${CODE_B}', 'third');`,
    ],
    (database) => [
      {
        database,
        index: 'toasted_shelf',
        nodes: {
          table: 'shelf',
          columns: ['id', 'title'],
          children: [{ table: 'note', columns: ['id', 'body'], relationship: { type: 'one_to_many', variant: 'object', foreign_key: { child: ['shelf_code'], parent: ['code'] } } }],
        },
      },
    ],
    {},
    ['--no-replica-identity'],
  );
});

afterAll(async () => {
  await live?.close();
  await toasted?.close();
});

describe('values an update does not show changing', () => {
  it('a generated column changed through a column no document names reaches the index', async () => {
    await expectConverged(live.db.url, live.plan, live.engine.url);
    await live.db.query(`UPDATE person SET first = 'Augusta' WHERE id = 1`);
    await expectConverged(live.db.url, live.plan, live.engine.url);
  });

  it('xmin changed by an update that rewrites the same values reaches the index', async () => {
    await live.db.query(`UPDATE pet SET name = name WHERE id = 2`);
    await expectConverged(live.db.url, live.plan, live.engine.url);
  });
});

describe('a join value an update does not carry (REPLICA IDENTITY DEFAULT, unchanged TOASTed value)', () => {
  it('an update of a child whose join value is TOASTed and unchanged rebuilds its parent', async () => {
    await expectConverged(toasted.db.url, toasted.plan, toasted.engine.url);
    // The WAL's new row has no value for shelf_code ("unchanged TOASTed") and there is no old row: the parent is found
    // from the child's current row, by its key.
    await toasted.db.query(`UPDATE note SET body = 'first, edited' WHERE id = 1`);
    await toasted.db.query(`BEGIN; UPDATE note SET body = 'second, edited' WHERE id = 2; UPDATE note SET body = 'third, edited' WHERE id = 3; COMMIT`);
    await expectConverged(toasted.db.url, toasted.plan, toasted.engine.url);
    const shelves = await allDocuments(toasted.engine.url, 'toasted_shelf');
    expect(shelves.get('1')).toMatchObject({ note: [{ body: 'first, edited' }] });
    expect(shelves.get('2')).toMatchObject({ note: [{ body: 'second, edited' }, { body: 'third, edited' }] });
  });
});
