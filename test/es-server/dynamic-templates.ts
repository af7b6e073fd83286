import type { FieldDef, RootMapping } from './mapping-defs.js';
import { looksLikeDate } from './dates.js';

type Template = {
  match_mapping_type?: string | string[];
  unmatch_mapping_type?: string | string[];
  match?: string | string[];
  unmatch?: string | string[];
  path_match?: string | string[];
  path_unmatch?: string | string[];
  match_pattern?: string;
  mapping?: Record<string, unknown>;
};

function detectedType(sample: unknown, mapping: RootMapping): string {
  if (typeof sample === 'string') return mapping.date_detection !== false && looksLikeDate(sample) ? 'date' : 'string';
  if (typeof sample === 'number') return Number.isInteger(sample) ? 'long' : 'double';
  if (typeof sample === 'boolean') return 'boolean';
  return 'object';
}

function matches(patterns: string | string[] | undefined, value: string, regex: boolean): boolean | undefined {
  if (patterns === undefined) return undefined;
  const list = Array.isArray(patterns) ? patterns : [patterns];
  return list.some((p) =>
    regex ? new RegExp(p).test(value) : new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$').test(value),
  );
}

function substitute(value: unknown, name: string, dynamicType: string): unknown {
  if (typeof value === 'string') return value.replaceAll('{name}', name).replaceAll('{dynamic_type}', dynamicType);
  if (Array.isArray(value)) return value.map((v) => substitute(v, name, dynamicType));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, name, dynamicType)]));
  }
  return value;
}

/** The first matching `dynamic_templates` entry's mapping for a new field, like ES's dynamic templates. */
export function dynamicTemplateFor(mapping: RootMapping, path: string, name: string, sample: unknown): FieldDef | undefined {
  const templates = mapping.dynamic_templates;
  if (!Array.isArray(templates)) return undefined;
  const dynamicType = detectedType(sample, mapping);
  for (const entry of templates) {
    if (typeof entry !== 'object' || entry === null) continue;
    const template = Object.values(entry)[0] as Template | undefined;
    if (!template?.mapping) continue;
    const regex = template.match_pattern === 'regex';
    const mmt = template.match_mapping_type;
    if (mmt !== undefined && mmt !== '*' && !(Array.isArray(mmt) ? mmt : [mmt]).includes(dynamicType)) continue;
    if (matches(template.unmatch_mapping_type, dynamicType, false) === true) continue;
    if (matches(template.match, name, regex) === false || matches(template.unmatch, name, regex) === true) continue;
    if (matches(template.path_match, path, false) === false || matches(template.path_unmatch, path, false) === true) continue;
    const def = substitute(template.mapping, name, dynamicType === 'string' ? 'text' : dynamicType) as FieldDef;
    if (dynamicType === 'object' && def.type === undefined) return { ...def, properties: {} };
    return def.type === undefined ? { ...def, type: dynamicType === 'string' ? 'text' : dynamicType === 'double' ? 'float' : dynamicType } : def;
  }
  return undefined;
}
