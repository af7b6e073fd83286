import { dateToMillis } from './dates.js';
import { cause, EsError, fail } from './errors.js';
import { isObject } from './context.js';
import { resolveField, type FieldDef, type RootMapping } from './mapping-defs.js';
import { sourceOf, type Doc } from './store.js';

export interface Compiled {
  match: (doc: Doc) => boolean;
  /** false in pure filter context (bool with only filter/must_not), where ES scores 0.0 */
  scoring: boolean;
}

interface Field {
  def: FieldDef | undefined;
  sourcePath: string;
}

const NUMERIC = new Set(['long', 'integer', 'short', 'byte', 'double', 'float', 'half_float', 'scaled_float', 'unsigned_long']);
const TEXT = new Set(['text', 'match_only_text', 'search_as_you_type', 'annotated_text']);

const parsing = (reason: string): EsError => fail(400, 'parsing_exception', reason, { line: 1, col: 1 });

/** Values at a dotted path, flattening arrays and honouring dotted keys in the source. */
export function valuesAt(source: unknown, path: string): unknown[] {
  const out: unknown[] = [];
  const parts = path.split('.');
  const walk = (node: unknown, i: number): void => {
    if (node === undefined || node === null) return;
    if (Array.isArray(node)) {
      for (const n of node) walk(n, i);
      return;
    }
    if (i === parts.length) {
      out.push(node);
      return;
    }
    if (typeof node !== 'object') return;
    for (let j = i + 1; j <= parts.length; j++) {
      const key = j === i + 1 ? (parts[i] as string) : parts.slice(i, j).join('.');
      if (Object.prototype.hasOwnProperty.call(node, key)) walk((node as Record<string, unknown>)[key], j);
    }
  };
  walk(source, 0);
  return out;
}

const tokens = (text: string): string[] => text.toLowerCase().split(/[^\p{L}\p{N}_]+/u).filter(Boolean);

function docValues(doc: Doc, field: Field): unknown[] {
  if (field.sourcePath === '_id') return [doc.id];
  if (field.sourcePath === '_routing') return doc.routing === undefined ? [] : [doc.routing];
  if (!field.def) return [];
  return valuesAt(sourceOf(doc), field.sourcePath);
}

function termEquals(field: Field, value: unknown, wanted: unknown): boolean {
  const type = field.def?.type;
  if (type && NUMERIC.has(type)) return Number(value) === Number(wanted);
  if (type === 'date' || type === 'date_nanos') return dateToMillis(value, field.def?.format as string | undefined) === dateToMillis(wanted);
  if (type && TEXT.has(type)) return typeof value === 'string' && tokens(value).includes(String(wanted));
  return String(value) === String(wanted);
}

function compare(field: Field, value: unknown, bound: unknown): number {
  const type = field.def?.type;
  if (type === 'date' || type === 'date_nanos') return dateToMillis(value) - dateToMillis(bound);
  if (type && NUMERIC.has(type)) return Number(value) - Number(bound);
  const a = String(value);
  const b = String(bound);
  return a < b ? -1 : a > b ? 1 : 0;
}

function singleField(body: unknown, kind: string): [string, unknown] {
  if (!isObject(body)) throw parsing(`[${kind}] query malformed, no start_object after query name`);
  const entries = Object.entries(body).filter(([k]) => k !== 'boost' && k !== '_name' && k !== 'case_insensitive');
  if (entries.length !== 1) throw parsing(`[${kind}] query doesn't support multiple fields, found [${entries.map(([k]) => k).join('] and [')}]`);
  return entries[0] as [string, unknown];
}

const clauses = (v: unknown): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function compileQuery(query: unknown, mapping: RootMapping): Compiled {
  const field = (path: string): Field => {
    if (path === '_id' || path === '_routing') return { def: { type: 'keyword' }, sourcePath: path };
    const found = resolveField(mapping, path);
    return found ?? { def: undefined, sourcePath: path };
  };
  const compile = (q: unknown): Compiled => {
    if (!isObject(q)) throw parsing('query malformed, must start with start_object');
    const keys = Object.keys(q);
    if (keys.length !== 1) {
      throw keys.length === 0 ? parsing('query malformed, empty clause found at [1:11]') : parsing(`[${keys[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]`);
    }
    const kind = keys[0] as string;
    const body = q[kind];
    switch (kind) {
      case 'match_all':
        return { match: () => true, scoring: true };
      case 'match_none':
        return { match: () => false, scoring: true };
      case 'ids': {
        const values = new Set(clauses((body as { values?: unknown })?.values).map(String));
        return { match: (d) => values.has(d.id), scoring: true };
      }
      case 'term': {
        const [path, spec] = singleField(body, kind);
        const wanted = isObject(spec) ? spec.value : spec;
        const f = field(path);
        return { match: (d) => docValues(d, f).some((v) => termEquals(f, v, wanted)), scoring: true };
      }
      case 'terms': {
        const [path, list] = singleField(body, kind);
        if (!Array.isArray(list)) throw parsing('[terms] query does not support [' + path + ']');
        const f = field(path);
        return { match: (d) => docValues(d, f).some((v) => list.some((w) => termEquals(f, v, w))), scoring: true };
      }
      case 'exists': {
        const f = field(String((body as { field?: unknown })?.field));
        return { match: (d) => docValues(d, f).length > 0, scoring: true };
      }
      case 'prefix':
      case 'wildcard': {
        const [path, spec] = singleField(body, kind);
        const value = String(isObject(spec) ? (spec.value ?? spec.wildcard) : spec);
        const f = field(path);
        const re = kind === 'prefix' ? null : new RegExp('^' + value.split('*').map((p) => p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\?/g, '.')).join('.*') + '$');
        return { match: (d) => docValues(d, f).some((v) => (re ? re.test(String(v)) : String(v).startsWith(value))), scoring: true };
      }
      case 'range': {
        const [path, spec] = singleField(body, kind);
        if (!isObject(spec)) throw parsing('[range] query malformed, no start_object after query name');
        const f = field(path);
        const checks: [string, (c: number) => boolean][] = [
          ['gt', (c) => c > 0], ['gte', (c) => c >= 0], ['lt', (c) => c < 0], ['lte', (c) => c <= 0],
        ];
        const active = checks.filter(([k]) => spec[k] !== undefined && spec[k] !== null);
        return { match: (d) => docValues(d, f).some((v) => active.every(([k, ok]) => ok(compare(f, v, spec[k])))), scoring: true };
      }
      case 'match':
      case 'match_phrase': {
        const [path, spec] = singleField(body, kind);
        const text = String(isObject(spec) ? spec.query : spec);
        const and = isObject(spec) && String(spec.operator).toLowerCase() === 'and';
        const f = field(path);
        const isText = f.def?.type !== undefined && TEXT.has(f.def.type);
        const wanted = tokens(text);
        return {
          match: (d) =>
            docValues(d, f).some((v) => {
              if (!isText) return termEquals(f, v, text);
              if (kind === 'match_phrase') return tokens(String(v)).join(' ').includes(wanted.join(' '));
              const have = new Set(tokens(String(v)));
              return and ? wanted.every((t) => have.has(t)) : wanted.some((t) => have.has(t));
            }),
          scoring: true,
        };
      }
      case 'constant_score':
        return { match: compile((body as { filter?: unknown })?.filter).match, scoring: true };
      case 'bool': {
        if (!isObject(body)) throw parsing('[bool] query malformed, no start_object after query name');
        const must = clauses(body.must).map(compile);
        const filter = clauses(body.filter).map(compile);
        const should = clauses(body.should).map(compile);
        const mustNot = clauses(body.must_not).map(compile);
        const msm = body.minimum_should_match;
        const needShould = msm !== undefined ? Number.parseInt(String(msm), 10) || 0 : must.length || filter.length ? 0 : should.length ? 1 : 0;
        return {
          match: (d) =>
            must.every((c) => c.match(d)) &&
            filter.every((c) => c.match(d)) &&
            !mustNot.some((c) => c.match(d)) &&
            (needShould === 0 || should.filter((c) => c.match(d)).length >= needShould),
          scoring: must.length > 0 || should.length > 0,
        };
      }
      default:
        throw EsError.of(
          400,
          cause('parsing_exception', `unknown query [${kind}]`, { line: 1, col: 1 }, cause('named_object_not_found_exception', `[1:1] unknown field [${kind}]`)),
        );
    }
  };
  return compile(query);
}
