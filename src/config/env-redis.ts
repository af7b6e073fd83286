import type { RedisConfig, RedisSentinelConfig, SluiceConfig } from './config-types.js';
import { decodeComponent, type EnvReader } from './env-reader.js';
import { shownHost } from './redact.js';

export const CHECKPOINT_STORES = ['file', 'redis', 'postgres'] as const;
type CheckpointStore = SluiceConfig['checkpointStore'];

const PORT_RANGE = { min: 1, max: 65535 };
const DB_RANGE = { min: 0, max: 1_000_000 };

/** Redis parts given by REDIS_URL; a part it lacks comes from its REDIS_* variable. */
interface RedisUrlParts {
  scheme?: 'redis' | 'rediss';
  host?: string;
  port?: number;
  db?: number;
  username?: string;
  password?: string;
  /** redis-py's TLS parameters (ssl_cert_reqs, ssl_check_hostname, ssl_ca_certs, ssl_certfile, ssl_keyfile). */
  verify?: boolean;
  checkHostname?: boolean;
  caPath?: string;
  certPath?: string;
  keyPath?: string;
}

/**
 * The checkpoint store and the Redis connection (PGSync §2.4 and REDIS_CHECKPOINT).
 * Store: REDIS_CHECKPOINT=true → redis (SLUICE_CHECKPOINT_STORE naming another store is a contradiction);
 * else SLUICE_CHECKPOINT_STORE; else REDIS_CHECKPOINT=false → file; else redis when REDIS_URL or REDIS_HOST
 * is set; else file. Redis settings are returned whenever Redis is named or the store is redis.
 */
export function parseCheckpointAndRedis(r: EnvReader): { checkpointStore: CheckpointStore; redis?: RedisConfig } {
  const redisCheckpoint = r.bool('REDIS_CHECKPOINT');
  const explicit = r.oneOf('SLUICE_CHECKPOINT_STORE', CHECKPOINT_STORES);
  const redisNamed = r.has('REDIS_URL') || r.has('REDIS_HOST') || r.has('REDIS_SENTINELS');
  const store = chooseStore(r, redisCheckpoint, explicit, redisNamed);
  if (store !== 'redis' && !redisNamed) return { checkpointStore: store };
  if (store !== 'redis') {
    r.warn(r.has('REDIS_URL') ? 'REDIS_URL' : r.has('REDIS_HOST') ? 'REDIS_HOST' : 'REDIS_SENTINELS', `Redis is configured but unused: checkpoints go to the ${store} store`);
  }
  return { checkpointStore: store, redis: parseRedis(r) };
}

function chooseStore(
  r: EnvReader,
  redisCheckpoint: boolean | undefined,
  explicit: CheckpointStore | undefined,
  redisNamed: boolean,
): CheckpointStore {
  if (redisCheckpoint === true) {
    if (explicit !== undefined && explicit !== 'redis') {
      r.error(
        'SLUICE_CHECKPOINT_STORE',
        `contradicts REDIS_CHECKPOINT=true (got "${explicit}"): unset one of them, or set SLUICE_CHECKPOINT_STORE=redis`,
      );
    }
    return 'redis';
  }
  if (explicit !== undefined) {
    if (redisCheckpoint === false && explicit === 'redis') {
      r.warn('REDIS_CHECKPOINT', 'ignored: SLUICE_CHECKPOINT_STORE=redis is also set and takes precedence');
    }
    return explicit;
  }
  if (redisCheckpoint === false) return 'file';
  return redisNamed ? 'redis' : 'file';
}

function parseRedis(r: EnvReader): RedisConfig {
  const url = parseRedisUrl(r);
  const scheme = fromUrlOr(r, 'REDIS_SCHEME', url.scheme, () => r.oneOf('REDIS_SCHEME', ['redis', 'rediss'] as const)) ?? 'redis';
  const rawHost = fromUrlOr(r, 'REDIS_HOST', url.host, () => r.raw('REDIS_HOST')) ?? 'localhost';
  const host = rawHost.includes(':') && !rawHost.startsWith('[') ? `[${rawHost}]` : rawHost;
  const port = fromUrlOr(r, 'REDIS_PORT', url.port, () => r.int('REDIS_PORT', PORT_RANGE)) ?? 6379;
  const db = fromUrlOr(r, 'REDIS_DB', url.db, () => r.int('REDIS_DB', DB_RANGE)) ?? 0;
  const username = fromUrlOr(r, 'REDIS_USER', url.username, () => r.raw('REDIS_USER'));
  const password = fromUrlOr(r, 'REDIS_AUTH', url.password, () => r.raw('REDIS_AUTH'));
  const config: RedisConfig = { url: `${scheme}://${host}:${port}`, db };
  if (/[/@\s]/.test(rawHost)) r.error('REDIS_HOST', `must be a host name, not a URL; use REDIS_URL for a full URL (got ${shownHost(rawHost)})`);
  else if (!URL.canParse(config.url)) r.error('REDIS_HOST', `is not a valid host name (got ${shownHost(rawHost)})`);
  if (password !== undefined) config.password = password;
  if (username !== undefined) {
    if (password === undefined) r.warn('REDIS_USER', 'ignored: a Redis ACL user needs a password (REDIS_AUTH)');
    else config.username = username;
  }
  const tls = parseRedisTls(r, url, scheme);
  if (tls !== undefined) config.tls = tls;
  const sentinel = parseSentinels(r, url);
  if (sentinel !== undefined) config.sentinel = sentinel;
  const wait = parseWait(r);
  if (wait !== undefined) config.wait = wait;
  return config;
}

const WAIT_DEFAULT_TIMEOUT_MS = 5000;

/**
 * REDIS_WAIT_REPLICAS (default 0: off) and REDIS_WAIT_TIMEOUT_SECONDS (default 5; under the 60 s command timeout, so
 * that a WAIT without enough replicas ends as a failed save rather than as a dropped connection).
 */
function parseWait(r: EnvReader): RedisConfig['wait'] {
  const replicas = r.int('REDIS_WAIT_REPLICAS', { min: 0, max: 100 });
  const timeoutMs = r.secondsAsMs('REDIS_WAIT_TIMEOUT_SECONDS', { min: 10, max: 30_000 });
  if (replicas === undefined || replicas === 0) {
    if (r.has('REDIS_WAIT_TIMEOUT_SECONDS')) r.warn('REDIS_WAIT_TIMEOUT_SECONDS', 'ignored: REDIS_WAIT_REPLICAS is not set or 0');
    return undefined;
  }
  return { replicas, timeoutMs: timeoutMs ?? WAIT_DEFAULT_TIMEOUT_MS };
}

const SENTINEL_PORT = 26379;

/**
 * REDIS_SENTINELS (`host[:port],…`, port 26379 by default): the primary is asked of these Sentinels, under the group
 * name REDIS_SENTINEL_MASTER (default `mymaster`, Redis's own example), and found again after a failover. The primary's
 * address given otherwise (REDIS_URL's host, REDIS_HOST, REDIS_PORT) is then unused; its database, login and TLS apply.
 */
function parseSentinels(r: EnvReader, url: RedisUrlParts): RedisSentinelConfig | undefined {
  const list = r.raw('REDIS_SENTINELS');
  if (list === undefined) {
    for (const name of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_USER', 'REDIS_SENTINEL_PASSWORD']) {
      if (r.has(name)) r.warn(name, 'ignored: REDIS_SENTINELS is not set');
    }
    return undefined;
  }
  const hosts: RedisSentinelConfig['hosts'] = [];
  for (const item of list.split(',').map((part) => part.trim())) {
    const match = /^(\[[0-9a-fA-F:.]+\]|[^\s:/@\[\]]+)(?::(\d+))?$/.exec(item);
    if (match === null) {
      r.error('REDIS_SENTINELS', `expected host[:port] entries separated by commas (got ${shownHost(item)})`);
      return undefined;
    }
    const port = match[2] === undefined ? SENTINEL_PORT : r.checkInt('REDIS_SENTINELS', match[2], PORT_RANGE);
    if (port === undefined) return undefined;
    hosts.push({ host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port });
  }
  for (const [name, given] of [['REDIS_HOST', r.has('REDIS_HOST')], ['REDIS_PORT', r.has('REDIS_PORT')], ['REDIS_URL', url.host !== undefined]] as const) {
    if (given) r.warn(name, `its host and port are unused: REDIS_SENTINELS finds the primary`);
  }
  const sentinel: RedisSentinelConfig = { hosts, name: r.raw('REDIS_SENTINEL_MASTER') ?? 'mymaster' };
  const username = r.raw('REDIS_SENTINEL_USER');
  const password = r.raw('REDIS_SENTINEL_PASSWORD');
  if (password !== undefined) sentinel.password = password;
  if (username !== undefined) {
    if (password === undefined) r.warn('REDIS_SENTINEL_USER', 'ignored: a Sentinel ACL user needs a password (REDIS_SENTINEL_PASSWORD)');
    else sentinel.username = username;
  }
  return sentinel;
}

const TLS_FILE_SETTINGS = [
  ['caPath', 'REDIS_CA_CERTS', 'ssl_ca_certs', 'certificate'],
  ['certPath', 'REDIS_CLIENT_CERT', 'ssl_certfile', 'certificate'],
  ['keyPath', 'REDIS_CLIENT_KEY', 'ssl_keyfile', 'key'],
] as const;

/**
 * TLS for rediss: the certificate is verified against the system CAs, or REDIS_CA_CERTS (REDIS_URL's ssl_ca_certs),
 * with REDIS_CLIENT_CERT + REDIS_CLIENT_KEY (ssl_certfile + ssl_keyfile) for mutual TLS. ssl_cert_reqs=none and
 * ssl_check_hostname=false in REDIS_URL turn checks off as they do in PGSync's redis-py, with a warning.
 */
function parseRedisTls(r: EnvReader, url: RedisUrlParts, scheme: 'redis' | 'rediss'): RedisConfig['tls'] {
  const files: Partial<Record<'caPath' | 'certPath' | 'keyPath', string>> = {};
  const read: Partial<Record<'caPath' | 'certPath' | 'keyPath', string | undefined>> = {};
  for (const [part, name, parameter, kind] of TLS_FILE_SETTINGS) {
    const fromUrl = url[part];
    const own = r.raw(name);
    if (fromUrl !== undefined && own !== undefined && own !== fromUrl) r.warn(name, `ignored: REDIS_URL gives ${parameter}`);
    const path = fromUrl ?? own;
    if (path === undefined) continue;
    files[part] = path;
    if (scheme === 'rediss') read[part] = r.readPem(fromUrl !== undefined ? 'REDIS_URL' : name, path, kind);
  }
  if (scheme !== 'rediss') {
    const unused = [...TLS_FILE_SETTINGS.filter(([part]) => files[part] !== undefined).map(([, name]) => name), ...(url.verify !== undefined || url.checkHostname !== undefined ? ['REDIS_URL'] : [])];
    for (const name of new Set(unused)) r.warn(name, 'TLS settings are unused: the Redis URL uses redis, not rediss');
    return undefined;
  }
  if ((files.certPath === undefined) !== (files.keyPath === undefined)) {
    const missing = files.certPath === undefined ? 'REDIS_CLIENT_CERT' : 'REDIS_CLIENT_KEY';
    r.error(missing, 'required: mutual TLS needs both the client certificate and its key');
  }
  const tls: NonNullable<RedisConfig['tls']> = { rejectUnauthorized: url.verify ?? true };
  if (url.verify === false) r.warn('REDIS_URL', "ssl_cert_reqs=none: Redis's certificate is not verified, so anyone between Sluice and Redis can read and change checkpoints");
  else if (url.checkHostname === false) {
    tls.checkHostname = false;
    r.warn('REDIS_URL', "ssl_check_hostname=false: Redis's certificate is verified, but not that it names the host");
  }
  if (read.caPath !== undefined) tls.ca = read.caPath;
  if (read.certPath !== undefined && read.keyPath !== undefined) {
    tls.cert = read.certPath;
    tls.key = read.keyPath;
  }
  return tls;
}

function fromUrlOr<T>(r: EnvReader, name: string, fromUrl: T | undefined, readOwn: () => T | undefined): T | undefined {
  if (fromUrl === undefined) return readOwn();
  const own = r.raw(name);
  if (own !== undefined && own !== String(fromUrl)) r.warn(name, 'ignored: REDIS_URL gives this part and takes precedence');
  return fromUrl;
}

function parseRedisUrl(r: EnvReader): RedisUrlParts {
  const value = r.raw('REDIS_URL');
  if (value === undefined) return {};
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    r.error('REDIS_URL', 'is not a valid URL; expected redis[s]://[user:password@]host:port[/db]');
    return {};
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    r.error('REDIS_URL', `must start with redis:// or rediss:// (got scheme "${url.protocol.slice(0, 30)}")`);
    return {};
  }
  const parts: RedisUrlParts = { scheme: url.protocol === 'rediss:' ? 'rediss' : 'redis' };
  if (url.hostname !== '') parts.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.port !== '') parts.port = r.checkInt('REDIS_URL', url.port, PORT_RANGE);
  const path = url.pathname.replace(/^\//, '');
  if (path !== '') {
    const db = /^\d+$/.test(path) ? Number(path) : undefined;
    if (db === undefined || db > DB_RANGE.max) r.error('REDIS_URL', 'the path must be a database number, e.g. /0');
    else parts.db = db;
  }
  const username = decodeComponent(url.username);
  const password = decodeComponent(url.password);
  if (username === undefined || password === undefined) {
    r.error('REDIS_URL', 'contains a malformed percent-encoding (%XX) in the user or password');
    return parts;
  }
  if (username !== '') parts.username = username;
  if (password !== '') parts.password = password;
  // redis-py's from_url (PGSync's) reads ?db=; other parameters have no meaning here and must not pass unnoticed.
  for (const [key, value] of url.searchParams) {
    if (key === 'db') {
      const db = /^\d+$/.test(value) ? Number(value) : undefined;
      if (db === undefined || db > DB_RANGE.max) r.error('REDIS_URL', `parameter db must be a database number (got "${value.slice(0, 20)}")`);
      else if (parts.db !== undefined && parts.db !== db) r.error('REDIS_URL', 'gives the database twice (path and ?db=) with different numbers');
      else parts.db = db;
    } else if (key === 'ssl_cert_reqs' || key === 'ssl_check_hostname') {
      const flag = parseTlsFlag(key, value);
      if (flag === undefined) r.error('REDIS_URL', `parameter ${key} must be ${key === 'ssl_cert_reqs' ? 'none, optional or required' : 'true or false'} (got "${value.slice(0, 20)}")`);
      else if (key === 'ssl_cert_reqs') parts.verify = flag;
      else parts.checkHostname = flag;
    } else if (key === 'ssl_ca_certs' || key === 'ssl_certfile' || key === 'ssl_keyfile') {
      parts[key === 'ssl_ca_certs' ? 'caPath' : key === 'ssl_certfile' ? 'certPath' : 'keyPath'] = value;
    } else {
      r.warn('REDIS_URL', `parameter "${key.slice(0, 40)}" is ignored (read: db, ssl_cert_reqs, ssl_check_hostname, ssl_ca_certs, ssl_certfile, ssl_keyfile)`);
    }
  }
  return parts;
}

/** redis-py's spellings: ssl_cert_reqs none/optional/required (optional verifies what is sent, which Redis always sends). */
function parseTlsFlag(key: 'ssl_cert_reqs' | 'ssl_check_hostname', value: string): boolean | undefined {
  const v = value.toLowerCase();
  if (key === 'ssl_cert_reqs') return v === 'none' || v === 'cert_none' ? false : ['optional', 'required', 'cert_optional', 'cert_required'].includes(v) ? true : undefined;
  return ['true', '1', 'yes'].includes(v) ? true : ['false', '0', 'no'].includes(v) ? false : undefined;
}
