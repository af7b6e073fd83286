import type { ProblemList } from './problem-list.js';
import type { PlanNode } from './sync-plan.js';

/** Every transform must name fields the node produces; `$root` moves need a single-valued path. */
export function checkTransforms(node: PlanNode, problems: ProblemList): void {
  const t = node.transform;
  const at = `${node.location}.transform`;
  const columnKeys = new Set(node.columns.map((c) => c.spec.key));
  for (const child of node.children) {
    if (columnKeys.has(child.label)) {
      problems.warning(
        `${child.location}.label`,
        `the child "${child.label}" has the name of a column of ${node.table}: the child's value replaces the column's in every document (as in PGSync); give the child another "label" to keep both`,
      );
    }
  }
  const sourceKeys = new Set([...columnKeys, ...node.children.map((c) => c.label)]);
  for (const from of t.rename.keys()) {
    if (!sourceKeys.has(from)) problems.error(`${at}.rename.${from}`, `rename of "${from}", which the node does not produce (fields: ${[...sourceKeys].join(', ')})`);
  }
  for (const column of t.replace.keys()) {
    if (!columnKeys.has(column)) problems.error(`${at}.replace.${column}`, `replace on "${column}", which is not a column of this node`);
  }
  const finalKeys = new Set<string>();
  for (const key of sourceKeys) {
    const renamed = t.rename.get(key) ?? key;
    if (finalKeys.has(renamed)) problems.error(`${at}.rename`, `two fields end up named "${renamed}"`);
    finalKeys.add(renamed);
  }
  for (const concat of t.concat) finalKeys.add(concat.destination);
  for (const move of t.move) {
    if (!finalKeys.has(move.column)) problems.error(`${move.location}.column`, `move of "${move.column}", which the node does not produce (fields: ${[...finalKeys].join(', ')})`);
    if (move.destination.startsWith('$root.') && !node.singleValued) {
      problems.error(`${move.location}.destination`, 'a move to "$root" needs every relationship from the root to this node to be one_to_one (a to-many node has several values)');
    }
  }
  for (const field of t.mapping.keys()) {
    if (finalKeys.has(field)) continue;
    const renamedTo = t.rename.get(field);
    problems.warning(
      `${at}.mapping.${field}`,
      renamedTo !== undefined
        ? `mapping of "${field}", which is renamed to "${renamedTo}": mappings name the final field, so this one maps a field no document has`
        : `mapping of "${field}", which the node does not produce (fields: ${[...finalKeys].join(', ')}): it maps a field no document has, and the field meant gets a dynamic mapping`,
    );
  }
  for (const child of node.children) checkTransforms(child, problems);
}
