import { createHash, timingSafeEqual } from 'node:crypto';
import { redact } from '../config/redact.js';
import { METRICS_CONTENT_TYPE, renderMetrics, type SluiceMetrics } from '../observability/metrics.js';
import { currentLagSeconds, statusView, type IndexStatus } from '../pipeline/index-status.js';

/** What the routes read; the HTTP server supplies it on every request. */
export interface RouteContext {
  statuses: () => IndexStatus[];
  /** An index is ready when streaming with lagSeconds at or below this (unknown lag while streaming counts as ready). */
  readyLagSeconds: number;
  /** Replaced by `***` in every response body. */
  secrets: readonly string[];
  metrics?: SluiceMetrics;
  version: string;
  uptimeSeconds: () => number;
  /** Clock for the rates and times left in /status; Date.now by default. */
  now?: () => number;
  /** SLUICE_HTTP_TOKEN: /metrics and /status then need `Authorization: Bearer <token>`; the probes stay open. */
  token?: string;
}

export interface RouteResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface NotReadyIndex {
  index: string;
  phase: IndexStatus['phase'];
  reason: string;
  lagSeconds?: number;
}

const JSON_TYPE = 'application/json; charset=utf-8';
const ALLOWED = 'GET, HEAD';

/**
 * Indexes that keep the process from being ready, each with the reason. An index another process owns (standby) does
 * not: the standby is doing its job, and an orchestrator that waits for a new process to be ready before stopping
 * the old one (a rolling update) would otherwise wait forever.
 */
export function notReadyIndexes(statuses: readonly IndexStatus[], readyLagSeconds: number, now: number = Date.now()): NotReadyIndex[] {
  const out: NotReadyIndex[] = [];
  for (const s of statuses) {
    if (s.phase === 'standby') continue;
    if (s.phase !== 'streaming') {
      out.push({ index: s.index, phase: s.phase, reason: `phase is ${s.phase}, not streaming` });
    } else {
      const lag = currentLagSeconds(s, now);
      if (lag !== undefined && !(lag <= readyLagSeconds)) {
        out.push({ index: s.index, phase: s.phase, lagSeconds: lag, reason: `lag ${String(lag)}s exceeds ${String(readyLagSeconds)}s` });
      }
    }
  }
  return out;
}

/**
 * Answers one request. Pure apart from reading the context, so it is tested without a socket. Every body goes
 * through `redact`, whatever the route, so a secret echoed in an error message never leaves the process.
 */
export function route(method: string, rawUrl: string, ctx: RouteContext, authorization?: string): RouteResponse {
  const path = pathOf(rawUrl);
  const known = path === '/healthz' || path === '/readyz' || path === '/metrics' || path === '/status';
  let response: RouteResponse;
  if (!known) {
    response = json(404, { error: 'not found', path });
  } else if (ctx.token !== undefined && (path === '/metrics' || path === '/status') && !bearerMatches(authorization, ctx.token)) {
    response = json(401, { error: 'unauthorized: send Authorization: Bearer <SLUICE_HTTP_TOKEN>' });
    response.headers['www-authenticate'] = 'Bearer realm="sluice"';
  } else if (method !== 'GET' && method !== 'HEAD') {
    response = json(405, { error: 'method not allowed', method, allow: ALLOWED });
    response.headers.allow = ALLOWED;
  } else {
    try {
      response = answer(path, ctx);
    } catch (error) {
      response = json(500, { error: 'internal error', message: error instanceof Error ? error.message : String(error) });
    }
  }
  response.body = redact(response.body, ctx.secrets);
  response.headers['cache-control'] = 'no-store';
  return response;
}

function answer(path: string, ctx: RouteContext): RouteResponse {
  switch (path) {
    case '/healthz':
      return json(200, { status: 'ok' });
    case '/readyz': {
      const statuses = ctx.statuses();
      const notReady = notReadyIndexes(statuses, ctx.readyLagSeconds, ctx.now?.() ?? Date.now());
      if (notReady.length === 0) return json(200, { status: 'ready', indexes: statuses.map((s) => s.index) });
      return json(503, { status: 'not ready', readyLagSeconds: ctx.readyLagSeconds, notReady });
    }
    case '/metrics':
      return {
        status: 200,
        headers: { 'content-type': METRICS_CONTENT_TYPE },
        body: renderMetrics(ctx.statuses(), ctx.metrics !== undefined ? { metrics: ctx.metrics } : {}),
      };
    default: {
      const now = ctx.now?.() ?? Date.now();
      return json(200, { indexes: ctx.statuses().map((s) => statusView(s, now)), version: ctx.version, uptimeSeconds: ctx.uptimeSeconds() });
    }
  }
}

/** Compared as digests, in constant time: how long the comparison takes tells nothing of the token. */
function bearerMatches(authorization: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (match === null) return false;
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1]!), digest(token));
}

function json(status: number, value: unknown): RouteResponse {
  return { status, headers: { 'content-type': JSON_TYPE }, body: `${JSON.stringify(value)}\n` };
}

function pathOf(rawUrl: string): string {
  const end = rawUrl.search(/[?#]/);
  const path = end < 0 ? rawUrl : rawUrl.slice(0, end);
  // A trailing slash is tolerated (`/metrics/`), the root is not a route.
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}
