// Proves the integration test bed: the shared PostgreSQL (logical replication ready) and Redis from
// test/global-setup.ts, isolated per-file databases, and throwaway clusters that survive a restart.
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { createTestDatabase, testPostgresUrl, testRedisUrl, type TestDatabase } from '../helpers/test-env.js';

async function withClient<T>(config: string | pg.ClientConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

describe('shared PostgreSQL cluster', () => {
  let dbA: TestDatabase;
  let dbB: TestDatabase;

  beforeAll(async () => {
    [dbA, dbB] = await Promise.all([createTestDatabase('testbed_a'), createTestDatabase('testbed_b')]);
  });

  afterAll(async () => {
    await Promise.all([dbA?.drop(), dbB?.drop()]);
  });

  it('is provided by the global setup and is not a system cluster', async () => {
    const url = new URL(inject('pgUrl'));
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).not.toBe(5432);
    expect(inject('pgBinDir')).toMatch(/\S/);
    const dataDir = await withClient(testPostgresUrl(), async (c) => (await c.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]?.d);
    expect(dataDir).toBe(inject('pgDataDir'));
  });

  it('runs with wal_level=logical and room for replication slots', async () => {
    const settings = await withClient(testPostgresUrl(), async (c) => {
      const { rows } = await c.query<{ name: string; setting: string }>(
        "SELECT name, setting FROM pg_settings WHERE name IN ('wal_level', 'max_replication_slots', 'max_wal_senders')",
      );
      return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    });
    expect(settings).toEqual({ wal_level: 'logical', max_replication_slots: '20', max_wal_senders: '20' });
  });

  it('creates a pgoutput slot that sees changes of a publication, and drops it', async () => {
    const slot = `testbed_slot_${dbA.name.slice(-10)}`;
    await dbA.query('CREATE TABLE items (id int PRIMARY KEY, title text)');
    await dbA.query('CREATE PUBLICATION testbed_pub FOR TABLE items');
    const created = await dbA.query<{ lsn: string }>("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
    expect(created.rows[0]?.lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    await dbA.query("INSERT INTO items VALUES (1, 'first')");
    // synchronous_commit=off: decoding only sees the commit once the WAL writer has flushed it.
    await expect
      .poll(
        async () => {
          const changes = await dbA.query<{ count: string }>(
            "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', 'testbed_pub')",
            [slot],
          );
          return Number(changes.rows[0]?.count);
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBeGreaterThanOrEqual(4); // BEGIN, RELATION, INSERT, COMMIT

    const listed = await dbA.query<{ plugin: string; database: string }>('SELECT plugin, database FROM pg_replication_slots WHERE slot_name = $1', [
      slot,
    ]);
    expect(listed.rows).toEqual([{ plugin: 'pgoutput', database: dbA.name }]);

    await dbA.query('SELECT pg_drop_replication_slot($1)', [slot]);
    const after = await dbA.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    expect(after.rowCount).toBe(0);
  });

  it('accepts logical replication connections from 127.0.0.1', async () => {
    const system = await withClient({ connectionString: dbA.url, replication: 'database' } as pg.ClientConfig, async (c) => {
      const { rows } = await c.query<{ systemid: string; dbname: string }>('IDENTIFY_SYSTEM');
      return rows[0];
    });
    expect(system?.dbname).toBe(dbA.name);
    expect(system?.systemid).toMatch(/^\d+$/);
  });

  it('keeps test databases isolated from each other', async () => {
    expect(dbA.name).not.toBe(dbB.name);
    await dbA.query('CREATE TABLE only_in_a (v text)');
    await dbA.query("INSERT INTO only_in_a VALUES ('a')");
    const inB = await dbB.query("SELECT to_regclass('public.only_in_a') AS t");
    expect(inB.rows[0]?.t).toBeNull();
    const inA = await dbA.query('SELECT v FROM only_in_a');
    expect(inA.rows).toEqual([{ v: 'a' }]);
  });

  it('drop() removes a database even with open sessions and a replication slot', async () => {
    const db = await createTestDatabase('testbed_drop');
    await db.query('SELECT 1');
    await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [`${db.name}_slot`]);
    const other = new pg.Client(db.url);
    await other.connect();
    other.on('error', () => undefined); // terminated by drop()
    await db.drop();
    const exists = await withClient(testPostgresUrl(), (c) => c.query('SELECT 1 FROM pg_database WHERE datname = $1', [db.name]));
    expect(exists.rowCount).toBe(0);
    await other.end().catch(() => undefined);
  });
});

describe('shared Redis', () => {
  it('answers PING, SET and GET', async () => {
    const url = new URL(testRedisUrl());
    expect(url.hostname).toBe('127.0.0.1');
    expect(Number(url.port)).not.toBe(6379);
    const redis = new Redis(testRedisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    try {
      expect(await redis.ping()).toBe('PONG');
      const key = `testbed:${Math.random().toString(36).slice(2)}`;
      expect(await redis.set(key, 'value', 'EX', 60)).toBe('OK');
      expect(await redis.get(key)).toBe('value');
      await redis.del(key);
    } finally {
      redis.disconnect();
    }
  });
});

describe('throwaway servers', () => {
  let cluster: PostgresCluster | undefined;
  let redisServer: RedisTestServer | undefined;

  afterAll(async () => {
    await Promise.all([cluster?.stop(), redisServer?.stop()]);
  });

  it('a scram-sha-256 cluster demands the password and keeps data and port across a restart', async () => {
    cluster = await startPostgresCluster({ authMethod: 'scram-sha-256', settings: { max_connections: '50' } });
    expect(await cluster.psql('SHOW max_connections')).toBe('50\n');

    const url = await cluster.createDatabase('restart_check');
    const withoutPassword = new URL(url);
    withoutPassword.password = '';
    await expect(withClient(withoutPassword.toString(), (c) => c.query('SELECT 1'))).rejects.toThrow(/password/i);
    const wrongPassword = new URL(url);
    wrongPassword.password = 'wrong';
    await expect(withClient(wrongPassword.toString(), (c) => c.query('SELECT 1'))).rejects.toThrow(/password authentication failed/);

    await withClient(url, async (c) => {
      await c.query('CREATE TABLE kept (id int PRIMARY KEY, v text)');
      await c.query("INSERT INTO kept VALUES (1, 'survives')");
    });
    const port = cluster.port;
    await cluster.restart();
    expect(cluster.port).toBe(port);
    const rows = await withClient(url, async (c) => (await c.query('SELECT id, v FROM kept')).rows);
    expect(rows).toEqual([{ id: 1, v: 'survives' }]);
    expect(await cluster.psql('SELECT v FROM kept', 'restart_check')).toBe('survives\n');
    await expect(cluster.psql('SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);

    await cluster.stop();
    await expect(withClient(url, (c) => c.query('SELECT 1'))).rejects.toThrow();
  });

  it('a Redis with a password demands it and comes back on the same port after restart', async () => {
    redisServer = await startRedisServer({ password: 's3cret', maxmemoryPolicy: 'noeviction' });
    expect(redisServer.url).toBe(`redis://:s3cret@127.0.0.1:${redisServer.port}`);

    const anonymous = new Redis({ host: redisServer.host, port: redisServer.port, lazyConnect: true, maxRetriesPerRequest: 0 });
    anonymous.on('error', () => undefined);
    await anonymous.connect().catch(() => undefined);
    await expect(anonymous.set('k', 'v')).rejects.toThrow(/NOAUTH/);
    anonymous.disconnect();

    const port = redisServer.port;
    await redisServer.restart();
    const client = new Redis(redisServer.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await client.connect();
    try {
      expect(redisServer.port).toBe(port);
      expect(await client.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      expect(await client.ping()).toBe('PONG');
    } finally {
      client.disconnect();
    }
  });
});
