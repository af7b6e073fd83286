/**
 * Environment → SluiceConfig. Every variable keeps its seed / PGSync meaning (docs/configuration.md lists them
 * all); new settings use the SLUICE_ prefix. All problems are collected and returned at once.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Problem } from '../errors/app-error.js';
import type { HttpServerConfig, SluiceConfig } from './config-types.js';
import { checkVariableNames } from './env-catalog.js';
import { parseEngine } from './env-engine.js';
import { parsePostgres } from './env-postgres.js';
import { EnvReader, SECRET_VARIABLES, decodeComponent, type ReadTextFile } from './env-reader.js';
import { parseCheckpointAndRedis } from './env-redis.js';
import { redact } from './redact.js';

export type { ReadTextFile } from './env-reader.js';

export interface ParseEnvironmentOptions {
  /** Reads CA bundles and client certificates/keys; default `fs.readFileSync(path, 'utf8')`. */
  readFile?: ReadTextFile;
}

export interface ParseEnvironmentResult {
  /** Present only when no problem is an error. */
  config?: SluiceConfig;
  /** Errors and warnings in the order found; `location` is the variable name or `--config`. */
  problems: Problem[];
}

type LogLevel = SluiceConfig['logLevel'];

/** PGSync (Python logging) level names and pino's own names, lower-cased. */
const LOG_LEVELS: Readonly<Record<string, LogLevel>> = {
  trace: 'trace',
  debug: 'debug',
  info: 'info',
  warning: 'warn',
  warn: 'warn',
  error: 'error',
  critical: 'fatal',
  fatal: 'fatal',
};

export const GENERAL_DEFAULTS = {
  schemaPath: 'config/schema.json',
  checkpointPath: './',
  deadLetterFile: 'sluice-dead-letters.jsonl',
  snapshotChunkSize: 5000,
  snapshotConcurrency: 2,
  flushIntervalMs: 1000,
  logLevel: 'info',
  logFormat: 'auto',
  httpPort: 8080,
  httpHost: '0.0.0.0',
  readyMaxLagSeconds: 30,
  reindexGraceSeconds: 600,
  leaseTtlSeconds: 10,
} as const;

/**
 * Parses the environment (and the `--config` flag) into a SluiceConfig. Pure: the only I/O is `options.readFile`
 * for certificate files. Secret values never appear in the returned problems.
 */
export function parseEnvironment(
  env: Record<string, string | undefined>,
  flags: { config?: string } = {},
  options: ParseEnvironmentOptions = {},
): ParseEnvironmentResult {
  const r = new EnvReader(env, options.readFile ?? ((path) => readFileSync(path, 'utf8')));
  const schemaPath = parseSchemaPath(r, flags);
  const postgres = parsePostgres(r);
  const engine = parseEngine(r);
  const { checkpointStore, redis } = parseCheckpointAndRedis(r);
  const checkpointPath = r.raw('CHECKPOINT_PATH') ?? GENERAL_DEFAULTS.checkpointPath;
  const chunkName = r.preferSluice('SLUICE_SNAPSHOT_CHUNK_SIZE', 'QUERY_CHUNK_SIZE');
  const config: SluiceConfig = {
    schemaPath,
    postgres,
    engine,
    checkpointStore,
    checkpointPath,
    deadLetterPath: r.raw('SLUICE_DEAD_LETTER_PATH') ?? join(checkpointPath, GENERAL_DEFAULTS.deadLetterFile),
    snapshotChunkSize:
      (chunkName === undefined ? undefined : r.int(chunkName, { min: 1, max: 1_000_000 })) ??
      GENERAL_DEFAULTS.snapshotChunkSize,
    snapshotConcurrency: r.int('SLUICE_SNAPSHOT_CONCURRENCY', { min: 1, max: 64 }) ?? GENERAL_DEFAULTS.snapshotConcurrency,
    flushIntervalMs: r.secondsAsMs('PGSYNC_FLUSH_INTERVAL', { min: 1, max: 3_600_000 }) ?? GENERAL_DEFAULTS.flushIntervalMs,
    reindexGraceSeconds: r.int('SLUICE_REINDEX_GRACE_SECONDS', { min: 0, max: 30 * 86_400 }) ?? GENERAL_DEFAULTS.reindexGraceSeconds,
    leaseTtlSeconds: r.int('SLUICE_LEASE_TTL_SECONDS', { min: 2, max: 600 }) ?? GENERAL_DEFAULTS.leaseTtlSeconds,
    logLevel: parseLogLevel(r),
    logFormat: r.oneOf('SLUICE_LOG_FORMAT', ['auto', 'json', 'pretty'] as const) ?? GENERAL_DEFAULTS.logFormat,
    http: {
      port: r.int('SLUICE_HTTP_PORT', { min: 0, max: 65535 }) ?? GENERAL_DEFAULTS.httpPort,
      host: parseHttpHost(r),
      readyMaxLagSeconds: r.int('SLUICE_READY_MAX_LAG_SECONDS', { min: 1, max: 86_400 }) ?? GENERAL_DEFAULTS.readyMaxLagSeconds,
      ...parseHttpProtection(r),
    },
    warnings: [],
  };
  if (redis !== undefined) config.redis = redis;
  checkVariableNames(r);

  const secrets = secretValues(env);
  const problems = r.problems.map((p) => ({ ...p, message: redact(p.message, secrets) }));
  if (problems.some((p) => p.severity === 'error')) return { problems };
  config.warnings = problems.map((p) => `${p.location}: ${p.message}`);
  return { config, problems };
}

/** `--config`, else SCHEMA, else config/schema.json. SCHEMA_URL / S3_SCHEMA_URL would change what is synced. */
function parseSchemaPath(r: EnvReader, flags: { config?: string }): string {
  for (const name of ['SCHEMA_URL', 'S3_SCHEMA_URL']) {
    if (r.has(name)) {
      r.error(name, 'not supported: download schema.json and give its path with SCHEMA or --config instead');
    }
  }
  if (flags.config !== undefined) {
    if (flags.config.trim() === '') r.error('--config', 'must be the path of schema.json, not empty');
    return flags.config;
  }
  return r.raw('SCHEMA') ?? GENERAL_DEFAULTS.schemaPath;
}

/** SLUICE_LOG_LEVEL, else PGSYNC_LOG_LEVEL (the seed's), else LOG_LEVEL, else info. */
function parseLogLevel(r: EnvReader): LogLevel {
  const name = r.preferSluice('SLUICE_LOG_LEVEL', 'PGSYNC_LOG_LEVEL') ?? (r.has('LOG_LEVEL') ? 'LOG_LEVEL' : undefined);
  const value = name === undefined ? undefined : r.raw(name);
  if (name === undefined || value === undefined) return GENERAL_DEFAULTS.logLevel;
  const level = LOG_LEVELS[value.toLowerCase()];
  if (level === undefined) {
    r.error(name, `must be one of TRACE, DEBUG, INFO, WARNING (or WARN), ERROR, CRITICAL (or FATAL)${r.shown(name, value)}`);
    return GENERAL_DEFAULTS.logLevel;
  }
  return level;
}

/** Values to mask in every message: the secret variables and the passwords inside URL or pair variables. */
function secretValues(env: Record<string, string | undefined>): string[] {
  const secrets: string[] = [];
  for (const name of SECRET_VARIABLES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    secrets.push(value, value.trim());
    if (name.endsWith('_URL')) secrets.push(...urlPasswords(value));
    if (name === 'ELASTICSEARCH_HTTP_AUTH') secrets.push(value.slice(value.indexOf(',') + 1));
    if (name === 'ELASTICSEARCH_BASIC_AUTH') secrets.push(...basicAuthPasswords(value));
  }
  return secrets.filter((s) => s !== '');
}

function urlPasswords(value: string): string[] {
  const match = /^[^:]*:\/\/[^:@]*:(.*)@/.exec(value);
  const raw = match?.[1];
  if (raw === undefined) return [];
  const decoded = decodeComponent(raw);
  return decoded === undefined ? [raw] : [raw, decoded];
}

function basicAuthPasswords(value: string): string[] {
  const plain = value.includes(':') ? value : Buffer.from(value, 'base64').toString('utf8');
  return [plain, plain.slice(plain.indexOf(':') + 1)];
}

/** Shorter bearer tokens are accepted with a warning: they can be guessed. */
const HTTP_TOKEN_MIN_LENGTH = 16;

/** SLUICE_HTTP_TOKEN (a secret) and the HTTPS certificate and key of the status server. */
function parseHttpProtection(r: EnvReader): Pick<HttpServerConfig, 'token' | 'tls'> {
  const out: Pick<HttpServerConfig, 'token' | 'tls'> = {};
  const token = r.raw('SLUICE_HTTP_TOKEN');
  if (token !== undefined) {
    if (token.trim() === '' || /\s/.test(token)) r.error('SLUICE_HTTP_TOKEN', 'must be a non-empty token without spaces (it is sent as `Authorization: Bearer <token>`)');
    else {
      if (token.length < HTTP_TOKEN_MIN_LENGTH) r.warn('SLUICE_HTTP_TOKEN', `is shorter than ${HTTP_TOKEN_MIN_LENGTH} characters, which can be guessed; use e.g. \`openssl rand -hex 32\``);
      out.token = token;
    }
  }
  const pair = r.pemPair('SLUICE_HTTP_TLS_CERT', 'SLUICE_HTTP_TLS_KEY', 'HTTPS needs both the certificate and its key');
  if (pair !== undefined) {
    // Checked now, as the server would load them: a key of another certificate or damaged PEM is a settings problem
    // naming the variables, not an OpenSSL stack once PostgreSQL and the store are open.
    try {
      createSecureContext(pair);
      out.tls = pair;
    } catch (error) {
      const reason = (error as Error).message.replace(/^error:[0-9A-F]+:/, '');
      r.error('SLUICE_HTTP_TLS_KEY', `cannot serve HTTPS with SLUICE_HTTP_TLS_CERT: ${reason} (is it the key of that certificate, and both valid PEM?)`);
    }
  }
  return out;
}

/** An address or host name to bind, as node:http takes it: no scheme, port or brackets. */
function parseHttpHost(r: EnvReader): string {
  const raw = r.raw('SLUICE_HTTP_HOST');
  if (raw === undefined) return GENERAL_DEFAULTS.httpHost;
  const unbracketed = /^\[(.*)\]$/.exec(raw)?.[1] ?? raw;
  if (isIP(unbracketed) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(unbracketed)) return unbracketed;
  r.error('SLUICE_HTTP_HOST', `must be an address of this host (0.0.0.0, 127.0.0.1, ::) or a host name, without scheme or port (got "${raw.slice(0, 60)}")`);
  return GENERAL_DEFAULTS.httpHost;
}
