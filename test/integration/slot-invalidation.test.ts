// A replication slot invalidated under Sluice (it fell further behind than max_slot_wal_keep_size): the next
// start logs it clearly, starts the index over from a fresh snapshot instead of failing in a loop, and the index
// converges — including a delete made while the slot was lost.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { startClusterBookIndex, type ClusterBookIndex } from '../helpers/cluster-book-index.js';
import type { EngineUnderTest } from '../helpers/engine.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli } from '../helpers/run-cli.js';

let engine: EngineUnderTest;
let dbUrl: string;
let plan: EntryPlan;
let env: Record<string, string>;
let schemaPath: string;
let sluice: RunningSluice | undefined;
let setup: ClusterBookIndex | undefined;

beforeAll(async () => {
  setup = await startClusterBookIndex('lost', { settings: { max_slot_wal_keep_size: '1MB', max_wal_size: '32MB', min_wal_size: '32MB' }, extraSql: 'CREATE TABLE filler (id serial PRIMARY KEY, pad text);' });
  ({ engine, dbUrl, plan, env, schemaPath } = setup);
});

afterAll(async () => {
  await sluice?.stop();
  await setup?.close();
});

describe('an invalidated replication slot', () => {
  it('is reported and the index starts over, then converges', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(await sluice.stop()).toBe(0);

    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      await client.query(`DELETE FROM book WHERE id = 3`);
      await client.query(`UPDATE author SET name = 'While lost' WHERE id = 1`);
      const slot = slotNameFor('lost', 'lost_book');
      await waitFor('the slot to be invalidated', async () => {
        await client.query(`INSERT INTO filler (pad) SELECT repeat('x', 500) FROM generate_series(1, 20000)`);
        await client.query(`SELECT pg_switch_wal()`);
        await client.query(`CHECKPOINT`);
        const { rows } = await client.query<{ wal_status: string }>(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
        return rows[0]?.wal_status === 'lost' ? true : undefined;
      }, 60_000);
    } finally {
      await client.end();
    }

    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).toMatch(/slot invalidated|invalidated/);
    expect(sluice.child.exitCode).toBeNull();
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });

  it('a slot recreated after ours was lost (bootstrap run again) is not taken for ours: the index starts over', async () => {
    const slot = slotNameFor('lost', 'lost_book');
    const client = new pg.Client({ connectionString: dbUrl });
    await client.connect();
    try {
      // The slot is lost (a failover, a DBA) while Sluice is stopped; changes are made; then bootstrap makes a new
      // slot, which starts after them.
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      await client.query(`DELETE FROM book WHERE id = 2`);
      await client.query(`UPDATE author SET name = 'While the slot was gone' WHERE id = 1`);
    } finally {
      await client.end();
    }
    expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(dbUrl, plan, engine.url);
    expect(sluice.output()).toContain('slot ahead of checkpoint');
    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
  });
});
