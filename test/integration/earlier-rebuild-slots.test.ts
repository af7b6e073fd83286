// Rebuild slots of slot names over 61 characters used to be the first 61 characters and "_r"; they now carry a
// digest (generation-names.ts). A rebuild an earlier version started keeps its slot name, so reset, teardown and the
// removal of an entry gone from schema.json also drop a slot of the earlier form, but only when the entry's checkpoint
// records it and no current entry uses the name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileCheckpointStore } from '../../src/checkpoint/file-checkpoint-store.js';
import { earlierRebuildSlotName, rebuildSlotName } from '../../src/lifecycle/generation-names.js';
import { dropRemovedEntries } from '../../src/lifecycle/removed-entries.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, testPool, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
/** An index whose slot name is 62 characters: its rebuild slot had the earlier form. */
let longIndex: string;
let longSlot: string;
let earlier: string;

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

beforeAll(async () => {
  db = await createTestDatabase('earlier');
  await db.query(`CREATE TABLE item (id int PRIMARY KEY, title text); INSERT INTO item VALUES (1, 'one')`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-earlier-'));
  longIndex = `items_${'x'.repeat(62 - db.name.length - 1 - 'items_'.length)}`;
  longSlot = slotNameFor(db.name, longIndex);
  expect(longSlot).toHaveLength(62);
  earlier = earlierRebuildSlotName(longSlot)!;
  expect(earlier).toBe(`${longSlot.slice(0, 61)}_r`);
  expect(rebuildSlotName(longSlot)).not.toBe(earlier);
});

afterAll(async () => {
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

const entry = (index: string) => ({ database: db.name, index, nodes: { table: 'item', columns: ['id', 'title'] } });

function writeSchema(name: string, indexes: string[]): string {
  const path = join(work, name);
  writeFileSync(path, JSON.stringify(indexes.map(entry)));
  return path;
}

async function slotExists(name: string): Promise<boolean> {
  return (await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows[0].n === 1;
}

/** The long entry's checkpoint, recording a rebuild under `recorded`, and that rebuild's own slot and checkpoint. */
async function rebuildStartedEarlier(recorded: string, options: { createSlot?: boolean } = {}): Promise<void> {
  if (options.createSlot !== false) await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [recorded]);
  const store = await FileCheckpointStore.open(work);
  try {
    const now = new Date().toISOString();
    await store.save(longSlot, { slot: longSlot, updatedAt: now, generation: `${longIndex}-00000000000a`, fingerprint: '00000000000a', rebuild: { generation: `${longIndex}-00000000000b`, fingerprint: '00000000000b', slot: recorded, startedAt: now } });
    await store.save(recorded, { slot: recorded, updatedAt: now });
  } finally {
    await store.close();
  }
}

async function recordOf(name: string): Promise<unknown> {
  const store = await FileCheckpointStore.open(work);
  try {
    return await store.load(name);
  } finally {
    await store.close();
  }
}

describe('rebuild slots named by an earlier version', () => {
  it('reset drops the one the checkpoint records, but not a recorded name of another form, nor one a current entry uses', async () => {
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
    // The entry whose slot is the earlier form of the long entry's rebuild slot (allowed since the digest).
    const neighbour = `${longIndex.slice(0, -1)}_r`;
    expect(slotNameFor(db.name, neighbour)).toBe(earlier);
    const alone = writeSchema('alone.json', [longIndex]);
    expect((await runCli(['-c', alone, 'bootstrap'], env)).code).toBe(0);

    await rebuildStartedEarlier(earlier);
    const reset = await runCli(['-c', alone, 'reset', longIndex], env);
    expect(reset.code, reset.stderr).toBe(0);
    expect(await slotExists(earlier)).toBe(false);
    expect(await recordOf(earlier)).toBeUndefined();

    // A hand-edited record naming some other slot: not Sluice's to drop.
    const foreign = `${db.name}_other_tool`;
    await rebuildStartedEarlier(foreign);
    expect((await runCli(['-c', alone, 'reset', longIndex], env)).code).toBe(0);
    expect(await slotExists(foreign)).toBe(true);
    await db.query(`SELECT pg_drop_replication_slot($1)`, [foreign]);

    // The earlier form is now the neighbour's own slot: reset of the long entry leaves it.
    const both = writeSchema('both.json', [longIndex, neighbour]);
    expect((await runCli(['-c', both, 'bootstrap'], env)).code).toBe(0);
    expect(await slotExists(earlier)).toBe(true);
    await rebuildStartedEarlier(earlier, { createSlot: false });
    expect((await runCli(['-c', both, 'reset', longIndex], env)).code).toBe(0);
    expect(await slotExists(earlier)).toBe(true);
    expect((await runCli(['-c', both, 'teardown'], env)).code).toBe(0);
  });

  it('teardown drops it, and --print-sql names it', async () => {
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work });
    const alone = writeSchema('alone.json', [longIndex]);
    expect((await runCli(['-c', alone, 'bootstrap'], env)).code).toBe(0);
    await rebuildStartedEarlier(earlier);
    const printed = await runCli(['-c', alone, 'teardown', '--print-sql'], env);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`'${earlier}'`);
    expect(await slotExists(earlier)).toBe(true);
    const teardown = await runCli(['-c', alone, 'teardown'], env);
    expect(teardown.code, teardown.stderr).toBe(0);
    expect(await slotExists(earlier)).toBe(false);
    expect(await slotExists(longSlot)).toBe(false);
    expect(await recordOf(earlier)).toBeUndefined();
  });

  it('an entry removed from schema.json takes it along', async () => {
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [longSlot]);
    await rebuildStartedEarlier(earlier);
    const pool = testPool(db.url, 2);
    const store = await FileCheckpointStore.open(work);
    try {
      const dropped = await dropRemovedEntries(pool, store, new Set([slotNameFor(db.name, 'items_now')]), quiet, 'test-holder');
      expect(dropped).toEqual([longSlot]);
      expect(await slotExists(longSlot)).toBe(false);
      expect(await slotExists(earlier)).toBe(false);
      expect(await store.load(earlier)).toBeUndefined();
    } finally {
      await store.close();
      await pool.end();
    }
  });
});
