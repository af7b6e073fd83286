import { describe, expect, it } from 'vitest';
import { parseEnvironment } from '../../../src/config/env.js';

const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};
const parse = (env: Record<string, string | undefined>, flags?: { config?: string }) =>
  parseEnvironment(env, flags, { readFile: noFiles });
const errors = (env: Record<string, string | undefined>) => parse(env).problems.filter((p) => p.severity === 'error');
const warnings = (env: Record<string, string | undefined>) => parse(env).problems.filter((p) => p.severity === 'warning');

describe('parseEnvironment: defaults and the seed deployment', () => {
  it('fills every default from an environment holding only PG_USER', () => {
    const result = parse({ PG_USER: 'app' });
    expect(result.problems).toEqual([]);
    expect(result.config).toEqual({
      schemaPath: 'config/schema.json',
      postgres: { host: 'localhost', port: 5432, user: 'app', database: 'postgres' },
      engine: {
        url: 'http://localhost:9200',
        auth: { kind: 'none' },
        tls: { rejectUnauthorized: true },
        requestTimeoutMs: 10_000,
        bulkMaxActions: 1000,
        bulkMaxBytes: 10 * 1024 * 1024,
        bulkConcurrency: 2,
        retryInitialMs: 200,
        retryMaxMs: 30_000,
        retryGiveUpMs: 300_000,
        compress: true,
      },
      checkpointStore: 'file',
      checkpointPath: './',
      deadLetterPath: 'sluice-dead-letters.jsonl',
      snapshotChunkSize: 5000,
      snapshotConcurrency: 2,
      flushIntervalMs: 1000,
      reindexGraceSeconds: 600,
      leaseTtlSeconds: 10,
      logLevel: 'info',
      logFormat: 'auto',
      http: { port: 8080, host: '0.0.0.0', readyMaxLagSeconds: 30 },
      warnings: [],
    });
  });

  it('maps the seed .env as the seed deployment meant it', () => {
    const config = parse({
      PG_HOST: 'hailmary-postgres',
      PG_PORT: '5432',
      PG_DATABASE: 'app',
      PG_USER: 'app',
      PG_PASSWORD: 'app',
      ELASTICSEARCH_PORT: '9200',
      PGSYNC_LOG_LEVEL: 'INFO',
      PGSYNC_BATCH_SIZE: '1000',
      PGSYNC_FLUSH_INTERVAL: '1',
    }).config;
    expect(config?.postgres).toEqual({ host: 'hailmary-postgres', port: 5432, user: 'app', password: 'app', database: 'app' });
    expect(config?.engine.url).toBe('http://localhost:9200');
    expect(config?.engine.bulkMaxActions).toBe(1000);
    expect(config?.flushIntervalMs).toBe(1000);
    expect(config?.logLevel).toBe('info');
    expect(config?.warnings).toEqual([]);
  });

  it('reads fractional flush intervals and every PGSync log level name', () => {
    expect(parse({ PG_USER: 'a', PGSYNC_FLUSH_INTERVAL: '0.25' }).config?.flushIntervalMs).toBe(250);
    expect(parse({ PG_USER: 'a', SLUICE_REINDEX_GRACE_SECONDS: '0' }).config?.reindexGraceSeconds).toBe(0);
    expect(parse({ PG_USER: 'a', SLUICE_LEASE_TTL_SECONDS: '3' }).config?.leaseTtlSeconds).toBe(3);
    expect(errors({ PG_USER: 'a', SLUICE_LEASE_TTL_SECONDS: '1' }).map((p) => p.location)).toEqual(['SLUICE_LEASE_TTL_SECONDS']);
    expect(parse({ PG_USER: 'a', SLUICE_REINDEX_GRACE_SECONDS: 'soon' }).problems.map((p) => p.location)).toContain('SLUICE_REINDEX_GRACE_SECONDS');
    const levels: Record<string, string> = {
      INFO: 'info', debug: 'debug', Warning: 'warn', WARN: 'warn', ERROR: 'error', CRITICAL: 'fatal', trace: 'trace',
    };
    for (const [given, expected] of Object.entries(levels)) {
      expect(parse({ PG_USER: 'a', PGSYNC_LOG_LEVEL: given }).config?.logLevel).toBe(expected);
    }
    expect(parse({ PG_USER: 'a', LOG_LEVEL: 'debug' }).config?.logLevel).toBe('debug');
    expect(parse({ PG_USER: 'a', LOG_LEVEL: 'debug', PGSYNC_LOG_LEVEL: 'error' }).config?.logLevel).toBe('error');
  });

  it('lets SLUICE_ settings win over legacy names, with a warning', () => {
    const result = parse({ PG_USER: 'a', SLUICE_LOG_LEVEL: 'debug', PGSYNC_LOG_LEVEL: 'error', SLUICE_SNAPSHOT_CHUNK_SIZE: '200', QUERY_CHUNK_SIZE: '300' });
    expect(result.config?.logLevel).toBe('debug');
    expect(result.config?.snapshotChunkSize).toBe(200);
    expect(result.problems).toEqual([
      { location: 'QUERY_CHUNK_SIZE', severity: 'warning', message: expect.stringContaining('SLUICE_SNAPSHOT_CHUNK_SIZE') },
      { location: 'PGSYNC_LOG_LEVEL', severity: 'warning', message: expect.stringContaining('SLUICE_LOG_LEVEL') },
    ]);
    expect(result.config?.warnings).toHaveLength(2);
    expect(parse({ PG_USER: 'a', QUERY_CHUNK_SIZE: '300' }).config?.snapshotChunkSize).toBe(300);
  });

  it('reads the SLUICE_ settings', () => {
    const config = parse({
      PG_USER: 'a',
      CHECKPOINT_PATH: '/var/lib/sluice',
      SLUICE_SNAPSHOT_CONCURRENCY: '4',
      SLUICE_HTTP_PORT: '9100',
      SLUICE_HTTP_HOST: '127.0.0.1',
      SLUICE_READY_MAX_LAG_SECONDS: '5',
    }).config;
    expect(config?.checkpointPath).toBe('/var/lib/sluice');
    expect(config?.deadLetterPath).toBe('/var/lib/sluice/sluice-dead-letters.jsonl');
    expect(config?.snapshotConcurrency).toBe(4);
    expect(config?.http).toEqual({ port: 9100, host: '127.0.0.1', readyMaxLagSeconds: 5 });
    expect(parse({ PG_USER: 'a', SLUICE_DEAD_LETTER_PATH: '/dl.jsonl' }).config?.deadLetterPath).toBe('/dl.jsonl');
  });

  it('binds the HTTP server to an address or host name, and refuses a URL or a port in SLUICE_HTTP_HOST', () => {
    const bindable: Array<[string, string]> = [['::', '::'], ['[::1]', '::1'], ['sluice-0.internal', 'sluice-0.internal'], ['10.0.0.5', '10.0.0.5']];
    for (const [host, bound] of bindable) {
      expect(parse({ PG_USER: 'a', SLUICE_HTTP_HOST: host }).config?.http?.host).toBe(bound);
    }
    for (const host of ['http://0.0.0.0', '0.0.0.0:8080', 'my host']) {
      const result = parse({ PG_USER: 'a', SLUICE_HTTP_HOST: host });
      expect(result.config).toBeUndefined();
      expect(result.problems).toEqual([{ location: 'SLUICE_HTTP_HOST', severity: 'error', message: expect.stringContaining('without scheme or port') }]);
    }
  });

  it('takes the schema path from --config, else SCHEMA, else config/schema.json', () => {
    expect(parse({ PG_USER: 'a', SCHEMA: '/s.json' }, { config: '/flag.json' }).config?.schemaPath).toBe('/flag.json');
    expect(parse({ PG_USER: 'a', SCHEMA: '/s.json' }).config?.schemaPath).toBe('/s.json');
    expect(parse({ PG_USER: 'a', SCHEMA: '' }).config?.schemaPath).toBe('config/schema.json');
    expect(parse({ PG_USER: 'a' }, { config: ' ' }).problems).toEqual([
      { location: '--config', severity: 'error', message: expect.stringContaining('not empty') },
    ]);
  });
});

describe('SLUICE_LOG_FORMAT', () => {
  it('is auto by default, json or pretty in any letter case, and anything else is an error naming it', () => {
    expect(parse({ PG_USER: 'a' }).config?.logFormat).toBe('auto');
    expect(parse({ PG_USER: 'a', SLUICE_LOG_FORMAT: 'JSON' }).config?.logFormat).toBe('json');
    expect(parse({ PG_USER: 'a', SLUICE_LOG_FORMAT: ' pretty ' }).config?.logFormat).toBe('pretty');
    expect(errors({ PG_USER: 'a', SLUICE_LOG_FORMAT: 'yaml' })).toEqual([
      { location: 'SLUICE_LOG_FORMAT', severity: 'error', message: 'must be one of auto, json, pretty (got "yaml")' },
    ]);
  });
});

describe('parseEnvironment: validation', () => {
  it('accepts the usual boolean spellings and rejects others, naming variable and value', () => {
    for (const word of ['true', 'TRUE', '1', 'yes', 'On']) {
      expect(parse({ PG_USER: 'a', ELASTICSEARCH_VERIFY_CERTS: word }).config?.engine.tls.rejectUnauthorized).toBe(true);
    }
    for (const word of ['false', 'False', '0', 'no', 'OFF']) {
      expect(parse({ PG_USER: 'a', ELASTICSEARCH_VERIFY_CERTS: word }).config?.engine.tls.rejectUnauthorized).toBe(false);
    }
    expect(errors({ PG_USER: 'a', ELASTICSEARCH_VERIFY_CERTS: 'maybe' })).toEqual([
      { location: 'ELASTICSEARCH_VERIFY_CERTS', severity: 'error', message: expect.stringContaining('"maybe"') },
    ]);
  });

  it('reports every bad variable at once, and no config', () => {
    const result = parse({
      PG_PORT: 'abc',
      PG_SSLMODE: 'sometimes',
      ELASTICSEARCH_PORT: '70000',
      PGSYNC_BATCH_SIZE: '0',
      PGSYNC_FLUSH_INTERVAL: 'soon',
      PGSYNC_LOG_LEVEL: 'LOUD',
      SLUICE_CHECKPOINT_STORE: 'tape',
      SLUICE_BULK_CONCURRENCY: '-1',
      REDIS_CHECKPOINT: 'perhaps',
      PG_WORK_MEM: '16 megs',
    });
    expect(result.config).toBeUndefined();
    expect(result.problems.filter((p) => p.severity === 'error').map((p) => p.location).sort()).toEqual(
      [
        'PG_PORT', 'PG_USER', 'PG_SSLMODE', 'PG_WORK_MEM', 'ELASTICSEARCH_PORT', 'PGSYNC_BATCH_SIZE', 'PGSYNC_FLUSH_INTERVAL',
        'PGSYNC_LOG_LEVEL', 'SLUICE_CHECKPOINT_STORE', 'SLUICE_BULK_CONCURRENCY', 'REDIS_CHECKPOINT',
      ].sort(),
    );
    const byName = Object.fromEntries(result.problems.map((p) => [p.location, p.message]));
    expect(byName.PG_PORT).toMatch(/whole number.*"abc"/);
    expect(byName.ELASTICSEARCH_PORT).toMatch(/between 1 and 65535.*"70000"/);
    expect(byName.PGSYNC_BATCH_SIZE).toMatch(/between 1 and/);
    expect(byName.PG_SSLMODE).toMatch(/verify-full.*"sometimes"/);
    expect(byName.PG_USER).toMatch(/required/);
  });

  it('rejects a retry cap below the initial delay', () => {
    expect(errors({ PG_USER: 'a', SLUICE_RETRY_INITIAL_MS: '5000', SLUICE_RETRY_MAX_MS: '1000' })).toEqual([
      { location: 'SLUICE_RETRY_MAX_MS', severity: 'error', message: expect.stringContaining('below the initial') },
    ]);
  });

  it('rejects settings that would change what is synced or where, saying what to do', () => {
    const result = parse({
      PG_USER: 'a',
      SCHEMA_URL: 'https://x/schema.json',
      S3_SCHEMA_URL: 's3://b/k',
      ELASTICSEARCH_AWS_HOSTED: 'true',
      OPENSEARCH_AWS_HOSTED: 'false',
      ELASTICSEARCH_CLOUD_ID: 'deployment:abc',
      PG_DRIVER: 'pymysql',
    });
    const found = result.problems.filter((p) => p.severity === 'error');
    expect(found.map((p) => p.location).sort()).toEqual(
      ['ELASTICSEARCH_AWS_HOSTED', 'ELASTICSEARCH_CLOUD_ID', 'PG_DRIVER', 'S3_SCHEMA_URL', 'SCHEMA_URL'].sort(),
    );
    expect(found.find((p) => p.location === 'SCHEMA_URL')?.message).toMatch(/SCHEMA or --config/);
    expect(found.find((p) => p.location === 'ELASTICSEARCH_CLOUD_ID')?.message).toMatch(/ELASTICSEARCH_URL/);
    expect(errors({ PG_USER: 'a', PG_DRIVER: 'psycopg2' })).toEqual([]);
  });
});

describe('parseEnvironment: variable names', () => {
  it('warns about an unknown SLUICE_ variable with a did-you-mean suggestion', () => {
    expect(warnings({ PG_USER: 'a', SLUICE_BULK_CONCURENCY: '4' })).toEqual([
      { location: 'SLUICE_BULK_CONCURENCY', severity: 'warning', message: 'unknown setting; did you mean SLUICE_BULK_CONCURRENCY?' },
    ]);
    expect(warnings({ PG_USER: 'a', SLUICE_SOMETHING_ELSE: '1' })).toEqual([
      { location: 'SLUICE_SOMETHING_ELSE', severity: 'warning', message: 'unknown setting' },
    ]);
  });

  it('accepts dead PGSync variables with a warning, also in config.warnings', () => {
    const result = parse({ PG_USER: 'a', NUM_WORKERS: '4', SQLALCHEMY_POOL_SIZE: '5', ELASTICSEARCH_STREAMING_BULK: 'true', PATH: '/bin' });
    expect(result.problems.map((p) => [p.location, p.severity])).toEqual([
      ['ELASTICSEARCH_STREAMING_BULK', 'warning'],
      ['NUM_WORKERS', 'warning'],
      ['SQLALCHEMY_POOL_SIZE', 'warning'],
    ]);
    expect(result.config?.warnings).toEqual([
      expect.stringMatching(/^ELASTICSEARCH_STREAMING_BULK: accepted but not used/),
      expect.stringMatching(/^NUM_WORKERS: accepted but not used/),
      expect.stringMatching(/^SQLALCHEMY_POOL_SIZE: accepted but not used/),
    ]);
  });

  it('treats empty values as unset', () => {
    expect(parse({ PG_USER: 'a', PG_PORT: '', ELASTICSEARCH_VERIFY_CERTS: '', NUM_WORKERS: '' }).problems).toEqual([]);
  });
});
