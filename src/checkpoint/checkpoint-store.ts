/**
 * The checkpoint-store port: what Sluice remembers per index between runs. The replication slot's own
 * confirmed LSN stays the source of truth for the stream; the checkpoint says which phase the index is in.
 */
import type { DatabaseOrigin } from '../source/change-source.js';

export interface SnapshotProgress {
  /** Exported snapshot the chunks read (only valid while the slot-creating connection is open). */
  snapshotName?: string;
  /** LSN at which the slot became consistent: the stream starts here and snapshot documents use it as version. */
  consistentLsn: string;
  /** Last root key whose chunk (and every chunk before it) is durable in the engine; absent = none yet. */
  doneUpTo?: string[];
  /**
   * `doneUpTo` for a snapshot scanning the key in another column order than alphabetical (`keyOrder`): kept apart, so
   * that versions which scanned alphabetically, and do not know this field, start such a snapshot over.
   */
  doneInKeyOrder?: string[];
  /**
   * The key column order the snapshot scans in ("every chunk before it" depends on it). Absent in checkpoints of
   * versions that scanned in alphabetical column order.
   */
  keyOrder?: string[];
  /** True once every chunk is done. */
  complete: boolean;
}

export interface Checkpoint {
  /** Replication slot of the index. */
  slot: string;
  /** Last LSN acknowledged after the engine and this store were durable, as text (e.g. "0/16B3748"). */
  lsn?: string;
  snapshot?: SnapshotProgress;
  /** Fingerprint of the schema entry that built the live generation (for change detection). */
  fingerprint?: string;
  /** The physical index the slot's changes go to (the live generation behind the alias). */
  generation?: string;
  /** A new generation being built beside the live one, through its own slot. */
  rebuild?: RebuildProgress;
  /** Generations the alias left, deleted once their grace period is over. */
  retired?: RetiredGeneration[];
  /** The PostgreSQL cluster and timeline the positions above belong to (absent in checkpoints of older versions). */
  origin?: DatabaseOrigin;
  /**
   * No document written from this slot carries a higher version (LSN): recorded before any write above it, since
   * writes run ahead of the saved `lsn` (the batches since the last save, a transaction a batch boundary cut).
   */
  ceiling?: string;
  /**
   * Why the generation this checkpoint writes to turned out to hold changes from another database history (the
   * engine refused a snapshot's writes as older than documents already there): the lifecycle leaves it for a new one.
   */
  diverged?: string;
  updatedAt: string;
}

export interface RebuildProgress {
  generation: string;
  fingerprint: string;
  /** Its replication slot and checkpoint name. */
  slot: string;
  startedAt: string;
  /**
   * Built because `sluice reindex` asked, not for a changed schema entry: still wanted while the entry is unchanged,
   * once the request itself is gone (its removal can land and still fail, e.g. short of Redis replicas).
   */
  requested?: boolean;
}

export interface RetiredGeneration {
  index: string;
  /** ISO time after which the index is deleted. */
  dropAfter: string;
}

/** Who holds an index's ownership lease after a claim, and for how long yet. */
export interface LeaseState {
  /** The holder named in the store: the claimant when its claim succeeded (or was renewed). */
  owner: string;
  /** Milliseconds the owner's lease has left, by the store's clock. */
  remainingMs: number;
  /**
   * Set when the claim found something at the lease's place that no Sluice writes (a value of another type, a lease
   * without expiry, a row edited by hand) and took the lease over it: what was there, for the log.
   */
  replaced?: string;
}

/**
 * A write that the store makes only while `holder` owns the lease `lease`, checked by the store in the same step as
 * the write: a process that lost its lease (a write delayed in a queue, a reconnect resending it) cannot overwrite
 * what the new owner stores. Refused with `AppError('CKP_NOT_OWNER')`.
 */
export interface LeaseFence {
  lease: string;
  holder: string;
}

export interface CheckpointStore {
  /** The checkpoint of `name` (`<database>_<index>`, the slot name), or undefined when none: a fresh start. */
  load(name: string): Promise<Checkpoint | undefined>;
  /** Durably replaces the checkpoint of `name`; resolves only once it is stored. */
  save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void>;
  /** Forgets `name`: the next start re-syncs that index. */
  remove(name: string, fence?: LeaseFence): Promise<void>;
  /**
   * Claims the ownership lease of `name` for `holder` for `ttlMs`, or renews it when `holder` has it already. A lease
   * held by another holder is taken only once it has expired. One process owns an index at a time (design §9): the
   * others stand by and claim it again when the owner stops renewing. A record no Sluice writes is taken over (see
   * LeaseState.replaced), so the record's form must never change: a process of another version would take a live
   * lease it cannot read.
   */
  claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState>;
  /** Ends `holder`'s lease of `name` at once, so a standby takes over without waiting; nothing when another holds it. */
  releaseLease(name: string, holder: string): Promise<void>;
  /** Who holds the lease of `name` now, without claiming it (for `sluice status`); undefined when free or expired. */
  leaseOf(name: string): Promise<LeaseState | undefined>;
  /** Warnings found at open (e.g. Redis maxmemory-policy that evicts keys). */
  warnings(): string[];
  close(): Promise<void>;
}
