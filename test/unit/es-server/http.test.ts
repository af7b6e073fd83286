import { gunzipSync, gzipSync } from 'node:zlib';
import { Client, errors } from '@elastic/elasticsearch';
import { Client as OsClient } from '@opensearch-project/opensearch';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../../es-server/index.js';
import { bulk, call, ndjson } from './helpers.js';

// Self-signed certificate for 127.0.0.1 (EC P-256, valid for 100 years), only used to serve https in this test.
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgXD8Jf0vVh09AmJ1W
LwDS5DC+TULuAYvdAkFtDxoyPnShRANCAAQJkd7KzcDxvmvflEHlQSNYHb6Tbpmq
9gDmLszfD3w3gBW1xub4kTUK9CFER/VcUI5y9ErN/HsQH84rCToEn192
-----END PRIVATE KEY-----`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBkTCCATagAwIBAgIULspja/MHNUm4vklFG9ZeNE6IgIAwCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJMTI3LjAuMC4xMCAXDTI2MTEyMzIzMzYwMVoYDzIxMjYxMDMw
MjMzNjAxWjAUMRIwEAYDVQQDDAkxMjcuMC4wLjEwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAAQJkd7KzcDxvmvflEHlQSNYHb6Tbpmq9gDmLszfD3w3gBW1xub4kTUK
9CFER/VcUI5y9ErN/HsQH84rCToEn192o2QwYjAdBgNVHQ4EFgQUw+tsFphmVSA3
OC2+AuJ3buE9f54wHwYDVR0jBBgwFoAUw+tsFphmVSA3OC2+AuJ3buE9f54wDwYD
VR0TAQH/BAUwAwEB/zAPBgNVHREECDAGhwR/AAABMAoGCCqGSM49BAMCA0kAMEYC
IQCHbEVSBsyewDUbeWS/uiKS2HgVp7prQLmnIzbNEnPwPwIhAPjjnZaD8etg/OAC
A1Cvii1jOCIsIeRC+qhOat7pnWRi
-----END CERTIFICATE-----`;

describe('authentication', () => {
  const password = 'pa55-word';
  const apiKey = Buffer.from('key-id:key-secret').toString('base64');
  let basic: TestEngine;
  let keyed: TestEngine;
  let os: TestEngine;
  beforeAll(async () => {
    basic = await startTestEngine({ flavor: 'es8', auth: { username: 'sluice', password } });
    keyed = await startTestEngine({ flavor: 'es7', auth: { apiKey } });
    os = await startTestEngine({ flavor: 'opensearch2', auth: { username: 'admin', password } });
  });
  afterAll(async () => {
    await Promise.all([basic?.close(), keyed?.close(), os?.close()]);
  });

  it('answers 401 security_exception with WWW-Authenticate challenges when credentials are missing or wrong', async () => {
    const missing = await call(basic.url, 'GET', '/_cluster/health');
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toEqual(['Basic realm="security" charset="UTF-8"', 'Bearer realm="security"', 'ApiKey']);
    expect(missing.json).toMatchObject({
      status: 401,
      error: { type: 'security_exception', reason: 'missing authentication credentials for REST request [/_cluster/health]', root_cause: [{ type: 'security_exception' }] },
    });
    const wrong = await call(basic.url, 'GET', '/', undefined, { authorization: `Basic ${Buffer.from('sluice:nope').toString('base64')}` });
    expect(wrong.json.error.reason).toBe('unable to authenticate user [sluice] for REST request [/]');
    expect(wrong.text).not.toContain('nope');
    // The product header goes on every answer but a refused login's (elastic/elasticsearch#73434).
    expect(missing.headers['x-elastic-product']).toBeUndefined();
    expect(wrong.headers['x-elastic-product']).toBeUndefined();
  });

  it('accepts the configured basic credentials and API key through the official client', async () => {
    const client = new Client({ node: basic.url, auth: { username: 'sluice', password } });
    expect((await client.info()).version.number).toBe('8.15.0');
    await client.close();
    const bad = new Client({ node: basic.url, auth: { username: 'sluice', password: 'x' } });
    const err = await bad.info().catch((e: unknown) => e);
    await bad.close();
    expect((err as errors.ResponseError).meta.statusCode).toBe(401);
    const ok = await call(keyed.url, 'GET', '/', undefined, { authorization: `ApiKey ${apiKey}` });
    expect(ok.json.version.number).toBe('7.17.15');
    const denied = await call(keyed.url, 'GET', '/', undefined, { authorization: `ApiKey ${Buffer.from('other:key').toString('base64')}` });
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toEqual(['Basic realm="security" charset="UTF-8"', 'ApiKey']);
  });

  it('answers OpenSearch-style plain 401s', async () => {
    const res = await call(os.url, 'GET', '/');
    expect(res).toMatchObject({ status: 401, text: 'Unauthorized' });
    expect(res.headers['www-authenticate']).toBe('Basic realm="OpenSearch Security"');
    const client = new OsClient({ node: os.url, auth: { username: 'admin', password } });
    expect((await client.info()).body.version.distribution).toBe('opensearch');
    await client.close();
  });
});

describe('HTTP behaviour', () => {
  let engine: TestEngine;
  beforeAll(async () => {
    engine = await startTestEngine({ flavor: 'es8' });
  });
  afterAll(async () => {
    await engine?.close();
  });

  it('accepts gzip request bodies', async () => {
    const body = gzipSync(ndjson({ index: { _index: 'gz', _id: '1' } }, { zipped: true }));
    const res = await call(engine.url, 'POST', '/_bulk', body, { 'content-type': 'application/x-ndjson', 'content-encoding': 'gzip' });
    expect(res.json.errors).toBe(false);
    expect(engine.store.document('gz', '1')).toEqual({ zipped: true });
    expect(engine.requests.at(-1)?.bodyBytes).toBe(body.length);
    const client = new Client({ node: engine.url, compression: true });
    await client.index({ index: 'gz', id: '2', document: { via: 'client' } });
    await client.close();
    expect(engine.store.document('gz', '2')).toEqual({ via: 'client' });
  });

  it('gzips answers for clients that accept gzip, as http.compression does', async () => {
    const zipped = await request(`${engine.url}/`, { headers: { 'accept-encoding': 'gzip, deflate' } });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers['vary']).toBe('accept-encoding');
    const raw = Buffer.from(await zipped.body.arrayBuffer());
    expect(Number(zipped.headers['content-length'])).toBe(raw.length);
    expect(JSON.parse(gunzipSync(raw).toString()).version.number).toBe('8.15.0');
    for (const accept of [undefined, 'identity', 'gzip;q=0', 'br']) {
      const plain = await request(`${engine.url}/`, { headers: accept === undefined ? {} : { 'accept-encoding': accept } });
      expect(plain.headers['content-encoding'], accept).toBeUndefined();
      expect(JSON.parse(await plain.body.text()).version.number).toBe('8.15.0');
    }
    // Errors too; the official client, which asks for gzip with compression on, reads them as usual.
    const missing = await request(`${engine.url}/nope/_count`, { headers: { 'accept-encoding': 'gzip' } });
    expect(missing.statusCode).toBe(404);
    expect(JSON.parse(gunzipSync(Buffer.from(await missing.body.arrayBuffer())).toString()).error.type).toBe('index_not_found_exception');
    const client = new Client({ node: engine.url, compression: true });
    const err = await client.count({ index: 'nope' }).catch((e: unknown) => e);
    await client.close();
    expect((err as errors.ResponseError).meta.statusCode).toBe(404);
  });

  it('checks Content-Type and compatible-with like ES 8', async () => {
    const plain = await call(engine.url, 'POST', '/_search', '{}', { 'content-type': 'text/plain' });
    expect(plain.json).toEqual({ error: 'Content-Type header [text/plain] is not supported', status: 406 });
    const res = await request(`${engine.url}/_search`, { method: 'POST', body: '{}' });
    expect(res.statusCode).toBe(406);
    expect(await res.body.json()).toEqual({ error: 'Content-Type header is missing', status: 406 });
    const v7 = 'application/vnd.elasticsearch+json; compatible-with=7';
    expect((await call(engine.url, 'POST', '/_search', {}, { 'content-type': v7, accept: v7 })).status).toBe(200);
    const v9 = 'application/vnd.elasticsearch+json; compatible-with=9';
    const tooNew = await call(engine.url, 'POST', '/_search', {}, { 'content-type': v9, accept: v9 });
    expect(tooNew.json.error).toMatchObject({ type: 'media_type_header_exception', caused_by: { type: 'status_exception', reason: expect.stringContaining('Accept version must be either version 8 or 7, but found 9') } });
    const mixed = await call(engine.url, 'POST', '/_search', {}, { 'content-type': 'application/json', accept: 'application/vnd.elasticsearch+json; compatible-with=8' });
    expect(mixed.status).toBe(400);
    const nd = await call(engine.url, 'POST', '/_bulk', ndjson({ index: { _index: 'nd' } }, {}), { 'content-type': 'application/vnd.elasticsearch+x-ndjson; compatible-with=8', accept: 'application/vnd.elasticsearch+json; compatible-with=8' });
    expect(nd.json.errors).toBe(false);
    expect(nd.headers['content-type']).toBe('application/vnd.elasticsearch+json;compatible-with=8');
  });

  it('routes like ES: 405 with allowed methods, 400 for unknown paths and parameters, HEAD without body', async () => {
    const wrong = await call(engine.url, 'GET', '/logs/_bulk?refresh=true');
    expect(wrong.status).toBe(405);
    expect(wrong.json).toEqual({ error: 'Incorrect HTTP method for uri [/logs/_bulk?refresh=true] and method [GET], allowed: [POST, PUT]', status: 405 });
    expect(wrong.headers['allow']).toBe('POST,PUT');
    // Like ES's path trie, a method missing on `/_bulk` falls through to `/{index}`.
    expect((await call(engine.url, 'GET', '/_bulk')).json.error.type).toBe('index_not_found_exception');
    const unknown = await call(engine.url, 'GET', '/a/b/c/d');
    expect(unknown.json).toEqual({ error: 'no handler found for uri [/a/b/c/d] and method [GET]', status: 400 });
    const param = await call(engine.url, 'POST', '/_bulk?refreshh=true', ndjson({ index: { _index: 'p' } }, {}), { 'content-type': 'application/x-ndjson' });
    expect(param.json.error).toMatchObject({ type: 'illegal_argument_exception', reason: 'request [/_bulk] contains unrecognized parameter: [refreshh]' });
    await call(engine.url, 'PUT', '/head-me');
    const head = await call(engine.url, 'HEAD', '/head-me');
    expect(head).toMatchObject({ status: 200, text: '' });
    expect(head.headers['x-elastic-product']).toBe('Elasticsearch');
    expect((await call(engine.url, 'HEAD', '/nope')).status).toBe(404);
  });

  it('supports filter_path, pretty and echoes X-Opaque-Id', async () => {
    const res = await call(engine.url, 'GET', '/?filter_path=version.number,tagline&pretty', undefined, { 'x-opaque-id': 'trace-1' });
    expect(res.json).toEqual({ version: { number: '8.15.0' }, tagline: 'You Know, for Search' });
    expect(res.text).toContain('\n  "version"');
    expect(res.headers['x-opaque-id']).toBe('trace-1');
    const items = await bulk(engine.url, ndjson({ index: { _index: 'fp', _id: '1' } }, {}), '?filter_path=items.*.error,errors');
    expect(items.json).toEqual({ errors: false });
    // Error bodies are never filtered (AbstractRestChannel.newErrorBuilder): the reason stays readable.
    const refused = await bulk(engine.url, ndjson({ index: { _index: 'fp', _id: '' } }, {}), '?filter_path=items.*.error,errors');
    expect(refused.status).toBe(400);
    expect(refused.json.error.type).toBe('action_request_validation_exception');
  });

  it('serves https when given a key and certificate', async () => {
    const secure = await startTestEngine({ flavor: 'es8', tls: { key: TLS_KEY, cert: TLS_CERT } });
    const agent = new Agent({ connect: { ca: TLS_CERT } });
    try {
      expect(secure.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await request(`${secure.url}/`, { dispatcher: agent });
      expect(((await res.body.json()) as { version: { number: string } }).version.number).toBe('8.15.0');
    } finally {
      await agent.close();
      await secure.close();
    }
  });

  it('closes keep-alive connections on close()', async () => {
    const other = await startTestEngine();
    const agent = new Agent({ keepAliveTimeout: 60_000 });
    await (await request(`${other.url}/`, { dispatcher: agent })).body.text();
    const started = Date.now();
    await other.close();
    expect(Date.now() - started).toBeLessThan(1000);
    await agent.close();
  });
});
