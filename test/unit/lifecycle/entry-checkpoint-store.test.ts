import { describe, expect, it } from 'vitest';
import type { Checkpoint, CheckpointStore } from '../../../src/checkpoint/checkpoint-store.js';
import { EntryCheckpointStore } from '../../../src/lifecycle/entry-checkpoint-store.js';

/** The store port in memory: what was saved last under each name. */
function memoryStore(): CheckpointStore & { records: Map<string, Checkpoint> } {
  const records = new Map<string, Checkpoint>();
  const leases = new Map<string, string>();
  return {
    records,
    claimLease: async (name, holder, ttlMs) => {
      const owner = leases.get(name) ?? holder;
      leases.set(name, owner);
      return { owner, remainingMs: ttlMs };
    },
    releaseLease: async (name, holder) => void (leases.get(name) === holder && leases.delete(name)),
    leaseOf: async (name) => (leases.has(name) ? { owner: leases.get(name)!, remainingMs: 1 } : undefined),
    load: async (name) => records.get(name),
    save: async (name, checkpoint) => void records.set(name, checkpoint),
    remove: async (name) => void records.delete(name),
    warnings: () => [],
    close: async () => undefined,
  };
}

const progress: Checkpoint = { slot: 'db_book', lsn: '0/10', snapshot: { consistentLsn: '0/8', complete: true }, updatedAt: 't1' };

describe('EntryCheckpointStore', () => {
  it('adds the lifecycle fields to every save of the entry, and leaves other names alone', async () => {
    const inner = memoryStore();
    const store = new EntryCheckpointStore(inner, 'db_book');
    store.fields.generation = 'book-aaa';
    store.fields.fingerprint = 'aaa';
    await store.save('db_book', progress);
    expect(inner.records.get('db_book')).toEqual({ ...progress, generation: 'book-aaa', fingerprint: 'aaa', retired: [] });
    store.fields.retired = [{ index: 'book-old', dropAfter: 't9' }];
    await store.saveFields();
    expect(inner.records.get('db_book')).toMatchObject({ lsn: '0/10', generation: 'book-aaa', retired: [{ index: 'book-old', dropAfter: 't9' }] });
    await store.save('db_book_r', { slot: 'db_book_r', updatedAt: 't2' });
    expect(inner.records.get('db_book_r')).toEqual({ slot: 'db_book_r', updatedAt: 't2' });
    expect(store.latest()).toMatchObject({ lsn: '0/10', generation: 'book-aaa' });
  });

  it('forgets progress on remove but keeps a rebuild and retired generations on record for clean-up', async () => {
    const inner = memoryStore();
    const store = new EntryCheckpointStore(inner, 'db_book');
    store.fields.generation = 'book-aaa';
    store.fields.rebuild = { generation: 'book-bbb', fingerprint: 'bbb', slot: 'db_book_r', startedAt: 't0' };
    store.fields.retired = [{ index: 'book-old', dropAfter: 't9' }];
    await store.save('db_book', progress);
    await store.remove('db_book');
    const kept = inner.records.get('db_book')!;
    expect(kept.snapshot).toBeUndefined();
    expect(kept.lsn).toBeUndefined();
    expect(kept).toMatchObject({ slot: 'db_book', rebuild: { generation: 'book-bbb' }, retired: [{ index: 'book-old' }] });
    expect(store.latest()).toBeUndefined();
  });

  it('removes the record entirely when the lifecycle has nothing to clean up', async () => {
    const inner = memoryStore();
    const store = new EntryCheckpointStore(inner, 'db_book');
    await store.save('db_book', progress);
    await store.remove('db_book');
    expect(inner.records.has('db_book')).toBe(false);
  });
});
