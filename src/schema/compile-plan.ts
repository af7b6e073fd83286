import type { Problem } from '../errors/app-error.js';
import type { Catalog, ColumnInfo, RelationInfo } from '../source/postgres/catalog.js';
import { buildIndexMappings } from './index-mappings.js';
import { ProblemList } from './problem-list.js';
import { resolveJoin, resolveThrough } from './resolve-joins.js';
import type { NodeSpec, SchemaEntry } from './schema-types.js';
import type { EntryPlan, PlanColumn, PlanNode } from './sync-plan.js';
import { checkTransforms } from './check-transforms.js';

const XMIN_COLUMN: ColumnInfo = { name: 'xmin', type: 'xid', baseTypeName: 'xid', isArray: false, category: 'U' };

/** Checks a parsed schema entry against the database catalog and compiles it into an EntryPlan. */
export function compilePlan(entry: SchemaEntry, catalog: Catalog): { plan?: EntryPlan; problems: Problem[] } {
  const problems = new ProblemList();
  const root = compileNode(entry.nodes, undefined, entry.nodes.table, true, catalog, problems);
  if (!root || problems.hasErrors()) return { problems: problems.all() };
  checkTransforms(root, problems);
  if (entry.routing !== undefined && !rootFieldKeys(root).has(entry.routing)) {
    problems.error(`${entry.location}.routing`, `routing field "${entry.routing}" is not a top-level field of the document (fields: ${[...rootFieldKeys(root)].join(', ')})`);
  }
  const mappings = buildIndexMappings(entry, root, problems);
  if (problems.hasErrors()) return { problems: problems.all() };
  const plan: EntryPlan = {
    entry,
    database: entry.database,
    index: entry.index,
    root,
    routing: entry.routing,
    pipeline: entry.pipeline,
    settings: entry.setting,
    mappings,
  };
  return { plan, problems: problems.all() };
}

/** Top-level keys of the root document that can carry a routing value: columns and concat destinations. */
export function rootFieldKeys(root: PlanNode): Set<string> {
  const keys = new Set(root.columns.map((c) => root.transform.rename.get(c.spec.key) ?? c.spec.key));
  for (const concat of root.transform.concat) keys.add(concat.destination);
  return keys;
}

function compileNode(
  spec: NodeSpec,
  parent: { node: NodeSpec; relation: RelationInfo; plan: { singleValued: boolean } } | undefined,
  outputKey: string,
  singleValuedPath: boolean,
  catalog: Catalog,
  problems: ProblemList,
): PlanNode | undefined {
  if (!catalog.schemas.has(spec.schema)) {
    problems.error(`${spec.location}.schema`, `schema "${spec.schema}" does not exist in the database`);
    return undefined;
  }
  const relation = catalog.relation(spec.schema, spec.table);
  if (!relation) {
    problems.error(`${spec.location}.table`, `table "${spec.schema}.${spec.table}" does not exist`);
    return undefined;
  }
  const keyInIndexOrder = resolvePrimaryKey(spec, relation, problems);
  const primaryKey = keyInIndexOrder === undefined ? undefined : [...keyInIndexOrder].sort();
  const columns = resolveColumns(spec, relation, problems);
  for (const base of spec.baseTables) {
    if (!catalog.relation(spec.schema, base)) problems.error(`${spec.location}.base_tables`, `base table "${spec.schema}.${base}" does not exist`);
  }
  let relationship: PlanNode['relationship'];
  let singleValued = singleValuedPath;
  if (parent && spec.relationship) {
    const rel = spec.relationship;
    singleValued = singleValuedPath && rel.type === 'one_to_one';
    if (rel.throughTable) {
      const through = resolveThrough(spec, rel, parent.node, parent.relation, relation, catalog, problems);
      if (through) relationship = { type: rel.type, variant: rel.variant, through };
    } else {
      const join = resolveJoin(spec, rel, parent.node, parent.relation, relation, catalog, problems);
      if (join) relationship = { type: rel.type, variant: rel.variant, join };
    }
    if (rel.variant === 'scalar') checkScalar(spec, columns, problems);
  }
  const children: PlanNode[] = [];
  for (const child of spec.children) {
    const childKey = spec.transform.rename.get(child.label) ?? child.label;
    const compiled = compileNode(child, { node: spec, relation, plan: { singleValued } }, childKey, singleValued, catalog, problems);
    if (compiled) children.push(compiled);
  }
  if (!primaryKey || !columns || (parent && !relationship)) return undefined;
  const generatedLinks = generatedLinkColumns(catalog, { schema: spec.schema, table: spec.table, relation }, primaryKey, relationship, parent && { schema: parent.node.schema, table: parent.node.table, relation: parent.relation });
  return {
    location: spec.location,
    schema: spec.schema,
    table: spec.table,
    label: spec.label,
    outputKey,
    primaryKey,
    keyOrder: keyInIndexOrder,
    ...(relation.primaryKey.length === 0 ? { declaredKey: true as const } : {}),
    ...(relation.kind === 'table' || relation.kind === 'partitioned table' ? {} : { relationKind: relation.kind }),
    ...(generatedLinks.length > 0 ? { generatedLinks } : {}),
    primaryKeyTypes: Object.fromEntries(primaryKey.map((c) => [c, relation.columns.get(c)?.type ?? 'text'])),
    ...underlyingKeyTypes(primaryKey, relation),
    columns,
    children,
    relationship,
    transform: spec.transform,
    singleValued,
  };
}

/** The key columns in the order of the table's primary-key index (as declared for `primary_key`). */
function underlyingKeyTypes(primaryKey: string[], relation: RelationInfo): { primaryKeyUnderlyingTypes?: Record<string, string> } {
  const entries = primaryKey.flatMap((c) => {
    const underlying = relation.columns.get(c)?.underlyingType;
    return underlying === undefined ? [] : [[c, underlying] as const];
  });
  return entries.length === 0 ? {} : { primaryKeyUnderlyingTypes: Object.fromEntries(entries) };
}

function resolvePrimaryKey(spec: NodeSpec, relation: RelationInfo, problems: ProblemList): string[] | undefined {
  if (relation.primaryKey.length > 0) {
    if (spec.primaryKey && spec.primaryKey.join() !== relation.primaryKey.join()) {
      problems.warning(`${spec.location}.primary_key`, `"${relation.schema}.${relation.name}" has a primary key (${relation.primaryKey.join(', ')}); primary_key is only used for views and tables without one`);
    }
    return relation.primaryKey;
  }
  if (!spec.primaryKey || spec.primaryKey.length === 0) {
    const what = relation.kind.includes('view') ? `${relation.kind} "${relation.schema}.${relation.name}"` : `table "${relation.schema}.${relation.name}" has no primary key and`;
    problems.error(`${spec.location}.primary_key`, relation.kind.includes('view') ? `${what} needs "primary_key": the columns that identify a row` : `${what} needs "primary_key": the columns that identify a row`);
    return undefined;
  }
  const missing = spec.primaryKey.filter((c) => !relation.columns.has(c));
  if (missing.length > 0) {
    problems.error(`${spec.location}.primary_key`, `primary_key column(s) ${missing.map((c) => `"${c}"`).join(', ')} not found on "${relation.schema}.${relation.name}"`);
    return undefined;
  }
  return spec.primaryKey;
}

function resolveColumns(spec: NodeSpec, relation: RelationInfo, problems: ProblemList): PlanColumn[] | undefined {
  if (!spec.columns) {
    return [...relation.columns.values()].map((info) => ({ spec: { raw: info.name, column: info.name, path: [], key: info.name, location: `${spec.location}.columns` }, info }));
  }
  const columns: PlanColumn[] = [];
  let ok = true;
  for (const column of spec.columns) {
    const info = relation.columns.get(column.column) ?? (column.column === 'xmin' && column.path.length === 0 ? XMIN_COLUMN : undefined);
    if (!info) {
      problems.error(column.location, `column "${column.column}" not found on "${relation.schema}.${relation.name}" (columns: ${[...relation.columns.keys()].join(', ')})`);
      ok = false;
    } else if (column.path.length > 0 && !['json', 'jsonb'].includes(info.baseTypeName)) {
      problems.error(column.location, `"${column.raw}" uses a JSON operator but "${column.column}" is of type ${info.type}, not json or jsonb`);
      ok = false;
    } else columns.push({ spec: column, info });
  }
  return ok ? columns : undefined;
}

function checkScalar(spec: NodeSpec, columns: PlanColumn[] | undefined, problems: ProblemList): void {
  if (columns && columns.length > 1) {
    problems.warning(`${spec.location}.columns`, `a scalar relationship uses only the first column ("${columns[0]?.spec.key}"); the other ${columns.length - 1} are ignored`);
  }
  if (spec.children.length > 0) problems.warning(`${spec.location}.children`, 'children of a scalar node are not part of the document');
}

interface NamedRelation {
  schema: string;
  table: string;
  relation: RelationInfo;
}

/**
 * The root's key columns and the join columns of a relationship that are generated, as `schema.table.column`. A child's
 * or through table's own key is not among them: changes reach documents through join columns (old ones from
 * REPLICA IDENTITY FULL), never through those keys.
 */
function generatedLinkColumns(catalog: Catalog, node: NamedRelation, primaryKey: string[], relationship: PlanNode['relationship'], parent: NamedRelation | undefined): string[] {
  const found: string[] = [];
  const check = (side: NamedRelation | undefined, columns: string[]) => {
    for (const column of columns) if (side?.relation.columns.get(column)?.generated === true) found.push(`${side.schema}.${side.table}.${column}`);
  };
  if (parent === undefined) check(node, primaryKey);
  if (relationship?.join) {
    check(node, relationship.join.childColumns);
    check(parent, relationship.join.parentColumns);
  }
  const through = relationship?.through;
  if (through) {
    const relation = catalog.relation(through.schema, through.table);
    const side = relation && { schema: through.schema, table: through.table, relation };
    check(side, [...through.parentJoin.childColumns, ...through.childJoin.parentColumns]);
    check(parent, through.parentJoin.parentColumns);
    check(node, through.childJoin.childColumns);
  }
  return [...new Set(found)];
}

/**
 * What live sync (bootstrap, run) cannot follow: a node that reads a view, materialized view or foreign table. Its rows
 * change without any WAL record of it (a view's through its base tables, which `base_tables` only names), and a
 * publication cannot hold it. `sluice sync --once` reads such nodes like tables.
 */
export function liveSyncProblems(plans: EntryPlan[]): Problem[] {
  const problems: Problem[] = [];
  const visit = (node: PlanNode) => {
    if (node.relationKind !== undefined) {
      problems.push({
        location: `${node.location}.table`,
        severity: 'error',
        message:
          `"${node.schema}.${node.table}" is a ${node.relationKind}: its changes are not in the WAL, so live sync (bootstrap, run) cannot follow it ` +
          '(base_tables are not followed either). Use its tables as nodes, or sync it with `sluice sync --once`',
      });
    }
    if (node.generatedLinks !== undefined) {
      problems.push({
        location: node.location,
        severity: 'error',
        message:
          `${node.generatedLinks.join(', ')} ${node.generatedLinks.length === 1 ? 'is a generated column' : 'are generated columns'} that ` +
          `${node.generatedLinks.length === 1 ? 'keys or joins' : 'key or join'} this node: PostgreSQL leaves generated values out of the WAL, so a row moved or deleted ` +
          'could not be traced to the documents that hold it. Join on the columns it is generated from (sync --once reads it as is)',
      });
    }
    node.children.forEach(visit);
  };
  for (const plan of plans) visit(plan.root);
  return problems;
}
