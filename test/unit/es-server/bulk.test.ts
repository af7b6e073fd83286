import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { applyFilterPath } from '../../es-server/json.js';
import { bulk, call, ndjson } from './helpers.js';

describe('_bulk', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('rejects malformed requests as a whole like ES', async () => {
    const empty = await bulk(engine.url, '');
    expect(empty.status).toBe(400);
    expect(empty.json.error).toMatchObject({ type: 'action_request_validation_exception', reason: 'Validation Failed: 1: no requests added;' });
    const unterminated = await call(engine.url, 'POST', '/_bulk', '{"index":{"_index":"a"}}\n{}', { 'content-type': 'application/x-ndjson' });
    expect(unterminated.json.error).toMatchObject({ type: 'illegal_argument_exception', reason: 'The bulk request must be terminated by a newline [\\n]' });
    const badAction = await bulk(engine.url, ndjson({ index: { _index: 'a' } }, {}, '"oops"'));
    expect(badAction.json.error.reason).toBe('Malformed action/metadata line [3], expected START_OBJECT but found [VALUE_STRING]');
    const unknownAction = await bulk(engine.url, ndjson({ upsert: { _index: 'a' } }, {}));
    expect(unknownAction.json.error.reason).toBe('Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]');
    const unknownParam = await bulk(engine.url, ndjson({ index: { _index: 'a', _type: '_doc' } }, {}));
    expect(unknownParam.json.error.reason).toBe('Action/metadata line [1] contains an unknown parameter [_type]');
    const notJson = await bulk(engine.url, 'garbage\n');
    expect(notJson.json.error.type).toBe('x_content_parse_exception');
    const invalid = await bulk(engine.url, ndjson({ index: {} }, {}, { delete: { _index: 'a' } }, { index: { _index: 'a', version: 3 } }, {}));
    expect(invalid.json.error).toMatchObject({
      type: 'action_request_validation_exception',
      reason:
        'Validation Failed: 1: index is missing;2: id is missing;3: internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead;',
    });
    expect(engine.store.indices()).not.toContain('a');
  });

  it('answers the same whether an action line is compact (read without JSON.parse) or spaced', async () => {
    const lines = (spaced: boolean, index: string) => {
      const line = (value: unknown) => (spaced ? JSON.stringify(value, null, 1).replace(/\n/g, '') : JSON.stringify(value));
      return [
        line({ index: { _index: index, _id: 'a', version: 5, version_type: 'external_gte' } }),
        '{"n":1}',
        line({ index: { _index: index, _id: 'a', version: 4, version_type: 'external_gte' } }),
        '{"n":2}',
        line({ index: { _index: index, _id: 'b', routing: 'r1', version: 7, version_type: 'external' } }),
        '{"n":3}',
        line({ create: { _index: index, _id: 'b', routing: 'r1' } }),
        '{"n":4}',
        line({ delete: { _index: index, _id: 'a', version: 5, version_type: 'external_gte' } }),
        line({ delete: { _index: index, _id: 'zz' } }),
        line({ index: { _index: index, _id: 'd\u00e9' } }),
        '{"n":5}',
        '',
      ].join('\n');
    };
    const compact = await bulk(engine.url, lines(false, 'plain-lines'));
    const spaced = await bulk(engine.url, lines(true, 'spaced-lines'));
    const normalise = (body: { items: unknown[] }) => JSON.parse(JSON.stringify(body.items).replace(/(plain|spaced)-lines/g, 'x'), (key, value: unknown) => (key === 'index_uuid' ? undefined : value));
    expect(compact.status).toBe(spaced.status);
    expect(compact.json.errors).toBe(true);
    expect(normalise(compact.json)).toEqual(normalise(spaced.json));
    expect(normalise(compact.json).map((item: Record<string, { status: number }>) => Object.values(item)[0]!.status)).toEqual([201, 409, 201, 409, 200, 404, 201]);
  });

  it('handles index, create, update and delete with ES results, versions and seq_nos', async () => {
    const res = await bulk(
      engine.url,
      ndjson(
        { index: { _index: 'ops', _id: '1' } }, { a: 1, nested: { x: 1 } },
        { create: { _index: 'ops', _id: '1' } }, { a: 2 },
        { update: { _index: 'ops', _id: '1' } }, { doc: { nested: { y: 2 } } },
        { update: { _index: 'ops', _id: '1' } }, { doc: { a: 1 } },
        { update: { _index: 'ops', _id: 'nope' } }, { doc: { a: 1 } },
        { update: { _index: 'ops', _id: '2' } }, { doc: { b: 1 }, doc_as_upsert: true },
        { delete: { _index: 'ops', _id: '2' } },
        { delete: { _index: 'ops', _id: '2' } },
        { index: { _index: 'ops' } }, { auto: true },
      ),
    );
    const items = res.json.items.map((i: Record<string, { result?: string; status: number; _version?: number; error?: { type: string } }>) => {
      const [op, body] = Object.entries(i)[0] as [string, { result?: string; status: number; _version?: number; error?: { type: string } }];
      return [op, body.status, body.result ?? body.error?.type, body._version];
    });
    expect(items).toEqual([
      ['index', 201, 'created', 1],
      ['create', 409, 'version_conflict_engine_exception', undefined],
      ['update', 200, 'updated', 2],
      ['update', 200, 'noop', 2],
      ['update', 404, 'document_missing_exception', undefined],
      ['update', 201, 'created', 1],
      ['delete', 200, 'deleted', 2],
      ['delete', 404, 'not_found', 3],
      ['index', 201, 'created', 1],
    ]);
    expect(res.json.errors).toBe(true);
    expect(res.json.items[1].create.error.reason).toBe('[1]: version conflict, document already exists (current version [1])');
    expect(res.json.items[0].index._seq_no).toBe(0);
    expect(res.json.items[2].update._seq_no).toBe(1);
    expect(res.json.items[8].index._id).toMatch(/^[\w-]{20}$/);
    expect(engine.store.document('ops', '1')).toEqual({ a: 1, nested: { x: 1, y: 2 } });
  });

  it('answers items as exact JSON text: escaped ids, _shards from replicas, forced refresh, noops and failures', async () => {
    await call(engine.url, 'PUT', '/items-text', { settings: { index: { number_of_replicas: 2 } }, mappings: { properties: { n: { type: 'long' } } } });
    const res = await bulk(
      engine.url,
      [
        '{"index":{"_index":"items-text","_id":"1","version":7,"version_type":"external_gte"}}',
        '{"n":1}',
        '{"index":{"_index":"items-text","_id":"q\\"\\u0001\\ud800"}}',
        '{"n":2}',
        '{"update":{"_index":"items-text","_id":"1"}}',
        '{"doc":{"n":1}}',
        '{"index":{"_index":"items-text","_id":"2"}}',
        '{"n":"x"}',
        '{"create":{"_index":"items-text","_id":"1"}}',
        '{"n":3}',
        '{"delete":{"_index":"items-text","_id":"9"}}',
        '',
      ].join('\n'),
      '?refresh=true',
    );
    const items = res.text.slice(res.text.indexOf('"items":')).replace(/"index_uuid":"[\w-]+"/, '"index_uuid":"U"');
    const shards = '"_shards":{"total":3,"successful":1,"failed":0}';
    expect(items).toBe(
      '"items":[' +
        `{"index":{"_index":"items-text","_id":"1","_version":7,"result":"created","forced_refresh":true,${shards},"_seq_no":0,"_primary_term":1,"status":201}},` +
        `{"index":{"_index":"items-text","_id":"q\\"\\u0001\\ud800","_version":1,"result":"created","forced_refresh":true,${shards},"_seq_no":1,"_primary_term":1,"status":201}},` +
        '{"update":{"_index":"items-text","_id":"1","_version":7,"result":"noop","_shards":{"total":0,"successful":0,"failed":0},"_seq_no":0,"_primary_term":1,"status":200}},' +
        `{"index":{"_index":"items-text","_id":"2","status":400,"error":{"type":"document_parsing_exception","reason":"[1:9] failed to parse field [n] of type [long] in document with id '2'. Preview of field's value: 'x'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \\"x\\""}}}},` +
        `{"create":{"_index":"items-text","_id":"1","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[1]: version conflict, document already exists (current version [7])","index_uuid":"U","shard":"0","index":"items-text"}}},` +
        `{"delete":{"_index":"items-text","_id":"9","_version":1,"result":"not_found","forced_refresh":true,${shards},"_seq_no":2,"_primary_term":1,"status":404}}]}`,
    );
  });

  it('refuses writes to a blocked index per item, as IndexMetadata blocks do', async () => {
    await call(engine.url, 'PUT', '/blocked', { settings: { 'index.blocks.write': true } });
    await call(engine.url, 'PUT', '/flooded');
    await bulk(engine.url, ndjson({ index: { _index: 'flooded', _id: 'gone' } }, { n: 0 }), '?refresh=true');
    await call(engine.url, 'PUT', '/flooded/_settings', { 'index.blocks.read_only_allow_delete': true });
    const answer = await bulk(
      engine.url,
      ndjson({ index: { _index: 'blocked', _id: '1' } }, { n: 1 }, { index: { _index: 'flooded', _id: '2' } }, { n: 2 }, { delete: { _index: 'flooded', _id: 'gone' } }),
    );
    expect(answer.status).toBe(200);
    const items = answer.json.items as Array<Record<string, { status: number; error?: { type: string; reason: string } }>>;
    expect(items[0]!.index).toMatchObject({ status: 403, error: { type: 'cluster_block_exception', reason: 'index [blocked] blocked by: [FORBIDDEN/8/index write (api)];' } });
    expect(items[1]!.index).toMatchObject({
      status: 429,
      error: { type: 'cluster_block_exception', reason: 'index [flooded] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];' },
    });
    expect(items[2]!.delete).toMatchObject({ status: 200 });
  });

  it('applies filter_path while writing the answer exactly as the generic filter does on the whole answer', async () => {
    const lines = [
      '{"index":{"_index":"fp-items","_id":"1","version":7,"version_type":"external_gte"}}',
      '{"n":1}',
      '{"update":{"_index":"fp-items","_id":"1"}}',
      '{"doc":{"n":1}}',
      '{"index":{"_index":"fp-items","_id":"2"}}',
      '{"n":"x"}',
      '{"index":{"_index":"fp-items","_id":"1","version":3,"version_type":"external"}}',
      '{"n":3}',
      '{"delete":{"_index":"fp-items","_id":"9"}}',
      '{"delete":{"_index":"fp-missing","_id":"1"}}',
      '',
    ].join('\n');
    const filters = [
      'took,errors,items.*.status,items.*.error,items.*.result',
      'items.*.status,items.*.result',
      'items.*.error',
      'errors,items.*._id,items.*._shards,items.*._version',
      'items,errors',
      'took',
      'nothing.matches',
      'items.*.error,-took',
      'items.*.error.type',
    ];
    for (const flavor of ['es8', 'es7'] as const) {
      for (const filter of filters) {
        const plain = await startTestEngine({ flavor });
        const filtered = await startTestEngine({ flavor });
        try {
          for (const e of [plain, filtered]) await call(e.url, 'PUT', '/fp-items', { mappings: { properties: { n: { type: 'long' } } } });
          const whole = await bulk(plain.url, lines, '?refresh=true');
          const answer = await bulk(filtered.url, lines, `?refresh=true&filter_path=${filter}`);
          const expected = applyFilterPath(whole.json, filter) as Record<string, unknown>;
          const got = answer.json as Record<string, unknown>;
          if ('took' in expected) expected.took = got.took;
          const uuids = (text: string) => text.replace(/"index_uuid":"[\w-]{20,}"/g, '"index_uuid":"U"');
          expect(uuids(JSON.stringify(got)), `${flavor} ${filter}`).toBe(uuids(JSON.stringify(expected)));
        } finally {
          await plain.close();
          await filtered.close();
        }
      }
    }
    const compact = await bulk(engine.url, ndjson({ index: { _index: 'fp-compact', _id: '1' } }, { n: 1 }), '?filter_path=took,errors,items.*.status,items.*.error,items.*.result');
    // Elasticsearch 8.13+ writes `errors` first; 7.x and OpenSearch `took` first.
    expect(compact.text).toMatch(/^\{"errors":false,"took":\d+,"items":\[\{"index":\{"result":"created","status":201\}\}\]\}$/);
    expect((await bulk(engine.url, ndjson({ index: { _index: 'fp-compact', _id: '2' } }, { n: 1 }))).text).toMatch(/^\{"errors":false,"took":\d+,"items":/);
    for (const flavor of ['es7', 'opensearch2'] as const) {
      const other = await startTestEngine({ flavor });
      try {
        const answer = await bulk(other.url, ndjson({ index: { _index: 'fp-compact', _id: '1' } }, { n: 1 }), '?filter_path=took,errors,items.*.status');
        expect(answer.text, flavor).toMatch(/^\{"took":\d+,"errors":false,"items":\[\{"index":\{"status":201\}\}\]\}$/);
      } finally {
        await other.close();
      }
    }
  });

  it('does not count a delete of a missing document as an error', async () => {
    const res = await bulk(engine.url, ndjson({ delete: { _index: 'ops', _id: 'ghost' } }));
    expect(res.json.errors).toBe(false);
    expect(res.json.items[0].delete).toMatchObject({ result: 'not_found', status: 404 });
    const missingIndex = await bulk(engine.url, ndjson({ delete: { _index: 'never-created', _id: '1' } }));
    expect(missingIndex.json.errors).toBe(true);
    expect(missingIndex.json.items[0].delete).toMatchObject({ status: 404, error: { type: 'index_not_found_exception', 'resource.type': 'index_expression' } });
    expect(engine.store.indices()).not.toContain('never-created');
  });

  it('applies external versioning with delete tombstones and 64-bit versions', async () => {
    const big = '9007199254740993';
    const res = await bulk(
      engine.url,
      ndjson(
        { index: { _index: 'ext', _id: 'a', version: 10, version_type: 'external' } }, { v: 10 },
        { index: { _index: 'ext', _id: 'a', version: 10, version_type: 'external' } }, { v: 10 },
        { index: { _index: 'ext', _id: 'a', version: 10, version_type: 'external_gte' } }, { v: 10 },
        { delete: { _index: 'ext', _id: 'a', version: 20, version_type: 'external' } },
        { index: { _index: 'ext', _id: 'a', version: 15, version_type: 'external' } }, { v: 15 },
        { delete: { _index: 'ext', _id: 'never', version: 5, version_type: 'external' } },
        { index: { _index: 'ext', _id: 'never', version: 4, version_type: 'external' } }, { v: 4 },
      ).replace('"version":20', `"version":${big}`),
    );
    const statuses = res.json.items.map((i: Record<string, { status: number }>) => Object.values(i)[0]?.status);
    expect(statuses).toEqual([201, 409, 200, 200, 409, 404, 409]);
    expect(res.json.items[1].index.error.reason).toBe('[a]: version conflict, current version [10] is higher or equal to the one provided [10]');
    expect(res.json.items[4].index.error.reason).toBe(`[a]: version conflict, current version [${big}] is higher or equal to the one provided [15]`);
    expect(res.text).toContain(`"_version":${big}`);
    const after = await bulk(engine.url, ndjson({ index: { _index: 'ext', _id: 'a', version: big.replace(/3$/, '4'), version_type: 'external' } }, { v: 16 }));
    expect(after.json.items[0].index.status).toBe(201);
  });

  it('forgets a delete after index.gc_deletes, so an older external version then recreates the document', async () => {
    await call(engine.url, 'PUT', '/gc', { settings: { 'index.gc_deletes': '2s' } });
    const older = () => bulk(engine.url, ndjson({ index: { _index: 'gc', _id: 'a', version: 5, version_type: 'external_gte' } }, { v: 5 }));
    await bulk(engine.url, ndjson({ delete: { _index: 'gc', _id: 'a', version: 10, version_type: 'external_gte' } }));
    expect((await older()).json.items[0].index.status).toBe(409);
    await new Promise((resolve) => setTimeout(resolve, 2100));
    expect((await older()).json.items[0].index.status).toBe(201);
  });

  it('keeps _source bytes exactly as sent, big integers included', async () => {
    const raw = '{ "id" : 9007199254740993, "price": 1.10, "name":"caf\\u00e9" }';
    await bulk(engine.url, `${JSON.stringify({ index: { _index: 'raw', _id: '1' } })}\n${raw}\n`, '?refresh=wait_for');
    const got = await call(engine.url, 'GET', '/raw/_doc/1');
    expect(got.text).toContain(`"_source":${raw}}`);
    const search = await call(engine.url, 'GET', '/raw/_search');
    expect(search.text).toContain(`"_source":${raw}`);
    expect(engine.store.document('raw', '1')).toEqual({ id: 9007199254740992, price: 1.1, name: 'café' });
    const tooBig = await bulk(engine.url, ndjson({ index: { _index: 'raw', _id: '2' } }, '{"id":12345678901234567890}'));
    expect(tooBig.json.items[0].index.error.caused_by.reason).toBe('Value [12345678901234567890] is out of range for a long');
    expect(tooBig.json.items[0].index.error.reason).toContain("Preview of field's value: '12345678901234567890'");
    expect(engine.store.mapping('raw')).toMatchObject({ properties: { id: { type: 'long' }, price: { type: 'float' } } });
  });

  it('fails unknown pipelines per item and accepts registered ones', async () => {
    await call(engine.url, 'PUT', '/_ingest/pipeline/known', { processors: [] });
    const res = await bulk(engine.url, ndjson({ index: { _index: 'pipe', _id: '1', pipeline: 'missing' } }, {}, { index: { _index: 'pipe', _id: '2', pipeline: 'known' } }, {}));
    expect(res.json.items[0].index).toMatchObject({ status: 400, error: { type: 'illegal_argument_exception', reason: 'pipeline with id [missing] does not exist' } });
    expect(res.json.items[1].index.status).toBe(201);
  });

  it('honours routing, required routing and if_seq_no', async () => {
    await call(engine.url, 'PUT', '/routed', { mappings: { _routing: { required: true } } });
    const res = await bulk(engine.url, ndjson({ index: { _index: 'routed', _id: '1' } }, {}, { index: { _index: 'routed', _id: '2', routing: 'r' } }, {}));
    expect(res.json.items[0].index.error).toMatchObject({ type: 'routing_missing_exception', reason: 'routing is required for [routed]/[1]' });
    expect((await call(engine.url, 'GET', '/routed/_doc/2?routing=r')).json._routing).toBe('r');
    // Like ES: a get without routing on an index that requires it is refused, it does not guess the shard.
    expect((await call(engine.url, 'GET', '/routed/_doc/2')).json.error.type).toBe('routing_missing_exception');
    const cas = await bulk(engine.url, ndjson({ index: { _index: 'routed', _id: '2', routing: 'r', if_seq_no: 5, if_primary_term: 1 } }, {}));
    expect(cas.json.items[0].index.error.reason).toBe('[2]: version conflict, required seqNo [5], primary term [1]. current document has seqNo [0] and primary term [1]');
  });

  it('writes through aliases and refuses ambiguous ones', async () => {
    await call(engine.url, 'PUT', '/w1');
    await call(engine.url, 'PUT', '/w2');
    await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { indices: ['w1', 'w2'], alias: 'both' } }, { add: { index: 'w2', alias: 'one' } }] });
    const res = await bulk(engine.url, ndjson({ index: { _index: 'both', _id: '1' } }, {}, { index: { _index: 'one', _id: '1' } }, {}));
    expect(res.json.items[0].index).toMatchObject({ status: 400, error: { type: 'illegal_argument_exception' } });
    expect(res.json.items[0].index.error.reason).toMatch(/^no write index is defined for alias \[both\]/);
    expect(res.json.items[1].index).toMatchObject({ _index: 'w2', status: 201 });
    const invalid = await bulk(engine.url, ndjson({ index: { _index: 'Bad_Name', _id: '1' } }, {}));
    expect(invalid.json.items[0].index.error).toMatchObject({ type: 'invalid_index_name_exception', reason: 'Invalid index name [Bad_Name], must be lowercase' });
  });

  it('validates mapped field values (numbers, booleans, dates, objects, geo points)', async () => {
    await call(engine.url, 'PUT', '/typed', {
      mappings: {
        properties: {
          n: { type: 'long' }, b: { type: 'boolean' }, d: { type: 'date' }, f: { type: 'date', format: 'yyyy-MM-dd HH:mm:ss' },
          o: { properties: { s: { type: 'short' } } }, g: { type: 'geo_point' }, k: { type: 'keyword' },
        },
      },
    });
    const good = [{ n: '12', b: 'true', d: 1700000000000 }, { d: '2024-02-29T10:00:00.123456Z', f: '2024-01-02 03:04:05' }, { o: [{ s: 5 }, { s: '6' }], n: [1, 2.5] }, { g: { lat: 1, lon: 2 } }, { g: '41.1,-71.3' }, { g: [-71.3, 41.1] }, { g: 'drm3btev3e86' }, { k: 42 }];
    const bad = [{ n: 'x1' }, { b: 'yes' }, { d: '2024-02-30' }, { f: '2024-01-02' }, { o: 5 }, { o: { s: 40000 } }, { g: { lat: 100, lon: 0 } }, { k: { a: 1 } }];
    const lines = [...good, ...bad].flatMap((doc, i) => [{ index: { _index: 'typed', _id: String(i) } }, doc]);
    const res = await bulk(engine.url, ndjson(...lines));
    const statuses = res.json.items.map((i: { index: { status: number } }) => i.index.status);
    expect(statuses).toEqual([...good.map(() => 201), ...bad.map(() => 400)]);
    const reasons = res.json.items.slice(good.length).map((i: { index: { error: { reason: string } } }) => i.index.error.reason.replace(/^\[\d+:\d+\] /, ''));
    expect(reasons[0]).toBe("failed to parse field [n] of type [long] in document with id '8'. Preview of field's value: 'x1'");
    expect(reasons[4]).toBe('object mapping for [o] tried to parse field [o] as object, but found a concrete value');
    expect(reasons[5]).toBe("failed to parse field [o.s] of type [short] in document with id '13'. Preview of field's value: '40000'");
    expect(reasons[7]).toBe("failed to parse field [k] of type [keyword] in document with id '15'. Preview of field's value: '{a=1}'");
  });
});

describe('single-document APIs and mapping options', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('indexes, updates, reads _source and deletes single documents', async () => {
    const created = await call(engine.url, 'PUT', '/single/_doc/1?refresh=true', { a: 1, o: { x: 1 } });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({ _index: 'single', _id: '1', _version: 1, result: 'created', forced_refresh: true, _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: 0, _primary_term: 1 });
    const again = await call(engine.url, 'PUT', '/single/_create/1', { a: 2 });
    expect(again.json.error).toMatchObject({ type: 'version_conflict_engine_exception', reason: '[1]: version conflict, document already exists (current version [1])' });
    const updated = await call(engine.url, 'POST', '/single/_update/1', { doc: { o: { y: 2 } } });
    expect(updated.json).toMatchObject({ result: 'updated', _version: 2 });
    expect((await call(engine.url, 'GET', '/single/_source/1')).json).toEqual({ a: 1, o: { x: 1, y: 2 } });
    const auto = await call(engine.url, 'POST', '/single/_doc', { b: 1 });
    expect(auto).toMatchObject({ status: 201, json: { result: 'created' } });
    expect((await call(engine.url, 'DELETE', '/single/_doc/1')).json).toMatchObject({ result: 'deleted', _version: 3 });
    const gone = await call(engine.url, 'DELETE', '/single/_doc/1');
    expect(gone).toMatchObject({ status: 404, json: { result: 'not_found', _version: 4 } });
    expect((await call(engine.url, 'GET', '/single/_doc/1')).json).toEqual({ _index: 'single', _id: '1', found: false });
    expect((await call(engine.url, 'HEAD', '/single/_doc/1')).status).toBe(404);
    expect((await call(engine.url, 'GET', '/nowhere/_doc/1')).json.error.type).toBe('index_not_found_exception');
  });

  it('applies dynamic templates, ignore_malformed and dynamic: false', async () => {
    await call(engine.url, 'PUT', '/tpl', {
      settings: { index: { mapping: { ignore_malformed: true } } },
      mappings: {
        dynamic_templates: [{ strings_as_keywords: { match_mapping_type: 'string', mapping: { type: 'keyword' } } }, { ids: { match: '*_id', mapping: { type: 'long' } } }],
        properties: { n: { type: 'integer' }, loose: { type: 'object', dynamic: false } },
      },
    });
    const res = await bulk(engine.url, ndjson({ index: { _index: 'tpl', _id: '1' } }, { name: 'x', user_id: 7, n: 'not a number', loose: { anything: 1 } }));
    expect(res.json.errors).toBe(false);
    expect(engine.store.mapping('tpl')?.properties).toEqual({
      n: { type: 'integer' },
      loose: { type: 'object', dynamic: 'false' },
      name: { type: 'keyword' },
      user_id: { type: 'long' },
    });
  });
});
