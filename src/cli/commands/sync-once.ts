import { formatProblems } from '../../errors/app-error.js';
import { PROGRESS_SUMMARY_INTERVAL_MS, startProgressReporter } from '../../observability/progress-reporter.js';
import { servingIndexFor } from '../../lifecycle/serving-index.js';
import { runFullSync } from '../../pipeline/full-sync.js';
import { newIndexStatus, recordSnapshotProgress, startSnapshotProgress, type IndexStatus } from '../../pipeline/index-status.js';
import { estimateRootRows } from '../../pipeline/snapshot-phase.js';
import { FileDeadLetterStore } from '../../sink/dead-letter-file-store.js';
import { ElasticsearchSink } from '../../sink/elasticsearch/elasticsearch-sink.js';
import { createContext, prepareEntries, stopOnSignals, type GlobalFlags } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';

export interface IndexSummary {
  index: string;
  documents: number;
  deadLettered: number;
  seconds: number;
}

/**
 * `sluice sync --once`: a full sync of every schema entry, then a summary table on standard output. Meanwhile a
 * progress line per index every 30 s, or on a terminal a progress bar with the time left.
 */
export async function syncOnceCommand(flags: GlobalFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const { config, logger } = context;
  const prepared = await prepareEntries(context, config.snapshotConcurrency + 1);
  const deadLetters = new FileDeadLetterStore(config.deadLetterPath);
  const { abort, dispose } = stopOnSignals();
  let sink: ElasticsearchSink | undefined;
  // Only the indexes begun so far: the others have nothing to report yet.
  const statuses: IndexStatus[] = [];
  const reporter = startProgressReporter({ statuses: () => statuses, logger, intervalMs: PROGRESS_SUMMARY_INTERVAL_MS, tty: process.stderr });
  try {
    if (prepared.warnings.length > 0) logger.warn(formatProblems(prepared.warnings));
    sink = await ElasticsearchSink.connect(config.engine, deadLetters, logger);
    const summaries: IndexSummary[] = [];
    for (const plan of prepared.plans) {
      if (abort.signal.aborted) break;
      const started = process.hrtime.bigint();
      const serving = await servingIndexFor(
        {
          resolveName: (name) => sink!.resolveName(name),
          swapAlias: (swap) => sink!.swapAlias(swap),
          ensureIndex: (p) => sink!.ensureIndex({ name: p.index, settings: p.settings, mappings: p.mappings, pipeline: p.pipeline }),
        },
        plan,
      );
      logger.info({ index: plan.index, generation: serving.index, created: serving.created }, serving.created ? 'index created' : 'index exists');
      const writer = sink.writer();
      const status: IndexStatus = { ...newIndexStatus(plan.index), phase: 'snapshot' };
      statuses.push(status);
      startSnapshotProgress(status, await estimateRootRows(plan, prepared.pool(plan.database)));
      let written = 0;
      const result = await runFullSync({ ...plan, index: serving.index }, prepared.pool(plan.database), writer, {
        chunkSize: config.snapshotChunkSize,
        concurrency: config.snapshotConcurrency,
        signal: abort.signal,
        onChunkWritten: (range, documents) => {
          written += documents;
          recordSnapshotProgress(status, written);
          logger.debug({ index: plan.index, upTo: range.upTo, documents }, 'chunk written');
        },
      });
      status.phase = 'stopped';
      await sink.refresh(plan.index);
      const stats = writer.stats();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      summaries.push({ index: plan.index, documents: result.documents, deadLettered: stats.deadLettered, seconds });
      logger.info({ index: plan.index, documents: result.documents, deadLettered: stats.deadLettered, seconds }, 'full sync finished');
    }
    // The bar shares the terminal with standard output: it goes before the table is printed.
    reporter.stop();
    out.write(formatSummary(summaries));
    const deadLettered = summaries.reduce((sum, s) => sum + s.deadLettered, 0);
    if (deadLettered > 0) out.write(`${deadLettered} document(s) rejected by the engine: see ${config.deadLetterPath}\n`);
    return abort.signal.aborted ? EXIT_CODES.interrupted : EXIT_CODES.ok;
  } catch (error) {
    if (abort.signal.aborted) return EXIT_CODES.interrupted;
    throw error;
  } finally {
    reporter.stop();
    dispose();
    await sink?.close();
    await deadLetters.close();
    await prepared.close();
  }
}

export function formatSummary(summaries: IndexSummary[]): string {
  const rows = summaries.map((s) => [s.index, String(s.documents), String(s.deadLettered), s.seconds.toFixed(2), String(Math.round(s.documents / Math.max(s.seconds, 0.001)))]);
  const header = ['index', 'documents', 'rejected', 'seconds', 'docs/s'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd() + '\n';
  return line(header) + rows.map(line).join('');
}
