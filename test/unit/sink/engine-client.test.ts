import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { EngineAuth } from '../../../src/config/config-types.js';
import { authHeader, EngineClient } from '../../../src/sink/elasticsearch/engine-client.js';
import { EngineTransportError } from '../../../src/sink/elasticsearch/es-errors.js';
import { engineConfig } from './helpers.js';
import type { Responder } from './scripted-server.js';
import { startScriptedServer } from './scripted-server.js';
import { makeTestPki } from '../../helpers/pki.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(respond: Responder, overrides: Parameters<typeof engineConfig>[1] = {}, path = '') {
  const server = await startScriptedServer(respond);
  const client = new EngineClient(engineConfig(server.url + path, overrides));
  cleanups.push(async () => {
    await client.close();
    await server.close();
  });
  return { server, client };
}

describe('authHeader', () => {
  it.each<[EngineAuth, string | undefined]>([
    [{ kind: 'none' }, undefined],
    [{ kind: 'basic', username: 'elastic', password: 'p:ä' }, `Basic ${Buffer.from('elastic:p:ä').toString('base64')}`],
    [{ kind: 'apiKey', id: 'id1', key: 'k1' }, `ApiKey ${Buffer.from('id1:k1').toString('base64')}`],
    [{ kind: 'apiKey', key: 'ZW5jb2RlZA==' }, 'ApiKey ZW5jb2RlZA=='],
    [{ kind: 'bearer', token: 't0k' }, 'Bearer t0k'],
  ])('%j', (auth, expected) => {
    expect(authHeader(auth)).toBe(expected);
  });
});

describe('EngineClient', () => {
  it('sends method, path under the base path, query, headers and body; parses JSON', async () => {
    const { server, client } = await setup(() => ({ status: 201, body: { acknowledged: true } }), { auth: { kind: 'bearer', token: 'secret-token' } }, '/es/');
    const res = await client.request('PUT', '/books', { body: '{"a":1}', query: { wait_for_active_shards: 1, skip: undefined } });
    expect(res.status).toBe(201);
    expect(res.json()).toEqual({ acknowledged: true });
    const req = server.requests[0]!;
    expect(req.method).toBe('PUT');
    expect(req.url).toBe('/es/books?wait_for_active_shards=1');
    expect(req.headers['authorization']).toBe('Bearer secret-token');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.body).toBe('{"a":1}');
  });

  it('returns HTTP errors as responses and reports non-JSON bodies clearly', async () => {
    const { client } = await setup(() => ({ status: 502, body: '<html>bad gateway</html>' }));
    const res = await client.request('GET', '/');
    expect(res.status).toBe(502);
    expect(() => res.json()).toThrow(/not JSON/);
  });

  it('gzips request bodies when compress is set', async () => {
    const { server, client } = await setup(() => ({ body: {} }), { compress: true });
    const body = '{"index":{}}\n' + '{"text":"aaaaaaaaaa"}\n'.repeat(100);
    await client.request('POST', '/_bulk', { body: [Buffer.from(body)], contentType: 'application/x-ndjson' });
    const req = server.requests[0]!;
    expect(req.headers['content-encoding']).toBe('gzip');
    expect(req.headers['content-type']).toBe('application/x-ndjson');
    expect(req.body).toBe(body);
    expect(req.rawBytes).toBeLessThan(Buffer.byteLength(body) / 4);
  });

  it('asks for and gunzips compressed responses when compress is set', async () => {
    const { server, client } = await setup(() => ({ body: gzipSync('{"took":1,"errors":false,"items":[]}'), headers: { 'content-encoding': 'gzip' } }), {
      compress: true,
    });
    const res = await client.request('GET', '/');
    expect(server.requests[0]!.headers['accept-encoding']).toBe('gzip');
    expect(res.json()).toEqual({ took: 1, errors: false, items: [] });
    expect(res.head(12)).toBe('{"took":1,"e');
  });

  it('does not ask for a gzipped answer when told not to (bulk answers), while still gzipping the request', async () => {
    const { server, client } = await setup(() => ({ body: { took: 1, errors: false, items: [] } }), { compress: true });
    const body = '{"index":{}}\n{"a":1}\n';
    const res = await client.request('POST', '/_bulk', { body, contentType: 'application/x-ndjson', acceptGzip: false });
    expect(server.requests[0]!.headers['accept-encoding']).toBeUndefined();
    expect(server.requests[0]!.headers['content-encoding']).toBe('gzip');
    expect(server.requests[0]!.body).toBe(body);
    expect(res.head(1000)).toBe(res.body);
  });

  it('times out with a retryable EngineTransportError', async () => {
    const { client } = await setup(() => ({ delayMs: 500, body: {} }), { requestTimeoutMs: 50 });
    const err = await client.request('GET', '/').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineTransportError);
    expect(err).toMatchObject({ code: 'SNK_CONNECT', retryable: true });
    expect((err as Error).message).toMatch(/timed out after 50 ms/);
  });

  it('maps a refused connection and a dropped socket without leaking credentials', async () => {
    const { server, client } = await setup(() => ({ drop: true }), { auth: { kind: 'basic', username: 'u', password: 'hunter2-secret' } });
    const dropped = (await client.request('GET', '/').catch((e: unknown) => e)) as EngineTransportError;
    expect(dropped).toBeInstanceOf(EngineTransportError);
    expect(dropped.retryable).toBe(true);
    await server.close();
    const refused = (await client.request('GET', '/').catch((e: unknown) => e)) as EngineTransportError;
    expect(refused.transportCode).toBe('ECONNREFUSED');
    expect(refused.retryable).toBe(true);
    for (const e of [dropped, refused]) {
      const text = `${e.message} ${JSON.stringify(e.details)}`;
      expect(text).not.toContain('hunter2-secret');
      expect(text).not.toContain(Buffer.from('u:hunter2-secret').toString('base64'));
    }
  });
});

const hasOpenssl = (() => {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe.runIf(hasOpenssl)('EngineClient over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-tls-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  function makeCert(): { cert: string; key: string } {
    if (!existsSync(join(dir, 'cert.pem'))) {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ], { stdio: 'ignore' });
    }
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  }

  async function tlsServer(requireClientCert: boolean) {
    const { cert, key } = makeCert();
    const server = createServer({ cert, key, ca: cert, requestCert: requireClientCert, rejectUnauthorized: requireClientCert }, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
    return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, cert, key };
  }

  it('verifies the server with the configured CA, and refuses an unknown one (not retryable)', async () => {
    const { url, cert } = await tlsServer(false);
    const trusted = new EngineClient(engineConfig(url, { tls: { rejectUnauthorized: true, ca: cert } }));
    const untrusted = new EngineClient(engineConfig(url));
    cleanups.push(() => trusted.close(), () => untrusted.close());
    expect((await trusted.request('GET', '/')).json()).toEqual({ ok: true });
    const err = await untrusted.request('GET', '/').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SNK_CONNECT', retryable: false });
  });

  it('skips verification when rejectUnauthorized is false and presents a client certificate', async () => {
    const { url, cert, key } = await tlsServer(true);
    const client = new EngineClient(engineConfig(url, { tls: { rejectUnauthorized: false, cert, key } }));
    cleanups.push(() => client.close());
    expect((await client.request('GET', '/')).status).toBe(200);
  });

  describe('with ELASTICSEARCH_SSL_ASSERT_FINGERPRINT', () => {
    const pki = makeTestPki('sluice-pin-');
    afterAll(() => pki.remove());
    pki.ca('ca');
    pki.leaf('server', { ca: 'ca', commonName: 'elasticsearch', dns: ['elasticsearch'] });
    const [ca, leaf] = [pki.read('ca.crt'), pki.read('server.crt')];
    const pin = (pem: string, algorithm: 'sha1' | 'sha256' = 'sha256') => {
      const cert = new X509Certificate(pem);
      return { algorithm, value: algorithm === 'sha256' ? cert.fingerprint256 : cert.fingerprint };
    };

    // The server sends its certificate and the CA, as Elasticsearch 8's self-configured HTTP layer does; its name
    // is not 127.0.0.1 and its CA is in no bundle, so only the pin can make it trusted.
    async function pinnedServer(options: { closeEach?: boolean } = {}) {
      let requests = 0;
      const server = createServer({ cert: leaf + ca, key: pki.read('server.key') }, (_req, res) => {
        requests += 1;
        res.writeHead(200, { 'content-type': 'application/json', ...(options.closeEach ? { connection: 'close' } : {}) });
        res.end('{"ok":true}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
      return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, requests: () => requests };
    }

    it("trusts a server presenting the pinned CA or its own pinned certificate, whatever its name", async () => {
      const { url } = await pinnedServer();
      for (const pinnedFingerprint of [pin(ca), pin(leaf), pin(ca, 'sha1')]) {
        const client = new EngineClient(engineConfig(url, { tls: { rejectUnauthorized: true, pinnedFingerprint } }));
        cleanups.push(() => client.close());
        expect((await client.request('GET', '/')).json()).toEqual({ ok: true });
      }
    });

    it('checks the pin again on every new connection (TLS sessions are not resumed, which would hide the certificate)', async () => {
      const { url, requests } = await pinnedServer({ closeEach: true });
      const client = new EngineClient(engineConfig(url, { tls: { rejectUnauthorized: true, pinnedFingerprint: pin(ca) } }));
      cleanups.push(() => client.close());
      // The server closes each connection after answering: every request connects, and could resume the first session.
      for (let i = 0; i < 3; i++) expect((await client.request('GET', '/')).status).toBe(200);
      expect(requests()).toBe(3);
    });

    it("refuses a forged chain: a certificate naming the pinned CA as issuer but signed by another key, sent with the CA's public certificate", async () => {
      // The forger's CA copies the real one's name and key identifier, so that the chain links up by name.
      const skid = execFileSync('openssl', ['x509', '-in', pki.file('ca.crt'), '-noout', '-ext', 'subjectKeyIdentifier'], { encoding: 'utf8' }).trim().split('\n').pop()!.trim();
      const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: 'ignore' });
      const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
      ssl('req', '-x509', ...key, '-keyout', 'forger.key', '-out', 'forger.crt', '-days', '2', '-subj', '/CN=sluice-ca',
        '-addext', `subjectKeyIdentifier=${skid}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign');
      writeFileSync(join(pki.dir, 'forged.ext'), 'subjectAltName=DNS:elasticsearch\nauthorityKeyIdentifier=keyid\n');
      ssl('req', ...key, '-keyout', 'forged.key', '-out', 'forged.csr', '-subj', '/CN=elasticsearch');
      ssl('x509', '-req', '-in', 'forged.csr', '-CA', 'forger.crt', '-CAkey', 'forger.key', '-CAcreateserial', '-out', 'forged.crt', '-days', '2', '-extfile', 'forged.ext');
      let requests = 0;
      const server = createServer({ cert: pki.read('forged.crt') + ca, key: pki.read('forged.key') }, (_req, res) => {
        requests += 1;
        res.end('{}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
      const client = new EngineClient(engineConfig(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, { tls: { rejectUnauthorized: true, pinnedFingerprint: pin(ca) } }));
      cleanups.push(() => client.close());
      const err = await client.request('GET', '/').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SNK_CONNECT', retryable: false, transportCode: 'ERR_TLS_CERT_FINGERPRINT_MISMATCH' });
      expect((err as Error).message).toContain('is not signed by the next certificate');
      expect(requests).toBe(0);
    });

    it('refuses any other certificate before sending a request, and does not retry', async () => {
      const { url, requests } = await pinnedServer();
      const other = makeTestPki('sluice-pin-other-');
      other.ca('other');
      const client = new EngineClient(
        engineConfig(url, { auth: { kind: 'basic', username: 'u', password: 'secret-pw' }, tls: { rejectUnauthorized: false, pinnedFingerprint: pin(other.read('other.crt')) } }),
      );
      other.remove();
      cleanups.push(() => client.close());
      const err = await client.request('GET', '/').catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'SNK_CONNECT', retryable: false, transportCode: 'ERR_TLS_CERT_FINGERPRINT_MISMATCH' });
      expect((err as Error).message).toContain(pin(ca).value);
      expect(requests()).toBe(0);
    });
  });
});
