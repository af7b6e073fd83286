import { boolParam, isObject, type Reply, type Req } from './context.js';
import { cause, fail, illegalArgument, parseJson } from './errors.js';
import { parseSourceFilter, renderHit, renderSearch, type HitOptions } from './hits.js';
import { compileQuery, type Compiled } from './query.js';
import { keepAliveMs } from './scroll.js';
import { compareTuples, parseSort, shardFailure, sortHits, type Hit } from './sort.js';
import type { IndexState, Resolved, ShardState } from './store.js';

const SEARCH_KEYS = new Set([
  'query', 'from', 'size', 'sort', '_source', 'track_total_hits', 'search_after', 'timeout', 'version',
  'seq_no_primary_term', 'stored_fields', 'docvalue_fields', 'fields', 'highlight', 'min_score', 'post_filter',
  'pit', 'track_scores', 'terminate_after', 'explain', 'script_fields', 'collapse', 'rescore', 'suggest', 'ext',
  'profile', 'indices_boost', 'runtime_mappings', 'stats', 'knn', 'aggs', 'aggregations', 'slice', 'rank', 'retriever',
]);
const SEARCH_IDLE_MS = 30_000;

function tokenOf(v: unknown): string {
  if (isObject(v)) return 'START_OBJECT';
  if (Array.isArray(v)) return 'START_ARRAY';
  return typeof v === 'string' ? 'VALUE_STRING' : typeof v === 'number' ? 'VALUE_NUMBER' : typeof v === 'boolean' ? 'VALUE_BOOLEAN' : 'VALUE_NULL';
}

function readBody(req: Req): Record<string, unknown> {
  if (!req.body.length) return {};
  const body = parseJson(req.text());
  if (!isObject(body)) throw fail(400, 'parsing_exception', 'Unknown key for a VALUE_STRING in [null].', { line: 1, col: 1 });
  return body;
}

/** ES shards that have not been searched for 30s skip periodic refreshes and refresh on the next search instead. */
export function touchForSearch(index: IndexState, now = Date.now()): void {
  if (index.refreshIntervalMs === undefined && index.dirty && now - index.lastSearchAccess >= SEARCH_IDLE_MS) index.refresh();
  index.lastSearchAccess = now;
}

export function resolveTargets(req: Req): Resolved[] {
  return req.engine.store.resolve(req.params.index, {
    ignoreUnavailable: boolParam(req.query, 'ignore_unavailable'),
    allowNoIndices: boolParam(req.query, 'allow_no_indices', true),
  });
}

/** `q=field:value` (or a bare value matched against every field) from the URI search API. */
function uriQuery(q: string | null): unknown {
  if (q === null) return undefined;
  const m = /^([^:\s]+):(.+)$/.exec(q);
  if (m) return { match: { [m[1] as string]: (m[2] as string).replace(/^"|"$/g, '') } };
  return q === '*' || q === '*:*' ? { match_all: {} } : { ids: { values: [q] } };
}

/**
 * The shards a search or count visits: all of them, or with `routing=a,b` only those the values pick (a copy of
 * an id on another shard is then not found, as in ES).
 */
export function searchedShards(index: IndexState, routing: string | null): ShardState[] {
  if (routing === null) return index.shards;
  const picked = new Set(routing.split(',').map((r) => index.shardFor('', r)));
  return index.shards.filter((s) => picked.has(s));
}

const shardTotal = (targets: Resolved[], routing: string | null): number => targets.reduce((n, t) => n + searchedShards(t.index, routing).length, 0);

function collect(targets: Resolved[], query: unknown, postFilter: unknown, routing: string | null): { hits: Hit[]; scoring: boolean } {
  const hits: Hit[] = [];
  let scoring = true;
  targets.forEach(({ index, filter }, indexOrder) => {
    touchForSearch(index);
    const main: Compiled = compileQuery(query ?? { match_all: {} }, index.mapping);
    scoring = main.scoring;
    const extra = [filter, postFilter].filter((f) => f !== undefined).map((f) => compileQuery(f, index.mapping));
    const score = main.scoring ? 1 : 0;
    for (const shard of searchedShards(index, routing)) {
      shard.searchable.forEach((doc, pos) => {
        if (main.match(doc) && extra.every((c) => c.match(doc))) hits.push({ index, indexOrder, shard: shard.number, pos, doc, score });
      });
    }
  });
  return { hits, scoring };
}

function intParam(value: unknown, name: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n)) throw illegalArgument(`[${name}] must be an integer, got [${String(value)}]`);
  if (n < 0) throw illegalArgument(`[${name}] parameter cannot be negative, found [${n}]`);
  return n;
}

export function handleSearch(req: Req): Reply {
  const started = Date.now();
  const body = readBody(req);
  for (const [key, value] of Object.entries(body)) {
    if (!SEARCH_KEYS.has(key)) throw fail(400, 'parsing_exception', `Unknown key for a ${tokenOf(value)} in [${key}].`, { line: 1, col: 1 });
  }
  if (body.aggs !== undefined || body.aggregations !== undefined) throw illegalArgument('aggregations are not supported by the test engine');
  const q = req.query;
  const size = intParam(q.get('size') ?? body.size, 'size', 10);
  const from = intParam(q.get('from') ?? body.from, 'from', 0);
  const scroll = q.get('scroll');
  const keepAlive = scroll === null ? undefined : keepAliveMs(scroll);
  const searchAfter = body.search_after;
  if (searchAfter !== undefined && scroll !== null) throw illegalArgument('`search_after` cannot be used in a scroll context.');
  if (searchAfter !== undefined && from > 0) throw illegalArgument('`from` parameter must be set to 0 when `search_after` is used.');

  const targets = resolveTargets(req);
  const indices = targets.map((t) => t.index);
  const maxWindow = Math.min(...indices.map((i) => Number(i.settings.get('index.max_result_window') ?? 10000)), 10000 * 1000);
  if (scroll !== null && size > maxWindow) {
    throw shardFailure(indices, cause('illegal_argument_exception', `Batch size is too large, size must be less than or equal to: [${maxWindow}] but was [${size}]. Scroll batch sizes cost as much memory as result windows so they are controlled by the [index.max_result_window] index level setting.`));
  }
  if (scroll === null && from + size > maxWindow && indices.length) {
    throw shardFailure(indices, cause('illegal_argument_exception', `Result window is too large, from + size must be less than or equal to: [${maxWindow}] but was [${from + size}]. See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.`));
  }

  const sortSpec = body.sort ?? (q.get('sort') ? q.get('sort')?.split(',') : undefined);
  const keys = parseSort(sortSpec, indices);
  const routing = q.get('routing');
  const { hits, scoring } = collect(targets, body.query ?? uriQuery(q.get('q')), body.post_filter, routing);
  sortHits(keys, hits);
  const sortedByScore = !keys.length || keys[0]?.kind === 'score';
  const render: HitOptions = {
    flavor: req.engine.flavor,
    source: parseSourceFilter(body._source, q),
    scored: sortedByScore || body.track_scores === true,
    version: body.version === true || boolParam(q, 'version'),
    seqNo: body.seq_no_primary_term === true || boolParam(q, 'seq_no_primary_term'),
  };
  const maxScore = !hits.length || !render.scored ? null : scoring ? 1 : 0;
  const restTotalAsInt = boolParam(q, 'rest_total_hits_as_int');
  const shards = shardTotal(targets, routing);

  if (keepAlive !== undefined) {
    const { id, page } = req.engine.scrolls.open({ hits, size, expiresAt: Date.now() + keepAlive, shards, render, maxScore, restTotalAsInt });
    const total = restTotalAsInt ? hits.length : { value: hits.length, relation: 'eq' as const };
    return { status: 200, raw: renderSearch({ took: Math.max(1, Date.now() - started), scrollId: id, shards, total, maxScore, hits: page.map((h) => renderHit(h, render)) }) };
  }

  let window = hits;
  if (Array.isArray(searchAfter)) {
    if (!keys.length) throw illegalArgument('Sort must contain at least one field.');
    if (searchAfter.length !== keys.length) throw illegalArgument(`search_after has ${searchAfter.length} value(s) but sort has ${keys.length}.`);
    window = hits.filter((h) => compareTuples(keys, h.sortValues as unknown[], searchAfter) > 0);
  } else if (searchAfter !== undefined) {
    throw fail(400, 'parsing_exception', '[search_after] failed to parse field [search_after]', { line: 1, col: 1 });
  }
  const page = window.slice(from, from + size);
  const pageMaxScore = page.length ? maxScore : null;

  const tth = body.track_total_hits ?? (q.get('track_total_hits') === null ? undefined : q.get('track_total_hits'));
  let total: { value: number; relation: 'eq' | 'gte' } | number | undefined;
  if (tth === false || tth === 'false') total = undefined;
  else {
    const limit = tth === true || tth === 'true' ? Infinity : tth === undefined ? 10000 : Number(tth);
    total = hits.length > limit ? { value: limit, relation: 'gte' } : { value: hits.length, relation: 'eq' };
    if (restTotalAsInt) {
      if (limit !== Infinity && hits.length > limit) {
        throw illegalArgument('[rest_total_hits_as_int] cannot be used if the tracking of total hits is not accurate, got ' + limit);
      }
      total = hits.length;
    }
  }
  return { status: 200, raw: renderSearch({ took: Math.max(1, Date.now() - started), shards, total, maxScore: pageMaxScore, hits: page.map((h) => renderHit(h, render)) }) };
}

export function handleCount(req: Req): Reply {
  const body = readBody(req);
  for (const key of Object.keys(body)) {
    if (key !== 'query') throw fail(400, 'parsing_exception', `request does not support [${key}]`, { line: 1, col: 1 });
  }
  const targets = resolveTargets(req);
  const query = body.query ?? uriQuery(req.query.get('q'));
  const routing = req.query.get('routing');
  let count = 0;
  for (const { index, filter } of targets) {
    touchForSearch(index);
    const main = compileQuery(query ?? { match_all: {} }, index.mapping).match;
    const extra = filter === undefined ? undefined : compileQuery(filter, index.mapping).match;
    for (const shard of searchedShards(index, routing)) {
      for (const doc of shard.searchable) if (main(doc) && (!extra || extra(doc))) count++;
    }
  }
  const shards = shardTotal(targets, routing);
  return { status: 200, body: { count, _shards: { total: shards, successful: shards, skipped: 0, failed: 0 } } };
}
