/** What an index sync reports about itself, for logs now and the status surfaces (/status, /metrics). */
export interface IndexStatus {
  index: string;
  phase: 'starting' | 'standby' | 'snapshot' | 'streaming' | 'waiting' | 'stopped';
  /** While standing by: the process owning the index (its lease holder name). */
  owner?: string;
  /** Documents written by the snapshot so far. */
  snapshotDocuments: number;
  /** Root rows the current snapshot is expected to read: PostgreSQL's statistics, or a bounded count without them. */
  snapshotTotalEstimate?: number;
  /** When the current snapshot attempt started reading rows (its documents count from there). */
  snapshotStartedAt?: string;
  /** Row changes applied since start, and documents indexed/deleted by them. */
  changesApplied: number;
  documentsIndexed: number;
  documentsDeleted: number;
  /** Seconds from the commit of the newest applied transaction to its application (last batch). */
  lagSeconds?: number;
  /**
   * Commit time of the oldest transaction received and not yet applied, while there is one: a batch held up by the
   * engine or PostgreSQL makes the index fall behind with no batch completing to say so (see currentLagSeconds).
   */
  unappliedSince?: string;
  lastAppliedLsn?: string;
  lastCommitTime?: string;
  /** WAL the slot holds back, in bytes (polled every few seconds while streaming). */
  retainedWalBytes?: number;
  /** WAL between the server's current position and what the slot confirmed as applied (polled with retainedWalBytes). */
  lagBytes?: number;
  /** The slot is past max_wal_size and will be invalidated once it exceeds max_slot_wal_keep_size. */
  slotAtRisk: boolean;
  lastError?: { code: string; message: string; at: string };
  /** The physical index this sync writes to (the live generation behind the alias, or the one being built). */
  generation?: string;
  /** While a new generation is built beside the live one: its own status. */
  rebuild?: IndexStatus;
}

export function newIndexStatus(index: string): IndexStatus {
  return { index, phase: 'starting', snapshotDocuments: 0, changesApplied: 0, documentsIndexed: 0, documentsDeleted: 0, slotAtRisk: false };
}

/** An index's status as /status and the progress summary show it: the status plus figures computed when read. */
export interface IndexStatusView extends IndexStatus {
  /** Documents written per second (snapshot, indexed and deleted) over the last THROUGHPUT_WINDOW_MS. */
  throughputDocsPerSecond?: number;
  /** During a snapshot with an estimate: share of the estimate written, below 100 until the snapshot ends. */
  snapshotPercent?: number;
  /** During a snapshot: seconds left at the current rate; absent when unknown (no estimate or rate, or past the estimate). */
  snapshotEtaSeconds?: number;
}

export const THROUGHPUT_WINDOW_MS = 60_000;
/** Samples closer together than this are merged, so frequent progress calls keep the window small. */
const SAMPLE_SPACING_MS = 1_000;

interface Sample {
  at: number;
  documents: number;
}

// Kept beside the status rather than in it, so /status does not serialize the samples.
const windows = new WeakMap<IndexStatus, Sample[]>();

function documentsWritten(status: IndexStatus): number {
  return status.snapshotDocuments + status.documentsIndexed + status.documentsDeleted;
}

/**
 * Records the index's document count at `now` for the throughput window. Called on snapshot progress, by the
 * progress reporter every second and on every read of the view, so a stalled index shows its rate falling.
 */
export function sampleThroughput(status: IndexStatus, now: number = Date.now()): void {
  const documents = documentsWritten(status);
  let samples = windows.get(status);
  if (samples === undefined) {
    samples = [];
    windows.set(status, samples);
  }
  const last = samples.at(-1);
  // A snapshot started over counts from zero again: the old samples would make the rate negative.
  if (last !== undefined && (documents < last.documents || now < last.at)) samples.length = 0;
  const previous = samples.at(-2);
  if (previous !== undefined && now - previous.at < SAMPLE_SPACING_MS) samples[samples.length - 1] = { at: now, documents };
  else samples.push({ at: now, documents });
  // Keep one sample at or before the window's start, so the rate always spans the whole window once it can.
  while (samples.length > 2 && (samples[1]?.at ?? now) <= now - THROUGHPUT_WINDOW_MS) samples.shift();
}

/** Documents per second across the sampled window, or undefined before two samples a moment apart. */
export function throughputOf(status: IndexStatus): number | undefined {
  const samples = windows.get(status);
  const first = samples?.[0];
  const last = samples?.at(-1);
  if (first === undefined || last === undefined || last.at - first.at < 1) return undefined;
  return ((last.documents - first.documents) * 1000) / (last.at - first.at);
}

/** Marks the start of a snapshot attempt: its documents count from zero, against this estimate. */
export function startSnapshotProgress(status: IndexStatus, totalEstimate: number | undefined, now: number = Date.now()): void {
  status.snapshotDocuments = 0;
  status.snapshotStartedAt = new Date(now).toISOString();
  if (totalEstimate === undefined) delete status.snapshotTotalEstimate;
  else status.snapshotTotalEstimate = totalEstimate;
  windows.delete(status);
  sampleThroughput(status, now);
}

/** Documents the current snapshot attempt has written so far. */
export function recordSnapshotProgress(status: IndexStatus, documents: number, now: number = Date.now()): void {
  status.snapshotDocuments = documents;
  sampleThroughput(status, now);
}

export interface SnapshotEstimate {
  percent?: number;
  etaSeconds?: number;
}

/**
 * Progress against the estimate and time left at `docsPerSecond`. The estimate comes from table statistics,
 * so the count can pass it: the share then stays under 100 (the snapshot is not over) and the time left is unknown.
 */
export function estimateSnapshot(documents: number, totalEstimate: number | undefined, docsPerSecond: number | undefined): SnapshotEstimate {
  if (totalEstimate === undefined || totalEstimate <= 0) return {};
  const out: SnapshotEstimate = { percent: Math.min(99.9, Math.floor((documents / totalEstimate) * 1000) / 10) };
  if (documents < totalEstimate && docsPerSecond !== undefined && docsPerSecond > 0) {
    out.etaSeconds = Math.ceil((totalEstimate - documents) / docsPerSecond);
  }
  return out;
}

/**
 * How far behind the index is now: the seconds since the commit of the oldest transaction received and not yet
 * applied, when that is more than the last applied batch's lag (or there is none yet). Undefined while the stream
 * has neither applied a batch nor received one.
 */
export function currentLagSeconds(status: IndexStatus, now: number = Date.now()): number | undefined {
  if (status.unappliedSince === undefined) return status.lagSeconds;
  const pending = Math.max(0, Math.round((now - Date.parse(status.unappliedSince)) / 10) / 100);
  return status.lagSeconds === undefined ? pending : Math.max(status.lagSeconds, pending);
}

/**
 * The lag a generation hand-over may go by: only once this stream has applied a batch or idled. Work received first
 * is no proof of being caught up: it can be the newest commit with a backlog still to come behind it.
 */
export function knownLagSeconds(status: IndexStatus, now: number = Date.now()): number | undefined {
  return status.lagSeconds === undefined ? undefined : currentLagSeconds(status, now);
}

/** The status with its current lag, throughput, and during a snapshot its share done and time left, as of `now`. */
export function statusView(status: IndexStatus, now: number = Date.now()): IndexStatusView {
  sampleThroughput(status, now);
  const view: IndexStatusView = { ...status };
  const lag = currentLagSeconds(status, now);
  if (lag !== undefined) view.lagSeconds = lag;
  const rate = throughputOf(status);
  if (rate !== undefined) view.throughputDocsPerSecond = Math.round(rate * 10) / 10;
  if (status.phase === 'snapshot') {
    const { percent, etaSeconds } = estimateSnapshot(status.snapshotDocuments, status.snapshotTotalEstimate, rate ?? averageSnapshotRate(status, now));
    if (percent !== undefined) view.snapshotPercent = percent;
    if (etaSeconds !== undefined) view.snapshotEtaSeconds = etaSeconds;
  }
  if (status.rebuild !== undefined) view.rebuild = statusView(status.rebuild, now);
  return view;
}

function averageSnapshotRate(status: IndexStatus, now: number): number | undefined {
  if (status.snapshotStartedAt === undefined) return undefined;
  const seconds = (now - Date.parse(status.snapshotStartedAt)) / 1000;
  return seconds > 0 ? status.snapshotDocuments / seconds : undefined;
}
