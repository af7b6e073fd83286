import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { call } from './helpers.js';

describe('index administration', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('creates indices from nested or flat settings and renders settings as strings', async () => {
    const a = await call(engine.url, 'PUT', '/nested', { settings: { index: { number_of_shards: 2, number_of_replicas: 0, analysis: { analyzer: { folded: { type: 'custom', tokenizer: 'standard', filter: ['lowercase'] } } } } } });
    expect(a.json).toEqual({ acknowledged: true, shards_acknowledged: true, index: 'nested' });
    await call(engine.url, 'PUT', '/flat', { settings: { number_of_shards: 1, 'index.refresh_interval': '5s' } });
    const settings = await call(engine.url, 'GET', '/nested/_settings');
    expect(settings.json.nested.settings.index).toMatchObject({
      number_of_shards: '2',
      number_of_replicas: '0',
      provided_name: 'nested',
      uuid: expect.any(String),
      version: { created: '8512000' },
      analysis: { analyzer: { folded: { type: 'custom', tokenizer: 'standard', filter: ['lowercase'] } } },
    });
    expect(engine.store.settings('flat')).toMatchObject({ number_of_shards: '1', refresh_interval: '5s' });
    const flat = await call(engine.url, 'GET', '/flat/_settings?flat_settings=true');
    expect(flat.json.flat.settings['index.refresh_interval']).toBe('5s');
    const full = await call(engine.url, 'GET', '/nested');
    expect(Object.keys(full.json.nested)).toEqual(['aliases', 'mappings', 'settings']);
  });

  it('answers index errors with ES bodies', async () => {
    const exists = await call(engine.url, 'PUT', '/nested');
    expect(exists.status).toBe(400);
    expect(exists.json.error).toMatchObject({ type: 'resource_already_exists_exception', index: 'nested', reason: expect.stringMatching(/^index \[nested\/[\w-]+\] already exists$/) });
    const cases: [string, string][] = [
      ['UPPER', 'must be lowercase'],
      ['_under', "must not start with '_', '-', or '+'"],
      ['with%23hash', "must not contain '#'"],
      ['a%20b', 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]'],
    ];
    for (const [name, why] of cases) {
      const res = await call(engine.url, 'PUT', `/${name}`);
      expect(res.json.error).toMatchObject({ type: 'invalid_index_name_exception', reason: `Invalid index name [${decodeURIComponent(name)}], ${why}`, index_uuid: '_na_' });
    }
    const missing = await call(engine.url, 'DELETE', '/missing');
    expect(missing).toMatchObject({ status: 404, json: { error: { type: 'index_not_found_exception', root_cause: [{ type: 'index_not_found_exception', 'resource.id': 'missing' }] }, status: 404 } });
    const unknown = await call(engine.url, 'PUT', '/bad-setting', { settings: { number_of_shardz: 1 } });
    expect(unknown.json.error.reason).toBe('unknown setting [index.number_of_shardz] please check that any required plugins are installed, or check the breaking changes documentation for removed settings');
    const badType = await call(engine.url, 'PUT', '/bad-mapping', { mappings: { properties: { f: { type: 'strng' } } } });
    expect(badType.json.error).toMatchObject({ type: 'mapper_parsing_exception', reason: 'Failed to parse mapping: No handler for type [strng] declared on field [f]', root_cause: [{ reason: 'No handler for type [strng] declared on field [f]' }] });
    const badJson = await call(engine.url, 'PUT', '/bad-json', '{"settings":', { 'content-type': 'application/json' });
    expect(badJson.json.error.type).toBe('parse_exception');
    expect(engine.store.indices()).toEqual(['flat', 'nested']);
  });

  it('merges mappings and refuses type changes', async () => {
    await call(engine.url, 'PUT', '/m', { mappings: { properties: { n: { type: 'long' }, obj: { properties: { a: { type: 'keyword' } } } } } });
    expect((await call(engine.url, 'PUT', '/m/_mapping', { properties: { obj: { properties: { b: { type: 'date' } } }, t: { type: 'text' } } })).json).toEqual({ acknowledged: true });
    expect(engine.store.mapping('m')).toEqual({ properties: { n: { type: 'long' }, obj: { properties: { a: { type: 'keyword' }, b: { type: 'date' } } }, t: { type: 'text' } } });
    const conflict = await call(engine.url, 'PUT', '/m/_mapping', { properties: { n: { type: 'text' } } });
    expect(conflict.json.error).toMatchObject({ type: 'illegal_argument_exception', reason: 'mapper [n] cannot be changed from type [long] to [text]' });
    await call(engine.url, 'PUT', '/m/_doc/1', { fresh: 'hello', when: '2024-05-01T10:00:00Z', count: 3, ratio: 0.5, ok: true, deep: { x: 'y' }, empty: {} });
    expect(engine.store.mapping('m')?.properties).toMatchObject({
      fresh: { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } },
      when: { type: 'date' },
      count: { type: 'long' },
      ratio: { type: 'float' },
      ok: { type: 'boolean' },
      deep: { properties: { x: { type: 'text' } } },
      empty: { type: 'object' },
    });
  });

  it('adds dynamic fields inside nested and object mappings', async () => {
    await call(engine.url, 'PUT', '/nest', { mappings: { properties: { authors: { type: 'nested', properties: { name: { type: 'text' } } }, meta: { properties: { a: { type: 'keyword' } } } } } });
    const res = await call(engine.url, 'PUT', '/nest/_doc/1', { authors: [{ name: 'A', city: { name: 'Paris', zip: 75001 } }, { name: 'B', born: '1950-01-02' }], meta: { a: 'x', b: true } });
    expect(res.status).toBe(201);
    expect(engine.store.mapping('nest')).toEqual({
      properties: {
        authors: {
          type: 'nested',
          properties: {
            name: { type: 'text' },
            city: { properties: { name: { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } }, zip: { type: 'long' } } },
            born: { type: 'date' },
          },
        },
        meta: { properties: { a: { type: 'keyword' }, b: { type: 'boolean' } } },
      },
    });
    const bad = await call(engine.url, 'PUT', '/nest/_doc/2', { authors: [{ city: { zip: 'not a number' } }] });
    expect(bad.json.error.reason).toMatch(/failed to parse field \[authors\.city\.zip\] of type \[long\]/);
  });

  it('updates dynamic settings and refuses static ones', async () => {
    expect((await call(engine.url, 'PUT', '/m/_settings', { index: { refresh_interval: '-1', number_of_replicas: 0 } })).json).toEqual({ acknowledged: true });
    expect(engine.store.settings('m')).toMatchObject({ refresh_interval: '-1', number_of_replicas: '0' });
    await call(engine.url, 'PUT', '/m/_settings', { refresh_interval: null });
    expect(engine.store.settings('m')).not.toHaveProperty('refresh_interval');
    const fixed = await call(engine.url, 'PUT', '/m/_settings', { number_of_shards: 3 });
    expect(fixed.json.error.reason).toMatch(/^Can't update non dynamic settings \[\[index.number_of_shards\]\] for open indices \[\[m\//);
  });

  it('manages aliases atomically with ES errors', async () => {
    await call(engine.url, 'PUT', '/v1', { aliases: { live: {} } });
    await call(engine.url, 'PUT', '/v2');
    expect((await call(engine.url, 'HEAD', '/_alias/live')).status).toBe(200);
    const swap = await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { index: 'v2', alias: 'live', is_write_index: true } }, { remove_index: { index: 'v1' } }] });
    expect(swap.json).toEqual({ acknowledged: true, errors: false });
    expect(engine.store.indices()).not.toContain('v1');
    expect((await call(engine.url, 'GET', '/_alias/live')).json).toEqual({ v2: { aliases: { live: { is_write_index: true } } } });
    expect((await call(engine.url, 'GET', '/v2/_alias')).json).toEqual({ v2: { aliases: { live: { is_write_index: true } } } });
    const missing = await call(engine.url, 'GET', '/_alias/nothing');
    expect(missing).toMatchObject({ status: 404, json: { error: 'alias [nothing] missing', status: 404 } });
    expect((await call(engine.url, 'HEAD', '/_alias/nothing')).status).toBe(404);
    const clash = await call(engine.url, 'PUT', '/v2/_alias/m');
    expect(clash.json.error).toMatchObject({ type: 'invalid_alias_name_exception', reason: 'Invalid alias name [m]: an index or data stream exists with the same name as the alias' });
    // A remove that finds nothing fails the request only with must_exist, or when no action is left to apply.
    const strict = await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { index: 'v2', alias: 'other' } }, { remove: { index: 'v2', alias: 'never', must_exist: true } }] });
    expect(strict).toMatchObject({ status: 404, json: { error: { type: 'aliases_not_found_exception', reason: 'aliases [never] missing' } } });
    expect((await call(engine.url, 'GET', '/_alias/other')).status).toBe(404);
    const nothingLeft = await call(engine.url, 'POST', '/_aliases', { actions: [{ remove: { index: 'v2', alias: 'never' } }] });
    expect(nothingLeft).toMatchObject({ status: 404, json: { error: { type: 'aliases_not_found_exception' } } });
    // 8.14+: applied, with the action that found nothing reported.
    const partly = await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { index: 'v2', alias: 'other' } }, { remove: { index: 'v2', alias: 'never' } }] });
    expect(partly).toMatchObject({ status: 200 });
    expect(partly.json).toEqual({
      acknowledged: true,
      errors: true,
      action_results: [
        { action: { type: 'add', indices: ['v2'], aliases: ['other'] }, status: 200 },
        {
          action: { type: 'remove', indices: ['v2'], aliases: ['never'] },
          status: 404,
          error: { type: 'aliases_not_found_exception', reason: 'aliases [never] missing', 'resource.type': 'aliases', 'resource.id': 'never' },
        },
      ],
    });
    expect((await call(engine.url, 'GET', '/_alias/other')).json).toEqual({ v2: { aliases: { other: {} } } });
    await call(engine.url, 'DELETE', '/v2/_alias/other');
    const viaAlias = await call(engine.url, 'DELETE', '/live');
    expect(viaAlias.json.error.reason).toBe('The provided expression [live] matches an alias, specify the corresponding concrete indices instead.');
    expect((await call(engine.url, 'GET', '/live/_mapping')).json).toHaveProperty('v2');
    expect((await call(engine.url, 'DELETE', '/v2/_alias/live')).json).toEqual({ acknowledged: true });
    expect((await call(engine.url, 'DELETE', '/v2/_alias/live')).status).toBe(404);
  });

  it('answers a remove that finds nothing as Elasticsearch 7 and OpenSearch 2.11 do', async () => {
    for (const flavor of ['es7', 'opensearch2'] as const) {
      const other = await startTestEngine({ flavor });
      try {
        await call(other.url, 'PUT', '/a', { aliases: { live: {} } });
        await call(other.url, 'PUT', '/b');
        const partly = await call(other.url, 'POST', '/_aliases', { actions: [{ add: { index: 'b', alias: 'live' } }, { remove: { index: 'b', alias: 'nope' } }] });
        expect(partly.json, flavor).toEqual({ acknowledged: true });
        expect(Object.keys((await call(other.url, 'GET', '/_alias/live')).json).sort(), flavor).toEqual(['a', 'b']);
        const strict = await call(other.url, 'POST', '/_aliases', { actions: [{ remove: { index: 'a', alias: 'live', must_exist: true } }] });
        if (flavor === 'opensearch2') expect(strict.json.error, flavor).toMatchObject({ type: 'x_content_parse_exception', reason: expect.stringContaining('unknown field [must_exist]') });
        else expect(strict.status, flavor).toBe(200);
      } finally {
        await other.close();
      }
    }
  });

  it('replaces a concrete index by an alias of the same name in one request, whatever the order of the actions', async () => {
    await call(engine.url, 'PUT', '/legacy');
    await call(engine.url, 'PUT', '/legacy-g1');
    const clash = await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { index: 'legacy-g1', alias: 'legacy' } }] });
    expect(clash.json.error.type).toBe('invalid_alias_name_exception');
    const swap = await call(engine.url, 'POST', '/_aliases', { actions: [{ add: { index: 'legacy-g1', alias: 'legacy' } }, { remove_index: { index: 'legacy' } }] });
    expect(swap.status).toBe(200);
    expect(engine.store.indices()).not.toContain('legacy');
    expect((await call(engine.url, 'GET', '/_alias/legacy')).json).toEqual({ 'legacy-g1': { aliases: { legacy: {} } } });
  });

  it('reports health and _cat/indices', async () => {
    await call(engine.url, 'PUT', '/green', { settings: { number_of_replicas: 0 } });
    const health = await call(engine.url, 'GET', '/_cluster/health/green');
    expect(health.json).toMatchObject({ cluster_name: 'docker-cluster', status: 'green', number_of_nodes: 1, active_primary_shards: 1, unassigned_shards: 0 });
    expect((await call(engine.url, 'GET', '/_cluster/health')).json.status).toBe('yellow');
    const wait = await call(engine.url, 'GET', '/_cluster/health?wait_for_status=green&timeout=200ms');
    expect(wait).toMatchObject({ status: 408, json: { timed_out: true, status: 'yellow' } });
    await call(engine.url, 'PUT', '/green/_doc/1?refresh=true', { a: 1 });
    const cat = await call(engine.url, 'GET', '/_cat/indices/green?format=json');
    expect(cat.json).toEqual([
      { health: 'green', status: 'open', index: 'green', uuid: expect.any(String), pri: '1', rep: '0', 'docs.count': '1', 'docs.deleted': '0', 'store.size': expect.stringMatching(/^\d+b$/), 'pri.store.size': expect.stringMatching(/^\d+b$/), 'dataset.size': expect.stringMatching(/^\d+b$/) },
    ]);
    const text = await call(engine.url, 'GET', '/_cat/indices?h=index,docs.count&s=index');
    expect(text.headers['content-type']).toBe('text/plain; charset=UTF-8');
    expect(text.text.split('\n')[0]).toMatch(/^flat\s+0$/);
  });
});
