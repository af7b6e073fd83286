import { createHash } from 'node:crypto';
import pg from 'pg';
import type { PostgresConfig } from '../../config/config-types.js';
import { AppError } from '../../errors/app-error.js';
import { connectionOptions, endClient, postgresError } from './connect.js';
import { parseLsn } from './lsn.js';
import { quoteIdent } from '../../transform/sql.js';

/** Anything that runs a parameterised query: a pg Client, PoolClient or Pool. */
export interface Queryable {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- same default as pg's own query()
  query<R extends pg.QueryResultRow = any>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export interface SlotInfo {
  exists: boolean;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: bigint | null;
  restartLsn: bigint | null;
  /** reserved | extended | unreserved | lost (PostgreSQL 13+), else null. */
  walStatus: string | null;
  /** WAL the slot keeps from removal: current WAL position − restart_lsn. */
  retainedBytes: number | null;
  /** WAL between the server's position and the slot's confirmed flush position. */
  behindBytes: number | null;
  /** The slot can no longer deliver changes: wal_status 'lost', or a recovery conflict / invalidation reason. */
  invalidated: boolean;
}

export interface ExportedSnapshotSlot {
  /** Where the stream must start so that it continues exactly after the snapshot. */
  consistentLsn: bigint;
  /** For `SET TRANSACTION SNAPSHOT '<name>'`; valid only until `release()`. */
  snapshotName: string;
  /** Closes the creating connection, which ends the exported snapshot. */
  release(): Promise<void>;
}

const MAX_SLOT_NAME_BYTES = 63;
const POLL_MS = 100;
const RELEASE_WAIT_MS = 5000;

/** Connection options of a logical replication connection (walsender in database mode). */
export function replicationClientOptions(config: PostgresConfig, database: string): pg.ClientConfig {
  return { ...connectionOptions(config, database), replication: 'database' } as pg.ClientConfig;
}

/**
 * PGSync's slot name `lower(database)_index` without characters outside [0-9A-Za-z_], but entirely
 * lower-cased (PostgreSQL rejects upper case in slot names) and cut to 63 bytes with a hash suffix.
 */
export function slotNameFor(database: string, index: string): string {
  const name = `${database.toLowerCase()}_${index}`.replace(/[^0-9A-Za-z_]/g, '').toLowerCase();
  if (name.length <= MAX_SLOT_NAME_BYTES) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, MAX_SLOT_NAME_BYTES - hash.length - 1)}_${hash}`;
}

/**
 * Creates a pgoutput slot and exports its snapshot. The replication connection stays open and idle
 * until `release()`: the snapshot dies with it (or with any further command on it).
 *
 * Creating the slot waits for every transaction that already has an id to end, which an idle-in-transaction
 * session can make last for hours. When `signal` aborts meanwhile, the command is cancelled through `canceller` (a
 * regular connection of the same role, which may cancel its own backends): PostgreSQL drops the unfinished slot.
 */
export async function createSlotWithSnapshot(
  config: PostgresConfig,
  database: string,
  slot: string,
  stop?: { signal: AbortSignal; canceller: Queryable },
): Promise<ExportedSnapshotSlot> {
  const client = new pg.Client(replicationClientOptions(config, database));
  // A connection lost while idle surfaces as the readers' SET TRANSACTION SNAPSHOT failing.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const version = await client.query<{ server_version_num: string }>('SHOW server_version_num');
    const legacy = Number(version.rows[0]?.server_version_num ?? 0) < 150000;
    const pid = stop ? Number((await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid) : undefined;
    const cancel = () => void stop?.canceller.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
    stop?.signal.throwIfAborted();
    stop?.signal.addEventListener('abort', cancel, { once: true });
    let created;
    try {
      created = await client.query<{ consistent_point: string; snapshot_name: string }>(
        `CREATE_REPLICATION_SLOT ${quoteIdent(slot)} LOGICAL pgoutput ${legacy ? 'EXPORT_SNAPSHOT' : "(SNAPSHOT 'export')"}`,
      );
    } finally {
      stop?.signal.removeEventListener('abort', cancel);
    }
    const row = created.rows[0];
    if (row === undefined) throw new Error('CREATE_REPLICATION_SLOT returned no row');
    let released: Promise<void> | undefined;
    return {
      consistentLsn: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      release: () => (released ??= client.end().catch(() => undefined)),
    };
  } catch (error) {
    await endClient(client);
    throw postgresError(error, `creating replication slot "${slot}"`, config, database);
  }
}

export async function slotInfo(client: Queryable, slot: string): Promise<SlotInfo> {
  // Columns newer than PostgreSQL 12 are read through to_jsonb so one query works on every version.
  const result = await client.query<{
    active: boolean;
    active_pid: number | null;
    confirmed_flush_lsn: string | null;
    restart_lsn: string | null;
    wal_status: string | null;
    retained: string | null;
    behind: string | null;
    conflicting: string | null;
    invalidation_reason: string | null;
  }>(
    `SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text, s.restart_lsn::text,
            to_jsonb(s) ->> 'wal_status' AS wal_status,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, s.restart_lsn)::text AS retained,
            pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END, s.confirmed_flush_lsn)::text AS behind,
            to_jsonb(s) ->> 'conflicting' AS conflicting,
            to_jsonb(s) ->> 'invalidation_reason' AS invalidation_reason
       FROM pg_replication_slots s WHERE s.slot_name = $1`,
    [slot],
  );
  const row = result.rows[0];
  if (row === undefined) {
    return { exists: false, active: false, activePid: null, confirmedFlushLsn: null, restartLsn: null, walStatus: null, retainedBytes: null, behindBytes: null, invalidated: false };
  }
  return {
    exists: true,
    active: row.active,
    activePid: row.active_pid,
    confirmedFlushLsn: row.confirmed_flush_lsn === null ? null : parseLsn(row.confirmed_flush_lsn),
    restartLsn: row.restart_lsn === null ? null : parseLsn(row.restart_lsn),
    walStatus: row.wal_status,
    retainedBytes: row.retained === null ? null : Number(row.retained),
    behindBytes: row.behind === null ? null : Number(row.behind),
    invalidated: row.wal_status === 'lost' || row.conflicting === 'true' || row.invalidation_reason !== null,
  };
}

/**
 * Polls until the slot is gone or no longer held (by `pid`, when given). Returns the PID still
 * holding it after `timeoutMs`, else null.
 */
export async function waitForSlotRelease(client: Queryable, slot: string, timeoutMs: number, pid?: number): Promise<number | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await client.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    const holder = result.rows[0]?.active_pid ?? null;
    if (holder === null || (pid !== undefined && holder !== pid)) return null;
    if (Date.now() >= deadline) return holder;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Waits for the walsender holding the slot (only `pid`, when given) to exit, then terminates it.
 * A walsender lingers after its client stopped streaming, so the slot cannot be dropped at once.
 */
export async function releaseSlot(client: Queryable, slot: string, pid?: number): Promise<void> {
  const holder = await waitForSlotRelease(client, slot, RELEASE_WAIT_MS, pid);
  if (holder === null) return;
  await client.query('SELECT pg_terminate_backend($1)', [holder]);
  const still = await waitForSlotRelease(client, slot, RELEASE_WAIT_MS, holder);
  if (still !== null) throw new AppError('SRC_QUERY', `replication slot "${slot}" is still held by PID ${still} after pg_terminate_backend`);
}

/** Drops the slot, waiting for (then terminating) a walsender still holding it; no error when it does not exist. */
export async function dropSlot(client: Queryable, slot: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    await releaseSlot(client, slot);
    try {
      await client.query('SELECT pg_drop_replication_slot($1)', [slot]);
      return;
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === '42704') return; // undefined_object: already gone
      if (code === '55006' && attempt < 5) continue; // object_in_use: someone started streaming it meanwhile
      throw new AppError('SRC_QUERY', `dropping replication slot "${slot}" failed: ${(error as Error).message}`, { cause: error, details: { pgCode: code } });
    }
  }
}

const LOST_PATTERN = /can no longer get changes from replication slot|cannot read from logical replication slot|has been invalidated|requested WAL segment .* has already been removed/;

/** Maps an error of a replication connection: SRC_SLOT_MISSING, SRC_SLOT_LOST, else SRC_CONNECT. */
export function replicationError(error: unknown, slot: string, doing: string, config: PostgresConfig, database: string): AppError {
  if (error instanceof AppError) return error;
  const e = error as { code?: string; message?: string; detail?: string };
  const message = e.message ?? String(error);
  const text = `${message}\n${e.detail ?? ''}`;
  const where = `${config.user}@${config.host}:${config.port}/${database}`;
  const options = { cause: error, details: { pgCode: e.code, slot } };
  if (/replication slot ".*" does not exist/.test(text)) {
    return new AppError('SRC_SLOT_MISSING', `PostgreSQL ${where}: replication slot "${slot}" does not exist (${doing})`, options);
  }
  if (LOST_PATTERN.test(text)) {
    return new AppError('SRC_SLOT_LOST', `PostgreSQL ${where}: replication slot "${slot}" was invalidated and can no longer stream (${doing}): ${message}${e.detail ? ` ${e.detail}` : ''}`, options);
  }
  return new AppError('SRC_CONNECT', `PostgreSQL ${where}: ${doing} failed: ${message}`, options);
}
