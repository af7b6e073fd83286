import { describe, expect, it } from 'vitest';
import {
  THROUGHPUT_WINDOW_MS,
  estimateSnapshot,
  newIndexStatus,
  recordSnapshotProgress,
  sampleThroughput,
  startSnapshotProgress,
  statusView,
  throughputOf,
} from '../../../src/pipeline/index-status.js';

const T0 = Date.parse('2024-05-01T10:00:00.000Z');

describe('estimateSnapshot', () => {
  it('gives the share done and the seconds left at the rate', () => {
    expect(estimateSnapshot(4_200, 10_000, 100)).toEqual({ percent: 42, etaSeconds: 58 });
    expect(estimateSnapshot(0, 10_000, undefined)).toEqual({ percent: 0 });
    expect(estimateSnapshot(10, 10_000, 0)).toEqual({ percent: 0.1 });
  });

  it('knows nothing without an estimate, and past a stale estimate stays under 100% with no time left', () => {
    expect(estimateSnapshot(500, undefined, 100)).toEqual({});
    expect(estimateSnapshot(500, 0, 100)).toEqual({});
    expect(estimateSnapshot(12_000, 10_000, 100)).toEqual({ percent: 99.9 });
    expect(estimateSnapshot(9_999, 10_000, 100)).toEqual({ percent: 99.9, etaSeconds: 1 });
  });
});

describe('throughput over a recent window', () => {
  it('is the documents written per second between the oldest and newest samples', () => {
    const status = newIndexStatus('books');
    startSnapshotProgress(status, 10_000, T0);
    expect(throughputOf(status)).toBeUndefined();
    recordSnapshotProgress(status, 1_000, T0 + 2_000);
    recordSnapshotProgress(status, 3_000, T0 + 4_000);
    expect(throughputOf(status)).toBe(750);
  });

  it('forgets samples older than the window, so a slowdown shows', () => {
    const status = newIndexStatus('books');
    startSnapshotProgress(status, 1_000_000, T0);
    for (let s = 1; s <= 60; s++) recordSnapshotProgress(status, s * 1_000, T0 + s * 1_000);
    expect(throughputOf(status)).toBe(1_000);
    // Then 60 s at 100 documents/s.
    for (let s = 61; s <= 120; s++) recordSnapshotProgress(status, 60_000 + (s - 60) * 100, T0 + s * 1_000);
    expect(throughputOf(status)).toBe(100);
  });

  it('counts streaming writes too, and falls when nothing is written', () => {
    const status = { ...newIndexStatus('books'), phase: 'streaming' as const };
    sampleThroughput(status, T0);
    status.documentsIndexed = 80;
    status.documentsDeleted = 20;
    sampleThroughput(status, T0 + 10_000);
    expect(throughputOf(status)).toBe(10);
    sampleThroughput(status, T0 + 20_000);
    expect(throughputOf(status)).toBe(5);
    sampleThroughput(status, T0 + 10_000 + THROUGHPUT_WINDOW_MS + 1_000);
    expect(throughputOf(status)).toBe(0);
  });

  it('starts over with a snapshot that starts over (its count drops to zero)', () => {
    const status = newIndexStatus('books');
    startSnapshotProgress(status, 100, T0);
    recordSnapshotProgress(status, 50, T0 + 1_000);
    recordSnapshotProgress(status, 0, T0 + 2_000);
    expect(throughputOf(status)).toBeUndefined();
    recordSnapshotProgress(status, 20, T0 + 4_000);
    expect(throughputOf(status)).toBe(10);
  });

  it('merges samples less than a second apart, keeping the window small', () => {
    const status = newIndexStatus('books');
    startSnapshotProgress(status, 100_000, T0);
    for (let ms = 1; ms <= 1_000; ms++) recordSnapshotProgress(status, ms, T0 + ms);
    expect(throughputOf(status)).toBe(1_000);
  });
});

describe('statusView', () => {
  it('adds the share done, the time left and the throughput during a snapshot', () => {
    const status = { ...newIndexStatus('books'), phase: 'snapshot' as const };
    startSnapshotProgress(status, 10_000, T0);
    recordSnapshotProgress(status, 2_000, T0 + 10_000);
    const view = statusView(status, T0 + 10_000);
    expect(view).toMatchObject({
      index: 'books',
      snapshotDocuments: 2_000,
      snapshotTotalEstimate: 10_000,
      snapshotStartedAt: '2024-05-01T10:00:00.000Z',
      snapshotPercent: 20,
      snapshotEtaSeconds: 40,
      throughputDocsPerSecond: 200,
    });
  });

  it('shows no snapshot figures outside the snapshot', () => {
    const status = { ...newIndexStatus('books'), phase: 'streaming' as const, snapshotDocuments: 10, snapshotTotalEstimate: 10 };
    const view = statusView(status, T0 + 5_000);
    expect(view.snapshotPercent).toBeUndefined();
    expect(view.snapshotEtaSeconds).toBeUndefined();
  });

  it('does not change the status it describes, apart from the throughput samples', () => {
    const status = { ...newIndexStatus('books'), phase: 'snapshot' as const };
    startSnapshotProgress(status, 10, T0);
    const before = JSON.stringify(status);
    statusView(status, T0 + 1_000);
    expect(JSON.stringify(status)).toBe(before);
  });
});
