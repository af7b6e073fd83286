import type { Checkpoint, CheckpointStore, LeaseFence, RebuildProgress, RetiredGeneration } from '../checkpoint/checkpoint-store.js';
import { DelegatingCheckpointStore } from '../checkpoint/delegating-checkpoint-store.js';
import { formatLsn, parseLsn } from '../source/postgres/lsn.js';

/** What the lifecycle keeps in an entry's checkpoint, beside the sync's own progress. */
export interface GenerationFields {
  generation?: string;
  fingerprint?: string;
  rebuild?: RebuildProgress;
  retired: RetiredGeneration[];
}

/**
 * The checkpoint store as the entry's sync sees it: every save of the entry's checkpoint carries the
 * lifecycle's current fields, so the sync (which rewrites its checkpoint as batches complete) and the lifecycle
 * (which changes generations) never overwrite each other's part. The newest save always holds both newest parts.
 */
export class EntryCheckpointStore extends DelegatingCheckpointStore {
  readonly fields: GenerationFields = { retired: [] };
  /** The sync's part of the newest checkpoint loaded or saved. */
  private last: Checkpoint | undefined;

  constructor(
    inner: CheckpointStore,
    private readonly name: string,
  ) {
    super(inner);
  }

  latest(): Checkpoint | undefined {
    return this.last === undefined ? undefined : { ...this.last, ...this.fields };
  }

  override async load(name: string): Promise<Checkpoint | undefined> {
    const checkpoint = await this.inner.load(name);
    if (name === this.name) this.last = checkpoint;
    return checkpoint;
  }

  override save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void> {
    if (name !== this.name) return this.inner.save(name, checkpoint, fence);
    this.last = checkpoint;
    return this.inner.save(name, { ...checkpoint, ...this.fields }, fence);
  }

  /**
   * Raises the version ceiling kept with the sync's part to at least `lsn`: after a hand-over the new generation holds
   * versions its rebuild wrote, past the live checkpoint's own ceiling. Stored with the next save.
   */
  raiseCeiling(lsn: bigint): void {
    if (this.last === undefined) return;
    if (this.last.ceiling !== undefined && parseLsn(this.last.ceiling) >= lsn) return;
    this.last = { ...this.last, ceiling: formatLsn(lsn) };
  }

  /** Stores changed lifecycle fields now (once a checkpoint exists; before that, the sync's first save carries them). */
  async saveFields(): Promise<void> {
    if (this.last !== undefined) await this.save(this.name, { ...this.last, updatedAt: new Date().toISOString() });
  }

  /**
   * Forgets the sync's progress. What the lifecycle must still clean up (a rebuild's index, retired generations)
   * stays in a record without progress, which makes the next start begin the entry over and clean them up.
   */
  override async remove(name: string, fence?: LeaseFence): Promise<void> {
    if (name !== this.name) return this.inner.remove(name, fence);
    this.last = undefined;
    const { rebuild, retired, generation, fingerprint } = this.fields;
    if (rebuild === undefined && retired.length === 0) return this.inner.remove(name, fence);
    // The generation being started, too: one named with a suffix (beside a retired one) could not be named again, and
    // a restart before its first checkpoint would start yet another, leaving this one behind in the engine.
    const started = generation !== undefined ? { generation, ...(fingerprint !== undefined ? { fingerprint } : {}) } : {};
    await this.inner.save(name, { slot: name, updatedAt: new Date().toISOString(), ...started, ...(rebuild ? { rebuild } : {}), retired }, fence);
  }
}
