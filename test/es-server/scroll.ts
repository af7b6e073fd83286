import { isObject, type Reply, type Req } from './context.js';
import { cause, EsError, illegalArgument, parseJson } from './errors.js';
import { renderHit, renderSearch, type HitOptions } from './hits.js';
import { parseTimeMs } from './settings.js';
import type { Hit } from './sort.js';

interface ScrollContext {
  hits: Hit[];
  pos: number;
  size: number;
  expiresAt: number;
  shards: number;
  render: HitOptions;
  maxScore: number | null;
  restTotalAsInt: boolean;
}

const MAX_KEEP_ALIVE = 86_400_000;
const PREFIX = 'FGluY2x1ZGVfY29udGV4dF91dWlkDXF1ZXJ5QW5kRmV0Y2gB';

export function keepAliveMs(value: string): number {
  const ms = parseTimeMs(value);
  if (ms === undefined || ms < 0) {
    throw illegalArgument(`failed to parse setting [scroll] with value [${value}] as a time value: unit is missing or unrecognized`);
  }
  if (ms > MAX_KEEP_ALIVE) {
    throw illegalArgument(`Keep alive for request (${value}) is too large. It must be less than (1d). This limit can be set by changing the [search.max_keep_alive] cluster level setting.`);
  }
  return ms;
}

function missing(id: number | string): EsError {
  const inner = cause('search_context_missing_exception', `No search context found for id [${id}]`);
  return EsError.of(404, cause('search_phase_execution_exception', 'all shards failed', {
    phase: 'query',
    grouped: true,
    failed_shards: [{ shard: -1, index: null, reason: inner }],
  }, inner));
}

export class ScrollRegistry {
  private readonly contexts = new Map<number, ScrollContext>();
  private nextId = 1;

  open(ctx: Omit<ScrollContext, 'pos'>): { id: string; page: Hit[] } {
    const id = this.nextId++;
    const full: ScrollContext = { ...ctx, pos: 0 };
    this.contexts.set(id, full);
    return { id: this.encode(id), page: this.advance(full) };
  }

  private encode(id: number): string {
    return PREFIX + Buffer.from(`ctx:${id}`).toString('base64url');
  }

  private decode(scrollId: string): number {
    if (scrollId.startsWith(PREFIX)) {
      const m = /^ctx:(\d+)$/.exec(Buffer.from(scrollId.slice(PREFIX.length), 'base64url').toString());
      if (m) return Number(m[1]);
    }
    throw illegalArgument('Cannot parse scroll id', cause('illegal_argument_exception', 'invalid scroll id'));
  }

  private advance(ctx: ScrollContext): Hit[] {
    const page = ctx.hits.slice(ctx.pos, ctx.pos + ctx.size);
    ctx.pos += page.length;
    return page;
  }

  next(scrollId: string, keepAlive: number | undefined, started: number): string {
    const id = this.decode(scrollId);
    const ctx = this.contexts.get(id);
    if (!ctx || ctx.expiresAt < Date.now()) {
      this.contexts.delete(id);
      throw missing(id);
    }
    if (keepAlive !== undefined) ctx.expiresAt = Date.now() + keepAlive;
    const page = this.advance(ctx);
    const value = ctx.hits.length;
    return renderSearch({
      took: Math.max(1, Date.now() - started),
      scrollId,
      shards: ctx.shards,
      total: ctx.restTotalAsInt ? value : { value, relation: 'eq' },
      maxScore: ctx.maxScore,
      hits: page.map((h) => renderHit(h, ctx.render)),
    });
  }

  clear(ids: string[] | 'all'): number {
    if (ids === 'all') {
      const n = this.contexts.size;
      this.contexts.clear();
      return n;
    }
    let freed = 0;
    for (const sid of ids) if (this.contexts.delete(this.decode(sid))) freed++;
    return freed;
  }

  sweep(now: number): void {
    for (const [id, ctx] of this.contexts) if (ctx.expiresAt < now) this.contexts.delete(id);
  }

  get size(): number {
    return this.contexts.size;
  }
}

function scrollBody(req: Req): Record<string, unknown> {
  const body = req.body.length ? parseJson(req.text()) : {};
  return isObject(body) ? body : {};
}

export function handleScroll(req: Req): Reply {
  const started = Date.now();
  const body = scrollBody(req);
  const scrollId = req.params.scroll_id ?? req.query.get('scroll_id') ?? body.scroll_id;
  if (typeof scrollId !== 'string' || !scrollId) {
    throw EsError.of(400, cause('action_request_validation_exception', 'Validation Failed: 1: scrollId is missing;'));
  }
  const scroll = req.query.get('scroll') ?? (body.scroll === undefined ? undefined : String(body.scroll));
  const keepAlive = scroll === undefined ? undefined : keepAliveMs(scroll);
  return { status: 200, raw: req.engine.scrolls.next(scrollId, keepAlive, started) };
}

export function handleClearScroll(req: Req): Reply {
  const body = scrollBody(req);
  const fromPath = req.params.scroll_id;
  const raw = fromPath ?? req.query.get('scroll_id') ?? body.scroll_id;
  const ids = raw === undefined ? [] : Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
  if (!ids.length) throw EsError.of(400, cause('action_request_validation_exception', 'Validation Failed: 1: no scroll ids specified;'));
  const freed = ids.includes('_all') ? req.engine.scrolls.clear('all') : req.engine.scrolls.clear(ids);
  return { status: freed > 0 ? 200 : 404, body: { succeeded: true, num_freed: freed } };
}
