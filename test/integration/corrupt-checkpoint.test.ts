// One index's checkpoint becomes unreadable (a hand edit, a field another Sluice version wrote differently). That
// index must wait, showing the error, while the others go on; a stop here would make, under a restart policy, a
// crash loop of every process sharing the store. `sluice reset` then clears it, and the next run syncs it again.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { allDocuments, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { logLines, startSluice, waitFor, type RunningSluice, stopShowingOutput } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let schemaPath: string;
let env: Record<string, string>;
let sluice: RunningSluice | undefined;

beforeAll(async () => {
  db = await createTestDatabase('corrupt_ckp');
  await db.query(`CREATE TABLE shelf (id int PRIMARY KEY, name text); INSERT INTO shelf SELECT g, 'shelf ' || g FROM generate_series(1, 20) g`);
  await db.query(`CREATE TABLE lamp (id int PRIMARY KEY, name text); INSERT INTO lamp SELECT g, 'lamp ' || g FROM generate_series(1, 20) g`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-corrupt-'));
  schemaPath = join(work, 'schema.json');
  writeFileSync(
    schemaPath,
    JSON.stringify(['shelf', 'lamp'].map((table) => ({ database: db.name, index: `${table}s`, nodes: { table, columns: ['id', 'name'] } }))),
  );
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info', SLUICE_RETRY_MAX_MS: '500' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
});

afterAll(async () => {
  await stopShowingOutput(sluice);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

const count = async (index: string): Promise<number> => (await allDocuments(engine.url, index).catch(() => new Map())).size;
const until = (index: string, n: number) => waitFor(`${n} documents in ${index}`, async () => ((await count(index)) === n ? true : undefined));

async function statusOf(running: RunningSluice, index: string): Promise<{ phase: string; lastError?: { code: string; message: string } } | undefined> {
  const url = logLines(running.output()).find((l) => typeof l.url === 'string' && l.msg?.startsWith('HTTP server'))?.url as string | undefined;
  if (url === undefined) return undefined;
  const body = (await (await fetch(`${url}/status`)).json()) as { indexes: Array<{ index: string; phase: string; lastError?: { code: string; message: string } }> };
  return body.indexes.find((s) => s.index === index);
}

describe('an unreadable checkpoint', () => {
  it('stops only its index, which shows the error while the others sync; reset clears it', async () => {
    sluice = startSluice(['-c', schemaPath], env);
    await until('shelfs', 20);
    await until('lamps', 20);
    expect(await sluice.stop()).toBe(0);

    // A field of the wrong type, as a hand edit or another version's format could leave it.
    const file = join(work, `.${slotNameFor(db.name, 'lamps')}.sluice.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/"updatedAt":"[^"]*"/, '"updatedAt":17'));

    const running = startSluice(['-c', schemaPath], env);
    sluice = running;
    await db.query(`INSERT INTO shelf VALUES (21, 'after the damage'); INSERT INTO lamp VALUES (21, 'not synced yet')`);
    await until('shelfs', 21);
    const lamps = await waitFor('the lamps index waiting on its checkpoint', async () => {
      const status = await statusOf(running, 'lamps');
      return status?.lastError?.code === 'CKP_CORRUPT' ? status : undefined;
    });
    expect(lamps.phase).not.toBe('streaming');
    expect(lamps.lastError!.message).toContain(file);
    // Still running, and still trying (not a stop after the first failure).
    await waitFor('two attempts at the unreadable checkpoint', async () =>
      logLines(running.output()).filter((l) => l.code === 'CKP_CORRUPT').length >= 2 ? true : undefined,
    );
    expect(running.child.exitCode).toBeNull();
    expect(await count('lamps')).toBe(20);

    expect(await running.stop()).toBe(0);
    sluice = undefined;
    // sluice status from the stores shows every index, the unreadable one as such.
    const status = await runCli(['-c', schemaPath, 'status'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toMatch(/^ {2}shelfs: streaming;/m);
    expect(status.stdout).toContain('  lamps: checkpoint unreadable (');
    const reset = await runCli(['-c', schemaPath, 'reset', 'lamps'], env);
    expect(reset.code, reset.stderr).toBe(0);
    expect(reset.stdout).toContain('removed an unreadable checkpoint');
    sluice = startSluice(['-c', schemaPath], env);
    await until('lamps', 21);
    await db.query(`INSERT INTO lamp VALUES (22, 'streamed again')`);
    await until('lamps', 22);
  });

  it('of an entry removed from schema.json does not stop the start: its slot is left in place, with a warning', async () => {
    expect(await sluice?.stop()).toBe(0);
    sluice = undefined;
    // What an entry "desks" of an earlier schema.json left: its slot, and a checkpoint now unreadable.
    const gone = slotNameFor(db.name, 'desks');
    await db.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [gone]);
    const file = join(work, `.${gone}.sluice.json`);
    writeFileSync(file, readFileSync(join(work, `.${slotNameFor(db.name, 'lamps')}.sluice.json`), 'utf8').replace(/"slot":"[^"]*"/, `"slot":"${gone}"`).replace(/"updatedAt":"[^"]*"/, '"updatedAt":17'));
    const running = startSluice(['-c', schemaPath], env);
    sluice = running;
    await db.query(`INSERT INTO shelf VALUES (22, 'despite the leftover')`);
    await until('shelfs', 22);
    const warned = logLines(running.output()).find((l) => l.slot === gone && String(l.msg).startsWith('could not check a replication slot'));
    expect(warned?.err).toContain(file);
    expect((await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [gone])).rows[0].n).toBe(1);
    await db.query(`SELECT pg_drop_replication_slot($1)`, [gone]);
  });
});
