import type { FlavorInfo } from './flavors.js';
import type { FaultController, FaultRule } from './types.js';

export type BulkItemsFault = Extract<FaultRule, { kind: 'bulkItems' }>;

interface Armed {
  rule: FaultRule;
  regex: RegExp | undefined;
  remaining: number;
  skip: number;
}

const KINDS = new Set(['status', 'delay', 'delayReply', 'drop', 'dropAfter', 'truncate', 'bulkItems']);

export class FaultRegistry implements FaultController {
  private rules: Armed[] = [];

  inject(rule: FaultRule): void {
    if (!rule || !KINDS.has(rule.kind)) throw new Error(`unknown fault kind ${String((rule as { kind?: unknown })?.kind)}`);
    if ((rule.kind === 'status' || rule.kind === 'bulkItems') && !(Number.isInteger(rule.status) && rule.status >= 100 && rule.status <= 599)) {
      throw new Error(`invalid fault status ${String(rule.status)}`);
    }
    if ((rule.kind === 'delay' || rule.kind === 'delayReply') && !(typeof rule.ms === 'number' && rule.ms >= 0)) throw new Error(`${rule.kind} fault needs ms >= 0`);
    if (rule.kind === 'bulkItems') {
      const items = rule.items;
      const valid = items === 'all' || (Array.isArray(items) && items.every((i) => Number.isInteger(i) && i >= 0)) || (!Array.isArray(items) && typeof items === 'object' && items !== null && Number.isInteger(items.every) && items.every >= 1);
      if (!valid || typeof rule.errorType !== 'string') throw new Error('bulkItems fault needs errorType and items (list, "all" or {every})');
    }
    const times = rule.times ?? 1;
    if (!(Number.isInteger(times) && times >= 1)) throw new Error('fault times must be a positive integer');
    const regex = rule.path === undefined ? undefined : rule.path instanceof RegExp ? rule.path : new RegExp(rule.path);
    this.rules.push({ rule, regex, remaining: times, skip: rule.skip ?? 0 });
  }

  clear(): void {
    this.rules = [];
  }

  pending(): number {
    return this.rules.length;
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r.rule, path: r.regex?.source, times: r.remaining, skip: r.skip }) as FaultRule);
  }

  /**
   * Each rule counts matching requests on its own: `skip` is consumed by every matching request, even one that an
   * earlier rule answers, so independent rules compose by request order. The first due rule fires.
   */
  private take(method: string, path: string, bulk: boolean): FaultRule | undefined {
    let fired: Armed | undefined;
    for (const armed of this.rules) {
      if ((armed.rule.kind === 'bulkItems') !== bulk) continue;
      if (armed.rule.method && armed.rule.method.toUpperCase() !== method) continue;
      if (armed.regex) {
        armed.regex.lastIndex = 0;
        if (!armed.regex.test(path)) continue;
      }
      if (armed.skip > 0) armed.skip--;
      else if (!fired) fired = armed;
    }
    if (!fired) return undefined;
    if (--fired.remaining <= 0) this.rules.splice(this.rules.indexOf(fired), 1);
    return fired.rule;
  }

  /** A status, delay or drop rule for this request, consumed. */
  takeRequestFault(method: string, path: string): Exclude<FaultRule, BulkItemsFault> | undefined {
    return this.take(method, path, false) as Exclude<FaultRule, BulkItemsFault> | undefined;
  }

  takeBulkFault(method: string, path: string): BulkItemsFault | undefined {
    return this.take(method, path, true) as BulkItemsFault | undefined;
  }
}

export function selectsItem(fault: BulkItemsFault, position: number): boolean {
  const items = fault.items;
  if (items === 'all') return true;
  if (Array.isArray(items)) return items.includes(position);
  return (position + 1) % items.every === 0;
}

export interface RawReply {
  status: number;
  body: string;
  contentType: string;
  /** false for replies that a proxy in front of the engine would produce. */
  fromEngine: boolean;
  /** A refused login: Elasticsearch sends its product header on every answer except these. */
  unauthenticated?: boolean;
  headers?: Record<string, string | string[]>;
}

const envelope = (status: number, error: Record<string, unknown>): string =>
  JSON.stringify({ error: { root_cause: [error], ...error }, status });

export function tooLargeReply(flavor: FlavorInfo, bytes: number, limit: number): RawReply {
  if (flavor.major >= 8 && !flavor.isOpenSearch) {
    const reason = `entity content is too long [${bytes}] for the configured buffer limit [${limit}]`;
    return { status: 413, body: envelope(413, { type: 'content_too_long_exception', reason }), contentType: flavor.jsonContentType, fromEngine: true };
  }
  // Netty's own answer (HttpObjectAggregator), sent before the request reaches Elasticsearch: no product header.
  return { status: 413, body: '', contentType: '', fromEngine: false };
}

function nginx(status: number, title: string): RawReply {
  const body = `<html>\r\n<head><title>${status} ${title}</title></head>\r\n<body>\r\n<center><h1>${status} ${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
  return { status, body, contentType: 'text/html', fromEngine: false };
}

/** A realistic reply for an injected status: what ES (or the proxy in front of it) sends for that status. */
export function statusFaultReply(flavor: FlavorInfo, status: number, method: string, path: string, bodyBytes: number): RawReply {
  const write = /\/_bulk$|\/_doc|\/_create\/|\/_update\//.test(path) && method !== 'GET';
  const json = (error: Record<string, unknown>): RawReply => ({ status, body: envelope(status, error), contentType: flavor.jsonContentType, fromEngine: true });
  switch (status) {
    case 429:
      if (write) {
        return json({
          type: flavor.rejectedType,
          reason: `rejected execution of coordinating operation [coordinating_and_primary_bytes=52428800, replica_bytes=0, all_bytes=52428800, coordinating_operation_bytes=${bodyBytes}, max_coordinating_and_primary_bytes=53687091]`,
        });
      }
      return json({
        type: 'circuit_breaking_exception',
        reason: `[parent] Data too large, data for [<http_request>] would be [1063794584/1014.5mb], which is larger than the limit of [1020054732/972.7mb], real usage: [1063794376/1014.5mb], new bytes reserved: [${bodyBytes}/${bodyBytes}b], usages [request=0/0b, fielddata=0/0b, in_flight_requests=${bodyBytes}/${bodyBytes}b, accounting=0/0b]`,
        bytes_wanted: 1063794584,
        bytes_limit: 1020054732,
        durability: 'TRANSIENT',
      });
    case 500:
      return json({ type: 'illegal_state_exception', reason: 'failure injected by the test engine' });
    case 502:
      return nginx(502, 'Bad Gateway');
    case 503:
      // A _bulk reports unavailable shards per item, inside a 200 (the bulkItems fault): a whole bulk refused with 503
      // is a cluster without a master. A single-document write does answer 503 for its shard.
      if (/(^|\/)_bulk$/.test(path) && method !== 'GET') return json({ type: 'cluster_block_exception', reason: 'blocked by: [SERVICE_UNAVAILABLE/2/no master];' });
      if (write) return json({ type: 'unavailable_shards_exception', reason: `[${path.split('/')[1] || 'index'}][0] primary shard is not active Timeout: [1m]` });
      return json({ type: 'cluster_block_exception', reason: 'blocked by: [SERVICE_UNAVAILABLE/1/state not recovered / initialized];' });
    case 504:
      return nginx(504, 'Gateway Time-out');
    case 401:
      return json({ type: 'security_exception', reason: `missing authentication credentials for REST request [${path}]` });
    case 403:
      return json({ type: 'security_exception', reason: `action [${write ? 'indices:data/write/bulk' : 'indices:data/read/search'}] is unauthorized for user [sluice] with effective roles [viewer]` });
    case 404:
      return json({ type: 'resource_not_found_exception', reason: 'resource not found (injected by the test engine)' });
    case 409:
      return json({ type: 'version_conflict_engine_exception', reason: 'version conflict (injected by the test engine)' });
    case 413:
      return tooLargeReply(flavor, bodyBytes, Math.max(0, bodyBytes - 1));
    default:
      return json({ type: status >= 500 ? 'exception' : 'illegal_argument_exception', reason: `status ${status} injected by the test engine` });
  }
}
