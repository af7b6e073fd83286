import { AppError, formatProblems } from '../../errors/app-error.js';
import { FileDeadLetterStore } from '../../sink/dead-letter-file-store.js';
import { indexOrAliasExists, scanStoredRefs, storedDocuments } from '../../sink/elasticsearch/document-lookup.js';
import { ElasticsearchSink } from '../../sink/elasticsearch/elasticsearch-sink.js';
import { postgresError } from '../../source/postgres/connect.js';
import { driftTotal, verifyIndex, type DriftList, type VerifyReport } from '../../verify/verify-index.js';
import { createContext, findPlan, prepareEntries, stopOnSignals, type GlobalFlags } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';

export interface VerifyFlags extends GlobalFlags {
  repair?: boolean;
  /** Ids printed per kind of drift. */
  limit?: number;
  /** Root rows per PostgreSQL query and engine lookup. */
  batchSize?: number;
}

/**
 * `sluice verify <index> [--repair]`: compares the index (or the alias) with PostgreSQL and prints the drift.
 * Exit 0 in sync, 4 on drift; with --repair, 0 once every drifted document was rewritten or deleted.
 */
export async function verifyCommand(flags: VerifyFlags, index: string, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const { config, logger } = context;
  const prepared = await prepareEntries(context, 1);
  const deadLetters = new FileDeadLetterStore(config.deadLetterPath);
  const { abort, dispose } = stopOnSignals();
  let sink: ElasticsearchSink | undefined;
  try {
    if (prepared.warnings.length > 0) logger.warn(formatProblems(prepared.warnings));
    const plan = findPlan(prepared, index);
    sink = await ElasticsearchSink.connect(config.engine, deadLetters, logger);
    const client = sink.client;
    if (!(await indexOrAliasExists(client, index))) {
      throw new AppError('SNK_REQUEST', `index "${index}" does not exist in the search engine at ${client.url}: nothing to verify (\`sluice sync --once\` or \`sluice run\` creates it)`);
    }
    const writer = flags.repair ? sink.writer() : undefined;
    const engine = {
      refresh: (name: string) => sink!.refresh(name),
      count: (name: string) => sink!.count(name),
      documents: (name: string, ids: string[]) => storedDocuments(client, name, ids),
      refs: (name: string, pageSize: number) => scanStoredRefs(client, name, pageSize),
    };
    let report: VerifyReport;
    try {
      report = await verifyIndex(plan, prepared.pool(plan.database), engine, {
        batchSize: flags.batchSize ?? 1000,
        sampleLimit: flags.limit ?? 20,
        ...(writer ? { repair: writer } : {}),
        signal: abort.signal,
      });
    } catch (error) {
      if (abort.signal.aborted) return EXIT_CODES.interrupted;
      if (error instanceof AppError) throw error;
      throw postgresError(error, `verifying index "${index}"`, config.postgres, plan.database);
    }
    const rejected = writer?.stats().deadLettered ?? 0;
    out.write(formatReport(report, rejected, config.deadLetterPath));
    if (driftTotal(report) === 0) return EXIT_CODES.ok;
    return writer && rejected === 0 ? EXIT_CODES.ok : EXIT_CODES.drift;
  } finally {
    dispose();
    await sink?.close();
    await deadLetters.close();
    await prepared.close();
  }
}

export function formatReport(report: VerifyReport, rejected: number, deadLetterPath: string): string {
  const lines = [`${report.index}: ${report.postgresDocuments} document(s) in PostgreSQL, ${report.indexDocuments} in the index`];
  if (!report.contentCompared) lines.push('  content not compared: documents pass through an ingest pipeline, whose output the index stores; ids only');
  const kind = (name: string, drift: DriftList) => {
    if (drift.total === 0) return;
    const more = drift.total > drift.ids.length ? `, first ${drift.ids.length}` : '';
    lines.push(`  ${name.padEnd(9)} ${drift.total}${more}: ${drift.ids.join(', ')}`);
  };
  kind('missing', report.missing);
  kind('different', report.different);
  kind('extra', report.extra);
  const total = driftTotal(report);
  if (total === 0) lines.push('in sync');
  else if (!report.repaired) lines.push(`drift: ${total} document(s) (\`sluice verify ${report.index} --repair\` rewrites them from PostgreSQL and deletes the extra ones)`);
  else {
    lines.push(`repaired: ${report.repaired.indexed} document(s) rewritten from PostgreSQL, ${report.repaired.deleted} deleted`);
    if (rejected > 0) lines.push(`${rejected} repair(s) rejected by the engine: see ${deadLetterPath}`);
  }
  return `${lines.join('\n')}\n`;
}
