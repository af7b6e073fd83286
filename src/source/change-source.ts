/**
 * The change-source port: a logical replication stream decoded into transactions of row changes.
 * LSNs are bigint (64-bit WAL positions); text values are PostgreSQL's text output, null for SQL NULL.
 */

/** Column values of a row as pgoutput sends them (text format). `undefined` marks an unchanged TOASTed value. */
export type RowValues = Record<string, string | null | undefined>;

export interface RelationRef {
  schema: string;
  table: string;
}

export interface RowChange extends RelationRef {
  kind: 'insert' | 'update' | 'delete';
  /** Old row: the full row under REPLICA IDENTITY FULL, else only the replica-identity (key) columns; absent when the server sent none (an update that kept the key). */
  old?: RowValues;
  /** True when `old` holds only the key columns (REPLICA IDENTITY DEFAULT/INDEX). */
  oldIsKeyOnly: boolean;
  /** New row (insert, update). */
  new?: RowValues;
  /**
   * Set when the stream decoded a column selection and the update has a complete old row: whether some compared
   * column differs between old and new (an unchanged TOASTed value counts as unchanged). The compared columns
   * themselves are then not decoded.
   */
  comparedChanged?: boolean;
}

export interface TruncateChange {
  kind: 'truncate';
  relations: RelationRef[];
  cascade: boolean;
  restartIdentity: boolean;
}

export type Change = RowChange | TruncateChange;

export type StreamMessage =
  | { type: 'begin'; xid: number; finalLsn: bigint; commitTime: Date }
  /** `xid`: inside a streamed block, the (sub)transaction the change belongs to. */
  | { type: 'change'; change: Change; xid?: number }
  | { type: 'commit'; commitLsn: bigint; endLsn: bigint; commitTime: Date }
  /**
   * pgoutput v2: a block of changes of the in-progress transaction `xid` follows, up to 'stream-stop'. Blocks of
   * several transactions interleave with each other and with ordinary transactions. `lsn`: where the block's first
   * change is in the WAL (for the first segment, about where the transaction started).
   */
  | { type: 'stream-start'; xid: number; firstSegment: boolean; lsn: bigint }
  | { type: 'stream-stop' }
  /** The streamed transaction `xid` committed: its changes (those not aborted) take effect at `commitLsn`. */
  | { type: 'stream-commit'; xid: number; commitLsn: bigint; endLsn: bigint; commitTime: Date }
  /** The streamed transaction `xid` rolled back (`subxid` === `xid`), or only its subtransaction `subxid`. */
  | { type: 'stream-abort'; xid: number; subxid: number }
  /** A logical decoding message (pg_logical_emit_message), e.g. Sluice's heartbeat. */
  | { type: 'message'; lsn: bigint; transactional: boolean; prefix: string; content: Buffer }
  /** The server's position from a keepalive: everything up to `walEnd` has been sent. */
  | { type: 'keepalive'; walEnd: bigint; serverTime: Date };

/**
 * The columns a consumer reads, by `schema.table`. A row of a listed table carries only its `identifying` columns;
 * the other columns are not decoded. For an update with the complete old row (REPLICA IDENTITY FULL) the `compared`
 * columns of old and new are compared as they arrive (RowChange.comparedChanged); without `compared`, a change is
 * never skipped. Rows of unlisted tables carry every column.
 */
export type ColumnSelection = ReadonlyMap<string, { identifying: ReadonlySet<string>; compared?: ReadonlySet<string> }>;

export interface ReplicationStreamOptions {
  slot: string;
  publication: string;
  /** Resume from here (exclusive of what was acknowledged); 0n = the slot's confirmed position. */
  startLsn: bigint;
  /** Decode only these columns (default: every column). */
  columns?: ColumnSelection;
}

/** A started replication stream. Reading pauses the socket when the consumer does not pull (backpressure). */
export interface ReplicationStream extends AsyncIterable<StreamMessage> {
  /** Reports `lsn` as written, flushed and applied: the server may then free WAL up to it. */
  acknowledge(lsn: bigint): void;
  /** Ends the stream; resolves when the walsender has gone, so the slot can be dropped right after. */
  close(): Promise<void>;
}

export interface SlotState {
  exists: boolean;
  /** The server invalidated the slot (WAL it needed was removed): its stream can never resume. */
  invalidated: boolean;
  /** WAL the slot holds back, in bytes. */
  retainedBytes?: bigint;
  /** wal_status 'unreserved': the slot will be invalidated if it falls further behind (max_slot_wal_keep_size). */
  atRisk: boolean;
  confirmedLsn?: bigint;
  /** WAL between the server's current position and the slot's confirmed position, in bytes. */
  lagBytes?: bigint;
}

/** A slot created for a first start: its exported snapshot stays usable until `release()`. */
export interface CreatedSlot {
  consistentLsn: bigint;
  snapshotName: string;
  release(): Promise<void>;
}

/** The PostgreSQL cluster (system identifier) and timeline that the stream's LSNs belong to. */
export interface DatabaseOrigin {
  system: string;
  timeline: number;
}

/** Slot administration and streaming for one database. */
export interface ChangeSource {
  slotState(slot: string): Promise<SlotState>;
  /**
   * The server's origin now; with `since` (an earlier timeline of the same system), also `leftSinceAt`: the LSN at
   * which its history left that timeline, or null when that timeline is not in its history. `walEnd`: on a primary,
   * where its WAL ends now (absent on a standby).
   */
  origin(since?: number): Promise<DatabaseOrigin & { leftSinceAt?: bigint | null; walEnd?: bigint }>;
  /** Creates the slot; a `signal` aborting while it waits for open transactions cancels the creation. */
  createSlot(slot: string, signal?: AbortSignal): Promise<CreatedSlot>;
  dropSlot(slot: string): Promise<void>;
  stream(options: ReplicationStreamOptions): Promise<ReplicationStream>;
  /** Writes a heartbeat into the WAL so an idle database still moves the slot forward. */
  emitHeartbeat(): Promise<void>;
}
