import type pg from 'pg';
import type { EntryPlan, PlanNode } from '../schema/sync-plan.js';
import type { RowChange, RowValues } from '../source/change-source.js';
import { tableKey, type ChangeRoutes, type RowLookup, type TableRoute } from '../transform/change-routes.js';
import { buildDocumentQuery, routingExpression, storedRouting } from '../transform/document-query.js';
import { qualified, quoteIdent } from '../transform/sql.js';
import type { StoredCopy } from '../sink/elasticsearch/document-scan.js';
import type { ActionWriter } from './full-sync.js';
import type { BulkAction } from '../sink/document-sink.js';

export interface RoutingLookup {
  /** Every routing each id is stored under; null for a copy stored without one (its routing value was null). */
  routingsOf(index: string, ids: string[]): Promise<Map<string, Array<string | null>>>;
}

/** What the pipeline reads back from the engine: stored copies (truncate, orphans) and routing (routed deletes). */
export interface IndexScanner extends RoutingLookup {
  /** Every stored copy of every document of the index, with its routing. */
  documents(index: string): AsyncIterable<StoredCopy>;
  /** Makes every write so far visible to searches and scans. */
  refresh(index: string): Promise<void>;
}

/** Value tuples per lookup query; bounded so parameter lists stay small. */
const TUPLES_PER_QUERY = 500;
/** Roots rebuilt per document query. */
const ROOTS_PER_QUERY = 1000;

export interface ApplyResult {
  /** Root documents rebuilt (indexed) and deleted. */
  indexed: number;
  deleted: number;
  /** Row changes skipped because no column a document uses changed. */
  skippedIrrelevant: number;
  /** Row changes whose old parent could not be found: the table lacks REPLICA IDENTITY FULL. */
  missingOldValues: number;
}

type DocumentRow = [id: string, routing: string | null, source: string];

/** A batch's affected roots, the documents of the first of them already read from PostgreSQL. */
export interface BuiltChanges {
  /** Counts so far (skipped and unresolvable changes); `indexed` and `deleted` are counted when written. */
  result: ApplyResult;
  /** Every affected root's key. */
  keys: string[][];
  /**
   * The documents of the first ROOTS_PER_QUERY roots. Only those are read ahead: a change fanning out to a million
   * roots reads the rest while writing, one query at a time, so memory stays bounded by the writer's buffer.
   */
  firstRows: DocumentRow[];
  /** Ids whose routing value may have changed; undefined = any of them. */
  routingMayChange?: Set<string>;
}

/**
 * Turning a batch of row changes into document writes, first half: resolve the affected roots (old and new values
 * of every change), de-duplicate them, and read the documents of the first of them from current rows. Reads only,
 * so the stream runs it for the next batch while the previous one is still being handed to the writer.
 */
export async function buildChanges(plan: EntryPlan, routes: ChangeRoutes, pool: pg.Pool, changes: RowChange[]): Promise<BuiltChanges> {
  const result: ApplyResult = { indexed: 0, deleted: 0, skippedIrrelevant: 0, missingOldValues: 0 };
  const roots = new Map<string, string[]>();
  /** Roots whose own row changed: only their routing value can have changed (see routingFollowsRootRow). */
  const rootRows = new Set<string>();
  const lookups = new Map<TableRoute, Map<string, string[]>>();
  /** Root keys as the WAL gives them, for a key type whose WAL text is not its `::text` (TableRoute.keyTextQuery). */
  const walRootKeys = new Map<TableRoute, Map<string, string[]>>();
  /** Rows whose new values lack a value column, by key, per table. */
  const unsentRows = new Map<RowLookup, Map<string, string[]>>();
  const addTuple = (route: TableRoute, tuple: string[]) => {
    if (route.isRoot && route.keyTextQuery !== undefined) {
      let pending = walRootKeys.get(route);
      if (pending === undefined) walRootKeys.set(route, (pending = new Map<string, string[]>()));
      pending.set(JSON.stringify(tuple), tuple);
    } else if (route.isRoot) {
      const id = tuple.length === 1 ? tuple[0]! : tuple.join('|');
      roots.set(id, tuple);
      rootRows.add(id);
    } else {
      let pending = lookups.get(route);
      if (pending === undefined) lookups.set(route, (pending = new Map<string, string[]>()));
      pending.set(JSON.stringify(tuple), tuple);
    }
  };
  // A backlog is mostly runs of changes to one table: its key is made once per run.
  let lastSchema: string | undefined;
  let lastTable: string | undefined;
  let key = '';
  for (const change of changes) {
    if (change.schema !== lastSchema || change.table !== lastTable) {
      lastSchema = change.schema;
      lastTable = change.table;
      key = tableKey(change.schema, change.table);
    }
    const tableRoutes = routes.routes.get(key);
    if (!tableRoutes) continue;
    if (!isRelevant(change, routes.relevantColumns.get(key))) {
      result.skippedIrrelevant += 1;
      continue;
    }
    const newRow = mergedNew(change);
    let unsent = false;
    for (const route of tableRoutes) {
      if (change.old) {
        const tuple = tupleOf(route.valueColumns, change.old);
        if (tuple === undefined) result.missingOldValues += 1;
        else if (tuple !== null) addTuple(route, tuple);
      }
      if (newRow) {
        const tuple = tupleOf(route.valueColumns, newRow);
        if (tuple) addTuple(route, tuple);
        else if (tuple === undefined) unsent = true;
      }
    }
    // A value column neither row shows (an unchanged TOASTed value, no old row): read it from the row, by its key.
    if (unsent) {
      const lookup = routes.rowLookups.get(key);
      const rowKey = lookup && tupleOf(lookup.keyColumns, newRow!);
      if (lookup && rowKey) {
        let pending = unsentRows.get(lookup);
        if (pending === undefined) unsentRows.set(lookup, (pending = new Map<string, string[]>()));
        pending.set(JSON.stringify(rowKey), rowKey);
      } else result.missingOldValues += 1;
    }
  }
  for (const [lookup, rowKeys] of unsentRows) {
    const tableRoutes = routes.routes.get(lookup.table)!;
    const all = [...rowKeys.values()];
    for (let i = 0; i < all.length; i += TUPLES_PER_QUERY) {
      const query = lookup.currentValuesQuery(all.slice(i, i + TUPLES_PER_QUERY));
      const found = await pool.query<Array<string | null>>({ text: query.text, values: query.values, rowMode: 'array' });
      for (const values of found.rows) {
        const row = Object.create(null) as RowValues;
        lookup.valueColumns.forEach((column, c) => (row[column] = values[c]));
        for (const route of tableRoutes) {
          const tuple = tupleOf(route.valueColumns, row);
          if (tuple) addTuple(route, tuple);
        }
      }
    }
  }
  for (const [route, tuples] of walRootKeys) {
    const all = [...tuples.values()];
    for (let i = 0; i < all.length; i += TUPLES_PER_QUERY) {
      const query = route.keyTextQuery!(all.slice(i, i + TUPLES_PER_QUERY));
      const found = await pool.query<string[]>({ text: query.text, values: query.values, rowMode: 'array' });
      for (const key of found.rows) {
        const id = key.join('|');
        roots.set(id, key);
        rootRows.add(id);
      }
    }
  }
  for (const [route, tuples] of lookups) {
    const all = [...tuples.values()];
    for (let i = 0; i < all.length; i += TUPLES_PER_QUERY) {
      const query = route.rootKeysQuery(all.slice(i, i + TUPLES_PER_QUERY));
      const found = await pool.query<string[]>({ text: query.text, values: query.values, rowMode: 'array' });
      for (const key of found.rows) roots.set(key.join('|'), key);
    }
  }
  const keys = [...roots.values()];
  const firstRows = keys.length === 0 ? [] : await readDocuments(plan, pool, keys.slice(0, ROOTS_PER_QUERY));
  return { result, keys, firstRows, routingMayChange: routingFollowsRootRow(plan) ? rootRows : undefined };
}

async function readDocuments(plan: EntryPlan, pool: pg.Pool, keys: string[][]): Promise<DocumentRow[]> {
  const query = buildDocumentQuery(plan, { kind: 'keys', keys });
  const { rows } = await pool.query<DocumentRow>({ text: query.text, values: query.values, rowMode: 'array' });
  for (const row of rows) row[1] = storedRouting(row[1]);
  return rows;
}

/**
 * The tables a routing value is read from besides the root row: the children the routing field or its concat names,
 * with their subtrees and through tables, keyed as `tableKey` does. (A concat sees the node's columns and children
 * only; any other name in it is a literal, and a routing naming no field is always null.)
 */
export function routingSourceTables(plan: EntryPlan): Set<string> {
  const root = plan.root;
  if (plan.routing === undefined) return new Set();
  const names = new Set([plan.routing, ...(root.transform.concat.find((c) => c.destination === plan.routing)?.columns ?? [])]);
  return new Set(root.children.filter((child) => names.has(child.outputKey)).flatMap(subtreeTables));
}

/** The tables of `node` and its descendants, through tables included, keyed as `tableKey` does. */
export function subtreeTables(node: PlanNode): string[] {
  const through = node.relationship?.through;
  return [tableKey(node.schema, node.table), ...(through ? [tableKey(through.schema, through.table)] : []), ...node.children.flatMap(subtreeTables)];
}

/**
 * True when the routing field is made of root columns only (a column, or a concat of root columns and
 * literals): then only a change of the root row itself can move a document to another shard.
 */
function routingFollowsRootRow(plan: EntryPlan): boolean {
  const root = plan.root;
  const columnKeys = new Set(root.columns.map((c) => root.transform.rename.get(c.spec.key) ?? c.spec.key));
  if (plan.routing === undefined || columnKeys.has(plan.routing)) return true;
  const childKeys = new Set(root.children.map((c) => c.outputKey));
  const concat = root.transform.concat.find((c) => c.destination === plan.routing);
  return concat !== undefined && concat.columns.every((name) => !childKeys.has(name));
}

/**
 * Second half: hand the documents to the writer (reading those of the remaining roots, one query per
 * ROOTS_PER_QUERY), and delete the documents whose root row is gone. Writes carry `version`, so a late write never
 * replaces newer content; batches are written in order.
 */
export async function writeBuiltChanges(
  plan: EntryPlan,
  pool: pg.Pool,
  writer: ActionWriter,
  built: BuiltChanges,
  version: bigint,
  position: string,
  routing: RoutingLookup,
): Promise<ApplyResult> {
  const result = built.result;
  for (let i = 0; i < built.keys.length; i += ROOTS_PER_QUERY) {
    const keys = built.keys.slice(i, i + ROOTS_PER_QUERY);
    const rows = i === 0 ? built.firstRows : await readDocuments(plan, pool, keys);
    const ids = new Set<string>();
    for (const row of rows) ids.add(row[0]);
    const gone: string[] = [];
    for (const key of keys) {
      const id = key.length === 1 ? key[0]! : key.join('|');
      if (!ids.has(id)) gone.push(id);
    }
    // With routing, a document lives on the shard its routing picks: one whose routing value may have changed, or
    // one being deleted, must be removed where it is now, which only the engine knows (the old row may lack the
    // field). Asking costs a refresh and a search, so only for those documents. Asked here, not when building: the
    // answer is only current once the earlier batches' writes are in.
    const mayChange = built.routingMayChange;
    const ask = plan.routing === undefined ? [] : [...gone, ...[...ids].filter((id) => mayChange === undefined || mayChange.has(id))];
    const current = ask.length > 0 ? await routing.routingsOf(plan.index, ask) : new Map<string, Array<string | null>>();
    for (const [id, newRouting, source] of rows) {
      for (const oldRouting of current.get(id) ?? []) {
        if (oldRouting !== newRouting) await writer.add({ op: 'delete', index: plan.index, id, version, position, ...(oldRouting !== null ? { routing: oldRouting } : {}) });
      }
      const action: BulkAction = { op: 'index', index: plan.index, id, source, version, position };
      if (newRouting !== null) action.routing = newRouting;
      if (plan.pipeline) action.pipeline = plan.pipeline;
      await writer.add(action);
      result.indexed += 1;
    }
    for (const id of gone) {
      if (plan.routing === undefined) {
        await writer.add({ op: 'delete', index: plan.index, id, version, position });
        result.deleted += 1;
        continue;
      }
      // Not found with routing required: there is no such document, so nothing to delete.
      for (const stored of current.get(id) ?? []) await writer.add({ op: 'delete', index: plan.index, id, version, position, ...(stored !== null ? { routing: stored } : {}) });
      if (current.has(id)) result.deleted += 1;
    }
  }
  return result;
}

/**
 * Deletes every document of the index whose root row no longer exists, with `version`, and every copy stored under a
 * routing its row no longer has. For an index that starts over (new slot, new snapshot): the snapshot rewrites the
 * roots that exist, but the deletes and routing moves the old slot still held are gone with it, so their documents
 * (or, routed, the copies on their old shards) would stay forever. Returns how many documents were deleted and how
 * many misrouted copies.
 */
export async function deleteOrphans(
  plan: EntryPlan,
  pool: pg.Pool,
  writer: ActionWriter,
  scanner: IndexScanner,
  version: bigint,
  position: string,
  signal?: AbortSignal,
): Promise<{ documents: number; misrouted: number }> {
  const removed = { documents: 0, misrouted: 0 };
  /** Stored copies of the page in hand, by id (with routing, one id may have several). */
  let copies = new Map<string, StoredCopy[]>();
  // The scan must also see documents written moments ago.
  await scanner.refresh(plan.index);
  const remove = (id: string, copy: StoredCopy) =>
    writer.add({ op: 'delete', index: plan.index, id, version, position, ...(copy.routing !== undefined ? { routing: copy.routing } : {}) });
  const sweep = async () => {
    const batch = copies;
    copies = new Map();
    const existing = await existingRoots(plan, pool, [...batch.keys()]);
    for (const [id, stored] of batch) {
      if (!existing.has(id)) {
        for (const copy of stored) await remove(id, copy);
        removed.documents += 1;
        continue;
      }
      if (plan.routing === undefined) continue;
      // The snapshot writes the row under this routing (none for a null value); a copy elsewhere is a leftover.
      const routing = existing.get(id) ?? undefined;
      for (const copy of stored) {
        if (copy.routing === routing) continue;
        await remove(id, copy);
        removed.misrouted += 1;
      }
    }
  };
  for await (const copy of scanner.documents(plan.index)) {
    // Stopped part-way, the sweep runs again in full: the new checkpoint is only saved after it.
    signal?.throwIfAborted();
    copies.set(copy.id, [...(copies.get(copy.id) ?? []), copy]);
    if (copies.size >= ROOTS_PER_QUERY) await sweep();
  }
  if (copies.size > 0) await sweep();
  await writer.flush();
  return removed;
}

/**
 * Which of the given document ids are ids of existing root rows, each with its row's routing value (null when the
 * index is not routed or the value is null). An id that cannot be a root key at all (fewer "|"-separated parts than
 * key columns, or text the key's type refuses, e.g. "abc" for an integer key) is not. An id with more parts than key
 * columns comes from key values containing "|": every way of cutting it into as many parts as there are key columns
 * is looked up.
 */
async function existingRoots(plan: EntryPlan, pool: pg.Pool, ids: string[]): Promise<Map<string, string | null>> {
  const width = plan.root.primaryKey.length;
  const plausible = plausibleKeyTest(plan);
  const keys: string[][] = [];
  const ambiguous: string[] = [];
  for (const id of ids) {
    const parts = width === 1 ? [id] : id.split('|');
    if (parts.length === width) {
      if (plausible(parts)) keys.push(parts);
    } else if (parts.length > width) {
      const cuts = keyCuts(parts, width);
      if (cuts === undefined) ambiguous.push(id);
      else keys.push(...cuts.filter(plausible));
    }
  }
  const existing = await existingKeys(plan, pool, keys);
  if (ambiguous.length > 0) for (const [id, routing] of await existingIdsByText(plan, pool, ambiguous)) existing.set(id, routing);
  return existing;
}

/** Text forms of common key types; a value that does not match cannot be a key of that type. */
const KEY_TEXT: Record<string, RegExp> = {
  smallint: /^-?\d{1,5}$/,
  integer: /^-?\d{1,10}$/,
  bigint: /^-?\d{1,19}$/,
  numeric: /^(-?(\d+(\.\d*)?|\.\d+|Infinity)|NaN)$/,
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
};

/**
 * Whether a key's values can be of the root key's types, for the types whose text form is simple. Looked up, a key
 * that is not makes the whole query fail (class 22), and existingKeys then halves it down to single keys: a page of
 * ids cut from a composite key like (tenant int, slug text), with "|" in slugs, would cost thousands of queries.
 */
function plausibleKeyTest(plan: EntryPlan): (key: string[]) => boolean {
  const patterns = plan.root.primaryKey.map((c) => KEY_TEXT[(plan.root.primaryKeyTypes[c] ?? 'text').replace(/\(.*\)$/, '')]);
  if (patterns.every((p) => p === undefined)) return () => true;
  return (key) => key.every((value, i) => patterns[i] === undefined || patterns[i]!.test(value));
}

/** The most cuts of one id looked up by key; an id with more is compared as text over the whole table. */
const MAX_KEY_CUTS = 64;

/** Every way of joining `parts` back into `width` keys' values, or undefined when there are more than MAX_KEY_CUTS. */
function keyCuts(parts: string[], width: number): string[][] | undefined {
  const cuts: string[][] = [];
  const walk = (start: number, key: string[]): boolean => {
    if (key.length === width - 1) {
      cuts.push([...key, parts.slice(start).join('|')]);
      return cuts.length <= MAX_KEY_CUTS;
    }
    // Each remaining key value needs at least one part.
    for (let end = start + 1; end <= parts.length - (width - 1 - key.length); end++) {
      if (!walk(end, [...key, parts.slice(start, end).join('|')])) return false;
    }
    return true;
  };
  return walk(0, []) ? cuts : undefined;
}

/** `SELECT <id>, <routing>` from the root table read as `n`: each row's document id and routing value. */
function idAndRouting(plan: EntryPlan): { id: string; select: string } {
  const id = `concat_ws('|', ${plan.root.primaryKey.map((c) => `n.${quoteIdent(c)}::text`).join(', ')})`;
  return { id, select: `SELECT ${id}, ${routingExpression(plan, 'n') ?? 'NULL::text'}` };
}

async function existingIdsByText(plan: EntryPlan, pool: pg.Pool, ids: string[]): Promise<Array<[string, string | null]>> {
  const { id, select } = idAndRouting(plan);
  const found = await pool.query<[string, string | null]>({ text: `${select} FROM ${qualified(plan.root.schema, plan.root.table)} AS n WHERE ${id} = ANY($1::text[])`, values: [ids], rowMode: 'array' });
  return found.rows;
}

async function existingKeys(plan: EntryPlan, pool: pg.Pool, keys: string[][]): Promise<Map<string, string | null>> {
  if (keys.length === 0) return new Map();
  const root = plan.root;
  const columns = root.primaryKey.map((c) => `n.${quoteIdent(c)}`);
  const arrays = root.primaryKey.map((c, i) => `$${i + 1}::${root.primaryKeyTypes[c] ?? 'text'}[]`);
  const text = `${idAndRouting(plan).select} FROM ${qualified(root.schema, root.table)} AS n WHERE (${columns.join(', ')}) IN (SELECT * FROM unnest(${arrays.join(', ')}))`;
  const values = root.primaryKey.map((_, i) => keys.map((key) => key[i]));
  try {
    const found = await pool.query<[string, string | null]>({ text, values, rowMode: 'array' });
    return new Map(found.rows);
  } catch (error) {
    // Class 22 (data exception): some key is no value of the key's type, so no row has it. Halve until it is found.
    if (!String((error as { code?: string }).code).startsWith('22')) throw error;
    if (keys.length === 1) return new Map();
    const half = Math.ceil(keys.length / 2);
    const [left, right] = await Promise.all([existingKeys(plan, pool, keys.slice(0, half)), existingKeys(plan, pool, keys.slice(half))]);
    return new Map([...left, ...right]);
  }
}

/** False for an update that changed no column any document uses (known only when the old row is complete). */
export function isRelevant(change: RowChange, relevant: Set<string> | undefined): boolean {
  if (change.kind !== 'update' || !change.old || change.oldIsKeyOnly || !change.new || !relevant) return true;
  if (change.comparedChanged !== undefined) return change.comparedChanged;
  for (const column of relevant) {
    const after = change.new[column];
    if (after !== undefined && after !== change.old[column]) return true;
  }
  return false;
}

/**
 * The values of `columns` in `row`: undefined when one is missing (not in the tuple), null when one is SQL NULL
 * (such a row joins nothing).
 */
function tupleOf(columns: readonly string[], row: RowValues): string[] | null | undefined {
  const tuple: string[] = new Array<string>(columns.length);
  let hasNull = false;
  for (let i = 0; i < columns.length; i++) {
    const value = row[columns[i]!];
    if (value === undefined) return undefined;
    if (value === null) hasNull = true;
    else tuple[i] = value;
  }
  return hasNull ? null : tuple;
}

/**
 * The new row with unchanged TOASTed values (absent from the new tuple) taken from the old row. Copied only when
 * there are such values: this runs for every change of a backlog.
 */
function mergedNew(change: RowChange): RowValues | undefined {
  const row = change.new;
  if (!row || !change.old) return row;
  let merged: RowValues | undefined;
  for (const column in row) {
    if (row[column] !== undefined) continue;
    merged ??= Object.assign(Object.create(null) as RowValues, row);
    merged[column] = change.old[column];
  }
  return merged ?? row;
}
