// The stream phase overlaps batches (the next one is read and built while the previous one's bulk requests are in
// flight), yet guarantee 1 of docs/design.md §2 holds: an LSN reaches the checkpoint and the slot's
// confirmed_flush_lsn only once every write of every batch up to it is in the engine. A bulk request is held by
// the test engine (a `delay` fault) while a later transaction goes through; and SIGTERM while it is held still
// finishes it, stores the checkpoint and acknowledges.
//
// Needs the project's test engine (fault injection).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/checkpoint/checkpoint-store.js';
import { parseLsn } from '../../src/source/postgres/lsn.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { allDocuments, engineCall, engineForTest, REAL_ENGINE_URL, type EngineUnderTest } from '../helpers/engine.js';
import { startSluice, waitFor, type RunningSluice, stopShowingOutput } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

const index = 'pipeline_item';
/** How long the engine holds the one bulk request under test: far longer than a batch takes to go through. */
const HOLD_MS = 8000;

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let env: Record<string, string>;
let schemaPath: string;
let slot: string;
let sluice: RunningSluice | undefined;

function readCheckpoint(): Checkpoint | undefined {
  try {
    return JSON.parse(readFileSync(join(work, `.${slot}.sluice.json`), 'utf8')) as Checkpoint;
  } catch {
    return undefined;
  }
}

/** The WAL insert position: past the commit record of every transaction committed so far (with synchronous_commit off, pg_current_wal_lsn() may not be yet). */
async function currentLsn(): Promise<bigint> {
  return parseLsn((await db.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn);
}

async function confirmedLsn(): Promise<bigint> {
  const { rows } = await db.query<{ lsn: string | null }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [slot]);
  return parseLsn(rows[0]!.lsn!);
}

async function title(id: string): Promise<unknown> {
  return (await allDocuments(engine.url, index)).get(id)?.title;
}

function bulkRequests(): number {
  return engine.server!.requests.filter((r) => r.path.endsWith('/_bulk')).length;
}

/** Holds the next bulk request, runs `sql` and waits until its bulk request has reached the engine. */
async function heldChange(sql: string): Promise<bigint> {
  engine.server!.faults.inject({ kind: 'delay', ms: HOLD_MS, path: '_bulk$', times: 1 });
  const before = bulkRequests();
  // The WAL insert position just before the commit: the transaction's commit record comes after it, so a checkpoint
  // covering the transaction is past it. (Read after the commit instead, it would include what other test files
  // write meanwhile to the same cluster's WAL, which this index never sees acknowledged.)
  const results = (await db.query(`BEGIN; ${sql}; SELECT pg_current_wal_insert_lsn()::text AS lsn; COMMIT`)) as unknown as Array<{ rows: Array<{ lsn?: string }> }>;
  const beforeCommit = parseLsn(results.find((r) => r.rows[0]?.lsn !== undefined)!.rows[0]!.lsn!);
  await waitFor('the held bulk request to reach the engine', async () => (bulkRequests() > before ? true : undefined));
  return beforeCommit;
}

beforeAll(async () => {
  if (REAL_ENGINE_URL) return;
  db = await createTestDatabase('pipeline');
  await db.query(`CREATE TABLE item (id int PRIMARY KEY, title text NOT NULL);
    INSERT INTO item SELECT i, 'initial' FROM generate_series(1, 10) i;`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-pipeline-'));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify([{ database: db.name, index, nodes: { table: 'item', columns: ['id', 'title'] } }]));
  slot = slotNameFor(db.name, index);
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.05', PGSYNC_LOG_LEVEL: 'info' });
  const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  sluice = startSluice(['-c', schemaPath], env);
  await waitFor('the snapshot', async () => ((await allDocuments(engine.url, index).catch(() => new Map())).size === 10 ? true : undefined));
  await waitFor('the stream to start', async () => (sluice!.output().includes('snapshot finished; streaming') ? true : undefined));
});

afterAll(async () => {
  await stopShowingOutput(sluice);
  await engine?.close();
  await db?.drop();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe.skipIf(REAL_ENGINE_URL)('pipelined stream batches (guarantee 1)', () => {
  it('a later batch goes through while an earlier bulk is held, but nothing is acknowledged past the held batch', async () => {
    const heldCommitAfter = await heldChange(`UPDATE item SET title = 'held' WHERE id = 1`);
    await db.query(`UPDATE item SET title = 'later' WHERE id = 2`);
    const laterEnd = await currentLsn();

    // The later batch is built and written while the held one waits in the engine. Each look reads what was
    // acknowledged first, then whether the held write has landed: while it has not, nothing acknowledged may
    // cover its transaction.
    const violations: string[] = [];
    let heldDoneFirst = false;
    await waitFor(
      'the later batch in the engine',
      async () => {
        const confirmed = await confirmedLsn();
        const stored = readCheckpoint()?.lsn;
        const docs = await allDocuments(engine.url, index);
        if (docs.get('1')?.title === 'held') {
          heldDoneFirst = true;
          return true;
        }
        if (confirmed >= heldCommitAfter) violations.push(`slot confirmed ${confirmed} >= ${heldCommitAfter} while its bulk request was held`);
        if (stored !== undefined && parseLsn(stored) >= heldCommitAfter) violations.push(`checkpoint ${stored} >= ${heldCommitAfter} while its bulk request was held`);
        return docs.get('2')?.title === 'later' ? true : undefined;
      },
      HOLD_MS * 2,
    );
    expect(violations).toEqual([]);
    expect(heldDoneFirst, 'the later batch waited for the held bulk request: batches are not overlapped').toBe(false);

    // Once the held request is done, both transactions are acknowledged and stored.
    await waitFor('both documents', async () => ((await title('1')) === 'held' && (await title('2')) === 'later' ? true : undefined));
    await waitFor('the acknowledgement of both transactions', async () => ((await confirmedLsn()) >= laterEnd ? true : undefined));
    expect(parseLsn(readCheckpoint()!.lsn!)).toBeGreaterThanOrEqual(laterEnd);
  });

  it('SIGTERM while a bulk request is held finishes it, stores the checkpoint, acknowledges and exits 0', async () => {
    const heldCommitAfter = await heldChange(`UPDATE item SET title = 'held at stop' WHERE id = 3`);
    const code = await sluice!.stop();
    expect(code).toBe(0);
    expect((await allDocuments(engine.url, index)).get('3')?.title).toBe('held at stop');
    const checkpoint = readCheckpoint()!;
    expect(parseLsn(checkpoint.lsn!)).toBeGreaterThan(heldCommitAfter);
    expect(await confirmedLsn()).toBe(parseLsn(checkpoint.lsn!));
    sluice = undefined;
  });

  it('SIGTERM in the middle of a TRUNCATE\'s deletes stops after the requests in flight; the restart finishes them', async () => {
    const count = async () => {
      await engineCall(engine.url, 'POST', `/${index}/_refresh`);
      return (await engineCall(engine.url, 'POST', `/${index}/_count`)).json.count as number;
    };
    await sluice?.stop();
    await db.query(`INSERT INTO item SELECT i, 'many' FROM generate_series(1001, 31000) i`);
    sluice = startSluice(['-c', schemaPath], env);
    await waitFor('30,010 documents', async () => ((await count()) === 30_010 ? true : undefined), 60_000);
    // Every delete request of the TRUNCATE takes 3 s: 30 of them, two at a time, would take 45 s.
    engine.server!.faults.inject({ kind: 'delay', ms: 3000, path: '_bulk$', times: 100 });
    const before = bulkRequests();
    await db.query('TRUNCATE item');
    await waitFor('the first delete request to reach the engine', async () => (bulkRequests() > before ? true : undefined));
    expect(await sluice.stop(30_000)).toBe(0);
    expect(await count()).toBeGreaterThan(0);
    engine.server!.faults.clear();
    sluice = startSluice(['-c', schemaPath], env);
    await waitFor('the TRUNCATE applied again after the restart', async () => ((await count()) === 0 ? true : undefined), 60_000);
  }, 150_000);

  it('credentials refused mid-run (revoked, rotated) stop the process with exit 1 instead of a wait that cannot end', async () => {
    engine.server!.faults.inject({ kind: 'status', status: 401, path: '_bulk$', times: 1000 });
    try {
      const exited = new Promise<number | null>((resolve) => sluice!.child.once('exit', (code) => resolve(code)));
      await db.query(`INSERT INTO item VALUES (5000, 'after the revocation')`);
      expect(await exited).toBe(1);
      expect(sluice!.output()).toContain('the credentials were refused (HTTP 401');
      sluice = undefined;
    } finally {
      engine.server!.faults.clear();
    }
  }, 60_000);
});
