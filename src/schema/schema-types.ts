/**
 * schema.json in PGSync's format, after structural parsing. Every element keeps its JSON location
 * (e.g. `$[0].nodes.children[1]`) so later checks against the database can report where a problem is.
 */

export const RELATIONSHIP_TYPES = ['one_to_one', 'one_to_many'] as const;
export type RelationshipType = (typeof RELATIONSHIP_TYPES)[number];
export const RELATIONSHIP_VARIANTS = ['object', 'scalar'] as const;
export type RelationshipVariant = (typeof RELATIONSHIP_VARIANTS)[number];

export const JSON_OPERATORS = ['#>>', '#>', '->>', '->'] as const;
export type JsonOperator = (typeof JSON_OPERATORS)[number];

/** One operator application of a JSON-path column, e.g. `->'firstname'` or `#>'{a,b}'`. */
export interface JsonPathStep {
  operator: JsonOperator;
  /** A key, an array index, or (for `#>`/`#>>`) a path of keys. */
  argument: string | number | string[];
}

/** A `columns` entry: a plain column or a JSON path into a json/jsonb column. */
export interface ColumnSpec {
  /** The entry as written. */
  raw: string;
  /** The table column it reads. */
  column: string;
  path: JsonPathStep[];
  /** Output key before `rename`: PGSync's rule, non-operator tokens joined with `_`, braces removed. */
  key: string;
  location: string;
}

export interface ForeignKeySpec {
  parent: string[];
  child: string[];
}

export interface RelationshipSpec {
  type: RelationshipType;
  variant: RelationshipVariant;
  /** Join table, optionally `schema.table`. */
  throughTable?: { schema?: string; table: string };
  foreignKey?: ForeignKeySpec;
  location: string;
}

export interface ConcatSpec {
  columns: string[];
  destination: string;
  delimiter: string;
  location: string;
}

export interface MoveSpec {
  column: string;
  /** Dotted path; `$root.` anchors it at the root document, otherwise it is relative to the node's object. */
  destination: string;
  location: string;
}

export interface TransformSpec {
  rename: Map<string, string>;
  /** column → ordered (search, replacement) pairs. */
  replace: Map<string, Array<[string, string]>>;
  concat: ConcatSpec[];
  move: MoveSpec[];
  /** Output field name → Elasticsearch field mapping. */
  mapping: Map<string, Record<string, unknown>>;
}

export interface NodeSpec {
  table: string;
  schema: string;
  /** Key under the parent object; the table name when absent. */
  label: string;
  /** Absent means every column of the table. */
  columns?: ColumnSpec[];
  primaryKey?: string[];
  children: NodeSpec[];
  relationship?: RelationshipSpec;
  transform: TransformSpec;
  baseTables: string[];
  location: string;
}

export interface SchemaEntry {
  database: string;
  index: string;
  nodes: NodeSpec;
  setting?: Record<string, unknown>;
  mapping?: Record<string, unknown>;
  mappings?: Record<string, unknown>;
  routing?: string;
  pipeline?: string;
  location: string;
}
