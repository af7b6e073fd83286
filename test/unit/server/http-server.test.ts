import { spawn } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { SluiceMetrics } from '../../../src/observability/metrics.js';
import { newIndexStatus, recordSnapshotProgress, startSnapshotProgress, type IndexStatus } from '../../../src/pipeline/index-status.js';
import { startHttpServer, type HttpServer } from '../../../src/server/http-server.js';
import { notReadyIndexes, route, type RouteContext } from '../../../src/server/routes.js';
import { hasOpenssl, makeTestPki } from '../../helpers/pki.js';

const SECRET = 's3cr3t-Passw0rd!';

function status(index: string, patch: Partial<IndexStatus> = {}): IndexStatus {
  return { ...newIndexStatus(index), ...patch };
}

let server: HttpServer | undefined;
let current: IndexStatus[] = [];

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(extra: { metrics?: SluiceMetrics; readyLagSeconds?: number } = {}): Promise<string> {
  server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    statuses: () => current,
    readyLagSeconds: extra.readyLagSeconds ?? 5,
    secrets: [SECRET],
    version: '9.9.9-test',
    ...(extra.metrics !== undefined ? { metrics: extra.metrics } : {}),
  });
  return server.url;
}

describe('startHttpServer', () => {
  it('names the setting to change when it cannot listen, instead of failing with a bare socket error', async () => {
    const url = await start();
    const port = Number(new URL(url).port);
    const options = { port, statuses: () => current, readyLagSeconds: 5, secrets: [] };
    await expect(startHttpServer({ ...options, host: '127.0.0.1' })).rejects.toMatchObject({
      code: 'SRV_LISTEN',
      message: `the HTTP server cannot listen on 127.0.0.1:${port}: EADDRINUSE (another process uses this port: choose another SLUICE_HTTP_PORT)`,
    });
    await expect(startHttpServer({ ...options, port: 0, host: '192.0.2.1' })).rejects.toMatchObject({
      code: 'SRV_LISTEN',
      message: expect.stringContaining('EADDRNOTAVAIL (no network interface of this host has that address'),
    });
  });

  it('binds to a free port and answers /healthz', async () => {
    const url = await start();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${url}/healthz`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('moves /readyz between 503 and 200 as indexes reach streaming and lag changes', async () => {
    const url = await start({ readyLagSeconds: 5 });
    current = [status('books', { phase: 'snapshot' }), status('authors', { phase: 'streaming' })];
    let res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    let body = (await res.json()) as { notReady: { index: string; reason: string }[] };
    expect(body.notReady).toEqual([{ index: 'books', phase: 'snapshot', reason: 'phase is snapshot, not streaming' }]);

    // Streaming with unknown lag counts as ready.
    current = [status('books', { phase: 'streaming' }), status('authors', { phase: 'streaming', lagSeconds: 5 })];
    res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ready', indexes: ['books', 'authors'] });

    current = [status('books', { phase: 'streaming', lagSeconds: 12.5 }), status('authors', { phase: 'streaming', lagSeconds: 1 })];
    res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    body = (await res.json()) as { notReady: { index: string; reason: string }[] };
    expect(body.notReady.map((n) => n.index)).toEqual(['books']);
    expect(body.notReady[0]?.reason).toMatch(/lag 12\.5s exceeds 5s/);

    current = [status('books', { phase: 'stopped' })];
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    current = [status('books', { phase: 'streaming', lagSeconds: 0 })];
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it('serves /status with the index statuses, version and uptime', async () => {
    const url = await start();
    current = [status('books', { phase: 'streaming', changesApplied: 3, documentsIndexed: 2, lastAppliedLsn: '0/16B3748' })];
    const res = await fetch(`${url}/status?pretty`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { indexes: IndexStatus[]; version: string; uptimeSeconds: number };
    expect(Object.keys(body).sort()).toEqual(['indexes', 'uptimeSeconds', 'version']);
    expect(body.version).toBe('9.9.9-test');
    expect(body.uptimeSeconds).toBeGreaterThanOrEqual(0);
    expect(body.indexes).toEqual(current);
  });

  it('serves /metrics in the text format with the pipeline metrics', async () => {
    const metrics = new SluiceMetrics();
    metrics.recordBulk('books', { deadLettered: 1 }, 0.02);
    const url = await start({ metrics });
    current = [status('books', { phase: 'streaming', documentsIndexed: 4 })];
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await res.text();
    for (const line of text.trimEnd().split('\n')) {
      expect(line).toMatch(/^(# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .*|[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? \S+)$/);
    }
    expect(text).toContain('sluice_up 1\n');
    expect(text).toContain('sluice_documents_indexed_total{index="books"} 4\n');
    expect(text).toContain('sluice_dead_letters_total{index="books"} 1\n');
    expect(text).toContain('sluice_bulk_request_duration_seconds_count 1\n');
  });

  it('with a token, /metrics and /status need it as a bearer token; the probes stay open', async () => {
    const token = 'tok-0123456789abcdef';
    server = await startHttpServer({ host: '127.0.0.1', port: 0, statuses: () => current, readyLagSeconds: 5, secrets: [token], token });
    current = [status('books', { phase: 'streaming', lagSeconds: 0 })];
    for (const path of ['/metrics', '/status']) {
      for (const authorization of [undefined, 'Bearer wrong-token', `Basic ${token}`, `Bearer ${token}x`]) {
        const res = await fetch(`${server.url}${path}`, { headers: authorization === undefined ? {} : { authorization } });
        expect(res.status, `${path} ${authorization}`).toBe(401);
        expect(res.headers.get('www-authenticate')).toBe('Bearer realm="sluice"');
        expect(await res.text()).not.toContain('books');
      }
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      expect((await fetch(`${server.url}${path}`, { headers: { authorization: `bearer  ${token}` } })).status).toBe(200);
    }
    for (const path of ['/healthz', '/readyz']) expect((await fetch(`${server.url}${path}`)).status, path).toBe(200);
  });

  it.runIf(hasOpenssl())('serves HTTPS with the configured certificate', async () => {
    const pki = makeTestPki('sluice-http-');
    try {
      pki.ca('ca');
      pki.leaf('server', { ca: 'ca', commonName: 'sluice.test', ips: ['127.0.0.1'] });
      server = await startHttpServer({ host: '127.0.0.1', port: 0, statuses: () => current, readyLagSeconds: 5, secrets: [], tls: { cert: pki.read('server.crt'), key: pki.read('server.key') } });
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        httpsGet(`${server!.url}/healthz`, { ca: pki.read('ca.crt') }, (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString()));
          res.on('end', () => resolve(text));
        }).on('error', reject);
      });
      expect(JSON.parse(body)).toEqual({ status: 'ok' });
      // Plain HTTP gets no answer from it.
      await expect(fetch(server.url.replace('https:', 'http:') + '/healthz')).rejects.toThrow();
    } finally {
      pki.remove();
    }
  });

  it.runIf(hasOpenssl())("the container's health check (bin/healthcheck.js) probes /healthz over HTTP, or HTTPS with the certificate set", async () => {
    // Run asynchronously: the server answering it lives in this process's event loop.
    const probe = (env: Record<string, string>) =>
      new Promise<number | null>((resolve) => spawn(process.execPath, ['bin/healthcheck.js'], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: 'ignore' }).on('exit', (code) => resolve(code)));
    const url = await start();
    const port = new URL(url).port;
    expect(await probe({ SLUICE_HTTP_PORT: port })).toBe(0);
    expect(await probe({ SLUICE_HTTP_PORT: port, SLUICE_HTTP_HOST: '127.0.0.1' })).toBe(0);
    expect(await probe({ SLUICE_HTTP_PORT: port, SLUICE_HTTP_HOST: '127.0.0.2' })).toBe(1); // not where it listens
    expect(await probe({ SLUICE_HTTP_PORT: port, SLUICE_HTTP_TLS_CERT: '/etc/sluice/cert.pem' })).toBe(1);
    await server!.close();
    server = undefined;
    expect(await probe({ SLUICE_HTTP_PORT: port })).toBe(1);
    const pki = makeTestPki('sluice-probe-');
    try {
      pki.ca('ca');
      pki.leaf('server', { ca: 'ca', commonName: 'sluice.example', dns: ['sluice.example'] });
      server = await startHttpServer({ host: '127.0.0.1', port: 0, statuses: () => current, readyLagSeconds: 5, secrets: [], tls: { cert: pki.read('server.crt'), key: pki.read('server.key') } });
      const securePort = new URL(server.url).port;
      expect(await probe({ SLUICE_HTTP_PORT: securePort, SLUICE_HTTP_TLS_CERT: pki.file('server.crt') })).toBe(0);
      expect(await probe({ SLUICE_HTTP_PORT: securePort })).toBe(1);
    } finally {
      pki.remove();
    }
  });

  it('never lets a planted secret out of /status, /metrics or /readyz', async () => {
    const metrics = new SluiceMetrics();
    metrics.recordError('books', `AUTH_${SECRET}`);
    const url = await start({ metrics });
    const lastError = { code: `E_${SECRET}`, message: `login failed for postgres://app:${SECRET}@db/app (${encodeURIComponent(SECRET)})`, at: '2024-01-01T00:00:00Z' };
    current = [status(`idx-${SECRET}`, { phase: 'waiting', lastError })];
    for (const path of ['/status', '/metrics', '/readyz', `/nope/${encodeURIComponent(SECRET)}`]) {
      const text = await (await fetch(`${url}${path}`)).text();
      expect(text, path).not.toContain(SECRET);
      expect(text, path).not.toContain(encodeURIComponent(SECRET));
      expect(text, path).toContain('***');
    }
    const body = (await (await fetch(`${url}/status`)).json()) as { indexes: IndexStatus[] };
    expect(body.indexes[0]?.lastError?.message).toBe('login failed for postgres://app:***@db/app (***)');
  });

  it('answers 404 for other paths and 405 with Allow for other methods', async () => {
    const url = await start();
    const notFound = await fetch(`${url}/nope`);
    expect(notFound.status).toBe(404);
    expect(await notFound.json()).toMatchObject({ error: 'not found', path: '/nope' });
    expect((await fetch(`${url}/`)).status).toBe(404);

    const notAllowed = await fetch(`${url}/metrics`, { method: 'POST', body: 'x' });
    expect(notAllowed.status).toBe(405);
    expect(notAllowed.headers.get('allow')).toBe('GET, HEAD');
    expect(await notAllowed.json()).toMatchObject({ error: 'method not allowed', method: 'POST' });
    expect((await fetch(`${url}/healthz`, { method: 'DELETE' })).status).toBe(405);

    const head = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
  });

  it('rejects when the port is taken, and close() is idempotent', async () => {
    const url = await start();
    const port = Number(new URL(url).port);
    await expect(
      startHttpServer({ host: '127.0.0.1', port, statuses: () => [], readyLagSeconds: 1, secrets: [] }),
    ).rejects.toThrow(/EADDRINUSE/);
    await server?.close();
    await server?.close();
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('reads the version from package.json by default', async () => {
    server = await startHttpServer({ host: '127.0.0.1', port: 0, statuses: () => [], readyLagSeconds: 1, secrets: [] });
    const body = (await (await fetch(`${server.url}/status`)).json()) as { version: string };
    expect(body.version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('route', () => {
  const ctx = (statuses: IndexStatus[]): RouteContext => ({
    statuses: () => statuses,
    readyLagSeconds: 2,
    secrets: [SECRET],
    version: 'v',
    uptimeSeconds: () => 1,
  });

  it('answers 500 with a redacted body when reading the statuses throws', () => {
    const response = route('GET', '/status', {
      ...ctx([]),
      statuses: () => {
        throw new Error(`boom ${SECRET}`);
      },
    });
    expect(response.status).toBe(500);
    expect(response.body).not.toContain(SECRET);
    expect(JSON.parse(response.body)).toEqual({ error: 'internal error', message: 'boom ***' });
  });

  it('adds to /status the snapshot progress with its time left, and the throughput', () => {
    const t0 = Date.parse('2024-05-01T10:00:00.000Z');
    const books = status('books', { phase: 'snapshot' });
    startSnapshotProgress(books, 10_000, t0);
    recordSnapshotProgress(books, 2_500, t0 + 5_000);
    const streaming = status('shops', { phase: 'streaming', lagSeconds: 0.5 });
    const response = route('GET', '/status', { ...ctx([books, streaming]), now: () => t0 + 5_000 });
    expect(response.status).toBe(200);
    const body = JSON.parse(response.body) as { indexes: Record<string, unknown>[] };
    expect(body.indexes[0]).toEqual({
      ...books,
      snapshotTotalEstimate: 10_000,
      snapshotStartedAt: '2024-05-01T10:00:00.000Z',
      snapshotPercent: 25,
      snapshotEtaSeconds: 15,
      throughputDocsPerSecond: 500,
    });
    expect(body.indexes[1]).toMatchObject({ index: 'shops', phase: 'streaming', lagSeconds: 0.5 });
    expect(body.indexes[1]).not.toHaveProperty('snapshotEtaSeconds');
    const metrics = route('GET', '/metrics', ctx([books])).body;
    expect(metrics).toContain('sluice_snapshot_total_documents{index="books"} 10000\n');
    expect(metrics).toContain('sluice_snapshot_documents{index="books"} 2500\n');
  });

  it('tolerates a trailing slash and a query string', () => {
    expect(route('GET', '/healthz/?x=1', ctx([])).status).toBe(200);
  });

  it('counts no indexes as ready and reports each index not ready', () => {
    expect(notReadyIndexes([], 1)).toEqual([]);
    expect(
      notReadyIndexes([status('a', { phase: 'streaming', lagSeconds: Number.NaN }), status('b', { phase: 'starting' })], 1).map((n) => n.index),
    ).toEqual(['a', 'b']);
  });

  it('reports the lag of work received and not yet applied, which grows while a batch is held up', () => {
    const t0 = Date.parse('2026-11-24T12:00:00Z');
    // The last batch was applied 0.2 s after its commit; a transaction committed 30 s ago has waited since.
    const held = status('books', { phase: 'streaming', lagSeconds: 0.2, unappliedSince: new Date(t0 - 30_000).toISOString() });
    const at = (now: number) => ({ ...ctx([held]), readyLagSeconds: 5, now: () => now });
    expect(route('GET', '/readyz', at(t0 - 29_000)).status).toBe(200);
    const readyz = route('GET', '/readyz', at(t0));
    expect(readyz.status).toBe(503);
    expect(JSON.parse(readyz.body).notReady).toEqual([{ index: 'books', phase: 'streaming', lagSeconds: 30, reason: 'lag 30s exceeds 5s' }]);
    expect((JSON.parse(route('GET', '/status', at(t0)).body) as { indexes: Array<{ lagSeconds: number }> }).indexes[0]!.lagSeconds).toBe(30);
    // Nothing pending: the last batch's lag. A stream that has applied nothing yet (just restarted) and holds work
    // received 30 s ago is 30 s behind too.
    expect(route('GET', '/readyz', { ...ctx([status('books', { phase: 'streaming', lagSeconds: 0.2 })]), readyLagSeconds: 5 }).status).toBe(200);
    expect(notReadyIndexes([status('books', { phase: 'streaming', unappliedSince: new Date(t0 - 30_000).toISOString() })], 5, t0).map((n) => n.lagSeconds)).toEqual([30]);
    expect(notReadyIndexes([status('books', { phase: 'streaming' })], 5, t0)).toEqual([]);
  });

  it('counts an index another process owns (standby) as ready, so a rolling update can hand it over', () => {
    expect(notReadyIndexes([status('a', { phase: 'standby', owner: 'host:1:abc' })], 1)).toEqual([]);
    const both = ctx([status('a', { phase: 'standby', owner: 'host:1:abc' }), status('b', { phase: 'snapshot' })]);
    expect(route('GET', '/readyz', both).status).toBe(503);
    expect(route('GET', '/readyz', ctx([status('a', { phase: 'standby', owner: 'host:1:abc' })])).status).toBe(200);
  });
});
