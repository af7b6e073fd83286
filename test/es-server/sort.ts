import { dateToMillis } from './dates.js';
import { cause, EsError, illegalArgument, type Cause } from './errors.js';
import { isObject } from './context.js';
import { resolveField, type RootMapping } from './mapping-defs.js';
import { valuesAt } from './query.js';
import { sourceOf, type Doc, type IndexState } from './store.js';

export interface Hit {
  index: IndexState;
  /** Position of the index among the searched ones, the shard within it, then of the doc in the shard's snapshot: the `_doc` order. */
  indexOrder: number;
  shard: number;
  pos: number;
  doc: Doc;
  score: number;
  sortValues?: unknown[];
}

export interface SortKey {
  field: string;
  desc: boolean;
  missingFirst: boolean;
  kind: 'score' | 'doc' | 'id' | 'number' | 'string';
  mode?: string;
  unmappedType?: string;
}

const LONG_MAX = 9223372036854775807n;
const LONG_MIN = -9223372036854775808n;
const NUMERIC = new Set(['long', 'integer', 'short', 'byte', 'double', 'float', 'half_float', 'scaled_float', 'unsigned_long', 'date', 'date_nanos', 'boolean']);
const TEXT = new Set(['text', 'match_only_text', 'annotated_text', 'search_as_you_type']);

export function shardFailure(indices: IndexState[], inner: Cause, status = 400): EsError {
  return EsError.of(status, cause('search_phase_execution_exception', 'all shards failed', {
    phase: 'query',
    grouped: true,
    failed_shards: indices.slice(0, 1).map((i) => ({ shard: 0, index: i.name, node: 'es-test-node-id', reason: inner })),
  }, inner));
}

/** Normalises `sort` (strings, objects, arrays) and checks the fields against the mappings like ES's shards do. */
export function parseSort(spec: unknown, indices: IndexState[]): SortKey[] {
  if (spec === undefined || spec === null) return [];
  const list = Array.isArray(spec) ? spec : [spec];
  return list.map((entry) => {
    let field: string;
    let opts: Record<string, unknown> = {};
    if (typeof entry === 'string') {
      const [f, order] = entry.split(':');
      field = f as string;
      if (order) opts = { order };
    } else if (isObject(entry) && Object.keys(entry).length === 1) {
      field = Object.keys(entry)[0] as string;
      const v = entry[field];
      opts = typeof v === 'string' ? { order: v } : isObject(v) ? v : {};
    } else {
      throw illegalArgument('malformed sort format, within the sort array, an object, or an actual string are allowed');
    }
    if (opts.order !== undefined && opts.order !== 'asc' && opts.order !== 'desc') {
      throw illegalArgument(`Unknown SortOrder [${String(opts.order)}]`);
    }
    const desc = opts.order === undefined ? field === '_score' : opts.order === 'desc';
    const missingFirst = opts.missing === '_first';
    const base = { field, desc, missingFirst, mode: opts.mode as string | undefined, unmappedType: opts.unmapped_type as string | undefined };
    if (field === '_score') return { ...base, kind: 'score' };
    if (field === '_doc' || field === '_shard_doc') return { ...base, kind: 'doc' };
    if (field === '_id') return { ...base, kind: 'id' };
    let type: string | undefined;
    for (const index of indices) {
      const found = resolveField(index.mapping, field);
      if (!found) continue;
      type = found.def.type ?? 'object';
      if (TEXT.has(type) && found.def.fielddata !== true) {
        throw shardFailure(indices, cause('illegal_argument_exception', `Fielddata is disabled on [${field}] in [${index.name}]. Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [${field}] in order to load field data by uninverting the inverted index. Note that this can use significant memory.`));
      }
    }
    type ??= base.unmappedType;
    if (type === undefined && indices.length) {
      throw shardFailure(indices, cause('query_shard_exception', `No mapping found for [${field}] in order to sort on`, { index_uuid: indices[0]?.uuid, index: indices[0]?.name }));
    }
    return { ...base, kind: type !== undefined && NUMERIC.has(type) ? 'number' : 'string' };
  });
}

function fieldValue(key: SortKey, hit: Hit, mapping: RootMapping): unknown {
  const found = resolveField(mapping, key.field);
  const path = found?.sourcePath ?? key.field;
  const type = found?.def.type;
  let values = valuesAt(sourceOf(hit.doc), path).filter((v) => v !== null && typeof v !== 'object');
  if (!values.length) return undefined;
  if (key.kind === 'number') {
    const nums = values
      .map((v) => (type === 'date' || type === 'date_nanos' ? dateToMillis(v, found?.def.format as string | undefined) : type === 'boolean' ? (v === true || v === 'true' ? 1 : 0) : Number(v)))
      .filter((n) => !Number.isNaN(n));
    if (!nums.length) return undefined;
    const mode = key.mode ?? (key.desc ? 'max' : 'min');
    if (mode === 'sum') return nums.reduce((a, b) => a + b, 0);
    if (mode === 'avg') return nums.reduce((a, b) => a + b, 0) / nums.length;
    return mode === 'max' ? Math.max(...nums) : Math.min(...nums);
  }
  values = values.map(String).sort();
  return key.desc && key.mode !== 'min' ? values[values.length - 1] : values[0];
}

/** Sort values as ES reports them in `hits[].sort` (missing numbers become Long.MAX/MIN like Lucene's sentinels). */
export function sortValuesFor(keys: SortKey[], hit: Hit): unknown[] {
  return keys.map((key) => {
    switch (key.kind) {
      case 'score':
        return hit.score;
      case 'doc':
        return hit.pos;
      case 'id':
        return hit.doc.id;
      default: {
        const v = fieldValue(key, hit, hit.index.mapping);
        if (v !== undefined) return v;
        if (key.kind === 'number') return key.desc !== key.missingFirst ? LONG_MIN : LONG_MAX;
        return null;
      }
    }
  });
}

function cmpValue(a: unknown, b: unknown): number {
  const na = typeof a === 'bigint' ? Number(a) : a;
  const nb = typeof b === 'bigint' ? Number(b) : b;
  if (typeof na === 'number' && typeof nb === 'number') return na - nb;
  const sa = String(na);
  const sb = String(nb);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** Compares two sort tuples; missing values (null or sentinels) honour `missing`. */
export function compareTuples(keys: SortKey[], a: unknown[], b: unknown[]): number {
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as SortKey;
    const va = a[i];
    const vb = b[i];
    const aMissing = va === null || va === undefined;
    const bMissing = vb === null || vb === undefined;
    if (aMissing || bMissing) {
      if (aMissing && bMissing) continue;
      return (aMissing ? 1 : -1) * (key.missingFirst ? -1 : 1);
    }
    const c = cmpValue(va, vb);
    if (c !== 0) return key.desc ? -c : c;
  }
  return 0;
}

export function sortHits(keys: SortKey[], hits: Hit[]): void {
  // Ties go to the lower shard (indices in order, then their shards), then the lower doc, like Lucene's TopDocs.merge.
  const byDoc = (a: Hit, b: Hit): number => a.indexOrder - b.indexOrder || a.shard - b.shard || a.pos - b.pos;
  if (!keys.length) {
    // Every hit of one query has the same constant score here, so collection order is already the result order.
    if (hits.some((h) => h.score !== hits[0]?.score)) hits.sort((a, b) => b.score - a.score || byDoc(a, b));
    return;
  }
  for (const hit of hits) hit.sortValues = sortValuesFor(keys, hit);
  hits.sort((a, b) => compareTuples(keys, a.sortValues as unknown[], b.sortValues as unknown[]) || byDoc(a, b));
}
