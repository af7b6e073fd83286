// A commit is decoded as soon as its WAL record is flushed; other sessions see it only once the committing backend
// is done, which with synchronous replication waits for a standby. Here the standby never answers (named but not
// connected), so a transaction with synchronous_commit = on stays invisible: Sluice must not read its documents
// before it is visible (it would index the old rows and never correct them), and must apply it once it is.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { startClusterBookIndex, type ClusterBookIndex } from '../helpers/cluster-book-index.js';
import type { EngineUnderTest } from '../helpers/engine.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import type { PostgresCluster } from '../helpers/postgres-cluster.js';
import { sluiceEnv } from '../helpers/run-cli.js';

let cluster: PostgresCluster;
let engine: EngineUnderTest;
let work: string;
let dbUrl: string;
let plan: EntryPlan;
let env: Record<string, string>;
let schemaPath: string;
let sluice: RunningSluice | undefined;
let setup: ClusterBookIndex | undefined;

beforeAll(async () => {
  // Every session commits locally except the one that asks for the (absent) synchronous standby.
  setup = await startClusterBookIndex('visibility', { settings: { synchronous_standby_names: 'absent_standby', synchronous_commit: 'local' } });
  ({ cluster, engine, work, dbUrl, plan, env, schemaPath } = setup);
});

afterAll(async () => {
  await sluice?.stop();
  await setup?.close();
});

/**
 * A session that commits with synchronous_commit = on (its warnings muted) and its backend pid, and one to watch
 * and configure with.
 */
async function sessions(): Promise<{ waiting: pg.Client; pid: number; admin: pg.Client }> {
  const waiting = new pg.Client({ connectionString: dbUrl });
  const admin = new pg.Client({ connectionString: dbUrl });
  await waiting.connect();
  await admin.connect();
  waiting.on('notice', () => undefined);
  const pid = (await waiting.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await waiting.query('SET synchronous_commit = on');
  return { waiting, pid, admin };
}

describe('a transaction decoded before it is visible (synchronous replication)', () => {
  it('is applied once visible, with its new rows, not the old ones', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);

    const { waiting, pid, admin } = await sessions();
    try {
      // Committed locally, then waits for the standby: invisible to every other session meanwhile.
      const committing = waiting.query(`UPDATE book SET title = 'Visible once the standby answers' WHERE id = 1`);
      await waitFor('the transaction to wait for the standby', async () => {
        const { rows } = await admin.query(`SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'SyncRep'`, [pid]);
        return rows.length === 1 ? true : undefined;
      });
      await waitFor('Sluice to wait for the transaction to become visible', async () =>
        sluice!.output().includes('waiting for committed transactions to become visible') ? true : undefined,
      );
      // The standby never answers: cancelling the wait makes the local commit visible (PostgreSQL warns, no error).
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      await committing;
      await expectConverged(dbUrl, plan, engine.url);
    } finally {
      await waiting.end();
      await admin.end();
    }
    expect(sluice.child.exitCode).toBeNull();
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it('reads a later batch only once the earlier batches are visible too, though its own transaction is', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);

    const { waiting, pid, admin } = await sessions();
    try {
      // T1 changes book 1's rating and stays invisible, waiting for the standby.
      const committing = waiting.query(`UPDATE rating SET value = 1.5 WHERE book_isbn = '001'`);
      await waitFor('Sluice to wait for T1 to become visible', async () =>
        sluice!.output().includes('waiting for committed transactions to become visible') ? true : undefined,
      );
      // T2 changes another row of the same document, commits locally and is visible at once; it is decoded into a
      // later batch, which must not read book 1 (T2's title with the old rating) before T1 is visible: written with
      // T2's higher version, that document would replace the complete one for good.
      await admin.query(`UPDATE book SET title = 'Changed after an invisible rating' WHERE id = 1`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      await committing;
      await expectConverged(dbUrl, plan, engine.url);
    } finally {
      await waiting.end();
      await admin.end();
    }
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it("fails with a clear error, not a silent hang, when Sluice's own walsender is the synchronous standby", async () => {
    // As the README's least-privileged role: it cannot read its own walsender's sync_state.
    const role = 'sluice_sync_reader';
    await cluster.psql(
      `CREATE ROLE ${role} LOGIN REPLICATION; GRANT USAGE ON SCHEMA public TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role};`,
      'visibility',
    );
    const limited = new URL(dbUrl);
    limited.username = role;
    limited.password = '';
    sluice = startSluice(['-c', schemaPath], { ...env, ...sluiceEnv(limited.toString(), engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info' }) });
    await expectConverged(dbUrl, plan, engine.url);
    const { waiting, pid, admin } = await sessions();
    try {
      // "*" names every standby, Sluice's logical walsender included: commits now wait for Sluice to confirm them.
      await admin.query(`ALTER SYSTEM SET synchronous_standby_names = '*'`);
      await admin.query('SELECT pg_reload_conf()');
      await waitFor('Sluice to become the synchronous standby', async () => {
        const { rows } = await admin.query(`SELECT 1 FROM pg_stat_replication WHERE application_name = 'sluice' AND sync_state = 'sync'`);
        return rows.length === 1 ? true : undefined;
      });
      const committing = waiting.query(`UPDATE book SET title = 'Waits for Sluice, which waits for it' WHERE id = 2`);
      await waitFor('Sluice to name the cycle', async () => (sluice!.output().includes('SRC_SYNC_STANDBY') ? true : undefined), 60_000);
      expect(sluice.output()).toMatch(/is named by synchronous_standby_names = '\*' and its transactions stay invisible/);
      // The operator's fix: Sluice out of synchronous_standby_names. The waiting commit is released (cancelled, as
      // the named standby is absent) and Sluice, retrying on its own, applies it.
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names');
      await admin.query('SELECT pg_reload_conf()');
      await admin.query('SELECT pg_cancel_backend($1)', [pid]);
      await committing;
      await expectConverged(dbUrl, plan, engine.url, 60_000);
    } finally {
      await admin.query('ALTER SYSTEM RESET synchronous_standby_names').catch(() => undefined);
      await admin.query('SELECT pg_reload_conf()').catch(() => undefined);
      await waiting.end();
      await admin.end();
    }
    expect(sluice.child.exitCode).toBeNull();
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });
});
