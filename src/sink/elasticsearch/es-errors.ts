/**
 * Error mapping for the Elasticsearch/OpenSearch adapter: undici failures become `EngineTransportError`,
 * engine error bodies become `{ type, reason }`. Nothing outside this folder sees raw undici errors.
 */
import { AppError } from '../../errors/app-error.js';

/** The engine could not be reached or the exchange broke off (refused, reset, timeout, TLS). */
export class EngineTransportError extends AppError {
  /** True when trying again later may succeed (network trouble); false for TLS verification failures. */
  readonly retryable: boolean;
  /** undici or Node error code, e.g. ECONNREFUSED, UND_ERR_SOCKET, TIMEOUT. */
  readonly transportCode: string;

  constructor(message: string, transportCode: string, retryable: boolean, cause?: unknown) {
    super('SNK_CONNECT', message, { details: { transportCode, retryable }, cause });
    this.name = 'EngineTransportError';
    this.retryable = retryable;
    this.transportCode = transportCode;
  }
}

/** Codes that retrying cannot fix: certificate verification and TLS protocol errors, a closed client. */
const PERMANENT_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  'UND_ERR_INVALID_ARG',
]);

/**
 * Wraps an error thrown by undici while talking to `target` (method, origin and path; never credentials).
 * `secrets` are removed from the message in case a lower layer echoed one.
 */
export function mapTransportError(err: unknown, target: string, secrets: readonly string[], timedOutMs?: number): EngineTransportError {
  if (timedOutMs !== undefined) {
    return new EngineTransportError(`${target} timed out after ${timedOutMs} ms`, 'TIMEOUT', true, err);
  }
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : typeof e?.cause?.code === 'string' ? e.cause.code : 'UNKNOWN';
  const detail = typeof e?.message === 'string' ? e.message : String(err);
  const permanent = PERMANENT_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
  const message = redact(`${target} failed: ${code}: ${detail}`, secrets);
  return new EngineTransportError(message, code, !permanent, err);
}

/** Replaces every occurrence of each secret with `[redacted]`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 3) out = out.split(secret).join('[redacted]');
  }
  return out;
}

/** The `error.type` / `error.reason` of an engine error body (with the first `caused_by`), if any. */
export interface EngineErrorBody {
  type: string;
  reason: string;
}

/** Extracts type and reason from an engine error object (`{type, reason, caused_by}`) or a whole body. */
export function parseEngineError(value: unknown, fallbackType = 'unknown_error'): EngineErrorBody {
  const obj = asRecord(value);
  const err = obj && 'error' in obj ? obj['error'] : value;
  if (typeof err === 'string') return { type: fallbackType, reason: err };
  const rec = asRecord(err);
  if (!rec) return { type: fallbackType, reason: '' };
  const type = typeof rec['type'] === 'string' ? rec['type'] : fallbackType;
  let reason = typeof rec['reason'] === 'string' ? rec['reason'] : '';
  const cause = asRecord(rec['caused_by']);
  if (cause && typeof cause['type'] === 'string') {
    const causeReason = typeof cause['reason'] === 'string' ? `: ${cause['reason']}` : '';
    reason = `${reason} (caused by ${cause['type']}${causeReason})`;
  }
  return { type, reason };
}

/** Parses a response body as an engine error, tolerating non-JSON bodies (proxies, 413 pages). */
export function parseEngineErrorText(body: string, status: number): EngineErrorBody {
  try {
    return parseEngineError(JSON.parse(body), `http_${status}`);
  } catch {
    return { type: `http_${status}`, reason: body.slice(0, 500).trim() };
  }
}

/**
 * `AppError('SNK_REQUEST')` for a request the engine refused, quoting its error type and reason; `SNK_UNAVAILABLE`
 * (waited for and tried again) when the refusal is a timeout, throttling or a server error that passes.
 */
export function requestRejected(what: string, status: number, body: string): AppError {
  const { type, reason } = parseEngineErrorText(body, status);
  if (status === 401 || status === 403) return credentialsRefused(what, status, type, reason);
  if (status === 408 || status === 429 || status >= 500) {
    return new AppError('SNK_UNAVAILABLE', `${what} failed for now (HTTP ${status}): ${type}: ${reason}`, { details: { status, errorType: type, reason } });
  }
  return new AppError('SNK_REQUEST', `${what} was rejected by the search engine (HTTP ${status}): ${type}: ${reason}`, {
    details: { status, errorType: type, reason },
  });
}

/** `AppError('SNK_CONNECT')` for HTTP 401/403: the engine refused the configured credentials. */
export function credentialsRefused(what: string, status: number, type: string, reason: string): AppError {
  const why = status === 401 ? 'the credentials were refused' : 'the credentials lack the required privileges';
  return new AppError('SNK_CONNECT', `${what}: ${why} (HTTP ${status}, ${type}: ${reason}). Check ELASTICSEARCH_USER/PASSWORD or the API key.`, {
    details: { status, errorType: type },
  });
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
