import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCheckpointStore } from '../../src/checkpoint/file-checkpoint-store.js';
import { PostgresCheckpointStore } from '../../src/checkpoint/postgres-checkpoint-store.js';
import { reindexRequestName } from '../../src/lifecycle/generation-names.js';
import { engineCall, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let schemaPath: string;
let env: Record<string, string>;
const index = 'admin_book';

beforeAll(async () => {
  db = await createTestDatabase('admin');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-admin-'));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }))));
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1' });
});

afterAll(async () => {
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice preview', () => {
  it('prints the document of a root id, with its routing', async () => {
    const result = await runCli(['-c', schemaPath, 'preview', index, '1'], env);
    expect(result.code).toBe(0);
    const doc = JSON.parse(result.stdout) as { _id: string; _routing: string; _source: Record<string, unknown> };
    expect(doc).toMatchObject({ _index: index, _id: '1', _routing: 'XX1', _source: { book_title: 'It', languages: ['en=GB', 'fr=FR'] } });
  });

  it('--sql prints the query; an unknown id exits 1, an unknown index exits 3', async () => {
    const sql = await runCli(['-c', schemaPath, 'preview', index, '1', '--sql'], env);
    expect(sql.code).toBe(0);
    expect(sql.stdout).toMatch(/^-- parameters: \[\["1"\]\]\nSELECT concat_ws\('\|'/);
    const missing = await runCli(['-c', schemaPath, 'preview', index, '999'], env);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('has id "999": no document');
    const unknown = await runCli(['-c', schemaPath, 'preview', 'nope', '1'], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain(`no schema entry writes index "nope" (indexes: ${index})`);
  });
});

describe('sluice status and reset', () => {
  it('status reads the stores when no instance runs; reset makes the next run sync the index again', async () => {
    const plan = (await compileAgainst(db.url, JSON.parse((await import('node:fs')).readFileSync(schemaPath, 'utf8')))).plans[0]!;
    expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
    const before = await runCli(['-c', schemaPath, 'status'], env);
    expect(before.code).toBe(0);
    expect(before.stdout).toContain(`${index}: not started`);

    let sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(db.url, plan, engine.url);
    // A change streamed and acknowledged: the checkpoint then has an LSN (a snapshot alone may leave none).
    await db.query(`UPDATE book SET title = 'Status' WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const streaming = await runCli(['-c', schemaPath, 'status'], env);
    expect(streaming.stdout).toMatch(new RegExp(`${index}: streaming; checkpoint lsn [0-9A-F]+/[0-9A-F]+; slot ${db.name}_${index}, retained WAL \\d+ bytes; no owner`));

    const reset = await runCli(['-c', schemaPath, 'reset', index], env);
    expect(reset.code).toBe(0);
    expect(reset.stdout).toContain(`${index}: checkpoint forgotten and slot ${db.name}_${index} dropped`);
    expect((await runCli(['-c', schemaPath, 'status'], env)).stdout).toContain(`${index}: not started; checkpoint lsn -; no slot`);

    await db.query(`DELETE FROM book WHERE id = 2`);
    // A document whose id cannot even be a key of the root table (integer): the orphan sweep deletes it too.
    const stray = await engineCall(engine.url, 'PUT', `/${index}/_doc/not-a-book?routing=x&refresh=true`, { book_title: 'stray' });
    expect(stray.status).toBe(201);
    sluice = startSluice(['-c', schemaPath], env);
    try {
      await expectConverged(db.url, plan, engine.url);
      // Logged once the deletes are durable, so it can come a moment after the engine shows them.
      await waitFor('the orphan sweep to be logged', async () => (sluice.output().includes('deleted documents whose rows are gone') ? true : undefined));
    } finally {
      expect(await sluice.stop()).toBe(0);
    }
  });

  it('reset is refused while another process owns the index, and leaves retired generations for the next run to delete', async () => {
    const plan = (await compileAgainst(db.url, JSON.parse(readFileSync(schemaPath, 'utf8')))).plans[0]!;
    const name = `${db.name}_${index}`;
    const store = await FileCheckpointStore.open(work);
    try {
      // A standby's view: another process (say on another machine) holds the lease.
      expect((await store.claimLease(name, 'other-host:7:abc123', 60_000)).owner).toBe('other-host:7:abc123');
      const kept = await store.load(name);
      expect(kept?.snapshot).toBeDefined();
      const refused = await runCli(['-c', schemaPath, 'reset', index], env);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`index ${index} is owned by other-host:7:abc123`);
      // sluice status names the owner through the store, wherever that process runs.
      expect((await runCli(['-c', schemaPath, 'status'], env)).stdout).toMatch(new RegExp(`${index}: .*; owned by other-host:7:abc123 \\(lease ends in \\d+\\.\\d s unless renewed\\)`));
      // teardown is refused too, and drops nothing.
      const teardown = await runCli(['-c', schemaPath, 'teardown'], env);
      expect(teardown.code).toBe(1);
      expect(teardown.stderr).toContain(`index ${index} is owned by other-host:7:abc123 (a running \`sluice run\`): stop every \`sluice run\` of this schema first, then teardown`);
      expect((await db.query('SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1', [name])).rows[0].n).toBe(1);
      expect(await store.load(name)).toEqual(kept);
      await store.releaseLease(name, 'other-host:7:abc123');

      // A generation the alias left, past its grace period, not yet deleted when reset runs.
      const retired = `${index}-0000deadbeef`; // named like a generation: Sluice deletes no other index
      expect((await engineCall(engine.url, 'PUT', `/${retired}`, {})).status).toBe(200);
      const checkpoint = (await store.load(name))!;
      await store.save(name, { ...checkpoint, retired: [{ index: retired, dropAfter: new Date(Date.now() - 1000).toISOString() }] });
      const reset = await runCli(['-c', schemaPath, 'reset', index], env);
      expect(reset.code, reset.stderr).toBe(0);
      expect(reset.stdout).toContain(`(it deletes ${retired} when due)`);
      // The generation being synced stays on record: the next run syncs it again, rather than start another one.
      expect(await store.load(name)).toEqual({
        slot: name,
        updatedAt: expect.any(String),
        generation: checkpoint.generation,
        fingerprint: checkpoint.fingerprint,
        retired: [{ index: retired, dropAfter: expect.any(String) }],
      });

      if (engine.server) {
        // SIGTERM while the start-up still deletes the retired generation: the process stops there, before it
        // creates a slot or snapshots anything (a stop that came before the syncs started used to go unseen).
        engine.server.faults.inject({ kind: 'delay', ms: 3000, method: 'DELETE', path: `^/${retired}$` });
        const early = startSluice(['-c', schemaPath], { ...env, PGSYNC_LOG_LEVEL: 'info' });
        try {
          await waitFor('the retired generation\'s delete to be in flight', async () => (engine.server!.faults.pending() === 0 ? true : undefined));
        } finally {
          expect(await early.stop(30_000)).toBe(0);
        }
        expect(early.output()).toContain('stopping: finishing the batch in hand');
        expect(early.output()).not.toContain('snapshot started');
      }
      const sluice = startSluice(['-c', schemaPath], env);
      try {
        // Synced again from a snapshot: the index already held the same documents, so convergence alone proves nothing.
        await waitFor('the index to be synced again', async () => ((await store.load(name))?.snapshot?.complete ? true : undefined));
        await expectConverged(db.url, plan, engine.url);
        await waitFor('the retired generation to be deleted', async () => ((await engineCall(engine.url, 'HEAD', `/${retired}`)).status === 404 ? true : undefined));
      } finally {
        expect(await sluice.stop()).toBe(0);
      }
    } finally {
      await store.close();
    }
  });
});

describe('the PostgreSQL checkpoint store with entries in two databases', () => {
  it('reindex and reset use the store in the first entry\'s database, where `sluice run` keeps it', async () => {
    const second = await createTestDatabase('admin_second');
    const pool = testPool(db.url, 2);
    try {
      await second.query('CREATE TABLE note (id int PRIMARY KEY, body text)');
      const multiPath = join(work, 'schema-two-databases.json');
      writeFileSync(multiPath, JSON.stringify([
        ...fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index: 'admin_first' })),
        { database: second.name, index: 'admin_second', nodes: { table: 'note', columns: ['id', 'body'] } },
      ]));
      const storeEnv = { ...env, SLUICE_CHECKPOINT_STORE: 'postgres' };
      const name = `${second.name}_admin_second`;
      const reindex = await runCli(['-c', multiPath, 'reindex', 'admin_second'], storeEnv);
      expect(reindex.code, reindex.stderr).toBe(0);
      const requested = await db.query('SELECT name FROM sluice.checkpoint WHERE name = $1', [reindexRequestName(name)]);
      expect(requested.rows).toHaveLength(1);
      expect((await second.query(`SELECT to_regclass('sluice.checkpoint') AS t`)).rows[0].t).toBeNull();

      // Another process owns the index (its lease in the shared store): reset sees it there, and refuses.
      const store = await PostgresCheckpointStore.open(pool);
      try {
        expect((await store.claimLease(name, 'other-host:8:def456', 60_000)).owner).toBe('other-host:8:def456');
        const refused = await runCli(['-c', multiPath, 'reset', 'admin_second'], storeEnv);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toContain('index admin_second is owned by other-host:8:def456');
        await store.releaseLease(name, 'other-host:8:def456');
        await store.remove(reindexRequestName(name));
      } finally {
        await store.close();
      }
    } finally {
      await pool.end();
      await second.drop();
    }
  });
});
