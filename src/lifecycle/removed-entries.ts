import type pg from 'pg';
import { toError } from '../errors/app-error.js';
import type { CheckpointStore } from '../checkpoint/checkpoint-store.js';
import type { IndexSyncLogger } from '../pipeline/index-sync.js';
import { dropSlot } from '../source/postgres/replication-slot.js';
import { isSlotOrRebuildOf, rebuildSlotsToDrop, reindexRequestName } from './generation-names.js';

/** Long enough for dropping two slots, including waiting for a lingering walsender. */
const REMOVAL_LEASE_MS = 60_000;

/**
 * Slots of schema entries that are gone from schema.json: each would hold back WAL forever. A slot is taken
 * for Sluice's only when the checkpoint store holds a Sluice checkpoint with a generation under its name (other
 * tools' slots in the same database are never touched). Its slot, rebuild slot and records are dropped; its
 * index is left in place, since searches may still use it. An entry whose ownership lease another process holds (one
 * still running the schema.json that has it) is left to that process.
 */
export async function dropRemovedEntries(pool: pg.Pool, store: CheckpointStore, currentSlots: Set<string>, logger: IndexSyncLogger, holder: string): Promise<string[]> {
  const { rows } = await pool.query<{ slot_name: string }>(
    // An active slot is streamed by some process right now (another Sluice with its own schema.json): not ours to drop.
    `SELECT slot_name::text FROM pg_replication_slots WHERE database = current_database() AND plugin = 'pgoutput' AND slot_type = 'logical' AND NOT active`,
  );
  const dropped: string[] = [];
  for (const { slot_name: slot } of rows) {
    if (isSlotOrRebuildOf(slot, currentSlots)) continue;
    // A slot whose record cannot be read (corrupt, or the store unreachable) is left alone: an entry that is gone
    // must not stop the ones that are there (`sluice reset` cannot name it any more; the message says where it is).
    const removed = await dropRemovedEntry(pool, store, slot, currentSlots, logger, holder).catch((error: unknown) => {
      logger.warn({ slot, err: toError(error).message }, 'could not check a replication slot Sluice may have left behind for a removed schema entry: left in place');
      return false;
    });
    if (removed) dropped.push(slot);
  }
  return dropped;
}

/** Drops one removed entry's slots and records; false when the slot is not such an entry's, or another process has it. */
async function dropRemovedEntry(pool: pg.Pool, store: CheckpointStore, slot: string, currentSlots: Set<string>, logger: IndexSyncLogger, holder: string): Promise<boolean> {
  const checkpoint = await store.load(slot);
  if (checkpoint?.generation === undefined || checkpoint.slot !== slot) return false;
  const lease = await store.claimLease(slot, holder, REMOVAL_LEASE_MS);
  if (lease.owner !== holder) {
    logger.info({ slot, owner: lease.owner }, 'schema entry removed from schema.json but still owned by another process: left to it');
    return false;
  }
  // A rebuild under way keeps the slot name it was started with (an earlier version named long ones otherwise).
  const rebuildSlots = rebuildSlotsToDrop(slot, checkpoint.rebuild?.slot, currentSlots);
  try {
    for (const name of [slot, ...rebuildSlots]) await dropSlot(pool, name);
    for (const name of [slot, ...rebuildSlots, reindexRequestName(slot)]) await store.remove(name, { lease: slot, holder });
  } finally {
    await store.releaseLease(slot, holder);
  }
  logger.warn(
    { slot, generation: checkpoint.generation, rebuild: checkpoint.rebuild?.generation },
    'schema entry removed from schema.json: dropped its replication slot and checkpoint; its index is left in place (delete it when nothing searches it any more)',
  );
  return true;
}
