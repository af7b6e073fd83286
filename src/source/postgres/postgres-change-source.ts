import type pg from 'pg';
import type { PostgresConfig } from '../../config/config-types.js';
import type { ChangeSource, CreatedSlot, DatabaseOrigin, ReplicationStream, ReplicationStreamOptions, SlotState } from '../change-source.js';
import { postgresError } from './connect.js';
import { readDatabaseOrigin } from './database-origin.js';
import { createSlotWithSnapshot, dropSlot, slotInfo } from './replication-slot.js';
import { startReplicationStream } from './replication-stream.js';

/** The ChangeSource of one database: slots and streams over the replication protocol, queries over `pool`. */
export class PostgresChangeSource implements ChangeSource {
  constructor(
    private readonly config: PostgresConfig,
    private readonly database: string,
    private readonly pool: pg.Pool,
  ) {}

  async slotState(slot: string): Promise<SlotState> {
    const info = await this.guard('reading the replication slot', () => slotInfo(this.pool, slot));
    return {
      exists: info.exists,
      invalidated: info.invalidated,
      atRisk: info.walStatus === 'unreserved',
      ...(info.retainedBytes !== null ? { retainedBytes: BigInt(info.retainedBytes) } : {}),
      ...(info.behindBytes !== null ? { lagBytes: BigInt(info.behindBytes) } : {}),
      ...(info.confirmedFlushLsn !== null ? { confirmedLsn: info.confirmedFlushLsn } : {}),
    };
  }

  origin(since?: number): Promise<DatabaseOrigin & { leftSinceAt?: bigint | null; walEnd?: bigint }> {
    return this.guard('identifying the database system', () => readDatabaseOrigin(this.pool, this.config, this.database, since));
  }

  createSlot(slot: string, signal?: AbortSignal): Promise<CreatedSlot> {
    return createSlotWithSnapshot(this.config, this.database, slot, signal ? { signal, canceller: this.pool } : undefined);
  }

  dropSlot(slot: string): Promise<void> {
    return this.guard('dropping the replication slot', () => dropSlot(this.pool, slot));
  }

  stream(options: ReplicationStreamOptions): Promise<ReplicationStream> {
    return startReplicationStream(this.config, this.database, options);
  }

  async emitHeartbeat(): Promise<void> {
    // Non-transactional: reaches the stream at once, without a transaction id, and lets an idle slot advance.
    await this.guard('writing a heartbeat', () => this.pool.query(`SELECT pg_logical_emit_message(false, 'sluice_heartbeat', '')`));
  }

  private async guard<T>(doing: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if ((error as { code?: string }).code?.startsWith('SRC_')) throw error;
      throw postgresError(error, doing, this.config, this.database);
    }
  }
}
