import type { Catalog, ForeignKeyInfo, RelationInfo } from '../source/postgres/catalog.js';
import type { ProblemList } from './problem-list.js';
import type { NodeSpec, RelationshipSpec } from './schema-types.js';
import type { JoinColumns, ThroughTable } from './sync-plan.js';

type TableRef = { schema: string; table: string };

/** Join columns between a parent node and a non-through child: explicit foreign_key, else the one FK constraint. */
export function resolveJoin(
  child: NodeSpec,
  rel: RelationshipSpec,
  parent: NodeSpec,
  parentRelation: RelationInfo,
  childRelation: RelationInfo,
  catalog: Catalog,
  problems: ProblemList,
): JoinColumns | undefined {
  if (rel.foreignKey) {
    const at = `${rel.location}.foreign_key`;
    const missingParent = rel.foreignKey.parent.filter((c) => !parentRelation.columns.has(c));
    const missingChild = rel.foreignKey.child.filter((c) => !childRelation.columns.has(c));
    if (missingParent.length > 0) problems.error(`${at}.parent`, `column(s) ${missingParent.join(', ')} not found on parent "${parent.schema}.${parent.table}"`);
    if (missingChild.length > 0) problems.error(`${at}.child`, `column(s) ${missingChild.join(', ')} not found on child "${child.schema}.${child.table}"`);
    if (missingParent.length + missingChild.length > 0) return undefined;
    return { parentColumns: rel.foreignKey.parent, childColumns: rel.foreignKey.child };
  }
  const parentRef = { schema: parent.schema, table: parent.table };
  const childRef = { schema: child.schema, table: child.table };
  return pickForeignKey(catalog.foreignKeysBetween(parentRef, childRef), parentRef, childRef, rel.location, problems);
}

/** Through (many-to-many) join: one FK between the through table and each side. */
export function resolveThrough(
  child: NodeSpec,
  rel: RelationshipSpec,
  parent: NodeSpec,
  _parentRelation: RelationInfo,
  _childRelation: RelationInfo,
  catalog: Catalog,
  problems: ProblemList,
): ThroughTable | undefined {
  const spec = rel.throughTable!;
  const at = `${rel.location}.through_tables`;
  const throughRef = { schema: spec.schema ?? child.schema, table: spec.table };
  if (rel.foreignKey) {
    problems.error(`${rel.location}.foreign_key`, 'foreign_key cannot be combined with through_tables: declare foreign keys from the through table to both sides');
    return undefined;
  }
  if (!catalog.schemas.has(throughRef.schema)) {
    problems.error(at, `schema "${throughRef.schema}" of through table "${spec.table}" does not exist`);
    return undefined;
  }
  const through = catalog.relation(throughRef.schema, throughRef.table);
  if (!through) {
    problems.error(at, `through table "${throughRef.schema}.${throughRef.table}" does not exist`);
    return undefined;
  }
  if (through.primaryKey.length === 0) {
    problems.error(at, `through table "${throughRef.schema}.${throughRef.table}" has no primary key`);
    return undefined;
  }
  const parentRef = { schema: parent.schema, table: parent.table };
  const childRef = { schema: child.schema, table: child.table };
  const parentJoin = pickForeignKey(catalog.foreignKeysBetween(parentRef, throughRef), parentRef, throughRef, at, problems);
  const childSide = pickForeignKey(catalog.foreignKeysBetween(throughRef, childRef), throughRef, childRef, at, problems);
  if (!parentJoin || !childSide) return undefined;
  return { schema: throughRef.schema, table: throughRef.table, primaryKey: [...through.primaryKey].sort(), parentJoin, childJoin: childSide };
}

/**
 * Exactly one FK constraint must link the two tables (either direction); it becomes the join columns.
 * For a self-reference the child rows are those whose FK points at the parent row.
 */
function pickForeignKey(candidates: ForeignKeyInfo[], parent: TableRef, child: TableRef, at: string, problems: ProblemList): JoinColumns | undefined {
  const name = (t: TableRef) => `${t.schema}.${t.table}`;
  if (candidates.length === 0) {
    problems.error(at, `no foreign key between "${name(parent)}" and "${name(child)}"; declare one or add "foreign_key": {"parent": [...], "child": [...]}`);
    return undefined;
  }
  if (candidates.length > 1) {
    const list = candidates.map((fk) => `${fk.name} (${name(fk.from)}(${fk.from.columns.join(', ')}) → ${name(fk.to)}(${fk.to.columns.join(', ')}))`).join('; ');
    problems.error(at, `ambiguous: ${candidates.length} foreign keys link "${name(parent)}" and "${name(child)}": ${list}; choose one with "foreign_key"`);
    return undefined;
  }
  const fk = candidates[0]!;
  const childReferencesParent = fk.from.schema === child.schema && fk.from.table === child.table;
  return childReferencesParent
    ? { parentColumns: fk.to.columns, childColumns: fk.from.columns }
    : { parentColumns: fk.from.columns, childColumns: fk.to.columns };
}
