import { isPlainObject, type ProblemList } from './problem-list.js';

// The field types and mapping parameters PGSync accepts in transform.mapping (pgsync-reference §1.6),
// plus a few later Elasticsearch/OpenSearch types so valid mappings are not refused.
const FIELD_TYPES = new Set([
  'binary', 'boolean', 'byte', 'completion', 'constant_keyword', 'date', 'date_nanos', 'date_range', 'dense_vector',
  'double', 'double_range', 'flattened', 'float', 'float_range', 'geo_point', 'geo_shape', 'half_float', 'integer',
  'integer_range', 'ip', 'ip_range', 'join', 'keyword', 'knn_vector', 'long', 'long_range', 'match_only_text', 'nested',
  'null', 'object', 'percolator', 'point', 'rank_feature', 'rank_features', 'scaled_float', 'search_as_you_type', 'shape',
  'short', 'sparse_vector', 'text', 'time', 'token_count', 'unsigned_long', 'version', 'wildcard',
  'interval_day', 'interval_day_to_hour', 'interval_day_to_minute', 'interval_day_to_second', 'interval_hour',
  'interval_hour_to_minute', 'interval_hour_to_second', 'interval_minute', 'interval_minute_to_second', 'interval_month',
  'interval_second', 'interval_year', 'interval_year_to_month',
]);

const FIELD_PARAMETERS = new Set([
  'type', 'analyzer', 'boost', 'coerce', 'copy_to', 'dimension', 'dims', 'doc_values', 'dynamic', 'eager_global_ordinals',
  'enabled', 'fielddata', 'fielddata_frequency_filter', 'fields', 'format', 'ignore_above', 'ignore_malformed', 'index',
  'index_options', 'index_phrases', 'index_prefixes', 'meta', 'method', 'normalizer', 'norms', 'null_value',
  'position_increment_gap', 'properties', 'scaling_factor', 'search_analyzer', 'search_quote_analyzer', 'similarity',
  'store', 'term_vector', 'include_in_parent', 'include_in_root', 'relations', 'element_type', 'space_type',
]);

/** Checks one transform.mapping entry; reports and returns false when it is not a valid field mapping. */
export function checkFieldMapping(mapping: unknown, at: string, problems: ProblemList): mapping is Record<string, unknown> {
  if (!isPlainObject(mapping)) {
    problems.error(at, 'a field mapping must be an object such as {"type": "keyword"}');
    return false;
  }
  let ok = true;
  const type = mapping.type;
  if (type === undefined && mapping.properties === undefined) {
    problems.error(`${at}.type`, 'a field mapping needs a "type" (or "properties" for an object)');
    ok = false;
  } else if (type !== undefined && (typeof type !== 'string' || !FIELD_TYPES.has(type))) {
    problems.error(`${at}.type`, `unknown field type ${JSON.stringify(type)}`);
    ok = false;
  }
  for (const key of Object.keys(mapping)) {
    if (!FIELD_PARAMETERS.has(key)) {
      problems.error(`${at}.${key}`, `unknown mapping parameter "${key}"`);
      ok = false;
    }
  }
  return ok;
}
