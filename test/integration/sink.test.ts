// The Elasticsearch/OpenSearch sink against the Elasticsearch-compatible test engine (every flavour), and
// against a real cluster when ELASTICSEARCH_URL is set (then the non-fault tests run there instead).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineConfig } from '../../src/config/config-types.js';
import { FileDeadLetterStore, readDeadLetters } from '../../src/sink/dead-letter-file-store.js';
import type { IndexAction } from '../../src/sink/document-sink.js';
import { ElasticsearchSink } from '../../src/sink/elasticsearch/elasticsearch-sink.js';
import { swapAlias } from '../../src/sink/elasticsearch/aliases.js';
import { AppError } from '../../src/errors/app-error.js';
import { isRetryable } from '../../src/pipeline/index-sync.js';
import { startTestEngine } from '../es-server/index.js';
import type { EngineFlavor, TestEngine } from '../es-server/types.js';

const REAL_URL = process.env['ELASTICSEARCH_URL'];
const FLAVORS = ['es7', 'es8', 'opensearch2'] as const satisfies readonly EngineFlavor[];
const EXPECTED = {
  es7: { flavor: 'elasticsearch', major: 7 },
  es8: { flavor: 'elasticsearch', major: 8 },
  opensearch2: { flavor: 'opensearch', major: 2 },
} as const;

const tmp = mkdtempSync(join(tmpdir(), 'sluice-sink-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function config(url: string, overrides: Partial<EngineConfig> = {}): EngineConfig {
  return {
    url,
    auth: { kind: 'none' },
    tls: { rejectUnauthorized: true },
    requestTimeoutMs: 30_000,
    bulkMaxActions: 500,
    bulkMaxBytes: 5 * 1024 * 1024,
    bulkConcurrency: 3,
    retryInitialMs: 5,
    retryMaxMs: 50,
    retryGiveUpMs: 30_000,
    compress: false,
    ...overrides,
  };
}

/** ELASTICSEARCH_URL (credentials in the URL or ELASTICSEARCH_USER/PASSWORD, ELASTICSEARCH_API_KEY). */
function realClusterConfig(raw: string): EngineConfig {
  const url = new URL(raw);
  const username = decodeURIComponent(url.username) || process.env['ELASTICSEARCH_USER'];
  const password = decodeURIComponent(url.password) || process.env['ELASTICSEARCH_PASSWORD'];
  url.username = '';
  url.password = '';
  const apiKey = process.env['ELASTICSEARCH_API_KEY'];
  const caPath = process.env['ELASTICSEARCH_CA_CERTS'];
  return config(url.toString(), {
    auth: apiKey ? { kind: 'apiKey', key: apiKey } : username && password ? { kind: 'basic', username, password } : { kind: 'none' },
    tls: {
      rejectUnauthorized: process.env['ELASTICSEARCH_VERIFY_CERTS'] !== 'false',
      ...(caPath ? { ca: readFileSync(caPath, 'utf8') } : {}),
    },
  });
}

const uniqueIndex = (prefix: string) => `sluice-test-${prefix}-${randomBytes(4).toString('hex')}`;
const deadLetterPath = () => join(tmp, `dead-${randomBytes(4).toString('hex')}.jsonl`);

const docSource = (i: number, round = 0) => JSON.stringify({ n: i, title: `doc "${i}" ü 漢`, tags: ['a', `t${i % 7}`], round });

const mappings = { properties: { n: { type: 'long' }, title: { type: 'text' }, tags: { type: 'keyword' }, round: { type: 'integer' } } };

/** Reads documents through the REST API (`_mget`), for the real cluster where there is no store to look into. */
async function fetchSources(sink: ElasticsearchSink, index: string, ids: string[]): Promise<Map<string, unknown>> {
  const res = await sink.client.request('POST', `/${index}/_mget`, { body: JSON.stringify({ ids }) });
  const docs = (res.json() as { docs: Array<{ _id: string; found: boolean; _source?: unknown }> }).docs;
  return new Map(docs.filter((d) => d.found).map((d) => [d._id, d._source]));
}

interface Target {
  name: string;
  flavor?: (typeof FLAVORS)[number];
}
const targets: Target[] = REAL_URL ? [{ name: 'real cluster' }] : FLAVORS.map((flavor) => ({ name: flavor, flavor }));

describe.each(targets)('sink basics against $name', (target) => {
  let engine: TestEngine | undefined;
  let sink: ElasticsearchSink;
  let store: FileDeadLetterStore;
  const index = uniqueIndex('basics');

  beforeAll(async () => {
    engine = target.flavor ? await startTestEngine({ flavor: target.flavor }) : undefined;
    store = new FileDeadLetterStore(deadLetterPath());
    sink = await ElasticsearchSink.connect(engine ? config(engine.url) : realClusterConfig(REAL_URL!), store);
  });
  afterAll(async () => {
    await sink?.deleteIndex(index).catch(() => undefined);
    await sink?.close();
    await store?.close();
    await engine?.close();
  });

  it('detects the engine', () => {
    if (target.flavor) expect(sink.info).toMatchObject(EXPECTED[target.flavor]);
    else expect(['elasticsearch', 'opensearch']).toContain(sink.info.flavor);
  });

  it('creates an index with settings and mappings, once', async () => {
    expect(await sink.ensureIndex({ name: index, settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings })).toBe(true);
    expect(await sink.ensureIndex({ name: index, settings: { number_of_shards: 1 }, mappings })).toBe(false);
    const res = await sink.client.request('GET', `/${index}/_mapping`);
    const got = (res.json() as Record<string, { mappings: { properties: Record<string, unknown> } }>)[index]!.mappings;
    expect(got.properties['n']).toEqual({ type: 'long' });
    expect(got.properties['tags']).toEqual({ type: 'keyword' });
    const settings = await sink.client.request('GET', `/${index}/_settings`);
    const idx = (settings.json() as Record<string, { settings: { index: Record<string, unknown> } }>)[index]!.settings.index;
    expect(idx['number_of_shards']).toBe('1');
    expect(idx['number_of_replicas']).toBe('0');
  });

  it('swaps an alias onto one index alone, even when it moved after it was read', async () => {
    const [a, b, c] = ['ga', 'gb', 'gc'].map((g) => `${index}-${g}`) as [string, string, string];
    const alias = `${index}-alias`;
    try {
      for (const name of [a, b, c]) await sink.ensureIndex({ name, settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings });
      await sink.swapAlias({ alias, to: a, from: [] });
      expect(await sink.resolveName(alias)).toEqual({ kind: 'alias', indices: [a] });
      // Another hand moves it to b; the swap still names a as where it is (engines skip the remove that finds nothing).
      const moved = await sink.client.request('POST', '/_aliases', { body: JSON.stringify({ actions: [{ add: { index: b, alias } }, { remove: { index: a, alias } }] }) });
      expect(moved.status).toBe(200);
      await sink.swapAlias({ alias, to: c, from: [a] });
      expect(await sink.resolveName(alias)).toEqual({ kind: 'alias', indices: [c] });
      // A process that has lost the index meanwhile (its signal aborted) must not redo the swap: the index on the
      // alias it did not expect is the new owner's, which it would take away.
      const lost = new AbortController();
      lost.abort(new Error('lease lost'));
      await expect(sink.swapAlias({ alias, to: a, from: [b], signal: lost.signal })).rejects.toThrow('lease lost');
      expect(await sink.resolveName(alias)).toEqual({ kind: 'alias', indices: [a, c] });
    } finally {
      for (const name of [a, b, c]) await sink.deleteIndex(name).catch(() => undefined);
    }
  });

  it('gives up a swap with a retryable error when another writer keeps moving the alias between its requests', async () => {
    const [a, b, c] = ['ha', 'hb', 'hc'].map((g) => `${index}-${g}`) as [string, string, string];
    const alias = `${index}-contested`;
    try {
      for (const name of [a, b, c]) await sink.ensureIndex({ name, settings: { number_of_shards: 1, number_of_replicas: 0 }, mappings });
      await sink.swapAlias({ alias, to: a, from: [] });
      // The other writer adds its own index to the alias right after each of Sluice's swaps, before the read-back.
      let swaps = 0;
      const contested = Object.create(sink.client) as typeof sink.client;
      contested.request = async (method, path, options) => {
        const res = await sink.client.request(method, path, options);
        if (method === 'POST' && path === '/_aliases') {
          swaps += 1;
          const other = swaps % 2 === 1 ? b : c;
          await sink.client.request('POST', '/_aliases', { body: JSON.stringify({ actions: [{ add: { index: other, alias } }] }) });
        }
        return res;
      };
      const error = await swapAlias(contested, { alias, to: a, from: [a] }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('SNK_UNAVAILABLE');
      expect((error as Error).message).toContain(`pointing alias "${alias}" at "${a}" alone: it is on`);
      expect((error as Error).message).toContain('after 3 swaps (something else moves it)');
      // Waited out and tried again, as an engine that keeps failing is: the other writer may stop.
      expect(isRetryable(error)).toBe(true);
      expect(swaps).toBe(3);
      // Once it stops, the next try succeeds.
      await sink.swapAlias({ alias, to: a, from: [a, b, c] });
      expect(await sink.resolveName(alias)).toEqual({ kind: 'alias', indices: [a] });
    } finally {
      for (const name of [a, b, c]) await sink.deleteIndex(name).catch(() => undefined);
    }
  });

  it('writes, updates and deletes with external versions; stale writes never win', async () => {
    const writer = sink.writer();
    const n = 2_000;
    for (let i = 0; i < n; i++) await writer.add({ op: 'index', index, id: `d${i}`, source: docSource(i), version: 10n });
    // Newer content for the first 100, then a stale (older) write that must be ignored.
    for (let i = 0; i < 100; i++) await writer.add({ op: 'index', index, id: `d${i}`, source: docSource(i, 2), version: 20n });
    for (let i = 0; i < 100; i++) await writer.add({ op: 'index', index, id: `d${i}`, source: docSource(i, 1), version: 15n });
    for (let i = 100; i < 150; i++) await writer.add({ op: 'delete', index, id: `d${i}`, version: 30n });
    await writer.add({ op: 'delete', index, id: 'never-existed', version: 1n });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ indexed: n + 200, deleted: 51, deadLettered: 0 });

    await sink.refresh(index);
    expect(await sink.count(index)).toBe(n - 50);
    const sources = await fetchSources(sink, index, ['d0', 'd99', 'd100', 'd149', 'd150', `d${n - 1}`]);
    expect(sources.get('d0')).toEqual(JSON.parse(docSource(0, 2)));
    expect(sources.get('d99')).toEqual(JSON.parse(docSource(99, 2)));
    expect(sources.has('d100')).toBe(false);
    expect(sources.has('d149')).toBe(false);
    expect(sources.get('d150')).toEqual(JSON.parse(docSource(150)));
    expect(sources.get(`d${n - 1}`)).toEqual(JSON.parse(docSource(n - 1)));
    if (engine) expect(engine.store.version(index, 'd0')).toBe(20);
  });

  it('dead-letters a document the mapping refuses, with the engine reason', async () => {
    const path = deadLetterPath();
    const letters = new FileDeadLetterStore(path);
    const own = await ElasticsearchSink.connect(engine ? config(engine.url) : realClusterConfig(REAL_URL!), letters);
    try {
      const writer = own.writer();
      await writer.add({ op: 'index', index, id: 'bad', source: '{"n":"not a number"}', position: '0/ABC' });
      await writer.add({ op: 'index', index, id: 'good', source: '{"n":1}' });
      await writer.flush();
      expect(writer.stats()).toMatchObject({ indexed: 1, deadLettered: 1 });
    } finally {
      await own.close();
      await letters.close();
    }
    const [letter, ...rest] = await readDeadLetters(path);
    expect(rest).toEqual([]);
    expect(letter).toMatchObject({ id: 'bad', index, status: 400, position: '0/ABC', source: '{"n":"not a number"}' });
    expect(letter!.errorType).toMatch(/^(mapper|document)_parsing_exception$/);
    expect(letter!.reason).toContain('[n]');
  });
});

describe.each(FLAVORS)('sink through faults on the test engine (%s)', (flavor) => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor, maxContentLengthBytes: 256 * 1024 });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('writes 5,000 actions through 429s, a 503, dropped connections, a cut answer, item failures and a too-large document', async () => {
    const path = deadLetterPath();
    const letters = new FileDeadLetterStore(path);
    // Gzipped, as by default: 7.x and OpenSearch close the connection after the too-large document's 413.
    const sink = await ElasticsearchSink.connect(config(engine.url, { bulkMaxBytes: 1024 * 1024, compress: true }), letters);
    const index = uniqueIndex('faults');
    await sink.ensureIndex({ name: index, settings: { number_of_shards: 1 }, mappings });

    const bulk = '/_bulk$';
    engine.faults.inject({ kind: 'status', status: 429, path: bulk, times: 2 });
    engine.faults.inject({ kind: 'status', status: 503, path: bulk, skip: 3 });
    engine.faults.inject({ kind: 'drop', path: bulk, skip: 5 });
    // Carried out, but never answered, or answered in part: sent again, and the versions make that harmless.
    engine.faults.inject({ kind: 'dropAfter', path: bulk, skip: 6 });
    engine.faults.inject({ kind: 'truncate', path: bulk, skip: 7 });
    // Item faults: the first bulk that reaches the engine loses two items to mapper errors, the next three
    // see every tenth item rejected with 429.
    const mapperReason = 'failed to parse field [n] of type [long] in document (injected)';
    engine.faults.inject({ kind: 'bulkItems', path: bulk, status: 400, errorType: 'mapper_parsing_exception', reason: mapperReason, items: [0, 1] });
    engine.faults.inject({ kind: 'bulkItems', path: bulk, status: 429, errorType: 'es_rejected_execution_exception', items: { every: 10 }, times: 3 });

    const big = 4_000;
    const actions: IndexAction[] = [];
    for (let i = 0; i < 5_000; i++) {
      const source = i === big ? JSON.stringify({ n: i, title: 'x'.repeat(300 * 1024) }) : docSource(i);
      actions.push({ op: 'index', index, id: `doc-${i}`, source, position: `pos-${i}` });
    }
    const writer = sink.writer();
    try {
      for (const action of actions) await writer.add(action);
      await writer.flush();
    } finally {
      await sink.close();
      await letters.close();
    }

    expect(engine.faults.pending()).toBe(0);
    const dead = await readDeadLetters(path);
    const mapper = dead.filter((l) => l.errorType === 'mapper_parsing_exception');
    const tooLarge = dead.filter((l) => l.errorType === 'request_too_large');
    expect(mapper).toHaveLength(2);
    expect(tooLarge).toHaveLength(1);
    expect(dead).toHaveLength(3);
    for (const l of mapper) {
      expect(l).toMatchObject({ status: 400, index, op: 'index' });
      expect(l.reason).toContain(mapperReason);
      expect(l.source).toBe(actions[Number(l.id.slice(4))]!.source);
      expect(l.position).toBe(`pos-${l.id.slice(4)}`);
    }
    expect(tooLarge[0]).toMatchObject({ id: `doc-${big}`, status: 413, position: `pos-${big}` });
    expect(tooLarge[0]!.reason).toMatch(/too long|max_content_length/);

    const deadIds = new Set(dead.map((l) => l.id));
    const docs = engine.store.documents(index);
    expect(docs.size).toBe(5_000 - 3);
    for (const action of actions) {
      if (deadIds.has(action.id)) expect(docs.has(action.id)).toBe(false);
      else expect(docs.get(action.id)).toEqual(JSON.parse(action.source));
    }
    const stats = writer.stats();
    expect(stats).toMatchObject({ indexed: 4_997, deleted: 0, deadLettered: 3 });
    expect(stats.retries).toBeGreaterThanOrEqual(4);
    expect(stats.requests).toBeGreaterThan(10);
  });
});

describe('sink authentication on the test engine', () => {
  const password = 'Sup3r-secret-pw';
  const apiKeyId = 'VuaCfGcBCdbkQm-e5aOx';
  const apiKeySecret = 'ui2lp2axTNmsyakw9tvNnw';
  const encodedKey = Buffer.from(`${apiKeyId}:${apiKeySecret}`).toString('base64');
  let basicEngine: TestEngine;
  let keyEngine: TestEngine;
  const letters = new FileDeadLetterStore(deadLetterPath());

  beforeAll(async () => {
    basicEngine = await startTestEngine({ flavor: 'es8', auth: { username: 'sluice', password } });
    keyEngine = await startTestEngine({ flavor: 'es8', auth: { apiKey: encodedKey } });
  });
  afterAll(async () => {
    await basicEngine?.close();
    await keyEngine?.close();
    await letters.close();
  });

  async function roundTrip(url: string, auth: EngineConfig['auth']): Promise<void> {
    const sink = await ElasticsearchSink.connect(config(url, { auth }), letters);
    try {
      const index = uniqueIndex('auth');
      await sink.ensureIndex({ name: index });
      const writer = sink.writer();
      await writer.add({ op: 'index', index, id: '1', source: '{"a":1}' });
      await writer.flush();
      await sink.refresh(index);
      expect(await sink.count(index)).toBe(1);
    } finally {
      await sink.close();
    }
  }

  it('works with basic auth', async () => {
    await roundTrip(basicEngine.url, { kind: 'basic', username: 'sluice', password });
  });

  it('works with an API key given as id and key, or encoded', async () => {
    await roundTrip(keyEngine.url, { kind: 'apiKey', id: apiKeyId, key: apiKeySecret });
    await roundTrip(keyEngine.url, { kind: 'apiKey', key: encodedKey });
  });

  it.each([
    ['a wrong password', () => basicEngine.url, { kind: 'basic', username: 'sluice', password: 'Wrong-pa55word' } as const, 'Wrong-pa55word'],
    ['no credentials', () => basicEngine.url, { kind: 'none' } as const, password],
    ['a wrong API key', () => keyEngine.url, { kind: 'apiKey', id: apiKeyId, key: 'not-the-key' } as const, 'not-the-key'],
  ])('refuses %s with a clear error and no secret in it', async (_name, url, auth, secret) => {
    const err = (await ElasticsearchSink.connect(config(url(), { auth }), letters).catch((e: unknown) => e)) as Error & {
      code: string;
      details: unknown;
    };
    expect(err.code).toBe('SNK_CONNECT');
    expect(err.message).toMatch(/credentials were refused/);
    const text = `${err.message} ${JSON.stringify(err.details)} ${String(err.stack)}`;
    expect(text).not.toContain(secret);
    expect(text).not.toContain(Buffer.from(`sluice:${secret}`).toString('base64'));
  });
});
