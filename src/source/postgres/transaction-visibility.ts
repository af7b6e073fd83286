/**
 * A transaction is decodable as soon as its commit record is flushed, but other sessions see its rows only once
 * the committing backend has left the proc array: with synchronous replication, not before a standby confirms
 * (as long as the standby takes, or forever while none is connected); without it, a moment later. A document
 * query run in between reads the rows as they were before the commit, and the index keeps that old document
 * until the row changes again. So a batch's documents are read only once all its transactions are visible.
 */
import { AppError } from '../../errors/app-error.js';
import { sleep } from '../../util/backoff.js';
import type { Queryable } from './replication-slot.js';

/** Longest pause between two looks at the server's snapshot while a transaction is not visible yet. */
const MAX_POLL_MS = 200;

export interface VisibilityWait {
  /** Called once when the transactions have not become visible within `slowAfterMs`. */
  onSlow?: (pending: number[], waitedMs: number) => void;
  /** Called every `slowAfterMs` while they are not: rejecting ends the wait with its error. */
  whileSlow?: () => Promise<void>;
  slowAfterMs?: number;
}

/**
 * Resolves once every transaction of `xids` (32-bit ids as pgoutput sends them, all committed) is visible to a new
 * snapshot; rejects when `signal` aborts. One query when they are, the usual case.
 */
export async function awaitVisible(pool: Queryable, xids: readonly number[], signal: AbortSignal, wait: VisibilityWait = {}): Promise<void> {
  if (xids.length === 0) return;
  const started = Date.now();
  const slowAfterMs = wait.slowAfterMs ?? 5000;
  let pause = 1;
  let reported = false;
  let checked = 0;
  for (;;) {
    // txid_current_snapshot exists on every supported version (pg_current_snapshot only from PostgreSQL 13).
    const { rows } = await pool.query<{ snapshot: string }>('SELECT txid_current_snapshot()::text AS snapshot');
    const pending = notVisible(xids, rows[0]?.snapshot ?? '');
    if (pending.length === 0) return;
    const waited = Date.now() - started;
    if (!reported && waited >= slowAfterMs) {
      reported = true;
      wait.onSlow?.(pending, waited);
    }
    if (waited >= (checked + 1) * slowAfterMs) {
      checked = Math.floor(waited / slowAfterMs);
      await wait.whileSlow?.();
    }
    await sleep(pause, signal);
    pause = Math.min(pause * 2, MAX_POLL_MS);
  }
}

/**
 * The transactions of `xids` that a snapshot (`xmin:xmax:xip,…`, 64-bit ids) does not see: those not before
 * `xmax` or still in progress. Ids compare as PostgreSQL compares 32-bit ids, modulo 2^32.
 */
export function notVisible(xids: readonly number[], snapshot: string): number[] {
  const [, xmaxText, xipText] = snapshot.split(':');
  if (xmaxText === undefined || !/^\d+$/.test(xmaxText)) throw new Error(`unexpected snapshot "${snapshot}" from txid_current_snapshot()`);
  const xmax = low32(xmaxText);
  const inProgress = new Set((xipText ?? '').split(',').filter((x) => x !== '').map(low32));
  return [...new Set(xids)].filter((xid) => !precedes(xid, xmax) || inProgress.has(xid));
}

function low32(id: string): number {
  return Number(BigInt(id) & 0xffffffffn);
}

/** TransactionIdPrecedes for normal ids: `a` is older than `b`, on the circle of 2^32 ids. */
function precedes(a: number, b: number): boolean {
  return ((a - b) | 0) < 0;
}

/**
 * Fails when the walsender streaming `slot` is a synchronous standby: commits then wait for Sluice to confirm them,
 * while Sluice waits for them to become visible before reading their rows, and neither ever moves. pgoutput
 * walsenders are standby candidates like physical ones, so a `*` in synchronous_standby_names names them too.
 * `sync_state` is only readable with pg_read_all_stats (or pg_monitor); without it, being named in
 * synchronous_standby_names while commits stay invisible is taken for the same cycle.
 */
export async function assertNotSynchronousStandby(pool: Queryable, slot: string, applicationName = 'sluice'): Promise<void> {
  const { rows } = await pool.query<{ sync_state: string | null; names: string }>(
    `SELECT (SELECT r.sync_state FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1) AS sync_state,
            current_setting('synchronous_standby_names') AS names`,
    [slot],
  );
  const state = rows[0]?.sync_state ?? null;
  const names = rows[0]?.names ?? '';
  if (state !== null ? state !== 'sync' && state !== 'quorum' : !namesStandby(names, applicationName)) return;
  const seen = state !== null ? `is a synchronous standby (pg_stat_replication.sync_state = '${state}')` : `is named by synchronous_standby_names = '${names}'`;
  throw new AppError(
    'SRC_SYNC_STANDBY',
    `the replication connection of slot "${slot}" (application_name "${applicationName}") ${seen} and its transactions stay invisible: commits wait for Sluice to confirm them, and Sluice reads a transaction's rows only once it is visible, so neither can go on. Leave Sluice out of synchronous_standby_names (a "*" entry matches it too: name the standbys instead) and reload the configuration`,
    { details: { slot, syncState: state } },
  );
}

/**
 * Whether a synchronous_standby_names value (`a, b`, `FIRST 2 (a, "b")`, `ANY 1 (*)`) names `applicationName`:
 * `*`, or the name itself, compared without case as PostgreSQL does.
 */
export function namesStandby(setting: string, applicationName: string): boolean {
  const tokens = setting.match(/"(?:[^"]|"")*"|[^\s,()]+/g) ?? [];
  const wanted = applicationName.toLowerCase();
  return tokens.some((token) => {
    if (token === '*') return true;
    const name = token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token;
    return name.toLowerCase() === wanted;
  });
}
