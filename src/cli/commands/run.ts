import type pg from 'pg';
import { openCheckpointStore } from '../../checkpoint/open-checkpoint-store.js';
import { AppError, formatProblems } from '../../errors/app-error.js';
import { newIndexStatus } from '../../pipeline/index-status.js';
import { runIndexLifecycle, type GenerationTarget } from '../../lifecycle/index-lifecycle.js';
import { dropRemovedEntries } from '../../lifecycle/removed-entries.js';
import { leaseHolderName, OwnedCheckpointStore, runWhileOwner } from '../../lifecycle/ownership-lease.js';
import { SluiceMetrics } from '../../observability/metrics.js';
import { PROGRESS_SUMMARY_INTERVAL_MS, startProgressReporter, type ProgressReporter } from '../../observability/progress-reporter.js';
import { startHttpServer, type HttpServer } from '../../server/http-server.js';
import type { EntryPlan } from '../../schema/sync-plan.js';
import { FileDeadLetterStore } from '../../sink/dead-letter-file-store.js';
import { ElasticsearchSink } from '../../sink/elasticsearch/elasticsearch-sink.js';
import { PUBLICATION, treeTables } from '../../source/postgres/bootstrap-sql.js';
import { createPool } from '../../source/postgres/connect.js';
import { PostgresChangeSource } from '../../source/postgres/postgres-change-source.js';
import { slotNameFor } from '../../source/postgres/replication-slot.js';
import { backoffDelayMs, sleep } from '../../util/backoff.js';
import { createContext, prepareEntries, stopOnSignals, type CommandContext, type GlobalFlags } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';

/** Idle time between heartbeats written into the WAL, so an idle database still moves the slot. */
const HEARTBEAT_INTERVAL_MS = 10_000;
/** A new generation takes over once it lags the database by at most this (the live index pauses that long at most). */
const CATCH_UP_LAG_SECONDS = 5;

/** `sluice run`: keeps every index in sync (snapshot on first start, then the replication stream) until SIGTERM. */
export async function runCommand(flags: GlobalFlags): Promise<number> {
  const context = createContext(flags);
  const { config, logger } = context;
  // First: a SIGTERM while the catalog is read stops the process cleanly (exit 0), not by the default handler.
  const { abort, dispose } = stopOnSignals((signal) => logger.info({ signal }, 'stopping: finishing the batch in hand'));
  const prepared = await prepareEntries(context, config.snapshotConcurrency + 2, { live: true }).catch((error: unknown) => {
    dispose();
    throw error;
  });
  const deadLetters = new FileDeadLetterStore(config.deadLetterPath);
  let sink: ElasticsearchSink | undefined;
  // The PostgreSQL store (in the first entry's database) gets connections of its own: lease renewals and checkpoint
  // saves must not queue behind the snapshot and document queries, or a busy process would lose its leases.
  const storePool = config.checkpointStore === 'postgres' ? createPool(config.postgres, prepared.plans[0]!.database, 2) : undefined;
  const store = await openCheckpointStore(config, storePool).catch(async (error: unknown) => {
    await storePool?.end();
    throw error;
  });
  // Per database, beside the snapshot pool of prepareEntries: the streams' document queries must not wait behind
  // chunk queries of seconds (another index's snapshot, a rebuild's). Two connections per index (a rebuild streams
  // beside the live generation), and one spare; pg opens them only as they are needed.
  const changePools = new Map<string, pg.Pool>();
  for (const plan of prepared.plans) {
    if (changePools.has(plan.database)) continue;
    const indexes = prepared.plans.filter((p) => p.database === plan.database).length;
    changePools.set(plan.database, createPool(config.postgres, plan.database, 2 * indexes + 1));
  }
  const statuses = prepared.plans.map((plan) => newIndexStatus(plan.index));
  const metrics = new SluiceMetrics();
  let server: HttpServer | undefined;
  let reporter: ProgressReporter | undefined;
  try {
    if (config.http) {
      server = await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        statuses: () => statuses,
        readyLagSeconds: config.http.readyMaxLagSeconds,
        secrets: context.secrets,
        metrics,
        ...(config.http.token !== undefined ? { token: config.http.token } : {}),
        ...(config.http.tls !== undefined ? { tls: config.http.tls } : {}),
      });
      logger.info({ url: server.url }, 'HTTP server listening: /healthz /readyz /metrics /status');
    }
    reporter = startProgressReporter({ statuses: () => statuses, logger, intervalMs: PROGRESS_SUMMARY_INTERVAL_MS, tty: process.stderr });
    if (prepared.warnings.length > 0) logger.warn(formatProblems(prepared.warnings));
    for (const warning of store.warnings()) logger.warn({ store: config.checkpointStore }, warning);
    const holder = leaseHolderName();
    logger.info({ holder, leaseTtlSeconds: config.leaseTtlSeconds }, 'claiming the ownership lease of each index (processes sharing the checkpoint store take turns)');
    const currentSlots = new Set(prepared.plans.map((plan) => slotNameFor(plan.database, plan.index)));
    for (const database of new Set(prepared.plans.map((p) => p.database))) {
      await checkPublication(prepared.pool(database), prepared.plans.filter((p) => p.database === database));
      await warnReplicaIdentity(prepared.pool(database), prepared.plans.filter((p) => p.database === database), logger);
      await warnEncoding(prepared.pool(database), database, logger);
      await dropRemovedEntries(prepared.pool(database), store, currentSlots, logger, holder);
    }
    sink = await connectWithRetry(context, deadLetters, abort.signal);
    if (!sink) return EXIT_CODES.ok;
    const target = indexTarget(sink, metrics);
    const results = await Promise.allSettled(
      prepared.plans.map(async (plan, i) => {
        const pool = changePools.get(plan.database)!;
        const name = slotNameFor(plan.database, plan.index);
        const status = statuses[i]!;
        const ownership = {
          store,
          name,
          holder,
          ttlMs: config.leaseTtlSeconds * 1000,
          signal: abort.signal,
          // Not bound to the index: each of its log lines names it once, as `index` (the lifecycle binds it for the syncs).
          logger,
          index: plan.index,
          onStandby: (owner: string) => Object.assign(status, { phase: 'standby', owner }),
          // Until another owner shows up (the store may be the one away), the index waits like after any failure.
          onLost: (reason: string) => {
            status.phase = 'waiting';
            status.lastError = { code: 'CKP_NOT_OWNER', message: `lost the ownership lease of the index (${reason}): standing by`, at: new Date().toISOString() };
            metrics.recordError(plan.index, 'CKP_NOT_OWNER');
          },
        };
        const options = {
          batchSize: config.engine.bulkMaxActions,
          flushIntervalMs: config.flushIntervalMs,
          chunkSize: config.snapshotChunkSize,
          concurrency: config.snapshotConcurrency,
          heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
          retryInitialMs: config.engine.retryInitialMs,
          retryMaxMs: config.engine.retryMaxMs,
          graceMs: config.reindexGraceSeconds * 1000,
          catchUpLagSeconds: CATCH_UP_LAG_SECONDS,
        };
        try {
          await runWhileOwner(ownership, async (signal, lease) => {
            delete status.owner;
            const deps = {
              plan,
              name,
              publication: PUBLICATION,
              pool,
              snapshotPool: prepared.pool(plan.database),
              source: new PostgresChangeSource(config.postgres, plan.database, pool),
              target,
              // A process that lost the lease must not overwrite the checkpoint its successor keeps.
              store: new OwnedCheckpointStore(store, lease, plan.index),
              logger,
              status,
              onError: (code: string) => metrics.recordError(plan.index, code),
            };
            await runIndexLifecycle(deps, { ...options, signal });
          });
        } catch (error) {
          // One index failing for good stops the others cleanly (checkpoint stored, acknowledged) before exiting.
          abort.abort();
          throw error;
        }
      }),
    );
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    logger.info('stopped');
    return EXIT_CODES.ok;
  } finally {
    reporter?.stop();
    dispose();
    await server?.close();
    await sink?.close();
    await store.close();
    await storePool?.end();
    await Promise.allSettled([...changePools.values()].map((pool) => pool.end()));
    await deadLetters.close();
    await prepared.close();
  }
}

function indexTarget(sink: ElasticsearchSink, metrics: SluiceMetrics): GenerationTarget {
  return {
    ensureIndex: (plan: EntryPlan) => sink.ensureIndex({ name: plan.index, settings: plan.settings, mappings: plan.mappings, pipeline: plan.pipeline }),
    writer: (stop) =>
      sink.writer({
        stop,
        onRequest: (seconds) => metrics.bulkDuration.observe(seconds),
        onDeadLetters: (letters) => letters.forEach((letter) => metrics.deadLetters.inc({ index: letter.index })),
      }),
    documents: (index) => sink.documents(index),
    routingsOf: (index, ids) => sink.routingsOf(index, ids),
    refresh: (index) => sink.refresh(index),
    resolveName: (name) => sink.resolveName(name),
    swapAlias: (swap) => sink.swapAlias(swap),
    deleteIndex: (name) => sink.deleteIndex(name),
  };
}

/** The engine may come up after Sluice (compose, restarts): wait for it with backoff instead of failing. */
async function connectWithRetry(context: CommandContext, deadLetters: FileDeadLetterStore, signal: AbortSignal): Promise<ElasticsearchSink | undefined> {
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      return await ElasticsearchSink.connect(context.config.engine, deadLetters, context.logger);
    } catch (error) {
      // Only transport failures (refused, reset, timeout) are worth waiting out; refused credentials are not.
      if ((error as { retryable?: boolean }).retryable !== true) throw error;
      const delay = backoffDelayMs(attempt, context.config.engine.retryInitialMs, context.config.engine.retryMaxMs);
      context.logger.warn({ err: (error as Error).message, retryInMs: delay }, 'search engine unreachable; waiting');
      await sleep(delay, signal).catch(() => undefined);
    }
  }
  return undefined;
}

/**
 * Child and through tables need their old rows in the WAL (REPLICA IDENTITY FULL, set by bootstrap): a row moved to
 * another parent, or deleted, names its old parent only there. Without it that parent's document stays stale until
 * it changes again (bootstrap --no-replica-identity, or a table added to the tree without running bootstrap again).
 * That holds for a root table that is also a node below a root (a self-referencing tree). A root table needs at
 * least its key: under REPLICA IDENTITY USING INDEX a delete names only that index's columns.
 */
export async function warnReplicaIdentity(pool: pg.Pool, plans: EntryPlan[], logger: CommandContext['logger']): Promise<void> {
  const below = new Map<string, { schema: string; table: string }>();
  const visit = (node: EntryPlan['root'], isRoot: boolean) => {
    if (!isRoot) below.set(`${node.schema}.${node.table}`, { schema: node.schema, table: node.table });
    const through = node.relationship?.through;
    if (through) below.set(`${through.schema}.${through.table}`, { schema: through.schema, table: through.table });
    node.children.forEach((child) => visit(child, false));
  };
  plans.forEach((plan) => visit(plan.root, true));
  const roots = new Map(plans.map((p) => [`${p.root.schema}.${p.root.table}`, { schema: p.root.schema, table: p.root.table }]));
  const query = async (tables: Array<{ schema: string; table: string }>, condition: string): Promise<string[]> => {
    if (tables.length === 0) return [];
    const { rows } = await pool.query<{ name: string }>(
      `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])) AND c.relkind IN ('r', 'p') AND ${condition}
        ORDER BY 1`,
      [tables.map((t) => t.schema), tables.map((t) => t.table)],
    );
    return rows.map((r) => r.name);
  };
  const notFull = await query([...below.values()], `c.relreplident <> 'f'`);
  if (notFull.length > 0) {
    logger.warn(
      { tables: notFull },
      'REPLICA IDENTITY is not FULL on these tables: a row moved to another parent, or deleted, leaves its old parent\'s document stale until that parent changes again; run `sluice bootstrap` (without --no-replica-identity)',
    );
  }
  const byIndex = await query([...roots.values()].filter((t) => !below.has(`${t.schema}.${t.table}`)), `c.relreplident = 'i'`);
  if (byIndex.length > 0) {
    logger.warn(
      { tables: byIndex },
      'REPLICA IDENTITY USING INDEX on these root tables: a delete names only that index\'s columns, so unless they include the primary key the deleted row\'s document stays; run `sluice bootstrap` (without --no-replica-identity)',
    );
  }
}

/**
 * Sluice reads text as UTF-8. A SQL_ASCII database stores bytes unchecked and converts nothing, so a value that is not
 * valid UTF-8 reaches Sluice with U+FFFD in place of its bytes: in a key or join column, the rows it names are then
 * not found, and their documents not rebuilt.
 */
async function warnEncoding(pool: pg.Pool, database: string, logger: CommandContext['logger']): Promise<void> {
  const { rows } = await pool.query<{ encoding: string }>('SELECT pg_encoding_to_char(encoding) AS encoding FROM pg_database WHERE datname = current_database()');
  if (rows[0]?.encoding !== 'SQL_ASCII') return;
  logger.warn(
    { database, encoding: 'SQL_ASCII' },
    'the database encoding is SQL_ASCII: text that is not valid UTF-8 reaches Sluice altered, so a change to a row whose key or join columns hold such text is not matched to its documents; convert the database to UTF8',
  );
}

/** The publication must exist and cover every table of the trees; otherwise changes would be missed silently. */
async function checkPublication(pool: pg.Pool, plans: EntryPlan[]): Promise<void> {
  const { rows } = await pool.query<{ schemaname: string; tablename: string }>('SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1', [PUBLICATION]);
  const published = new Set(rows.map((r) => `${r.schemaname}.${r.tablename}`));
  const missing = treeTables(plans).filter((t) => !published.has(`${t.schema}.${t.table}`));
  if (missing.length > 0) {
    throw new AppError('SRC_NOT_BOOTSTRAPPED', `publication "${PUBLICATION}" ${rows.length === 0 ? 'does not exist' : `does not cover ${missing.map((t) => `${t.schema}.${t.table}`).join(', ')}`} in database ${plans[0]!.database}: run \`sluice bootstrap\` (or apply \`sluice bootstrap --print-sql\`) as the tables' owner`);
  }
}
