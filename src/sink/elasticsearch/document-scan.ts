import type { EngineClient } from './engine-client.js';
import { requestRejected } from './es-errors.js';
import { indexPath } from './index-manager.js';

interface ScrollPage {
  _scroll_id?: string;
  hits?: { hits?: Array<{ _id: string }> };
}

/** Every document id of an index, through the scroll API (works on Elasticsearch 7–9 and OpenSearch). */
export async function* scanDocumentIds(client: EngineClient, index: string, pageSize = 1000): AsyncGenerator<string> {
  let response = await client.request('POST', `${indexPath(index)}/_search`, {
    query: { scroll: '1m' },
    body: JSON.stringify({ size: pageSize, _source: false, sort: ['_doc'], query: { match_all: {} } }),
  });
  if (response.status === 404) return;
  let scrollId: string | undefined;
  try {
    for (;;) {
      if (response.status !== 200) throw requestRejected(`scanning index ${index}`, response.status, response.body);
      const page = response.json() as ScrollPage;
      scrollId = page._scroll_id;
      const hits = page.hits?.hits ?? [];
      if (hits.length === 0) return;
      for (const hit of hits) yield hit._id;
      response = await client.request('POST', '/_search/scroll', { body: JSON.stringify({ scroll: '1m', scroll_id: scrollId }) });
    }
  } finally {
    if (scrollId) await client.request('DELETE', '/_search/scroll', { body: JSON.stringify({ scroll_id: scrollId }) }).catch(() => undefined);
  }
}

/**
 * The `_routing` of existing documents, for deleting them from an index whose mapping requires routing.
 * Refreshes first: a document indexed moments ago must be found too.
 */
export async function routingOf(client: EngineClient, index: string, ids: string[]): Promise<Map<string, string>> {
  const routing = new Map<string, string>();
  if (ids.length === 0) return routing;
  await client.request('POST', `${indexPath(index)}/_refresh`);
  const response = await client.request('POST', `${indexPath(index)}/_search`, {
    body: JSON.stringify({ size: ids.length, _source: false, query: { ids: { values: ids } } }),
  });
  if (response.status === 404) return routing;
  if (response.status !== 200) throw requestRejected(`looking up the routing of documents in ${index}`, response.status, response.body);
  const hits = (response.json() as { hits?: { hits?: Array<{ _id: string; _routing?: string }> } }).hits?.hits ?? [];
  for (const hit of hits) if (hit._routing !== undefined) routing.set(hit._id, hit._routing);
  return routing;
}
