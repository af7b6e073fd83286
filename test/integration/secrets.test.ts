// Plants a recognisable secret in every credential setting (PostgreSQL password, Elasticsearch password, Redis
// password) and checks that no output surface ever shows it: logs at debug level, CLI output, error messages,
// /status, /metrics, /readyz.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from '../es-server/index.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { startSluice, waitFor } from '../helpers/live-sluice.js';
import { startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { runCli } from '../helpers/run-cli.js';

const PG_SECRET = 'pg-Secr3t-Value-7731';
const ES_SECRET = 'es-Secr3t-Value-9924';
const REDIS_SECRET = 'redis-Secr3t-Value-4410';
const SECRETS = [PG_SECRET, ES_SECRET, REDIS_SECRET];

let cluster: PostgresCluster;
let engine: TestEngine;
let redis: RedisTestServer;
let work: string;
let schemaPath: string;

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PG_HOST: cluster.host,
    PG_PORT: String(cluster.port),
    PG_USER: 'sluice_secret',
    PG_PASSWORD: PG_SECRET,
    ELASTICSEARCH_URL: engine.url,
    ELASTICSEARCH_USER: 'elastic',
    ELASTICSEARCH_PASSWORD: ES_SECRET,
    REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    REDIS_AUTH: REDIS_SECRET,
    REDIS_CHECKPOINT: 'true',
    CHECKPOINT_PATH: work,
    PGSYNC_LOG_LEVEL: 'debug',
    PGSYNC_FLUSH_INTERVAL: '0.1',
    SLUICE_HTTP_PORT: '0',
    SLUICE_HTTP_HOST: '127.0.0.1',
    ...extra,
  };
}

function expectNoSecret(surface: string, text: string): void {
  for (const secret of SECRETS) {
    expect(text.includes(secret), `${surface} shows a secret`).toBe(false);
    expect(text.includes(encodeURIComponent(secret)), `${surface} shows a URL-encoded secret`).toBe(false);
    expect(text.includes(Buffer.from(`elastic:${ES_SECRET}`).toString('base64')), `${surface} shows the basic-auth header`).toBe(false);
  }
}

beforeAll(async () => {
  cluster = await startPostgresCluster({ authMethod: 'scram-sha-256' });
  await cluster.createDatabase('secrets');
  await cluster.psql(`${fixtureSql('book.sql')}${fixtureSql('book-data.sql')}CREATE ROLE sluice_secret LOGIN REPLICATION SUPERUSER PASSWORD '${PG_SECRET}';`, 'secrets');
  engine = await startTestEngine({ flavor: 'es8', auth: { username: 'elastic', password: ES_SECRET } });
  redis = await startRedisServer({ password: REDIS_SECRET });
  work = mkdtempSync(join(tmpdir(), 'sluice-secrets-'));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', 'secrets')));
});

afterAll(async () => {
  await engine?.close();
  await redis?.stop();
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('secrets never reach an output surface', () => {
  it('CLI output and debug logs of validate, sync --once, bootstrap, status, verify, preview and reindex', async () => {
    for (const args of [['validate'], ['sync', '--once'], ['bootstrap'], ['status'], ['verify', 'book'], ['preview', 'book', '1'], ['reindex', 'book']]) {
      const result = await runCli(['-c', schemaPath, ...args], env());
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      expectNoSecret(`sluice ${args.join(' ')}`, result.stdout + result.stderr);
    }
  });

  it('error messages: wrong credentials and unreachable services', async () => {
    const failures = [
      env({ PG_PASSWORD: `${PG_SECRET}x` }),
      env({ ELASTICSEARCH_PASSWORD: `${ES_SECRET}x` }),
      env({ REDIS_AUTH: `${REDIS_SECRET}x` }),
      env({ PG_PORT: '1' }),
      env({ PG_PORT: 'not-a-port' }),
    ];
    for (const settings of failures) {
      const result = await runCli(['-c', schemaPath, 'run'], settings);
      expect(result.code).not.toBe(0);
      for (const secret of SECRETS) {
        expect(result.stdout + result.stderr).not.toContain(secret);
      }
    }
  });

  it('sluice run: debug logs, /status, /metrics and /readyz', async () => {
    const plan = (await compileAgainst(cluster.connectionString('secrets'), JSON.parse(JSON.stringify(fixtureSchema('book.json', 'secrets'))))).plans[0]!;
    const sluice = startSluice(['-c', schemaPath], env());
    try {
      const url = await waitFor('the HTTP server', async () => /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*HTTP server listening/.exec(sluice.output())?.[1]);
      await waitFor('the snapshot', async () => (engine.store.documents(plan.index).size === 3 ? true : undefined));
      for (const path of ['/status', '/metrics', '/readyz', '/healthz', `/${PG_SECRET}`]) {
        expectNoSecret(path, await (await fetch(`${url}${path}`)).text());
      }
    } finally {
      await sluice.stop();
    }
    expectNoSecret('sluice run logs', sluice.output());
  });
});
