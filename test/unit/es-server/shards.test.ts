import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { defaultRoutingNumShards, shardFor } from '../../es-server/routing.js';
import { bulk, call, ndjson } from './helpers.js';

/** Two routing values that land on different shards of an index with `shards` primaries. */
function routingsOnDifferentShards(shards: number): [string, string] {
  const a = 'r0';
  for (let i = 1; i < 100; i++) if (shardFor(`r${i}`, shards) !== shardFor(a, shards)) return [a, `r${i}`];
  throw new Error('no two routings on different shards');
}

const hitsOf = (res: { json: any }) => res.json.hits.hits as Array<{ _id: string; _routing?: string; _source: any; _version?: number }>;

describe('shard selection', () => {
  it('is Elasticsearch routing: the BWC table of OperationRoutingTests (8 shards, routing_num_shards 8)', () => {
    const table: Record<string, number> = {
      sEERfFzPSI: 1, cNRiIrjzYd: 7, BgfLBXUyWT: 5, cnepjZhQnb: 3, OKCmuYkeCK: 6, OutXGRQUja: 5, yCdyocKWou: 1, KXuNWWNgVj: 2,
      DGJOYrpESx: 4, upLDybdTGs: 5, yhZhzCPQby: 1, EyCVeiCouA: 1, tFyVdQauWR: 6, nyeRYDnDQr: 6, hswhrppvDH: 0, BSiWvDOsNE: 5,
    };
    for (const [routing, shard] of Object.entries(table)) expect([routing, shardFor(routing, 8, 8)]).toEqual([routing, shard]);
  });

  it('uses the default number of routing shards of 7.0+ indices (numShards * 2^x up to 1024)', () => {
    expect([1, 2, 3, 4, 5, 8, 600, 1024].map(defaultRoutingNumShards)).toEqual([1024, 1024, 768, 1024, 640, 1024, 1200, 2048]);
    expect(shardFor('anything', 1)).toBe(0);
  });
});

describe('an index with several shards', () => {
  let engine: TestEngine;
  const [A, B] = routingsOnDifferentShards(4);
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('keeps one document per shard: the same id under two routings exists twice', async () => {
    await call(engine.url, 'PUT', '/multi', { settings: { number_of_shards: 4 } });
    const first = await call(engine.url, 'PUT', `/multi/_doc/1?routing=${A}`, { v: 'a' });
    const second = await call(engine.url, 'PUT', `/multi/_doc/1?routing=${B}`, { v: 'b' });
    expect([first.status, first.json.result, first.json._version]).toEqual([201, 'created', 1]);
    expect([second.status, second.json.result, second.json._version]).toEqual([201, 'created', 1]);
    await call(engine.url, 'POST', '/multi/_refresh');
    const search = await call(engine.url, 'POST', '/multi/_search', { query: { ids: { values: ['1'] } } });
    expect(search.json._shards).toEqual({ total: 4, successful: 4, skipped: 0, failed: 0 });
    expect(search.json.hits.total).toEqual({ value: 2, relation: 'eq' });
    expect(hitsOf(search).map((h) => [h._id, h._routing, h._source.v]).sort()).toEqual([['1', A, 'a'], ['1', B, 'b']]);
    expect((await call(engine.url, 'POST', '/multi/_count')).json).toEqual({ count: 2, _shards: { total: 4, successful: 4, skipped: 0, failed: 0 } });
    expect(engine.store.copies('multi', '1').map((c) => [c.shard, c.routing])).toEqual(
      [[shardFor(A, 4), A], [shardFor(B, 4), B]].sort((x, y) => (x[0] as number) - (y[0] as number)),
    );
  });

  it('gets, searches with routing and mgets only the copy on the routed shard', async () => {
    const a = await call(engine.url, 'GET', `/multi/_doc/1?routing=${A}`);
    expect(a.json).toMatchObject({ _id: '1', _routing: A, found: true, _source: { v: 'a' } });
    const b = await call(engine.url, 'GET', `/multi/_doc/1?routing=${B}`);
    expect(b.json).toMatchObject({ _id: '1', _routing: B, found: true, _source: { v: 'b' } });
    const elsewhere = [...Array(50).keys()].map((i) => `x${i}`).find((r) => shardFor(r, 4) !== shardFor(A, 4) && shardFor(r, 4) !== shardFor(B, 4))!;
    const none = await call(engine.url, 'GET', `/multi/_doc/1?routing=${elsewhere}`);
    expect([none.status, none.json.found]).toEqual([404, false]);
    const routed = await call(engine.url, 'POST', `/multi/_search?routing=${A}`, { query: { ids: { values: ['1'] } } });
    expect(routed.json._shards.total).toBe(1);
    expect(hitsOf(routed).map((h) => h._routing)).toEqual([A]);
    expect((await call(engine.url, 'POST', `/multi/_count?routing=${A},${B}`)).json).toEqual({ count: 2, _shards: { total: 2, successful: 2, skipped: 0, failed: 0 } });
    const mget = await call(engine.url, 'POST', '/multi/_mget', { docs: [{ _id: '1', routing: B }, { _id: '1', routing: A }, { _id: '1', routing: elsewhere }] });
    expect(mget.json.docs.map((d: any) => [d.found, d._routing, d._source?.v])).toEqual([[true, B, 'b'], [true, A, 'a'], [false, undefined, undefined]]);
  });

  it('deletes only the copy on the routed shard', async () => {
    const del = await call(engine.url, 'DELETE', `/multi/_doc/1?routing=${A}&refresh=true`);
    expect([del.status, del.json.result]).toEqual([200, 'deleted']);
    const search = await call(engine.url, 'POST', '/multi/_search', { query: { ids: { values: ['1'] } } });
    expect(hitsOf(search).map((h) => [h._routing, h._source.v])).toEqual([[B, 'b']]);
    expect((await call(engine.url, 'GET', `/multi/_doc/1?routing=${A}`)).json.found).toBe(false);
    expect((await call(engine.url, 'GET', `/multi/_doc/1?routing=${B}`)).json.found).toBe(true);
    const again = await call(engine.url, 'DELETE', `/multi/_doc/1?routing=${A}`);
    expect([again.status, again.json.result]).toEqual([404, 'not_found']);
  });

  it('checks external versions against the copy on the routed shard only, tombstones included', async () => {
    const write = (routing: string, version: number, op: 'index' | 'delete' = 'index') =>
      bulk(engine.url, ndjson({ [op]: { _index: 'multi', _id: 'v', routing, version, version_type: 'external_gte' } }, ...(op === 'index' ? [{ routing, version }] : [])));
    const item = (res: { json: any }) => Object.values(res.json.items[0])[0] as any;
    expect(item(await write(A, 10)).status).toBe(201);
    expect(item(await write(B, 5)).status).toBe(201);
    const stale = item(await write(B, 4));
    expect(stale.error).toMatchObject({ type: 'version_conflict_engine_exception', reason: '[v]: version conflict, current version [5] is higher than the one provided [4]', shard: String(shardFor(B, 4)), index: 'multi' });
    expect(item(await write(A, 9)).error.reason).toBe('[v]: version conflict, current version [10] is higher than the one provided [9]');
    expect(item(await write(A, 10, 'delete')).result).toBe('deleted');
    expect(item(await write(A, 9)).error.reason).toBe('[v]: version conflict, current version [10] is higher than the one provided [9]');
    expect(item(await write(B, 6)).result).toBe('updated');
    expect(engine.store.copies('multi', 'v').map((c) => [c.routing, c.version])).toEqual([[B, 6]]);
  });

  it('routes by id without routing, numbers _seq_no per shard, updates the copy the routing reaches', async () => {
    await call(engine.url, 'PUT', '/spread', { settings: { number_of_shards: 3, refresh_interval: -1 } });
    const ids = [...Array(12).keys()].map(String);
    const res = await bulk(engine.url, ndjson(...ids.flatMap((id) => [{ index: { _index: 'spread', _id: id } }, { id }])));
    const seqNos = new Map<number, number[]>();
    res.json.items.forEach((it: any) => {
      const shard = shardFor(it.index._id, 3);
      seqNos.set(shard, [...(seqNos.get(shard) ?? []), it.index._seq_no]);
    });
    expect(seqNos.size).toBeGreaterThan(1);
    for (const list of seqNos.values()) expect(list).toEqual(list.map((_, i) => i));
    for (const id of ids) expect(engine.store.copies('spread', id).map((c) => c.shard)).toEqual([shardFor(id, 3)]);
    // Not refreshed: a realtime get sees the write, a search and a non-realtime get do not.
    expect((await call(engine.url, 'GET', '/spread/_doc/5')).json.found).toBe(true);
    expect((await call(engine.url, 'GET', '/spread/_doc/5?realtime=false')).json.found).toBe(false);
    expect((await call(engine.url, 'POST', '/spread/_count')).json.count).toBe(0);
    await call(engine.url, 'POST', '/spread/_refresh');
    expect((await call(engine.url, 'POST', '/spread/_count')).json.count).toBe(12);
    const upd = await call(engine.url, 'POST', '/spread/_update/5?refresh=true', { doc: { more: true } });
    expect([upd.json.result, upd.json._version]).toEqual(['updated', 2]);
    expect((await call(engine.url, 'GET', '/spread/_doc/5?realtime=false')).json._source).toEqual({ id: '5', more: true });
  });

  it('scrolls over every shard, each hit with its routing', async () => {
    await call(engine.url, 'PUT', '/scrolled', { settings: { number_of_shards: 2 } });
    const [x, y] = routingsOnDifferentShards(2);
    await bulk(engine.url, ndjson({ index: { _index: 'scrolled', _id: 'd', routing: x } }, { n: 1 }, { index: { _index: 'scrolled', _id: 'd', routing: y } }, { n: 2 }, { index: { _index: 'scrolled', _id: 'e' } }, { n: 3 }), '?refresh=true');
    const seen: Array<[string, string | undefined]> = [];
    let page = await call(engine.url, 'POST', '/scrolled/_search?scroll=1m', { size: 1, sort: ['_doc'], _source: false });
    while (hitsOf(page).length) {
      seen.push(...hitsOf(page).map((h): [string, string | undefined] => [h._id, h._routing]));
      page = await call(engine.url, 'POST', '/_search/scroll', { scroll: '1m', scroll_id: page.json._scroll_id });
    }
    expect(seen.sort()).toEqual([['d', x], ['d', y], ['e', undefined]].sort());
  });

  it('a single-shard index (the default) still has one copy per id whatever the routing', async () => {
    await call(engine.url, 'PUT', '/single');
    await call(engine.url, 'PUT', `/single/_doc/1?routing=${A}`, { v: 'a' });
    const second = await call(engine.url, 'PUT', `/single/_doc/1?routing=${B}&refresh=true`, { v: 'b' });
    expect([second.json.result, second.json._version, second.json._seq_no]).toEqual(['updated', 2, 1]);
    expect(hitsOf(await call(engine.url, 'POST', '/single/_search')).map((h) => [h._routing, h._source.v])).toEqual([[B, 'b']]);
  });
});

describe('routing required by the mapping', () => {
  let engine: TestEngine;
  let seven: TestEngine;
  let os: TestEngine;
  beforeAll(async () => {
    [engine, seven, os] = await Promise.all([startTestEngine({ flavor: 'es8' }), startTestEngine({ flavor: 'es7' }), startTestEngine({ flavor: 'opensearch2' })]);
    for (const e of [engine, seven, os]) {
      await call(e.url, 'PUT', '/req', { settings: { number_of_shards: 3 }, mappings: { _routing: { required: true } } });
      await call(e.url, 'PUT', '/req/_doc/1?routing=k&refresh=true', { a: 1 });
    }
  });
  afterAll(async () => {
    await Promise.all([engine?.close(), seven?.close(), os?.close()]);
  });

  it('refuses a get without routing with routing_missing_exception (400)', async () => {
    const res = await call(engine.url, 'GET', '/req/_doc/1');
    expect(res.status).toBe(400);
    const cause = { type: 'routing_missing_exception', reason: 'routing is required for [req]/[1]', index_uuid: '_na_', index: 'req' };
    expect(res.json).toEqual({ error: { root_cause: [cause], ...cause }, status: 400 });
    expect((await call(engine.url, 'HEAD', '/req/_doc/1')).status).toBe(400);
    expect((await call(engine.url, 'GET', '/req/_source/1')).json.error.type).toBe('routing_missing_exception');
    expect((await call(engine.url, 'GET', '/req/_doc/1?routing=k')).json).toMatchObject({ _routing: 'k', found: true });
  });

  it('fails an _mget item without routing, serves the others', async () => {
    const res = await call(engine.url, 'POST', '/_mget', { docs: [{ _index: 'req', _id: '1' }, { _index: 'req', _id: '1', routing: 'k' }] });
    expect(res.status).toBe(200);
    const cause = { type: 'routing_missing_exception', reason: 'routing is required for [req]/[1]', index_uuid: '_na_', index: 'req' };
    expect(res.json.docs[0]).toEqual({ _index: 'req', _id: '1', error: { root_cause: [cause], ...cause } });
    expect(res.json.docs[1]).toMatchObject({ _id: '1', _routing: 'k', found: true });
    const byQuery = await call(engine.url, 'POST', '/req/_mget?routing=k', { ids: ['1'] });
    expect(byQuery.json.docs[0]).toMatchObject({ _id: '1', found: true });
  });

  it('names the type in ES 7 and not in OpenSearch 2, on gets and writes alike', async () => {
    expect((await call(seven.url, 'GET', '/req/_doc/1')).json.error.reason).toBe('routing is required for [req]/[_doc]/[1]');
    const sevenBulk = await bulk(seven.url, ndjson({ delete: { _index: 'req', _id: '1' } }));
    expect(sevenBulk.json.items[0].delete.error).toEqual({ type: 'routing_missing_exception', reason: 'routing is required for [req]/[_doc]/[1]', index_uuid: '_na_', index: 'req' });
    expect((await call(os.url, 'GET', '/req/_doc/1')).json.error.reason).toBe('routing is required for [req]/[1]');
    const osBulk = await bulk(os.url, ndjson({ delete: { _index: 'req', _id: '1' } }));
    expect(osBulk.json.items[0].delete.error.reason).toBe('routing is required for [req]/[1]');
  });
});
