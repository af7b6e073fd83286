// The lifecycle's set-up goes no further once its signal aborts (SIGTERM, or the ownership lease lost): the steps
// another owner could not undo (dropping a slot, swapping the alias, deleting an index) are checked just before.
import { describe, expect, it } from 'vitest';
import type { Checkpoint, CheckpointStore } from '../../../src/checkpoint/checkpoint-store.js';
import { entryFingerprint, reindexRequestName } from '../../../src/lifecycle/generation-names.js';
import { runIndexLifecycle, type LifecycleDeps, type LifecycleOptions } from '../../../src/lifecycle/index-lifecycle.js';
import { newIndexStatus } from '../../../src/pipeline/index-status.js';
import type { EntryPlan, PlanNode } from '../../../src/schema/sync-plan.js';
import type { NameState } from '../../../src/sink/elasticsearch/aliases.js';

const root: PlanNode = {
  location: 'book',
  schema: 'public',
  table: 'book',
  label: 'book',
  outputKey: 'book',
  primaryKey: ['id'],
  primaryKeyTypes: { id: 'integer' },
  columns: [
    {
      spec: { raw: 'id', column: 'id', path: [], key: 'id', location: 'columns.id' },
      info: { name: 'id', type: 'integer', baseTypeName: 'int4', isArray: false, category: 'N' },
    },
  ],
  children: [],
  relationship: undefined,
  transform: { rename: new Map(), replace: new Map(), concat: [], move: [], mapping: new Map() },
  singleValued: true,
};
const plan = { database: 'db', index: 'book', root } as unknown as EntryPlan;
const fingerprint = entryFingerprint(plan);

function memoryStore(records: Map<string, Checkpoint>): CheckpointStore {
  return {
    load: async (name) => records.get(name),
    save: async (name, checkpoint) => void records.set(name, checkpoint),
    remove: async (name) => void records.delete(name),
    claimLease: async (_name, holder, ttlMs) => ({ owner: holder, remainingMs: ttlMs }),
    releaseLease: async () => undefined,
    leaseOf: async () => undefined,
    warnings: () => [],
    close: async () => undefined,
  };
}

/** The entry `db_book` of `plan`, its records in `records`, logging nothing. */
const entryDeps = (records: Map<string, Checkpoint>) => ({
  plan,
  name: 'db_book',
  publication: 'sluice',
  store: memoryStore(records),
  status: newIndexStatus('book'),
  logger: { info: () => undefined, warn: () => undefined, error: () => undefined },
});

const options = (signal: AbortSignal): LifecycleOptions => ({
  batchSize: 100,
  flushIntervalMs: 50,
  chunkSize: 100,
  concurrency: 1,
  heartbeatIntervalMs: 1000,
  retryInitialMs: 10,
  retryMaxMs: 20,
  signal,
  graceMs: 60_000,
  catchUpLagSeconds: 5,
});

describe('runIndexLifecycle', () => {
  it('stops before deleting a retired generation or dropping a slot once its signal aborts during the set-up', async () => {
    const live = `book-${fingerprint}`;
    const records = new Map<string, Checkpoint>([
      [
        'db_book',
        {
          slot: 'db_book',
          lsn: '0/20',
          snapshot: { consistentLsn: '0/10', complete: true },
          generation: live,
          fingerprint,
          // Due for deletion, and a rebuild the schema no longer wants: both would be cleaned up at once.
          retired: [{ index: 'book-0000deadbeef', dropAfter: new Date(Date.now() - 1000).toISOString() }],
          rebuild: { generation: 'book-0000rebuild', fingerprint: 'older', slot: 'db_book_rebuild', startedAt: 't' },
          updatedAt: 't',
        },
      ],
    ]);
    const lost = new AbortController();
    const destructive: string[] = [];
    const deps = {
      ...entryDeps(records),
      source: {
        slotState: async () => ({ exists: true, invalidated: false }),
        origin: async () => ({ system: '1', timeline: 1 }),
        dropSlot: async (slot: string) => void destructive.push(`drop slot ${slot}`),
      },
      target: {
        // The lease is lost while the engine answers (a slow call): nothing after it may act as the owner.
        resolveName: async (): Promise<NameState> => {
          lost.abort('not renewed in time');
          return { kind: 'alias', indices: [live] };
        },
        deleteIndex: async (index: string) => (destructive.push(`delete ${index}`), true),
        swapAlias: async () => void destructive.push('swap alias'),
        ensureIndex: async () => false,
      },
    } as unknown as LifecycleDeps;
    await runIndexLifecycle(deps, options(lost.signal));
    expect(destructive).toEqual([]);
    // The record is as it was: the next owner finds the same work to do.
    expect(records.get('db_book')?.retired).toHaveLength(1);
    expect(records.get('db_book')?.rebuild?.generation).toBe('book-0000rebuild');
  });

  it('keeps a generation left for a diverged history on the retired list past its grace while the alias still serves it', async () => {
    // The diverged generation is the one the fingerprint names: the new one gets a suffix.
    const diverged = `book-${fingerprint}`;
    const records = new Map<string, Checkpoint>([
      ['db_book', { slot: 'db_book', lsn: '0/20', snapshot: { consistentLsn: '0/10', complete: true }, generation: diverged, fingerprint, origin: { system: '1', timeline: 1 }, updatedAt: 't' }],
    ]);
    let stop = new AbortController();
    const deleted: string[] = [];
    const ensured = new Set<string>();
    const deps = {
      ...entryDeps(records),
      source: {
        slotState: async () => ({ exists: false, invalidated: false }),
        // Another cluster now: the live generation holds changes the database does not have.
        origin: async () => ({ system: '2', timeline: 1 }),
        dropSlot: async () => undefined,
        createSlot: async () => {
          stop.abort('stopped while the slot is created');
          throw new Error('stopped');
        },
      },
      target: {
        resolveName: async (): Promise<NameState> => ({ kind: 'alias', indices: [diverged] }),
        deleteIndex: async (index: string) => (deleted.push(index), true),
        swapAlias: async () => undefined,
        ensureIndex: async (p: EntryPlan) => (ensured.add(p.index), true),
        writer: () => ({ add: async () => undefined, flush: async () => undefined, close: async () => undefined }),
      },
    } as unknown as LifecycleDeps;
    // No grace: the diverged generation is due at once, but searches still read it until the new one has caught up.
    await runIndexLifecycle(deps, { ...options(stop.signal), graceMs: 0 }).catch(() => undefined);
    expect(deleted).toEqual([]);
    expect(records.get('db_book')?.retired?.map((r) => r.index)).toEqual([diverged]);
    // Due again only a while later: not looked at (and the checkpoint written) at every supervision step.
    expect(Date.parse(records.get('db_book')!.retired![0]!.dropAfter)).toBeGreaterThan(Date.now() + 30_000);
    const created = [...ensured];
    expect(created).toHaveLength(1);
    expect(created[0]).not.toBe(diverged);

    // Started again before the new generation's first checkpoint (the slot creation waited, then a restart): it goes
    // on with the same new generation, not a third one that would leave the second behind in the engine.
    stop = new AbortController();
    await runIndexLifecycle(deps, { ...options(stop.signal), graceMs: 0 }).catch(() => undefined);
    expect(deleted).toEqual([]);
    expect([...ensured]).toEqual(created);
  });

  it('goes on with a requested rebuild when the request record is gone but its removal failed (it had landed)', async () => {
    const live = `book-${fingerprint}`;
    const records = new Map<string, Checkpoint>([
      ['db_book', { slot: 'db_book', lsn: '0/20', snapshot: { consistentLsn: '0/10', complete: true }, generation: live, fingerprint, origin: { system: '1', timeline: 1 }, updatedAt: 't' }],
      [reindexRequestName('db_book'), { slot: 'db_book', updatedAt: 't' }],
    ]);
    const warnings: string[] = [];
    const dropped: string[] = [];
    const store = memoryStore(records);
    let stop = new AbortController();
    const deps = {
      ...entryDeps(records),
      logger: { info: () => undefined, warn: (_: unknown, msg: string) => void warnings.push(msg), error: () => undefined },
      store: {
        ...store,
        // The request's removal lands and still fails (e.g. REDIS_WAIT_REPLICAS short of replicas).
        remove: async (name: string) => {
          await store.remove(name);
          if (name === reindexRequestName('db_book')) throw Object.assign(new Error('short of replicas'), { code: 'CKP_UNAVAILABLE' });
        },
        // The next pass is stopped at its first save, right after it has decided about the rebuild.
        save: async (name: string, checkpoint: Checkpoint) => {
          await store.save(name, checkpoint);
          if (rounds > 1) stop.abort('stop here');
        },
      },
      source: {
        slotState: async () => ({ exists: true, invalidated: false }),
        origin: async () => ({ system: '1', timeline: 1 }),
        dropSlot: async (slot: string) => void dropped.push(slot),
      },
      target: {
        resolveName: async (): Promise<NameState> => ({ kind: 'alias', indices: [live] }),
        deleteIndex: async () => true,
        swapAlias: async () => undefined,
        ensureIndex: async () => false,
      },
    } as unknown as LifecycleDeps;
    let rounds = 1;
    await expect(runIndexLifecycle(deps, options(stop.signal))).rejects.toThrow('short of replicas');
    const planned = records.get('db_book')!.rebuild!;
    expect(planned).toMatchObject({ requested: true, fingerprint });
    expect(records.has(reindexRequestName('db_book'))).toBe(false);

    rounds = 2;
    dropped.length = 0; // the first pass dropped a leftover rebuild slot before planning (none was there)
    stop = new AbortController();
    await runIndexLifecycle(deps, options(stop.signal)).catch(() => undefined);
    expect(warnings.filter((w) => w.startsWith('abandoning'))).toEqual([]);
    expect(dropped).toEqual([]);
    expect(records.get('db_book')!.rebuild).toEqual(planned);
  });
});
