import { DEFAULT_DATE_FORMAT, isValidDate, looksLikeDate } from './dates.js';
import { cause, lineCol, type Cause } from './errors.js';
import type { FlavorInfo } from './flavors.js';
import { checkGeoPoint } from './geo.js';
import { javaString, type FieldDef, type Props, type RootMapping } from './mapping-defs.js';
import { dynamicTemplateFor } from './dynamic-templates.js';

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

/** Lazily created branch of the dynamic-mapping additions; `create` false only peeks. */
type Added = (create: boolean) => Props | undefined;
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface DocContext {
  flavor: FlavorInfo;
  mapping: RootMapping;
  id: string;
  /** The document text, only decoded when an error message needs a location. */
  raw: () => string;
  ignoreMalformed: boolean;
}

/**
 * Checks a document against the mapping like ES's DocumentParser.
 * Returns the dynamic mapping additions (a `{properties}` tree to merge), or undefined when there are none.
 */
export function parseDocument(ctx: DocContext, source: unknown): RootMapping | undefined {
  if (!isObj(source)) throw new DocError(docFailure(ctx, 0, 'failed to parse', cause('illegal_argument_exception', 'Malformed content, must start with an object')));
  let added: Props | undefined;
  const rootAdded: Added = (create) => (create ? (added ??= {}) : added);
  const dynamic = String(ctx.mapping.dynamic ?? 'true');
  for (const key of Object.keys(source)) {
    if (METADATA.has(key) && !(key === '_type' && ctx.flavor.major > 7)) {
      throw new DocError(docFailure(ctx, locate(ctx.raw(), key), `Field [${key}] is a metadata field and cannot be added inside a document. Use the index API request parameters.`));
    }
  }
  walkObject(ctx, source, ctx.mapping.properties, rootAdded, '', dynamic);
  return added ? { properties: added } : undefined;
}

function docFailure(ctx: DocContext, offset: number, reason: string, causedBy?: Cause, type: string = ctx.flavor.docParsingType): Cause {
  const prefix = ctx.flavor.locationPrefix ? `${lineCol(ctx.raw(), offset)} ` : '';
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
  const raw = ctx.raw();
  const end = locate(raw, key);
  const m = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/.exec(raw.slice(Math.max(0, end - 400), end));
  return m && Number(m[0]) === value ? m[0] : undefined;
}

function walkObject(ctx: DocContext, obj: Record<string, unknown>, props: Props | undefined, added: Added, path: string, dynamic: string): void {
  for (const key of Object.keys(obj)) {
    const value = obj[key];
    if (key.trim() === '') throw new DocError(docFailure(ctx, locate(ctx.raw(), key), 'field name cannot be an empty string'));
    const dot = key.indexOf('.');
    if (dot > 0 && dot < key.length - 1) {
      walkObject(ctx, { [key.slice(0, dot)]: { [key.slice(dot + 1)]: value } }, props, added, path, dynamic);
      continue;
    }
    handleField(ctx, key, value, props, added, path, dynamic);
  }
}

function handleField(ctx: DocContext, key: string, value: unknown, props: Props | undefined, added: Added, path: string, dynamic: string): void {
  const full = path ? `${path}.${key}` : key;
  let def = props?.[key];
  let fresh = false;
  if (!def) {
    def = added(false)?.[key];
    fresh = def !== undefined;
    if (!def) {
      const sample = firstValue(value);
      if (sample === null || sample === undefined) return;
      if (dynamic === 'strict') {
        throw new DocError(
          docFailure(ctx, locate(ctx.raw(), key), `mapping set to strict, dynamic introduction of [${key}] within [${path || '_doc'}] is not allowed`, undefined, 'strict_dynamic_mapping_exception'),
        );
      }
      if (dynamic !== 'true') return;
      def = dynamicTemplateFor(ctx.mapping, full, key, sample) ?? dynamicDef(ctx.mapping, sample);
      (added(true) as Props)[key] = def;
      fresh = true;
    }
  }
  checkValue(ctx, def, key, full, value, props, added, fresh, dynamic);
}

function firstValue(value: unknown): unknown {
  if (!Array.isArray(value)) return value;
  for (const v of value) {
    const f = firstValue(v);
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

function checkValue(ctx: DocContext, def: FieldDef, key: string, full: string, value: unknown, parentProps: Props | undefined, parentAdded: Added, fresh: boolean, dynamic: string): void {
  if (value === null || value === undefined) return;
  const type = def.type ?? 'object';
  if (Array.isArray(value) && !(type === 'geo_point' && value.length >= 2 && value.length <= 3 && value.every((v) => typeof v === 'number'))) {
    for (const v of value) checkValue(ctx, def, key, full, v, parentProps, parentAdded, fresh, dynamic);
    return;
  }
  if (type === 'object' || type === 'nested') {
    if (def.enabled === false) return;
    if (!isObj(value)) {
      throw new DocError(docFailure(ctx, locate(ctx.raw(), key), `object mapping for [${full}] tried to parse field [${key}] as object, but found a concrete value`));
    }
    if (def.type === 'object' && Object.keys(value).length && fresh) {
      delete def.type;
      def.properties = {};
    }
    const childAdded: Added = fresh
      ? () => (def.properties ??= {})
      : (create) => {
          const pending = parentAdded(create);
          if (!pending) return undefined;
          let stub = pending[key];
          if (!stub) {
            if (!create) return undefined;
            // A dynamic addition under an existing nested field must stay nested, or the merge refuses it.
            stub = pending[key] = def.type === 'nested' ? { type: 'nested', properties: {} } : { properties: {} };
          }
          return create ? (stub.properties ??= {}) : stub.properties;
        };
    walkObject(ctx, value, fresh ? undefined : def.properties, childAdded, full, String(def.dynamic ?? dynamic));
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
      docFailure(ctx, locate(ctx.raw(), key), `failed to parse field [${full}] of type [${type}] in document with id '${ctx.id}'. Preview of field's value: '${shown}'`, problem),
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
