import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { bulk, call, ndjson } from './helpers.js';

const ids = (res: { json: { hits: { hits: { _id: string }[] } } }): string[] => res.json.hits.hits.map((h) => h._id);

describe('search and refresh', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
    await call(engine.url, 'PUT', '/people', {
      mappings: { properties: { name: { type: 'text', fields: { keyword: { type: 'keyword' } } }, age: { type: 'integer' }, born: { type: 'date' }, city: { type: 'keyword' } } },
    });
    const people = [
      { name: 'Ada Lovelace', age: 36, born: '1815-12-10', city: 'London', tags: ['math'] },
      { name: 'Alan Turing', age: 41, born: '1912-06-23', city: 'London', tags: ['math', 'cs'] },
      { name: 'Grace Hopper', age: 85, born: '1906-12-09', city: 'New York', tags: ['cs'] },
      { name: 'Edsger Dijkstra', age: 72, born: '1930-05-11', city: 'Rotterdam' },
      { name: 'Barbara Liskov', born: '1939-11-07', city: 'Los Angeles', tags: ['cs'] },
    ];
    await bulk(engine.url, ndjson(...people.flatMap((p, i) => [{ index: { _index: 'people', _id: `p${i}` } }, p])), '?refresh=true');
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('sees writes only after a refresh, while GET is realtime', async () => {
    await call(engine.url, 'PUT', '/lazy', { settings: { index: { refresh_interval: '-1' } } });
    await call(engine.url, 'PUT', '/lazy/_doc/1', { x: 1 });
    expect((await call(engine.url, 'GET', '/lazy/_doc/1')).json.found).toBe(true);
    expect((await call(engine.url, 'GET', '/lazy/_count')).json.count).toBe(0);
    await sleep(1200);
    expect((await call(engine.url, 'POST', '/lazy/_search', {})).json.hits.total.value).toBe(0);
    expect((await call(engine.url, 'POST', '/lazy/_refresh')).json).toEqual({ _shards: { total: 2, successful: 1, failed: 0 } });
    expect((await call(engine.url, 'GET', '/lazy/_count')).json.count).toBe(1);
    expect(engine.store.settings('lazy')).toMatchObject({ refresh_interval: '-1', number_of_shards: '1' });
  });

  it('refreshes periodically every second by default', async () => {
    await call(engine.url, 'PUT', '/auto/_doc/1', { x: 1 });
    expect((await call(engine.url, 'GET', '/auto/_count')).json.count).toBe(0);
    await sleep(1300);
    expect((await call(engine.url, 'GET', '/auto/_count')).json.count).toBe(1);
  });

  it('evaluates term, terms, ids, bool, range, exists and match queries', async () => {
    const q = async (query: unknown): Promise<string[]> => ids(await call(engine.url, 'POST', '/people/_search', { query, sort: ['_id'] })).sort();
    expect(await q({ term: { city: 'London' } })).toEqual(['p0', 'p1']);
    expect(await q({ term: { 'name.keyword': { value: 'Grace Hopper' } } })).toEqual(['p2']);
    expect(await q({ term: { name: 'grace' } })).toEqual(['p2']);
    expect(await q({ term: { name: 'Grace' } })).toEqual([]);
    expect(await q({ terms: { _id: ['p3', 'p4', 'zz'] } })).toEqual(['p3', 'p4']);
    expect(await q({ ids: { values: ['p1'] } })).toEqual(['p1']);
    expect(await q({ bool: { must: [{ term: { tags: 'cs' } }], filter: { range: { age: { gt: 40 } } }, must_not: [{ term: { city: 'Rotterdam' } }] } })).toEqual(['p1', 'p2']);
    expect(await q({ bool: { should: [{ term: { city: 'Rotterdam' } }, { term: { city: 'New York' } }] } })).toEqual(['p2', 'p3']);
    expect(await q({ range: { born: { gte: '1900-01-01', lt: '1920-01-01' } } })).toEqual(['p1', 'p2']);
    expect(await q({ bool: { must_not: { exists: { field: 'age' } } } })).toEqual(['p4']);
    expect(await q({ match: { name: 'alan hopper' } })).toEqual(['p1', 'p2']);
    const unknown = await call(engine.url, 'POST', '/people/_search', { query: { fuzzy_thing: {} } });
    expect(unknown.json.error).toMatchObject({ type: 'parsing_exception', reason: 'unknown query [fuzzy_thing]' });
  });

  it('sorts, pages, filters _source and counts totals like ES', async () => {
    const res = await call(engine.url, 'POST', '/people/_search', { sort: [{ age: 'desc' }], size: 2, from: 1, _source: ['name'], track_total_hits: true });
    expect(res.json.hits.total).toEqual({ value: 5, relation: 'eq' });
    expect(res.json.hits.max_score).toBeNull();
    expect(res.json.hits.hits).toEqual([
      { _index: 'people', _id: 'p3', _score: null, _source: { name: 'Edsger Dijkstra' }, sort: [72] },
      { _index: 'people', _id: 'p1', _score: null, _source: { name: 'Alan Turing' }, sort: [41] },
    ]);
    const missingLast = await call(engine.url, 'POST', '/people/_search', { sort: [{ age: { order: 'asc' } }], size: 10, _source: false });
    expect(ids(missingLast)).toEqual(['p0', 'p1', 'p3', 'p2', 'p4']);
    expect(missingLast.text).toContain('"sort":[9223372036854775807]');
    expect(missingLast.json.hits.hits[0]._source).toBeUndefined();
    const dates = await call(engine.url, 'POST', '/people/_search', { sort: ['born'], size: 1 });
    expect(dates.json.hits.hits[0].sort).toEqual([Date.UTC(1815, 11, 10)]);
    const after = await call(engine.url, 'POST', '/people/_search', { sort: [{ city: 'asc' }, { _id: 'asc' }], search_after: ['London', 'p0'] });
    expect(ids(after)).toEqual(['p1', 'p4', 'p2', 'p3']);
    const noTotal = await call(engine.url, 'POST', '/people/_search?track_total_hits=false', { size: 0 });
    expect(noTotal.json.hits).toEqual({ max_score: null, hits: [] });
    const byScore = await call(engine.url, 'POST', '/people/_search', { query: { match_all: {} }, size: 1 });
    expect(byScore.json.hits.max_score).toBe(1);
    const filtered = await call(engine.url, 'POST', '/people/_search', { query: { bool: { filter: { term: { city: 'London' } } } }, size: 1 });
    expect(filtered.json.hits.hits[0]._score).toBe(0);
  });

  it('fails like ES for text sorts, unmapped sorts, deep pages and missing indices', async () => {
    const text = await call(engine.url, 'POST', '/people/_search', { sort: ['name'] });
    expect(text.status).toBe(400);
    expect(text.json.error).toMatchObject({ type: 'search_phase_execution_exception', reason: 'all shards failed', root_cause: [{ type: 'illegal_argument_exception' }] });
    expect(text.json.error.root_cause[0].reason).toMatch(/^Fielddata is disabled on \[name\] in \[people\]/);
    const unmapped = await call(engine.url, 'POST', '/people/_search', { sort: ['nope'] });
    expect(unmapped.json.error.root_cause[0]).toMatchObject({ type: 'query_shard_exception', reason: 'No mapping found for [nope] in order to sort on' });
    expect((await call(engine.url, 'POST', '/people/_search', { sort: [{ nope: { unmapped_type: 'long' } }] })).status).toBe(200);
    const deep = await call(engine.url, 'POST', '/people/_search', { from: 9995, size: 10 });
    expect(deep.json.error.root_cause[0].reason).toMatch(/^Result window is too large, from \+ size must be less than or equal to: \[10000\] but was \[10005\]/);
    const missing = await call(engine.url, 'POST', '/ghost/_search', {});
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ type: 'index_not_found_exception', reason: 'no such index [ghost]', index: 'ghost', 'resource.id': 'ghost', 'resource.type': 'index_or_alias', index_uuid: '_na_' });
    expect((await call(engine.url, 'POST', '/ghost*,people/_search', {})).json.hits.total.value).toBe(5);
    const badKey = await call(engine.url, 'POST', '/people/_search', { qeury: {} });
    expect(badKey.json.error).toMatchObject({ type: 'parsing_exception', reason: 'Unknown key for a START_OBJECT in [qeury].' });
  });

  it('scrolls over a point-in-time snapshot, and reports missing or unparsable scroll ids', async () => {
    const first = await call(engine.url, 'POST', '/people/_search?scroll=30s', { size: 2, sort: ['_doc'] });
    expect(first.json._scroll_id).toEqual(expect.any(String));
    expect(Object.keys(first.json)[0]).toBe('_scroll_id');
    await bulk(engine.url, ndjson({ index: { _index: 'people', _id: 'late' } }, { name: 'Late Comer' }), '?refresh=true');
    const seen = ids(first);
    let page = first;
    for (;;) {
      page = await call(engine.url, 'POST', '/_search/scroll', { scroll: '30s', scroll_id: page.json._scroll_id });
      if (!page.json.hits.hits.length) break;
      seen.push(...ids(page));
    }
    expect(seen).toEqual(['p0', 'p1', 'p2', 'p3', 'p4']);
    const cleared = await call(engine.url, 'DELETE', '/_search/scroll', { scroll_id: first.json._scroll_id });
    expect(cleared.json).toEqual({ succeeded: true, num_freed: 1 });
    const gone = await call(engine.url, 'POST', '/_search/scroll', { scroll_id: first.json._scroll_id });
    expect(gone.status).toBe(404);
    expect(gone.json.error).toMatchObject({ type: 'search_phase_execution_exception', root_cause: [{ type: 'search_context_missing_exception' }] });
    const again = await call(engine.url, 'DELETE', '/_search/scroll', { scroll_id: [first.json._scroll_id] });
    expect(again).toMatchObject({ status: 404, json: { succeeded: true, num_freed: 0 } });
    const junk = await call(engine.url, 'POST', '/_search/scroll', { scroll_id: 'not-a-scroll-id' });
    expect(junk.json.error).toMatchObject({ type: 'illegal_argument_exception', reason: 'Cannot parse scroll id' });
  });

  it('mgets across indices and reports missing indices per document', async () => {
    const res = await call(engine.url, 'POST', '/_mget', { docs: [{ _index: 'people', _id: 'p0', _source: ['city'] }, { _index: 'people', _id: 'x' }, { _index: 'ghost', _id: '1' }] });
    expect(res.json.docs[0]).toEqual({ _index: 'people', _id: 'p0', _version: 1, _seq_no: 0, _primary_term: 1, found: true, _source: { city: 'London' } });
    expect(res.json.docs[1]).toEqual({ _index: 'people', _id: 'x', found: false });
    expect(res.json.docs[2]).toMatchObject({ _index: 'ghost', _id: '1', error: { type: 'index_not_found_exception' } });
  });
});
