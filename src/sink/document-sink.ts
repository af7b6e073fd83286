/**
 * The sink port: what the pipeline needs from a search engine. Adapters live under sink/<engine>/.
 * Document bodies travel as JSON text produced by PostgreSQL; the sink never parses them.
 */

export interface IndexAction {
  op: 'index';
  index: string;
  id: string;
  /** The document as JSON text, exactly as PostgreSQL built it. */
  source: string;
  routing?: string;
  pipeline?: string;
  /** External version (from the commit LSN); omitted during a plain full sync. */
  version?: bigint;
  /** Where the change came from (snapshot chunk or LSN), recorded with dead letters. */
  position?: string;
}

export interface DeleteAction {
  op: 'delete';
  index: string;
  id: string;
  routing?: string;
  version?: bigint;
  position?: string;
}

export type BulkAction = IndexAction | DeleteAction;

/** Index creation request, derived from a schema entry. */
export interface IndexDefinition {
  name: string;
  /** Body of `settings.index` (schema `setting`). */
  settings?: Record<string, unknown>;
  /** Full `mappings` object (schema `mapping` merged with transform mappings and routing). */
  mappings?: Record<string, unknown>;
  /** The ingest pipeline documents go through (schema `pipeline`): it must exist before anything is written. */
  pipeline?: string;
}

export interface EngineInfo {
  flavor: 'elasticsearch' | 'opensearch';
  /** e.g. "7.17.15", "8.15.0", "2.11.1" */
  version: string;
  major: number;
}

/** A document the engine refused for a reason that retrying will not fix. */
export interface DeadLetter {
  index: string;
  id: string;
  op: 'index' | 'delete';
  status: number;
  /** Engine error type, e.g. mapper_parsing_exception, or `request_too_large`. */
  errorType: string;
  reason: string;
  position?: string;
  source?: string;
  at: string;
}

export interface BulkStats {
  indexed: number;
  deleted: number;
  /**
   * Of those, versioned writes the engine refused because the document already has a higher version (409): applied
   * as far as the sync goes, as a newer write of the document won.
   */
  stale: number;
  /** The highest version of a document that refused a write as stale, when the engine's messages give it. */
  newestRefusingVersion?: bigint;
  /** Actions that failed permanently and went to the dead-letter store. */
  deadLettered: number;
  /** Item or request retries performed. */
  retries: number;
  requests: number;
}

export interface DeadLetterStore {
  record(letters: DeadLetter[]): Promise<void>;
  close(): Promise<void>;
}
