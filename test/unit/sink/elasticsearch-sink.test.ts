import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ElasticsearchSink } from '../../../src/sink/elasticsearch/elasticsearch-sink.js';
import type { SinkLogger } from '../../../src/sink/elasticsearch/engine-client.js';
import { engineConfig, MemoryDeadLetters } from './helpers.js';
import type { ScriptedServer } from './scripted-server.js';
import { bulkResponse, startScriptedServer } from './scripted-server.js';

let server: ScriptedServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('ElasticsearchSink', () => {
  it('connects, detects the engine and writes through a writer', async () => {
    server = await startScriptedServer((req) => {
      if (req.url === '/') return { body: { version: { number: '8.15.0' } }, headers: { 'x-elastic-product': 'Elasticsearch' } };
      if (req.url.startsWith('/_bulk?')) return bulkResponse(req.body);
      if (req.method === 'HEAD') return { status: 404 };
      if (req.url === '/books/_count') return { body: { count: 2 } };
      return { body: { acknowledged: true } };
    });
    const logger: SinkLogger = pino({ level: 'silent' });
    const sink = await ElasticsearchSink.connect(engineConfig(server.url), new MemoryDeadLetters(), logger);
    expect(sink.info).toEqual({ flavor: 'elasticsearch', version: '8.15.0', major: 8 });
    expect(await sink.ensureIndex({ name: 'books' })).toBe(true);
    const writer = sink.writer();
    await writer.add({ op: 'index', index: 'books', id: '1', source: '{}' });
    await writer.add({ op: 'index', index: 'books', id: '2', source: '{}' });
    await writer.flush();
    await sink.refresh('books');
    expect(await sink.count('books')).toBe(2);
    await sink.close();
    await sink.close();
    await expect(writer.add({ op: 'delete', index: 'books', id: '1' })).rejects.toMatchObject({ code: 'SNK_UNAVAILABLE' });
  });

  it('scans with a scroll kept 5 minutes, and reports one that expired anyway as unavailable (the scan is repeated)', async () => {
    server = await startScriptedServer((req) => {
      if (req.url === '/') return { body: { version: { number: '8.15.0' } }, headers: { 'x-elastic-product': 'Elasticsearch' } };
      if (req.url.startsWith('/books/_search')) return { body: { _scroll_id: 's1', hits: { hits: [{ _id: '1' }, { _id: '2', _routing: 'r' }] } } };
      if (req.method === 'POST' && req.url === '/_search/scroll') {
        return { status: 404, body: { error: { type: 'search_context_missing_exception', reason: 'No search context found for id [1]' }, status: 404 } };
      }
      return { body: {} };
    });
    const sink = await ElasticsearchSink.connect(engineConfig(server.url), new MemoryDeadLetters());
    const seen: unknown[] = [];
    const scanning = (async () => {
      for await (const copy of sink.documents('books')) seen.push(copy);
    })();
    await expect(scanning).rejects.toMatchObject({ code: 'SNK_UNAVAILABLE', message: expect.stringContaining('the scroll expired between two pages (search_context_missing_exception)') as unknown });
    expect(seen).toEqual([{ id: '1' }, { id: '2', routing: 'r' }]);
    expect(server.requests.find((r) => r.url.startsWith('/books/_search'))!.url).toContain('scroll=5m');
    expect(JSON.parse(server.requests.find((r) => r.url === '/_search/scroll')!.body)).toMatchObject({ scroll: '5m', scroll_id: 's1' });
    await sink.close();
  });

  it('lets go of a closed writer and of what it still buffered', async () => {
    server = await startScriptedServer((req) => {
      if (req.url === '/') return { body: { version: { number: '8.15.0' } }, headers: { 'x-elastic-product': 'Elasticsearch' } };
      return bulkResponse(req.body);
    });
    const sink = await ElasticsearchSink.connect(engineConfig(server.url), new MemoryDeadLetters());
    const held = (sink as unknown as { writers: Set<unknown> }).writers;
    // A sync attempt that fails leaves its writer with buffered actions; the next attempt takes a new one.
    for (let attempt = 0; attempt < 3; attempt++) {
      const writer = sink.writer();
      await writer.add({ op: 'index', index: 'books', id: String(attempt), source: '{}' });
      expect(held.size).toBe(1);
      await writer.close();
      expect((writer as unknown as { pending: unknown[] }).pending).toEqual([]);
      expect(held.size).toBe(0);
    }
    await sink.close();
  });

  it('fails to connect with a clear error and closes its client', async () => {
    server = await startScriptedServer(() => ({ body: { version: { number: '5.6.0' } } }));
    await expect(ElasticsearchSink.connect(engineConfig(server.url), new MemoryDeadLetters())).rejects.toMatchObject({ code: 'SNK_UNSUPPORTED' });
  });
});
