// Query connections that die without being closed (a crashed or failed-over server, a network path that drops the
// flow) are found by asking the server from a new connection, and fail their queries instead of waiting for the
// kernel's keepalive (some eleven minutes). Connections are made vanish by a TCP proxy that stops forwarding without
// closing anything; queries that legitimately take long are left alone.
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/config-types.js';
import { isRetryable } from '../../src/pipeline/index-sync.js';
import { createPool } from '../../src/source/postgres/connect.js';
import { fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged, logLines, waitFor } from '../helpers/live-sluice.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { createTestDatabase, testPool, testPostgresUrl, type TestDatabase } from '../helpers/test-env.js';

const PROBE_MS = 2_000;

let db: TestDatabase;
let proxy: TcpProxy;
let pool: pg.Pool;
let holder: pg.PoolClient | undefined;

function configThrough(proxied: TcpProxy, database: string): PostgresConfig {
  const url = new URL(db.url);
  return {
    host: proxied.host,
    port: proxied.port,
    user: decodeURIComponent(url.username),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    database,
    queryProbeMs: PROBE_MS,
  };
}

/** Locks `t` from a direct connection, so that a query on it waits (in flight, silent) until `release()`. */
async function lockTable(): Promise<void> {
  const direct = testPool(db.url, 1);
  holder = await direct.connect();
  await holder.query('BEGIN');
  await holder.query('LOCK TABLE t IN ACCESS EXCLUSIVE MODE');
  const release = holder.release.bind(holder);
  holder.release = (() => {
    release();
    void direct.end();
  }) as typeof holder.release;
}

async function releaseLock(): Promise<void> {
  if (holder === undefined) return;
  await holder.query('COMMIT').catch(() => undefined);
  holder.release();
  holder = undefined;
}

/** The backend (pid and the proxy-side port the server sees) of the session waiting for the lock on `t`. */
function lockWaiter(): Promise<{ pid: number; port: number }> {
  return waitFor('a query waiting for the lock', async () => {
    const { rows } = await db.query<{ pid: number; port: number }>(
      `SELECT pid, client_port AS port FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sluice' AND wait_event_type = 'Lock'`,
    );
    return rows[0];
  });
}

/** Settles with the query's error, or undefined when it succeeded, and how long it took. */
async function outcome(query: Promise<unknown>): Promise<{ error: Error | undefined; seconds: number }> {
  const started = Date.now();
  try {
    await query;
    return { error: undefined, seconds: (Date.now() - started) / 1000 };
  } catch (error) {
    return { error: error as Error, seconds: (Date.now() - started) / 1000 };
  }
}

beforeAll(async () => {
  db = await createTestDatabase('liveness');
  await db.query('CREATE TABLE t (id int PRIMARY KEY)');
  await db.query('INSERT INTO t SELECT generate_series(1, 10)');
  const url = new URL(db.url);
  proxy = await startTcpProxy(url.hostname, Number(url.port));
  pool = createPool(configThrough(proxy, db.name), db.name, 2);
});

afterEach(async () => {
  proxy.swallowNew(false);
  await releaseLock();
});

afterAll(async () => {
  await pool?.end().catch(() => undefined);
  await proxy?.close();
  await db?.drop();
});

describe('a query connection gone silent', () => {
  it('fails its query once the server no longer has its session, and the pool goes on with a new connection', async () => {
    await lockTable();
    const waiting = outcome(pool.query('SELECT count(*) FROM t'));
    const { pid, port } = await lockWaiter();
    // The server ends the backend, but its closing never reaches Sluice: a failover to another host as seen from
    // the old connection.
    proxy.blackhole(port);
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    await releaseLock();
    const { error, seconds } = await waiting;
    expect(error?.message).toMatch(/connection taken for dead: the server no longer has its session/);
    expect((error as { code?: string }).code).toBe('ECONNABORTED');
    expect(seconds).toBeLessThan(30);
    expect((await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]!.n).toBe(10);
  }, 60_000);

  it('fails a query whose answer was lost while the server waits for the connection', async () => {
    const client = await pool.connect();
    try {
      const { rows } = await client.query<{ port: number }>('SELECT client_port AS port FROM pg_stat_activity WHERE pid = pg_backend_pid()');
      // The query below never reaches the server, whose session stays idle.
      proxy.blackhole(rows[0]!.port);
      const { error } = await outcome(client.query('SELECT 1'));
      expect(error?.message).toMatch(/the answer was lost on the way/);
    } finally {
      client.release(true);
    }
  }, 60_000);

  it('fails its query when the server cannot be reached at all', async () => {
    await lockTable();
    const waiting = outcome(pool.query('SELECT count(*) FROM t'));
    const { port } = await lockWaiter();
    proxy.blackhole(port);
    proxy.swallowNew(true);
    const { error } = await waiting;
    expect(error?.message).toMatch(/the server cannot be reached on a new connection, twice in a row/);
  }, 60_000);

  it('lets a query wait for a free connection longer than a connection attempt may take', async () => {
    const small = createPool(configThrough(proxy, db.name), db.name, 1, 500);
    try {
      const held = await small.connect();
      const waiting = outcome(small.query('SELECT 1'));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      held.release();
      expect((await waiting).error).toBeUndefined();
    } finally {
      await small.end();
    }
  });

  it('gives up a connection attempt to a server that swallows it, with an error the sync retries', async () => {
    const small = createPool(configThrough(proxy, db.name), db.name, 1, 500);
    try {
      proxy.swallowNew(true);
      const { error } = await outcome(small.query('SELECT 1'));
      expect((error as { code?: string }).code).toBe('ETIMEDOUT');
      expect(isRetryable(error)).toBe(true);
    } finally {
      await small.end();
    }
  });

  it('leaves alone queries that run or wait on the server for long', async () => {
    await lockTable();
    const waiting = outcome(pool.query('SELECT count(*) FROM t'));
    await lockWaiter();
    const sleeping = outcome(pool.query('SELECT pg_sleep($1)', [(3 * PROBE_MS) / 1000]));
    // Three probe intervals waiting for the lock, checked at each.
    await new Promise((resolve) => setTimeout(resolve, 3 * PROBE_MS));
    await releaseLock();
    const [locked, slept] = await Promise.all([waiting, sleeping]);
    expect(locked.error).toBeUndefined();
    expect(slept.error).toBeUndefined();
    expect(locked.seconds).toBeGreaterThanOrEqual((3 * PROBE_MS) / 1000);
  }, 60_000);
});

describe('sluice run with a document query on a connection gone silent', () => {
  let live: LiveIndex | undefined;
  let liveProxy: TcpProxy | undefined;

  afterAll(async () => {
    await live?.close();
    await liveProxy?.close();
  });

  it('takes the connection for dead, starts the batch over and converges', async () => {
    const index = 'liveness_book';
    const target = new URL(testPostgresUrl());
    liveProxy = await startTcpProxy(target.hostname, Number(target.port));
    live = await startLiveIndex(
      'liveness_run',
      [fixtureSql('book.sql'), fixtureSql('book-data.sql')],
      (database) => fixtureSchema('book.json', database).map((e) => ({ ...(e as object), index })),
      { PGSYNC_LOG_LEVEL: 'info', PG_HOST: liveProxy.host, PG_PORT: String(liveProxy.port), SLUICE_QUERY_PROBE_SECONDS: '5' },
    );
    const sluice = live.sluice;
    await waitFor('the stream', async () => (sluice.output().includes('snapshot finished; streaming') ? true : undefined));
    await expectConverged(live.db.url, live.plan, live.engine.url);

    const direct = testPool(live.db.url, 1);
    const lock = await direct.connect();
    try {
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE publisher IN ACCESS EXCLUSIVE MODE');
      await live.db.query(`UPDATE book SET title = 'Written while the server went away' WHERE id = 1`);
      const waiter = await waitFor('Sluice waiting for the lock', async () => {
        const { rows } = await live!.db.query<{ pid: number; port: number }>(
          `SELECT pid, client_port AS port FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'sluice' AND wait_event_type = 'Lock'`,
        );
        return rows[0];
      });
      liveProxy.blackhole(waiter.port);
      await live.db.query('SELECT pg_terminate_backend($1)', [waiter.pid]);
      await lock.query('COMMIT');
    } finally {
      lock.release();
      await direct.end();
    }
    await waitFor('the dead connection to be noticed', async () =>
      logLines(sluice.output()).some((l) => l.msg === 'sync interrupted; retrying' && String(l.err).includes('connection taken for dead')) ? true : undefined,
    60_000);
    await expectConverged(live.db.url, live.plan, live.engine.url, 60_000);
  }, 180_000);
});
