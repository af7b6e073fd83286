import type { EnvReader } from './env-reader.js';

/** Every `SLUICE_` setting. An unknown `SLUICE_` variable gets an "unknown setting" warning. */
export const SLUICE_VARIABLES = [
  'SLUICE_CHECKPOINT_STORE',
  'SLUICE_DEAD_LETTER_PATH',
  'SLUICE_SNAPSHOT_CHUNK_SIZE',
  'SLUICE_SNAPSHOT_CONCURRENCY',
  'SLUICE_BULK_MAX_BYTES',
  'SLUICE_BULK_CONCURRENCY',
  'SLUICE_RETRY_INITIAL_MS',
  'SLUICE_RETRY_MAX_MS',
  'SLUICE_RETRY_GIVE_UP_MS',
  'SLUICE_ENGINE_TIMEOUT_MS',
  'SLUICE_HTTP_PORT',
  'SLUICE_HTTP_HOST',
  'SLUICE_READY_MAX_LAG_SECONDS',
  'SLUICE_HTTP_TOKEN',
  'SLUICE_HTTP_TLS_CERT',
  'SLUICE_HTTP_TLS_KEY',
  'SLUICE_REINDEX_GRACE_SECONDS',
  'SLUICE_LEASE_TTL_SECONDS',
  'SLUICE_REPLICATION_TIMEOUT_SECONDS',
  'SLUICE_QUERY_PROBE_SECONDS',
  'SLUICE_LOG_LEVEL',
  'SLUICE_LOG_FORMAT',
] as const;

/** Seed and PGSync variables that Sluice reads, with their PGSync meaning. */
export const LEGACY_VARIABLES = [
  // Seed deployment
  'PGSYNC_BATCH_SIZE',
  'PGSYNC_FLUSH_INTERVAL',
  'PGSYNC_LOG_LEVEL',
  'LOG_LEVEL',
  // General
  'SCHEMA',
  'CHECKPOINT_PATH',
  'QUERY_CHUNK_SIZE',
  'REDIS_CHECKPOINT',
  // PostgreSQL
  'PG_URL',
  'PG_HOST',
  'PG_PORT',
  'PG_USER',
  'PG_PASSWORD',
  'PG_DATABASE',
  'PG_SSLMODE',
  'PG_SSLROOTCERT',
  'PG_SSLCERT',
  'PG_SSLKEY',
  // libpq's, read after PG_PASSWORD, PG_SSLMODE, PG_SSLROOTCERT, PG_SSLCERT and PG_SSLKEY.
  'PGPASSWORD',
  'PGSSLMODE',
  'PGSSLROOTCERT',
  'PGSSLCERT',
  'PGSSLKEY',
  'PG_WORK_MEM',
  'PG_DRIVER',
  // Elasticsearch / OpenSearch
  'ELASTICSEARCH',
  'OPENSEARCH',
  'ELASTICSEARCH_URL',
  'ELASTICSEARCH_SCHEME',
  'ELASTICSEARCH_HOST',
  'ELASTICSEARCH_PORT',
  'ELASTICSEARCH_USER',
  'ELASTICSEARCH_PASSWORD',
  'ELASTICSEARCH_HTTP_AUTH',
  'ELASTICSEARCH_BASIC_AUTH',
  'ELASTICSEARCH_BEARER_AUTH',
  'ELASTICSEARCH_API_KEY_ID',
  'ELASTICSEARCH_API_KEY',
  'ELASTICSEARCH_CA_CERTS',
  'ELASTICSEARCH_VERIFY_CERTS',
  'ELASTICSEARCH_CLIENT_CERT',
  'ELASTICSEARCH_CLIENT_KEY',
  'ELASTICSEARCH_SSL_ASSERT_FINGERPRINT',
  'ELASTICSEARCH_TIMEOUT',
  'ELASTICSEARCH_HTTP_COMPRESS',
  'ELASTICSEARCH_CHUNK_SIZE',
  'ELASTICSEARCH_MAX_CHUNK_BYTES',
  'ELASTICSEARCH_THREAD_COUNT',
  'ELASTICSEARCH_INITIAL_BACKOFF',
  'ELASTICSEARCH_MAX_BACKOFF',
  'ELASTICSEARCH_AWS_HOSTED',
  'OPENSEARCH_AWS_HOSTED',
  'ELASTICSEARCH_CLOUD_ID',
  // Redis
  'REDIS_URL',
  'REDIS_SCHEME',
  'REDIS_HOST',
  'REDIS_PORT',
  'REDIS_DB',
  'REDIS_USER',
  'REDIS_AUTH',
  'REDIS_CA_CERTS',
  'REDIS_CLIENT_CERT',
  'REDIS_CLIENT_KEY',
  'REDIS_SENTINELS',
  'REDIS_SENTINEL_MASTER',
  'REDIS_SENTINEL_USER',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_WAIT_REPLICAS',
  'REDIS_WAIT_TIMEOUT_SECONDS',
  // Rejected with an error: they would change what is synced or where
  'SCHEMA_URL',
  'S3_SCHEMA_URL',
] as const;

const MODE = 'Sluice always streams from a logical replication slot (pgoutput); PGSync’s trigger, queue and polling modes and their tuning do not apply';
const REDIS_QUEUE = 'Sluice keeps no change queue in Redis (Redis holds checkpoints only)';
const QUERY = 'Sluice builds documents with its own set-based queries; tune the snapshot with SLUICE_SNAPSHOT_CHUNK_SIZE and SLUICE_SNAPSHOT_CONCURRENCY';
const LOGGING = 'Sluice writes log lines at SLUICE_LOG_LEVEL / PGSYNC_LOG_LEVEL in the SLUICE_LOG_FORMAT format, with a progress summary every 30 s; progress is also served on /status';
const MYSQL = 'MySQL/MariaDB only';
const REPLICA = 'Sluice reads from the primary, where the replication slot lives; read-replica settings are not used';
const BULK = 'Sluice retries 429/5xx for SLUICE_RETRY_GIVE_UP_MS and dead-letters rejected documents; tune SLUICE_BULK_* instead';
const TLS = 'TLS follows the URL scheme, ELASTICSEARCH_CA_CERTS, ELASTICSEARCH_VERIFY_CERTS and the client certificate; hostnames are verified whenever certificates are';
const AWS = 'AWS request signing is not supported';

/** PGSync variables that are accepted but not used, with the reason shown in the warning. */
export const IGNORED_PGSYNC_VARIABLES: Readonly<Record<string, string>> = {
  POLLING: MODE,
  WAL: MODE,
  USE_ASYNC: MODE,
  NUM_WORKERS: MODE,
  JOIN_QUERIES: MODE,
  POLL_TIMEOUT: MODE,
  POLL_INTERVAL: MODE,
  REPLICATION_SLOT_CLEANUP_INTERVAL: MODE,
  LOGICAL_SLOT_CHUNK_SIZE: MODE,
  NTHREADS_POLLDB: MODE,
  REDIS_POLL_INTERVAL: REDIS_QUEUE,
  REDIS_READ_CHUNK_SIZE: REDIS_QUEUE,
  REDIS_WRITE_CHUNK_SIZE: REDIS_QUEUE,
  REDIS_SOCKET_TIMEOUT: REDIS_QUEUE,
  REDIS_RETRY_ON_TIMEOUT: REDIS_QUEUE,
  FILTER_CHUNK_SIZE: QUERY,
  STREAM_RESULTS: QUERY,
  BLOCK_SIZE: QUERY,
  QUERY_LITERAL_BINDS: QUERY,
  LOG_INTERVAL: LOGGING,
  FORMAT_WITH_COMMAS: LOGGING,
  CONSOLE_LOGGING_HANDLER_MIN_LEVEL: LOGGING,
  GENERAL_LOGGING_LEVEL: LOGGING,
  LOG_HANDLERS: LOGGING,
  CUSTOM_LOGGING: LOGGING,
  USE_UTF8MB4: MYSQL,
  MYSQL_DATABASE: MYSQL,
  PG_URL_RO: REPLICA,
  PG_HOST_RO: REPLICA,
  PG_PORT_RO: REPLICA,
  PG_USER_RO: REPLICA,
  PG_PASSWORD_RO: REPLICA,
  PG_SSLMODE_RO: REPLICA,
  PG_SSLROOTCERT_RO: REPLICA,
  ELASTICSEARCH_STREAMING_BULK: BULK,
  ELASTICSEARCH_QUEUE_SIZE: BULK,
  ELASTICSEARCH_POOL_MAXSIZE: BULK,
  ELASTICSEARCH_MAX_RETRIES: BULK,
  ELASTICSEARCH_RAISE_ON_ERROR: BULK,
  ELASTICSEARCH_RAISE_ON_EXCEPTION: BULK,
  ELASTICSEARCH_IGNORE_STATUS: BULK,
  ELASTICSEARCH_USE_SSL: TLS,
  ELASTICSEARCH_SSL_ASSERT_HOSTNAME: TLS,
  ELASTICSEARCH_SSL_VERSION: TLS,
  ELASTICSEARCH_SSL_CONTEXT: TLS,
  ELASTICSEARCH_SSL_SHOW_WARN: TLS,
  ELASTICSEARCH_OPAQUE_ID: 'the X-Opaque-Id header is not sent',
  ELASTICSEARCH_AWS_REGION: AWS,
  OPENSEARCH_AWS_SERVERLESS: AWS,
};

/** Whole families of PGSync variables that are accepted but not used. */
export const IGNORED_PGSYNC_PREFIXES: Readonly<Record<string, string>> = {
  SQLALCHEMY_: 'Sluice manages its own PostgreSQL connections',
};

/** Prefixes owned by Sluice (and the seed): unknown names under them are probably typos. */
const CHECKED_PREFIXES = ['SLUICE_', 'PGSYNC_'];
/** Prefixes other software shares (a postgres image sets PG_MAJOR): an unknown name is only a typo near a known one. */
const NEAR_PREFIXES = ['PG_', 'PGSSL', 'ELASTICSEARCH_', 'OPENSEARCH_', 'REDIS_'];
const KNOWN: ReadonlySet<string> = new Set<string>([...SLUICE_VARIABLES, ...LEGACY_VARIABLES]);
const MAX_SUGGESTION_DISTANCE = 2;

/** Warns about ignored PGSync variables and unknown SLUICE_/PGSYNC_ variables (with a did-you-mean). */
export function checkVariableNames(r: EnvReader): void {
  for (const name of r.names().sort()) {
    if (KNOWN.has(name)) continue;
    const reason = IGNORED_PGSYNC_VARIABLES[name] ?? prefixReason(name);
    if (reason !== undefined) {
      r.warn(name, `accepted but not used by Sluice: ${reason}`);
    } else if (CHECKED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      const suggestion = suggest(name);
      r.warn(name, `unknown setting${suggestion === undefined ? '' : `; did you mean ${suggestion}?`}`);
    } else if (NEAR_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      const suggestion = suggest(name);
      if (suggestion !== undefined) r.warn(name, `unknown setting, not used; did you mean ${suggestion}?`);
    }
  }
}

function prefixReason(name: string): string | undefined {
  const prefix = Object.keys(IGNORED_PGSYNC_PREFIXES).find((p) => name.startsWith(p));
  return prefix === undefined ? undefined : IGNORED_PGSYNC_PREFIXES[prefix];
}

/** The closest known name within the Levenshtein distance limit. */
export function suggest(name: string): string | undefined {
  let best: string | undefined;
  let bestDistance = MAX_SUGGESTION_DISTANCE + 1;
  for (const known of KNOWN) {
    const distance = levenshtein(name, known);
    if (distance < bestDistance) {
      best = known;
      bestDistance = distance;
    }
  }
  return best;
}

export function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
