/**
 * One owner per index (design §9). Several `sluice run` processes may share the checkpoint store for availability:
 * each index is synced by the process holding its lease in the store, the others stand by and claim it when the
 * owner stops renewing (crash) or releases it (SIGTERM).
 *
 * The owner renews every third of the lease's time to live and treats the lease as lost a fifth of it before it
 * could expire in the store (counted from before the claim was sent): it stops the index's work and refuses
 * checkpoint writes from then on, so it has stopped before a standby can take the lease. Each write also carries the
 * lease as a fence that the store checks in the same step as the write, so a write delayed past the lease (queued
 * while the store was away, resent after a reconnect) is refused there too.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Checkpoint, CheckpointStore, LeaseFence, LeaseState } from '../checkpoint/checkpoint-store.js';
import { DelegatingCheckpointStore } from '../checkpoint/delegating-checkpoint-store.js';
import { AppError, toError } from '../errors/app-error.js';
import { isRetryable, type IndexSyncLogger } from '../pipeline/index-sync.js';
import { sleep } from '../util/backoff.js';

/** How this process names itself in leases: host, pid and a random part (in a container every process is pid 1). */
export function leaseHolderName(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
}

export interface OwnershipOptions {
  store: Pick<CheckpointStore, 'claimLease' | 'releaseLease'>;
  /** The lease's name: the entry's slot and checkpoint name. */
  name: string;
  /** This process (leaseHolderName). */
  holder: string;
  ttlMs: number;
  signal: AbortSignal;
  logger: IndexSyncLogger;
  /** The index, for log lines. */
  index: string;
  /** Called when another process is found owning the index (again with each new owner). */
  onStandby?(owner: string): void;
  /** Called when this process loses the lease (its work is being stopped), with the reason. */
  onLost?(reason: string): void;
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
}

/** The lease as its owner sees it: held until `validUntil`, by its own monotonic clock. */
export class OwnershipLease {
  private validUntil = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly options: OwnershipOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get ttlMs(): number {
    return this.options.ttlMs;
  }

  /** What the store checks, in the same step as a write, to refuse it once this lease has passed on. */
  get fence(): LeaseFence {
    return { lease: this.options.name, holder: this.options.holder };
  }

  /** True while this process may act as the owner. */
  held(): boolean {
    return this.now() < this.validUntil;
  }

  /** Milliseconds the owner may still act without a renewal; 0 once it may not. */
  remainingMs(): number {
    return Math.max(0, this.validUntil - this.now());
  }

  /** One claim (or renewal); the owner afterwards. */
  async claim(): Promise<LeaseState> {
    const { store, name, holder, ttlMs } = this.options;
    const sent = this.now();
    const state = await store.claimLease(name, holder, ttlMs);
    if (state.replaced !== undefined) {
      this.options.logger.warn(
        { index: this.options.index, lease: name, found: state.replaced },
        'the ownership lease record held something no Sluice writes (edited by hand?): replaced it with a lease of its own',
      );
    }
    if (state.owner === holder) this.validUntil = sent + Math.min(ttlMs, state.remainingMs) - ttlMs / 5;
    else this.validUntil = Number.NEGATIVE_INFINITY;
    return state;
  }

  /** Stops acting as the owner now (the lease is lost), whatever time the last renewal left. */
  revoke(): void {
    this.validUntil = Number.NEGATIVE_INFINITY;
  }

  /** While the lease is kept (keepLease): what ends the owner's work when the lease turns out lost. */
  private onLost: ((reason: string) => void) | undefined;

  watchLoss(onLost: ((reason: string) => void) | undefined): void {
    this.onLost = onLost;
  }

  /**
   * The store refused a write as not the owner's: another process holds the lease there (the lease record was lost
   * and claimed anew, a clock jumped). The owner's work stops now rather than at its next renewal: until then it
   * would take steps no fence guards (dropping slots, deleting indexes).
   */
  lose(reason: string): void {
    this.revoke();
    this.onLost?.(reason);
  }

  async release(): Promise<void> {
    this.revoke();
    await this.options.store.releaseLease(this.options.name, this.options.holder);
  }
}

/**
 * Runs `work` for as long as this process owns the index: waits as a standby until the lease is free, runs `work`
 * with a signal that also aborts when the lease is lost, and stands by again after a loss. Returns when `signal`
 * aborts (releasing the lease) or `work` returns; a failure of `work` releases the lease and is thrown.
 */
export async function runWhileOwner(options: OwnershipOptions, work: (signal: AbortSignal, lease: OwnershipLease) => Promise<void>): Promise<void> {
  const { signal, logger, index } = options;
  const lease = new OwnershipLease(options);
  while (!signal.aborted) {
    if (!(await waitForLease(lease, options))) return;
    const lost = new AbortController();
    const stopKeeping = new AbortController();
    const keeping = keepLease(lease, options, lost, stopKeeping.signal);
    let failure: unknown;
    try {
      await work(AbortSignal.any([signal, lost.signal]), lease);
    } catch (error) {
      failure = error;
    }
    stopKeeping.abort();
    await keeping;
    if (lost.signal.aborted && !signal.aborted) {
      logger.error({ index, reason: String(lost.signal.reason) }, 'lost the ownership lease of the index: stopped writing to it; standing by');
      continue;
    }
    await lease.release().catch((error: unknown) => logger.warn({ index, err: toError(error).message }, 'could not release the ownership lease; it expires by itself'));
    if (failure !== undefined) throw failure;
    return;
  }
}

/** Claims until the lease is this process's (true) or `signal` aborts (false). */
async function waitForLease(lease: OwnershipLease, options: OwnershipOptions): Promise<boolean> {
  const { signal, logger, index, holder } = options;
  const pollMs = Math.min(2_000, lease.ttlMs / 4);
  let standingBy: string | undefined;
  while (!signal.aborted) {
    let waitMs = pollMs;
    try {
      const state = await lease.claim();
      // A claim answered later than its lease's safe part (a slow store) is not acted on: claimed again next poll.
      if (state.owner === holder && lease.held()) {
        if (standingBy !== undefined) logger.info({ index, previousOwner: standingBy }, 'took over the index: this process owns it now');
        return true;
      }
      if (state.owner !== standingBy) {
        logger.info({ index, owner: state.owner, leaseRemainingMs: Math.round(state.remainingMs) }, 'standing by: another process owns this index');
        options.onStandby?.(state.owner);
        standingBy = state.owner;
      }
      // Claim again soon after it would expire, or at the next poll if it is released before. A lease the store
      // reports without time left (a key someone set without expiry) is polled like any other.
      if (state.remainingMs > 0) waitMs = Math.min(pollMs, state.remainingMs + 50);
    } catch (error) {
      if (!isRetryable(error)) throw error;
      logger.warn({ index, err: toError(error).message, retryInMs: pollMs }, 'could not claim the ownership lease; trying again');
    }
    await sleep(waitMs, signal).catch(() => undefined);
  }
  return false;
}

/** Renews the lease until `stop` aborts; aborts `lost` when another holds it or it could not be renewed in time. */
async function keepLease(lease: OwnershipLease, options: OwnershipOptions, lost: AbortController, stop: AbortSignal): Promise<void> {
  const { logger, index, holder } = options;
  let deadline: NodeJS.Timeout | undefined;
  const lose = (reason: string) => {
    // The deadline and a renewal's answer may both find the lease lost.
    if (lost.signal.aborted) return;
    lease.revoke();
    lost.abort(reason);
    options.onLost?.(reason);
  };
  const armDeadline = () => {
    clearTimeout(deadline);
    deadline = setTimeout(() => lose('not renewed in time'), lease.remainingMs());
  };
  armDeadline();
  lease.watchLoss(lose);
  try {
    while (!stop.aborted && !lost.signal.aborted) {
      await sleep(lease.ttlMs / 3, stop).catch(() => undefined);
      if (stop.aborted || lost.signal.aborted) return;
      try {
        const state = await lease.claim();
        if (state.owner !== holder) {
          lose(`taken by ${state.owner}`);
          return;
        }
        armDeadline();
      } catch (error) {
        logger.warn({ index, err: toError(error).message, leaseRemainingMs: Math.round(lease.remainingMs()) }, 'could not renew the ownership lease; trying again');
      }
    }
  } finally {
    clearTimeout(deadline);
    lease.watchLoss(undefined);
  }
}

/**
 * The checkpoint store as an owner's work sees it: writes are refused once the lease may have expired, so a process
 * that lost its index never overwrites what the new owner stores.
 */
export class OwnedCheckpointStore extends DelegatingCheckpointStore {
  constructor(
    inner: CheckpointStore,
    private readonly lease: OwnershipLease,
    private readonly index: string,
  ) {
    super(inner);
  }

  override async save(name: string, checkpoint: Checkpoint): Promise<void> {
    this.check();
    // Checked again by the store as it writes: this write may wait (a queue, a reconnect) past the lease.
    await this.refusedMeansLost(this.inner.save(name, checkpoint, this.lease.fence));
  }

  override async remove(name: string): Promise<void> {
    this.check();
    await this.refusedMeansLost(this.inner.remove(name, this.lease.fence));
  }

  private async refusedMeansLost(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (error) {
      if ((error as { code?: string }).code === 'CKP_NOT_OWNER') this.lease.lose(`the checkpoint store refused a write: ${(error as Error).message}`);
      throw error;
    }
  }

  private check(): void {
    if (!this.lease.held()) {
      throw new AppError('CKP_NOT_OWNER', `index ${this.index}: this process no longer holds its ownership lease, so it does not write its checkpoint`);
    }
  }
}
