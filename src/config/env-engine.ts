import type { EngineConfig } from './config-types.js';
import { parseEngineAuth, parseEngineTls, type UrlCredentials } from './env-engine-auth.js';
import { shownHost } from './redact.js';
import { decodeComponent, type EnvReader, type IntRange } from './env-reader.js';

const PORT_RANGE: IntRange = { min: 1, max: 65535 };
const MIB = 1024 * 1024;
const TIMEOUT = 'SLUICE_ENGINE_TIMEOUT_MS';
const RETRY_INITIAL = 'SLUICE_RETRY_INITIAL_MS';
const RETRY_MAX = 'SLUICE_RETRY_MAX_MS';

/** Defaults (Sluice's, except the request timeout and compression, which keep PGSync's). */
export const ENGINE_DEFAULTS = {
  requestTimeoutMs: 10_000,
  bulkMaxActions: 1000,
  bulkMaxBytes: 10 * MIB,
  bulkConcurrency: 2,
  retryInitialMs: 200,
  retryMaxMs: 30_000,
  retryGiveUpMs: 300_000,
  compress: true,
} as const;

/** ELASTICSEARCH_* / OPENSEARCH and the SLUICE_ bulk, retry and timeout settings (PGSync §2.3). */
export function parseEngine(r: EnvReader): EngineConfig {
  rejectUnsupported(r);
  const { url, credentials } = parseEngineUrl(r);
  const config: EngineConfig = {
    url,
    auth: parseEngineAuth(r, credentials, url),
    tls: parseEngineTls(r, url),
    ...parseBulkSettings(r),
    ...parseRetrySettings(r),
    requestTimeoutMs:
      durationMs(r, r.preferSluice(TIMEOUT, 'ELASTICSEARCH_TIMEOUT'), TIMEOUT, { min: 100, max: 3_600_000 }) ??
      ENGINE_DEFAULTS.requestTimeoutMs,
    compress: r.bool('ELASTICSEARCH_HTTP_COMPRESS') ?? ENGINE_DEFAULTS.compress,
  };
  const flavorHint = parseFlavor(r);
  if (flavorHint !== undefined) config.flavorHint = flavorHint;
  return config;
}

/** PGSync settings that would change where documents go; silently ignoring them would be wrong. */
function rejectUnsupported(r: EnvReader): void {
  for (const name of ['ELASTICSEARCH_AWS_HOSTED', 'OPENSEARCH_AWS_HOSTED']) {
    if (r.bool(name) === true) {
      r.error(
        name,
        'AWS SigV4 request signing is not supported: put a signing proxy in front of the domain and point ' +
          'ELASTICSEARCH_URL at it, or use the domain’s basic auth (fine-grained access control)',
      );
    }
  }
  if (r.has('ELASTICSEARCH_CLOUD_ID')) {
    r.error(
      'ELASTICSEARCH_CLOUD_ID',
      'not supported: set ELASTICSEARCH_URL to the deployment’s Elasticsearch endpoint (shown in the Elastic Cloud console) instead',
    );
  }
}

/** `OPENSEARCH=true` or `ELASTICSEARCH=false` force OpenSearch; if only one is given the other is its negation. */
function parseFlavor(r: EnvReader): EngineConfig['flavorHint'] {
  const elastic = r.bool('ELASTICSEARCH');
  const open = r.bool('OPENSEARCH');
  if (elastic === true && open === true) {
    r.error('OPENSEARCH', 'Cannot enable both ELASTICSEARCH and OPENSEARCH: set only one of them to true');
    return undefined;
  }
  if (elastic === false && open === false) {
    r.error('OPENSEARCH', 'Enable one search backend: ELASTICSEARCH and OPENSEARCH are both false');
    return undefined;
  }
  if (open === true || elastic === false) return 'opensearch';
  if (elastic === true || open === false) return 'elasticsearch';
  return undefined;
}

function parseEngineUrl(r: EnvReader): { url: string; credentials?: UrlCredentials } {
  const value = r.raw('ELASTICSEARCH_URL');
  if (value !== undefined) {
    for (const name of ['ELASTICSEARCH_SCHEME', 'ELASTICSEARCH_HOST', 'ELASTICSEARCH_PORT']) {
      if (r.has(name)) r.warn(name, 'ignored: ELASTICSEARCH_URL is set and takes precedence');
    }
    return parseFullUrl(r, value);
  }
  const scheme = r.oneOf('ELASTICSEARCH_SCHEME', ['http', 'https'] as const) ?? 'http';
  const port = r.int('ELASTICSEARCH_PORT', PORT_RANGE) ?? 9200;
  let host = r.raw('ELASTICSEARCH_HOST') ?? 'localhost';
  if (/[/@\s]/.test(host)) {
    r.error('ELASTICSEARCH_HOST', `must be a host name, not a URL; use ELASTICSEARCH_URL for a full URL (got ${shownHost(host)})`);
    return { url: `${scheme}://localhost:${port}` };
  }
  if (host.includes(':') && !host.startsWith('[')) host = `[${host}]`;
  const url = `${scheme}://${host}:${port}`;
  if (!URL.canParse(url)) r.error('ELASTICSEARCH_HOST', `is not a valid host name (got ${shownHost(host)})`);
  return { url };
}

/** Credentials in the userinfo are moved out of the URL into basic auth. */
function parseFullUrl(r: EnvReader, value: string): { url: string; credentials?: UrlCredentials } {
  const fallback = { url: 'http://localhost:9200' };
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    r.error('ELASTICSEARCH_URL', 'is not a valid URL; expected http(s)://[user:password@]host:port');
    return fallback;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    r.error('ELASTICSEARCH_URL', `must start with http:// or https:// (got scheme "${parsed.protocol.slice(0, 30)}")`);
    return fallback;
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    r.warn('ELASTICSEARCH_URL', 'the query string and fragment are ignored');
  }
  const url = `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, '')}`;
  if (parsed.username === '' && parsed.password === '') return { url };
  const username = decodeComponent(parsed.username);
  const password = decodeComponent(parsed.password);
  if (username === undefined || password === undefined) {
    r.error('ELASTICSEARCH_URL', 'contains a malformed percent-encoding (%XX) in the user or password');
    return { url };
  }
  return { url, credentials: { username, password } };
}

function parseBulkSettings(r: EnvReader): Pick<EngineConfig, 'bulkMaxActions' | 'bulkMaxBytes' | 'bulkConcurrency'> {
  // The seed's PGSYNC_BATCH_SIZE is the bulk size; it wins over PGSync's own ELASTICSEARCH_CHUNK_SIZE.
  const actionsName = r.has('PGSYNC_BATCH_SIZE') ? 'PGSYNC_BATCH_SIZE' : 'ELASTICSEARCH_CHUNK_SIZE';
  if (actionsName === 'PGSYNC_BATCH_SIZE' && r.has('ELASTICSEARCH_CHUNK_SIZE')) {
    r.warn('ELASTICSEARCH_CHUNK_SIZE', 'ignored: PGSYNC_BATCH_SIZE is also set and takes precedence');
  }
  const bytesName = r.preferSluice('SLUICE_BULK_MAX_BYTES', 'ELASTICSEARCH_MAX_CHUNK_BYTES');
  const concurrencyName = r.preferSluice('SLUICE_BULK_CONCURRENCY', 'ELASTICSEARCH_THREAD_COUNT');
  return {
    bulkMaxActions: r.int(actionsName, { min: 1, max: 100_000 }) ?? ENGINE_DEFAULTS.bulkMaxActions,
    bulkMaxBytes: intFrom(r, bytesName, { min: 1024, max: 1024 * MIB }) ?? ENGINE_DEFAULTS.bulkMaxBytes,
    bulkConcurrency: intFrom(r, concurrencyName, { min: 1, max: 64 }) ?? ENGINE_DEFAULTS.bulkConcurrency,
  };
}

function parseRetrySettings(r: EnvReader): Pick<EngineConfig, 'retryInitialMs' | 'retryMaxMs' | 'retryGiveUpMs'> {
  const initialName = r.preferSluice(RETRY_INITIAL, 'ELASTICSEARCH_INITIAL_BACKOFF');
  const maxName = r.preferSluice(RETRY_MAX, 'ELASTICSEARCH_MAX_BACKOFF');
  const initial = durationMs(r, initialName, RETRY_INITIAL, { min: 1, max: 600_000 });
  const max = durationMs(r, maxName, RETRY_MAX, { min: 1, max: 3_600_000 });
  const giveUp = r.int('SLUICE_RETRY_GIVE_UP_MS', { min: 1000, max: 86_400_000 });
  const result = {
    retryInitialMs: initial ?? ENGINE_DEFAULTS.retryInitialMs,
    retryMaxMs: max ?? ENGINE_DEFAULTS.retryMaxMs,
    retryGiveUpMs: giveUp ?? ENGINE_DEFAULTS.retryGiveUpMs,
  };
  if (result.retryInitialMs > result.retryMaxMs) {
    r.error(
      maxName ?? initialName ?? RETRY_MAX,
      `the maximum retry delay (${result.retryMaxMs} ms) is below the initial retry delay (${result.retryInitialMs} ms)`,
    );
  }
  if (result.retryGiveUpMs < result.retryInitialMs) {
    r.error('SLUICE_RETRY_GIVE_UP_MS', `must be at least the initial retry delay (${result.retryInitialMs} ms)`);
  }
  return result;
}

function intFrom(r: EnvReader, name: string | undefined, range: IntRange): number | undefined {
  return name === undefined ? undefined : r.int(name, range);
}

/** A duration read from `name`: milliseconds when it is the `SLUICE_…_MS` setting, else seconds (PGSync's unit). */
function durationMs(r: EnvReader, name: string | undefined, sluiceName: string, range: IntRange): number | undefined {
  if (name === undefined) return undefined;
  return name === sluiceName ? r.int(name, range) : r.secondsAsMs(name, range);
}
