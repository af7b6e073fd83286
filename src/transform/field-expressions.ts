import type { PlanColumn } from '../schema/sync-plan.js';
import { quoteIdent, quoteLiteral, textArrayLiteral } from './sql.js';

/**
 * A value in a document under construction. `kind` says how to turn it into text (for concat and routing):
 * `text` is already text, `json` is json/jsonb, `other` uses PostgreSQL's text output.
 */
export interface FieldValue {
  expr: string;
  kind: 'text' | 'json' | 'other';
}

const TEXT_CATEGORY = 'S';

/** The SQL for one `columns` entry of a node at `alias`, with the node's `replace` rules applied. */
export function columnValue(alias: string, column: PlanColumn, replace: Array<[string, string]> | undefined): FieldValue {
  const { spec, info } = column;
  let value: FieldValue;
  if (info.type === 'xid') {
    value = { expr: `${alias}.xmin::text`, kind: 'text' };
  } else if (spec.path.length > 0) {
    let expr = `${alias}.${quoteIdent(spec.column)}`;
    for (const step of spec.path) {
      const argument = Array.isArray(step.argument)
        ? textArrayLiteral(step.argument)
        : typeof step.argument === 'number'
          ? String(step.argument)
          : quoteLiteral(step.argument);
      expr = `(${expr} ${step.operator} ${argument})`;
    }
    const last = spec.path[spec.path.length - 1]!.operator;
    value = { expr, kind: last === '->>' || last === '#>>' ? 'text' : 'json' };
  } else {
    const expr = `${alias}.${quoteIdent(spec.column)}`;
    if (info.baseTypeName === 'bytea' && !info.isArray) {
      // Elasticsearch's `binary` type takes base64; PostgreSQL's base64 output wraps lines every 76 characters.
      value = { expr: `translate(encode(${expr}, 'base64'), E'\\n', '')`, kind: 'text' };
    } else if (info.baseTypeName === 'json' || info.baseTypeName === 'jsonb') {
      value = { expr, kind: info.isArray ? 'other' : 'json' };
    } else if (info.category === TEXT_CATEGORY && !info.isArray) {
      value = { expr, kind: 'text' };
    } else {
      value = { expr, kind: 'other' };
    }
  }
  return replace && replace.length > 0 ? applyReplace(value, column, replace) : value;
}

/** PGSync's `replace`: plain substring replacement on string values, element-wise on string arrays. */
function applyReplace(value: FieldValue, column: PlanColumn, pairs: Array<[string, string]>): FieldValue {
  const replaced = (text: string) => pairs.reduce((acc, [search, by]) => `replace(${acc}, ${quoteLiteral(search)}, ${quoteLiteral(by)})`, text);
  if (value.kind === 'text') return { expr: replaced(value.expr), kind: 'text' };
  if (value.kind === 'json') {
    const v = `(${value.expr})::json`;
    return { expr: `CASE WHEN json_typeof(${v}) = 'string' THEN to_json(${replaced(`(${v} #>> '{}')`)}) ELSE ${v} END`, kind: 'json' };
  }
  if (column.info.isArray && column.info.category === TEXT_CATEGORY && column.spec.path.length === 0) {
    return {
      expr: `CASE WHEN ${value.expr} IS NULL THEN NULL ELSE ARRAY(SELECT ${replaced('u.x')} FROM unnest(${value.expr}) WITH ORDINALITY AS u(x, o) ORDER BY u.o) END`,
      kind: 'other',
    };
  }
  return value;
}

/** Text form of a value, for concat and routing; NULL stays NULL. */
export function asText(value: FieldValue): string {
  if (value.kind === 'text') return value.expr;
  if (value.kind === 'json') return `((${value.expr})::json #>> '{}')`;
  return `(${value.expr})::text`;
}

/**
 * json_build_object takes at most 100 arguments; wider objects are built in parts and merged as jsonb
 * (which then orders keys by jsonb's rules).
 */
export function buildObject(fields: Array<[string, FieldValue]>): string {
  const args = (part: Array<[string, FieldValue]>) => part.map(([key, value]) => `${quoteLiteral(key)}, ${value.expr}`).join(', ');
  if (fields.length <= 50) return `json_build_object(${args(fields)})`;
  const parts: string[] = [];
  for (let i = 0; i < fields.length; i += 50) parts.push(`jsonb_build_object(${args(fields.slice(i, i + 50))})`);
  return `(${parts.join(' || ')})::json`;
}
