import { describe, expect, it } from 'vitest';
import { BULK_DURATION_BUCKETS, MetricsRegistry, SluiceMetrics, renderMetrics } from '../../../src/observability/metrics.js';
import { newIndexStatus, type IndexStatus } from '../../../src/pipeline/index-status.js';

interface ParsedSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface ParsedExposition {
  help: Map<string, string>;
  type: Map<string, string>;
  samples: ParsedSample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** A strict parser for the subset of the text format 0.0.4 that sluice writes; throws on any other line. */
function parseExposition(text: string): ParsedExposition {
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples: ParsedSample[] = [];
  expect(text.endsWith('\n')).toBe(true);
  for (const line of text.slice(0, -1).split('\n')) {
    const meta = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) throw new Error(`bad name in ${line}`);
      const map = kind === 'HELP' ? help : type;
      if (map.has(name)) throw new Error(`duplicate ${kind} for ${name}`);
      if (kind === 'TYPE' && !['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) throw new Error(`bad type ${line}`);
      map.set(name, rest);
      continue;
    }
    const m = /^([^\s{]+)(\{(.*)\})? (\S+)$/.exec(line);
    if (m === null) throw new Error(`unparseable line: ${JSON.stringify(line)}`);
    const name = m[1] ?? '';
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    const labels: Record<string, string> = {};
    let rest = m[3] ?? '';
    while (rest !== '') {
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/.exec(rest);
      if (lm === null) throw new Error(`bad labels in ${line}`);
      labels[lm[1] ?? ''] = (lm[2] ?? '').replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(lm[0].length);
    }
    const raw = m[4] ?? '';
    const value = raw === '+Inf' ? Infinity : raw === '-Inf' ? -Infinity : Number(raw);
    if (raw !== 'NaN' && Number.isNaN(value)) throw new Error(`bad value in ${line}`);
    samples.push({ name, labels, value });
  }
  return { help, type, samples };
}

/** Every sample belongs to a family with HELP and TYPE; histogram buckets are cumulative and +Inf equals _count. */
function checkExposition(parsed: ParsedExposition): void {
  const familyOf = (name: string): string => {
    if (parsed.type.has(name)) return name;
    const base = name.replace(/_(bucket|sum|count)$/, '');
    if (parsed.type.get(base) === 'histogram') return base;
    throw new Error(`sample ${name} has no TYPE`);
  };
  for (const s of parsed.samples) {
    const family = familyOf(s.name);
    expect(parsed.help.has(family), `HELP for ${family}`).toBe(true);
  }
  for (const [family, type] of parsed.type) {
    expect(parsed.help.has(family)).toBe(true);
    if (type !== 'histogram') continue;
    const groups = new Map<string, ParsedSample[]>();
    for (const s of parsed.samples.filter((x) => x.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = s.labels;
      const key = JSON.stringify(rest);
      groups.set(key, [...(groups.get(key) ?? []), s]);
    }
    for (const [key, buckets] of groups) {
      let previousLe = -Infinity;
      let previous = 0;
      for (const b of buckets) {
        const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
        expect(le).toBeGreaterThan(previousLe);
        expect(b.value).toBeGreaterThanOrEqual(previous);
        previousLe = le;
        previous = b.value;
      }
      expect(previousLe).toBe(Infinity);
      const count = parsed.samples.find((x) => x.name === `${family}_count` && JSON.stringify(x.labels) === key);
      expect(count?.value).toBe(previous);
      expect(parsed.samples.some((x) => x.name === `${family}_sum` && JSON.stringify(x.labels) === key)).toBe(true);
    }
  }
}

function value(parsed: ParsedExposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return parsed.samples.find((s) => s.name === name && JSON.stringify(s.labels) === JSON.stringify(labels))?.value;
}

function status(index: string, patch: Partial<IndexStatus> = {}): IndexStatus {
  return { ...newIndexStatus(index), ...patch };
}

describe('renderMetrics', () => {
  it('derives the per-index series from the statuses', () => {
    const text = renderMetrics([
      status('books', {
        phase: 'streaming',
        snapshotDocuments: 120,
        snapshotTotalEstimate: 150,
        changesApplied: 7,
        documentsIndexed: 5,
        documentsDeleted: 2,
        lagSeconds: 0.25,
        retainedWalBytes: 4096,
        lagBytes: 1234,
      }),
      status('authors'),
    ]);
    const parsed = parseExposition(text);
    checkExposition(parsed);
    expect(value(parsed, 'sluice_up')).toBe(1);
    expect(value(parsed, 'sluice_documents_indexed_total', { index: 'books' })).toBe(5);
    expect(value(parsed, 'sluice_documents_deleted_total', { index: 'books' })).toBe(2);
    expect(value(parsed, 'sluice_changes_applied_total', { index: 'books' })).toBe(7);
    expect(value(parsed, 'sluice_snapshot_documents', { index: 'books' })).toBe(120);
    expect(value(parsed, 'sluice_snapshot_total_documents', { index: 'books' })).toBe(150);
    expect(parsed.type.get('sluice_snapshot_total_documents')).toBe('gauge');
    expect(parsed.help.get('sluice_snapshot_total_documents')).toMatch(/estimated/i);
    expect(value(parsed, 'sluice_lag_seconds', { index: 'books' })).toBe(0.25);
    expect(value(parsed, 'sluice_retained_wal_bytes', { index: 'books' })).toBe(4096);
    expect(value(parsed, 'sluice_replication_lag_bytes', { index: 'books' })).toBe(1234);
    expect(value(parsed, 'sluice_replication_lag_bytes', { index: 'authors' })).toBeUndefined();
    // Unknown gauges are absent rather than 0.
    expect(value(parsed, 'sluice_lag_seconds', { index: 'authors' })).toBeUndefined();
    expect(value(parsed, 'sluice_retained_wal_bytes', { index: 'authors' })).toBeUndefined();
    expect(value(parsed, 'sluice_snapshot_total_documents', { index: 'authors' })).toBeUndefined();
    for (const phase of ['starting', 'snapshot', 'streaming', 'waiting', 'stopped']) {
      expect(value(parsed, 'sluice_phase', { index: 'books', phase })).toBe(phase === 'streaming' ? 1 : 0);
      expect(value(parsed, 'sluice_phase', { index: 'authors', phase })).toBe(phase === 'starting' ? 1 : 0);
    }
    expect(parsed.type.get('sluice_documents_indexed_total')).toBe('counter');
    expect(parsed.type.get('sluice_lag_seconds')).toBe('gauge');
  });

  it('shows both generations while a rebuild runs', () => {
    const rebuild = status('books', { phase: 'snapshot', snapshotDocuments: 40, snapshotTotalEstimate: 100, generation: 'books-bbb' });
    const parsed = parseExposition(renderMetrics([status('books', { phase: 'streaming', generation: 'books-aaa', rebuild }), status('authors', { generation: 'authors-ccc' })]));
    checkExposition(parsed);
    expect(value(parsed, 'sluice_generation_info', { index: 'books', generation: 'books-aaa', role: 'live' })).toBe(1);
    expect(value(parsed, 'sluice_generation_info', { index: 'books', generation: 'books-bbb', role: 'rebuild' })).toBe(1);
    expect(value(parsed, 'sluice_generation_info', { index: 'authors', generation: 'authors-ccc', role: 'live' })).toBe(1);
    expect(value(parsed, 'sluice_rebuild_snapshot_documents', { index: 'books' })).toBe(40);
    expect(value(parsed, 'sluice_rebuild_snapshot_total_documents', { index: 'books' })).toBe(100);
    expect(value(parsed, 'sluice_rebuild_snapshot_documents', { index: 'authors' })).toBeUndefined();
  });

  it('adds the pipeline counters, gauges and the bulk latency histogram', () => {
    const metrics = new SluiceMetrics();
    metrics.recordBulk('books', { deadLettered: 0 }, 0.003);
    metrics.recordBulk('books', { deadLettered: 3 }, 0.07);
    metrics.recordBulk('books', { deadLettered: 0 }, 42);
    metrics.recordError('books', 'ENGINE_UNAVAILABLE');
    metrics.recordError('books', 'ENGINE_UNAVAILABLE');
    const parsed = parseExposition(renderMetrics([status('books')], { metrics }));
    checkExposition(parsed);
    expect(value(parsed, 'sluice_dead_letters_total', { index: 'books' })).toBe(3);
    expect(value(parsed, 'sluice_errors_total', { index: 'books', code: 'ENGINE_UNAVAILABLE' })).toBe(2);
    const buckets = parsed.samples.filter((s) => s.name === 'sluice_bulk_request_duration_seconds_bucket');
    expect(buckets.map((b) => b.labels.le)).toEqual([...BULK_DURATION_BUCKETS.map(String), '+Inf']);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_bucket', { le: '0.005' })).toBe(1);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_bucket', { le: '0.1' })).toBe(2);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_bucket', { le: '10' })).toBe(2);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_bucket', { le: '+Inf' })).toBe(3);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_count')).toBe(3);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_sum')).toBeCloseTo(42.073);
  });

  it('exports an empty histogram with zero counts and HELP/TYPE for families without samples', () => {
    const parsed = parseExposition(renderMetrics([], { metrics: new SluiceMetrics() }));
    checkExposition(parsed);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_bucket', { le: '+Inf' })).toBe(0);
    expect(value(parsed, 'sluice_bulk_request_duration_seconds_count')).toBe(0);
    expect(parsed.type.get('sluice_errors_total')).toBe('counter');
    expect(parsed.help.has('sluice_dead_letters_total')).toBe(true);
  });

  it('escapes label values and HELP text', () => {
    const registry = new MetricsRegistry();
    registry.counter('x_total', 'a \\ help\nline', ['l']).inc({ l: 'q"uo\\te\nnl' }, 2);
    const text = registry.render();
    expect(text).toContain('# HELP x_total a \\\\ help\\nline\n');
    expect(text).toContain('x_total{l="q\\"uo\\\\te\\nnl"} 2\n');
    const parsed = parseExposition(text);
    expect(parsed.samples[0]?.labels.l).toBe('q"uo\\te\nnl');
    const odd = parseExposition(renderMetrics([status('we"ird\\in\ndex')]));
    checkExposition(odd);
    expect(value(odd, 'sluice_documents_indexed_total', { index: 'we"ird\\in\ndex' })).toBe(0);
  });

  it('rejects invalid names, unknown labels and decreasing counters', () => {
    const registry = new MetricsRegistry();
    expect(() => registry.counter('bad-name', 'h')).toThrow(/invalid metric name/);
    expect(() => registry.gauge('g', 'h', ['__reserved'])).toThrow(/invalid label name/);
    const c = registry.counter('c_total', 'h', ['a']);
    expect(() => c.inc({ b: 'x' })).toThrow(/no label/);
    expect(() => c.inc({ a: 'x' }, -1)).toThrow(/only increase/);
    expect(() => registry.counter('c_total', 'h')).toThrow(/already registered/);
    expect(() => registry.histogram('h', 'h', [1, 0.5])).toThrow(/increase/);
  });
});
