import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import pg from 'pg';
import { expectConverged, logLines, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

// The README's grants: bootstrap by the tables' owner, then `sluice run` as a role with only REPLICATION and SELECT.
let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let plan: EntryPlan;
let schemaPath: string;
let sluice: RunningSluice | undefined;
const role = `sluice_${Math.random().toString(36).slice(2, 8)}`;

beforeAll(async () => {
  db = await createTestDatabase('privilege');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  await db.query(`CREATE ROLE ${role} LOGIN REPLICATION`);
  await db.query(`GRANT CONNECT ON DATABASE ${db.name} TO ${role}; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-privilege-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index: 'privileged_book' }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
});

afterAll(async () => {
  await sluice?.stop();
  await engine?.close();
  await db?.drop();
  await db?.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
});

function limitedEnv(): Record<string, string> {
  const url = new URL(db.url);
  url.username = role;
  url.password = '';
  return sluiceEnv(url.toString(), engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1' });
}

describe('least privilege', () => {
  it('run refuses to start before bootstrap, naming the fix', async () => {
    const result = await runCli(['-c', schemaPath, 'run'], limitedEnv());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/SRC_NOT_BOOTSTRAPPED.*sluice bootstrap/);
  });

  it('bootstrap --print-sql prints what a DBA runs, and writes nothing', async () => {
    const result = await runCli(['-c', schemaPath, 'bootstrap', '--print-sql'], limitedEnv());
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`\\connect ${db.name}`);
    expect(result.stdout).toMatch(/CREATE PUBLICATION "sluice" FOR TABLE .*"public"\."book_author"/);
    expect(result.stdout).toContain('ALTER TABLE "public"."rating" REPLICA IDENTITY FULL;');
    expect(result.stdout).toContain(`pg_create_logical_replication_slot('${db.name}_privileged_book', 'pgoutput')`);
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_publication`)).rows[0].n).toBe(0);
  });

  it('the owner bootstraps; a REPLICATION + SELECT role runs the snapshot and the stream', async () => {
    const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
    expect(bootstrap.code).toBe(0);
    const superuser = (await db.query<{ rolsuper: boolean }>(`SELECT rolsuper FROM pg_roles WHERE rolname = $1`, [role])).rows[0]!.rolsuper;
    expect(superuser).toBe(false);
    sluice = startSluice(['-c', schemaPath], limitedEnv());
    await expectConverged(db.url, plan, engine.url);
    await db.query(`UPDATE author SET name = 'Renamed' WHERE id = 1; DELETE FROM book_subject WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    // Bootstrap set REPLICA IDENTITY FULL everywhere: nothing to warn about.
    expect(sluice.output()).not.toContain('REPLICA IDENTITY is not FULL');
    sluice = undefined;
  });

  it('a child table without REPLICA IDENTITY FULL, and a root identified by another index, are named in warnings at start', async () => {
    await db.query(`ALTER TABLE book_author REPLICA IDENTITY DEFAULT; ALTER TABLE rating REPLICA IDENTITY DEFAULT; ALTER TABLE book REPLICA IDENTITY USING INDEX book_isbn_key`);
    try {
      sluice = startSluice(['-c', schemaPath], limitedEnv());
      const warning = await waitFor('the warning', async () => logLines(sluice!.output()).find((l) => String(l.msg).startsWith('REPLICA IDENTITY is not FULL')));
      expect(warning.tables).toEqual(['public.book_author', 'public.rating']);
      const root = await waitFor('the root warning', async () => logLines(sluice!.output()).find((l) => String(l.msg).startsWith('REPLICA IDENTITY USING INDEX')));
      expect(root.tables).toEqual(['public.book']);
      expect(await sluice.stop()).toBe(0);
      sluice = undefined;
    } finally {
      await db.query(`ALTER TABLE book_author REPLICA IDENTITY FULL; ALTER TABLE rating REPLICA IDENTITY FULL; ALTER TABLE book REPLICA IDENTITY FULL`);
    }
  });

  it("a role's statement, idle-in-transaction and (PostgreSQL 17+) transaction timeouts do not cut Sluice's queries", async () => {
    // As a DBA may set for every application role; 1 ms cuts nearly any query (the document queries always).
    // transaction_timeout is cleared after connecting, where the server has it; older servers must still connect.
    const version = Number((await db.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);
    const timeouts = ['statement_timeout', 'idle_in_transaction_session_timeout', ...(version >= 170000 ? ['transaction_timeout'] : [])];
    await db.query(timeouts.map((t) => `ALTER ROLE ${role} SET ${t} = '1ms';`).join(' '));
    try {
      sluice = startSluice(['-c', schemaPath], limitedEnv());
      await db.query(`UPDATE author SET name = 'Renamed under a timeout' WHERE id = 2; UPDATE book SET title = 'Titled under a timeout' WHERE id = 3`);
      await expectConverged(db.url, plan, engine.url);
      expect(sluice.output()).not.toMatch(/statement timeout|transaction timeout/);
      expect(await sluice.stop()).toBe(0);
      sluice = undefined;
    } finally {
      await db.query(timeouts.map((t) => `ALTER ROLE ${role} RESET ${t};`).join(' '));
    }
  });

  it('SIGTERM while a new slot waits for a transaction left open exits 0 at once, leaving no half-made slot', async () => {
    const slot = `${db.name}_privileged_book`;
    const reset = await runCli(['-c', schemaPath, 'reset', 'privileged_book'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
    expect(reset.code, reset.stderr).toBe(0);
    // A session idle in a transaction that has written: creating a slot waits for it to end.
    const idle = new pg.Client({ connectionString: db.url });
    idle.on('error', () => undefined);
    await idle.connect();
    try {
      await idle.query(`BEGIN; INSERT INTO publisher (id, name, is_active) VALUES (900, 'Left open', true)`);
      sluice = startSluice(['-c', schemaPath], { ...limitedEnv(), PGSYNC_LOG_LEVEL: 'info' });
      await waitFor('the slot creation to wait for the open transaction', async () =>
        (await db.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND backend_type = 'walsender' AND state = 'active'`, [role])).rows[0].n === 1 ? true : undefined,
      );
      expect(await sluice.stop(30_000)).toBe(0);
      sluice = undefined;
      expect((await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0].n).toBe(0);
    } finally {
      await idle.query('ROLLBACK').catch(() => undefined);
      await idle.end();
    }
  });

  it('teardown drops the slot and the publication', async () => {
    const result = await runCli(['-c', schemaPath, 'teardown'], sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }));
    expect(result.code).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = $1`, [db.name])).rows[0].n).toBe(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_publication`)).rows[0].n).toBe(0);
  });
});
