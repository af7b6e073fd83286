import type { EngineClient } from './engine-client.js';
import { AppError } from '../../errors/app-error.js';
import { parseEngineErrorText, requestRejected } from './es-errors.js';
import { indexPath } from './index-manager.js';

/** One stored copy of a document: with routing on several shards, one id can have more than one. */
export interface StoredCopy {
  id: string;
  routing?: string;
}

interface ScrollPage {
  _scroll_id?: string;
  hits?: { hits?: Array<{ _id: string; _routing?: string }> };
}

/**
 * How long the engine keeps a scroll between pages. The consumer writes a page's deletes before reading on, and a
 * throttling engine can hold those writes for minutes.
 */
const SCROLL_KEEP_ALIVE = '5m';

/**
 * Every stored copy matching `query`, through the scroll API (works on Elasticsearch 7–9 and OpenSearch), a page
 * at a time. An index that does not exist has none. A scroll that expired anyway fails as SNK_UNAVAILABLE: the
 * sync starts its attempt over, and the scans are safe to repeat.
 */
async function* scan(client: EngineClient, index: string, query: object, pageSize: number): AsyncGenerator<StoredCopy> {
  let response = await client.request('POST', `${indexPath(index)}/_search`, {
    query: { scroll: SCROLL_KEEP_ALIVE },
    body: JSON.stringify({ size: pageSize, _source: false, sort: ['_doc'], query }),
  });
  if (response.status === 404) return;
  let scrollId: string | undefined;
  try {
    for (;;) {
      if (scrollId !== undefined && response.status === 404) {
        throw new AppError('SNK_UNAVAILABLE', `scanning index ${index}: the scroll expired between two pages (${parseEngineErrorText(response.body, 404).type}); starting over`);
      }
      if (response.status !== 200) throw requestRejected(`scanning index ${index}`, response.status, response.body);
      const page = response.json() as ScrollPage;
      scrollId = page._scroll_id;
      const hits = page.hits?.hits ?? [];
      if (hits.length === 0) return;
      for (const hit of hits) yield hit._routing === undefined ? { id: hit._id } : { id: hit._id, routing: hit._routing };
      response = await client.request('POST', '/_search/scroll', { body: JSON.stringify({ scroll: SCROLL_KEEP_ALIVE, scroll_id: scrollId }) });
    }
  } finally {
    if (scrollId) await client.request('DELETE', '/_search/scroll', { body: JSON.stringify({ scroll_id: scrollId }) }).catch(() => undefined);
  }
}

/** Every stored copy of every document of an index, with its routing. */
export function scanDocuments(client: EngineClient, index: string, pageSize = 1000): AsyncGenerator<StoredCopy> {
  return scan(client, index, { match_all: {} }, pageSize);
}

/**
 * Every `_routing` under which each of `ids` is stored (several when copies were left on other shards), for
 * deleting or moving documents in an index with routing; null for a copy stored without one (a null routing value,
 * when the mapping does not require it). Refreshes first: a document indexed moments ago must be found too.
 */
export async function routingsOf(client: EngineClient, index: string, ids: string[]): Promise<Map<string, Array<string | null>>> {
  const routings = new Map<string, Array<string | null>>();
  if (ids.length === 0) return routings;
  // Without the refresh a copy written moments ago is missed and stays on its shard: a failed one must not pass.
  const refreshed = await client.request('POST', `${indexPath(index)}/_refresh`);
  if (refreshed.status !== 404 && (refreshed.status < 200 || refreshed.status >= 300)) {
    throw requestRejected(`refreshing index "${index}" before looking up routings`, refreshed.status, refreshed.body);
  }
  for await (const copy of scan(client, index, { ids: { values: ids } }, Math.min(1000, ids.length * 2))) {
    const stored = copy.routing ?? null;
    const known = routings.get(copy.id) ?? [];
    if (!known.includes(stored)) known.push(stored);
    routings.set(copy.id, known);
  }
  return routings;
}
