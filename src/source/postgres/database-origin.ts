/**
 * Which PostgreSQL history an LSN belongs to. LSNs only order changes within one cluster (its system identifier) and
 * along one line of timelines: a point-in-time restore or a failover to a replica that had not received everything
 * starts a new timeline at an earlier position, and the WAL the old one had after that point never happened there.
 */
import pg from 'pg';
import type { PostgresConfig } from '../../config/config-types.js';
import type { DatabaseOrigin } from '../change-source.js';
import { endClient, postgresError } from './connect.js';
import { parseLsn } from './lsn.js';
import { replicationClientOptions, type Queryable } from './replication-slot.js';

/**
 * The server's system identifier and current timeline, read with plain SQL any role may run (the timeline is the
 * one of the WAL segment being written), and, when `since` is an earlier timeline, the LSN at which the server's
 * history left it (TIMELINE_HISTORY over a replication connection, opened only then): `null` when `since` is not
 * in its history at all.
 */
export async function readDatabaseOrigin(
  pool: Queryable,
  config: PostgresConfig,
  database: string,
  since?: number,
): Promise<DatabaseOrigin & { leftSinceAt?: bigint | null; walEnd?: bigint }> {
  // A standby (PostgreSQL 16 decodes there too) names no segment being written: its last restartpoint's timeline.
  const result = await pool.query<{ system: string; timeline: number; wal_end: string | null }>(
    `SELECT system_identifier::text AS system,
            CASE WHEN pg_is_in_recovery() THEN (SELECT timeline_id FROM pg_control_checkpoint())
                 ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS timeline,
            CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS wal_end
       FROM pg_control_system()`,
  );
  const row = result.rows[0];
  if (row === undefined) throw new Error('pg_control_system() returned no row');
  const origin = { system: row.system, timeline: Number(row.timeline), ...(row.wal_end !== null ? { walEnd: parseLsn(row.wal_end) } : {}) };
  if (since === undefined || since === origin.timeline) return origin;
  // Timeline 1 has no history file; a later one lists every timeline before it with the LSN where it ended.
  if (since > origin.timeline) return { ...origin, leftSinceAt: null };
  const client = new pg.Client(replicationClientOptions(config, database));
  client.on('error', () => undefined);
  try {
    await client.connect();
    return { ...origin, leftSinceAt: switchPoint(await timelineHistory(client, origin.timeline), since) };
  } catch (error) {
    throw postgresError(error, `reading the history of timeline ${origin.timeline} (TIMELINE_HISTORY)`, config, database);
  } finally {
    await endClient(client);
  }
}

async function timelineHistory(client: pg.Client, timeline: number): Promise<string> {
  const row = (await client.query<{ content: string | Buffer }>(`TIMELINE_HISTORY ${timeline}`)).rows[0];
  const content = row?.content;
  if (content === undefined) return '';
  if (Buffer.isBuffer(content)) return content.toString('utf8');
  // bytea in text form.
  return content.startsWith('\\x') ? Buffer.from(content.slice(2), 'hex').toString('utf8') : content;
}

/**
 * The LSN at which a timeline history file (`<parent timeline>\t<switch LSN>\t<reason>` per line) says its history
 * left `timeline`, or null when the timeline is not among its ancestors.
 */
export function switchPoint(history: string, timeline: number): bigint | null {
  for (const line of history.split('\n')) {
    const [parent, lsn] = line.trim().split(/\s+/);
    if (parent === undefined || lsn === undefined || !/^\d+$/.test(parent)) continue;
    if (Number(parent) === timeline) return parseLsn(lsn);
  }
  return null;
}

/**
 * The highest LSN the server has handed out (a primary's insert position, a standby's received WAL): no change of
 * this server's history carries a higher one.
 */
export async function walHandedOut(pool: Queryable): Promise<bigint | undefined> {
  const { rows } = await pool.query<{ lsn: string | null }>(
    'SELECT (CASE WHEN pg_is_in_recovery() THEN greatest(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) ELSE pg_current_wal_insert_lsn() END)::text AS lsn',
  );
  const lsn = rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : undefined;
}

/** Where the server's WAL is durable (on a standby: replayed), which no LSN decoded from it can pass. */
export async function durableWalEnd(pool: Queryable): Promise<bigint | undefined> {
  const { rows } = await pool.query<{ lsn: string | null }>(
    'SELECT (CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_flush_lsn() END)::text AS lsn',
  );
  const lsn = rows[0]?.lsn;
  return lsn ? parseLsn(lsn) : undefined;
}
