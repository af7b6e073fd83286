import { Client as EsClient, errors } from '@elastic/elasticsearch';
import { Client as OsClient } from '@opensearch-project/opensearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { bulk, call, ndjson } from './helpers.js';

describe('es7 flavour (raw HTTP, as a 7.17 cluster answers)', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es7' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('describes itself as 7.17.15 and sends the product header', async () => {
    const res = await call(engine.url, 'GET', '/');
    expect(res.headers['x-elastic-product']).toBe('Elasticsearch');
    expect(res.headers['content-type']).toBe('application/json; charset=UTF-8');
    expect(res.json.version).toMatchObject({ number: '7.17.15', build_flavor: 'default', build_type: 'docker', lucene_version: '8.11.1', minimum_wire_compatibility_version: '6.8.0' });
  });

  it('carries _type: _doc on bulk items, documents and hits, and total hits as an object', async () => {
    const res = await bulk(engine.url, ndjson({ index: { _index: 'seven', _id: '1', _routing: 'r1' } }, { a: 1 }, { delete: { _index: 'seven', _id: 'zz' } }), '?refresh=true');
    expect(res.json.errors).toBe(false);
    expect(res.json.items[0].index).toMatchObject({ _index: 'seven', _type: '_doc', _id: '1', result: 'created', status: 201 });
    expect(res.json.items[1].delete).toMatchObject({ _type: '_doc', result: 'not_found', status: 404 });
    const doc = await call(engine.url, 'GET', '/seven/_doc/1');
    expect(doc.json).toMatchObject({ _index: 'seven', _type: '_doc', _id: '1', _routing: 'r1', found: true });
    const search = await call(engine.url, 'POST', '/seven/_search', { query: { match_all: {} } });
    expect(search.json.hits.total).toEqual({ value: 1, relation: 'eq' });
    expect(search.json.hits.hits[0]).toMatchObject({ _index: 'seven', _type: '_doc', _id: '1', _score: 1 });
    const legacy = await call(engine.url, 'POST', '/seven/_search?rest_total_hits_as_int=true', {});
    expect(legacy.json.hits.total).toBe(1);
  });

  it('reports mapping errors as mapper_parsing_exception without a location prefix', async () => {
    await call(engine.url, 'PUT', '/typed', { mappings: { properties: { n: { type: 'integer' } } } });
    const res = await bulk(engine.url, ndjson({ index: { _index: 'typed', _id: 'x' } }, { n: 3_000_000_000 }));
    expect(res.json.items[0].index.error).toEqual({
      type: 'mapper_parsing_exception',
      reason: "failed to parse field [n] of type [integer] in document with id 'x'. Preview of field's value: '3000000000'",
      caused_by: { type: 'illegal_argument_exception', reason: 'Value [3000000000] is out of range for an integer' },
    });
    const typed = await call(engine.url, 'PUT', '/legacy', { mappings: { _doc: { properties: { a: { type: 'keyword' } } } } });
    expect(typed.status).toBe(400);
    expect(typed.json.error.root_cause[0].reason).toBe('The mapping definition cannot be nested under a type [_doc] unless include_type_name is set to true.');
  });

  it('accepts compatible-with=7 media types but refuses the 8.x client (compatible-with=8)', async () => {
    const compat = 'application/vnd.elasticsearch+json; compatible-with=7';
    const ok = await call(engine.url, 'POST', '/seven/_search', {}, { 'content-type': compat, accept: compat });
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/vnd.elasticsearch+json;compatible-with=7');
    const client = new EsClient({ node: engine.url });
    const err = await client.info().catch((e: unknown) => e);
    await client.close();
    expect(err).toBeInstanceOf(errors.ResponseError);
    expect((err as errors.ResponseError).body).toMatchObject({
      error: { type: 'media_type_header_exception', caused_by: { reason: expect.stringContaining('Accept version must be either version 7 or 6, but found 8') } },
      status: 400,
    });
  });
});

describe('official @opensearch-project/opensearch client against the opensearch2 test engine', () => {
  let engine: TestEngine;
  let client: OsClient;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'opensearch2' });
    client = new OsClient({ node: engine.url });
  });
  afterAll(async () => {
    await client?.close();
    await engine?.close();
  });

  it('looks like OpenSearch 2.11.1 and never sends x-elastic-product', async () => {
    const info = await client.info();
    expect(info.body.version).toMatchObject({ distribution: 'opensearch', number: '2.11.1' });
    expect(info.body.tagline).toBe('The OpenSearch Project: https://opensearch.org/');
    expect(info.headers?.['x-elastic-product']).toBeUndefined();
    expect(info.headers?.['content-type']).toBe('application/json; charset=UTF-8');
    const missing = await client.indices.exists({ index: 'none' });
    expect(missing.statusCode).toBe(404);
    expect(missing.headers?.['x-elastic-product']).toBeUndefined();
  });

  it('creates, bulk-writes, searches and scrolls', async () => {
    await client.indices.create({ index: 'os', body: { settings: { index: { number_of_shards: 1 } }, mappings: { properties: { n: { type: 'long' } } } } });
    const body = Array.from({ length: 12 }, (_, i) => [{ index: { _index: 'os', _id: String(i) } }, { n: i }]).flat();
    const res = await client.bulk({ body, refresh: 'true' });
    expect(res.body.errors).toBe(false);
    expect(res.body.items[0]?.index).not.toHaveProperty('_type');
    const page = await client.search({ index: 'os', scroll: '1m', size: 5, body: { query: { range: { n: { gte: 2 } } }, sort: ['n'] } });
    expect(page.body.hits.total).toEqual({ value: 10, relation: 'eq' });
    const ids = page.body.hits.hits.map((h) => h._id);
    let scrollId = page.body._scroll_id as string;
    for (;;) {
      const next = await client.scroll({ scroll_id: scrollId, scroll: '1m' });
      if (!next.body.hits.hits.length) break;
      ids.push(...next.body.hits.hits.map((h) => h._id));
      scrollId = next.body._scroll_id as string;
    }
    expect(ids).toEqual(['2', '3', '4', '5', '6', '7', '8', '9', '10', '11']);
    const cleared = await client.clearScroll({ scroll_id: scrollId });
    expect(cleared.body).toEqual({ succeeded: true, num_freed: 1 });
  });

  it('uses OpenSearch error type names', async () => {
    await client.indices.create({ index: 'os-map', body: { mappings: { properties: { d: { type: 'date' } } } } });
    const res = await client.bulk({ body: [{ index: { _index: 'os-map', _id: '1' } }, { d: 'not a date' }] });
    expect(res.body.items[0]?.index?.error).toMatchObject({
      type: 'mapper_parsing_exception',
      caused_by: { type: 'illegal_argument_exception', reason: 'failed to parse date field [not a date] with format [strict_date_optional_time||epoch_millis]' },
    });
  });
});
