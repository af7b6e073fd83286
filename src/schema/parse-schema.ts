import type { Problem } from '../errors/app-error.js';
import { parseColumnSpec } from './parse-column.js';
import { parseTransform } from './parse-transform.js';
import {
  RELATIONSHIP_TYPES,
  RELATIONSHIP_VARIANTS,
  type ColumnSpec,
  type NodeSpec,
  type RelationshipSpec,
  type RelationshipType,
  type RelationshipVariant,
  type SchemaEntry,
} from './schema-types.js';
import { isPlainObject, ProblemList } from './problem-list.js';

const ENTRY_KEYS = new Set(['database', 'index', 'nodes', 'setting', 'mapping', 'mappings', 'routing', 'pipeline', 'plugins', 'schema']);
const NODE_KEYS = new Set(['table', 'schema', 'label', 'columns', 'primary_key', 'children', 'relationship', 'transform', 'base_tables']);
const RELATIONSHIP_KEYS = new Set(['type', 'variant', 'through_tables', 'foreign_key']);

export interface ParsedSchema {
  entries: SchemaEntry[];
  problems: Problem[];
}

/**
 * Structural check of schema.json (PGSync format): every problem is collected with its JSON location.
 * `env` feeds PGSync's `$NAME`/`${NAME}` substitution in top-level string values.
 */
export function parseSchema(document: unknown, env: Record<string, string | undefined> = {}): ParsedSchema {
  const problems = new ProblemList();
  const entries: SchemaEntry[] = [];
  if (!Array.isArray(document)) {
    problems.error('$', 'schema.json must be a JSON array of schema entries');
    return { entries, problems: problems.all() };
  }
  if (document.length === 0) problems.error('$', 'schema.json has no entries');
  document.forEach((raw, i) => {
    const entry = parseEntry(raw, `$[${i}]`, env, problems);
    if (entry) entries.push(entry);
  });
  checkDuplicateIndexes(entries, problems);
  return { entries, problems: problems.all() };
}

function parseEntry(raw: unknown, at: string, env: Record<string, string | undefined>, problems: ProblemList): SchemaEntry | undefined {
  if (!isPlainObject(raw)) {
    problems.error(at, 'a schema entry must be an object');
    return undefined;
  }
  const value = substituteTopLevel(raw, env);
  problems.unknownKeys(value, ENTRY_KEYS, at, 'schema entry');
  const database = problems.requiredString(value, 'database', at);
  let index: string | undefined;
  if (value.index === undefined) index = database;
  else if (value.index === null) problems.error(`${at}.index`, '"index" must be a non-empty string, got null (leave it out to name the index after the database)');
  else index = problems.optionalString(value, 'index', at);
  if (index !== undefined) {
    // Without "index" the database names it: say so, and name a $NAME left unsubstituted.
    const derived = value.index === undefined;
    const unresolved = /^\$\{?[A-Za-z_][A-Za-z0-9_]*\}?$/.test(index) ? ` ("${index}" was not substituted: that environment variable is not set)` : '';
    checkIndexName(index, derived ? `${at}.database` : `${at}.index`, problems, derived ? ` (without "index", the index is named after the database; set "index")${unresolved}` : unresolved);
  }
  const rootSchema = isPlainObject(value.nodes) && typeof value.nodes.schema === 'string' ? value.nodes.schema : 'public';
  if (typeof value.schema === 'string' && isPlainObject(value.nodes) && value.schema !== rootSchema) {
    problems.warning(
      `${at}.schema`,
      `"schema" at the top of an entry is not used (as in PGSync, which reads it only in its example scripts): the root table is read from schema "${rootSchema}"; set "schema" on each node`,
    );
  }
  if (value.plugins !== undefined && !(Array.isArray(value.plugins) && value.plugins.length === 0)) {
    problems.error(`${at}.plugins`, 'PGSync plugins are Python classes and cannot run in Sluice; remove "plugins" (derive fields with transforms or in a view instead)');
  }
  const setting = problems.optionalObject(value, 'setting', at);
  const mapping = problems.optionalObject(value, 'mapping', at);
  const mappings = problems.optionalObject(value, 'mappings', at);
  const routing = problems.optionalString(value, 'routing', at);
  const pipeline = problems.optionalString(value, 'pipeline', at);
  let nodes: NodeSpec | undefined;
  if (Array.isArray(value.nodes)) {
    problems.error(`${at}.nodes`, '"nodes" is a list (PGSync v1 format); it must be a single root node object (use its first element)');
  } else if (!isPlainObject(value.nodes)) {
    problems.error(`${at}.nodes`, '"nodes" is required and must be the root node object');
  } else {
    nodes = parseNode(value.nodes, `${at}.nodes`, true, problems);
  }
  if (database === undefined || index === undefined || nodes === undefined) return undefined;
  return { database, index, nodes, setting, mapping, mappings, routing, pipeline, location: at };
}

/** PGSync substitutes `$NAME`/`${NAME}` in top-level string values only; unknown names stay as written. */
function substituteTopLevel(entry: Record<string, unknown>, env: Record<string, string | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entry)) {
    out[key] =
      typeof value === 'string'
        ? value.replace(/\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/g, (match, braced?: string, bare?: string) => env[braced ?? bare ?? ''] ?? match)
        : value;
  }
  return out;
}

function checkIndexName(index: string, at: string, problems: ProblemList, hint = ''): void {
  if (index !== index.toLowerCase()) problems.error(at, `index name "${index}" must be lowercase${hint}`);
  if (/[\\/*?"<>| ,#:]/.test(index)) problems.error(at, `index name "${index}" contains a character Elasticsearch forbids (\\ / * ? " < > | space , # :)${hint}`);
  if (/^[-_+]/.test(index) || index === '.' || index === '..') problems.error(at, `index name "${index}" must not start with -, _ or + and must not be . or ..${hint}`);
  if (Buffer.byteLength(index) > 255) problems.error(at, `index name "${index}" is longer than 255 bytes${hint}`);
}

function checkDuplicateIndexes(entries: SchemaEntry[], problems: ProblemList): void {
  const seen = new Map<string, string>();
  for (const entry of entries) {
    const first = seen.get(entry.index);
    if (first) problems.error(`${entry.location}.index`, `index "${entry.index}" is also written by ${first}; each entry needs its own index`);
    else seen.set(entry.index, entry.location);
  }
}

function parseNode(raw: Record<string, unknown>, at: string, isRoot: boolean, problems: ProblemList): NodeSpec | undefined {
  problems.unknownKeys(raw, NODE_KEYS, at, 'node');
  const table = problems.requiredString(raw, 'table', at);
  const schema = raw.schema === undefined || raw.schema === null ? 'public' : problems.optionalString(raw, 'schema', at);
  const label = raw.label === undefined || raw.label === null ? table : problems.optionalString(raw, 'label', at);
  const columns = parseColumns(raw.columns, `${at}.columns`, problems);
  const primaryKey = problems.optionalStringList(raw, 'primary_key', at);
  const baseTables = problems.optionalStringList(raw, 'base_tables', at) ?? [];
  const transform = parseTransform(raw.transform, `${at}.transform`, problems);
  let relationship: RelationshipSpec | undefined;
  if (raw.relationship !== undefined) {
    if (isRoot) problems.warning(`${at}.relationship`, 'the root node has no parent; its relationship is ignored');
    else relationship = parseRelationship(raw.relationship, `${at}.relationship`, problems);
  } else if (!isRoot) {
    problems.error(at, `child node "${table ?? '?'}" needs a "relationship" with "type" and "variant"`);
  }
  const children: NodeSpec[] = [];
  if (raw.children !== undefined) {
    if (!Array.isArray(raw.children)) problems.error(`${at}.children`, '"children" must be a list of nodes');
    else
      raw.children.forEach((child, i) => {
        const childAt = `${at}.children[${i}]`;
        if (!isPlainObject(child)) problems.error(childAt, 'a child node must be an object');
        else {
          const node = parseNode(child, childAt, false, problems);
          if (node) children.push(node);
        }
      });
  }
  checkSiblingLabels(children, problems);
  if (table === undefined || schema === undefined || label === undefined || transform === undefined) return undefined;
  if (!isRoot && relationship === undefined) return undefined;
  return { table, schema, label, columns, primaryKey, children, relationship, transform, baseTables, location: at };
}

function parseColumns(raw: unknown, at: string, problems: ProblemList): ColumnSpec[] | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (!Array.isArray(raw)) {
    problems.error(at, '"columns" must be a list of column names');
    return undefined;
  }
  // PGSync treats an empty list like an absent one: every column (examples/airbnb).
  if (raw.length === 0) return undefined;
  const columns: ColumnSpec[] = [];
  const keys = new Map<string, string>();
  raw.forEach((entry, i) => {
    const entryAt = `${at}[${i}]`;
    if (typeof entry !== 'string') {
      problems.error(entryAt, `column entries must be strings, got ${JSON.stringify(entry)}`);
      return;
    }
    const spec = parseColumnSpec(entry, entryAt);
    if (typeof spec === 'string') problems.error(entryAt, spec);
    else if (keys.has(spec.key)) problems.error(entryAt, `column "${entry}" produces the key "${spec.key}" already produced by ${keys.get(spec.key)}`);
    else {
      keys.set(spec.key, entryAt);
      columns.push(spec);
    }
  });
  return columns;
}

function parseRelationship(raw: unknown, at: string, problems: ProblemList): RelationshipSpec | undefined {
  if (!isPlainObject(raw)) {
    problems.error(at, '"relationship" must be an object with "type" and "variant"');
    return undefined;
  }
  problems.unknownKeys(raw, RELATIONSHIP_KEYS, at, 'relationship');
  const type = problems.oneOf<RelationshipType>(raw, 'type', RELATIONSHIP_TYPES, at);
  const variant = problems.oneOf<RelationshipVariant>(raw, 'variant', RELATIONSHIP_VARIANTS, at);
  let throughTable: RelationshipSpec['throughTable'];
  const through = problems.optionalStringList(raw, 'through_tables', at);
  if (through && through.length > 1) problems.error(`${at}.through_tables`, `at most one through table is supported, got ${through.length}`);
  else if (through && through.length === 1) {
    const [first = ''] = through;
    const dot = first.indexOf('.');
    throughTable = dot > 0 ? { schema: first.slice(0, dot), table: first.slice(dot + 1) } : { table: first };
  }
  let foreignKey: RelationshipSpec['foreignKey'];
  if (raw.foreign_key !== undefined) {
    const fkAt = `${at}.foreign_key`;
    const fk = raw.foreign_key;
    if (!isPlainObject(fk) || !Array.isArray(fk.parent) || !Array.isArray(fk.child)) {
      problems.error(fkAt, 'foreign_key must be {"parent": [columns], "child": [columns]}');
    } else {
      problems.unknownKeys(fk, new Set(['parent', 'child']), fkAt, 'foreign_key');
      const parent = problems.optionalStringList(fk, 'parent', fkAt) ?? [];
      const child = problems.optionalStringList(fk, 'child', fkAt) ?? [];
      if (parent.length === 0 || parent.length !== child.length) {
        problems.error(fkAt, `foreign_key needs the same non-zero number of parent and child columns (got ${parent.length} and ${child.length})`);
      } else foreignKey = { parent, child };
    }
  }
  if (type === undefined || variant === undefined) return undefined;
  return { type, variant, throughTable, foreignKey, location: at };
}

function checkSiblingLabels(children: NodeSpec[], problems: ProblemList): void {
  const seen = new Set<string>();
  for (const child of children) {
    if (seen.has(child.label)) problems.error(`${child.location}.label`, `two children of the same node use the label "${child.label}"; give them different labels`);
    seen.add(child.label);
  }
}
