import { describe, expect, it } from 'vitest';
import { parseEnvironment } from '../../../src/config/env.js';
import { collectSecrets } from '../../../src/config/redact.js';
import { hasOpenssl, makeTestPki } from '../../helpers/pki.js';

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

function readerOf(files: Record<string, string>): (path: string) => string {
  return (path) => {
    const contents = files[path];
    if (contents === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return contents;
  };
}
const parse = (env: Record<string, string>, files: Record<string, string> = {}) =>
  parseEnvironment({ PG_USER: 'app', ...env }, {}, { readFile: readerOf(files) });

describe('parseEnvironment: engine URL and auth', () => {
  it('builds the URL from scheme, host and port', () => {
    const config = parse({ ELASTICSEARCH_SCHEME: 'https', ELASTICSEARCH_HOST: 'es.internal', ELASTICSEARCH_PORT: '9243' }).config;
    expect(config?.engine.url).toBe('https://es.internal:9243');
    expect(parse({ ELASTICSEARCH_HOST: 'http://es:9200' }).problems.map((p) => p.location)).toEqual(['ELASTICSEARCH_HOST']);
  });

  it('moves credentials out of ELASTICSEARCH_URL into basic auth', () => {
    const result = parse({ ELASTICSEARCH_URL: 'https://elastic:p%40ss%3Aword@es.example.com:9200/', ELASTICSEARCH_HOST: 'x' });
    expect(result.config?.engine.url).toBe('https://es.example.com:9200');
    expect(result.config?.engine.auth).toEqual({ kind: 'basic', username: 'elastic', password: 'p@ss:word' });
    expect(result.problems).toEqual([
      { location: 'ELASTICSEARCH_HOST', severity: 'warning', message: expect.stringContaining('ELASTICSEARCH_URL') },
    ]);
    expect(parse({ ELASTICSEARCH_URL: 'https://es.example.com/prefix/' }).config?.engine).toMatchObject({
      url: 'https://es.example.com/prefix',
      auth: { kind: 'none' },
    });
    expect(parse({ ELASTICSEARCH_URL: 'ftp://es' }).problems.map((p) => p.location)).toEqual(['ELASTICSEARCH_URL']);
  });

  it('takes the part the URL lacks from ELASTICSEARCH_USER or ELASTICSEARCH_PASSWORD, keeping the secret out of the URL', () => {
    const userOnly = parse({ ELASTICSEARCH_URL: 'https://elastic@es:9200', ELASTICSEARCH_PASSWORD: 'pw', ELASTICSEARCH_USER: 'other' });
    expect(userOnly.config?.engine.auth).toEqual({ kind: 'basic', username: 'elastic', password: 'pw' });
    expect(userOnly.problems).toEqual([{ location: 'ELASTICSEARCH_USER', severity: 'warning', message: 'ignored: ELASTICSEARCH_URL gives it' }]);
    const passwordOnly = parse({ ELASTICSEARCH_URL: 'https://:pw@es:9200', ELASTICSEARCH_USER: 'elastic' });
    expect(passwordOnly.config?.engine.auth).toEqual({ kind: 'basic', username: 'elastic', password: 'pw' });
    expect(passwordOnly.problems).toEqual([]);
    const complete = parse({ ELASTICSEARCH_URL: 'https://a:b@es:9200', ELASTICSEARCH_USER: 'c', ELASTICSEARCH_PASSWORD: 'd' });
    expect(complete.config?.engine.auth).toEqual({ kind: 'basic', username: 'a', password: 'b' });
    expect(complete.problems.map((p) => p.location)).toEqual(['ELASTICSEARCH_USER']);
    // Still without a password: a complete credential elsewhere wins, and the gap is named.
    const gap = parse({ ELASTICSEARCH_URL: 'https://elastic@es:9200', ELASTICSEARCH_HTTP_AUTH: 'elastic,realpw' });
    expect(gap.config?.engine.auth).toEqual({ kind: 'basic', username: 'elastic', password: 'realpw' });
    expect(gap.problems).toEqual([
      { location: 'ELASTICSEARCH_URL', severity: 'warning', message: expect.stringContaining('lack a password (ELASTICSEARCH_PASSWORD)') },
      { location: 'ELASTICSEARCH_URL', severity: 'warning', message: expect.stringContaining('ignored: ELASTICSEARCH_HTTP_AUTH already gives') },
    ]);
  });

  it('reads ELASTICSEARCH_USER/PASSWORD, HTTP_AUTH and BASIC_AUTH as basic auth', () => {
    expect(parse({ ELASTICSEARCH_USER: 'u', ELASTICSEARCH_PASSWORD: 'p' }).config?.engine.auth).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(parse({ ELASTICSEARCH_HTTP_AUTH: 'u,p,with,commas' }).config?.engine.auth).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p,with,commas',
    });
    expect(parse({ ELASTICSEARCH_BASIC_AUTH: 'u:p' }).config?.engine.auth).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    const encoded = Buffer.from('u:p').toString('base64');
    expect(parse({ ELASTICSEARCH_BASIC_AUTH: encoded }).config?.engine.auth).toEqual({ kind: 'basic', username: 'u', password: 'p' });
    expect(parse({ ELASTICSEARCH_HTTP_AUTH: 'nocomma' }).problems.map((p) => p.location)).toEqual(['ELASTICSEARCH_HTTP_AUTH']);
    expect(parse({ ELASTICSEARCH_USER: 'u' }).problems).toEqual([
      { location: 'ELASTICSEARCH_USER', severity: 'warning', message: 'ignored: ELASTICSEARCH_PASSWORD is not set' },
    ]);
  });

  it('reads API keys with an id, or already encoded, and bearer tokens', () => {
    expect(parse({ ELASTICSEARCH_API_KEY_ID: 'kid', ELASTICSEARCH_API_KEY: 'kval' }).config?.engine.auth).toEqual({
      kind: 'apiKey',
      id: 'kid',
      key: 'kval',
    });
    expect(parse({ ELASTICSEARCH_API_KEY: 'a2lkOmt2YWw=' }).config?.engine.auth).toEqual({ kind: 'apiKey', key: 'a2lkOmt2YWw=' });
    expect(parse({ ELASTICSEARCH_BEARER_AUTH: 'tok' }).config?.engine.auth).toEqual({ kind: 'bearer', token: 'tok' });
  });

  it('prefers the API key over other methods and warns about the rest', () => {
    const result = parse({ ELASTICSEARCH_API_KEY: 'k', ELASTICSEARCH_URL: 'http://u:p@es:9200' });
    expect(result.config?.engine.auth).toEqual({ kind: 'apiKey', key: 'k' });
    expect(result.problems).toEqual([
      { location: 'ELASTICSEARCH_URL', severity: 'warning', message: expect.stringContaining('ELASTICSEARCH_API_KEY') },
      { location: 'ELASTICSEARCH_API_KEY', severity: 'warning', message: expect.stringContaining('sent in clear text') },
    ]);
  });

  it('reports an engine host that makes no URL as a problem, with credentials set too (no crash)', () => {
    for (const host of ['[::1', 'exa^mple', 'a<b']) {
      const result = parse({ ELASTICSEARCH_HOST: host, ELASTICSEARCH_USER: 'u', ELASTICSEARCH_PASSWORD: 'secret-pw' });
      expect(result.config, host).toBeUndefined();
      expect(result.problems.some((p) => p.location === 'ELASTICSEARCH_HOST' && p.severity === 'error'), host).toBe(true);
    }
  });

  it('warns when credentials go over plain http to another machine, or the certificate goes unchecked', () => {
    const clear = parse({ ELASTICSEARCH_URL: 'http://elastic:secret-pw@es.internal:9200' });
    expect(clear.problems).toEqual([{ location: 'ELASTICSEARCH_URL', severity: 'warning', message: expect.stringContaining('sent in clear text: the engine URL uses http') }]);
    expect(JSON.stringify(clear.problems)).not.toContain('secret-pw');
    // No credentials, or this machine only: nothing to say (the seed's compose stack runs without security).
    for (const env of [{ ELASTICSEARCH_URL: 'http://es.internal:9200' }, { ELASTICSEARCH_URL: 'http://127.0.0.1:9200', ELASTICSEARCH_API_KEY: 'k' }, { ELASTICSEARCH_URL: 'http://localhost:9200', ELASTICSEARCH_BEARER_AUTH: 't' }, { ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_API_KEY: 'k' }] as Array<Record<string, string>>) {
      expect(parse(env).problems, JSON.stringify(env)).toEqual([]);
    }
    const unchecked = parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_VERIFY_CERTS: 'false' });
    expect(unchecked.problems).toEqual([{ location: 'ELASTICSEARCH_VERIFY_CERTS', severity: 'warning', message: expect.stringContaining("the engine's certificate is not checked") }]);
    // A pinned certificate replaces the CA check.
    const pinned = parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_VERIFY_CERTS: 'false', ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: 'AB'.repeat(32) });
    expect(pinned.problems).toEqual([]);
  });
});

describe('parseEnvironment: engine TLS, flavour and tuning', () => {
  it('reads the CA bundle and client certificate through the injected reader', () => {
    const engine = parse(
      { ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_CA_CERTS: 'ca.pem', ELASTICSEARCH_CLIENT_CERT: 'c.pem', ELASTICSEARCH_CLIENT_KEY: 'k.pem', ELASTICSEARCH_VERIFY_CERTS: 'false' },
      { 'ca.pem': CA_PEM, 'c.pem': CA_PEM, 'k.pem': KEY_PEM },
    ).config?.engine;
    expect(engine?.tls).toEqual({ ca: CA_PEM, cert: CA_PEM, key: KEY_PEM, rejectUnauthorized: false });
  });

  it('names the variable of a missing file and requires certificate and key together', () => {
    expect(parse({ ELASTICSEARCH_SCHEME: 'https', ELASTICSEARCH_CA_CERTS: '/missing/ca.pem' }).problems).toEqual([
      { location: 'ELASTICSEARCH_CA_CERTS', severity: 'error', message: 'cannot read file "/missing/ca.pem": no such file' },
    ]);
    expect(parse({ ELASTICSEARCH_CLIENT_CERT: 'c.pem' }, { 'c.pem': CA_PEM }).problems).toEqual([
      { location: 'ELASTICSEARCH_CLIENT_KEY', severity: 'error', message: expect.stringContaining('ELASTICSEARCH_CLIENT_CERT is set') },
      { location: 'ELASTICSEARCH_CLIENT_CERT', severity: 'warning', message: expect.stringContaining('http') },
    ]);
  });

  it('pins the certificate fingerprint of ELASTICSEARCH_SSL_ASSERT_FINGERPRINT, in either of its usual spellings', () => {
    const hex = 'ab'.repeat(32);
    const expected = { algorithm: 'sha256', value: Array(32).fill('AB').join(':') };
    for (const spelling of [hex, expected.value.toLowerCase(), expected.value]) {
      const result = parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: spelling });
      expect(result.config?.engine.tls).toEqual({ rejectUnauthorized: true, pinnedFingerprint: expected });
      expect(result.problems).toEqual([]);
    }
    expect(parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: 'cd'.repeat(20) }).config?.engine.tls.pinnedFingerprint)
      .toEqual({ algorithm: 'sha1', value: Array(20).fill('CD').join(':') });
    for (const bad of ['ab'.repeat(16), 'xyz', 'ab'.repeat(31)]) {
      const result = parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: bad });
      expect(result.config).toBeUndefined();
      expect(result.problems).toEqual([{ location: 'ELASTICSEARCH_SSL_ASSERT_FINGERPRINT', severity: 'error', message: expect.stringContaining('SHA-256') }]);
    }
    const withCa = parse({ ELASTICSEARCH_URL: 'https://es:9200', ELASTICSEARCH_CA_CERTS: 'ca.pem', ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: hex }, { 'ca.pem': CA_PEM });
    expect(withCa.problems).toEqual([{ location: 'ELASTICSEARCH_SSL_ASSERT_FINGERPRINT', severity: 'warning', message: expect.stringContaining('replaces CA verification') }]);
  });

  it('rejects ELASTICSEARCH and OPENSEARCH both true, or both false', () => {
    const both = parse({ ELASTICSEARCH: 'true', OPENSEARCH: 'true' });
    expect(both.config).toBeUndefined();
    expect(both.problems).toEqual([{ location: 'OPENSEARCH', severity: 'error', message: expect.stringContaining('Cannot enable both') }]);
    expect(parse({ ELASTICSEARCH: 'false', OPENSEARCH: 'no' }).problems.map((p) => p.severity)).toEqual(['error']);
  });

  it('derives the flavour hint as PGSync does (one given → the other is its negation)', () => {
    expect(parse({}).config?.engine.flavorHint).toBeUndefined();
    expect(parse({ OPENSEARCH: 'true' }).config?.engine.flavorHint).toBe('opensearch');
    expect(parse({ ELASTICSEARCH: 'false' }).config?.engine.flavorHint).toBe('opensearch');
    expect(parse({ ELASTICSEARCH: 'true' }).config?.engine.flavorHint).toBe('elasticsearch');
  });

  it('maps PGSync tuning variables, with the seed batch size first and SLUICE_ names winning', () => {
    const engine = parse({
      ELASTICSEARCH_TIMEOUT: '2.5',
      ELASTICSEARCH_HTTP_COMPRESS: 'false',
      ELASTICSEARCH_CHUNK_SIZE: '500',
      ELASTICSEARCH_MAX_CHUNK_BYTES: '104857600',
      ELASTICSEARCH_THREAD_COUNT: '4',
      ELASTICSEARCH_INITIAL_BACKOFF: '2',
      ELASTICSEARCH_MAX_BACKOFF: '600',
    }).config?.engine;
    expect(engine).toMatchObject({
      requestTimeoutMs: 2500,
      compress: false,
      bulkMaxActions: 500,
      bulkMaxBytes: 104_857_600,
      bulkConcurrency: 4,
      retryInitialMs: 2000,
      retryMaxMs: 600_000,
    });
    const result = parse({ PGSYNC_BATCH_SIZE: '250', ELASTICSEARCH_CHUNK_SIZE: '500', SLUICE_ENGINE_TIMEOUT_MS: '45000', ELASTICSEARCH_TIMEOUT: '5', SLUICE_BULK_CONCURRENCY: '3', ELASTICSEARCH_THREAD_COUNT: '4' });
    expect(result.config?.engine).toMatchObject({ bulkMaxActions: 250, requestTimeoutMs: 45_000, bulkConcurrency: 3 });
    expect(result.problems.map((p) => [p.location, p.severity]).sort()).toEqual([
      ['ELASTICSEARCH_CHUNK_SIZE', 'warning'],
      ['ELASTICSEARCH_THREAD_COUNT', 'warning'],
      ['ELASTICSEARCH_TIMEOUT', 'warning'],
    ]);
  });
});

describe("parseEnvironment: the status server's token and HTTPS", () => {
  it.runIf(hasOpenssl())('reads SLUICE_HTTP_TOKEN (a secret) and the certificate and key, both or neither, and checks they go together', () => {
    const pki = makeTestPki('sluice-env-http-');
    pki.ca('ca');
    pki.leaf('one', { ca: 'ca', commonName: 'one.example' });
    pki.leaf('two', { ca: 'ca', commonName: 'two.example' });
    const files = { 'c.pem': pki.read('one.crt'), 'k.pem': pki.read('one.key'), 'k2.pem': pki.read('two.key'), 'bad.pem': '-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n' };
    pki.remove();
    const token = 'tok-0123456789abcdef';
    const result = parse({ SLUICE_HTTP_TOKEN: token, SLUICE_HTTP_TLS_CERT: 'c.pem', SLUICE_HTTP_TLS_KEY: 'k.pem' }, files);
    expect(result.problems).toEqual([]);
    expect(result.config?.http).toMatchObject({ token, tls: { cert: files['c.pem'], key: files['k.pem'] } });
    expect(collectSecrets(result.config!)).toEqual(expect.arrayContaining([token, files['k.pem']]));
    // The key of another certificate, or a certificate that is not PEM inside: refused naming the variables.
    for (const [cert, key] of [['c.pem', 'k2.pem'], ['bad.pem', 'k.pem']]) {
      const refused = parse({ SLUICE_HTTP_TLS_CERT: cert!, SLUICE_HTTP_TLS_KEY: key! }, files);
      expect(refused.config, `${cert} ${key}`).toBeUndefined();
      expect(refused.problems).toEqual([{ location: 'SLUICE_HTTP_TLS_KEY', severity: 'error', message: expect.stringContaining('cannot serve HTTPS with SLUICE_HTTP_TLS_CERT') }]);
      expect(JSON.stringify(refused.problems)).not.toContain('PRIVATE KEY');
    }
    expect(parse({}).config?.http).not.toHaveProperty('token');
    expect(parse({}).config?.http).not.toHaveProperty('tls');
    expect(parse({ SLUICE_HTTP_TLS_CERT: 'c.pem' }, { 'c.pem': CA_PEM }).problems).toEqual([
      { location: 'SLUICE_HTTP_TLS_KEY', severity: 'error', message: expect.stringContaining('SLUICE_HTTP_TLS_CERT is set') },
    ]);
    const short = parse({ SLUICE_HTTP_TOKEN: 'short-pw' });
    expect(short.problems).toEqual([{ location: 'SLUICE_HTTP_TOKEN', severity: 'warning', message: expect.stringContaining('shorter than 16 characters') }]);
    expect(JSON.stringify(short.problems)).not.toContain('short-pw');
    for (const bad of ['   ', 'two words here 0123456789']) {
      const refused = parse({ SLUICE_HTTP_TOKEN: bad });
      expect(refused.config, JSON.stringify(bad)).toBeUndefined();
      expect(refused.problems.map((p) => p.location)).toEqual(['SLUICE_HTTP_TOKEN']);
    }
  });
});
