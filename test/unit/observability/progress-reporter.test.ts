import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';
import { formatBar, formatDuration, startProgressReporter, summaryMessage, type ProgressLogger } from '../../../src/observability/progress-reporter.js';
import { newIndexStatus, recordSnapshotProgress, startSnapshotProgress, statusView, type IndexStatus } from '../../../src/pipeline/index-status.js';
import { CONTROL, RecordingStream } from './fake-streams.js';

const T0 = Date.parse('2024-05-01T10:00:00.000Z');

function recordingLogger(): ProgressLogger & { lines: { obj: Record<string, unknown>; msg: string | undefined }[] } {
  const lines: { obj: Record<string, unknown>; msg: string | undefined }[] = [];
  return { lines, info: (obj, msg) => lines.push({ obj: obj as Record<string, unknown>, msg }) };
}

function snapshotting(index: string, estimate: number | undefined): IndexStatus {
  const status: IndexStatus = { ...newIndexStatus(index), phase: 'snapshot' };
  startSnapshotProgress(status, estimate, Date.now());
  return status;
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(T0);
});

afterEach(() => {
  vi.useRealTimers();
});

describe('startProgressReporter without a terminal', () => {
  it('logs one summary line per index every interval and writes nothing to the stream', () => {
    const stderr = new RecordingStream(false);
    const logger = recordingLogger();
    const books = snapshotting('books', 10_000);
    const shops: IndexStatus = { ...newIndexStatus('shops'), phase: 'streaming', lagSeconds: 0.42, retainedWalBytes: 3 * 1024 * 1024 };
    const reporter = startProgressReporter({ statuses: () => [books, shops], logger, intervalMs: 30_000, tty: stderr.asWriteStream() });
    vi.advanceTimersByTime(10_000);
    recordSnapshotProgress(books, 2_500);
    vi.advanceTimersByTime(19_999);
    expect(logger.lines).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(logger.lines).toHaveLength(2);
    const [first, second] = logger.lines;
    expect(first?.obj).toMatchObject({ index: 'books', phase: 'snapshot', documents: 2_500, estimate: 10_000, percent: 25 });
    expect(typeof first?.obj.etaSeconds).toBe('number');
    expect(first?.msg).toMatch(/^snapshot 2,500\/10,000 \(25%\), [\d,]+ docs\/s, ETA \d/);
    expect(second?.obj).toMatchObject({ index: 'shops', phase: 'streaming', lagSeconds: 0.42, retainedWalBytes: 3 * 1024 * 1024 });
    expect(second?.msg).toBe('streaming, lag 0.4s, 0 docs/s, WAL retained 3.0 MiB');
    vi.advanceTimersByTime(30_000);
    expect(logger.lines).toHaveLength(4);
    reporter.stop();
    vi.advanceTimersByTime(60_000);
    expect(logger.lines).toHaveLength(4);
    expect(stderr.writes).toEqual([]);
  });

  it('reports a generation being rebuilt beside the live one', () => {
    const logger = recordingLogger();
    const rebuild = { ...snapshotting('books', 1_000), generation: 'books-new' };
    const books: IndexStatus = { ...newIndexStatus('books'), phase: 'streaming', generation: 'books-old', rebuild };
    const reporter = startProgressReporter({ statuses: () => [books], logger, intervalMs: 30_000 });
    recordSnapshotProgress(rebuild, 400);
    vi.advanceTimersByTime(30_000);
    reporter.stop();
    expect(logger.lines.map((l) => l.obj)).toEqual([
      expect.objectContaining({ index: 'books', generation: 'books-old', phase: 'streaming' }),
      expect.objectContaining({ index: 'books', generation: 'books-new', phase: 'snapshot', documents: 400, estimate: 1_000 }),
    ]);
  });

  it('pipes real log lines as JSON with no control characters', () => {
    const stderr = new RecordingStream(false);
    const logger = createLogger({ level: 'info', destination: stderr });
    const books = snapshotting('books', 100);
    const reporter = startProgressReporter({ statuses: () => [books], logger, intervalMs: 5_000, tty: stderr.asWriteStream() });
    vi.advanceTimersByTime(5_000);
    recordSnapshotProgress(books, 40);
    vi.advanceTimersByTime(5_000);
    reporter.stop();
    const lines = stderr.text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ index: 'books', phase: 'snapshot' });
    expect(stderr.text).not.toMatch(CONTROL);
  });
});

describe('startProgressReporter on a terminal', () => {
  it('draws a bar with the time left every second during the snapshot, in place of the summary line', () => {
    const tty = new RecordingStream(true);
    const logger = recordingLogger();
    const books = snapshotting('books', 1_000);
    const reporter = startProgressReporter({ statuses: () => [books], logger, intervalMs: 30_000, tty: tty.asWriteStream() });
    expect(tty.writes).toEqual([]);
    vi.advanceTimersByTime(4_000);
    recordSnapshotProgress(books, 400);
    vi.advanceTimersByTime(1_000);
    const last = tty.writes.at(-1) ?? '';
    expect(last.startsWith('\r\x1b[K[books] ')).toBe(true);
    expect(last).toContain('40.0%');
    expect(last).toContain('400/1,000');
    expect(last).toMatch(/ETA \d+s$/);
    expect(last).not.toContain('\n');
    expect(tty.writes).toHaveLength(5);
    vi.advanceTimersByTime(30_000);
    expect(logger.lines).toEqual([]);

    // Snapshot over: the bar is erased and the summary lines come back.
    books.phase = 'streaming';
    vi.advanceTimersByTime(1_000);
    expect(tty.writes.at(-1)).toBe('\r\x1b[K');
    const count = tty.writes.length;
    vi.advanceTimersByTime(30_000);
    expect(tty.writes).toHaveLength(count);
    expect(logger.lines.map((l) => l.obj.phase)).toEqual(['streaming']);
    reporter.stop();
  });

  it('erases the bar on stop', () => {
    const tty = new RecordingStream(true);
    const books = snapshotting('books', undefined);
    const reporter = startProgressReporter({ statuses: () => [books], logger: recordingLogger(), intervalMs: 30_000, tty: tty.asWriteStream() });
    vi.advanceTimersByTime(1_000);
    expect(tty.writes.at(-1)).toBe('\r\x1b[K[books] 0 docs 0/s ETA ?');
    reporter.stop();
    expect(tty.writes.at(-1)).toBe('\r\x1b[K');
  });

  it('keeps log lines above the bar', () => {
    const tty = new RecordingStream(true);
    const logger = createLogger({ level: 'info', destination: tty });
    const books = snapshotting('books', 10);
    const reporter = startProgressReporter({ statuses: () => [books], logger, intervalMs: 30_000, tty: tty.asWriteStream() });
    vi.advanceTimersByTime(1_000);
    logger.info({ index: 'books' }, 'chunk');
    expect(tty.writes.at(-1)).toMatch(/^\r\x1b\[K\d\d:\d\d:\d\d .*\[books\] chunk\n\[books\] .*ETA/);
    reporter.stop();
  });

  it('draws no bar on a terminal whose logger is forced to JSON', () => {
    const tty = new RecordingStream(true);
    const logger = createLogger({ level: 'info', destination: tty, format: 'json' });
    const books = snapshotting('books', 10);
    const reporter = startProgressReporter({ statuses: () => [books], logger, intervalMs: 2_000, tty: tty.asWriteStream() });
    vi.advanceTimersByTime(2_000);
    reporter.stop();
    expect(tty.text).not.toMatch(CONTROL);
    expect(JSON.parse(tty.text)).toMatchObject({ index: 'books', phase: 'snapshot' });
  });
});

describe('formatting', () => {
  it('cuts the bar to the terminal width', () => {
    const views = ['a_long_index_name', 'another_long_index_name'].map((index) => {
      const status = { ...newIndexStatus(index), phase: 'snapshot' as const };
      startSnapshotProgress(status, 1_000_000, T0);
      recordSnapshotProgress(status, 123_456, T0 + 10_000);
      return statusView(status, T0 + 10_000);
    });
    const bar = formatBar(views, 60);
    expect(bar.length).toBe(59);
    expect(bar.endsWith('…')).toBe(true);
    expect(formatBar(views, 300)).toMatch(/^\[a_long_index_name\] █░{9} 12\.3% 123,456\/1,000,000 12,346\/s ETA 1m12s {2}\| {2}\[another_long_index_name\] /);
  });

  it('writes durations for people', () => {
    expect([0, 45, 60, 245, 3_599, 3_600, 7_620].map(formatDuration)).toEqual(['0s', '45s', '1m00s', '4m05s', '59m59s', '1h00m', '2h07m']);
  });

  it('summarizes the other phases', () => {
    const waiting = statusView({ ...newIndexStatus('books'), phase: 'waiting', lastError: { code: 'SNK_CONNECT', message: 'x', at: '' } }, T0);
    expect(summaryMessage(waiting)).toBe('waiting, after SNK_CONNECT');
    expect(summaryMessage(statusView(newIndexStatus('books'), T0))).toBe('starting');
  });
});
