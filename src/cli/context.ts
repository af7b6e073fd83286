import type pg from 'pg';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import { openCheckpointStore } from '../checkpoint/open-checkpoint-store.js';
import { loadConfig } from '../config/load-config.js';
import type { SluiceConfig } from '../config/config-types.js';
import { collectSecrets } from '../config/redact.js';
import { AppError, InvalidConfigError, type Problem } from '../errors/app-error.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { compilePlan, liveSyncProblems } from '../schema/compile-plan.js';
import { loadSchemaFile, sortProblems } from '../schema/load-schema-file.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import { readCatalog } from '../source/postgres/catalog.js';
import { createPool, plainConnectionNotice, postgresError, resolvePreferredTls } from '../source/postgres/connect.js';
import { slotNameFor } from '../source/postgres/replication-slot.js';
import { rebuildSlotName } from '../lifecycle/generation-names.js';

export interface GlobalFlags {
  config?: string;
}

/** What every command starts from: settings, a logger and the secrets to keep out of any output. */
export interface CommandContext {
  config: SluiceConfig;
  logger: Logger;
  secrets: string[];
  env: Record<string, string | undefined>;
}

export function createContext(flags: GlobalFlags, env: NodeJS.ProcessEnv = process.env): CommandContext {
  const { config, warnings, env: merged } = loadConfig({ flags: { config: flags.config }, env });
  const secrets = collectSecrets(config);
  const logger = createLogger({ level: config.logLevel, secrets, format: config.logFormat });
  for (const warning of warnings) logger.warn({ setting: warning.location }, warning.message);
  return { config, logger, secrets, env: merged };
}

/** Every schema entry checked against its database, with a connection pool per database. */
export interface PreparedEntries {
  plans: EntryPlan[];
  warnings: Problem[];
  pool(database: string): pg.Pool;
  close(): Promise<void>;
}

/**
 * Loads schema.json and checks every entry against its database's catalog. All problems of all entries
 * are reported together (InvalidConfigError); nothing is written anywhere before that.
 */
export async function prepareEntries(context: CommandContext, poolSize: number, options: { live?: boolean } = {}): Promise<PreparedEntries> {
  const { config } = context;
  const { entries, warnings: schemaWarnings } = await loadSchemaFile(config.schemaPath, context.env);
  const pools = new Map<string, pg.Pool>();
  const close = async () => {
    await Promise.allSettled([...pools.values()].map((p) => p.end()));
  };
  try {
    const problems: Problem[] = [...schemaWarnings, ...slotNameCollisions(entries)];
    const plans: EntryPlan[] = [];
    for (const database of new Set(entries.map((e) => e.database))) {
      const asked = config.postgres.preferredTls === undefined;
      await resolvePreferredTls(config.postgres, database);
      if (asked && config.postgres.preferredTls === false) {
        const notice = plainConnectionNotice(config.postgres);
        context.logger[notice.level]({ database, sslmode: config.postgres.sslMode ?? 'prefer (unset)', tlsAnswer: config.postgres.preferredTlsRefusal }, notice.message);
      }
      const pool = createPool(config.postgres, database, poolSize);
      pools.set(database, pool);
      let catalog;
      try {
        const client = await pool.connect();
        try {
          catalog = await readCatalog(client);
        } finally {
          client.release();
        }
      } catch (error) {
        throw postgresError(error, 'reading the catalog', config.postgres, database);
      }
      for (const entry of entries.filter((e) => e.database === database)) {
        const compiled = compilePlan(entry, catalog);
        problems.push(...compiled.problems);
        if (compiled.plan) plans.push(compiled.plan);
      }
    }
    // bootstrap and run follow the WAL, which only tables have.
    if (options.live) problems.push(...liveSyncProblems(plans));
    if (problems.some((p) => p.severity === 'error')) {
      throw new InvalidConfigError('SCH_INVALID', `Schema file ${config.schemaPath} does not match the database`, sortProblems(problems));
    }
    return {
      plans,
      warnings: problems,
      pool: (database) => pools.get(database)!,
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/**
 * Entries whose replication slot names (PGSync's rule drops characters and folds case: "my-index" and "myindex" are
 * both `<database>_myindex`), or rebuild slot names, are the same. They would share one slot, one checkpoint and one
 * ownership lease, and each would acknowledge changes the other has not applied. Entries with the same index are
 * reported by the schema's own check.
 */
function slotNameCollisions(entries: Array<{ database: string; index: string; location: string }>): Problem[] {
  const problems: Problem[] = [];
  const taken = new Map<string, { index: string; database: string; location: string; rebuild: boolean }>();
  for (const entry of entries) {
    const own = slotNameFor(entry.database, entry.index);
    for (const [name, rebuild] of [[own, false], [rebuildSlotName(own), true]] as const) {
      const other = taken.get(name);
      if (other === undefined) {
        taken.set(name, { ...entry, rebuild });
        continue;
      }
      if (other.index === entry.index) continue;
      const what = (r: boolean) => (r ? 'rebuild slot' : 'replication slot and checkpoint');
      problems.push({
        location: `${entry.location}.index`,
        severity: 'error',
        message:
          `index "${entry.index}" (database "${entry.database}") gets the ${what(rebuild)} name "${name}", which is the ${what(other.rebuild)} name of ` +
          `index "${other.index}" (database "${other.database}", ${other.location}): slot names keep only letters, digits and "_", in lower case; rename one of the two indexes`,
      });
    }
  }
  return problems;
}

/**
 * The checkpoint store every command shares. The PostgreSQL store lives in the first entry's database, as `run` opens
 * it: a command opening it in its index's own database would read and write another table than the running instance.
 */
export function openSharedCheckpointStore(context: CommandContext, prepared: PreparedEntries): Promise<CheckpointStore> {
  return openCheckpointStore(context.config, prepared.pool(prepared.plans[0]!.database));
}

/** The entry that writes `index`; CFG_INVALID (exit 3) naming the indexes there are when none does. */
export function findPlan(prepared: PreparedEntries, index: string): EntryPlan {
  const plan = prepared.plans.find((p) => p.index === index);
  if (!plan) throw new AppError('CFG_INVALID', `no schema entry writes index "${index}" (indexes: ${prepared.plans.map((p) => p.index).join(', ')})`);
  return plan;
}

/**
 * An AbortController that SIGINT and SIGTERM abort (after `onStop`, for a log line), and `dispose`, which removes
 * the handlers again (call it in `finally`).
 */
export function stopOnSignals(onStop?: (signal: string) => void): { abort: AbortController; dispose(): void } {
  const abort = new AbortController();
  const onSignal = (signal: string) => {
    onStop?.(signal);
    abort.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    abort,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
