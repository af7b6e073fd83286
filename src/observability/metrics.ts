import { currentLagSeconds, type IndexStatus } from '../pipeline/index-status.js';
import type { BulkStats } from '../sink/document-sink.js';

/**
 * A tiny metrics registry (counters, gauges, fixed-bucket histograms) rendered in the Prometheus text exposition
 * format 0.0.4, without a client library. `SluiceMetrics` holds what the pipeline reports as it happens (bulk
 * latency, dead letters, errors, replication lag); `renderMetrics` adds the per-index series derived from
 * `IndexStatus` snapshots at scrape time.
 */

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'histogram';

/** Content type of the 0.0.4 text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Upper bounds, in seconds, of the bulk request latency histogram. */
export const BULK_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

interface Sample {
  /** Suffix appended to the family name (`_bucket`, `_sum`, `_count`), or ''. */
  suffix: string;
  labels: Labels;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples(): Sample[];
}

abstract class LabelledMetric implements Family {
  abstract readonly type: MetricType;
  protected readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    checkNames(name, labelNames);
  }

  protected entry(labels: Labels): { labels: Labels; value: number } {
    const key = labelKey(this.name, this.labelNames, labels);
    let entry = this.values.get(key);
    if (entry === undefined) {
      entry = { labels: pick(this.labelNames, labels), value: 0 };
      this.values.set(key, entry);
    }
    return entry;
  }

  /** The current value for these labels, or undefined when never set. */
  get(labels: Labels = {}): number | undefined {
    return this.values.get(labelKey(this.name, this.labelNames, labels))?.value;
  }

  samples(): Sample[] {
    return [...this.values.values()].map(({ labels, value }) => ({ suffix: '', labels, value }));
  }
}

export class Counter extends LabelledMetric {
  readonly type = 'counter' as const;

  inc(labels: Labels = {}, value = 1): void {
    if (!(value >= 0)) throw new RangeError(`counter ${this.name} can only increase (got ${String(value)})`);
    this.entry(labels).value += value;
  }
}

export class Gauge extends LabelledMetric {
  readonly type = 'gauge' as const;

  set(labels: Labels, value: number): void {
    this.entry(labels).value = value;
  }

  /** Forgets the series for these labels, so it is absent from the output (value no longer known). */
  remove(labels: Labels): void {
    this.values.delete(labelKey(this.name, this.labelNames, labels));
  }
}

interface HistogramSeries {
  labels: Labels;
  /** Non-cumulative count per bucket; cumulated when rendered. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram implements Family {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  private readonly series = new Map<string, HistogramSeries>();

  constructor(
    readonly name: string,
    readonly help: string,
    buckets: readonly number[],
    readonly labelNames: readonly string[] = [],
  ) {
    checkNames(name, labelNames);
    if (labelNames.includes('le')) throw new Error(`histogram ${name} cannot use the label "le"`);
    for (let i = 1; i < buckets.length; i++) {
      if (!((buckets[i] ?? NaN) > (buckets[i - 1] ?? NaN))) throw new Error(`histogram ${name}: buckets must increase`);
    }
    this.buckets = buckets.filter((b) => b !== Infinity);
    // An unlabelled histogram is exported with zero counts from the start.
    if (labelNames.length === 0) this.seriesFor({});
  }

  observe(value: number, labels: Labels = {}): void {
    if (Number.isNaN(value)) return;
    const series = this.seriesFor(labels);
    const i = this.buckets.findIndex((bound) => value <= bound);
    const slot = i < 0 ? this.buckets.length : i;
    series.counts[slot] = (series.counts[slot] ?? 0) + 1;
    series.sum += value;
    series.count += 1;
  }

  private seriesFor(labels: Labels): HistogramSeries {
    const key = labelKey(this.name, this.labelNames, labels);
    let series = this.series.get(key);
    if (series === undefined) {
      series = { labels: pick(this.labelNames, labels), counts: new Array<number>(this.buckets.length + 1).fill(0), sum: 0, count: 0 };
      this.series.set(key, series);
    }
    return series;
  }

  samples(): Sample[] {
    const out: Sample[] = [];
    for (const { labels, counts, sum, count } of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((bound, i) => {
        cumulative += counts[i] ?? 0;
        out.push({ suffix: '_bucket', labels: { ...labels, le: formatValue(bound) }, value: cumulative });
      });
      out.push({ suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: count });
      out.push({ suffix: '_sum', labels, value: sum });
      out.push({ suffix: '_count', labels, value: count });
    }
    return out;
  }
}

/** A set of metric families, rendered in registration order. */
export class MetricsRegistry {
  private readonly families = new Map<string, Family>();

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames));
  }

  histogram(name: string, help: string, buckets: readonly number[], labelNames: readonly string[] = []): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames));
  }

  private add<F extends Family>(family: F): F {
    if (this.families.has(family.name)) throw new Error(`metric ${family.name} is already registered`);
    this.families.set(family.name, family);
    return family;
  }

  render(): string {
    return [...this.families.values()].map(renderFamily).join('');
  }
}

/** What the pipeline reports as it happens; the lead creates one per process and hands it to the HTTP server. */
export class SluiceMetrics {
  readonly registry = new MetricsRegistry();
  readonly deadLetters = this.registry.counter('sluice_dead_letters_total', 'Actions that failed permanently and went to the dead-letter store.', ['index']);
  readonly errors = this.registry.counter('sluice_errors_total', 'Errors met while syncing, by error code.', ['index', 'code']);
  readonly bulkDuration = this.registry.histogram(
    'sluice_bulk_request_duration_seconds',
    'Duration of bulk requests to the search engine, in seconds.',
    BULK_DURATION_BUCKETS,
  );

  /** One bulk request: its latency, and the dead letters it produced. */
  recordBulk(index: string, stats: Pick<BulkStats, 'deadLettered'>, durationSeconds: number): void {
    this.bulkDuration.observe(durationSeconds);
    if (stats.deadLettered > 0) this.deadLetters.inc({ index }, stats.deadLettered);
  }

  recordError(index: string, code: string): void {
    this.errors.inc({ index, code });
  }
}

export interface RenderMetricsExtra {
  /** Counters, gauges and histograms reported by the pipeline; absent means only the status-derived series. */
  metrics?: SluiceMetrics;
}

const PHASES: readonly IndexStatus['phase'][] = ['starting', 'standby', 'snapshot', 'streaming', 'waiting', 'stopped'];

/**
 * The whole exposition: `sluice_up`, the per-index series derived from the status snapshots (one per index; a
 * repeated index keeps its last status), then the pipeline's own counters, gauges and histograms.
 */
export function renderMetrics(statuses: readonly IndexStatus[], extra: RenderMetricsExtra = {}): string {
  const byIndex = new Map<string, IndexStatus>();
  for (const status of statuses) byIndex.set(status.index, status);
  const all = [...byIndex.values()];

  const derived = new MetricsRegistry();
  derived.gauge('sluice_up', 'Whether the sluice process is running (always 1 when scraped).').set({}, 1);
  const perIndex = (
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    value: (status: IndexStatus) => number | undefined,
  ): void => {
    const metric = kind === 'counter' ? derived.counter(name, help, ['index']) : derived.gauge(name, help, ['index']);
    for (const status of all) {
      const v = value(status);
      if (v === undefined) continue;
      if (metric instanceof Counter) metric.inc({ index: status.index }, Math.max(0, v));
      else metric.set({ index: status.index }, v);
    }
  };
  perIndex('counter', 'sluice_documents_indexed_total', 'Documents indexed by applied changes since start.', (s) => s.documentsIndexed);
  perIndex('counter', 'sluice_documents_deleted_total', 'Documents deleted by applied changes since start.', (s) => s.documentsDeleted);
  perIndex('counter', 'sluice_changes_applied_total', 'Row changes applied since start.', (s) => s.changesApplied);
  perIndex('gauge', 'sluice_snapshot_documents', 'Documents written by the snapshot so far.', (s) => s.snapshotDocuments);
  perIndex('gauge', 'sluice_snapshot_total_documents', 'Estimated root rows the current snapshot reads (from PostgreSQL statistics).', (s) => s.snapshotTotalEstimate);
  perIndex('gauge', 'sluice_lag_seconds', 'How far behind the index is: seconds since the commit of the oldest transaction received and not yet applied, or, with none, from the commit of the newest applied one to its application.', (s) => currentLagSeconds(s));
  perIndex('gauge', 'sluice_replication_lag_bytes', 'WAL bytes between the server\'s current position and what the slot has confirmed as applied (polled every few seconds).', (s) => s.lagBytes);
  perIndex('gauge', 'sluice_retained_wal_bytes', 'WAL the replication slot holds back, in bytes.', (s) => s.retainedWalBytes);
  const generations = derived.gauge('sluice_generation_info', 'Physical index (generation) each index writes to: role "live" is behind the alias, "rebuild" is being built beside it.', ['index', 'generation', 'role']);
  for (const status of all) {
    if (status.generation !== undefined) generations.set({ index: status.index, generation: status.generation, role: 'live' }, 1);
    if (status.rebuild?.generation !== undefined) generations.set({ index: status.index, generation: status.rebuild.generation, role: 'rebuild' }, 1);
  }
  perIndex('gauge', 'sluice_rebuild_snapshot_documents', 'Documents the snapshot of a generation being rebuilt has written so far.', (s) => s.rebuild?.snapshotDocuments);
  perIndex('gauge', 'sluice_rebuild_snapshot_total_documents', 'Estimated root rows the snapshot of a generation being rebuilt reads.', (s) => s.rebuild?.snapshotTotalEstimate);
  perIndex('gauge', 'sluice_rebuild_lag_seconds', 'Replication lag of a generation being rebuilt; it takes over once this is small.', (s) => (s.rebuild === undefined ? undefined : currentLagSeconds(s.rebuild)));
  const phase = derived.gauge('sluice_phase', 'Current phase of the index sync (1 for the current phase, 0 for the others).', ['index', 'phase']);
  for (const status of all) {
    for (const p of PHASES) phase.set({ index: status.index, phase: p }, status.phase === p ? 1 : 0);
  }

  return derived.render() + (extra.metrics?.registry.render() ?? '');
}

function renderFamily(family: Family): string {
  let text = `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`;
  for (const sample of family.samples()) {
    text += `${family.name}${sample.suffix}${renderLabels(sample.labels)} ${formatValue(sample.value)}\n`;
  }
  return text;
}

function renderLabels(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',')}}`;
}

/** Label values escape backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes backslash and line feed. */
function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function checkNames(name: string, labelNames: readonly string[]): void {
  if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
  for (const label of labelNames) {
    if (!LABEL_NAME.test(label) || label.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(label)} on ${name}`);
  }
}

function pick(labelNames: readonly string[], labels: Labels): Labels {
  const out: Record<string, string> = {};
  for (const name of labelNames) out[name] = labels[name] ?? '';
  return out;
}

function labelKey(metric: string, labelNames: readonly string[], labels: Labels): string {
  for (const name of Object.keys(labels)) {
    if (!labelNames.includes(name)) throw new Error(`metric ${metric} has no label ${JSON.stringify(name)}`);
  }
  return JSON.stringify(labelNames.map((name) => labels[name] ?? ''));
}
