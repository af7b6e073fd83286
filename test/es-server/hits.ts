import { isObject } from './context.js';
import { applyFilterPath, toJson } from './json.js';
import type { FlavorInfo } from './flavors.js';
import type { Hit } from './sort.js';
import { rawSource, sourceOf, type Doc } from './store.js';

/** `_source` filtering: false, a pattern list, or {includes, excludes}; undefined means the whole source. */
export interface SourceFilter {
  enabled: boolean;
  includes: string[];
  excludes: string[];
}

const list = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : String(v).split(','));

export function parseSourceFilter(body: unknown, query: URLSearchParams): SourceFilter {
  const filter: SourceFilter = { enabled: true, includes: [], excludes: [] };
  const qp = query.get('_source');
  if (qp === 'false') filter.enabled = false;
  else if (qp !== null && qp !== 'true' && qp !== '') filter.includes = list(qp);
  if (body === false) filter.enabled = false;
  else if (typeof body === 'string' || Array.isArray(body)) filter.includes = list(body);
  else if (isObject(body)) {
    filter.includes = list(body.includes ?? body.include);
    filter.excludes = list(body.excludes ?? body.exclude);
  }
  const inc = query.get('_source_includes');
  const exc = query.get('_source_excludes');
  if (inc) filter.includes = list(inc);
  if (exc) filter.excludes = list(exc);
  return filter;
}

/** The `_source` JSON text for a response: the stored bytes verbatim unless filtered. */
export function sourceJson(doc: Doc, filter: SourceFilter): string | undefined {
  if (!filter.enabled) return undefined;
  if (!filter.includes.length && !filter.excludes.length) return rawSource(doc);
  const paths = [...filter.includes, ...filter.excludes.map((e) => `-${e}`)].join(',');
  return toJson(applyFilterPath(sourceOf(doc), paths));
}

export interface HitOptions {
  flavor: FlavorInfo;
  source: SourceFilter;
  scored: boolean;
  version: boolean;
  seqNo: boolean;
}

/** One search hit as ES orders its fields, with `_source` spliced in verbatim. */
export function renderHit(hit: Hit, opts: HitOptions): string {
  const { doc } = hit;
  const head: Record<string, unknown> = { _index: hit.index.name };
  if (opts.flavor.docType) head._type = '_doc';
  head._id = doc.id;
  if (opts.version) head._version = doc.version;
  if (opts.seqNo) {
    head._seq_no = doc.seqNo;
    head._primary_term = 1;
  }
  head._score = opts.scored ? hit.score : null;
  if (doc.routing !== undefined) head._routing = doc.routing;
  let text = toJson(head);
  const source = sourceJson(doc, opts.source);
  if (source !== undefined) text = `${text.slice(0, -1)},"_source":${source}}`;
  if (hit.sortValues) text = `${text.slice(0, -1)},"sort":${toJson(hit.sortValues)}}`;
  return text;
}

export interface SearchPage {
  took: number;
  scrollId?: string;
  shards: number;
  total: { value: number; relation: 'eq' | 'gte' } | number | undefined;
  maxScore: number | null;
  hits: string[];
}

export function renderSearch(page: SearchPage): string {
  const parts: string[] = [];
  if (page.scrollId !== undefined) parts.push(`"_scroll_id":${JSON.stringify(page.scrollId)}`);
  parts.push(`"took":${page.took}`, '"timed_out":false');
  parts.push(`"_shards":{"total":${page.shards},"successful":${page.shards},"skipped":0,"failed":0}`);
  const total = page.total === undefined ? '' : `"total":${JSON.stringify(page.total)},`;
  parts.push(`"hits":{${total}"max_score":${page.maxScore === null ? 'null' : page.maxScore.toFixed(1)},"hits":[${page.hits.join(',')}]}`);
  return `{${parts.join(',')}}`;
}
