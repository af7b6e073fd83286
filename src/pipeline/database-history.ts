/**
 * Whether a checkpoint's positions are still on the server's history. Documents carry LSNs as external versions, so
 * an index may only continue on a server whose LSNs continue the ones it was written with: the same cluster, and a
 * timeline whose history contains every position the checkpoint reached. A point-in-time restore, a failover to a
 * replica that had not received everything, or a database restored from a dump into another cluster breaks that:
 * the index holds changes that never happened there, with versions that would win over the server's real changes.
 */
import type { Checkpoint } from '../checkpoint/checkpoint-store.js';
import { AppError } from '../errors/app-error.js';
import type { ChangeSource, DatabaseOrigin } from '../source/change-source.js';
import { formatLsn, parseLsn } from '../source/postgres/lsn.js';

export interface HistoryCheck {
  /** The server's origin now, to record in the checkpoint. */
  origin: DatabaseOrigin;
  /** Why the checkpoint's progress does not belong to this server's history; undefined when it does. */
  diverged?: string;
}

/** Checks `checkpoint` (its recorded origin and position) against the server; a checkpoint without either passes. */
export async function checkHistory(source: ChangeSource, checkpoint: Checkpoint | undefined): Promise<HistoryCheck> {
  if (checkpoint?.snapshot && checkpoint.diverged !== undefined) {
    const { system, timeline } = await source.origin();
    return { origin: { system, timeline }, diverged: checkpoint.diverged };
  }
  const recorded = checkpoint?.snapshot ? checkpoint.origin : undefined;
  if (recorded === undefined) {
    const { system, timeline } = await source.origin();
    return { origin: { system, timeline } };
  }
  const { leftSinceAt, walEnd, ...origin } = await source.origin(recorded.timeline);
  if (origin.system !== recorded.system) {
    return {
      origin,
      diverged: `the database is on another PostgreSQL cluster (system identifier ${origin.system}; the checkpoint was taken on ${recorded.system}), restored from a dump or replaced`,
    };
  }
  const position = checkpointPosition(checkpoint!);
  if (origin.timeline === recorded.timeline) {
    // WAL never moves back on one timeline of a running primary; it does when a crash-consistent copy (a volume or VM
    // snapshot) is restored, which keeps the system identifier and the timeline.
    if (walEnd !== undefined && walEnd < position) {
      return {
        origin,
        diverged: `the server's WAL ends at ${formatLsn(walEnd)}, before the checkpoint's position ${formatLsn(position)} on the same timeline ${origin.timeline}: the database was restored from a copy taken before that position, and the changes in between never happened on this server`,
      };
    }
    return { origin };
  }
  if (leftSinceAt === null || leftSinceAt === undefined) {
    return { origin, diverged: `the server is on timeline ${origin.timeline}, whose history does not contain the checkpoint's timeline ${recorded.timeline}` };
  }
  if (position > leftSinceAt) {
    return {
      origin,
      diverged:
        `the server's history left timeline ${recorded.timeline} at ${formatLsn(leftSinceAt)} (now timeline ${origin.timeline}: a point-in-time restore, ` +
        `or a failover to a replica that missed changes), before the checkpoint's position ${formatLsn(position)}: the changes in between never happened on this server`,
    };
  }
  return { origin };
}

/** The highest LSN the checkpoint's writes may carry as a version: its acknowledged position, its snapshot's, or its ceiling. */
export function checkpointPosition(checkpoint: Checkpoint): bigint {
  let highest = 0n;
  for (const lsn of [checkpoint.lsn, checkpoint.snapshot?.consistentLsn, checkpoint.ceiling]) {
    if (lsn !== undefined && parseLsn(lsn) > highest) highest = parseLsn(lsn);
  }
  return highest;
}

/** The error a sync stops with when its checkpoint left the server's history: the lifecycle starts a new generation. */
export function historyChanged(index: string, reason: string): AppError {
  return new AppError('SRC_HISTORY_CHANGED', `index ${index}: ${reason}`, { details: { index } });
}
