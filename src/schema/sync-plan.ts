import type { ColumnInfo } from '../source/postgres/catalog.js';
import type { ColumnSpec, RelationshipType, RelationshipVariant, SchemaEntry, TransformSpec } from './schema-types.js';

/** A schema entry checked against the database: everything the document query and the sink need. */
export interface EntryPlan {
  entry: SchemaEntry;
  database: string;
  index: string;
  root: PlanNode;
  routing?: string;
  pipeline?: string;
  /** Index creation body parts. */
  settings?: Record<string, unknown>;
  mappings?: Record<string, unknown>;
}

export interface PlanColumn {
  spec: ColumnSpec;
  info: ColumnInfo;
}

/** Join columns, paired positionally: `child.childColumns[i] = parent.parentColumns[i]`. */
export interface JoinColumns {
  parentColumns: string[];
  childColumns: string[];
}

export interface ThroughTable {
  schema: string;
  table: string;
  primaryKey: string[];
  /** through ↔ parent: `through.childColumns[i] = parent.parentColumns[i]`. */
  parentJoin: JoinColumns;
  /** through ↔ child: `child.childColumns[i] = through.parentColumns[i]`. */
  childJoin: JoinColumns;
}

export interface PlanRelationship {
  type: RelationshipType;
  variant: RelationshipVariant;
  join?: JoinColumns;
  through?: ThroughTable;
}

export interface PlanNode {
  location: string;
  schema: string;
  table: string;
  /** The node's label (table name when absent): its key in the parent before the parent's rename. */
  label: string;
  /** Key of this node's value in its parent's object, after the parent's rename. */
  outputKey: string;
  /** Primary-key columns sorted alphabetically (PGSync's `_id` order). Key values are always in this order. */
  primaryKey: string[];
  /**
   * The same columns in the order of the primary-key index (as declared for `primary_key`): key ranges are scanned
   * and compared in this order, which the index serves. Absent: `primaryKey`'s order.
   */
  keyOrder?: string[];
  /** The key comes from the schema's `primary_key` (a view, a table without one): nothing keeps it from NULL. */
  declaredKey?: true;
  /** Set when the node reads a view, materialized view or foreign table: no WAL carries its changes. */
  relationKind?: 'view' | 'materialized view' | 'foreign table';
  /**
   * Key and join columns (`schema.table.column`) of this node and of the relationship to its parent that are
   * generated: pgoutput never sends their values, so no change names the rows they lead to.
   */
  generatedLinks?: string[];
  /** format_type() of each primary-key column, for casting key parameters. */
  primaryKeyTypes: Record<string, string>;
  /** Where a primary-key column is of a domain: format_type() of the type under it, whose text cast the domain uses. */
  primaryKeyUnderlyingTypes?: Record<string, string>;
  columns: PlanColumn[];
  children: PlanNode[];
  relationship?: PlanRelationship;
  transform: TransformSpec;
  /** True when every node from the root down to this one is single-valued (one_to_one). */
  singleValued: boolean;
}
