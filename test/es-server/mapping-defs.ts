import { cause, EsError, fail, illegalArgument } from './errors.js';

/** A field or object mapping as ES prints it (`{type, ...params}` or `{properties}`). */
export type FieldDef = Record<string, unknown> & { type?: string; properties?: Props; fields?: Props };
export type Props = Record<string, FieldDef>;
export type RootMapping = Record<string, unknown> & { properties?: Props };

const FIELD_TYPES = new Set([
  'text', 'keyword', 'long', 'integer', 'short', 'byte', 'double', 'float', 'half_float', 'scaled_float',
  'unsigned_long', 'boolean', 'date', 'date_nanos', 'object', 'nested', 'flattened', 'geo_point', 'geo_shape',
  'ip', 'binary', 'alias', 'join', 'completion', 'search_as_you_type', 'token_count', 'dense_vector',
  'sparse_vector', 'rank_feature', 'rank_features', 'wildcard', 'constant_keyword', 'match_only_text', 'version',
  'integer_range', 'float_range', 'long_range', 'double_range', 'date_range', 'ip_range', 'percolator',
  'histogram', 'semantic_text', 'point', 'shape', 'annotated_text', 'murmur3', 'aggregate_metric_double',
  'counted_keyword', 'passthrough', 'knn_vector', 'flat_object', 'xy_point', 'xy_shape', 'unsigned_long',
]);
const ROOT_KEYS = new Set([
  'properties', 'dynamic', '_source', '_routing', '_meta', 'dynamic_templates', 'date_detection',
  'numeric_detection', 'dynamic_date_formats', 'runtime', '_field_names', 'enabled', 'subobjects',
  '_data_stream_timestamp', '_size', 'derived', 'index_options',
]);
/** Parameters ES lets PUT _mapping change on an existing field. */
const UPDATABLE = new Set(['ignore_above', 'boost', 'search_analyzer', 'search_quote_analyzer', 'ignore_malformed', 'meta', 'fields', 'properties', 'dynamic', 'enabled_on_update']);

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Java's Map.toString rendering, as ES quotes unsupported parameters. */
export function javaString(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(javaString).join(', ')}]`;
  if (isObj(v)) return `{${Object.entries(v).map(([k, x]) => `${k}=${javaString(x)}`).join(', ')}}`;
  return String(v);
}

const mapperParsing = (reason: string): EsError => fail(400, 'mapper_parsing_exception', reason);

export const isObjectDef = (def: FieldDef): boolean => def.type === undefined || def.type === 'object' || def.type === 'nested';

function checkFields(props: unknown, major: number): Props {
  if (!isObj(props)) throw mapperParsing(`Expected map for property [properties] but got a class ${typeof props}`);
  const out: Props = {};
  for (const [rawName, rawDef] of Object.entries(props)) {
    if (rawName.trim() === '') throw mapperParsing('field name cannot be an empty string');
    if (!isObj(rawDef)) throw mapperParsing(`Expected map for property [fields] on field [${rawName}] but got a class java.lang.String`);
    const def = checkField(rawName, rawDef, major);
    const parts = rawName.split('.');
    if (parts.length === 1) {
      out[rawName] = def;
      continue;
    }
    let node = out;
    for (const part of parts.slice(0, -1)) {
      const existing: FieldDef = node[part] ?? { properties: {} };
      existing.properties ??= {};
      node[part] = existing;
      node = existing.properties;
    }
    node[parts[parts.length - 1] as string] = def;
  }
  return out;
}

function checkField(name: string, def: Record<string, unknown>, major: number): FieldDef {
  const type = def.type;
  if (type !== undefined && (typeof type !== 'string' || !FIELD_TYPES.has(type))) {
    throw mapperParsing(`No handler for type [${javaString(type)}] declared on field [${name}]`);
  }
  const out: FieldDef = { ...def };
  if (def.properties !== undefined) {
    if (type !== undefined && type !== 'object' && type !== 'nested') {
      throw mapperParsing(`unknown parameter [properties] on mapper [${name}] of type [${type}]`);
    }
    out.properties = checkFields(def.properties, major);
  }
  if (def.fields !== undefined) out.fields = checkFields(def.fields, major);
  if (def.dynamic !== undefined) out.dynamic = String(def.dynamic);
  return normalizeObject(out);
}

/** ES prints `"type":"object"` only for objects without sub-fields. */
function normalizeObject(def: FieldDef): FieldDef {
  if (def.type !== undefined && def.type !== 'object') return def;
  const hasProps = def.properties !== undefined && Object.keys(def.properties).length > 0;
  if (hasProps) delete def.type;
  else {
    delete def.properties;
    const { type: _t, ...rest } = def;
    return { type: 'object', ...rest } as FieldDef;
  }
  return def;
}

/** Validates a `mappings` body (create index / PUT _mapping) and returns its normalised form. */
export function checkMapping(input: unknown, major: number): RootMapping {
  if (input === undefined || input === null) return {};
  if (!isObj(input)) throw mapperParsing('Failed to parse mapping: Expected map for property [mappings]');
  const unsupported = Object.keys(input).filter((k) => !ROOT_KEYS.has(k));
  if (unsupported.length) {
    const first = unsupported[0] as string;
    if (major === 7 && isObj(input[first]) && unsupported.length === 1 && 'properties' in (input[first] as object)) {
      throw mapperParsing(`The mapping definition cannot be nested under a type [${first}] unless include_type_name is set to true.`);
    }
    const detail = unsupported.map((k) => `[${k} : ${javaString(input[k])}]`).join(' ');
    throw mapperParsing(`Root mapping definition has unsupported parameters:  ${detail}`);
  }
  const out: RootMapping = { ...input };
  if (input.dynamic !== undefined) out.dynamic = String(input.dynamic);
  if (input.properties !== undefined) out.properties = checkFields(input.properties, major);
  return out;
}

/** Wraps a mapping failure the way create-index reports it. */
export function asCreateIndexError(err: unknown): unknown {
  if (!(err instanceof EsError) || err.status !== 400) return err;
  const inner = (err.body as { error?: { type?: string; reason?: string } }).error;
  if (inner?.type !== 'mapper_parsing_exception') return err;
  return EsError.of(
    400,
    cause('mapper_parsing_exception', `Failed to parse mapping: ${inner.reason}`, undefined, cause('mapper_parsing_exception', inner.reason ?? '')),
  );
}

const typeName = (def: FieldDef): string => def.type ?? 'object';

function mergeProps(target: Props, incoming: Props, prefix: string): void {
  for (const [name, inc] of Object.entries(incoming)) {
    const path = prefix ? `${prefix}.${name}` : name;
    const cur = target[name];
    target[name] = cur ? mergeField(cur, inc, path) : structuredClone(inc);
  }
}

function mergeField(cur: FieldDef, inc: FieldDef, path: string): FieldDef {
  const curObj = isObjectDef(cur);
  const incObj = isObjectDef(inc);
  if (curObj !== incObj) throw illegalArgument(`can't merge a non object mapping [${path}] with an object mapping`);
  if (curObj) {
    if ((cur.type === 'nested') !== (inc.type === 'nested')) {
      throw illegalArgument(`can't merge a non-nested mapping [${path}] with a nested mapping`);
    }
    const out: FieldDef = { ...cur, ...inc, properties: { ...(cur.properties ?? {}) } };
    if (inc.properties) mergeProps(out.properties as Props, inc.properties, path);
    return normalizeObject(out);
  }
  if (cur.type !== inc.type) {
    throw illegalArgument(`mapper [${path}] cannot be changed from type [${typeName(cur)}] to [${typeName(inc)}]`);
  }
  for (const [param, value] of Object.entries(inc)) {
    if (UPDATABLE.has(param) || param === 'type' || cur[param] === undefined) continue;
    if (JSON.stringify(cur[param]) !== JSON.stringify(value)) {
      throw illegalArgument(`Mapper for [${path}] conflicts with existing mapper:\n\tCannot update parameter [${param}] from [${javaString(cur[param])}] to [${javaString(value)}]`);
    }
  }
  const out: FieldDef = { ...cur, ...inc };
  if (cur.fields || inc.fields) {
    out.fields = { ...(cur.fields ?? {}) };
    if (inc.fields) mergeProps(out.fields, inc.fields, path);
  }
  return out;
}

/** Merges a checked mapping into the current one (PUT _mapping and dynamic updates); throws on conflicts. */
export function mergeMapping(current: RootMapping, incoming: RootMapping): RootMapping {
  const out: RootMapping = { ...current, ...incoming };
  const props: Props = structuredClone(current.properties ?? {});
  if (incoming.properties) mergeProps(props, incoming.properties, '');
  if (Object.keys(props).length || current.properties) out.properties = props;
  return out;
}

export function countFields(props: Props | undefined): number {
  let n = 0;
  for (const def of Object.values(props ?? {})) {
    n += 1 + countFields(def.properties) + countFields(def.fields);
  }
  return n;
}

/** Looks a dotted path up in the mapping; multi-fields (`name.keyword`) resolve to their parent's source path. */
export function resolveField(mapping: RootMapping, path: string): { def: FieldDef; sourcePath: string } | undefined {
  const parts = path.split('.');
  let props = mapping.properties;
  const source: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const def = props?.[parts[i] as string];
    if (def === undefined || typeof def !== 'object' || def === Object.prototype) return undefined;
    source.push(parts[i] as string);
    if (i === parts.length - 1) return { def, sourcePath: source.join('.') };
    if (def.fields && !def.properties) {
      const sub = def.fields[parts.slice(i + 1).join('.')];
      return sub ? { def: sub, sourcePath: source.join('.') } : undefined;
    }
    props = def.properties;
  }
  return undefined;
}
