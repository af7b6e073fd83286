import type { ConcatSpec, MoveSpec, TransformSpec } from './schema-types.js';
import { isPlainObject, type ProblemList } from './problem-list.js';
import { checkFieldMapping } from './field-mapping-rules.js';

const TRANSFORM_KEYS = new Set(['rename', 'replace', 'concat', 'mapping', 'move']);

export function parseTransform(raw: unknown, at: string, problems: ProblemList): TransformSpec | undefined {
  const transform: TransformSpec = { rename: new Map(), replace: new Map(), concat: [], move: [], mapping: new Map() };
  if (raw === undefined || raw === null) return transform;
  if (!isPlainObject(raw)) {
    problems.error(at, '"transform" must be an object');
    return undefined;
  }
  problems.unknownKeys(raw, TRANSFORM_KEYS, at, 'transform');
  parseRename(raw.rename, `${at}.rename`, transform, problems);
  parseReplace(raw.replace, `${at}.replace`, transform, problems);
  forEachRule(raw.concat, `${at}.concat`, problems, (rule, ruleAt) => {
    const concat = parseConcat(rule, ruleAt, problems);
    if (concat) transform.concat.push(concat);
  });
  forEachRule(raw.move, `${at}.move`, problems, (rule, ruleAt) => {
    const move = parseMove(rule, ruleAt, problems);
    if (move) transform.move.push(move);
  });
  if (raw.mapping !== undefined) {
    if (!isPlainObject(raw.mapping)) problems.error(`${at}.mapping`, '"mapping" must be an object of field name → mapping');
    else
      for (const [field, mapping] of Object.entries(raw.mapping)) {
        if (checkFieldMapping(mapping, `${at}.mapping.${field}`, problems)) transform.mapping.set(field, mapping);
      }
  }
  return transform;
}

function parseRename(raw: unknown, at: string, transform: TransformSpec, problems: ProblemList): void {
  if (raw === undefined) return;
  if (!isPlainObject(raw)) return problems.error(at, '"rename" must be an object of old name → new name');
  const targets = new Set<string>();
  for (const [from, to] of Object.entries(raw)) {
    // PGSync stringifies non-string targets (e.g. 42 → "42").
    const target = typeof to === 'string' ? to : typeof to === 'number' ? String(to) : undefined;
    if (target === undefined || target === '') problems.error(`${at}.${from}`, `rename target must be a non-empty string, got ${JSON.stringify(to)}`);
    else if (targets.has(target)) problems.error(`${at}.${from}`, `two fields are renamed to "${target}"`);
    else {
      targets.add(target);
      transform.rename.set(from, target);
    }
  }
}

function parseReplace(raw: unknown, at: string, transform: TransformSpec, problems: ProblemList): void {
  if (raw === undefined) return;
  if (!isPlainObject(raw)) return problems.error(at, '"replace" must be an object of column → {search: replacement}');
  for (const [column, pairs] of Object.entries(raw)) {
    if (!isPlainObject(pairs) || !Object.values(pairs).every((v) => typeof v === 'string')) {
      problems.error(`${at}.${column}`, 'replace rules must be an object of search string → replacement string');
      continue;
    }
    const list = Object.entries(pairs as Record<string, string>).filter(([search]) => search !== '');
    transform.replace.set(column, list);
  }
}

function forEachRule(raw: unknown, at: string, problems: ProblemList, visit: (rule: unknown, at: string) => void): void {
  if (raw === undefined) return;
  if (Array.isArray(raw)) raw.forEach((rule, i) => visit(rule, `${at}[${i}]`));
  else if (isPlainObject(raw)) visit(raw, at);
  else problems.error(at, 'must be an object or a list of objects');
}

function parseConcat(rule: unknown, at: string, problems: ProblemList): ConcatSpec | undefined {
  if (!isPlainObject(rule)) {
    problems.error(at, 'a concat rule must be an object {columns, destination, delimiter}');
    return undefined;
  }
  problems.unknownKeys(rule, new Set(['columns', 'destination', 'delimiter']), at, 'concat');
  const columns = problems.optionalStringList(rule, 'columns', at);
  const destination = problems.requiredString(rule, 'destination', at);
  const delimiter = rule.delimiter === undefined ? '' : typeof rule.delimiter === 'string' ? rule.delimiter : undefined;
  if (delimiter === undefined) problems.error(`${at}.delimiter`, '"delimiter" must be a string');
  if (!columns || columns.length === 0) problems.error(`${at}.columns`, '"columns" must list at least one column or literal');
  if (!columns || columns.length === 0 || destination === undefined || delimiter === undefined) return undefined;
  return { columns, destination, delimiter, location: at };
}

function parseMove(rule: unknown, at: string, problems: ProblemList): MoveSpec | undefined {
  if (!isPlainObject(rule)) {
    problems.error(at, 'a move rule must be an object {column, destination}');
    return undefined;
  }
  problems.unknownKeys(rule, new Set(['column', 'destination']), at, 'move');
  const column = problems.requiredString(rule, 'column', at);
  const destination = problems.requiredString(rule, 'destination', at);
  if (destination !== undefined && destination.split('.').some((part) => part === '')) {
    problems.error(`${at}.destination`, `destination "${destination}" has an empty path segment`);
    return undefined;
  }
  if (destination === '$root') {
    problems.error(`${at}.destination`, 'destination "$root" needs a field name: "$root.<name>" (a field of the root document)');
    return undefined;
  }
  if (column === undefined || destination === undefined) return undefined;
  return { column, destination, location: at };
}
