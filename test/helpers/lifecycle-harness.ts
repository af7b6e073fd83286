// One entry's lifecycle run in the test process, wired as `sluice run` wires it (without the ownership lease), with
// hooks around the alias swap: to stop it at an exact step, as a SIGTERM or SIGKILL there would.
import { join } from 'node:path';
import type { CheckpointStore } from '../../src/checkpoint/checkpoint-store.js';
import { openCheckpointStore } from '../../src/checkpoint/open-checkpoint-store.js';
import { createContext, prepareEntries } from '../../src/cli/context.js';
import { runIndexLifecycle, type GenerationTarget } from '../../src/lifecycle/index-lifecycle.js';
import { newIndexStatus, type IndexStatus } from '../../src/pipeline/index-status.js';
import { FileDeadLetterStore } from '../../src/sink/dead-letter-file-store.js';
import { ElasticsearchSink } from '../../src/sink/elasticsearch/elasticsearch-sink.js';
import type { AliasSwap } from '../../src/sink/elasticsearch/aliases.js';
import { PUBLICATION } from '../../src/source/postgres/bootstrap-sql.js';
import { PostgresChangeSource } from '../../src/source/postgres/postgres-change-source.js';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';

export interface Run {
  done: Promise<void>;
  abort(): void;
  status: IndexStatus;
  store: CheckpointStore;
  name: string;
  signal: AbortSignal;
  close(): Promise<void>;
}

export async function runLifecycle(schemaPath: string, env: Record<string, string>, hooks: { afterSwap?: (swap: AliasSwap, run: Run) => void; beforeSwap?: (swap: AliasSwap, run: Run) => Promise<void> | void } = {}, graceMs = 600_000, heartbeatIntervalMs = 2_000): Promise<Run> {
  const context = createContext({ config: schemaPath }, env as NodeJS.ProcessEnv);
  const prepared = await prepareEntries(context, 6, { live: true });
  const plan = prepared.plans[0]!;
  const store = await openCheckpointStore(context.config);
  const dead = new FileDeadLetterStore(join(env.CHECKPOINT_PATH!, 'dead.jsonl'));
  const sink = await ElasticsearchSink.connect(context.config.engine, dead, context.logger);
  const controller = new AbortController();
  const status = newIndexStatus(plan.index);
  const name = slotNameFor(plan.database, plan.index);
  // Assigned below, before any hook can run.
  // eslint-disable-next-line prefer-const
  let run: Run;
  const target: GenerationTarget = {
    ensureIndex: (p) => sink.ensureIndex({ name: p.index, settings: p.settings, mappings: p.mappings, pipeline: p.pipeline }),
    writer: (stop) => sink.writer({ stop }),
    documents: (i) => sink.documents(i),
    routingsOf: (i, ids) => sink.routingsOf(i, ids),
    refresh: (i) => sink.refresh(i),
    resolveName: (n) => sink.resolveName(n),
    swapAlias: async (swap) => {
      await hooks.beforeSwap?.(swap, run);
      await sink.swapAlias(swap);
      hooks.afterSwap?.(swap, run);
    },
    deleteIndex: (n) => sink.deleteIndex(n),
  };
  const pool = prepared.pool(plan.database);
  const deps = {
    plan,
    name,
    publication: PUBLICATION,
    pool,
    snapshotPool: pool,
    source: new PostgresChangeSource(context.config.postgres, plan.database, pool),
    target,
    store,
    logger: context.logger,
    status,
  };
  const done = runIndexLifecycle(deps, {
    batchSize: 100,
    flushIntervalMs: 100,
    chunkSize: 100,
    concurrency: 1,
    heartbeatIntervalMs,
    retryInitialMs: 100,
    retryMaxMs: 1000,
    graceMs,
    catchUpLagSeconds: 5,
    signal: controller.signal,
  });
  run = {
    done,
    abort: () => controller.abort(),
    status,
    store,
    name,
    signal: controller.signal,
    close: async () => {
      controller.abort();
      await done.catch(() => undefined);
      await sink.close();
      await store.close();
      await dead.close();
      await prepared.close();
    },
  };
  return run;
}
