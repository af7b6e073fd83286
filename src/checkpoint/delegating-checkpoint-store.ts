import type { Checkpoint, CheckpointStore, LeaseFence, LeaseState } from './checkpoint-store.js';

/**
 * A view of a shared checkpoint store: every call goes to `inner`, and a subclass changes the calls it cares about.
 * Closing the view leaves the shared store open; its owner closes it.
 */
export class DelegatingCheckpointStore implements CheckpointStore {
  constructor(protected readonly inner: CheckpointStore) {}

  load(name: string): Promise<Checkpoint | undefined> {
    return this.inner.load(name);
  }

  save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void> {
    return this.inner.save(name, checkpoint, fence);
  }

  remove(name: string, fence?: LeaseFence): Promise<void> {
    return this.inner.remove(name, fence);
  }

  claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    return this.inner.claimLease(name, holder, ttlMs);
  }

  releaseLease(name: string, holder: string): Promise<void> {
    return this.inner.releaseLease(name, holder);
  }

  leaseOf(name: string): Promise<LeaseState | undefined> {
    return this.inner.leaseOf(name);
  }

  warnings(): string[] {
    return this.inner.warnings();
  }

  async close(): Promise<void> {}
}
