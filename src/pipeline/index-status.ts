/** What an index sync reports about itself, for logs now and the status surfaces (/status, /metrics). */
export interface IndexStatus {
  index: string;
  phase: 'starting' | 'snapshot' | 'streaming' | 'waiting' | 'stopped';
  /** Documents written by the snapshot so far. */
  snapshotDocuments: number;
  /** Row changes applied since start, and documents indexed/deleted by them. */
  changesApplied: number;
  documentsIndexed: number;
  documentsDeleted: number;
  /** Seconds from the commit of the newest applied transaction to its application (last batch). */
  lagSeconds?: number;
  lastAppliedLsn?: string;
  lastCommitTime?: string;
  /** WAL the slot holds back, in bytes (polled while idle). */
  retainedWalBytes?: number;
  /** The slot is past max_wal_size and will be invalidated once it exceeds max_slot_wal_keep_size. */
  slotAtRisk: boolean;
  lastError?: { code: string; message: string; at: string };
}

export function newIndexStatus(index: string): IndexStatus {
  return { index, phase: 'starting', snapshotDocuments: 0, changesApplied: 0, documentsIndexed: 0, documentsDeleted: 0, slotAtRisk: false };
}
