/**
 * What the three checkpoint stores share: the JSON form of a Checkpoint and its validation on read, the
 * warning for a checkpoint PGSync left behind, per-name ordering of writes, and the refusal of a fenced write.
 */
import { AppError } from '../errors/app-error.js';
import type { Checkpoint, LeaseFence } from './checkpoint-store.js';

/** A fenced write refused because its holder no longer owns the lease. */
export function notOwner(doing: string, name: string, fence: LeaseFence): AppError {
  return new AppError('CKP_NOT_OWNER', `${doing} of checkpoint ${name} refused: ${fence.holder} no longer holds the ownership lease ${fence.lease}`);
}

const LSN = /^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/;

export function encodeCheckpoint(checkpoint: Checkpoint): string {
  return JSON.stringify(checkpoint);
}

/**
 * Parses and checks stored JSON text (or an already parsed value, e.g. a jsonb column). Fields this version
 * does not know are kept, so a checkpoint written by a newer Sluice survives a round trip.
 * Throws `AppError('CKP_CORRUPT')` naming `where` (a file, a key) when the value is not a Checkpoint.
 */
export function decodeCheckpoint(stored: unknown, where: string): Checkpoint {
  let value: unknown = stored;
  if (typeof stored === 'string') {
    try {
      value = JSON.parse(stored);
    } catch (error) {
      throw corrupt(where, `not valid JSON (${(error as Error).message})`);
    }
  }
  const problem = checkpointProblem(value);
  if (problem !== undefined) throw corrupt(where, problem);
  return value as Checkpoint;
}

function corrupt(where: string, problem: string): AppError {
  return new AppError(
    'CKP_CORRUPT',
    `checkpoint ${where} is unreadable: ${problem}. Repair it, or delete it to sync this index again from scratch`,
    { details: { where } },
  );
}

/** Why `value` is not a Checkpoint, or undefined when it is one. */
export function checkpointProblem(value: unknown): string | undefined {
  if (!isObject(value)) return 'not a JSON object';
  if (typeof value['slot'] !== 'string' || value['slot'] === '') return '"slot" must be a non-empty string';
  if (typeof value['updatedAt'] !== 'string') return '"updatedAt" must be a string';
  if (value['lsn'] !== undefined && !isLsn(value['lsn'])) return '"lsn" must be an LSN such as "0/16B3748"';
  if (value['ceiling'] !== undefined && !isLsn(value['ceiling'])) return '"ceiling" must be an LSN such as "0/16B3748"';
  if (value['fingerprint'] !== undefined && typeof value['fingerprint'] !== 'string') return '"fingerprint" must be a string';
  if (value['generation'] !== undefined && typeof value['generation'] !== 'string') return '"generation" must be a string';
  if (value['diverged'] !== undefined && typeof value['diverged'] !== 'string') return '"diverged" must be a string';
  const rebuild = value['rebuild'];
  if (rebuild !== undefined && !(isObject(rebuild) && ['generation', 'fingerprint', 'slot', 'startedAt'].every((key) => typeof rebuild[key] === 'string'))) {
    return '"rebuild" must be an object with string "generation", "fingerprint", "slot" and "startedAt"';
  }
  if (rebuild !== undefined && rebuild['requested'] !== undefined && typeof rebuild['requested'] !== 'boolean') {
    return '"rebuild.requested" must be a boolean';
  }
  const origin = value['origin'];
  if (origin !== undefined && !(isObject(origin) && typeof origin['system'] === 'string' && Number.isInteger(origin['timeline']))) {
    return '"origin" must be an object with string "system" and integer "timeline"';
  }
  const retired = value['retired'];
  if (retired !== undefined && !(Array.isArray(retired) && retired.every((r) => isObject(r) && typeof r['index'] === 'string' && typeof r['dropAfter'] === 'string'))) {
    return '"retired" must be an array of objects with string "index" and "dropAfter"';
  }
  const snapshot = value['snapshot'];
  if (snapshot === undefined) return undefined;
  if (!isObject(snapshot)) return '"snapshot" must be an object';
  if (!isLsn(snapshot['consistentLsn'])) return '"snapshot.consistentLsn" must be an LSN such as "0/16B3748"';
  if (typeof snapshot['complete'] !== 'boolean') return '"snapshot.complete" must be true or false';
  if (snapshot['snapshotName'] !== undefined && typeof snapshot['snapshotName'] !== 'string') {
    return '"snapshot.snapshotName" must be a string';
  }
  const doneUpTo = snapshot['doneUpTo'];
  if (doneUpTo !== undefined && !(Array.isArray(doneUpTo) && doneUpTo.every((part) => typeof part === 'string'))) {
    return '"snapshot.doneUpTo" must be an array of strings';
  }
  for (const field of ['keyOrder', 'doneInKeyOrder']) {
    const list = snapshot[field];
    if (list !== undefined && !(Array.isArray(list) && list.every((part) => typeof part === 'string'))) return `"snapshot.${field}" must be an array of strings`;
  }
  return undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isLsn(value: unknown): value is string {
  return typeof value === 'string' && LSN.test(value);
}

/** Checks a checkpoint name (the slot name `<database>_<index>`); names are used in keys, rows and file names. */
export function checkName(name: string): void {
  if (typeof name !== 'string' || name === '') throw new TypeError('checkpoint name must be a non-empty string');
}

/** The warning for a checkpoint PGSync wrote (and Sluice cannot resume from) found at `where`. */
export function pgsyncCheckpointWarning(name: string, where: string, value: string): string {
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  return (
    `${where} holds a PGSync checkpoint (${shown}) but no Sluice checkpoint: PGSync's progress cannot be resumed, ` +
    `so index ${name} is synced again from scratch`
  );
}

/**
 * Runs tasks of the same key one after another (in call order) and tasks of different keys concurrently,
 * so two saves of one name can never land out of order. A failed task does not block the next.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task, task);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves once every task started so far has settled. */
  async idle(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}
