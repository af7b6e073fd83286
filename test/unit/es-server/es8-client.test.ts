import { Client, errors } from '@elastic/elasticsearch';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';

describe('official @elastic/elasticsearch 8 client against the es8 test engine', () => {
  let engine: TestEngine;
  let client: Client;

  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
    client = new Client({ node: engine.url });
  });
  afterAll(async () => {
    await client?.close();
    await engine?.close();
  });

  it('passes the product check and reports the version', async () => {
    const info = await client.info();
    expect(info.version.number).toBe('8.15.0');
    expect(info.tagline).toBe('You Know, for Search');
    expect(await client.ping()).toBe(true);
    const last = engine.requests.at(-1);
    expect(last?.headers['accept']).toContain('compatible-with=8');
  });

  it('creates an index, writes with bulk and reads it back with search, count and get', async () => {
    await client.indices.create({
      index: 'books',
      settings: { number_of_shards: 1, number_of_replicas: 0 },
      mappings: { properties: { title: { type: 'text' }, year: { type: 'integer' }, tags: { type: 'keyword' } } },
    });
    expect(await client.indices.exists({ index: 'books' })).toBe(true);
    expect(await client.indices.exists({ index: 'nope' })).toBe(false);
    const operations = Array.from({ length: 25 }, (_, i) => [
      { index: { _index: 'books', _id: `b${i}` } },
      { title: `Book number ${i}`, year: 1990 + i, tags: i % 2 ? ['odd'] : ['even'] },
    ]).flat();
    const res = await client.bulk({ operations, refresh: true });
    expect(res.errors).toBe(false);
    expect(res.items).toHaveLength(25);
    expect(res.items[0]?.index).toMatchObject({ _index: 'books', _id: 'b0', result: 'created', status: 201, _version: 1 });
    expect(res.items[0]?.index?._shards).toEqual({ total: 1, successful: 1, failed: 0 });

    const search = await client.search({ index: 'books', query: { bool: { filter: [{ term: { tags: 'odd' } }, { range: { year: { gte: 2000 } } }] } }, sort: [{ year: 'desc' }], size: 3 });
    expect(search.hits.total).toEqual({ value: 7, relation: 'eq' });
    expect(search.hits.hits.map((h) => h._id)).toEqual(['b23', 'b21', 'b19']);
    expect(search.hits.hits[0]?.sort).toEqual([2013]);
    expect(search.hits.hits[0]?._score).toBeNull();

    expect((await client.count({ index: 'books' })).count).toBe(25);
    expect((await client.count({ index: 'books', query: { term: { tags: 'even' } } })).count).toBe(13);
    const doc = await client.get<{ title: string }>({ index: 'books', id: 'b3' });
    expect(doc).toMatchObject({ found: true, _version: 1, _source: { title: 'Book number 3' } });
    await expect(client.get({ index: 'books', id: 'missing' })).rejects.toMatchObject({ meta: { statusCode: 404 } });
    const mget = await client.mget({ index: 'books', ids: ['b1', 'zz'] });
    expect(mget.docs.map((d) => ('found' in d ? d.found : 'error'))).toEqual([true, false]);
  });

  it('pages through everything with the scroll helper and clears the scroll', async () => {
    const seen: string[] = [];
    for await (const hit of client.helpers.scrollDocuments<{ year: number }>({ index: 'books', size: 4, query: { match_all: {} } })) {
      seen.push(String(hit.year));
    }
    expect(seen).toHaveLength(25);
    expect(new Set(seen).size).toBe(25);
    const clears = engine.requests.filter((r) => r.method === 'DELETE' && r.path === '/_search/scroll');
    expect(clears.length).toBeGreaterThan(0);
  });

  it('pages with search_after on a keyword sort', async () => {
    const ids: string[] = [];
    let after: unknown[] | undefined;
    for (;;) {
      const page = await client.search({ index: 'books', size: 10, sort: [{ _id: 'asc' }], ...(after ? { search_after: after as string[] } : {}) });
      if (!page.hits.hits.length) break;
      ids.push(...page.hits.hits.map((h) => h._id as string));
      after = page.hits.hits.at(-1)?.sort;
    }
    expect(ids).toHaveLength(25);
    expect([...ids].sort()).toEqual(ids);
  });

  it('swaps an alias atomically and reads and writes through it', async () => {
    await client.indices.create({ index: 'books_v2', mappings: { properties: { year: { type: 'integer' } } } });
    await client.indices.putAlias({ index: 'books', name: 'library' });
    expect(await client.indices.existsAlias({ name: 'library' })).toBe(true);
    await client.indices.updateAliases({
      actions: [{ remove: { index: 'books', alias: 'library' } }, { add: { index: 'books_v2', alias: 'library' } }],
    });
    expect(await client.indices.getAlias({ name: 'library' })).toEqual({ books_v2: { aliases: { library: {} } } });
    await client.index({ index: 'library', id: 'n1', document: { year: 2024 }, refresh: true });
    expect(engine.store.document('books_v2', 'n1')).toEqual({ year: 2024 });
    expect((await client.count({ index: 'library' })).count).toBe(1);

    const err = await client.indices
      .updateAliases({ actions: [{ add: { index: 'books', alias: 'library' } }, { add: { index: 'books', alias: 'books_v2' } }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(errors.ResponseError);
    expect((err as errors.ResponseError).body).toMatchObject({ error: { type: 'invalid_alias_name_exception' }, status: 400 });
    expect(await client.indices.getAlias({ name: 'library' })).toEqual({ books_v2: { aliases: { library: {} } } });

    await client.indices.putAlias({ index: 'books', name: 'library' });
    const writeErr = await client.index({ index: 'library', id: 'x', document: { year: 1 } }).catch((e: unknown) => e);
    expect((writeErr as errors.ResponseError).body.error.reason).toContain('no write index is defined for alias [library]');
  });

  it('reports mapping errors and strict dynamic mappings as ES 8 does', async () => {
    await client.indices.create({ index: 'strict', mappings: { dynamic: 'strict', properties: { n: { type: 'long' } } } });
    const res = await client.bulk({
      operations: [{ index: { _index: 'strict', _id: '1' } }, { n: 'abc' }, { index: { _index: 'strict', _id: '2' } }, { n: 1, extra: true }, { index: { _index: 'strict', _id: '3' } }, { n: '42' }],
    });
    expect(res.errors).toBe(true);
    expect(res.items[0]?.index?.error).toMatchObject({
      type: 'document_parsing_exception',
      reason: expect.stringMatching(/^\[1:\d+\] failed to parse field \[n\] of type \[long\] in document with id '1'. Preview of field's value: 'abc'$/),
      caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "abc"' },
    });
    expect(res.items[1]?.index?.error).toMatchObject({
      type: 'strict_dynamic_mapping_exception',
      reason: expect.stringContaining('mapping set to strict, dynamic introduction of [extra] within [_doc] is not allowed'),
    });
    expect(res.items[2]?.index?.status).toBe(201);
    const mapping = await client.indices.getMapping({ index: 'strict' });
    expect(mapping.strict?.mappings).toEqual({ dynamic: 'strict', properties: { n: { type: 'long' } } });
  });

  it('rejects external versions that are not newer, including after a delete', async () => {
    const ext = { version_type: 'external' as const };
    await client.index({ index: 'ver', id: 'a', document: { v: 5 }, version: 5, ...ext });
    const conflict = await client.index({ index: 'ver', id: 'a', document: { v: 3 }, version: 3, ...ext }).catch((e: unknown) => e);
    expect((conflict as errors.ResponseError).meta.statusCode).toBe(409);
    expect((conflict as errors.ResponseError).body.error).toMatchObject({
      type: 'version_conflict_engine_exception',
      reason: '[a]: version conflict, current version [5] is higher or equal to the one provided [3]',
      index: 'ver',
      shard: '0',
    });
    await client.delete({ index: 'ver', id: 'a', version: 7, ...ext });
    const stale = await client.index({ index: 'ver', id: 'a', document: { v: 6 }, version: 6, ...ext }).catch((e: unknown) => e);
    expect((stale as errors.ResponseError).meta.statusCode).toBe(409);
    const fresh = await client.index({ index: 'ver', id: 'a', document: { v: 8 }, version: 8, ...ext });
    expect(fresh).toMatchObject({ result: 'created', _version: 8 });
    expect(engine.store.version('ver', 'a')).toBe(8);
  });
});

describe('official 8.x client against the es9 test engine', () => {
  it('is accepted through compatible-with=8 and describes itself as 9.1.0', async () => {
    const engine = await startTestEngine({ flavor: 'es9' });
    const client = new Client({ node: engine.url });
    try {
      const info = await client.info();
      expect(info.version).toMatchObject({ number: '9.1.0', minimum_wire_compatibility_version: '8.19.0' });
      await client.index({ index: 'nine', id: '1', document: { a: 1 }, refresh: 'wait_for' });
      const hit = (await client.search({ index: 'nine' })).hits.hits[0];
      expect(hit).toMatchObject({ _index: 'nine', _id: '1', _source: { a: 1 } });
      expect(hit).not.toHaveProperty('_type');
    } finally {
      await client.close();
      await engine.close();
    }
  });
});
