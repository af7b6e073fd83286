import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { Checkpoint, CheckpointStore, LeaseState } from '../../../src/checkpoint/checkpoint-store.js';
import { AppError } from '../../../src/errors/app-error.js';
import type { IndexSyncLogger } from '../../../src/pipeline/index-sync.js';
import { OwnedCheckpointStore, OwnershipLease, runWhileOwner } from '../../../src/lifecycle/ownership-lease.js';

/** Leases in memory with real expiry; `failing` makes every claim fail (the store is away). */
function leaseStore(): CheckpointStore & { failing: boolean; leases: Map<string, { holder: string; expiresAt: number }>; saved: Checkpoint[] } {
  const leases = new Map<string, { holder: string; expiresAt: number }>();
  const saved: Checkpoint[] = [];
  const store = {
    failing: false,
    leases,
    saved,
    claimLease: async (name: string, holder: string, ttlMs: number): Promise<LeaseState> => {
      if (store.failing) throw new AppError('CKP_UNAVAILABLE', 'store away');
      const now = Date.now();
      const current = leases.get(name);
      if (current === undefined || current.holder === holder || current.expiresAt <= now) {
        leases.set(name, { holder, expiresAt: now + ttlMs });
        return { owner: holder, remainingMs: ttlMs };
      }
      return { owner: current.holder, remainingMs: current.expiresAt - now };
    },
    releaseLease: async (name: string, holder: string) => {
      if (leases.get(name)?.holder === holder) leases.delete(name);
    },
    leaseOf: async (name: string): Promise<LeaseState | undefined> => {
      const current = leases.get(name);
      return current === undefined || current.expiresAt <= Date.now() ? undefined : { owner: current.holder, remainingMs: current.expiresAt - Date.now() };
    },
    load: async () => undefined,
    save: async (_name: string, checkpoint: Checkpoint) => void saved.push(checkpoint),
    remove: async () => undefined,
    warnings: () => [],
    close: async () => undefined,
  };
  return store;
}

const quiet: IndexSyncLogger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function logged(): { lines: string[]; logger: IndexSyncLogger } {
  const lines: string[] = [];
  const note = (_obj: object, msg?: string) => void lines.push(msg ?? '');
  return { lines, logger: { info: note, warn: note, error: note } };
}

/** Resolves when `signal` aborts. */
const aborted = (signal: AbortSignal) => new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));

describe('OwnershipLease', () => {
  it('is held from a successful claim until a fifth of its time to live before it expires in the store', async () => {
    let now = 1_000;
    const store = leaseStore();
    const lease = new OwnershipLease({ store, name: 'db_book', holder: 'a', ttlMs: 10_000, signal: new AbortController().signal, logger: quiet, index: 'book', now: () => now });
    expect(lease.held()).toBe(false);
    expect(await lease.claim()).toEqual({ owner: 'a', remainingMs: 10_000 });
    expect(lease.held()).toBe(true);
    now += 7_999;
    expect(lease.held()).toBe(true);
    now += 1;
    expect(lease.held()).toBe(false);
    const other = new OwnershipLease({ store, name: 'db_book', holder: 'b', ttlMs: 10_000, signal: new AbortController().signal, logger: quiet, index: 'book', now: () => now });
    expect((await other.claim()).owner).toBe('a');
    expect(other.held()).toBe(false);
  });
});

describe('OwnershipLease replacing a record no Sluice writes', () => {
  it('warns naming the lease and what the store replaced', async () => {
    const store = leaseStore();
    const claim = store.claimLease;
    store.claimLease = async (name, holder, ttlMs) => ({ ...(await claim(name, holder, ttlMs)), replaced: 'a value of type hash' });
    const warnings: Array<{ obj: object; msg?: string }> = [];
    const logger: IndexSyncLogger = { info: () => undefined, warn: (obj, msg) => void warnings.push({ obj, msg }), error: () => undefined };
    const lease = new OwnershipLease({ store, name: 'db_book', holder: 'a', ttlMs: 10_000, signal: new AbortController().signal, logger, index: 'book' });
    expect((await lease.claim()).owner).toBe('a');
    expect(lease.held()).toBe(true);
    expect(warnings).toEqual([{ obj: { index: 'book', lease: 'db_book', found: 'a value of type hash' }, msg: expect.stringContaining('replaced it') }]);
  });
});

describe('runWhileOwner', () => {
  it('runs the work in one process at a time; a standby takes over as soon as the owner stops and releases', async () => {
    const store = leaseStore();
    const stopA = new AbortController();
    const stopB = new AbortController();
    const owners: string[] = [];
    const standbyOf: string[] = [];
    const b = logged();
    const a = runWhileOwner({ store, name: 'db_book', holder: 'a', ttlMs: 60_000, signal: stopA.signal, logger: quiet, index: 'book' }, async (signal) => {
      owners.push('a');
      await aborted(signal);
    });
    await sleep(20);
    const started = Date.now();
    const bRun = runWhileOwner(
      { store, name: 'db_book', holder: 'b', ttlMs: 60_000, signal: stopB.signal, logger: b.logger, index: 'book', onStandby: (owner) => standbyOf.push(owner) },
      async (signal) => {
        owners.push('b');
        await aborted(signal);
      },
    );
    await sleep(100);
    expect(owners).toEqual(['a']);
    expect(standbyOf).toEqual(['a']);
    stopA.abort();
    await a;
    while (owners.length < 2) await sleep(20);
    // Released, not expired: far sooner than the 60 s time to live.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(owners).toEqual(['a', 'b']);
    expect(b.lines).toContain('took over the index: this process owns it now');
    stopB.abort();
    await bRun;
    expect(store.leases.size).toBe(0);
  });

  it('takes over the lease of an owner that stopped renewing once it expires', async () => {
    const store = leaseStore();
    store.leases.set('db_book', { holder: 'crashed', expiresAt: Date.now() + 300 });
    const stop = new AbortController();
    let ran = false;
    const run = runWhileOwner({ store, name: 'db_book', holder: 'b', ttlMs: 2_000, signal: stop.signal, logger: quiet, index: 'book' }, async (signal) => {
      ran = true;
      await aborted(signal);
    });
    await sleep(100);
    expect(ran).toBe(false);
    while (!ran) await sleep(20);
    expect(store.leases.get('db_book')?.holder).toBe('b');
    stop.abort();
    await run;
  });

  it('stops the work and refuses checkpoint writes when the lease cannot be renewed, then stands by until it can claim again', async () => {
    const store = leaseStore();
    const stop = new AbortController();
    const log = logged();
    const runs: AbortSignal[] = [];
    const stores: OwnedCheckpointStore[] = [];
    const lost: string[] = [];
    const run = runWhileOwner({ store, name: 'db_book', holder: 'a', ttlMs: 600, signal: stop.signal, logger: log.logger, index: 'book', onLost: (reason) => lost.push(reason) }, async (signal, lease) => {
      runs.push(signal);
      const owned = new OwnedCheckpointStore(store, lease, 'book');
      stores.push(owned);
      await owned.save('db_book', { slot: 'db_book', updatedAt: 'held' });
      await aborted(signal);
    });
    while (runs.length < 1) await sleep(10);
    store.failing = true;
    await aborted(runs[0]!);
    expect(stop.signal.aborted).toBe(false);
    // Told at once, so the status stops showing the phase of work that no longer runs.
    expect(lost).toEqual(['not renewed in time']);
    const refused = await stores[0]!.save('db_book', { slot: 'db_book', updatedAt: 'after loss' }).catch((e: unknown) => e);
    expect((refused as AppError).code).toBe('CKP_NOT_OWNER');
    expect(store.saved.map((c) => c.updatedAt)).toEqual(['held']);
    store.failing = false;
    while (runs.length < 2) await sleep(10);
    expect(log.lines).toContain('lost the ownership lease of the index: stopped writing to it; standing by');
    expect(runs[1]!.aborted).toBe(false);
    stop.abort();
    await run;
  });

  it('stops the work when another process holds the lease at a renewal, and stands by behind it', async () => {
    const store = leaseStore();
    const stop = new AbortController();
    const standbyOf: string[] = [];
    const runs: AbortSignal[] = [];
    const run = runWhileOwner(
      { store, name: 'db_book', holder: 'a', ttlMs: 900, signal: stop.signal, logger: quiet, index: 'book', onStandby: (owner) => standbyOf.push(owner) },
      async (signal) => {
        runs.push(signal);
        await aborted(signal);
      },
    );
    while (runs.length < 1) await sleep(10);
    // Someone else's lease (an operator's hand, a store restored from a backup): the owner gives way at its next renewal.
    store.leases.set('db_book', { holder: 'intruder', expiresAt: Date.now() + 60_000 });
    await aborted(runs[0]!);
    while (standbyOf.length < 1) await sleep(10);
    expect(standbyOf).toEqual(['intruder']);
    expect(runs).toHaveLength(1);
    stop.abort();
    await run;
  });

  it('stops the work at once when the store refuses a checkpoint write as not the owner\'s, long before the next renewal', async () => {
    const store = leaseStore();
    // The store's own check, as Redis's script or PostgreSQL's WHERE EXISTS make it: the lease key must name the holder.
    store.save = async (name, checkpoint, fence) => {
      if (fence !== undefined && store.leases.get(fence.lease)?.holder !== fence.holder) throw new AppError('CKP_NOT_OWNER', `save of checkpoint ${name} refused`);
      store.saved.push(checkpoint);
    };
    const stop = new AbortController();
    const runs: AbortSignal[] = [];
    let owned: OwnedCheckpointStore | undefined;
    const run = runWhileOwner({ store, name: 'db_book', holder: 'a', ttlMs: 600_000, signal: stop.signal, logger: quiet, index: 'book' }, async (signal, lease) => {
      runs.push(signal);
      owned ??= new OwnedCheckpointStore(store, lease, 'book');
      await aborted(signal);
    });
    while (runs.length < 1) await sleep(10);
    await owned!.save('db_book', { slot: 'db_book', updatedAt: 'now' });
    // The lease record was lost (a Redis restarted without persistence) and another process claimed it.
    store.leases.set('db_book', { holder: 'b', expiresAt: Date.now() + 600_000 });
    const refused = await owned!.save('db_book', { slot: 'db_book', updatedAt: 'later' }).catch((error: AppError) => error);
    expect((refused as AppError).code).toBe('CKP_NOT_OWNER');
    // Renewals come every 200 s with this time to live: only the refusal can have stopped the work, and at once.
    expect(runs[0]!.aborted).toBe(true);
    expect(String(runs[0]!.reason)).toMatch(/refused a write/);
    await expect(owned!.save('db_book', { slot: 'db_book', updatedAt: 'again' })).rejects.toMatchObject({ code: 'CKP_NOT_OWNER' });
    expect(store.saved.map((c) => c.updatedAt)).toEqual(['now']);
    stop.abort();
    await run;
  });

  it('throws what the work throws, after releasing the lease', async () => {
    const store = leaseStore();
    const failure = new AppError('SCH_INVALID', 'broken');
    await expect(
      runWhileOwner({ store, name: 'db_book', holder: 'a', ttlMs: 60_000, signal: new AbortController().signal, logger: quiet, index: 'book' }, async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(store.leases.size).toBe(0);
  });
});
