// The search engine an integration test talks to: the project's test server, or a real cluster when
// ELASTICSEARCH_URL is set (then fault-injection tests do not run: they need the test server).
import { request } from 'undici';
import { startTestEngine, type EngineFlavor, type TestEngine, type TestEngineOptions } from '../es-server/index.js';

export const REAL_ENGINE_URL = process.env.ELASTICSEARCH_URL;

export interface EngineUnderTest {
  url: string;
  /** The in-process test server, absent against a real cluster. */
  server?: TestEngine;
  close(): Promise<void>;
}

export async function engineForTest(flavor: EngineFlavor = 'es8', options: TestEngineOptions = {}): Promise<EngineUnderTest> {
  if (REAL_ENGINE_URL) return { url: REAL_ENGINE_URL, close: async () => undefined };
  const server = await startTestEngine({ flavor, ...options });
  return { url: server.url, server, close: () => server.close() };
}

/** One JSON request to the engine: status and parsed body (undefined when empty). */
export async function engineCall(url: string, method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'HEAD', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await request(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, json: text ? JSON.parse(text) : undefined };
}

/** Every document of an index (refreshed first), by id, read through the search API. */
export async function allDocuments(url: string, index: string): Promise<Map<string, Record<string, unknown>>> {
  await engineCall(url, 'POST', `/${index}/_refresh`);
  const docs = new Map<string, Record<string, unknown>>();
  let page = await engineCall(url, 'POST', `/${index}/_search?scroll=1m`, { size: 1000, query: { match_all: {} } });
  while (page.status === 200 && page.json.hits.hits.length > 0) {
    for (const hit of page.json.hits.hits) docs.set(hit._id, hit._source);
    page = await engineCall(url, 'POST', '/_search/scroll', { scroll: '1m', scroll_id: page.json._scroll_id });
  }
  return docs;
}

export async function indexExists(url: string, index: string): Promise<boolean> {
  return (await engineCall(url, 'HEAD', `/${index}`)).status === 200;
}

export async function indexMapping(url: string, index: string): Promise<Record<string, unknown>> {
  const { json } = await engineCall(url, 'GET', `/${index}/_mapping`);
  return Object.values(json as Record<string, { mappings: Record<string, unknown> }>)[0]!.mappings;
}

/** Deletes an index, or every index behind an alias of that name (Sluice's generations). */
export async function deleteIndex(url: string, index: string): Promise<void> {
  const { status, json } = await engineCall(url, 'GET', `/${index}/_alias`);
  const concrete = status === 200 ? Object.keys(json as object) : [index];
  for (const name of concrete) await engineCall(url, 'DELETE', `/${name}`);
}
