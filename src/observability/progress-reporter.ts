import { statusView, type IndexStatus, type IndexStatusView } from '../pipeline/index-status.js';
import { isTerminal, terminalLine } from './terminal-line.js';

/** How often `sluice run` and `sluice sync --once` log one progress line per index. */
export const PROGRESS_SUMMARY_INTERVAL_MS = 30_000;
/** How often the bar is redrawn and the throughput sampled. */
export const PROGRESS_TICK_MS = 1_000;

export interface ProgressLogger {
  info(obj: object, msg?: string): void;
}

export interface ProgressReporterOptions {
  /** Read on every tick; the objects the index syncs update in place. */
  statuses: () => IndexStatus[];
  logger: ProgressLogger;
  /** Between two summary lines of an index. */
  intervalMs: number;
  /** Where the bar goes when it is a terminal (standard error); never drawn on anything else. */
  tty?: NodeJS.WriteStream;
}

export interface ProgressReporter {
  stop(): void;
}

/**
 * Logs a progress line per index every `intervalMs`: phase, snapshot documents against the estimate with rate
 * and time left, or lag, rate and retained WAL. On a terminal (whose logger is not forced to JSON) the indexes
 * in their snapshot get a progress bar on the last line instead, redrawn every second.
 */
export function startProgressReporter(options: ProgressReporterOptions): ProgressReporter {
  const tty = options.tty;
  const line = tty !== undefined && isTerminal(tty) && terminalLine(tty).barAllowed ? terminalLine(tty) : undefined;
  let lastSummary = Date.now();
  const tick = (): void => {
    const now = Date.now();
    // A generation being rebuilt reports beside the live one.
    const views = options.statuses().flatMap((status) => {
      const view = statusView(status, now);
      return view.rebuild === undefined ? [view] : [view, view.rebuild as IndexStatusView];
    });
    const inBar = line === undefined ? [] : views.filter((view) => view.phase === 'snapshot');
    if (inBar.length > 0) line?.draw(formatBar(inBar, (tty as { columns?: number } | undefined)?.columns ?? 80));
    else line?.clear();
    if (now - lastSummary < options.intervalMs) return;
    lastSummary = now;
    for (const view of views) {
      if (!inBar.includes(view)) options.logger.info(summaryFields(view), summaryMessage(view));
    }
  };
  const timer = setInterval(tick, Math.min(PROGRESS_TICK_MS, options.intervalMs));
  // Progress reports alone must not keep a finished command alive.
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      line?.clear();
    },
  };
}

/** The structured part of a progress line. */
export function summaryFields(view: IndexStatusView): Record<string, unknown> {
  const fields: Record<string, unknown> = { index: view.index, phase: view.phase };
  if (view.generation !== undefined) fields.generation = view.generation;
  if (view.phase === 'snapshot') {
    fields.documents = view.snapshotDocuments;
    if (view.snapshotTotalEstimate !== undefined) fields.estimate = view.snapshotTotalEstimate;
    if (view.snapshotPercent !== undefined) fields.percent = view.snapshotPercent;
    if (view.snapshotEtaSeconds !== undefined) fields.etaSeconds = view.snapshotEtaSeconds;
  } else if (view.phase === 'streaming') {
    fields.changesApplied = view.changesApplied;
    if (view.lagSeconds !== undefined) fields.lagSeconds = view.lagSeconds;
    if (view.retainedWalBytes !== undefined) fields.retainedWalBytes = view.retainedWalBytes;
  }
  if (view.throughputDocsPerSecond !== undefined) fields.docsPerSecond = view.throughputDocsPerSecond;
  if (view.lastError !== undefined && view.phase === 'waiting') fields.lastError = view.lastError.code;
  return fields;
}

/** The human part: `snapshot 4,200/10,000 (42%), 2,400 docs/s, ETA 2m25s` or `streaming, lag 0.3s, 120 docs/s, WAL retained 1.2 MiB`. */
export function summaryMessage(view: IndexStatusView): string {
  const parts: string[] = [];
  const rate = view.throughputDocsPerSecond === undefined ? undefined : `${count(view.throughputDocsPerSecond)} docs/s`;
  if (view.phase === 'snapshot') {
    parts.push(
      view.snapshotTotalEstimate === undefined
        ? `snapshot ${count(view.snapshotDocuments)} documents`
        : `snapshot ${count(view.snapshotDocuments)}/${count(view.snapshotTotalEstimate)}${view.snapshotPercent === undefined ? '' : ` (${String(view.snapshotPercent)}%)`}`,
    );
    if (rate !== undefined) parts.push(rate);
    if (view.snapshotEtaSeconds !== undefined) parts.push(`ETA ${formatDuration(view.snapshotEtaSeconds)}`);
  } else if (view.phase === 'streaming') {
    parts.push('streaming');
    if (view.lagSeconds !== undefined) parts.push(`lag ${String(Math.round(view.lagSeconds * 10) / 10)}s`);
    if (rate !== undefined) parts.push(rate);
    if (view.retainedWalBytes !== undefined) parts.push(`WAL retained ${formatBytes(view.retainedWalBytes)}`);
  } else {
    parts.push(view.phase);
    if (view.phase === 'waiting' && view.lastError !== undefined) parts.push(`after ${view.lastError.code}`);
  }
  return parts.join(', ');
}

const BAR_WIDTH = 20;

/** One line for every index in its snapshot, cut to the terminal's width so that `\r` redraws it in place. */
export function formatBar(views: readonly IndexStatusView[], columns: number): string {
  const width = views.length === 1 ? BAR_WIDTH : Math.max(5, Math.floor(BAR_WIDTH / views.length));
  const text = views
    .map((view) => {
      const parts = [`[${view.index}]`];
      if (view.snapshotTotalEstimate !== undefined && view.snapshotPercent !== undefined) {
        const filled = Math.min(width, Math.floor((view.snapshotPercent / 100) * width));
        parts.push(`${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${view.snapshotPercent.toFixed(1).padStart(4)}%`);
        parts.push(`${count(view.snapshotDocuments)}/${count(view.snapshotTotalEstimate)}`);
      } else {
        parts.push(`${count(view.snapshotDocuments)} docs`);
      }
      if (view.throughputDocsPerSecond !== undefined) parts.push(`${count(view.throughputDocsPerSecond)}/s`);
      parts.push(`ETA ${view.snapshotEtaSeconds === undefined ? '?' : formatDuration(view.snapshotEtaSeconds)}`);
      return parts.join(' ');
    })
    .join('  |  ');
  // Writing into the last column would wrap the line on some terminals, and `\r` would then redraw only the tail.
  const room = Math.max(10, columns - 1);
  return text.length > room ? `${text.slice(0, room - 1)}…` : text;
}

/** `45s`, `4m05s`, `2h07m`. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${String(s)}s`;
  if (s < 3600) return `${String(Math.floor(s / 60))}m${String(s % 60).padStart(2, '0')}s`;
  return `${String(Math.floor(s / 3600))}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${String(value)} B` : `${value.toFixed(1)} ${units[unit] ?? ''}`;
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
