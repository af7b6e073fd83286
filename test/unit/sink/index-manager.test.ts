import { afterEach, describe, expect, it } from 'vitest';
import { EngineClient } from '../../../src/sink/elasticsearch/engine-client.js';
import { countDocuments, deleteIndex, ensureIndex, refresh } from '../../../src/sink/elasticsearch/index-manager.js';
import { engineConfig } from './helpers.js';
import type { Responder } from './scripted-server.js';
import { startScriptedServer } from './scripted-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(respond: Responder) {
  const server = await startScriptedServer(respond);
  const client = new EngineClient(engineConfig(server.url));
  cleanups.push(async () => {
    await client.close();
    await server.close();
  });
  return { server, client };
}

const def = { name: 'books', settings: { number_of_shards: 1 }, mappings: { properties: { title: { type: 'text' } } } };

describe('ensureIndex', () => {
  it('creates a missing index with settings under index and the mappings', async () => {
    const { server, client } = await setup((req) => (req.method === 'HEAD' ? { status: 404 } : { status: 200, body: { acknowledged: true } }));
    expect(await ensureIndex(client, def)).toBe(true);
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['HEAD /books', 'PUT /books']);
    expect(JSON.parse(server.requests[1]!.body)).toEqual({ settings: { index: { number_of_shards: 1 } }, mappings: def.mappings });
  });

  it('leaves an existing index alone', async () => {
    const { server, client } = await setup(() => ({ status: 200 }));
    expect(await ensureIndex(client, { name: 'books' })).toBe(false);
    expect(server.requests).toHaveLength(1);
  });

  it('treats a concurrent creation as success', async () => {
    const { client } = await setup((req) =>
      req.method === 'HEAD'
        ? { status: 404 }
        : { status: 400, body: { error: { type: 'resource_already_exists_exception', reason: 'index [books/abc] already exists' }, status: 400 } },
    );
    expect(await ensureIndex(client, def)).toBe(false);
  });

  it('quotes the engine error type and reason on failure', async () => {
    const { client } = await setup((req) =>
      req.method === 'HEAD'
        ? { status: 404 }
        : { status: 400, body: { error: { type: 'mapper_parsing_exception', reason: 'No handler for type [txt] declared on field [title]' }, status: 400 } },
    );
    await expect(ensureIndex(client, def)).rejects.toMatchObject({
      code: 'SNK_REQUEST',
      message: expect.stringMatching(/creating index "books".*mapper_parsing_exception: No handler for type \[txt\]/) as unknown,
    });
  });

  it('reports throttling and server errors as unavailable, to be waited for and tried again, not as a refusal', async () => {
    for (const status of [429, 503]) {
      const { client } = await setup((req) =>
        req.method === 'HEAD' ? { status: 404 } : { status, body: { error: { type: 'es_rejected_execution_exception', reason: 'rejected execution' }, status } },
      );
      await expect(ensureIndex(client, def)).rejects.toMatchObject({
        code: 'SNK_UNAVAILABLE',
        message: expect.stringMatching(new RegExp(`creating index "books" failed for now \\(HTTP ${status}\\): es_rejected_execution_exception`)) as unknown,
      });
    }
  });

  it('checks the ingest pipeline first, unless the role may not read pipelines', async () => {
    for (const [pipelineStatus, created] of [[200, true], [403, true], [404, false]] as const) {
      const { server, client } = await setup((req) =>
        req.url.startsWith('/_ingest/') ? { status: pipelineStatus, body: {} } : req.method === 'HEAD' ? { status: 404 } : { status: 200, body: { acknowledged: true } },
      );
      const outcome = ensureIndex(client, { ...def, pipeline: 'enrich' });
      if (created) expect(await outcome).toBe(true);
      else await expect(outcome).rejects.toMatchObject({ code: 'SNK_REQUEST', message: expect.stringContaining('ingest pipeline "enrich"') as unknown });
      expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['GET /_ingest/pipeline/enrich', ...(created ? ['HEAD /books', 'PUT /books'] : [])]);
    }
  });

  it('reports refused credentials on HEAD', async () => {
    const { client } = await setup(() => ({ status: 401 }));
    await expect(ensureIndex(client, def)).rejects.toMatchObject({ code: 'SNK_CONNECT' });
  });
});

describe('deleteIndex, refresh, countDocuments', () => {
  it('delete returns false for a missing index', async () => {
    const { client } = await setup(() => ({ status: 404, body: { error: { type: 'index_not_found_exception', reason: 'no such index [x]' }, status: 404 } }));
    expect(await deleteIndex(client, 'x')).toBe(false);
  });

  it('delete, refresh and count hit the right endpoints', async () => {
    const { server, client } = await setup((req) => ({ status: 200, body: req.url.endsWith('_count') ? { count: 42 } : { acknowledged: true } }));
    expect(await deleteIndex(client, 'books')).toBe(true);
    await refresh(client, 'books');
    expect(await countDocuments(client, 'books')).toBe(42);
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['DELETE /books', 'POST /books/_refresh', 'GET /books/_count']);
  });
});
