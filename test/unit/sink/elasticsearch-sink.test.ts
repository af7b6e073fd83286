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
      if (req.url === '/_bulk') return bulkResponse(req.body);
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

  it('fails to connect with a clear error and closes its client', async () => {
    server = await startScriptedServer(() => ({ body: { version: { number: '5.6.0' } } }));
    await expect(ElasticsearchSink.connect(engineConfig(server.url), new MemoryDeadLetters())).rejects.toMatchObject({ code: 'SNK_UNSUPPORTED' });
  });
});
