// Root keys whose text in the WAL (the type's output) is not their `::text`, which document ids are made of:
// boolean (t / true), character(n) (padded / trimmed), inet (1.2.3.4 / 1.2.3.4/32). A delete or a key change
// of such a root must still find the document to delete.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments } from '../helpers/engine.js';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged, waitFor } from '../helpers/live-sluice.js';

let live: LiveIndex;

beforeAll(async () => {
  live = await startLiveIndex(
    'key_types',
    [
      `CREATE TABLE station (code char(4), active boolean, addr inet, name text, PRIMARY KEY (code, active, addr));
       INSERT INTO station VALUES ('AB', true, '10.0.0.1', 'first'), ('CDE', false, '10.0.0.2', 'second'), ('F', true, '10.0.0.3', 'third');
       -- Domains cast to text as their underlying type does (here through a domain over a domain).
       CREATE DOMAIN flag AS boolean; CREATE DOMAIN strict_flag AS flag NOT NULL;
       CREATE TABLE toggle (on_off strict_flag PRIMARY KEY, label text);
       INSERT INTO toggle VALUES (true, 'on'), (false, 'off');`,
    ],
    (database) => [
      { database, index: 'key_type_station', nodes: { table: 'station', columns: ['code', 'active', 'addr', 'name'] } },
      { database, index: 'key_type_toggle', nodes: { table: 'toggle', columns: ['on_off', 'label'] } },
    ],
  );
  await waitFor('the snapshot', async () => ((await allDocuments(live.engine.url, 'key_type_station').catch(() => new Map())).size === 3 ? true : undefined));
  await waitFor('the toggle snapshot', async () => ((await allDocuments(live.engine.url, 'key_type_toggle').catch(() => new Map())).size === 2 ? true : undefined));
});

afterAll(async () => {
  await live?.close();
});

describe('root keys of boolean, character(n) and inet', () => {
  it('are stored under their ::text ids', async () => {
    const ids = [...(await allDocuments(live.engine.url, 'key_type_station')).keys()].sort();
    // Key values in alphabetical column order (active, addr, code), as PGSync makes ids.
    expect(ids).toEqual(['false|10.0.0.2/32|CDE', 'true|10.0.0.1/32|AB', 'true|10.0.0.3/32|F']);
  });

  it('an update, an insert, a delete and a key change reach the same documents', async () => {
    await live.db.query(`UPDATE station SET name = 'renamed' WHERE code = 'AB'`);
    await live.db.query(`INSERT INTO station VALUES ('GH', false, '10.0.0.4', 'fourth')`);
    await live.db.query(`DELETE FROM station WHERE code = 'CDE'`);
    await live.db.query(`UPDATE station SET active = false, addr = '10.0.0.9' WHERE code = 'F'`);
    await expectConverged(live.db.url, live.plan, live.engine.url);
    const ids = [...(await allDocuments(live.engine.url, 'key_type_station')).keys()].sort();
    expect(ids).toEqual(['false|10.0.0.4/32|GH', 'false|10.0.0.9/32|F', 'true|10.0.0.1/32|AB']);
  });
});

describe('a root key of a domain over boolean', () => {
  it('is matched by its underlying type\'s text: a delete and a key change find their documents', async () => {
    expect([...(await allDocuments(live.engine.url, 'key_type_toggle')).keys()].sort()).toEqual(['false', 'true']);
    await live.db.query(`DELETE FROM toggle WHERE on_off = false`);
    await live.db.query(`UPDATE toggle SET on_off = false, label = 'switched' WHERE on_off = true`);
    await waitFor('the switched toggle', async () => {
      const docs = await allDocuments(live.engine.url, 'key_type_toggle');
      return docs.size === 1 && (docs.get('false') as { label?: string } | undefined)?.label === 'switched' ? true : undefined;
    });
  });
});
