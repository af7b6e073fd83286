/** Resolved settings of one Sluice process, from the environment, `.env` and CLI flags. */

export interface TlsOptions {
  /** PEM CA bundle contents (read from the file named by the setting), when given. */
  ca?: string;
  /** Verify the server certificate (default true). */
  rejectUnauthorized: boolean;
  /** PEM client certificate and key contents, for mutual TLS. */
  cert?: string;
  key?: string;
  /**
   * ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: some certificate the server presents (its own or an issuer's) must have
   * this fingerprint, upper-case hex pairs joined by ':' as Node prints them. It replaces CA verification, as in
   * PGSync's client.
   */
  pinnedFingerprint?: { algorithm: 'sha1' | 'sha256'; value: string };
  /** False: a verified certificate need not name the host (Redis's ssl_check_hostname=false). Default true. */
  checkHostname?: boolean;
}

export interface PostgresConfig {
  host: string;
  port: number;
  user: string;
  password?: string;
  /** Database of each schema entry overrides this; it is the default and the maintenance database. */
  database: string;
  /** libpq sslmode: disable | allow | prefer | require | verify-ca | verify-full. */
  sslMode?: 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';
  /** PEM CA contents read from PG_SSLROOTCERT. */
  sslRootCert?: string;
  /** PEM client certificate and key (PG_SSLCERT/PG_SSLKEY), sent whenever the connection uses TLS. */
  sslCert?: string;
  sslKey?: string;
  /**
   * With sslmode prefer (libpq's default, so also unset) and no root certificate: whether the server took TLS when
   * asked (resolvePreferredTls). Until that is known, connections go without TLS.
   */
  preferredTls?: boolean;
  /** Why the server refused the TLS login that made `preferredTls` false (for the error of a plain login that fails too). */
  preferredTlsRefusal?: string;
  /** `SET work_mem` on every connection, e.g. "16MB" (PG_WORK_MEM). */
  workMem?: string;
  /**
   * A replication stream that receives nothing for this long is taken for a dead connection and reopened
   * (SLUICE_REPLICATION_TIMEOUT_SECONDS; default 120 s).
   */
  replicationTimeoutMs?: number;
  /**
   * A query connection without an answer for this long is checked from a new connection, and dropped when the server
   * no longer holds its session (SLUICE_QUERY_PROBE_SECONDS; default 30 s).
   */
  queryProbeMs?: number;
}

export type EngineAuth =
  | { kind: 'none' }
  | { kind: 'basic'; username: string; password: string }
  | { kind: 'apiKey'; id?: string; key: string }
  | { kind: 'bearer'; token: string };

export interface EngineConfig {
  /** Base URL without credentials, e.g. http://localhost:9200 */
  url: string;
  auth: EngineAuth;
  tls: TlsOptions;
  /** Force a flavour instead of detecting it from `GET /` (OPENSEARCH=true → 'opensearch'). */
  flavorHint?: 'elasticsearch' | 'opensearch';
  requestTimeoutMs: number;
  /** Max actions per bulk request (PGSYNC_BATCH_SIZE, else ELASTICSEARCH_CHUNK_SIZE). */
  bulkMaxActions: number;
  /** Max bytes per bulk request (ELASTICSEARCH_MAX_CHUNK_BYTES / SLUICE_BULK_MAX_BYTES). */
  bulkMaxBytes: number;
  /** Bulk requests in flight at once (ELASTICSEARCH_THREAD_COUNT / SLUICE_BULK_CONCURRENCY). */
  bulkConcurrency: number;
  /** First retry delay and cap of the jittered exponential backoff. */
  retryInitialMs: number;
  retryMaxMs: number;
  /** Give up on a failing engine after this long without success (the run then fails; nothing is acknowledged). */
  retryGiveUpMs: number;
  /** gzip request bodies (ELASTICSEARCH_HTTP_COMPRESS). */
  compress: boolean;
}

export interface RedisConfig {
  url: string;
  username?: string;
  password?: string;
  db: number;
  tls?: TlsOptions;
  /** REDIS_SENTINELS: the primary is found through these Sentinels (its host and port in `url` are unused then). */
  sentinel?: RedisSentinelConfig;
  /**
   * REDIS_WAIT_REPLICAS / REDIS_WAIT_TIMEOUT_SECONDS: a checkpoint write counts as done only once this many replicas
   * have it (WAIT), so that a failover cannot take back a position already acknowledged to PostgreSQL.
   */
  wait?: { replicas: number; timeoutMs: number };
}

export interface RedisSentinelConfig {
  /** REDIS_SENTINELS, in order. */
  hosts: Array<{ host: string; port: number }>;
  /** REDIS_SENTINEL_MASTER: the monitored group's name (`sentinel monitor <name> …`). */
  name: string;
  /** REDIS_SENTINEL_USER / REDIS_SENTINEL_PASSWORD: the Sentinels' own login, when they require one. */
  username?: string;
  password?: string;
}

/** The HTTP server of /healthz, /readyz, /metrics and /status. */
export interface HttpServerConfig {
  /** SLUICE_HTTP_PORT (default 8080; 0 picks a free port). */
  port: number;
  /** SLUICE_HTTP_HOST (default 0.0.0.0). */
  host: string;
  /** SLUICE_READY_MAX_LAG_SECONDS (default 30): /readyz answers 503 while an index lags more. */
  readyMaxLagSeconds: number;
  /** SLUICE_HTTP_TOKEN: /metrics and /status answer only requests with `Authorization: Bearer <token>`. */
  token?: string;
  /** SLUICE_HTTP_TLS_CERT / SLUICE_HTTP_TLS_KEY (PEM contents): serve HTTPS. */
  tls?: { cert: string; key: string };
}

export interface SluiceConfig {
  /** Path of schema.json: --config/-c, else SCHEMA, else config/schema.json. */
  schemaPath: string;
  postgres: PostgresConfig;
  engine: EngineConfig;
  /** Present when REDIS_URL/REDIS_HOST/... configure a Redis. */
  redis?: RedisConfig;
  /** REDIS_CHECKPOINT=true or a configured Redis. */
  checkpointStore: 'redis' | 'file' | 'postgres';
  /** CHECKPOINT_PATH (default "./"). */
  checkpointPath: string;
  /** JSON-lines file receiving documents the engine rejected (SLUICE_DEAD_LETTER_PATH). */
  deadLetterPath: string;
  /** Root rows per snapshot chunk (SLUICE_SNAPSHOT_CHUNK_SIZE, else QUERY_CHUNK_SIZE). */
  snapshotChunkSize: number;
  /** Snapshot chunks queried at once (SLUICE_SNAPSHOT_CONCURRENCY). */
  snapshotConcurrency: number;
  /** PGSYNC_FLUSH_INTERVAL in milliseconds (the seed gives seconds). */
  flushIntervalMs: number;
  /** SLUICE_REINDEX_GRACE_SECONDS (default 600): how long a generation the alias left is kept before deletion. */
  reindexGraceSeconds: number;
  /**
   * SLUICE_LEASE_TTL_SECONDS (default 10): lifetime of an index's ownership lease. A standby takes over a crashed
   * owner's index within about this long; the owner renews every third of it.
   */
  leaseTtlSeconds: number;
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** SLUICE_LOG_FORMAT: `auto` (default) writes human-readable lines to a terminal and JSON lines otherwise. */
  logFormat?: 'auto' | 'json' | 'pretty';
  /** HTTP server settings; always set by `parseEnvironment` (optional only so hand-built configs stay valid). */
  http?: HttpServerConfig;
  /** Settings that were read but are PGSync-only or dead, and settings not recognised: warned about. */
  warnings: string[];
}
