import { illegalArgument } from './errors.js';

export type SettingValue = string | string[];
/** Flat settings keyed like `index.number_of_shards`, values as strings (ES keeps settings as strings). */
export type FlatSettings = Map<string, SettingValue>;

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Accepts nested (`{index:{number_of_shards:1}}`), flat (`{number_of_shards:1}`) and dotted keys alike. */
export function flattenSettings(input: unknown): Map<string, SettingValue | null> {
  const out = new Map<string, SettingValue | null>();
  const walk = (value: unknown, prefix: string): void => {
    if (isPlainObject(value)) {
      for (const [k, v] of Object.entries(value)) walk(v, prefix ? `${prefix}.${k}` : k);
      return;
    }
    const key = prefix.startsWith('index.') ? prefix : `index.${prefix}`;
    if (value === null) out.set(key, null);
    else if (Array.isArray(value)) out.set(key, value.map((v) => String(v)));
    else out.set(key, String(value));
  };
  if (input !== undefined && input !== null) {
    if (!isPlainObject(input)) throw illegalArgument('Malformed [settings] section for [index], should include an inner object');
    walk(input, '');
  }
  return out;
}

const KNOWN_EXACT = new Set(
  [
    'number_of_shards', 'number_of_replicas', 'refresh_interval', 'max_result_window', 'max_inner_result_window',
    'max_rescore_window', 'max_docvalue_fields_search', 'max_script_fields', 'max_ngram_diff', 'max_shingle_diff',
    'max_refresh_listeners', 'max_terms_count', 'max_regex_length', 'max_slices_per_scroll', 'auto_expand_replicas',
    'codec', 'default_pipeline', 'final_pipeline', 'hidden', 'priority', 'number_of_routing_shards', 'gc_deletes',
    'mode', 'routing_partition_size', 'load_fixed_bitset_filters_eagerly', 'format', 'uuid', 'provided_name',
    'creation_date', 'version.created', 'max_adjacency_matrix_filters', 'knn', 'flush_after_merge',
  ].map((k) => `index.${k}`),
);
const KNOWN_PREFIXES = [
  'analysis.', 'mapping.', 'routing.', 'sort.', 'similarity.', 'translog.', 'merge.', 'search.', 'indexing.',
  'lifecycle.', 'query.', 'write.', 'unassigned.', 'store.', 'allocation.', 'blocks.', 'soft_deletes.', 'shard.',
  'time_series.', 'knn.', 'plugins.', 'replication.', 'remote_store.', 'requests.', 'highlight.', 'version.',
  'default_search', 'fielddata.', 'warmer.', 'recovery.', 'queries.', 'frozen', 'verified_before_close', 'look_',
].map((p) => `index.${p}`);
const STATIC = ['index.number_of_shards', 'index.codec', 'index.routing_partition_size', 'index.number_of_routing_shards', 'index.mode'];

function checkValue(key: string, value: SettingValue | null): void {
  if (value === null || Array.isArray(value)) return;
  const intMin: Record<string, number> = {
    'index.number_of_shards': 1,
    'index.number_of_replicas': 0,
    'index.max_result_window': 1,
  };
  const min = intMin[key];
  if (min !== undefined) {
    if (!/^-?\d+$/.test(value)) throw illegalArgument(`Failed to parse value [${value}] for setting [${key}]`);
    if (Number(value) < min) throw illegalArgument(`Failed to parse value [${value}] for setting [${key}] must be >= ${min}`);
  }
  if (key === 'index.refresh_interval' && parseTimeMs(value) === undefined) {
    throw illegalArgument(
      `failed to parse setting [${key}] with value [${value}] as a time value: unit is missing or unrecognized`,
    );
  }
}

export function validateSettings(flat: Map<string, SettingValue | null>, opts: { update?: { index: string; uuid: string } }): void {
  for (const [key, value] of flat) {
    if (!KNOWN_EXACT.has(key) && !KNOWN_PREFIXES.some((p) => key.startsWith(p))) {
      throw illegalArgument(
        `unknown setting [${key}] please check that any required plugins are installed, or check the breaking changes documentation for removed settings`,
      );
    }
    checkValue(key, value);
  }
  if (opts.update) {
    const fixed = [...flat.keys()].filter((k) => STATIC.includes(k) || k.startsWith('index.analysis.') || k.startsWith('index.sort.'));
    if (fixed.length) {
      throw illegalArgument(
        `Can't update non dynamic settings [[${fixed.join(', ')}]] for open indices [[${opts.update.index}/${opts.update.uuid}]]`,
      );
    }
  }
}

/** Nests flat settings the way ES renders them (keys sorted, as ES keeps settings in a sorted map). */
export function nestSettings(flat: FlatSettings): Record<string, unknown> {
  const root: Record<string, unknown> = {};
  for (const key of [...flat.keys()].sort()) {
    const parts = key.split('.');
    let node = root;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i] as string;
      const next = node[part];
      if (isPlainObject(next)) node = next;
      else node = node[part] = {};
    }
    node[parts[parts.length - 1] as string] = flat.get(key);
  }
  return root;
}

const UNITS: Record<string, number> = { nanos: 1e-6, micros: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** ES time values (`1s`, `500ms`, `-1`); undefined when unparsable. */
export function parseTimeMs(value: string): number | undefined {
  if (value === '-1' || value === '0') return Number(value);
  const m = /^(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)$/.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * (UNITS[m[2] as string] as number);
}
