/**
 * Reading documents back for `sluice verify`: does an index (or alias) exist, the stored documents of a
 * batch of ids, and every document's id and routing. All of it works through an alias the same way as on
 * a concrete index, on Elasticsearch 7.10+/8/9 and OpenSearch 1-3.
 */
import { JsonNumber, parseExactJson, type JsonValue } from '../../verify/canonical-json.js';
import type { EngineClient } from './engine-client.js';
import { asRecord, requestRejected } from './es-errors.js';
import { indexPath } from './index-manager.js';

/** A stored document: `_source` parsed exactly (numbers keep their digits). */
export interface StoredDocument {
  id: string;
  routing?: string;
  source: JsonValue;
}

/** A document's identity in the index: id and the routing it was written with. */
export interface StoredRef {
  id: string;
  routing?: string;
}

/** Whether `name` is an index or an alias (HEAD answers 200 for both). */
export async function indexOrAliasExists(client: EngineClient, name: string): Promise<boolean> {
  const res = await client.request('HEAD', indexPath(name));
  if (res.status === 200) return true;
  if (res.status === 404) return false;
  throw requestRejected(`checking whether index "${name}" exists`, res.status, res.body);
}

/**
 * The stored documents with these ids, as of the last refresh. An ids search rather than `_mget`: a search
 * visits every shard, so a copy written with another routing (which `_mget`, routed by the expected value,
 * would not see, and which an index write with the right routing would leave behind as a duplicate) is found
 * too, with its `_routing`. An id can therefore come back more than once.
 */
export async function storedDocuments(client: EngineClient, index: string, ids: readonly string[]): Promise<StoredDocument[]> {
  if (ids.length === 0) return [];
  // Duplicates across shards are rare; ask for room for some and widen when the total says there are more.
  let size = Math.min(ids.length * 2, MAX_WINDOW);
  for (;;) {
    const res = await client.request('POST', `${indexPath(index)}/_search`, {
      body: JSON.stringify({ size, track_total_hits: true, query: { ids: { values: ids } } }),
    });
    if (res.status !== 200) throw requestRejected(`reading documents of index "${index}"`, res.status, res.body);
    const hits = hitsOf(parseExactJson(res.body));
    if (hits.total <= hits.docs.length || size >= MAX_WINDOW) return hits.docs;
    size = Math.min(hits.total, MAX_WINDOW);
  }
}

/** Elasticsearch's default `index.max_result_window`. */
const MAX_WINDOW = 10_000;

function hitsOf(body: JsonValue): { total: number; docs: StoredDocument[] } {
  const hits = asRecord(asRecord(body)?.['hits']);
  const total = hits?.['total'];
  // `total` is `{value, relation}` on ES 7+ and OpenSearch, a number with rest_total_hits_as_int.
  const totalValue = asRecord(total)?.['value'] ?? total;
  const docs: StoredDocument[] = [];
  for (const hit of (hits?.['hits'] as JsonValue[] | undefined) ?? []) {
    const h = asRecord(hit) ?? {};
    const routing = h['_routing'];
    docs.push({ id: String(h['_id']), ...(typeof routing === 'string' ? { routing } : {}), source: (h['_source'] ?? null) as JsonValue });
  }
  return { total: totalValue instanceof JsonNumber ? Number(totalValue.canonical) : docs.length, docs };
}

interface ScrollPage {
  _scroll_id?: string;
  hits?: { hits?: Array<{ _id: string; _routing?: string }> };
}

/**
 * Every document's id and routing, a page at a time (scroll in `_doc` order, the cheapest). The scroll
 * context is cleared when the caller stops early or fails.
 */
export async function* scanStoredRefs(client: EngineClient, index: string, pageSize = 1000): AsyncGenerator<StoredRef[]> {
  let response = await client.request('POST', `${indexPath(index)}/_search`, {
    query: { scroll: '5m' },
    body: JSON.stringify({ size: pageSize, _source: false, sort: ['_doc'], query: { match_all: {} } }),
  });
  let scrollId: string | undefined;
  try {
    for (;;) {
      if (response.status !== 200) throw requestRejected(`scanning index "${index}"`, response.status, response.body);
      const page = response.json() as ScrollPage;
      scrollId = page._scroll_id ?? scrollId;
      const hits = page.hits?.hits ?? [];
      if (hits.length === 0) return;
      yield hits.map((h) => ({ id: h._id, ...(h._routing !== undefined ? { routing: h._routing } : {}) }));
      response = await client.request('POST', '/_search/scroll', { body: JSON.stringify({ scroll: '5m', scroll_id: scrollId }) });
    }
  } finally {
    if (scrollId) await client.request('DELETE', '/_search/scroll', { body: JSON.stringify({ scroll_id: scrollId }) }).catch(() => undefined);
  }
}
