import type pg from 'pg';

/** What Sluice needs to know about one table or view, read from pg_catalog. */
export interface RelationInfo {
  schema: string;
  name: string;
  kind: 'table' | 'partitioned table' | 'view' | 'materialized view' | 'foreign table';
  columns: Map<string, ColumnInfo>;
  /** Primary-key columns in key order; empty for views and tables without one. */
  primaryKey: string[];
}

export interface ColumnInfo {
  name: string;
  /** format_type() output, usable in casts: `integer`, `character varying(20)`, `text[]`. */
  type: string;
  /** For a domain, format_type() of the type under it (through nested domains), whose casts the domain uses; absent otherwise. */
  underlyingType?: string;
  /** pg_type.typname of the column, or of the element for arrays: `int4`, `bytea`, `jsonb`. */
  baseTypeName: string;
  isArray: boolean;
  /** pg_type.typcategory of the (element) type: S string, N numeric, B boolean, D datetime, U user (json…). */
  category: string;
  /** A generated column (GENERATED ALWAYS AS … STORED): pgoutput never sends its value. */
  generated?: boolean;
}

export interface ForeignKeyInfo {
  name: string;
  /** Referencing side. */
  from: { schema: string; table: string; columns: string[] };
  /** Referenced side. */
  to: { schema: string; table: string; columns: string[] };
}

export interface Catalog {
  schemas: Set<string>;
  relation(schema: string, name: string): RelationInfo | undefined;
  /** Foreign keys between the two relations, in both directions. */
  foreignKeysBetween(a: { schema: string; table: string }, b: { schema: string; table: string }): ForeignKeyInfo[];
}

const RELKINDS: Record<string, RelationInfo['kind']> = { r: 'table', p: 'partitioned table', v: 'view', m: 'materialized view', f: 'foreign table' };

/** Reads relations, columns, primary keys and foreign keys of every non-system schema in one round of queries. */
export async function readCatalog(client: pg.ClientBase): Promise<Catalog> {
  const schemaRows = await client.query<{ nspname: string }>(
    `SELECT nspname::text AS nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND nspname NOT LIKE 'pg_temp_%' AND nspname NOT LIKE 'pg_toast_temp_%'`,
  );
  const relationRows = await client.query<{ oid: number; nspname: string; relname: string; relkind: string }>(
    `SELECT c.oid::int AS oid, n.nspname, c.relname, c.relkind::text AS relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')`,
  );
  const columnRows = await client.query<{ attrelid: number; attname: string; type: string; underlying: string | null; typname: string; is_array: boolean; category: string; generated: boolean }>(
    // attgenerated exists from PostgreSQL 12; read through to_jsonb so one query works on every version.
    `SELECT a.attrelid::int AS attrelid, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
            CASE WHEN t.typtype = 'd' THEN (
              WITH RECURSIVE base(oid, typmod, typtype, depth) AS (
                SELECT t.typbasetype, t.typtypmod, b.typtype, 1 FROM pg_type b WHERE b.oid = t.typbasetype
                UNION ALL
                SELECT d.typbasetype, d.typtypmod, b.typtype, base.depth + 1
                  FROM base JOIN pg_type d ON d.oid = base.oid JOIN pg_type b ON b.oid = d.typbasetype
                 WHERE base.typtype = 'd' AND base.depth < 10)
              SELECT format_type(oid, typmod) FROM base ORDER BY depth DESC LIMIT 1) END AS underlying,
            coalesce(et.typname, t.typname) AS typname, et.oid IS NOT NULL AS is_array,
            coalesce(et.typcategory, t.typcategory)::text AS category,
            coalesce(to_jsonb(a) ->> 'attgenerated', '') IN ('s', 'v') AS generated
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_type t ON t.oid = a.atttypid
       LEFT JOIN pg_type et ON t.typcategory = 'A' AND et.oid = t.typelem
      WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
        AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      ORDER BY a.attrelid, a.attnum`,
  );
  const constraintRows = await client.query<{ conname: string; contype: string; conrelid: number; confrelid: number; conkey: string[]; confkey: string[] | null }>(
    `SELECT con.conname, con.contype::text AS contype, con.conrelid::int AS conrelid, con.confrelid::int AS confrelid,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.conkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum) AS conkey,
            (SELECT array_agg(a.attname::text ORDER BY k.ord) FROM unnest(con.confkey) WITH ORDINALITY k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum) AS confkey
       FROM pg_constraint con
      WHERE con.contype IN ('p', 'f') AND con.conrelid <> 0 AND con.conparentid = 0`,
  );

  const byOid = new Map<number, RelationInfo>();
  const byName = new Map<string, RelationInfo>();
  for (const row of relationRows.rows) {
    const info: RelationInfo = { schema: row.nspname, name: row.relname, kind: RELKINDS[row.relkind] ?? 'table', columns: new Map(), primaryKey: [] };
    byOid.set(row.oid, info);
    byName.set(key(row.nspname, row.relname), info);
  }
  for (const row of columnRows.rows) {
    byOid.get(row.attrelid)?.columns.set(row.attname, {
      name: row.attname,
      type: row.type,
      ...(row.underlying !== null ? { underlyingType: row.underlying } : {}),
      baseTypeName: row.typname,
      isArray: row.is_array,
      category: row.category,
      ...(row.generated ? { generated: true } : {}),
    });
  }
  const foreignKeys: ForeignKeyInfo[] = [];
  for (const row of constraintRows.rows) {
    const from = byOid.get(row.conrelid);
    if (!from) continue;
    if (row.contype === 'p') from.primaryKey = row.conkey;
    else {
      const to = byOid.get(row.confrelid);
      if (!to || !row.confkey) continue;
      foreignKeys.push({
        name: row.conname,
        from: { schema: from.schema, table: from.name, columns: row.conkey },
        to: { schema: to.schema, table: to.name, columns: row.confkey },
      });
    }
  }
  return {
    schemas: new Set(schemaRows.rows.map((r) => r.nspname)),
    relation: (schema, name) => byName.get(key(schema, name)),
    foreignKeysBetween: (a, b) =>
      foreignKeys.filter(
        (fk) =>
          (same(fk.from, a) && same(fk.to, b)) || (same(fk.from, b) && same(fk.to, a)),
      ),
  };
}

function key(schema: string, name: string): string {
  return `${schema}\u0000${name}`;
}

function same(side: { schema: string; table: string }, other: { schema: string; table: string }): boolean {
  return side.schema === other.schema && side.table === other.table;
}
