// PG_URL in libpq's forms reaches the server: without a host, the host parameter naming the Unix socket directory
// (as Cloud SQL's /cloudsql/… and a local /var/run/postgresql are given).
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseEnvironment } from '../../src/config/env.js';
import { createPool } from '../../src/source/postgres/connect.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('pg_url');
});

afterAll(async () => {
  await db?.drop();
});

describe('PG_URL', () => {
  it('connects through the socket directory its host parameter names', async () => {
    const socketDir = dirname(inject('pgDataDir'));
    const { port, username } = new URL(db.url);
    const parsed = parseEnvironment({ PG_URL: `postgresql://${username}@/${db.name}?host=${encodeURIComponent(socketDir)}&port=${port}` }, {});
    expect(parsed.problems.filter((p) => p.severity === 'error')).toEqual([]);
    const postgres = parsed.config!.postgres;
    expect(postgres.host).toBe(socketDir);
    const pool = createPool(postgres, db.name, 1);
    try {
      // A Unix socket connection has no client address.
      const { rows } = await pool.query<{ db: string; addr: string | null }>('SELECT current_database() AS db, inet_client_addr()::text AS addr');
      expect(rows[0]).toEqual({ db: db.name, addr: null });
    } finally {
      await pool.end();
    }
  });
});
