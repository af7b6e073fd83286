// Values a document uses that an UPDATE's WAL record does not show changing: a generated column (pgoutput leaves
// it out, and its sources need not be in the document) and xmin (changes with every update, even one that
// rewrites a row with the same values). Updates of such tables are never skipped as irrelevant.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged } from '../helpers/live-sluice.js';

let live: LiveIndex;

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

afterAll(async () => {
  await live?.close();
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
