// The engine's disk flood-stage watermark puts read_only_allow_delete on indices: writes are refused with 429
// (deletes still pass) until an operator frees disk and the block goes. Sluice must wait without losing or
// dead-lettering anything, and catch up by itself once the block is lifted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments, engineCall } from '../helpers/engine.js';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged, logLines, waitFor } from '../helpers/live-sluice.js';

let live: LiveIndex;
const index = 'blocked_shelf';

beforeAll(async () => {
  live = await startLiveIndex(
    'index_blocks',
    [`CREATE TABLE shelf (id int PRIMARY KEY, name text); INSERT INTO shelf SELECT g, 'shelf ' || g FROM generate_series(1, 10) g`],
    (database) => [{ database, index, nodes: { table: 'shelf', columns: ['id', 'name'] } }],
    { SLUICE_RETRY_MAX_MS: '300' },
  );
  await waitFor('the snapshot', async () => ((await allDocuments(live.engine.url, index).catch(() => new Map())).size === 10 ? true : undefined));
});

afterAll(async () => {
  await live?.close();
});

const block = async (value: boolean | null) => {
  const res = await engineCall(live.engine.url, 'PUT', `/${index}/_settings`, { 'index.blocks.read_only_allow_delete': value });
  expect(res.status, JSON.stringify(res.json)).toBe(200);
};

describe('an index blocked by the flood-stage watermark', () => {
  it('holds writes back while blocked, lets deletes through, and catches up once the block is lifted', async () => {
    await block(true);
    try {
      await live.db.query(`DELETE FROM shelf WHERE id = 1`);
      await waitFor('the delete, which the block lets through', async () => ((await allDocuments(live.engine.url, index)).has('1') ? undefined : true));
      await live.db.query(`UPDATE shelf SET name = 'while blocked' WHERE id = 2; INSERT INTO shelf VALUES (11, 'new')`);
      const retried = await waitFor('a retried bulk request naming the block', async () =>
        logLines(live.sluice.output()).find((l) => l.msg === 'bulk request will be retried' && String(l.reason).includes('read-only-allow-delete')),
      );
      expect(retried).toBeDefined();
      const docs = await allDocuments(live.engine.url, index);
      expect(docs.has('11')).toBe(false);
      expect(docs.get('2')).toEqual({ id: 2, name: 'shelf 2' });
    } finally {
      await block(null);
    }
    await expectConverged(live.db.url, live.plan, live.engine.url);
    expect(logLines(live.sluice.output()).some((l) => l.msg === 'documents rejected by the search engine')).toBe(false);
  });
});
