import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { previewCommand, reindexCommand, resetCommand, statusCommand } from './cli/commands/admin.js';
import { bootstrapCommand, teardownCommand } from './cli/commands/bootstrap.js';
import { runCommand } from './cli/commands/run.js';
import { syncOnceCommand } from './cli/commands/sync-once.js';
import { validateCommand } from './cli/commands/validate.js';
import { verifyCommand } from './cli/commands/verify.js';
import { EXIT_CODES, EXIT_CODES_HELP } from './cli/exit-codes.js';
import { loadConfig } from './config/load-config.js';
import { collectSecrets, redact } from './config/redact.js';
import { AppError, InvalidConfigError, toError } from './errors/app-error.js';

/** Builds the `sluice` command line. Each action resolves to an exit code. */
export function buildProgram(setExitCode: (code: number) => void): Command {
  const program = new Command('sluice')
    .description('Keeps Elasticsearch and OpenSearch indices in sync with PostgreSQL (schema.json in PGSync format).')
    .addOption(new Option('-c, --config <path>', 'schema.json path (default: $SCHEMA, else config/schema.json)'))
    .addHelpText('after', `\nSettings come from the environment and a .env file in the working directory (docs/configuration.md).\n\n${EXIT_CODES_HELP}`)
    .showHelpAfterError()
    .exitOverride();
  const globals = () => program.opts<{ config?: string }>();

  program
    .command('run')
    .description('Keep every index in sync: snapshot on first start, then stream changes until SIGTERM; processes sharing the checkpoint store take turns on each index (the others stand by)')
    .action(async () => setExitCode(await runCommand(globals())));

  program
    .command('bootstrap')
    .description('Create the publication, REPLICA IDENTITY FULL on every table of the schema, and one replication slot per index')
    .option('--print-sql', 'print the SQL a DBA would run instead of running it')
    .option('--no-replica-identity', 'leave REPLICA IDENTITY as it is (a child moved to another parent or deleted may then leave a stale document)')
    .action(async (options: { printSql?: boolean; replicaIdentity?: boolean }) => setExitCode(await bootstrapCommand({ ...globals(), ...options })));

  program
    .command('teardown')
    .description('Drop the replication slots, the publication and the checkpoints (refused while a `sluice run` owns an index)')
    .option('--print-sql', 'print the SQL instead of running it')
    .action(async (options: { printSql?: boolean }) => setExitCode(await teardownCommand({ ...globals(), ...options })));

  program
    .command('status')
    .description('Show each index: the running instance\'s /status, else the checkpoints, slots and lease owners')
    .action(async () => setExitCode(await statusCommand(globals())));

  program
    .command('preview <index> <id>')
    .description('Print the document that would be indexed for a root id (PGSync\'s _id: key values joined by "|")')
    .option('--sql', 'print the document query instead')
    .action(async (index: string, id: string, options: { sql?: boolean }) => setExitCode(await previewCommand({ ...globals(), ...options }, index, id)));

  program
    .command('reset <index>')
    .description('Forget the progress of one index (checkpoint and slot): the next `sluice run` syncs it again (refused while a `sluice run` owns it)')
    .action(async (index: string) => setExitCode(await resetCommand(globals(), index)));

  program
    .command('reindex <index>')
    .description('Rebuild one index as a new generation beside the live one, then swap its alias (no downtime)')
    .action(async (index: string) => setExitCode(await reindexCommand(globals(), index)));

  program
    .command('verify <index>')
    .description('Compare the index (or alias) with PostgreSQL: counts and per-document content; exit 4 on drift')
    .option('--repair', 'rewrite missing and different documents from PostgreSQL and delete extra ones (safe while `sluice run` runs)')
    .option('--limit <n>', 'ids printed per kind of drift', (v: string) => positiveInt(v), 20)
    .option('--batch-size <n>', 'root rows per PostgreSQL query and engine lookup (at most 5000)', (v: string) => positiveInt(v, 5000), 1000)
    .action(async (index: string, options: { repair?: boolean; limit: number; batchSize: number }) => setExitCode(await verifyCommand({ ...globals(), ...options }, index)));

  program
    .command('sync')
    .description('Full sync of every schema entry into its index')
    .requiredOption('--once', 'run one full sync and exit (continuous sync is `sluice run`)')
    .action(async () => setExitCode(await syncOnceCommand(globals())));

  program
    .command('validate')
    .description('Check settings and schema.json against the database; writes nothing')
    .action(async () => setExitCode(await validateCommand(globals())));

  return program;
}

function positiveInt(value: string, max = Number.MAX_SAFE_INTEGER): number {
  // Digits only, as the settings take them: Number() would also take 1e3, 0x10 and spaces.
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? 'expected a positive integer' : `expected an integer from 1 to ${max}`);
  return n;
}

/** Runs the CLI and returns the process exit code; errors are reported on standard error. */
export async function main(argv: string[]): Promise<number> {
  let exitCode: number = EXIT_CODES.ok;
  const program = buildProgram((code) => (exitCode = code));
  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (error) {
    return reportError(error);
  }
}

function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    return error.exitCode === 0 ? EXIT_CODES.ok : EXIT_CODES.usage;
  }
  const write = (text: string) => process.stderr.write(redact(`${text}\n`, knownSecrets()));
  if (error instanceof InvalidConfigError) {
    write(error.message);
    return EXIT_CODES.invalidConfig;
  }
  if (error instanceof AppError) {
    write(`error [${error.code}]: ${error.message}`);
    return error.code.startsWith('CFG_') || error.code.startsWith('SCH_') ? EXIT_CODES.invalidConfig : EXIT_CODES.failure;
  }
  write(`error: ${toError(error).stack ?? String(error)}`);
  return EXIT_CODES.failure;
}

/** Secrets of the current settings, so that no error text can print one (empty when settings are invalid). */
function knownSecrets(): string[] {
  try {
    return collectSecrets(loadConfig().config);
  } catch {
    return [];
  }
}
