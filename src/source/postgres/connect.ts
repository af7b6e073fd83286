import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresConfig } from '../../config/config-types.js';
import { AppError } from '../../errors/app-error.js';
import { withTimeout } from '../../util/timeout.js';
import { LivenessClient, type LivenessOptions } from './session-probe.js';
import { isLocalHost } from '../../util/loopback.js';

const CONNECT_TIMEOUT_MS = 30_000;

/** node-postgres connection options for one database, with TLS from PG_SSLMODE / PG_SSLROOTCERT. */
export function connectionOptions(config: PostgresConfig, database: string): pg.ClientConfig {
  return {
    host: config.host,
    port: config.port,
    user: config.user,
    password: config.password,
    database,
    ssl: sslOptions(config),
    application_name: 'sluice',
    // TCP keepalives: a peer gone without closing (failover, a NAT dropping idle flows) fails the connection
    // instead of leaving a query or an idle pooled client waiting on it for good.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // A connection attempt to a host that drops packets fails after this instead of the kernel's two minutes.
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    // Documents carry timestamptz values; UTC makes their text independent of the server's TimeZone.
    // Timeouts a DBA set for the role or database would cut a snapshot chunk or a large batch's document query, and
    // every retry the same way: Sluice's queries are bounded by its batch and chunk sizes, and a connection that
    // died is found by the query probe (SLUICE_QUERY_PROBE_SECONDS).
    options:
      `-c TimeZone=UTC -c DateStyle=ISO,MDY -c extra_float_digits=1 -c statement_timeout=0 -c idle_in_transaction_session_timeout=0` +
      (config.workMem ? ` -c work_mem=${config.workMem}` : ''),
  };
}

function sslOptions(config: PostgresConfig): pg.ClientConfig['ssl'] {
  const tls = serverTlsOptions(config);
  if (tls === false || config.sslCert === undefined || config.sslKey === undefined) return tls;
  return { ...tls, cert: config.sslCert, key: config.sslKey };
}

/** How the server's certificate is checked, per sslmode (libpq's rules). */
function serverTlsOptions(config: PostgresConfig): false | ConnectionOptions {
  switch (config.sslMode) {
    case 'disable':
      // Never TLS, even with PG_SSLROOTCERT set (as libpq).
      return false;
    case 'allow':
      // libpq's "allow" goes without TLS (libpq would try TLS after the server refused a plain login; Sluice does not).
      return false;
    case undefined:
    case 'prefer':
      // libpq's "prefer" (its default): TLS when the server takes it, else none; the certificate is not checked, or,
      // with a root certificate, its chain is (not the host name), as libpq does.
      // node-postgres cannot fall back by itself: resolvePreferredTls asked the server once.
      if (config.preferredTls !== true) return false;
      return config.sslRootCert ? { ca: config.sslRootCert, rejectUnauthorized: true, checkServerIdentity: () => undefined } : { rejectUnauthorized: false };
    case 'require':
      // As libpq: with a root certificate, "require" verifies the chain like "verify-ca".
      if (config.sslRootCert) return { ca: config.sslRootCert, rejectUnauthorized: true, checkServerIdentity: () => undefined };
      return { rejectUnauthorized: false };
    case 'verify-ca':
      return { ca: config.sslRootCert, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      return { ca: config.sslRootCert, rejectUnauthorized: true };
  }
}

/**
 * For sslmode prefer or unset, asks the server once whether it takes TLS, as libpq does on
 * each connection: a connection over TLS is tried; when the server has no TLS, or refuses that login over TLS (a
 * pg_hba.conf with hostnossl lines only), connections go without it, and the refusal is kept for the error of a
 * plain login that fails too. Any other failure (server down, starting, out of connections) is thrown, rather than
 * leave this process without TLS on a server that has it. Sets `config.preferredTls`; other modes are left alone.
 */
export async function resolvePreferredTls(config: PostgresConfig, database: string): Promise<void> {
  if ((config.sslMode !== undefined && config.sslMode !== 'prefer') || config.preferredTls !== undefined) return;
  const client = new pg.Client({ ...connectionOptions(config, database), ssl: sslOptions({ ...config, preferredTls: true }) });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    await endClient(client);
    const e = error as { code?: string; message?: string };
    const refusedOverTls = e.code === '28000' || e.code === '28P01' || isTlsFailure(e.code, e.message);
    if (!refusedOverTls) throw postgresError(error, 'connecting (over TLS, as PG_SSLMODE=prefer tries first)', config, database);
    config.preferredTls = false;
    config.preferredTlsRefusal = e.message ?? String(error);
    return;
  }
  config.preferredTls = true;
  await endClient(client);
}

const END_TIMEOUT_MS = 2_000;

/**
 * Closes a client whatever state it is in. pg's end() on a connection that has already failed can wait for an 'end'
 * event that has come and gone: forever, or, with nothing else holding the event loop, until Node exits with code 13.
 */
export async function endClient(client: pg.Client): Promise<void> {
  const ended = await withTimeout(client.end().then(() => true, () => true), END_TIMEOUT_MS);
  if (ended === undefined) (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}

/** node-postgres's error when the server answers a TLS request with "no". */
export const SERVER_WITHOUT_TLS = 'The server does not support SSL connections';

/**
 * What to say once when PG_SSLMODE prefer (the default) settled for no TLS: libpq's prefer does the same on every
 * connection, silently. A server on this machine without TLS is worth an info line; one across a network, or one
 * that has TLS but refused the login over it, a warning: a machine on the path could also have answered "no TLS" in
 * the server's place, and then asked for the password in clear.
 */
export function plainConnectionNotice(postgres: Pick<PostgresConfig, 'host' | 'preferredTlsRefusal'>): { level: 'info' | 'warn'; message: string } {
  if (postgres.preferredTlsRefusal !== SERVER_WITHOUT_TLS) {
    return {
      level: 'warn',
      message: 'PostgreSQL connections go without TLS: the server refused the login over TLS (PG_SSLMODE=prefer falls back, as libpq does); set PG_SSLMODE=require or verify-full to insist on TLS',
    };
  }
  if (isLocalHost(postgres.host)) return { level: 'info', message: 'PostgreSQL connections go without TLS: the server offers none (PG_SSLMODE=prefer)' };
  return {
    level: 'warn',
    message: 'PostgreSQL connections go without TLS: the server offers none (PG_SSLMODE=prefer), so the password and the rows cross the network readable; enable TLS on the server and set PG_SSLMODE=verify-full',
  };
}

/** SLUICE_QUERY_PROBE_SECONDS's default. */
export const DEFAULT_QUERY_PROBE_MS = 30_000;

/**
 * A pool whose connections are watched: one whose query waits without progress past SLUICE_QUERY_PROBE_SECONDS is
 * asked about on a new connection, and destroyed when its session is gone (see session-probe.ts).
 */
export function createPool(config: PostgresConfig, database: string, max: number, connectTimeoutMs = CONNECT_TIMEOUT_MS): pg.Pool {
  const options = { ...connectionOptions(config, database), connectionTimeoutMillis: connectTimeoutMs };
  const liveness: LivenessOptions = { probeAfterMs: config.queryProbeMs ?? DEFAULT_QUERY_PROBE_MS, probeOptions: options };
  class WatchedClient extends LivenessClient {
    constructor(clientOptions: pg.ClientConfig) {
      // A copy with its property descriptors: pg-pool hides the password as a non-enumerable property, which a spread drops.
      const own = Object.defineProperties({}, Object.getOwnPropertyDescriptors(clientOptions)) as pg.ClientConfig;
      own.connectionTimeoutMillis = connectTimeoutMs;
      super(own, liveness);
    }
  }
  const pool = new pg.Pool({
    ...options,
    // The pool applies its own connectionTimeoutMillis to waiting for a free client too, which a busy pool may
    // rightly do for long (snapshot chunks): connection attempts time out in the client instead.
    connectionTimeoutMillis: 0,
    max,
    idleTimeoutMillis: 10_000,
    Client: WatchedClient as unknown as new () => pg.ClientBase,
    onConnect: async (client) => {
      await clearTransactionTimeout(client);
      await (client as WatchedClient).identify();
    },
  });
  // An idle client losing its connection must not crash the process; the next query reports it.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * PostgreSQL 17's `transaction_timeout`, set by a DBA for the role or database, would cut a snapshot chunk's
 * transaction at every retry, as `statement_timeout` would (set to 0 in the startup options). It cannot go there:
 * older servers refuse a startup option they do not know, so it is cleared once connected, where the server has it.
 */
export async function clearTransactionTimeout(client: pg.ClientBase): Promise<void> {
  await client.query("SELECT set_config('transaction_timeout', '0', false) WHERE current_setting('server_version_num')::int >= 170000");
}

/** Maps a driver error to an AppError naming what we were doing; never includes the password. */
export function postgresError(error: unknown, doing: string, config: PostgresConfig, database: string): AppError {
  const e = error as { code?: string; message?: string };
  const where = `${config.user}@${config.host}:${config.port}/${database}`;
  const connectCodes = new Set(['ECONNREFUSED', 'ENOTFOUND', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', '28P01', '28000', '3D000', '57P03', 'ECONNABORTED']);
  const tls = isTlsFailure(e.code, e.message);
  const code = tls || (e.code && connectCodes.has(e.code)) ? 'SRC_CONNECT' : 'SRC_QUERY';
  const hint = tls && e.code !== undefined ? ` (PG_SSLMODE=${config.sslMode ?? 'unset'}: check PG_SSLROOTCERT and, for verify-full, that PG_HOST is a name on the server's certificate)` : '';
  // prefer fell back to a plain login, which failed too: the answer over TLS may be the one that matters (a client
  // certificate refused, say), as libpq reports both.
  const loginRefused = e.code === '28000' || e.code === '28P01';
  const overTls = loginRefused && config.preferredTls === false && config.preferredTlsRefusal !== undefined ? `; over TLS, tried first: ${config.preferredTlsRefusal}` : '';
  return new AppError(code, `PostgreSQL ${where}: ${doing} failed: ${e.message ?? String(error)}${hint}${overTls}`, { cause: error, details: { pgCode: e.code } });
}

/** Certificate verification and TLS handshake failures (Node's codes), and a server without TLS: the connection failed, not a query. */
function isTlsFailure(code: string | undefined, message: string | undefined): boolean {
  if (code !== undefined && /^ERR_(TLS|SSL)_|CERT|^UNABLE_TO_/.test(code)) return true;
  return code === undefined && message === SERVER_WITHOUT_TLS;
}
