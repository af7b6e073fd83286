import { afterEach, describe, expect, it } from 'vitest';
import type { EngineConfig } from '../../../src/config/config-types.js';
import type { AppError } from '../../../src/errors/app-error.js';
import type { BulkAction } from '../../../src/sink/document-sink.js';
import { BulkWriter } from '../../../src/sink/elasticsearch/bulk-writer.js';
import { SUSPECT_ATTEMPTS } from '../../../src/sink/elasticsearch/bulk-request.js';
import { EngineClient } from '../../../src/sink/elasticsearch/engine-client.js';
import { engineConfig, MemoryDeadLetters } from './helpers.js';
import type { Responder, ScriptedServer } from './scripted-server.js';
import { bulkResponse, itemError, parseBulk, startScriptedServer } from './scripted-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(respond: Responder, overrides: Partial<EngineConfig> = {}) {
  const server = await startScriptedServer(respond);
  const config = engineConfig(server.url, overrides);
  const client = new EngineClient(config);
  const dead = new MemoryDeadLetters();
  const writer = new BulkWriter(client, config, dead, undefined, { random: () => 0.5 });
  cleanups.push(async () => {
    await writer.close();
    await client.close();
    await server.close();
  });
  return { server, writer, dead };
}

function doc(id: number | string, extra = ''): BulkAction {
  return { op: 'index', index: 'books', id: String(id), source: `{"n":"${id}${extra}"}` };
}

const ok: Responder = (req) => bulkResponse(req.body);

async function waitUntil(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 5));
}
const ids = (s: ScriptedServer, n: number) => parseBulk(s.requests[n]!.body).map((l) => l.meta['_id']);

describe('BulkWriter', () => {
  it('splits requests by action count', async () => {
    const { server, writer } = await setup(ok, { bulkMaxActions: 10 });
    for (let i = 0; i < 25; i++) await writer.add(doc(i));
    await writer.flush();
    expect(server.requests.map((r) => parseBulk(r.body).length)).toEqual([10, 10, 5]);
    expect(server.requests[0]!.headers['content-type']).toBe('application/x-ndjson');
    // Only the fields the writer reads come back (BULK_FILTER_PATH), not ~180 bytes of metadata per document.
    expect(server.requests[0]!.url).toBe('/_bulk?filter_path=took%2Cerrors%2Citems.*.status%2Citems.*.error%2Citems.*.result');
    expect(writer.stats()).toEqual({ indexed: 25, deleted: 0, stale: 0, deadLettered: 0, retries: 0, requests: 3 });
  });

  it('splits requests by bytes and sends an oversized action alone', async () => {
    const { server, writer } = await setup(ok, { bulkMaxBytes: 200 });
    for (let i = 0; i < 6; i++) await writer.add(doc(i, 'x'.repeat(40)));
    await writer.add(doc('big', 'y'.repeat(500)));
    await writer.add({ op: 'delete', index: 'books', id: 'gone' });
    await writer.flush();
    for (const r of server.requests) {
      const n = parseBulk(r.body).length;
      expect(n === 1 || Buffer.byteLength(r.body) <= 200).toBe(true);
    }
    expect(server.requests.some((r) => parseBulk(r.body).length === 1 && r.body.includes('"_id":"big"'))).toBe(true);
    expect(server.requests.flatMap((r) => parseBulk(r.body).map((l) => l.meta['_id']))).toHaveLength(8);
    expect(writer.stats()).toMatchObject({ indexed: 7, deleted: 1 });
  });

  it('retries a request answered 429, 503 or with a dropped connection', async () => {
    const script = [{ status: 429, body: { error: { type: 'es_rejected_execution_exception', reason: 'busy' } } }, { status: 503 }, { drop: true }];
    const { server, writer } = await setup((req, n) => script[n] ?? bulkResponse(req.body));
    for (let i = 0; i < 3; i++) await writer.add(doc(i));
    await writer.flush();
    expect(server.requests).toHaveLength(4);
    expect(server.requests.every((r) => r.body === server.requests[0]!.body)).toBe(true);
    expect(writer.stats()).toEqual({ indexed: 3, deleted: 0, stale: 0, deadLettered: 0, retries: 3, requests: 4 });
  });

  it('re-sends only the items that failed with a retryable error', async () => {
    const { server, writer } = await setup((req, n) =>
      bulkResponse(req.body, (_l, i) =>
        n === 0 && (i === 1 || i === 3) ? itemError(429, 'es_rejected_execution_exception', 'rejected execution') : undefined,
      ),
    );
    for (let i = 0; i < 5; i++) await writer.add(doc(i));
    await writer.flush();
    expect(ids(server, 1)).toEqual(['1', '3']);
    expect(writer.stats()).toEqual({ indexed: 5, deleted: 0, stale: 0, deadLettered: 0, retries: 2, requests: 2 });
  });

  it('halves the batch size on throttling and recovers gradually', async () => {
    const { server, writer } = await setup((req, n) => (n < 2 ? { status: 429 } : bulkResponse(req.body)), { bulkMaxActions: 16 });
    for (let i = 0; i < 16; i++) await writer.add(doc(i));
    await writer.flush();
    // 16 rejected (size 8), re-sent as 8 + 8, rejected (size 4): 4 + 4 pass and the size grows by 1 per success.
    expect(server.requests.map((r) => parseBulk(r.body).length)).toEqual([16, 8, 4, 4, 6, 2]);
    for (let i = 0; i < 32; i++) await writer.add(doc(100 + i));
    await writer.flush();
    const later = server.requests.slice(6).map((r) => parseBulk(r.body).length);
    expect(later[0]).toBeGreaterThan(6);
    expect(later[0]).toBeLessThan(16);
    expect(later.reduce((a, b) => a + b, 0)).toBe(32);
  });

  it('splits a request answered 413 and dead-letters a single action that is too large', async () => {
    const limit = 300;
    const { server, writer, dead } = await setup((req) =>
      req.rawBytes > limit ? { status: 413, body: '' } : bulkResponse(req.body),
    );
    for (let i = 0; i < 8; i++) await writer.add(doc(i, 'a'.repeat(20)));
    await writer.add({ ...doc('huge', 'z'.repeat(400)), position: '0/16B3748' });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ indexed: 8, deadLettered: 1 });
    expect(dead.letters).toEqual([
      expect.objectContaining({ id: 'huge', index: 'books', op: 'index', status: 413, errorType: 'request_too_large', position: '0/16B3748' }),
    ]);
    expect(dead.letters[0]!.reason).toMatch(/max_content_length/);
    expect(dead.letters[0]!.source).toContain('zzzz');
    expect(server.requests.filter((r) => r.rawBytes > limit).length).toBeGreaterThanOrEqual(2);
  });

  it('dead-letters document errors with the engine reason and goes on', async () => {
    const { writer, dead } = await setup((req) =>
      bulkResponse(req.body, (l) =>
        l.meta['_id'] === '2'
          ? { status: 400, error: { type: 'mapper_parsing_exception', reason: 'failed to parse field [n] of type [long]', caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "2"' } } }
          : undefined,
      ),
    );
    for (let i = 0; i < 4; i++) await writer.add({ ...doc(i), position: `chunk-${i}` });
    await writer.flush();
    expect(dead.letters).toHaveLength(1);
    expect(dead.letters[0]).toMatchObject({ id: '2', status: 400, errorType: 'mapper_parsing_exception', position: 'chunk-2', source: '{"n":"2"}' });
    expect(dead.letters[0]!.reason).toContain('failed to parse field [n] of type [long]');
    expect(writer.stats()).toMatchObject({ indexed: 3, deadLettered: 1, retries: 0 });
  });

  it('never has two requests carrying the same document in flight', async () => {
    const inFlight = new Map<string, number>();
    let overlap = false;
    const applied: string[] = [];
    const { server, writer } = await setup(
      async (req) => {
        const lines = parseBulk(req.body);
        for (const l of lines) {
          const id = String(l.meta['_id']);
          if ((inFlight.get(id) ?? 0) > 0) overlap = true;
          inFlight.set(id, (inFlight.get(id) ?? 0) + 1);
        }
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 10));
        for (const l of lines) {
          const id = String(l.meta['_id']);
          inFlight.set(id, inFlight.get(id)! - 1);
          applied.push(`${id}:${l.source}`);
        }
        return bulkResponse(req.body);
      },
      { bulkConcurrency: 4, bulkMaxActions: 3 },
    );
    const expected = new Map<string, string>();
    for (let round = 0; round < 10; round++) {
      for (const id of ['a', 'b', 'c', 'd', 'e']) {
        const source = `{"round":${round}}`;
        await writer.add({ op: 'index', index: 'books', id, source });
        expected.set(id, source);
      }
    }
    await writer.flush();
    expect(overlap).toBe(false);
    expect(server.maxConcurrent()).toBeGreaterThan(1);
    const last = new Map<string, string>();
    const rounds = new Map<string, number[]>();
    for (const entry of applied) {
      const [id, source] = entry.split(/:(.*)/s) as [string, string];
      last.set(id, source);
      rounds.set(id, [...(rounds.get(id) ?? []), (JSON.parse(source) as { round: number }).round]);
    }
    expect(last).toEqual(expected);
    for (const r of rounds.values()) expect(r).toEqual([...r].sort((x, y) => x - y));
  });

  it('gives up with SNK_UNAVAILABLE after retryGiveUpMs of failures', async () => {
    const { writer } = await setup(() => ({ status: 503, body: { error: { type: 'unavailable', reason: 'down' } } }), {
      retryGiveUpMs: 150,
      retryInitialMs: 10,
      retryMaxMs: 40,
    });
    await writer.add(doc(1));
    const started = Date.now();
    const err = (await writer.flush().catch((e: unknown) => e)) as AppError;
    expect(err.code).toBe('SNK_UNAVAILABLE');
    expect(err.message).toContain('HTTP 503');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(writer.add(doc(2))).rejects.toMatchObject({ code: 'SNK_UNAVAILABLE' });
  });

  it('gives up when the engine cannot be reached at all', async () => {
    const server = await startScriptedServer(ok);
    await server.close();
    const config = engineConfig(server.url, { retryGiveUpMs: 100, retryInitialMs: 5, retryMaxMs: 20 });
    const client = new EngineClient(config);
    const writer = new BulkWriter(client, config, new MemoryDeadLetters());
    await writer.add(doc(1));
    await expect(writer.flush()).rejects.toMatchObject({ code: 'SNK_UNAVAILABLE', message: expect.stringContaining('ECONNREFUSED') as unknown });
    await client.close();
  });

  it('applies backpressure: never more than bulkConcurrency requests in flight', async () => {
    let current = 0;
    let max = 0;
    const { writer } = await setup(
      async (req) => {
        current++;
        max = Math.max(max, current);
        await new Promise((r) => setTimeout(r, 15));
        current--;
        return bulkResponse(req.body);
      },
      { bulkConcurrency: 2, bulkMaxActions: 5 },
    );
    let blocked = 0;
    for (let i = 0; i < 60; i++) {
      const started = Date.now();
      await writer.add(doc(i));
      if (Date.now() - started >= 5) blocked++;
    }
    await writer.flush();
    expect(max).toBe(2);
    expect(blocked).toBeGreaterThan(0);
    expect(writer.stats().indexed).toBe(60);
  });

  it('stops on a fatal item error (index missing) and on refused credentials', async () => {
    const { writer } = await setup((req) =>
      bulkResponse(req.body, () => itemError(404, 'index_not_found_exception', 'no such index [books]')),
    );
    await writer.add(doc(1));
    await expect(writer.flush()).rejects.toMatchObject({ code: 'SNK_REQUEST', message: expect.stringContaining('no such index [books]') as unknown });

    const second = await setup(() => ({ status: 401, body: { error: { type: 'security_exception', reason: 'unable to authenticate user [u]' }, status: 401 } }));
    await second.writer.add(doc(1));
    await expect(second.writer.flush()).rejects.toMatchObject({ code: 'SNK_CONNECT' });
  });

  it('takes a compact answer that starts with "errors":false as all applied without reading its items', async () => {
    // Items cut short on purpose: only the head is read.
    const { writer } = await setup(() => ({ status: 200, body: '{"took":3,"ingest_took":1,"errors":false,"items":[{"index":' }));
    await writer.add(doc(1));
    await writer.add({ op: 'delete', index: 'books', id: '2' });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ indexed: 1, deleted: 1, deadLettered: 0 });
  });

  it('reads every item of any other answer, and sends again a request whose answer is cut short or does not match it', async () => {
    // A proxy's doing: the items do not match, then the body is cut off before its head; the third answer is whole.
    const answers = ['{\n  "took" : 3,\n  "errors" : false,\n  "items" : [ ]\n}', '{"took":3,"err'];
    const { server, writer } = await setup((req, n) => (n < answers.length ? { status: 200, body: answers[n]! } : bulkResponse(req.body)), { retryInitialMs: 1 });
    await writer.add(doc(1));
    await writer.flush();
    expect(server.requests).toHaveLength(3);
    expect(writer.stats()).toMatchObject({ indexed: 1, deadLettered: 0 });
  });

  it('takes an answer whose head says every item was applied, in either key order, without reading the items', async () => {
    for (const head of ['{"took":3,"errors":false,', '{"errors":false,"took":3,']) {
      // Items that would be dead letters if they were read: the head alone decides.
      const { writer, dead } = await setup((req) => ({ status: 200, body: `${head}"items":[${parseBulk(req.body).map(() => '{"index":{"status":400}}').join(',')}]}` }));
      await writer.add(doc(1));
      await writer.flush();
      expect(dead.letters).toEqual([]);
    }
  });

  it('dead-letters an action whose id the engine would refuse for the whole request, and sends the others', async () => {
    const { server, writer, dead } = await setup(ok);
    const long = 'é'.repeat(257); // 514 bytes in UTF-8
    await writer.add(doc(1));
    await writer.add(doc(''));
    await writer.add(doc(long));
    await writer.add({ op: 'delete', index: 'books', id: '' });
    await writer.add(doc(2));
    await writer.flush();
    expect(server.requests).toHaveLength(1);
    expect(ids(server, 0)).toEqual(['1', '2']);
    expect(dead.letters.map((l) => [l.id.length, l.op, l.errorType])).toEqual([
      [0, 'index', 'invalid_id'],
      [257, 'index', 'invalid_id'],
      [0, 'delete', 'invalid_id'],
    ]);
    expect(dead.letters[1]!.reason).toContain('514 bytes long, over the engine\'s limit of 512');
    expect(writer.stats()).toMatchObject({ indexed: 2, deadLettered: 3 });
  });

  it('dead-letters a document that gets a server error every time while the others go through, after a few attempts', async () => {
    // Document 2 breaks the engine (HTTP 500 of its own); 3 is throttled a while (never suspected); 1 goes through.
    let throttled = 0;
    const { server, writer, dead } = await setup(
      (req) =>
        bulkResponse(req.body, (l) => {
          if (l.meta['_id'] === '2') return itemError(500, 'null_pointer_exception', 'Cannot invoke "Object.toString()"');
          if (l.meta['_id'] === '3' && throttled++ < 8) return itemError(429, 'es_rejected_execution_exception', 'rejected');
          return undefined;
        }),
      { retryInitialMs: 1, retryMaxMs: 2 },
    );
    for (const id of [1, 2, 3]) await writer.add(doc(id));
    await writer.flush();
    expect(dead.letters.map((l) => [l.id, l.status, l.errorType])).toEqual([['2', 500, 'null_pointer_exception']]);
    expect(dead.letters[0]!.reason).toContain('failed 5 times in a row while the engine answered for the others');
    expect(writer.stats()).toMatchObject({ indexed: 2, deadLettered: 1 });
    expect(server.requests.length).toBeGreaterThanOrEqual(5);
  });

  it('retries, and never dead-letters, documents that all get the same server error: the engine is failing, not them', async () => {
    // A shard failing: every item of every answer gets HTTP 500 of an unknown type, for more attempts than a
    // suspected document is given; then the engine recovers.
    const { server, writer, dead } = await setup(
      (req, n) => bulkResponse(req.body, () => (n < 2 * SUSPECT_ATTEMPTS ? itemError(500, 'engine_exception', 'shard failed') : undefined)),
      { retryInitialMs: 1, retryMaxMs: 2 },
    );
    for (const id of [1, 2, 3]) await writer.add(doc(id));
    await writer.flush();
    expect(dead.letters).toEqual([]);
    expect(writer.stats()).toMatchObject({ indexed: 3, deadLettered: 0 });
    expect(server.requests.length).toBe(2 * SUSPECT_ATTEMPTS + 1);
  });

  it('dead-letters a document sent alone that gets a server error every time', async () => {
    const { writer, dead } = await setup((req) => bulkResponse(req.body, () => itemError(500, 'null_pointer_exception', 'Cannot invoke "Object.toString()"')), {
      retryInitialMs: 1,
      retryMaxMs: 2,
    });
    await writer.add(doc(7));
    await writer.flush();
    expect(dead.letters.map((l) => [l.id, l.errorType])).toEqual([['7', 'null_pointer_exception']]);
  });

  it('sends a request that timed out again smaller, until the engine answers in time', async () => {
    // An engine that needs longer than the request timeout for more than 4 documents (and executes them anyway).
    const { server, writer, dead } = await setup(
      async (req) => {
        if (parseBulk(req.body).length > 4) await new Promise((resolve) => setTimeout(resolve, 600));
        return bulkResponse(req.body);
      },
      { requestTimeoutMs: 200, retryInitialMs: 1, retryMaxMs: 2, retryGiveUpMs: 5_000 },
    );
    for (let id = 1; id <= 16; id++) await writer.add(doc(id));
    await writer.flush();
    expect(dead.letters).toEqual([]);
    expect(writer.stats()).toMatchObject({ indexed: 16 });
    // 16 and 8 documents timed out; then requests of 4 went through.
    expect(server.requests.map((r) => parseBulk(r.body).length).slice(0, 3)).toEqual([16, 8, 4]);
  });

  it('once stopped, does not retry a failed request: the wait for the next attempt ends and the writer fails', async () => {
    const server = await startScriptedServer(() => ({ status: 503, body: { error: { type: 'unavailable', reason: 'engine down' }, status: 503 } }));
    // A minute between attempts and five before giving up: without the stop, flush() would wait that long.
    const config = engineConfig(server.url, { retryInitialMs: 60_000, retryMaxMs: 60_000, retryGiveUpMs: 300_000 });
    const client = new EngineClient(config);
    const stop = new AbortController();
    const writer = new BulkWriter(client, config, new MemoryDeadLetters(), undefined, { stop: stop.signal });
    cleanups.push(async () => {
      await writer.close();
      await client.close();
      await server.close();
    });
    await writer.add(doc(1));
    const flushed = writer.flush().then(
      () => 'flushed',
      (error: AppError) => error,
    );
    await waitUntil(() => server.requests.length === 1);
    stop.abort();
    const outcome = await flushed;
    expect(outcome).toMatchObject({ code: 'SNK_UNAVAILABLE', message: expect.stringContaining('stopping: a failed bulk request is not retried (HTTP 503') as unknown });
    expect(server.requests).toHaveLength(1);
  });

  it('counts stale versions as applied (and as stale) and not-found deletes as deleted', async () => {
    const { writer } = await setup((req) =>
      bulkResponse(req.body, (l) =>
        l.op === 'delete' ? { status: 404, result: 'not_found' } : itemError(409, 'version_conflict_engine_exception', 'version conflict'),
      ),
    );
    await writer.add({ ...doc(1), version: 10n });
    await writer.add({ op: 'delete', index: 'books', id: '2', version: 11n });
    await writer.flush();
    expect(writer.stats()).toMatchObject({ indexed: 1, deleted: 1, stale: 1, deadLettered: 0 });
  });

  it('settled() waits for the actions added before it, sends them at once, and not for those added after', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let secondArrived!: () => void;
    const arrived = new Promise<void>((resolve) => (secondArrived = resolve));
    // The first request is answered once the second has arrived; the second only when the test says so.
    const { server, writer } = await setup(async (req, n) => {
      if (n === 0) await arrived;
      if (n === 1) {
        secondArrived();
        await held;
      }
      return bulkResponse(req.body);
    }, { bulkMaxActions: 100, bulkConcurrency: 2 });
    const order: string[] = [];
    await writer.add(doc(1));
    await writer.add(doc(2));
    // A partial request: sent because of settled(), not because the buffer is full.
    const first = writer.settled().then(() => order.push('first'));
    await writer.add(doc(3));
    const second = writer.settled().then(() => order.push('second'));
    await first;
    // The earlier actions are settled while the later request is still held.
    expect(order).toEqual(['first']);
    expect(ids(server, 0)).toEqual(['1', '2']);
    expect(ids(server, 1)).toEqual(['3']);
    release();
    await second;
    expect(order).toEqual(['first', 'second']);
    expect(writer.stats()).toMatchObject({ indexed: 3, requests: 2 });
  });

  it('settled() waits for an earlier request still in flight, and for a document held behind it', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const { server, writer } = await setup(async (req, n) => {
      if (n === 0) await held;
      return bulkResponse(req.body);
    }, { bulkMaxActions: 100, bulkConcurrency: 2 });
    await writer.add(doc(1));
    const first = writer.settled();
    // Same document as the held request: it waits for that request, and so does settled().
    await writer.add(doc(1, 'b'));
    let settled = false;
    const done = writer.settled().then(() => (settled = true));
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    expect(server.requests).toHaveLength(1);
    expect(settled).toBe(false);
    release();
    await first;
    await done;
    expect(ids(server, 1)).toEqual(['1']);
    expect(parseBulk(server.requests[1]!.body)[0]!.source).toBe('{"n":"1b"}');
  });

  it('settled() rejects with the failure of a request it waits for', async () => {
    const { writer } = await setup(() => ({ status: 401, body: { error: { type: 'security_exception', reason: 'unable to authenticate user [u]' }, status: 401 } }));
    await writer.add(doc(1));
    await expect(writer.settled()).rejects.toMatchObject({ code: 'SNK_CONNECT' });
  });

  it('rejects adds after close', async () => {
    const { writer } = await setup(ok);
    await writer.close();
    await expect(writer.add(doc(1))).rejects.toMatchObject({ code: 'SNK_UNAVAILABLE' });
  });
});
