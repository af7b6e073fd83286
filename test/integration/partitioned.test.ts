// Partitioned tables in the tree: the root and a child partitioned by list. Their changes are written to the WAL by
// the partitions; the publication reports them under the partitioned table's own name (publish_via_partition_root),
// the one schema.json uses, and bootstrap sets REPLICA IDENTITY FULL on every partition, so a child moving to
// another parent (and to another partition) rebuilds both parents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged } from '../helpers/live-sluice.js';

let live: LiveIndex;

beforeAll(async () => {
  live = await startLiveIndex(
    'partitioned',
    [
      `CREATE TABLE event (id int NOT NULL, region text NOT NULL, payload text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
       CREATE TABLE event_eu PARTITION OF event FOR VALUES IN ('eu');
       CREATE TABLE event_us PARTITION OF event FOR VALUES IN ('us');
       CREATE TABLE note (id int NOT NULL, kind text NOT NULL, event_id int NOT NULL, event_region text NOT NULL, body text,
         PRIMARY KEY (id, kind), FOREIGN KEY (event_id, event_region) REFERENCES event (id, region)) PARTITION BY LIST (kind);
       CREATE TABLE note_a PARTITION OF note FOR VALUES IN ('a');
       CREATE TABLE note_b PARTITION OF note FOR VALUES IN ('b');
       INSERT INTO event VALUES (1, 'eu', 'first'), (2, 'us', 'second');
       INSERT INTO note VALUES (1, 'a', 1, 'eu', 'n1'), (2, 'b', 2, 'us', 'n2');`,
    ],
    (database) => [
      {
        database,
        index: 'partitioned_event',
        nodes: {
          table: 'event',
          columns: ['id', 'region', 'payload'],
          children: [{ table: 'note', columns: ['id', 'kind', 'body'], relationship: { type: 'one_to_many', variant: 'object' } }],
        },
      },
    ],
  );
});

afterAll(async () => {
  await live?.close();
});

describe('partitioned tables', () => {
  it('bootstrap publishes them under their own names and sets REPLICA IDENTITY FULL on every partition', async () => {
    const published = (await live.db.query<{ name: string }>(`SELECT tablename::text AS name FROM pg_publication_tables WHERE pubname = 'sluice' ORDER BY 1`)).rows.map((r) => r.name);
    expect(published).toEqual(['event', 'note']);
    const identities = (await live.db.query<{ name: string; identity: string }>(`SELECT relname::text AS name, relreplident::text AS identity FROM pg_class WHERE relkind = 'r' AND relname ~ '^(event|note)_' ORDER BY 1`)).rows;
    expect(identities).toEqual(['event_eu', 'event_us', 'note_a', 'note_b'].map((name) => ({ name, identity: 'f' })));
  });

  it('changes on root and child partitions reach the index, including a child moved to another parent', async () => {
    await expectConverged(live.db.url, live.plan, live.engine.url);
    await live.db.query(`UPDATE event SET payload = 'changed' WHERE id = 1`);
    await live.db.query(`INSERT INTO event VALUES (3, 'eu', 'third')`);
    await expectConverged(live.db.url, live.plan, live.engine.url);
    // Moves to event 2 and to the other partition of note (a delete from note_a and an insert into note_b).
    await live.db.query(`UPDATE note SET event_id = 2, event_region = 'us', kind = 'b', body = 'moved' WHERE id = 1 AND kind = 'a'`);
    await live.db.query(`DELETE FROM event WHERE id = 3`);
    await expectConverged(live.db.url, live.plan, live.engine.url);
  });
});
