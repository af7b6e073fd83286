import { isPlainObject, type ProblemList } from './problem-list.js';
import type { SchemaEntry } from './schema-types.js';
import type { PlanNode } from './sync-plan.js';

// Keys that mark an object as a whole `mappings` body rather than a `properties` map.
const MAPPINGS_LEVEL_KEYS = new Set(['properties', 'dynamic', 'dynamic_templates', '_source', '_routing', '_meta', 'date_detection', 'numeric_detection', 'runtime']);

/**
 * The index `mappings`: the entry's `mapping` (a properties map, or a whole mappings body) and `mappings`,
 * merged with every node's transform.mapping placed under its path, plus `_routing.required` when `routing`
 * is set. PGSync let a top-level `mapping` silently drop the rest (pgsync-reference §5.2); here all are merged
 * and a conflict on one field is reported.
 */
export function buildIndexMappings(entry: SchemaEntry, root: PlanNode, problems: ProblemList): Record<string, unknown> | undefined {
  const result: Record<string, unknown> = {};
  if (entry.mappings) mergeInto(result, entry.mappings, `${entry.location}.mappings`, problems);
  if (entry.mapping) {
    const body = Object.keys(entry.mapping).some((k) => MAPPINGS_LEVEL_KEYS.has(k)) ? entry.mapping : { properties: entry.mapping };
    mergeInto(result, body, `${entry.location}.mapping`, problems);
  }
  const derived = nodeProperties(root);
  if (Object.keys(derived).length > 0) mergeInto(result, { properties: derived }, `${root.location}.transform.mapping`, problems);
  if (entry.routing !== undefined && result._routing === undefined) result._routing = { required: true };
  return Object.keys(result).length > 0 ? result : undefined;
}

function nodeProperties(node: PlanNode): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [field, mapping] of node.transform.mapping) {
    // Accept the pre-rename name as well: PGSync crashed on it (pgsync-reference §1.6).
    properties[node.transform.rename.get(field) ?? field] = mapping;
  }
  for (const child of node.children) {
    if (child.relationship?.variant === 'scalar') continue;
    const childProperties = nodeProperties(child);
    if (Object.keys(childProperties).length === 0) continue;
    const existing = properties[child.outputKey];
    properties[child.outputKey] = isPlainObject(existing)
      ? { ...existing, properties: { ...(isPlainObject(existing.properties) ? existing.properties : {}), ...childProperties } }
      : { properties: childProperties };
  }
  return properties;
}

function mergeInto(target: Record<string, unknown>, source: Record<string, unknown>, at: string, problems: ProblemList, path = ''): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = target[key];
    if (existing === undefined) target[key] = value;
    else if (isPlainObject(existing) && isPlainObject(value)) {
      const merged = { ...existing };
      mergeInto(merged, value, at, problems, `${path}${key}.`);
      target[key] = merged;
    } else if (JSON.stringify(existing) !== JSON.stringify(value)) {
      problems.error(at, `mapping conflict at "${path}${key}": ${JSON.stringify(existing)} vs ${JSON.stringify(value)}`);
    }
  }
}
