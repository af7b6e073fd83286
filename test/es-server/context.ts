import type { IncomingHttpHeaders } from 'node:http';
import type { HeaderMap } from './errors.js';
import type { FaultRegistry } from './faults.js';
import type { FlavorInfo } from './flavors.js';
import type { ScrollRegistry } from './scroll.js';
import type { Store } from './store.js';

export interface EngineState {
  flavor: FlavorInfo;
  store: Store;
  faults: FaultRegistry;
  scrolls: ScrollRegistry;
  clusterUuid: string;
}

export interface Req {
  method: string;
  path: string;
  params: Record<string, string>;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  /** Request body after gzip decoding; empty when none. */
  body: Buffer;
  engine: EngineState;
  text(): string;
  /** Parsed JSON body (ES error on bad JSON), undefined when the body is empty. */
  json(): unknown;
}

export interface Reply {
  status: number;
  body?: unknown;
  /** Pre-serialised JSON (used when `_source` bytes are spliced in verbatim). */
  raw?: string;
  /** `raw` already has the request's `filter_path` applied. */
  filtered?: boolean;
  headers?: HeaderMap;
}

export type Handler = (req: Req) => Reply | Promise<Reply>;

export const ok = (body: unknown, status = 200): Reply => ({ status, body });

export function boolParam(query: URLSearchParams, name: string, fallback = false): boolean {
  const v = query.get(name);
  if (v === null) return fallback;
  return v === '' || v === 'true';
}

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
