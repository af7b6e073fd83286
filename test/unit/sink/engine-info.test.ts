import { afterEach, describe, expect, it } from 'vitest';
import { detectEngine } from '../../../src/sink/elasticsearch/engine-info.js';
import { EngineClient } from '../../../src/sink/elasticsearch/engine-client.js';
import { engineConfig } from './helpers.js';
import type { ScriptedResponse } from './scripted-server.js';
import { startScriptedServer } from './scripted-server.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function clientAnswering(answer: ScriptedResponse, password?: string) {
  const server = await startScriptedServer(() => answer);
  const auth = password === undefined ? { kind: 'none' as const } : { kind: 'basic' as const, username: 'elastic', password };
  const client = new EngineClient(engineConfig(server.url, { auth }));
  cleanups.push(async () => {
    await client.close();
    await server.close();
  });
  return client;
}

const esRoot = (number: string) => ({ name: 'n', cluster_name: 'c', version: { number, build_flavor: 'default' }, tagline: 'You Know, for Search' });
const product = { 'x-elastic-product': 'Elasticsearch' };

describe('detectEngine', () => {
  it.each([
    ['7.10.2', {}, 7],
    ['7.17.15', product, 7],
    ['8.15.0', product, 8],
    ['9.1.0', product, 9],
  ])('accepts Elasticsearch %s', async (number, headers, major) => {
    const client = await clientAnswering({ body: esRoot(number), headers });
    expect(await detectEngine(client)).toEqual({ flavor: 'elasticsearch', version: number, major });
  });

  it.each([['1.3.7', 1], ['2.11.1', 2], ['3.0.0', 3]])('accepts OpenSearch %s', async (number, major) => {
    const client = await clientAnswering({ body: { version: { distribution: 'opensearch', number }, tagline: 'The OpenSearch Project: https://opensearch.org/' } });
    expect(await detectEngine(client, 'elasticsearch')).toEqual({ flavor: 'opensearch', version: number, major });
  });

  it('requires x-elastic-product from Elasticsearch 7.14 on', async () => {
    const client = await clientAnswering({ body: esRoot('8.11.0') });
    await expect(detectEngine(client)).rejects.toMatchObject({ code: 'SNK_UNSUPPORTED', message: expect.stringContaining('not an Elasticsearch server') as unknown });
  });

  it('uses the OpenSearch hint for a server that does not name its distribution', async () => {
    const client = await clientAnswering({ body: { version: { number: '2.5.0' } } });
    expect(await detectEngine(client, 'opensearch')).toEqual({ flavor: 'opensearch', version: '2.5.0', major: 2 });
  });

  it.each([
    [{ body: esRoot('6.8.23') }, /Elasticsearch 6\.8\.23 is not supported/],
    [{ body: esRoot('7.9.3') }, /Elasticsearch 7\.9\.3 is not supported/],
    [{ body: esRoot('10.0.0'), headers: product }, /not supported/],
    [{ body: { version: { distribution: 'opensearch', number: '4.0.0' } } }, /OpenSearch 4\.0\.0 is not supported/],
    [{ body: { hello: 'world' } }, /does not look like Elasticsearch or OpenSearch/],
    [{ body: '<html>nginx</html>' }, /did not return JSON/],
  ])('refuses %j', async (answer, message) => {
    const client = await clientAnswering(answer);
    await expect(detectEngine(client)).rejects.toMatchObject({ code: 'SNK_UNSUPPORTED', message: expect.stringMatching(message) as unknown });
  });

  it.each([401, 403])('reports refused credentials on %i without the password', async (status) => {
    const client = await clientAnswering(
      { status, body: { error: { type: 'security_exception', reason: 'unable to authenticate user [elastic] for REST request [/]' }, status } },
      'S3cret-pa55',
    );
    const err = (await detectEngine(client).catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe('SNK_CONNECT');
    expect(err.message).toMatch(/credentials/);
    expect(err.message).not.toContain('S3cret-pa55');
  });

  it('reports other HTTP failures with the status; a booting engine or proxy (408/429/5xx) is worth waiting for', async () => {
    const booting = await clientAnswering({ status: 503, body: { error: { type: 'master_not_discovered_exception', reason: null } } });
    await expect(detectEngine(booting)).rejects.toMatchObject({ code: 'SNK_CONNECT', retryable: true, message: expect.stringContaining('HTTP 503') as unknown });
    const wrong = await clientAnswering({ status: 404, body: { error: { type: 'not_found', reason: 'no such path' } } });
    const err = (await detectEngine(wrong).catch((e: unknown) => e)) as { code: string; retryable?: boolean; message: string };
    expect(err).toMatchObject({ code: 'SNK_CONNECT', message: expect.stringContaining('HTTP 404') as unknown });
    expect(err.retryable).not.toBe(true);
  });
});
