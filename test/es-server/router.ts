import type { Handler } from './context.js';
import { illegalArgument, simpleError, type EsError } from './errors.js';

interface Route {
  pattern: string;
  segments: string[];
  handlers: Map<string, { handler: Handler; params: Set<string> }>;
}

export interface Match {
  handler: Handler;
  params: Record<string, string>;
  /** e.g. `POST /{index}/_bulk`, used for request statistics. */
  key: string;
  allowedQuery: Set<string>;
}

/** Parameters every ES endpoint accepts. */
const GLOBAL_PARAMS = ['pretty', 'human', 'error_trace', 'filter_path', 'source', 'source_content_type'];
/** ES lists allowed methods in RestRequest.Method enum order. */
const METHOD_ORDER = ['GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'HEAD', 'PATCH', 'TRACE', 'CONNECT'];

const isParam = (segment: string): boolean => segment.startsWith('{') && segment.endsWith('}');

/** Literal segments beat `{param}` segments, position by position, like ES's PathTrie. */
function specificity(a: Route, b: Route): number {
  for (let i = 0; i < a.segments.length; i++) {
    const pa = isParam(a.segments[i] as string);
    const pb = isParam(b.segments[i] as string);
    if (pa !== pb) return pa ? 1 : -1;
  }
  return 0;
}

export class Router {
  private readonly routes = new Map<string, Route>();
  private readonly byLength = new Map<number, Route[]>();

  add(methods: string, pattern: string, handler: Handler, params: string[] = []): this {
    let route = this.routes.get(pattern);
    if (!route) {
      const segments = pattern.split('/').filter(Boolean);
      route = { pattern, segments, handlers: new Map() };
      this.routes.set(pattern, route);
      const list = this.byLength.get(segments.length) ?? [];
      list.push(route);
      list.sort(specificity);
      this.byLength.set(segments.length, list);
    }
    for (const method of methods.split('|')) route.handlers.set(method, { handler, params: new Set([...GLOBAL_PARAMS, ...params]) });
    return this;
  }

  /** The handler for a request, or the 400/405 error ES answers when there is none. */
  match(method: string, path: string, uri: string): Match | EsError {
    let segments: string[];
    try {
      segments = path.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      return illegalArgument(`unable to decode path [${path}]`);
    }
    const candidates: { route: Route; params: Record<string, string> }[] = [];
    for (const route of this.byLength.get(segments.length) ?? []) {
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < segments.length && ok; i++) {
        const want = route.segments[i] as string;
        const got = segments[i] as string;
        if (isParam(want)) params[want.slice(1, -1)] = got;
        else ok = want === got;
      }
      if (ok) candidates.push({ route, params });
    }
    for (const { route, params } of candidates) {
      const entry = route.handlers.get(method);
      if (entry) return { handler: entry.handler, params, key: `${method} ${route.pattern}`, allowedQuery: entry.params };
    }
    if (!candidates.length) return simpleError(400, `no handler found for uri [${uri}] and method [${method}]`);
    const allowed = new Set(candidates.flatMap(({ route }) => [...route.handlers.keys()]));
    const ordered = METHOD_ORDER.filter((m) => allowed.has(m));
    if (method === 'OPTIONS') return simpleError(200, '', { allow: ordered.join(',') });
    return simpleError(405, `Incorrect HTTP method for uri [${uri}] and method [${method}], allowed: [${ordered.join(', ')}]`, { allow: ordered.join(',') });
  }
}

export function checkQueryParams(query: URLSearchParams, allowed: Set<string>, path: string): void {
  const unknown = [...new Set(query.keys())].filter((k) => !allowed.has(k));
  if (!unknown.length) return;
  const list = unknown.map((k) => `[${k}]`).join(', ');
  throw illegalArgument(`request [${path}] contains unrecognized parameter${unknown.length > 1 ? 's' : ''}: ${list}`);
}
