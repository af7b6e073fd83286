/**
 * Index lifecycle without downtime (design §7). Each schema entry writes to a physical index, its generation,
 * behind an alias with the entry's name. When the entry's fingerprint changes (or `sluice reindex` asks), a new
 * generation is built beside the live one through its own replication slot: snapshot, then streaming, while
 * the entry's own slot keeps the live generation current. Once the new one has caught up, the live stream
 * stops, the new one applies everything the live one had, the checkpoint moves the entry's slot over to the new
 * generation, and the alias swaps atomically. The old generation is deleted after a grace period.
 *
 * Every step is re-derived at start from the checkpoint and the engine, so a crash anywhere resumes: a rebuild
 * resumes its snapshot through its own checkpoint, a swap not yet made is made, a leftover slot is dropped.
 */
import type { Checkpoint, RebuildProgress } from '../checkpoint/checkpoint-store.js';
import { toError } from '../errors/app-error.js';
import { knownLagSeconds, newIndexStatus, type IndexStatus } from '../pipeline/index-status.js';
import { checkHistory, checkpointPosition } from '../pipeline/database-history.js';
import { isRetryable, runIndexSync, type IndexSyncDeps, type IndexSyncLogger, type IndexSyncOptions, type IndexTarget } from '../pipeline/index-sync.js';
import type { AliasSwap, NameState } from '../sink/elasticsearch/aliases.js';
import { parseLsn } from '../source/postgres/lsn.js';
import { backoffDelayMs, sleep } from '../util/backoff.js';
import { EntryCheckpointStore } from './entry-checkpoint-store.js';
import { entryFingerprint, generationName, isAnyGenerationOf, isGenerationOf, rebuildSlotName, reindexRequestName } from './generation-names.js';

/** How long a retired generation found still served waits before it is looked at again. */
const SERVED_RETIRED_RECHECK_MS = 60_000;

/** The engine operations the lifecycle needs beyond writing documents. */
export interface GenerationTarget extends IndexTarget {
  resolveName(name: string): Promise<NameState>;
  swapAlias(swap: AliasSwap): Promise<void>;
  deleteIndex(name: string): Promise<boolean>;
}

export interface LifecycleDeps extends Omit<IndexSyncDeps, 'target' | 'status' | 'onIdleTick'> {
  target: GenerationTarget;
  status: IndexStatus;
  logger: IndexSyncLogger & { child?(bindings: object): IndexSyncLogger };
}

export interface LifecycleOptions extends IndexSyncOptions {
  /** How long a generation the alias left is kept, for searches and scrolls still reading it. */
  graceMs: number;
  /** A new generation takes over once its replication lag is at most this. */
  catchUpLagSeconds: number;
}

const SUPERVISE_INTERVAL_MS = 500;
/** A hand-over waits at most this many catch-up lags for the new generation to reach the stopped live one. */
const HANDOVER_WAIT_FACTOR = 6;

/** Keeps one schema entry's alias served and in sync until `signal` aborts; rebuilds generations as needed. */
export async function runIndexLifecycle(deps: LifecycleDeps, options: LifecycleOptions): Promise<void> {
  const fingerprint = entryFingerprint(deps.plan);
  let attempt = 0;
  while (!options.signal.aborted) {
    try {
      const outcome = await new Epoch(deps, options, fingerprint).run();
      attempt = 0;
      if (outcome === 'stopped') return;
    } catch (error) {
      if (options.signal.aborted) return;
      const code = (error as { code?: string }).code ?? 'UNKNOWN';
      deps.status.lastError = { code, message: toError(error).message, at: new Date().toISOString() };
      deps.onError?.(code);
      // A sync whose server's history changed under it stops; the next epoch finds out why and builds a new generation.
      if (!isRetryable(error) && code !== 'SRC_HISTORY_CHANGED') throw error;
      const delay = backoffDelayMs(attempt++, options.retryInitialMs, options.retryMaxMs);
      if (code === 'CKP_CORRUPT') {
        deps.logger.error({ index: deps.plan.index, code, err: toError(error).message, retryInMs: delay }, 'index stopped on an unreadable checkpoint; reading it again until it is repaired or deleted (`sluice reset`)');
      } else {
        deps.logger.warn({ index: deps.plan.index, code, err: toError(error).message, retryInMs: delay }, 'index lifecycle interrupted; retrying');
      }
      await sleep(delay, options.signal).catch(() => undefined);
    }
  }
}

/** One stretch of running with a fixed live generation (and at most one rebuild), until stop, hand-over or a reindex request. */
class Epoch {
  private readonly store: EntryCheckpointStore;
  private readonly index: string;
  private servedRight = false;

  constructor(
    private readonly deps: LifecycleDeps,
    private readonly options: LifecycleOptions,
    private readonly fingerprint: string,
  ) {
    this.store = new EntryCheckpointStore(deps.store, deps.name);
    this.index = deps.plan.index;
  }

  private get fields() {
    return this.store.fields;
  }

  async run(): Promise<'stopped' | 'again'> {
    const { deps, options } = this;
    let checkpoint = await this.store.load(deps.name);
    const request = await deps.store.load(reindexRequestName(deps.name));
    const serving = await deps.target.resolveName(this.index);
    if (serving.kind === 'none' && checkpoint?.snapshot) {
      deps.logger.warn({ index: this.index, generation: checkpoint.generation }, 'the index is gone from the engine: syncing it again from a snapshot');
      // Progress goes; a rebuild and retired generations to clean up stay on record.
      this.store.fields.rebuild = checkpoint.rebuild;
      this.store.fields.retired = checkpoint.retired ?? [];
      await this.store.remove(deps.name);
      checkpoint = await this.store.load(deps.name);
    }
    const history = await checkHistory(deps.source, checkpoint);
    if (history.diverged !== undefined) checkpoint = await this.leaveDivergedGeneration(checkpoint!, history.diverged);
    const rebuildHistory = checkpoint?.rebuild ? await checkHistory(deps.source, await deps.store.load(checkpoint.rebuild.slot)) : undefined;
    this.chooseLiveGeneration(checkpoint, serving);
    await this.dropDueGenerations();

    // An entry starting over builds its live generation from scratch anyway: nothing to rebuild beside it.
    const startsOver = !checkpoint?.snapshot;
    const stale = this.fields.rebuild;
    const stillRequested = stale?.requested === true && stale.fingerprint === this.fingerprint;
    const wantsRebuild = !startsOver && (this.fields.fingerprint !== this.fingerprint || request !== undefined || stillRequested);
    if (rebuildHistory?.diverged !== undefined) deps.logger.warn({ index: this.index, generation: stale?.generation, reason: rebuildHistory.diverged }, 'the rebuild starts over');
    if (stale && (!wantsRebuild || stale.fingerprint !== this.fingerprint || request !== undefined || rebuildHistory?.diverged !== undefined)) {
      await this.abandonRebuild(stale, serving);
    } else if (!stale) {
      await this.dropLeftoverRebuildSlot();
    }
    if (wantsRebuild && !this.fields.rebuild) this.planRebuild(request !== undefined);
    await this.store.saveFields();
    if (request !== undefined) await deps.store.remove(reindexRequestName(deps.name));

    const live = this.fields.generation!;
    if (serving.kind === 'none') {
      // Nothing answers searches yet: the new generation serves from its first document, as a plain index would.
      await deps.target.ensureIndex({ ...deps.plan, index: live });
      this.stillOwner();
      await deps.target.swapAlias({ alias: this.index, to: live, from: [], signal: this.options.signal });
      this.servedRight = true;
    } else {
      this.servedRight = serving.kind === 'index' ? live === this.index : serving.indices.length === 1 && serving.indices[0] === live;
    }
    deps.status.generation = live;

    const unlink: (() => void)[] = [];
    const linked = (): AbortController => {
      const controller = new AbortController();
      // A stop that came during the set-up above has already fired: a listener added now would never run.
      if (options.signal.aborted) controller.abort();
      const onStop = () => controller.abort();
      options.signal.addEventListener('abort', onStop, { once: true });
      unlink.push(() => options.signal.removeEventListener('abort', onStop));
      return controller;
    };
    const liveAbort = linked();
    const rebuildAbort = linked();
    const superviseAbort = linked();
    // The syncs' log lines name their generation; the index comes from the logger (bound once here, not twice).
    const syncLogger = deps.logger.child?.({ index: this.index }) ?? deps.logger;
    const liveSync = runIndexSync({ ...deps, plan: { ...deps.plan, index: live }, store: this.store, logger: syncLogger }, { ...options, signal: liveAbort.signal });
    const rebuild = this.fields.rebuild;
    let rebuildSync: Promise<void> | undefined;
    let rebuildStatus: IndexStatus | undefined;
    if (rebuild) {
      rebuildStatus = newIndexStatus(this.index);
      rebuildStatus.generation = rebuild.generation;
      deps.status.rebuild = rebuildStatus;
      rebuildSync = runIndexSync(
        {
          ...deps,
          plan: { ...deps.plan, index: rebuild.generation },
          name: rebuild.slot,
          status: rebuildStatus,
          logger: syncLogger,
        },
        { ...options, signal: rebuildAbort.signal },
      );
    }
    let supervising: Promise<unknown> | undefined;
    try {
      const stopped = Promise.all([liveSync, rebuildSync]).then(() => 'stopped' as const);
      supervising = this.supervise(rebuild, rebuildStatus, superviseAbort.signal);
      const outcome = await Promise.race([stopped, supervising]);
      if (outcome === 'stopped' || outcome === 'aborted') {
        await stopped;
        return 'stopped';
      }
      if (outcome === 'requested') {
        deps.logger.info({ index: this.index }, 'reindex requested');
        return 'again';
      }
      await this.handOver(rebuild!, liveAbort, liveSync, rebuildAbort, rebuildSync!);
      return 'again';
    } finally {
      superviseAbort.abort();
      liveAbort.abort();
      rebuildAbort.abort();
      // The process-wide signal outlives every epoch (one per reindex or hand-over).
      for (const remove of unlink) remove();
      // A supervision step still running (a swap, a save of the fields) must not land in the next epoch.
      await Promise.allSettled([liveSync, rebuildSync, supervising]);
      deps.status.rebuild = undefined;
    }
  }

  /**
   * Beside the syncs, every half second: serve the live generation once it has caught up, delete generations past
   * their grace period, notice a reindex request, and say when a rebuild has caught up with the live generation.
   */
  private async supervise(rebuild: RebuildProgress | undefined, rebuildStatus: IndexStatus | undefined, signal: AbortSignal): Promise<'ready' | 'requested' | 'aborted'> {
    const { deps, options } = this;
    let lastRequestCheck = Date.now();
    for (;;) {
      try {
        await sleep(SUPERVISE_INTERVAL_MS, signal);
      } catch {
        return 'aborted';
      }
      await this.serveWhenCaughtUp();
      await this.dropDueGenerations();
      // A live sync starting over (slot lost) has no position to hand over from: wait until it streams again.
      if (rebuild && rebuildStatus?.phase === 'streaming' && this.store.latest()?.snapshot?.complete) {
        const lag = knownLagSeconds(rebuildStatus);
        const ahead = position(await deps.store.load(rebuild.slot)) >= position(this.store.latest());
        if (ahead || (lag !== undefined && lag <= options.catchUpLagSeconds)) return 'ready';
      }
      if (Date.now() - lastRequestCheck >= options.heartbeatIntervalMs) {
        lastRequestCheck = Date.now();
        if ((await deps.store.load(reindexRequestName(deps.name))) !== undefined) return 'requested';
      }
    }
  }

  /**
   * The live generation holds changes the server's history no longer has, versioned above the server's own changes
   * to come: writing on into it would leave them there. It keeps answering searches, retired, until a new generation
   * built from a snapshot has caught up and takes the alias. Returns what is left of the checkpoint.
   */
  private async leaveDivergedGeneration(checkpoint: Checkpoint, reason: string): Promise<Checkpoint | undefined> {
    const { deps } = this;
    const generation = checkpoint.generation;
    deps.logger.warn(
      { index: this.index, generation, reason },
      'the index holds changes that are not in the database any more: building a new generation from a snapshot; searches read the current one until it has caught up',
    );
    this.fields.rebuild = checkpoint.rebuild;
    this.fields.retired = checkpoint.retired ?? [];
    if (generation !== undefined && generation !== this.index && !this.fields.retired.some((r) => r.index === generation)) {
      // Retired at once: should this process stop before the new generation's first checkpoint, the next start does
      // not take the diverged one for the generation to build.
      this.fields.retired.push({ index: generation, dropAfter: new Date(Date.now() + this.options.graceMs).toISOString() });
    }
    await this.store.remove(deps.name);
    return this.store.load(deps.name);
  }

  private chooseLiveGeneration(checkpoint: Checkpoint | undefined, serving: NameState): void {
    const fields = this.fields;
    fields.retired = checkpoint?.retired ?? [];
    fields.rebuild = checkpoint?.rebuild;
    if (checkpoint?.generation && checkpoint.snapshot) {
      fields.generation = checkpoint.generation;
      fields.fingerprint = checkpoint.fingerprint;
    } else if (checkpoint?.snapshot && serving.kind === 'index') {
      // Progress from before generations existed: the concrete index is live until a generation replaces it.
      fields.generation = this.index;
      fields.fingerprint = checkpoint.fingerprint;
    } else {
      // No progress to keep: start over into the generation the fingerprint names, going on with the one an earlier
      // start began, or reusing one already served, unless it was retired (left because its history diverged).
      const retired = new Set(fields.retired.map((r) => r.index));
      const begun = checkpoint?.generation !== undefined && checkpoint.fingerprint === this.fingerprint && !retired.has(checkpoint.generation) ? checkpoint.generation : undefined;
      const current = serving.kind === 'alias' ? serving.indices.find((i) => isGenerationOf(i, this.index, this.fingerprint) && !retired.has(i)) : undefined;
      const base = generationName(this.index, this.fingerprint);
      fields.generation = begun ?? current ?? (retired.has(base) ? generationName(this.index, this.fingerprint, Date.now().toString(36)) : base);
      fields.fingerprint = this.fingerprint;
    }
  }

  private planRebuild(requested: boolean): void {
    const base = generationName(this.index, this.fingerprint);
    // A schema rolled back within the grace period names a generation still retired (and due for deletion).
    const taken = base === this.fields.generation || this.fields.retired.some((r) => r.index === base);
    const generation = requested || taken ? generationName(this.index, this.fingerprint, Date.now().toString(36)) : base;
    this.fields.rebuild = { generation, fingerprint: this.fingerprint, slot: rebuildSlotName(this.deps.name), startedAt: new Date().toISOString(), ...(requested ? { requested } : {}) };
    this.deps.logger.info(
      { index: this.index, live: this.fields.generation, generation, reason: requested ? 'reindex requested' : 'schema entry changed' },
      'building a new generation beside the live one',
    );
  }

  /**
   * Before each step another owner could not undo (a slot dropped, an alias swapped, an index deleted): a process
   * stopped, or that lost the index's lease meanwhile, goes no further.
   */
  private stillOwner(): void {
    this.options.signal.throwIfAborted();
  }

  /** Drops a rebuild that no longer matches what is wanted: its slot, its checkpoint and its index. */
  private async abandonRebuild(rebuild: RebuildProgress, serving: NameState): Promise<void> {
    const { deps } = this;
    deps.logger.warn({ index: this.index, generation: rebuild.generation }, 'abandoning an unfinished rebuild that no longer matches the schema entry');
    this.stillOwner();
    await deps.source.dropSlot(rebuild.slot);
    await deps.store.remove(rebuild.slot);
    this.stillOwner();
    if (!servedIndices(serving, this.index).includes(rebuild.generation)) await deps.target.deleteIndex(rebuild.generation);
    this.fields.rebuild = undefined;
  }

  /** A rebuild slot with no rebuild recorded: left by a crash right after a hand-over. It would hold WAL forever. */
  private async dropLeftoverRebuildSlot(): Promise<void> {
    const slot = rebuildSlotName(this.deps.name);
    this.stillOwner();
    if ((await this.deps.source.slotState(slot)).exists) await this.deps.source.dropSlot(slot);
    await this.deps.store.remove(slot);
  }

  /** Points the alias at the live generation once it has caught up (first start beside an older index). */
  private async serveWhenCaughtUp(): Promise<void> {
    const status = this.deps.status;
    // A known lag only (a batch or an idle heartbeat set it): a concrete index replaced here is gone for good.
    const lag = knownLagSeconds(status);
    if (this.servedRight || status.phase !== 'streaming' || lag === undefined || lag > this.options.catchUpLagSeconds) return;
    await this.swapTo(this.fields.generation!);
    this.servedRight = true;
  }

  /**
   * Points the alias at `generation` alone. The generations it leaves (and `outgoing`, a live generation that never
   * held it) are retired, deleted after the grace period. Indices the alias served that Sluice did not make (an alias
   * someone else set up) only lose the alias: they are not Sluice's to delete.
   */
  private async swapTo(generation: string, outgoing?: string): Promise<void> {
    const { target, logger } = this.deps;
    const serving = await target.resolveName(this.index);
    const served = servedIndices(serving, this.index).filter((i) => i !== generation && i !== this.index);
    const foreign = served.filter((i) => !isAnyGenerationOf(i, this.index));
    const leaving = outgoing !== undefined && outgoing !== generation && isAnyGenerationOf(outgoing, this.index) ? [outgoing] : [];
    const previous = [...new Set([...served.filter((i) => isAnyGenerationOf(i, this.index)), ...leaving])];
    const dropAfter = new Date(Date.now() + this.options.graceMs).toISOString();
    this.fields.retired = [...this.fields.retired.filter((r) => !previous.includes(r.index) && r.index !== generation), ...previous.map((index) => ({ index, dropAfter }))];
    await this.store.saveFields();
    // Searches must find the whole generation from the first instant, not what the last periodic refresh (or none,
    // with refresh_interval -1) made visible.
    await target.refresh(generation);
    this.stillOwner();
    await target.swapAlias({ alias: this.index, to: generation, from: serving.kind === 'alias' ? serving.indices : [], replaceIndex: serving.kind === 'index', signal: this.options.signal });
    logger.info(
      { index: this.index, generation, replaced: serving.kind === 'index' ? `index ${this.index}` : previous, dropAfter: previous.length > 0 ? dropAfter : undefined },
      serving.kind === 'index' ? 'alias replaced the concrete index: searches now read the new generation' : 'alias swapped: searches now read the new generation',
    );
    if (foreign.length > 0) {
      logger.warn({ index: this.index, generation, indices: foreign }, 'the alias left indices Sluice did not create; they are kept as they are (delete them when no longer needed)');
    }
  }

  private async dropDueGenerations(): Promise<void> {
    const now = Date.now();
    const due = this.fields.retired.filter((r) => Date.parse(r.dropAfter) <= now);
    if (due.length === 0) return;
    const serving = servedIndices(await this.deps.target.resolveName(this.index), this.index);
    // Still read by searches (a generation left for a diverged history, until the new one has caught up): it stays
    // retired, so that no start takes it for the live generation again, due again a while later (looked at every
    // supervision step otherwise, each time with a checkpoint write); the alias swap gives it a new grace period.
    const served = new Set(due.filter((r) => serving.includes(r.index)));
    const later = new Date(now + Math.max(this.options.graceMs, SERVED_RETIRED_RECHECK_MS)).toISOString();
    for (const retired of due) {
      const inUse = served.has(retired) || retired.index === this.fields.generation || retired.index === this.fields.rebuild?.generation;
      this.stillOwner();
      // Recorded by an older version, which retired whatever the alias served: only Sluice's own generations go.
      if (!isAnyGenerationOf(retired.index, this.index)) continue;
      if (!inUse && (await this.deps.target.deleteIndex(retired.index))) {
        this.deps.logger.info({ index: this.index, generation: retired.index }, 'deleted a previous generation after its grace period');
      }
    }
    this.fields.retired = this.fields.retired.filter((r) => !due.includes(r) || served.has(r)).map((r) => (served.has(r) ? { index: r.index, dropAfter: later } : r));
    await this.store.saveFields();
  }

  /**
   * The new generation has caught up: stop the live stream at its checkpoint C, let the new generation apply
   * everything up to at least C, then make C the entry's checkpoint for the new generation and swap the alias.
   * The entry's slot resumes from C into the new generation: changes the new one already applied after C are
   * applied again, which their external versions make harmless; none before C is missing from it.
   */
  private async handOver(rebuild: RebuildProgress, liveAbort: AbortController, liveSync: Promise<void>, rebuildAbort: AbortController, rebuildSync: Promise<void>): Promise<void> {
    const { deps, options } = this;
    deps.logger.info({ index: this.index, generation: rebuild.generation }, 'new generation caught up: handing over');
    liveAbort.abort();
    await liveSync;
    const live = this.store.latest();
    if (!live?.snapshot?.complete) {
      deps.logger.warn({ index: this.index, generation: rebuild.generation }, 'hand-over postponed: the live generation is not streaming');
      return;
    }
    const upTo = position(live);
    // The live generation gets no changes while this waits: give up after a while (the rebuild failed, fell behind
    // again, or started over) and let the next epoch stream the live one again and try later.
    const deadline = Date.now() + HANDOVER_WAIT_FACTOR * options.catchUpLagSeconds * 1000;
    let rebuildEnded = false;
    void rebuildSync.then(
      () => (rebuildEnded = true),
      () => (rebuildEnded = true),
    );
    for (;;) {
      options.signal.throwIfAborted();
      if (position(await deps.store.load(rebuild.slot)) >= upTo) break;
      if (rebuildEnded || Date.now() > deadline) {
        deps.logger.warn({ index: this.index, generation: rebuild.generation, waitedSeconds: HANDOVER_WAIT_FACTOR * options.catchUpLagSeconds }, 'hand-over postponed: the new generation did not reach the live one in time');
        return;
      }
      // An idle database sends nothing: a heartbeat moves the new generation's stream past C.
      await deps.source.emitHeartbeat();
      await sleep(200, options.signal);
    }
    rebuildAbort.abort();
    await rebuildSync;
    // The rebuild wrote changes past C while the live stream waited: the entry's ceiling must cover their versions.
    const rebuilt = await deps.store.load(rebuild.slot);
    if (rebuilt !== undefined) this.store.raiseCeiling(checkpointPosition(rebuilt));
    const outgoing = this.fields.generation;
    this.fields.generation = rebuild.generation;
    this.fields.fingerprint = rebuild.fingerprint;
    this.fields.rebuild = undefined;
    await this.swapTo(rebuild.generation, outgoing);
    this.stillOwner();
    await deps.source.dropSlot(rebuild.slot);
    await deps.store.remove(rebuild.slot);
  }
}

/** How far a checkpoint's changes are durable: its acknowledged LSN, or the snapshot's LSN once it is complete. */
function position(checkpoint: Checkpoint | undefined): bigint {
  if (!checkpoint) return 0n;
  const acknowledged = checkpoint.lsn ? parseLsn(checkpoint.lsn) : 0n;
  const snapshot = checkpoint.snapshot?.complete ? parseLsn(checkpoint.snapshot.consistentLsn) : 0n;
  return acknowledged > snapshot ? acknowledged : snapshot;
}

function servedIndices(state: NameState, name: string): string[] {
  return state.kind === 'alias' ? state.indices : state.kind === 'index' ? [name] : [];
}
