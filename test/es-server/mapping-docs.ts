import { DEFAULT_DATE_FORMAT, isValidDate, looksLikeDate } from './dates.js';
import { cause, lineCol, type Cause } from './errors.js';
import type { FlavorInfo } from './flavors.js';
import { checkGeoPoint } from './geo.js';
import { javaString, type FieldDef, type Props, type RootMapping } from './mapping-defs.js';
import { dynamicTemplateFor } from './dynamic-templates.js';
import { rawSource, type SourceBytes } from './store.js';

/** A document the mapping refuses: becomes an item error with status 400. */
export class DocError extends Error {
  constructor(readonly detail: Cause) {
    super(detail.reason ?? detail.type);
  }
}

const METADATA = new Set(['_id', '_index', '_routing', '_source', '_version', '_seq_no', '_primary_term', '_ignored', '_field_names', '_doc_count', '_tier', '_nested_path', '_data_stream_timestamp', '_type']);

const RANGES: Record<string, [number, number, string]> = {
  long: [-(2 ** 63), 2 ** 63, 'a long'],
  integer: [-(2 ** 31), 2 ** 31 - 1, 'an integer'],
  short: [-32768, 32767, 'a short'],
  byte: [-128, 127, 'a byte'],
  unsigned_long: [0, 2 ** 64, 'an unsigned long'],
};
const FLOATS: Record<string, number> = { double: Number.MAX_VALUE, float: 3.4028234663852886e38, half_float: 65504, scaled_float: Number.MAX_VALUE };
const NUMERIC_STRING = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface DocContext {
  flavor: FlavorInfo;
  mapping: RootMapping;
  id: string;
  /** The document bytes; decoded to text only when an error message needs a location. */
  body: SourceBytes;
  ignoreMalformed: boolean;
  rawText?: string;
  /** Fields this document adds under existing objects, by full path (their sub-fields live inside them). */
  pending?: Map<string, FieldDef>;
}

const rawOf = (ctx: DocContext): string => (ctx.rawText ??= rawSource(ctx.body));

/** The additions as a `{properties}` tree; stubs for existing parents keep `nested`, or the merge refuses them. */
function additionsTree(mapping: RootMapping, pending: Map<string, FieldDef>): RootMapping {
  const root: Props = {};
  for (const [full, def] of pending) {
    const parts = full.split('.');
    let node = root;
    let existing = mapping.properties;
    for (let i = 0; i < parts.length - 1; i++) {
      const part = parts[i] as string;
      const current = ownField(existing, part);
      let stub = ownField(node, part);
      if (!stub) addField(node, part, (stub = current?.type === 'nested' ? { type: 'nested', properties: {} } : { properties: {} }));
      node = stub.properties ??= {};
      existing = current?.properties;
    }
    addField(node, parts[parts.length - 1] as string, def);
  }
  return { properties: root };
}

/**
 * Checks a document against the mapping like ES's DocumentParser.
 * Returns the dynamic mapping additions (a `{properties}` tree to merge), or undefined when there are none.
 */
export function parseDocument(ctx: DocContext, source: unknown): RootMapping | undefined {
  if (!isObj(source)) throw new DocError(docFailure(ctx, 0, 'failed to parse', cause('illegal_argument_exception', 'Malformed content, must start with an object')));
  walkObject(ctx, source, ctx.mapping.properties, '', String(ctx.mapping.dynamic ?? 'true'), false);
  return ctx.pending ? additionsTree(ctx.mapping, ctx.pending) : undefined;
}

function docFailure(ctx: DocContext, offset: number, reason: string, causedBy?: Cause, type: string = ctx.flavor.docParsingType): Cause {
  const prefix = ctx.flavor.locationPrefix ? `${lineCol(rawOf(ctx), offset)} ` : '';
  return cause(type, prefix + reason, undefined, causedBy);
}

/** Approximate parser location of a field's value (the end of `"key":value`), for ES 8's `[line:col]` prefix. */
function locate(raw: string, key: string): number {
  const at = raw.indexOf(JSON.stringify(key));
  if (at < 0) return 0;
  let i = raw.indexOf(':', at) + 1;
  while (i < raw.length && ' \t\r\n'.includes(raw.charAt(i))) i++;
  const first = raw.charAt(i);
  if (first === '"') {
    let j = i + 1;
    while (j < raw.length && raw.charAt(j) !== '"') j += raw.charAt(j) === '\\' ? 2 : 1;
    return j + 1;
  }
  if (first === '{' || first === '[') return i + 1;
  while (i < raw.length && !',}] \t\r\n'.includes(raw.charAt(i))) i++;
  return i;
}

/** The number as written in the source when JSON.parse rounded it (integers beyond 2^53). */
function numberText(ctx: DocContext, key: string, value: unknown): string | undefined {
  if (typeof value !== 'number' || Number.isSafeInteger(value) || !Number.isInteger(value)) return undefined;
  const raw = rawOf(ctx);
  const end = locate(raw, key);
  const m = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.exec(raw.slice(Math.max(0, end - 400), end));
  return m && Number(m[0]) === value ? m[0] : undefined;
}

const joinPath = (path: string, key: string): string => (path ? `${path}.${key}` : key);

/** A sub-field definition; inherited names (`constructor`, `__proto__`) are not fields. */
function ownField(props: Props | undefined, key: string): FieldDef | undefined {
  const def = props?.[key];
  return def !== undefined && typeof def === 'object' && def !== Object.prototype ? def : undefined;
}

function addField(props: Props, key: string, def: FieldDef): void {
  Object.defineProperty(props, key, { value: def, enumerable: true, writable: true, configurable: true });
}

/** `fresh`: the object was mapped by this very document, so new sub-fields go straight into `props`. */
function walkObject(ctx: DocContext, obj: Record<string, unknown>, props: Props | undefined, path: string, dynamic: string, fresh: boolean): void {
  const root = path === '';
  for (const key in obj) {
    const value = obj[key];
    const first = key.charCodeAt(0);
    if (root && first === 95 && METADATA.has(key) && !(key === '_type' && ctx.flavor.major > 7)) {
      throw new DocError(docFailure(ctx, locate(rawOf(ctx), key), `Field [${key}] is a metadata field and cannot be added inside a document. Use the index API request parameters.`));
    }
    if (key.length === 0 || (first <= 32 && key.trim() === '')) {
      throw new DocError(docFailure(ctx, locate(rawOf(ctx), key), 'field name cannot be an empty string'));
    }
    const dot = key.indexOf('.');
    if (dot > 0 && dot < key.length - 1) {
      walkObject(ctx, { [key.slice(0, dot)]: { [key.slice(dot + 1)]: value } }, props, path, dynamic, fresh);
      continue;
    }
    handleField(ctx, key, value, props, path, dynamic, fresh);
  }
}

function handleField(ctx: DocContext, key: string, value: unknown, props: Props | undefined, path: string, dynamic: string, parentFresh: boolean): void {
  let def = ownField(props, key);
  let fresh = parentFresh;
  if (def === undefined && !parentFresh && ctx.pending) {
    def = ctx.pending.get(joinPath(path, key));
    fresh = def !== undefined;
  }
  if (def === undefined) {
    const sample = firstValue(value);
    if (sample === null || sample === undefined) return;
    if (dynamic === 'strict') {
      throw new DocError(
        docFailure(ctx, locate(rawOf(ctx), key), `mapping set to strict, dynamic introduction of [${key}] within [${path || '_doc'}] is not allowed`, undefined, 'strict_dynamic_mapping_exception'),
      );
    }
    if (dynamic !== 'true') return;
    const full = joinPath(path, key);
    def = dynamicTemplateFor(ctx.mapping, full, key, sample) ?? dynamicDef(ctx.mapping, sample);
    if (parentFresh && props) addField(props, key, def);
    else (ctx.pending ??= new Map()).set(full, def);
    fresh = true;
  }
  checkValue(ctx, def, key, path, value, fresh, dynamic);
}

function firstValue(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  for (let i = 0; i < value.length; i++) {
    const f = firstValue(value[i]);
    if (f !== null && f !== undefined) return f;
  }
  return undefined;
}

function dynamicDef(mapping: RootMapping, sample: unknown): FieldDef {
  if (typeof sample === 'string') {
    if (mapping.date_detection !== false && looksLikeDate(sample)) return { type: 'date' };
    if (mapping.numeric_detection === true && NUMERIC_STRING.test(sample)) return { type: /^-?\d+$/.test(sample) ? 'long' : 'float' };
    return { type: 'text', fields: { keyword: { type: 'keyword', ignore_above: 256 } } };
  }
  if (typeof sample === 'number') return { type: Number.isInteger(sample) ? 'long' : 'float' };
  if (typeof sample === 'boolean') return { type: 'boolean' };
  return isObj(sample) && Object.keys(sample).length ? { properties: {} } : { type: 'object' };
}

function preview(v: unknown): string {
  return typeof v === 'string' ? v : javaString(v);
}

function isCoordinates(value: unknown[]): boolean {
  if (value.length < 2 || value.length > 3) return false;
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'number') return false;
  return true;
}

function checkValue(ctx: DocContext, def: FieldDef, key: string, path: string, value: unknown, fresh: boolean, dynamic: string): void {
  if (value === null || value === undefined) return;
  const type = def.type ?? 'object';
  if (typeof value === 'string') {
    if (type === 'keyword' || type === 'text') return;
  } else if (typeof value === 'number') {
    if ((type === 'long' || type === 'integer') && Number.isSafeInteger(value) && value < 2147483648 && value >= -2147483648) return;
    if ((type === 'float' || type === 'double' || type === 'scaled_float') && Math.abs(value) <= 3.4028234663852886e38) return;
  } else if (Array.isArray(value) && !(type === 'geo_point' && isCoordinates(value))) {
    for (let i = 0; i < value.length; i++) checkValue(ctx, def, key, path, value[i], fresh, dynamic);
    return;
  }
  if (type === 'object' || type === 'nested') {
    if (def.enabled === false) return;
    if (!isObj(value)) {
      throw new DocError(docFailure(ctx, locate(rawOf(ctx), key), `object mapping for [${joinPath(path, key)}] tried to parse field [${key}] as object, but found a concrete value`));
    }
    if (def.type === 'object' && Object.keys(value).length && fresh) {
      delete def.type;
      def.properties = {};
    }
    const childProps = fresh ? (def.properties ??= {}) : def.properties;
    walkObject(ctx, value, childProps, joinPath(path, key), def.dynamic === undefined ? dynamic : String(def.dynamic), fresh);
    return;
  }
  if (def.ignore_malformed === true || ctx.ignoreMalformed) {
    if (!['text', 'keyword', 'match_only_text', 'wildcard', 'constant_keyword'].includes(type)) return;
  }
  const exact = numberText(ctx, key, value);
  const problem = valueProblem(type, def, value, exact);
  if (problem) {
    const shown = exact ?? preview(value);
    throw new DocError(
      docFailure(ctx, locate(rawOf(ctx), key), `failed to parse field [${joinPath(path, key)}] of type [${type}] in document with id '${ctx.id}'. Preview of field's value: '${shown}'`, problem),
    );
  }
}

/** Why a single (non-array) value does not fit a leaf field type, or undefined when it fits. */
function valueProblem(type: string, def: FieldDef, value: unknown, exact: string | undefined): Cause | undefined {
  if (isObj(value) && type !== 'geo_point' && type !== 'flattened' && type !== 'flat_object' && !type.endsWith('_range') && type !== 'geo_shape' && type !== 'shape' && type !== 'join' && type !== 'completion' && type !== 'rank_features' && type !== 'sparse_vector' && type !== 'aggregate_metric_double' && type !== 'histogram') {
    return cause('illegal_state_exception', "Can't get text on a START_OBJECT");
  }
  const range = RANGES[type];
  if (range || FLOATS[type] !== undefined) {
    if (value === '') return undefined;
    if (typeof value === 'boolean') return cause('illegal_argument_exception', `Current token (VALUE_${String(value).toUpperCase()}) not numeric, can not use numeric value accessors`);
    if (typeof value === 'string' && (!NUMERIC_STRING.test(value.trim()) || def.coerce === false)) {
      return cause('illegal_argument_exception', `For input string: "${value}"`);
    }
    const n = Number(value);
    if (!Number.isFinite(n)) return cause('illegal_argument_exception', `[${type}] supports only finite values, but got [${value}]`);
    if (range) {
      if (def.coerce === false && !Number.isInteger(n)) return cause('illegal_argument_exception', `Value [${value}] has a decimal part`);
      if (n < range[0] || n > range[1]) return cause('illegal_argument_exception', `Value [${exact ?? value}] is out of range for ${range[2]}`);
    } else if (Math.abs(n) > (FLOATS[type] as number)) {
      return cause('illegal_argument_exception', `[${type}] supports only finite values, but got [${value}]`);
    }
    return undefined;
  }
  switch (type) {
    case 'boolean':
      if (value === true || value === false || value === 'true' || value === 'false' || value === '') return undefined;
      return cause('illegal_argument_exception', `Failed to parse value [${preview(value)}] as only [true] or [false] are allowed.`);
    case 'date':
    case 'date_nanos': {
      const format = typeof def.format === 'string' ? def.format : DEFAULT_DATE_FORMAT;
      if (isValidDate(value, format)) return undefined;
      return cause(
        'illegal_argument_exception',
        `failed to parse date field [${preview(value)}] with format [${format}]`,
        undefined,
        cause('date_time_parse_exception', `Text '${preview(value)}' could not be parsed at index 0`),
      );
    }
    case 'geo_point':
      return checkGeoPoint(value);
    case 'ip':
      if (typeof value === 'string' && (IPV4.test(value) || (value.includes(':') && /^[0-9a-fA-F:.]+$/.test(value)))) return undefined;
      return cause('illegal_argument_exception', `'${preview(value)}' is not an IP string literal.`);
    default:
      return undefined;
  }
}
