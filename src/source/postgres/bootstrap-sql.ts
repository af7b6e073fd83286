import type { EntryPlan, PlanNode } from '../../schema/sync-plan.js';
import { qualified, quoteIdent, quoteLiteral } from '../../transform/sql.js';

/** The publication Sluice streams from, one per database. */
export const PUBLICATION = 'sluice';

interface TableUse {
  schema: string;
  table: string;
}

/** Every table of the entries' trees (nodes and through tables), de-duplicated. */
export function treeTables(plans: EntryPlan[]): TableUse[] {
  const tables = new Map<string, TableUse>();
  const note = (schema: string, table: string) => tables.set(`${schema}.${table}`, { schema, table });
  const visit = (node: PlanNode) => {
    note(node.schema, node.table);
    if (node.relationship?.through) note(node.relationship.through.schema, node.relationship.through.table);
    node.children.forEach(visit);
  };
  plans.forEach((plan) => visit(plan.root));
  return [...tables.values()];
}

export interface BootstrapOptions {
  /**
   * Set REPLICA IDENTITY FULL on every table of the trees (default true). The old row is then in the WAL: a
   * child moved or deleted also rebuilds its old parent's document, and an update of columns no document uses
   * is recognised and skipped. Without it those become stale documents and needless rewrites.
   */
  replicaIdentityFull: boolean;
}

/**
 * What `sluice bootstrap` runs on one database (and `--print-sql` prints): the publication covering exactly the
 * tables of the trees, and REPLICA IDENTITY FULL where old values are needed. Needs the owner of the tables
 * (or a superuser); the role that runs `sluice run` then needs only REPLICATION and SELECT.
 */
export function bootstrapStatements(plans: EntryPlan[], slots: string[], options: BootstrapOptions): string[] {
  const tables = treeTables(plans);
  const list = tables.map((t) => qualified(t.schema, t.table)).join(', ');
  // publish_via_partition_root (PostgreSQL 13+): a partitioned table's changes come under its own name, the one the
  // schema uses, instead of each partition's, which no route knows.
  const statements = [
    `DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = ${quoteLiteral(PUBLICATION)}) THEN ALTER PUBLICATION ${quoteIdent(PUBLICATION)} SET TABLE ${list}; ELSE CREATE PUBLICATION ${quoteIdent(PUBLICATION)} FOR TABLE ${list}; END IF; IF current_setting('server_version_num')::int >= 130000 THEN EXECUTE 'ALTER PUBLICATION ${quoteIdent(PUBLICATION)} SET (publish_via_partition_root = true)'; END IF; END $$;`,
  ];
  if (options.replicaIdentityFull) {
    for (const t of tables) statements.push(`ALTER TABLE ${qualified(t.schema, t.table)} REPLICA IDENTITY FULL;`);
    // A partitioned table's replica identity does not reach its partitions, which write the WAL: set it on each one
    // (run bootstrap again after adding a partition). Plain tables and views have no partitions.
    const regclasses = tables.map((t) => quoteLiteral(qualified(t.schema, t.table))).join(', ');
    statements.push(
      `DO $$ DECLARE part regclass; BEGIN FOR part IN SELECT t.relid FROM unnest(ARRAY[${regclasses}]::regclass[]) AS p(rel), pg_partition_tree(p.rel) AS t WHERE t.relid <> p.rel LOOP EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', part); END LOOP; END $$;`,
    );
  }
  for (const slot of slots) {
    statements.push(`SELECT pg_create_logical_replication_slot(${quoteLiteral(slot)}, 'pgoutput') WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slot)});`);
  }
  return statements;
}

export function teardownStatements(slots: string[]): string[] {
  return [
    ...slots.map((slot) => `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ${quoteLiteral(slot)};`),
    `DROP PUBLICATION IF EXISTS ${quoteIdent(PUBLICATION)};`,
  ];
}
