/**
 * Classification of `_bulk` response items: success, retry later, document error (dead letter) or fatal.
 * Item failures are data, not exceptions (style guide, error handling 5).
 */
import type { BulkAction } from '../document-sink.js';
import { asRecord, parseEngineError } from './es-errors.js';

export type ItemOutcome =
  /**
   * Applied; `stale` when a newer external version was already indexed (409 with version), `current` that version
   * when the engine's message gives it.
   */
  | { kind: 'success'; status: number; stale: boolean; current?: bigint }
  /**
   * Transient (overload, shard unavailable, disk-full block): send the item again after a backoff. `suspect` for a
   * server error of this item alone (HTTP 500 of no known transient type): after a few, the document is suspected.
   */
  | { kind: 'retry'; status: number; errorType: string; reason: string; suspect?: boolean }
  /** The engine refuses this document; retrying will not help: dead letter. */
  | { kind: 'document'; status: number; errorType: string; reason: string }
  /** The whole write path is broken (index missing, credentials refused): stop. */
  | { kind: 'fatal'; status: number; errorType: string; reason: string };

export interface ClassifyOptions {
  /** The index is expected to exist (created by ensureIndex); if missing, writing must stop. Default true. */
  expectIndex?: boolean;
}

const RETRYABLE_TYPES = new Set([
  'es_rejected_execution_exception',
  'opensearch_rejected_execution_exception',
  'rejected_execution_exception',
  'circuit_breaking_exception',
  'unavailable_shards_exception',
  'no_shard_available_action_exception',
  'node_not_connected_exception',
  'node_closed_exception',
  'process_cluster_event_timeout_exception',
  'timeout_exception',
]);

const FATAL_TYPES = new Set(['security_exception', 'authentication_exception', 'authorization_exception']);

/**
 * Classifies one item of a `_bulk` response (`{"index": {...}}` or `{"delete": {...}}`) for the action
 * that produced it.
 */
export function classifyItem(item: unknown, action: BulkAction, options: ClassifyOptions = {}): ItemOutcome {
  const rec = asRecord(item);
  const inner = asRecord(rec?.[action.op] ?? (rec ? Object.values(rec)[0] : undefined));
  const status = typeof inner?.['status'] === 'number' ? inner['status'] : 0;
  const error = inner?.['error'];
  if (status >= 200 && status < 300 && error === undefined) return { kind: 'success', status, stale: false };
  if (status === 0) {
    return { kind: 'fatal', status, errorType: 'malformed_bulk_item', reason: `unexpected bulk response item: ${JSON.stringify(item)}` };
  }
  const { type, reason } = parseEngineError(error ?? inner, `http_${status}`);

  if (status === 404 && action.op === 'delete' && (error === undefined || inner?.['result'] === 'not_found')) {
    return { kind: 'success', status, stale: false };
  }
  if (type === 'index_not_found_exception') {
    if (action.op === 'delete' && options.expectIndex === false) return { kind: 'success', status, stale: false };
    return { kind: 'fatal', status, errorType: type, reason };
  }
  if (status === 409 && type === 'version_conflict_engine_exception' && action.version !== undefined) {
    const current = /current version \[(\d+)\]/.exec(reason)?.[1];
    return { kind: 'success', status, stale: true, ...(current !== undefined ? { current: BigInt(current) } : {}) };
  }
  if (type === 'cluster_block_exception') {
    return isRetryableBlock(status, reason)
      ? { kind: 'retry', status, errorType: type, reason }
      : { kind: 'fatal', status, errorType: type, reason };
  }
  if (status === 401 || status === 403 || FATAL_TYPES.has(type)) return { kind: 'fatal', status, errorType: type, reason };
  if (isIndexWide(type, reason)) return { kind: 'retry', status, errorType: type, reason };
  if (RETRYABLE_TYPES.has(type) || status === 429 || status === 503) return { kind: 'retry', status, errorType: type, reason };
  if (status >= 500) return { kind: 'retry', status, errorType: type, reason, suspect: true };
  return { kind: 'document', status, errorType: type, reason };
}

/**
 * Refusals that would hit every document alike, so none of them is the document's fault: the index closed by an
 * operator, the ingest pipeline missing (not created yet, or deleted). Dead-lettering would send the whole stream
 * to the dead-letter file while the checkpoint moves on; retried instead, the sync waits (with the reason in its
 * log and in /status) and resumes by itself once the index is open or the pipeline exists.
 */
function isIndexWide(type: string, reason: string): boolean {
  return type === 'index_closed_exception' || /pipeline with id \[.*\] does not exist/.test(reason);
}

/**
 * A cluster block clears by itself or by an operator freeing disk (flood-stage watermark sets
 * `read-only-allow-delete`, answered 429 since ES 7.x) or a recovering cluster (503, "no master",
 * "state not recovered"): retry. A block an operator set on purpose (`index.blocks.write`, read-only) is fatal.
 */
function isRetryableBlock(status: number, reason: string): boolean {
  if (status === 429 || status >= 500) return true;
  return /allow[ _-]delete|no master|not recovered|SERVICE_UNAVAILABLE/i.test(reason);
}

/** The `items` array of a bulk response body, or undefined when the body is not a bulk response. */
export function bulkItems(body: unknown): unknown[] | undefined {
  const items = asRecord(body)?.['items'];
  return Array.isArray(items) ? items : undefined;
}
