/** Opens the checkpoint store the configuration names (REDIS_CHECKPOINT, SLUICE_CHECKPOINT_STORE, CHECKPOINT_PATH). */
import type pg from 'pg';
import type { SluiceConfig } from '../config/config-types.js';
import { AppError } from '../errors/app-error.js';
import { createPool } from '../source/postgres/connect.js';
import type { CheckpointStore } from './checkpoint-store.js';
import { FileCheckpointStore } from './file-checkpoint-store.js';
import { PostgresCheckpointStore } from './postgres-checkpoint-store.js';
import { RedisCheckpointStore } from './redis-checkpoint-store.js';

/**
 * - `redis`: the hash `queue:<name>:meta` in `config.redis`.
 * - `file`: files in `config.checkpointPath`.
 * - `postgres`: the table `sluice.checkpoint` reached through `pgPool` (left open on close), or else through a
 *   pool of two connections to `config.postgres.database` that the store owns.
 * Throws `AppError('CKP_UNAVAILABLE')` when the store cannot be used.
 */
export async function openCheckpointStore(config: SluiceConfig, pgPool?: pg.Pool): Promise<CheckpointStore> {
  switch (config.checkpointStore) {
    case 'redis':
      if (config.redis === undefined) {
        throw new AppError('CKP_UNAVAILABLE', 'the checkpoint store is redis but no Redis is configured: set REDIS_URL or REDIS_HOST');
      }
      return RedisCheckpointStore.open(config.redis);
    case 'file':
      return FileCheckpointStore.open(config.checkpointPath);
    case 'postgres': {
      if (pgPool !== undefined) return PostgresCheckpointStore.open(pgPool);
      const pool = createPool(config.postgres, config.postgres.database, 2);
      try {
        return await PostgresCheckpointStore.open(pool, 'sluice', { ownsPool: true });
      } catch (error) {
        await pool.end().catch(() => undefined);
        throw error;
      }
    }
  }
}
