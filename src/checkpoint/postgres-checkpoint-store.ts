/**
 * Checkpoints in a table of the source database, for deployments without Redis:
 * `<schema>.checkpoint(name text primary key, body jsonb not null, updated_at timestamptz not null default now())`.
 * `open` creates the schema and the table when missing (needing CREATE on the database, resp. the schema)
 * and otherwise only needs USAGE on the schema and SELECT, INSERT, UPDATE, DELETE on the table, so a DBA can
 * create them once and keep the sync role unprivileged. A save is one autocommitted upsert: durable when
 * the server's `synchronous_commit` is on (the default; `open` warns otherwise).
 *
 * Ownership leases are rows of the same table named `lease:<name>` (checkpoint names never hold a colon), so no
 * further grant is needed: the body names the holder and the expiry, both by the database server's clock.
 */
import type pg from 'pg';
import { AppError } from '../errors/app-error.js';
import { checkName, decodeCheckpoint, encodeCheckpoint, KeyedQueue, notOwner } from './checkpoint-codec.js';
import type { Checkpoint, CheckpointStore, LeaseFence, LeaseState } from './checkpoint-store.js';

export interface PostgresCheckpointStoreOptions {
  /** End the pool on `close()` (when the store created it). Default false: the caller's pool stays open. */
  ownsPool?: boolean;
}

interface Privileges {
  role: string;
  db: string;
  schema_exists: boolean;
  table_exists: boolean;
  can_create_schema: boolean;
  can_create_table: boolean | null;
  can_use_schema: boolean | null;
  can_use_table: boolean | null;
  synchronous_commit: string;
  server_version_num: number;
}

export class PostgresCheckpointStore implements CheckpointStore {
  private readonly queue = new KeyedQueue();
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    /** Schema-qualified, quoted table name. */
    readonly table: string,
    private readonly found: string[],
    private readonly ownsPool: boolean,
    /** PostgreSQL 13+: jsonpath's datetime() reads a lease's expiry without failing on a row edited by hand. */
    private readonly jsonpathDates: boolean,
  ) {}

  /**
   * Creates `<schema>.checkpoint` when missing and checks the role may use it. Throws
   * `AppError('CKP_UNAVAILABLE')` when the database cannot be reached or a grant is missing (the message
   * gives the GRANT statement to run).
   */
  static async open(pool: pg.Pool, schema = 'sluice', options: PostgresCheckpointStoreOptions = {}): Promise<PostgresCheckpointStore> {
    const table = `${quoteIdent(schema)}.checkpoint`;
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw new AppError('CKP_UNAVAILABLE', `PostgreSQL checkpoint store: cannot connect: ${(error as Error).message}`, { cause: error });
    }
    const warnings: string[] = [];
    let jsonpathDates = false;
    try {
      await client.query('BEGIN');
      // Two processes opening at once must not both try to create: CREATE ... IF NOT EXISTS can still collide.
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sluice checkpoint table ${table}`]);
      let p = await privileges(client, schema);
      if (!p.schema_exists) {
        if (!p.can_create_schema) {
          throw missingGrant(
            p,
            table,
            `GRANT CREATE ON DATABASE ${quoteIdent(p.db)} TO ${quoteIdent(p.role)}; ` +
              `or create the schema for it: CREATE SCHEMA ${quoteIdent(schema)} AUTHORIZATION ${quoteIdent(p.role)}`,
            `may not create schema ${quoteIdent(schema)} in database ${quoteIdent(p.db)}`,
          );
        }
        await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
        p = await privileges(client, schema);
      }
      if (!p.table_exists) {
        if (p.can_create_table !== true) {
          throw missingGrant(p, table, `GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(p.role)}`, `may not create table ${table}`);
        }
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${table} (name text PRIMARY KEY, body jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
        );
        p = await privileges(client, schema);
      }
      if (p.can_use_schema !== true) {
        throw missingGrant(p, table, `GRANT USAGE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(p.role)}`, `may not use schema ${quoteIdent(schema)}`);
      }
      if (p.can_use_table !== true) {
        throw missingGrant(p, table, `GRANT SELECT, INSERT, UPDATE, DELETE ON ${table} TO ${quoteIdent(p.role)}`, `may not read and write ${table}`);
      }
      if (p.synchronous_commit === 'off') {
        warnings.push(
          'PostgreSQL synchronous_commit is off: a checkpoint is acknowledged before it is on disk, so a server crash can lose ' +
            'the latest checkpoints (work is then redone, nothing is lost); set synchronous_commit = on for the sync role',
        );
      }
      jsonpathDates = p.server_version_num >= 130_000;
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
      if (error instanceof AppError) throw error;
      const e = error as { code?: string; message?: string };
      const hint = e.code === '42501' ? ' (a grant is missing)' : '';
      throw new AppError('CKP_UNAVAILABLE', `PostgreSQL checkpoint table ${table}: cannot prepare it${hint}: ${e.message ?? String(error)}`, {
        cause: error,
        details: { pgCode: e.code },
      });
    }
    client.release();
    return new PostgresCheckpointStore(pool, table, warnings, options.ownsPool ?? false, jsonpathDates);
  }

  async load(name: string): Promise<Checkpoint | undefined> {
    checkName(name);
    return this.run(name, 'load', async () => {
      const result = await this.pool.query<{ body: unknown }>(`SELECT body FROM ${this.table} WHERE name = $1`, [name]);
      const row = result.rows[0];
      return row === undefined ? undefined : decodeCheckpoint(row.body, `row ${JSON.stringify(name)} of table ${this.table}`);
    });
  }

  async save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void> {
    checkName(name);
    const body = encodeCheckpoint(checkpoint);
    const written = await this.run(name, 'save', async () => {
      if (fence === undefined) {
        await this.pool.query(
          `INSERT INTO ${this.table} (name, body, updated_at) VALUES ($1, $2::jsonb, now())
           ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at`,
          [name, body],
        );
        return true;
      }
      const result = await this.pool.query(
        `INSERT INTO ${this.table} AS c (name, body, updated_at) SELECT $1, $2::jsonb, now() WHERE ${this.leaseHeld(3)}
         ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at`,
        [name, body, `lease:${fence.lease}`, fence.holder],
      );
      return result.rowCount === 1;
    });
    if (!written) throw notOwner('save', name, fence!);
  }

  async remove(name: string, fence?: LeaseFence): Promise<void> {
    checkName(name);
    const allowed = await this.run(name, 'delete', async () => {
      if (fence === undefined) {
        await this.pool.query(`DELETE FROM ${this.table} WHERE name = $1`, [name]);
        return true;
      }
      const result = await this.pool.query<{ held: boolean }>(
        `WITH held AS (SELECT ${this.leaseHeld(2)} AS held),
              gone AS (DELETE FROM ${this.table} WHERE name = $1 AND (SELECT held FROM held))
         SELECT held FROM held`,
        [name, `lease:${fence.lease}`, fence.holder],
      );
      return result.rows[0]?.held === true;
    });
    if (!allowed) throw notOwner('delete', name, fence!);
  }

  /** SQL: the expiry of the lease row `alias`, NULL when unreadable (see leaseExpiry). */
  private expiry(alias: string): string {
    return leaseExpiry(alias, this.jsonpathDates);
  }

  /** SQL: true when the lease row `alias` is one Sluice writes: a holder name and an expiry it can read. */
  private readable(alias: string): string {
    return `(jsonb_typeof(${alias}.body->'holder') = 'string' AND ${this.expiry(alias)} IS NOT NULL)`;
  }

  /**
   * SQL true while the lease row named by parameter $n is held by parameter $n+1 and unexpired by the server's
   * clock. The row is locked FOR SHARE, so a claim taking it over waits until the fenced write has committed.
   */
  private leaseHeld(n: number): string {
    return `EXISTS (SELECT 1 FROM ${this.table} AS l WHERE l.name = $${n} AND l.body->>'holder' = $${n + 1}
              AND ${this.expiry('l')} > clock_timestamp() FOR SHARE)`;
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    checkName(name);
    const row = `lease:${name}`;
    return this.run(row, 'lease claim', async () => {
      for (;;) {
        // Taken when free, expired, not a lease Sluice writes (edited by hand) or already the claimant's; otherwise the
        // row stays and nothing is returned. `replaced` shows what an unreadable row held, for the log.
        const claimed = await this.pool.query<{ remaining: number; replaced: string | null }>(
          `WITH before AS (SELECT body FROM ${this.table} WHERE name = $1)
           INSERT INTO ${this.table} AS l (name, body, updated_at)
             VALUES ($1, jsonb_build_object('holder', $2::text, 'expiresAt', clock_timestamp() + $3::int * interval '1 millisecond'), now())
           ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated_at = EXCLUDED.updated_at
             WHERE l.body->>'holder' = $2 OR NOT coalesce(${this.readable('l')} AND ${this.expiry('l')} > clock_timestamp(), false)
           RETURNING $3::int AS remaining,
                     (SELECT left(b.body::text, 200) FROM before AS b WHERE NOT coalesce(${this.readable('b')}, false)) AS replaced`,
          [row, holder, Math.ceil(ttlMs)],
        );
        const taken = claimed.rows[0];
        if (taken !== undefined) return { owner: holder, remainingMs: Number(taken.remaining), ...(taken.replaced !== null ? { replaced: taken.replaced } : {}) };
        const held = await this.pool.query<{ holder: string; remaining: number }>(
          `SELECT body->>'holder' AS holder,
                  greatest(0, extract(epoch FROM ${this.expiry('l')} - clock_timestamp()) * 1000)::float8 AS remaining
             FROM ${this.table} AS l WHERE name = $1`,
          [row],
        );
        // Released between the two statements: claim again.
        if (held.rows.length > 0) return { owner: held.rows[0]!.holder, remainingMs: Number(held.rows[0]!.remaining) };
      }
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkName(name);
    const row = `lease:${name}`;
    return this.run(row, 'lease release', async () => {
      await this.pool.query(`DELETE FROM ${this.table} WHERE name = $1 AND body->>'holder' = $2`, [row, holder]);
    });
  }

  async leaseOf(name: string): Promise<LeaseState | undefined> {
    checkName(name);
    const row = `lease:${name}`;
    return this.run(row, 'lease lookup', async () => {
      const held = await this.pool.query<{ holder: string; remaining: number }>(
        `SELECT body->>'holder' AS holder,
                extract(epoch FROM ${this.expiry('l')} - clock_timestamp()) * 1000 AS remaining
           FROM ${this.table} AS l WHERE name = $1 AND ${this.readable('l')} AND ${this.expiry('l')} > clock_timestamp()`,
        [row],
      );
      const found = held.rows[0];
      return found === undefined ? undefined : { owner: found.holder, remainingMs: Number(found.remaining) };
    });
  }

  warnings(): string[] {
    return [...this.found];
  }

  /** Waits for operations in progress, then ends the pool when the store owns it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue.idle();
    if (this.ownsPool) await this.pool.end();
  }

  private run<T>(name: string, doing: string, task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AppError('CKP_UNAVAILABLE', `checkpoint store ${this.table} is closed`));
    return this.queue.run(name, async () => {
      try {
        return await task();
      } catch (error) {
        if (error instanceof AppError) throw error;
        const e = error as { code?: string; message?: string };
        // A privilege taken away (42501) does not come back by waiting: stopped at once, as a Redis ACL refusal is.
        const refused = e.code === '42501';
        throw new AppError('CKP_UNAVAILABLE', `PostgreSQL checkpoint table ${this.table}: ${doing} of ${name} failed: ${e.message ?? String(error)}${refused ? '. Grant the role SELECT, INSERT, UPDATE and DELETE on it' : ''}`, {
          cause: error,
          details: { pgCode: e.code, ...(refused ? { retryable: false } : {}) },
        });
      }
    });
  }
}

async function privileges(client: pg.PoolClient, schema: string): Promise<Privileges> {
  // pg_class rather than to_regclass: looking up a name in a schema without USAGE raises an error.
  // has_table_privilege with several privileges is true when ANY is held, hence one call each.
  const result = await client.query<Privileges>(
    `SELECT current_user AS role, current_database() AS db,
            n.oid IS NOT NULL AS schema_exists,
            c.oid IS NOT NULL AS table_exists,
            has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
            CASE WHEN n.oid IS NULL THEN NULL ELSE has_schema_privilege(n.oid, 'USAGE') AND has_schema_privilege(n.oid, 'CREATE') END AS can_create_table,
            CASE WHEN n.oid IS NULL THEN NULL ELSE has_schema_privilege(n.oid, 'USAGE') END AS can_use_schema,
            CASE WHEN c.oid IS NULL THEN NULL
                 ELSE has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
                      AND has_table_privilege(c.oid, 'UPDATE') AND has_table_privilege(c.oid, 'DELETE') END AS can_use_table,
            current_setting('synchronous_commit') AS synchronous_commit,
            current_setting('server_version_num')::int AS server_version_num
       FROM (SELECT 1) AS one
       LEFT JOIN pg_namespace n ON n.nspname = $1
       LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'checkpoint'`,
    [schema],
  );
  return result.rows[0] as Privileges;
}

function missingGrant(p: Privileges, table: string, grant: string, what: string): AppError {
  return new AppError(
    'CKP_UNAVAILABLE',
    `PostgreSQL role ${quoteIdent(p.role)} ${what}, so the checkpoint table ${table} cannot be set up. ` +
      `As an administrator, run: ${grant}`,
    { details: { role: p.role, database: p.db, grant } },
  );
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * SQL: the expiry of the lease row `alias` as a timestamptz, NULL when `expiresAt` is not a timestamp with a time zone
 * (a row edited by hand), where a plain cast would raise an error on every claim and keep the index unclaimable until
 * someone deleted the row. PostgreSQL 13+ reads it through jsonpath's silent mode, which yields nothing for any text
 * that is not such a timestamp; PostgreSQL 12 has no datetime() in jsonpath, so there only text of the form Sluice
 * writes (`2026-11-24T10:00:00.123456+00:00`) is cast, and an impossible date of that form (February 30) still fails.
 */
export function leaseExpiry(alias: string, jsonpathDates: boolean): string {
  if (jsonpathDates) return `(jsonb_path_query_first(${alias}.body, '$.expiresAt.datetime() ? (@.type() == "timestamp with time zone")', '{}', true) #>> '{}')::timestamptz`;
  // No backslash in the pattern: with standard_conforming_strings off (a database's or a role's setting) the literal
  // would lose them, and every lease would read as unreadable and be taken over.
  return `(CASE WHEN ${alias}.body->>'expiresAt' ~ '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]([.][0-9]{1,6})?[+-](0[0-9]|1[0-5])(:[0-5][0-9]){0,2}$'
                THEN (${alias}.body->>'expiresAt')::timestamptz END)`;
}
