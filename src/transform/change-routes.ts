import type { EntryPlan, PlanNode } from '../schema/sync-plan.js';
import type { ColumnSelection } from '../source/change-source.js';
import { qualified, quoteIdent } from './sql.js';

/**
 * How a changed row of one table leads to the root documents that contain it. Compiled once per plan.
 * `valueColumns` are read from the changed row (old and new); the query maps value tuples to root keys.
 */
export interface TableRoute {
  /** The root table itself: the row's primary key is the root key (no query). */
  isRoot: boolean;
  valueColumns: string[];
  /** SQL from tuples of `valueColumns` values (text) to root keys (text, in root primary-key order). */
  rootKeysQuery(tuples: string[][]): { text: string; values: unknown[] };
  /**
   * The root route of a key whose WAL text is not its `::text` (see KEY_TYPES_WITH_OWN_TEXT): SQL turning the WAL's
   * tuples, in order, into the text document ids are made of. Undefined when the WAL's text is that text already.
   */
  keyTextQuery?(tuples: string[][]): { text: string; values: unknown[] };
}

/**
 * Key types whose cast to text is a function of its own rather than the type's output, which is what pgoutput sends:
 * `boolean` (t / true), `character(n)` (padded / trimmed), `"char"`, `inet` (1.2.3.4 / 1.2.3.4/32) and `cidr`
 * (pg_cast, castmethod 'f'; `name` too, whose texts agree). Document ids are made with `::text`.
 */
const KEY_TYPES_WITH_OWN_TEXT = /^(boolean|bpchar|character(\(\d+\))?|"char"|inet|cidr)$/;

export interface ChangeRoutes {
  /** Routes by `schema.table`; one table can appear several times in a tree (e.g. as child and as through table). */
  routes: Map<string, TableRoute[]>;
  /**
   * Per routed `schema.table`: its primary key, and the SQL reading the current values of its routes' value columns
   * (text) for rows with the given keys. For an update whose new row lacks a value column (an unchanged TOASTed
   * value) and whose old row was not sent (no REPLICA IDENTITY FULL): the value is then read from the row itself.
   */
  rowLookups: Map<string, RowLookup>;
  /** Columns of each table that some document uses (selected, joined, keys): other columns never matter. */
  relevantColumns: Map<string, Set<string>>;
}

export interface RowLookup {
  /** The table, as `schema.table` (the key of `ChangeRoutes.routes`). */
  table: string;
  keyColumns: string[];
  /** Every value column of the table's routes, in the order `currentValuesQuery` selects them. */
  valueColumns: string[];
  currentValuesQuery(keys: string[][]): { text: string; values: unknown[] };
}

export function tableKey(schema: string, table: string): string {
  return `${schema}.${table}`;
}

/** One join step on the way from the root down to a node. */
interface Step {
  node: PlanNode;
  alias: string;
  /** JOIN clauses that bring this node in, given its parent's alias. */
  joins: string;
}

export function compileChangeRoutes(plan: EntryPlan): ChangeRoutes {
  const routes = new Map<string, TableRoute[]>();
  const relevant = new Map<string, Set<string>>();
  const primaryKeys = new Map<string, { schema: string; table: string; keyColumns: string[] }>();
  const add = (schema: string, table: string, route: TableRoute, keyColumns: string[]) => {
    const key = tableKey(schema, table);
    routes.set(key, [...(routes.get(key) ?? []), route]);
    primaryKeys.set(key, { schema, table, keyColumns });
  };
  const use = (schema: string, table: string, columns: Iterable<string>) => {
    const key = tableKey(schema, table);
    const set = relevant.get(key) ?? new Set<string>();
    for (const c of columns) set.add(c);
    relevant.set(key, set);
  };
  const root = plan.root;
  const rootAlias = 'r';
  const keyTypes = root.primaryKey.map((c) => root.primaryKeyTypes[c] ?? 'text');
  // A domain's text cast is its underlying type's: a domain over boolean is as much in need as boolean itself.
  const castTypes = root.primaryKey.map((c, i) => root.primaryKeyUnderlyingTypes?.[c] ?? keyTypes[i]!);
  add(root.schema, root.table, {
    isRoot: true,
    valueColumns: root.primaryKey,
    rootKeysQuery: (tuples) => ({ text: '', values: tuples }),
    ...(castTypes.some((t) => KEY_TYPES_WITH_OWN_TEXT.test(t))
      ? {
          keyTextQuery: (tuples: string[][]) => ({
            text:
              `SELECT ${keyTypes.map((_, i) => `k${i}::text`).join(', ')} FROM unnest(${keyTypes.map((t, i) => `$${i + 1}::${t}[]`).join(', ')}) ` +
              `WITH ORDINALITY AS u(${keyTypes.map((_, i) => `k${i}`).join(', ')}, n) ORDER BY n`,
            values: keyTypes.map((_, i) => tuples.map((tuple) => tuple[i])),
          }),
        }
      : {}),
  }, root.primaryKey);
  // Tables whose updates are never skipped as irrelevant: a document uses a value that no compared column shows
  // changing. xmin changes with every update; a generated column's value is not in the WAL (pgoutput leaves it out),
  // and its sources may be columns no document names.
  const neverSkip = new Set<string>();
  const visit = (node: PlanNode, path: Step[]) => {
    use(node.schema, node.table, [...node.primaryKey, ...node.columns.map((c) => c.spec.column)]);
    if (node.columns.some((c) => c.info.generated === true || c.info.name === 'xmin')) neverSkip.add(tableKey(node.schema, node.table));
    const parent = path[path.length - 1]!;
    for (const child of node.children) {
      const rel = child.relationship!;
      const childAlias = `a${path.length}`;
      if (rel.through) {
        const th = rel.through;
        const t = `t${path.length}`;
        use(th.schema, th.table, [...th.primaryKey, ...th.parentJoin.childColumns, ...th.childJoin.parentColumns]);
        use(node.schema, node.table, th.parentJoin.parentColumns);
        use(child.schema, child.table, th.childJoin.childColumns);
        // A row of the through table: its parent-side columns name the parent rows.
        add(th.schema, th.table, pathRoute(plan, path, th.parentJoin.childColumns, (tuples) => match(parent.alias, th.parentJoin.parentColumns, tuples)), th.primaryKey);
        // A row of the child: parents linked to it through the join table.
        const throughJoin = `JOIN ${qualified(th.schema, th.table)} AS ${t} ON ${eq(t, th.parentJoin.childColumns, parent.alias, th.parentJoin.parentColumns)}`;
        add(child.schema, child.table, pathRoute(plan, path, th.childJoin.childColumns, (tuples) => match(t, th.childJoin.parentColumns, tuples), throughJoin), child.primaryKey);
        const joins = `${throughJoin} JOIN ${qualified(child.schema, child.table)} AS ${childAlias} ON ${eq(childAlias, th.childJoin.childColumns, t, th.childJoin.parentColumns)}`;
        visit(child, [...path, { node: child, alias: childAlias, joins }]);
      } else {
        const join = rel.join!;
        use(node.schema, node.table, join.parentColumns);
        use(child.schema, child.table, join.childColumns);
        add(child.schema, child.table, pathRoute(plan, path, join.childColumns, (tuples) => match(parent.alias, join.parentColumns, tuples)), child.primaryKey);
        const joins = `JOIN ${qualified(child.schema, child.table)} AS ${childAlias} ON ${eq(childAlias, join.childColumns, parent.alias, join.parentColumns)}`;
        visit(child, [...path, { node: child, alias: childAlias, joins }]);
      }
    }
  };
  visit(root, [{ node: root, alias: rootAlias, joins: '' }]);
  for (const key of neverSkip) relevant.delete(key);
  const rowLookups = new Map<string, RowLookup>();
  for (const [key, { schema, table, keyColumns }] of primaryKeys) {
    const valueColumns = [...new Set(routes.get(key)!.flatMap((route) => route.valueColumns))];
    const selected = valueColumns.map((c) => `n.${quoteIdent(c)}::text`).join(', ');
    rowLookups.set(key, {
      table: key,
      keyColumns,
      valueColumns,
      currentValuesQuery: (keys) => {
        const condition = match('n', keyColumns, keys);
        return { text: `SELECT ${selected} FROM ${qualified(schema, table)} AS n WHERE ${condition.sql}`, values: condition.values };
      },
    });
  }
  return { routes, relevantColumns: relevant, rowLookups };
}

/**
 * What the change applier reads of a changed row: the values its routes lead from (identifying), and when the old
 * row is complete the columns some document uses (to skip an update that changed none of them).
 */
export function columnSelection(routes: ChangeRoutes): ColumnSelection {
  const selection = new Map<string, { identifying: Set<string>; compared?: ReadonlySet<string> }>();
  for (const [table, lookup] of routes.rowLookups) {
    // The key too: it finds the row when the new row lacks a value column (see ChangeRoutes.rowLookups).
    const identifying = new Set([...lookup.valueColumns, ...lookup.keyColumns]);
    // No relevant columns known: updates are never skipped, so nothing is compared.
    const compared = routes.relevantColumns.get(table);
    selection.set(table, compared === undefined ? { identifying } : { identifying, compared });
  }
  return selection;
}

/** Root keys reachable from rows of a parent (the last step of `path`) matched by `where`. */
function pathRoute(plan: EntryPlan, path: Step[], valueColumns: string[], where: (tuples: string[][]) => { sql: string; values: unknown[] }, extraJoin = ''): TableRoute {
  const root = plan.root;
  const keys = root.primaryKey.map((c) => `r.${quoteIdent(c)}::text`).join(', ');
  const from = [`${qualified(root.schema, root.table)} AS r`, ...path.slice(1).map((s) => s.joins), extraJoin].filter((p) => p !== '').join(' ');
  return {
    isRoot: false,
    valueColumns,
    rootKeysQuery: (tuples) => {
      const condition = where(tuples);
      return { text: `SELECT DISTINCT ${keys} FROM ${from} WHERE ${condition.sql}`, values: condition.values };
    },
  };
}

function eq(leftAlias: string, leftColumns: string[], rightAlias: string, rightColumns: string[]): string {
  return leftColumns.map((c, i) => `${leftAlias}.${quoteIdent(c)} = ${rightAlias}.${quoteIdent(rightColumns[i]!)}`).join(' AND ');
}

/**
 * `alias.columns` equal to one of the tuples. Parameters are untyped so PostgreSQL infers each one's type from
 * its column, which keeps the comparison index-friendly.
 */
function match(alias: string, columns: string[], tuples: string[][]): { sql: string; values: unknown[] } {
  if (columns.length === 1) {
    return { sql: `${alias}.${quoteIdent(columns[0]!)} = ANY($1)`, values: [tuples.map((t) => t[0])] };
  }
  const values: unknown[] = [];
  const groups = tuples.map((tuple) => `(${columns.map((c, i) => `${alias}.${quoteIdent(c)} = $${values.push(tuple[i])}`).join(' AND ')})`);
  return { sql: groups.join(' OR '), values };
}
