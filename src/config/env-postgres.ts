import type { PostgresConfig } from './config-types.js';
import { decodeComponent, type EnvReader } from './env-reader.js';
import { shownHost } from './redact.js';

export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
type SslMode = (typeof SSL_MODES)[number];

/** `postgresql+psycopg2://` is SQLAlchemy's spelling, found in PGSync deployments. */
const PG_URL_SCHEMES = ['postgres:', 'postgresql:', 'postgresql+psycopg2:'];
/** PostgreSQL memory units (case-sensitive, as the server parses them); a bare number is kB. */
const WORK_MEM_PATTERN = /^\d+(B|kB|MB|GB|TB)?$/;
const PORT_RANGE = { min: 1, max: 65535 };

/** What PG_URL gives; each part, when present, overrides the matching PG_* variable. */
interface PgUrlParts {
  host?: string;
  port?: number;
  user?: string;
  password?: string;
  database?: string;
  sslMode?: SslMode;
  sslRootCertPath?: string;
  sslCertPath?: string;
  sslKeyPath?: string;
  /** PG_URL is set but could not be parsed (its error is already reported). */
  invalid?: boolean;
}

/**
 * PG_URL and PG_HOST/PG_PORT/PG_USER/PG_PASSWORD/PG_DATABASE/PG_SSLMODE/PG_SSLROOTCERT/PG_WORK_MEM (PGSync §2.2),
 * and the client certificate of PG_SSLCERT/PG_SSLKEY (libpq's sslcert/sslkey).
 * Unlike PGSync, a part missing from PG_URL is taken from its PG_* variable instead of being dropped.
 */
export function parsePostgres(r: EnvReader): PostgresConfig {
  checkDriver(r);
  const url = parsePgUrl(r);
  const host = fromUrlOr(r, 'PG_HOST', url.host, 'host', () => r.raw('PG_HOST')) ?? 'localhost';
  if (url.host === undefined && /@|:\/\//.test(host)) {
    r.error('PG_HOST', `must be a host name (or a socket directory), not a URL; use PG_URL for a full URL (got ${shownHost(host)})`);
  } else if (host.includes(',')) {
    // libpq tries such a list in turn; node-postgres takes one host, and the slots live on the primary anyway.
    r.error(url.host === undefined ? 'PG_HOST' : 'PG_URL', `names several hosts (libpq's list, tried in turn): Sluice connects to one; name the primary, or an address that follows it (got ${shownHost(host)})`);
  }
  const port = fromUrlOr(r, 'PG_PORT', url.port, 'port', () => r.int('PG_PORT', PORT_RANGE)) ?? 5432;
  const user = fromUrlOr(r, 'PG_USER', url.user, 'user', () => r.raw('PG_USER'));
  if (user === undefined && url.invalid !== true) r.error('PG_USER', 'required: set PG_USER, or give the user in PG_URL');
  // libpq's PGPASSWORD after Sluice's own, as for the TLS variables (the driver would read it anyway, unredacted).
  const password = fromUrlOr(r, 'PG_PASSWORD', url.password, 'password', () => r.raw('PG_PASSWORD') ?? r.raw('PGPASSWORD'));
  const database = fromUrlOr(r, 'PG_DATABASE', url.database, 'database', () => r.raw('PG_DATABASE')) ?? 'postgres';
  // libpq's own variables, which PGSync (psycopg2) honoured too, come after Sluice's.
  const sslMode = fromUrlOr(r, 'PG_SSLMODE', url.sslMode, 'sslmode', () => r.oneOf('PG_SSLMODE', SSL_MODES) ?? r.oneOf('PGSSLMODE', SSL_MODES));
  const sslRootCert = readRootCert(r, url.sslRootCertPath);
  if (sslMode === 'verify-ca' && sslRootCert === undefined && url.invalid !== true) {
    r.error(
      url.sslMode !== undefined ? 'PG_URL' : r.raw('PG_SSLMODE') !== undefined ? 'PG_SSLMODE' : 'PGSSLMODE',
      'verify-ca needs PG_SSLROOTCERT (the CA that signed the server\'s certificate): without it any certificate a public CA signed would pass, whatever its name. Use verify-full to check the name against the system\'s CAs',
    );
  }
  const client = readClientCertificate(r, url, sslMode);
  const workMem = r.raw('PG_WORK_MEM');
  if (workMem !== undefined && !WORK_MEM_PATTERN.test(workMem)) {
    r.error('PG_WORK_MEM', `must be a PostgreSQL memory size such as 16MB or 4096kB (got "${workMem}")`);
  }
  const config: PostgresConfig = { host, port, user: user ?? '', database };
  if (password !== undefined) config.password = password;
  if (sslMode !== undefined) config.sslMode = sslMode;
  if (sslRootCert !== undefined) config.sslRootCert = sslRootCert;
  if (client !== undefined) Object.assign(config, client);
  if (workMem !== undefined) config.workMem = workMem;
  const replicationTimeout = r.int('SLUICE_REPLICATION_TIMEOUT_SECONDS', { min: 15, max: 3600 });
  if (replicationTimeout !== undefined) config.replicationTimeoutMs = replicationTimeout * 1000;
  const queryProbe = r.int('SLUICE_QUERY_PROBE_SECONDS', { min: 5, max: 3600 });
  if (queryProbe !== undefined) config.queryProbeMs = queryProbe * 1000;
  return config;
}

function checkDriver(r: EnvReader): void {
  const driver = r.raw('PG_DRIVER');
  if (driver !== undefined && driver.toLowerCase() !== 'psycopg2') {
    r.error(
      'PG_DRIVER',
      `Sluice syncs from PostgreSQL only; MySQL/MariaDB drivers are not supported. Unset PG_DRIVER or set it to psycopg2 (got "${driver}")`,
    );
  }
}

/** The part from PG_URL when it has one (warning when the PG_* variable is set to something else), else `readOwn()`. */
function fromUrlOr<T>(r: EnvReader, name: string, fromUrl: T | undefined, part: string, readOwn: () => T | undefined): T | undefined {
  if (fromUrl === undefined) return readOwn();
  const own = r.raw(name);
  if (own !== undefined && own !== String(fromUrl)) r.warn(name, `ignored: PG_URL gives the ${part}`);
  return fromUrl;
}

function readRootCert(r: EnvReader, pathFromUrl: string | undefined): string | undefined {
  if (pathFromUrl === undefined) return r.pemFile('PG_SSLROOTCERT', 'certificate') ?? r.pemFile('PGSSLROOTCERT', 'certificate');
  const own = r.raw('PG_SSLROOTCERT');
  if (own !== undefined && own !== pathFromUrl) r.warn('PG_SSLROOTCERT', 'ignored: PG_URL gives the sslrootcert');
  return r.readPem('PG_URL', pathFromUrl, 'certificate');
}

/**
 * The client certificate and key for `cert` authentication (pg_hba.conf), both or neither: from PG_URL's sslcert
 * and sslkey, else PG_SSLCERT/PG_SSLKEY, else libpq's PGSSLCERT/PGSSLKEY. libpq's fallback to
 * ~/.postgresql/postgresql.crt is not followed: a certificate is sent only where a setting names it.
 */
function readClientCertificate(r: EnvReader, url: PgUrlParts, sslMode: SslMode | undefined): { sslCert: string; sslKey: string } | undefined {
  const certAt = url.sslCertPath !== undefined ? 'PG_URL' : r.has('PG_SSLCERT') ? 'PG_SSLCERT' : r.has('PGSSLCERT') ? 'PGSSLCERT' : undefined;
  const keyAt = url.sslKeyPath !== undefined ? 'PG_URL' : r.has('PG_SSLKEY') ? 'PG_SSLKEY' : r.has('PGSSLKEY') ? 'PGSSLKEY' : undefined;
  if (certAt === undefined && keyAt === undefined) return undefined;
  if (certAt === undefined || keyAt === undefined) {
    const [present, missing] = certAt !== undefined ? [certAt, 'PG_SSLKEY'] : [keyAt!, 'PG_SSLCERT'];
    r.error(missing, `required because ${present} gives the other half: a client certificate needs its key`);
    return undefined;
  }
  if (sslMode === 'disable') {
    r.warn(certAt, 'unused: PG_SSLMODE=disable sends no certificate');
    return undefined;
  }
  const sslCert = r.readPem(certAt, url.sslCertPath ?? r.raw(certAt)!, 'certificate');
  const sslKey = r.readPem(keyAt, url.sslKeyPath ?? r.raw(keyAt)!, 'key');
  return sslCert !== undefined && sslKey !== undefined ? { sslCert, sslKey } : undefined;
}

function parsePgUrl(r: EnvReader): PgUrlParts {
  const value = r.raw('PG_URL');
  if (value === undefined) return {};
  let url: URL;
  // libpq's form without a host (postgresql:///db, postgresql://user@/db), which the host parameter may complete
  // (?host=/var/run/postgresql, Cloud SQL's /cloudsql/…): a URL parser wants a host, so one is put in and dropped.
  const hostless = /^postgres(?:ql)?:\/\/(?:[^/?#@]*@)?(?=[/?#]|$)/i.exec(value);
  try {
    url = new URL(hostless === null ? value : `${hostless[0]}localhost${value.slice(hostless[0].length)}`);
  } catch {
    const port = /^[a-z+]+:\/\/(?:[^/?#@]*@)?(?:\[[^\]]*\]|[^/?#:]*):(\d+)(?=[/?#]|$)/i.exec(value)?.[1];
    if (port !== undefined && Number(port) > PORT_RANGE.max) r.error('PG_URL', `port ${port} is out of range (1 to ${PORT_RANGE.max})`);
    else r.error('PG_URL', 'is not a valid URL; expected postgresql://user:password@host:port/database');
    return { invalid: true };
  }
  if (!PG_URL_SCHEMES.includes(url.protocol)) {
    r.error('PG_URL', `must start with postgresql:// or postgres:// (got scheme "${url.protocol.slice(0, 30)}")`);
    return { invalid: true };
  }
  const parts: PgUrlParts = {};
  const host = hostless === null ? decodeComponent(url.hostname.replace(/^\[(.*)\]$/, '$1')) : undefined;
  if (host) parts.host = host;
  if (url.port !== '') parts.port = r.checkInt('PG_URL', url.port, PORT_RANGE);
  const user = decodeComponent(url.username);
  const password = decodeComponent(url.password);
  const database = decodeComponent(url.pathname.replace(/^\//, ''));
  if (user === undefined || password === undefined || database === undefined) {
    r.error('PG_URL', 'contains a malformed percent-encoding (%XX) in the user, password or database');
    return { ...parts, invalid: true };
  }
  if (user) parts.user = user;
  if (password) parts.password = password;
  if (database) parts.database = database;
  readUrlParameters(r, url.searchParams, parts);
  return parts;
}

function readUrlParameters(r: EnvReader, params: URLSearchParams, parts: PgUrlParts): void {
  for (const [key, value] of params) {
    if (key === 'sslmode') {
      const mode = SSL_MODES.find((m) => m === value.toLowerCase());
      if (mode === undefined) {
        r.error('PG_URL', `parameter sslmode must be one of ${SSL_MODES.join(', ')} (got "${value.slice(0, 30)}")`);
      } else {
        parts.sslMode = mode;
      }
    } else if (key === 'sslrootcert') {
      parts.sslRootCertPath = value;
    } else if (key === 'sslcert') {
      parts.sslCertPath = value;
    } else if (key === 'sslkey') {
      parts.sslKeyPath = value;
    } else if (key === 'host') {
      // As libpq: the parameter wins over the URL's host; a path is a Unix socket directory.
      if (value === '' || value.includes(',')) r.error('PG_URL', `parameter host must be one host name or socket directory (got "${value.slice(0, 60)}")`);
      else parts.host = value;
    } else if (key === 'port') {
      parts.port = r.checkInt('PG_URL', value, PORT_RANGE);
    } else {
      r.warn('PG_URL', `parameter "${key.slice(0, 40)}" is ignored (only host, port, sslmode, sslrootcert, sslcert and sslkey are read)`);
    }
  }
}
