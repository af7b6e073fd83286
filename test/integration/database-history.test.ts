// The database's history changes under the index: a point-in-time restore (a backup restored and promoted, a new
// timeline) takes back changes the index already has. Their versions (LSNs of the lost timeline) are above the
// restored server's next changes, so writing on into the same index would keep the lost changes and refuse the
// real ones as stale. Sluice notices (system identifier and timeline in the checkpoint), builds a new generation
// from a snapshot, swaps the alias, and the index equals the restored database.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { parseLsn } from '../../src/source/postgres/lsn.js';
import { startClusterBookIndex, type ClusterBookIndex } from '../helpers/cluster-book-index.js';
import { allDocuments, type EngineUnderTest } from '../helpers/engine.js';
import { buildDocuments } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import type { PostgresCluster } from '../helpers/postgres-cluster.js';
import { runCli } from '../helpers/run-cli.js';

let cluster: PostgresCluster;
let engine: EngineUnderTest;
let dbUrl: string;
let plan: EntryPlan;
let env: Record<string, string>;
let schemaPath: string;
let sluice: RunningSluice | undefined;
let setup: ClusterBookIndex | undefined;

beforeAll(async () => {
  setup = await startClusterBookIndex('history');
  ({ cluster, engine, dbUrl, plan, env, schemaPath } = setup);
});

afterAll(async () => {
  await sluice?.stop();
  await setup?.close();
});

/** The server's WAL insert position as a number, the version `sluice verify --repair` writes with. */
async function walInsertLsn(): Promise<bigint> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    return parseLsn((await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn);
  } finally {
    await client.end();
  }
}

async function sql(...statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

const served = async (): Promise<string[]> => Object.keys((await (await fetch(`${engine.url}/_alias/history_book`)).json()) as object);

describe('a point-in-time restore under a synced index', () => {
  it('builds a new generation: the index equals the restored database, changes of the lost timeline gone', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const before = await served();
    const backup = await cluster.backup();

    // Changes the index gets, then loses with the restore.
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`DELETE FROM book WHERE id = 3`, `UPDATE author SET name = 'Only on the lost timeline' WHERE id = 1`, `UPDATE book SET title = 'Lost title' WHERE id = 2`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);

    await cluster.restoreAsNewTimeline(backup);
    // Changes of the new timeline, at LSNs below the lost timeline's last ones.
    await sql(`UPDATE book SET title = 'After the restore' WHERE id = 1`);

    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    const output = sluice.output();
    expect(output).toContain('not in the database any more');
    expect(output).toMatch(/history left timeline 1 at .* \(now timeline 2/);
    const after = await served();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);

    // The new generation streams on: a change after the start arrives.
    await sql(`UPDATE book SET title = 'Streamed after the new generation' WHERE id = 4`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.child.exitCode).toBeNull();
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it('resumes without a new generation after a timeline change its positions survived (nothing was lost)', async () => {
    const before = await served();
    // Restored from a backup taken after everything the index has: the new timeline's history holds every position.
    const backup = await cluster.backup();
    await cluster.restoreAsNewTimeline(backup);
    await sql(`UPDATE book SET title = 'On timeline 3' WHERE id = 1`, `DELETE FROM book WHERE id = 4`);
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).not.toContain('not in the database any more');
    expect(sluice.output()).not.toContain('starting the index over');
    expect(await served()).toEqual(before);
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it('builds a new generation after a restore that keeps the timeline (a volume snapshot): the WAL ends before the checkpoint', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    // A change applied: the process is up and streaming (a SIGTERM before it has started would kill it).
    await sql(`UPDATE book SET title = 'Before the volume snapshot' WHERE id = 1`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const before = await served();
    const backup = await cluster.backup();

    // WAL of a table outside the tree first, so the changes the index then gets sit well past the backup's end.
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`CREATE TABLE filler AS SELECT g AS n, md5(g::text) AS t FROM generate_series(1, 20000) g`);
    await sql(`DELETE FROM book WHERE id = 5`, `UPDATE author SET name = 'Only before the snapshot restore' WHERE id = 1`, `UPDATE book SET title = 'Lost with the snapshot' WHERE id = 1`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);

    await cluster.restoreInPlace(backup);
    // A change on the restored server, at an LSN below the changes the index got before.
    await sql(`UPDATE book SET title = 'After the snapshot restore' WHERE id = 2`);

    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).toMatch(/WAL ends at .*, before the checkpoint's position .* on the same timeline/);
    const after = await served();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it('builds a new generation when the history left the timeline between the saved position and documents already written', async () => {
    if (!engine.server) return; // holds bulk answers back: the test engine only
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`UPDATE book SET title = 'Before the failover' WHERE id = 1`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const backup = await cluster.backup();

    // The engine carries out every bulk request but holds its answer back: a change's documents are written while the
    // position after it is never saved. Then the process dies.
    engine.server.faults.inject({ kind: 'delayReply', ms: 120_000, path: '_bulk$', times: 1_000 });
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`UPDATE book SET title = 'Written, never saved' WHERE id = 2`);
    await waitFor('the unsaved change to be in the index', async () =>
      (await allDocuments(engine.url, 'history_book')).get('2')?.book_title === 'Written, never saved' ? true : undefined,
    );
    await sluice.kill();
    engine.server.faults.clear();

    // A failover to a replica that had not received that change: its history leaves the timeline after the saved
    // position but before the written document's version.
    await cluster.restoreAsNewTimeline(backup);
    await sql(`UPDATE book SET title = 'After the failover' WHERE id = 3`);
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).toContain('not in the database any more');
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });
  it('builds a new generation after a restore and a reset: with no checkpoint to compare, the engine refusing the snapshot as stale tells', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`UPDATE book SET title = 'Before the second volume snapshot' WHERE id = 1`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const backup = await cluster.backup();

    sluice = startSluice(['-c', schemaPath], env);
    await sql(`CREATE TABLE filler_reset AS SELECT g AS n, md5(g::text) AS t FROM generate_series(1, 20000) g`);
    await sql(`UPDATE book SET title = 'Lost with the restore' WHERE id = 2`, `UPDATE author SET name = 'Lost author name' WHERE id = 2`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const before = await served();

    await cluster.restoreInPlace(backup);
    // The operator starts the index over, as the seed's runbook does after a restore: the checkpoint, and with it the
    // recorded origin and position, is gone.
    const reset = await runCli(['-c', schemaPath, 'reset', 'history_book'], env);
    expect(reset.code, reset.stderr).toBe(0);

    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).toMatch(/refused \d+ of this snapshot's writes as older than documents already in the index/);
    const after = await served();
    expect(after).toHaveLength(1);
    expect(after).not.toEqual(before);
    await sql(`UPDATE book SET title = 'Streamed after the reset' WHERE id = 4`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });
  it('keeps the generation when a document written from this history after the new slot refuses the snapshot (verify --repair)', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await sql(`UPDATE book SET title = 'Before the repair' WHERE id = 3`);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);
    const before = await served();
    const reset = await runCli(['-c', schemaPath, 'reset', 'history_book'], env);
    expect(reset.code, reset.stderr).toBe(0);

    // The snapshot's bulk request waits, and meanwhile book 3 is written as `sluice verify --repair` writes: the
    // document PostgreSQL builds, at the current WAL position, which is past the new slot's.
    engine.server!.faults.inject({ kind: 'delay', ms: 3000, path: '_bulk$', times: 1 });
    sluice = startSluice(['-c', schemaPath], env);
    await waitFor('the new slot', async () => (sluice!.output().includes('replication slot created') ? true : undefined));
    await sql(`CREATE TABLE filler_repair AS SELECT 1 AS n`);
    const lsn = await walInsertLsn();
    const [book] = await buildDocuments(dbUrl, plan, { kind: 'keys', keys: [['3']] });
    const put = await fetch(`${engine.url}/history_book/_doc/3?routing=${book!.routing}&version=${lsn}&version_type=external_gte`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: book!.raw,
    });
    expect(put.ok).toBe(true);

    await waitFor('the snapshot', async () => (sluice!.output().includes('snapshot finished; streaming') ? true : undefined));
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).not.toContain('not in the database any more');
    expect(await served()).toEqual(before);
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });
});
