// The requests `sluice verify` makes, answered as Elasticsearch 7.17/8.x and OpenSearch 2 answer them,
// through an alias over a physical index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { bulk, call, ndjson } from './helpers.js';

describe.each(['es7', 'es8', 'opensearch2'] as const)('verify requests on %s', (flavor) => {
  let engine: TestEngine;
  const typed = flavor === 'es7' ? { _type: '_doc' } : {};

  beforeAll(async () => {
    engine = await startTestEngine({ flavor });
    await call(engine.url, 'PUT', '/books-1', { mappings: { _routing: { required: true } }, aliases: { books: {} } });
    // Sources sent with spacing and number spellings PostgreSQL prints: stored and returned byte for byte.
    const body = ndjson(
      { index: { _index: 'books', _id: '1', routing: 'r1' } },
      '{"title" : "It", "price" : 899.00, "big" : 9007199254740993}',
      { index: { _index: 'books', _id: '2', routing: 'r2' } },
      { title: 'Carrie' },
    );
    const res = await bulk(engine.url, body, '?refresh=true');
    expect(res.json.errors).toBe(false);
    expect(res.json.items[0].index._index).toBe('books-1');
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('HEAD answers 200 for an alias and an index, 404 with no body for neither', async () => {
    expect((await call(engine.url, 'HEAD', '/books')).status).toBe(200);
    expect((await call(engine.url, 'HEAD', '/books-1')).status).toBe(200);
    const missing = await call(engine.url, 'HEAD', '/nothing');
    expect(missing.status).toBe(404);
    expect(missing.text).toBe('');
  });

  it('an ids search through the alias returns each stored copy with its concrete index, routing and verbatim _source', async () => {
    const res = await call(engine.url, 'POST', '/books/_search', { size: 6, track_total_hits: true, query: { ids: { values: ['1', '2', '9'] } } });
    expect(res.status).toBe(200);
    expect(res.json.hits.total).toEqual({ value: 2, relation: 'eq' });
    const hits = res.json.hits.hits as Array<Record<string, unknown>>;
    expect(hits.map((h) => h._id).sort()).toEqual(['1', '2']);
    expect(hits.find((h) => h._id === '1')).toEqual({ _index: 'books-1', ...typed, _id: '1', _score: 1, _routing: 'r1', _source: { title: 'It', price: 899, big: 9007199254740992 } });
    expect(Object.keys(hits[0]!)).toEqual(['_index', ...Object.keys(typed), '_id', '_score', '_routing', '_source']);
    expect(res.text).toContain('"_source":{"title" : "It", "price" : 899.00, "big" : 9007199254740993}');
  });

  it('a scroll without _source pages over ids and routings, then an empty page; clearing it succeeds', async () => {
    const first = await call(engine.url, 'POST', '/books/_search?scroll=1m', { size: 1, _source: false, sort: ['_doc'], query: { match_all: {} } });
    expect(first.status).toBe(200);
    expect(first.json.hits.hits).toEqual([{ _index: 'books-1', ...typed, _id: '1', _score: null, _routing: 'r1', sort: [0] }]);
    const second = await call(engine.url, 'POST', '/_search/scroll', { scroll: '1m', scroll_id: first.json._scroll_id });
    expect(second.json.hits.hits.map((h: { _id: string; _routing: string }) => [h._id, h._routing])).toEqual([['2', 'r2']]);
    const third = await call(engine.url, 'POST', '/_search/scroll', { scroll: '1m', scroll_id: second.json._scroll_id });
    expect(third.json.hits.hits).toEqual([]);
    const cleared = await call(engine.url, 'DELETE', '/_search/scroll', { scroll_id: third.json._scroll_id });
    expect(cleared.json).toEqual({ succeeded: true, num_freed: 1 });
  });

  it('counts through the alias; a search of a missing index is 404 index_not_found_exception', async () => {
    expect((await call(engine.url, 'GET', '/books/_count')).json.count).toBe(2);
    const missing = await call(engine.url, 'POST', '/nothing/_search', { query: { ids: { values: ['1'] } } });
    expect(missing.status).toBe(404);
    expect(missing.json.error).toMatchObject({ type: 'index_not_found_exception', reason: 'no such index [nothing]' });
  });

  it('external_gte writes and deletes through the alias: a lower version is a 409 conflict, an equal or higher one applies', async () => {
    await call(engine.url, 'PUT', '/books/_doc/3?routing=r3&version=100&version_type=external_gte', { title: 'Misery' });
    const res = await bulk(
      engine.url,
      ndjson(
        { index: { _index: 'books', _id: '3', routing: 'r3', version: 99, version_type: 'external_gte' } },
        { title: 'older' },
        { delete: { _index: 'books', _id: '3', routing: 'r3', version: 100, version_type: 'external_gte' } },
        { delete: { _index: 'books', _id: '404', routing: 'r', version: 100, version_type: 'external_gte' } },
      ),
    );
    const [older, deleted, absent] = res.json.items as Array<Record<string, Record<string, any>>>;
    expect(older!.index).toMatchObject({ _index: 'books-1', _id: '3', status: 409, error: { type: 'version_conflict_engine_exception' } });
    expect(deleted!.delete).toMatchObject({ _index: 'books-1', _id: '3', _version: 100, result: 'deleted', status: 200 });
    expect(absent!.delete).toMatchObject({ _index: 'books-1', _id: '404', _version: 100, result: 'not_found', status: 404 });
  });
});
