// Helpers for integration test files: the shared PostgreSQL cluster and Redis started by
// test/global-setup.ts, reached through vitest's provide/inject.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Connection string of the shared test cluster, database `postgres`, as superuser. */
    pgUrl: string;
    /** Directory of the PostgreSQL server binaries in use. */
    pgBinDir: string;
    /** Data directory of the shared test cluster. */
    pgDataDir: string;
    /** URL of the shared test Redis. */
    redisUrl: string;
  }
}

export interface TestDatabase {
  /** Connection string, as superuser. */
  url: string;
  name: string;
  /** Closes the pool, ends every session and replication slot on the database, and drops it. */
  drop(): Promise<void>;
  /** Runs one query through a small pool on the database. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- same default as pg's own query()
  query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
}

/** Connection string of the shared test cluster, with `database` (default `postgres`). */
export function testPostgresUrl(database?: string): string {
  const url = new URL(inject('pgUrl'));
  if (database !== undefined) url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

/** URL of the shared test Redis. Tests sharing it should use distinct key prefixes. */
export function testRedisUrl(): string {
  return inject('redisUrl');
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

async function withAdminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: testPostgresUrl('postgres') });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * A pool for a test database. pg-pool re-emits an idle client's error on the pool, which throws without a listener:
 * tests that terminate backends (slot drops, restarts, a database dropped while the pool closes) would crash the run
 * with an uncaught 57P01. The next query on that client's replacement reports any real problem.
 */
export function testPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max });
  pool.on('error', () => undefined);
  return pool;
}

/** Creates a fresh database `<prefix>_<random>` on the shared cluster. Call `drop()` in afterAll. */
/** `options`: what follows `CREATE DATABASE <name>`, e.g. `ENCODING 'SQL_ASCII' TEMPLATE template0`. */
export async function createTestDatabase(prefix: string, options = ''): Promise<TestDatabase> {
  const cleanPrefix = prefix.toLowerCase().replace(/[^a-z0-9_]+/g, '_').replace(/^_+|_+$/g, '').slice(0, 40) || 'test';
  const name = `${cleanPrefix}_${randomBytes(5).toString('hex')}`;
  await withAdminClient((client) => client.query(`CREATE DATABASE ${quoteIdent(name)}${options ? ` ${options}` : ''}`));
  const url = testPostgresUrl(name);
  let pool: pg.Pool | undefined;
  let dropped = false;

  return {
    url,
    name,
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- same default as pg's own query()
    query<R extends pg.QueryResultRow = any>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>> {
      if (dropped) return Promise.reject(new Error(`test database ${name} was dropped`));
      pool ??= testPool(url, 4);
      return pool.query<R>(sql, params);
    },
    async drop(): Promise<void> {
      if (dropped) return;
      dropped = true;
      const current = pool;
      pool = undefined;
      await current?.end();
      await withAdminClient(async (client) => {
        await client.query(
          'SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
          [name],
        );
        // Logical replication slots pin their database: end their walsenders, then drop them.
        await client.query(
          'SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots WHERE database = $1 AND active_pid IS NOT NULL',
          [name],
        );
        await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active', [
          name,
        ]);
        await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
      });
    },
  };
}
