/**
 * Names of the things a schema entry owns besides its alias: the physical index of each generation, the
 * replication slot of a rebuild, the record of a requested reindex.
 */
import { createHash } from 'node:crypto';
import type { EntryPlan } from '../schema/sync-plan.js';
import { buildDocumentQuery } from '../transform/document-query.js';

/**
 * A digest of everything that shapes the index or its documents: the document query (nodes, columns,
 * relationships, transforms), settings, mappings, routing and ingest pipeline. Changing any of them means a new
 * generation; anything else (batch sizes, credentials) does not.
 */
export function entryFingerprint(plan: EntryPlan): string {
  // The order rows are read in shapes no document: the query is taken in primary-key order whatever the scan order,
  // so that scanning a composite key in its index's order did not rebuild every such index.
  const inKeyOrder: EntryPlan = { ...plan, root: { ...plan.root, keyOrder: undefined } };
  const shape = {
    query: buildDocumentQuery(inKeyOrder, { kind: 'all' }).text,
    settings: plan.settings ?? null,
    mappings: plan.mappings ?? null,
    routing: plan.routing ?? null,
    pipeline: plan.pipeline ?? null,
  };
  return createHash('sha256').update(canonicalJson(shape)).digest('hex').slice(0, 12);
}

/** `<index>-<fingerprint>`, with a suffix when the same fingerprint is rebuilt on request. */
export function generationName(index: string, fingerprint: string, suffix?: string): string {
  return suffix ? `${index}-${fingerprint}-${suffix}` : `${index}-${fingerprint}`;
}

/** True when `physical` is named like a generation of `index` (`<index>-<fingerprint>[-<suffix>]`), of any fingerprint. */
export function isAnyGenerationOf(physical: string, index: string): boolean {
  if (!physical.startsWith(`${index}-`)) return false;
  return /^[0-9a-f]{12}(-[0-9a-z]+)?$/.test(physical.slice(index.length + 1));
}

/** True when `physical` is a generation of `index` built from `fingerprint`. */
export function isGenerationOf(physical: string, index: string, fingerprint: string): boolean {
  const base = generationName(index, fingerprint);
  return physical === base || physical.startsWith(`${base}-`);
}

/** Slot names are at most 63 bytes; the rebuild suffix takes 2. */
const MAX_PLAIN_REBUILD_BASE = 61;

/**
 * Slot (and checkpoint name) of a rebuild, beside the entry's own slot: `<slot>_r`. A slot name too long for the
 * suffix keeps its first characters and a digest of the whole: cut alone, two entries differing only in their last
 * characters would share one rebuild slot and checkpoint.
 */
export function rebuildSlotName(slot: string): string {
  if (slot.length <= MAX_PLAIN_REBUILD_BASE) return `${slot}_r`;
  const digest = createHash('sha256').update(slot).digest('hex').slice(0, 8);
  return `${slot.slice(0, MAX_PLAIN_REBUILD_BASE - digest.length - 1)}_${digest}_r`;
}

/**
 * The rebuild slot name earlier versions gave a slot of more than 61 characters (its first 61 and "_r"), so that the
 * cleanups find a rebuild such a version started; undefined for shorter slots, whose rebuild slot name is unchanged.
 */
export function earlierRebuildSlotName(slot: string): string | undefined {
  return slot.length > MAX_PLAIN_REBUILD_BASE ? `${slot.slice(0, MAX_PLAIN_REBUILD_BASE)}_r` : undefined;
}

/** True when `name` is the slot or the rebuild slot of one of `slots` (the current entries' slots). */
export function isSlotOrRebuildOf(name: string, slots: Iterable<string>): boolean {
  for (const slot of slots) if (slot === name || rebuildSlotName(slot) === name) return true;
  return false;
}

/**
 * The rebuild slots (and checkpoint names) of `slot` to drop with it: its own, and the earlier form when the entry's
 * checkpoint records a rebuild under that name and no other current entry uses the name (the earlier form could be another
 * entry's slot or rebuild slot now). Any other recorded name is not trusted: a hand edit could name anything.
 */
export function rebuildSlotsToDrop(slot: string, recorded: string | undefined, currentSlots: Iterable<string>): string[] {
  const earlier = earlierRebuildSlotName(slot);
  return earlier !== undefined && recorded === earlier && !isSlotOrRebuildOf(earlier, currentSlots) ? [rebuildSlotName(slot), earlier] : [rebuildSlotName(slot)];
}

/** Checkpoint-store record through which `sluice reindex` asks for a rebuild (read by the running instance). */
export function reindexRequestName(slot: string): string {
  return `${slot}.reindex`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
