/**
 * One `_bulk` round trip and what it means for the writer: per-item outcomes, retry the whole request,
 * or "too large" (HTTP 413). Anything else the engine refuses for the whole request throws.
 */
import { AppError } from '../../errors/app-error.js';
import type { EncodedAction } from './bulk-encoder.js';
import { encodeBody } from './bulk-encoder.js';
import type { ClassifyOptions, ItemOutcome } from './bulk-response.js';
import { bulkItems, classifyItem } from './bulk-response.js';
import type { EngineClient } from './engine-client.js';
import { EngineTransportError, parseEngineErrorText, requestRejected } from './es-errors.js';

export type BulkAttempt =
  /** The engine answered per item; `outcomes[i]` belongs to `actions[i]`. */
  | { kind: 'items'; outcomes: ItemOutcome[] }
  /** The request failed as a whole in a way that may pass later; `throttled` for HTTP 429. */
  | { kind: 'retry'; throttled: boolean; reason: string }
  /** HTTP 413: the body exceeds the engine's `http.max_content_length`. */
  | { kind: 'tooLarge'; reason: string };

/** Statuses of a whole bulk request worth retrying: timeout, throttling, server and gateway errors. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Sends the actions as one `_bulk` request and interprets the answer. */
export async function sendBulk(client: EngineClient, actions: readonly EncodedAction[], options: ClassifyOptions = {}): Promise<BulkAttempt> {
  let res;
  try {
    res = await client.request('POST', '/_bulk', { body: encodeBody(actions), contentType: 'application/x-ndjson' });
  } catch (err) {
    if (err instanceof EngineTransportError && err.retryable) return { kind: 'retry', throttled: false, reason: err.message };
    throw err;
  }
  if (res.status === 200) {
    const items = bulkItems(res.json());
    if (items === undefined || items.length !== actions.length) {
      throw new AppError(
        'SNK_REQUEST',
        `bulk response does not match the request: ${actions.length} actions sent, ${items?.length ?? 'no'} items received`,
      );
    }
    return { kind: 'items', outcomes: items.map((item, i) => classifyItem(item, actions[i]!.action, options)) };
  }
  if (res.status === 413) {
    const { reason } = parseEngineErrorText(res.body, 413);
    const bytes = actions.reduce((sum, a) => sum + a.bytes, 0);
    return { kind: 'tooLarge', reason: reason === '' ? `request of ${bytes} bytes exceeds the engine's http.max_content_length` : reason };
  }
  if (RETRY_STATUSES.has(res.status)) {
    const { type, reason } = parseEngineErrorText(res.body, res.status);
    return { kind: 'retry', throttled: res.status === 429, reason: `HTTP ${res.status} ${type}: ${reason}` };
  }
  throw requestRejected(`bulk request of ${actions.length} actions`, res.status, res.body);
}
