export type EngineFlavor = 'es7' | 'es8' | 'es9' | 'opensearch2';

export interface TestEngineOptions {
  flavor?: EngineFlavor;
  host?: string;
  port?: number;
  /** http.max_content_length; a larger request body gets 413 like ES. Default 100 MiB. */
  maxContentLengthBytes?: number;
  /** apiKey is the base64 of `id:key`, exactly as sent in `Authorization: ApiKey ...`. */
  auth?: { username: string; password: string } | { apiKey: string };
  /** PEM key and certificate; the engine serves https when given. */
  tls?: { key: string; cert: string };
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[] | undefined>;
  bodyBytes: number;
}

export type FaultRule = {
  method?: string;
  /** A string is a regex source, matched against the path without query. */
  path?: string | RegExp;
  /** How many matching requests the rule affects, default 1. */
  times?: number;
  /** Let this many matching requests pass first, default 0. */
  skip?: number;
} & (
  | { kind: 'status'; status: number }
  | { kind: 'delay'; ms: number }
  /** The request is carried out at once and its answer held back `ms`: done, but not yet known to be. */
  | { kind: 'delayReply'; ms: number }
  /** The connection is closed before the request is read: never carried out. */
  | { kind: 'drop' }
  /** The request is carried out, then the connection is closed without an answer: done, but never known to be. */
  | { kind: 'dropAfter' }
  /** The request is carried out and its answer cut off: headers and half the body, then the connection closes. */
  | { kind: 'truncate' }
  | {
      kind: 'bulkItems';
      status: number;
      errorType: string;
      reason?: string;
      items: number[] | 'all' | { every: number };
    }
);

export interface FaultController {
  inject(rule: FaultRule): void;
  clear(): void;
  pending(): number;
}

export interface TestEngine {
  url: string;
  flavor: EngineFlavor;
  faults: FaultController;
  /** Every request received, in order (at most the last 10,000). */
  requests: RecordedRequest[];
  store: {
    indices(): string[];
    documents(index: string): Map<string, unknown>;
    document(index: string, id: string): unknown | undefined;
    mapping(index: string): Record<string, unknown> | undefined;
    settings(index: string): Record<string, unknown> | undefined;
    version(index: string, id: string): number | undefined;
    /** Every stored copy of an id, one per shard holding it (more than one when it was written under different routings). */
    copies(index: string, id: string): Array<{ shard: number; routing?: string; version: number; source: unknown }>;
  };
  close(): Promise<void>;
}
