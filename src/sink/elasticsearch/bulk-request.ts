/**
 * One `_bulk` round trip and what it means for the writer: per-item outcomes, retry the whole request,
 * or "too large" (HTTP 413). Anything else the engine refuses for the whole request throws.
 */
import { AppError } from '../../errors/app-error.js';
import type { BulkAction, DeadLetter } from '../document-sink.js';
import type { EncodedAction } from './bulk-encoder.js';
import { encodeBody } from './bulk-encoder.js';
import type { ClassifyOptions, ItemOutcome } from './bulk-response.js';
import { bulkItems, classifyItem } from './bulk-response.js';
import type { EngineClient } from './engine-client.js';
import { EngineTransportError, parseEngineErrorText, requestRejected } from './es-errors.js';

export type BulkAttempt =
  /** The engine answered per item; `outcomes[i]` belongs to `actions[i]`. */
  | { kind: 'items'; outcomes: ItemOutcome[] }
  /** The request failed as a whole in a way that may pass later; `throttled` when smaller requests should follow (HTTP 429, 408, 504, a timeout). */
  | { kind: 'retry'; throttled: boolean; timedOut?: boolean; reason: string }
  /** HTTP 413: the body exceeds the engine's `http.max_content_length`. */
  | { kind: 'tooLarge'; reason: string };

/**
 * The head of a compact `_bulk` answer in which every item was applied: `took`, then `ingest_took` when a pipeline
 * ran, then `errors` (Elasticsearch 7 and OpenSearch), or `errors` first (the chunked writer of later Elasticsearch
 * versions). Parsing a response as large as the request only to find nothing wrong was the biggest cost left in the
 * change stream's profile; a head in another order is only parsed in full.
 */
const ALL_APPLIED = /^\{(?:"took":\d+,(?:"ingest_took":\d+,)?"errors":false[,}]|"errors":false,"took":\d+[,}])/;
const APPLIED: ItemOutcome = { kind: 'success', status: 200, stale: false };

/**
 * The parts of a `_bulk` answer the writer reads (`classifyItem`): without the filter every item also carries its
 * index, id, version, shards, sequence number and term, about 180 bytes per document that the engine writes, the
 * network carries and this process receives, only to be dropped. Every Elasticsearch and OpenSearch version applies
 * `filter_path`; each item keeps its `status`, so the items still match the actions one to one.
 */
export const BULK_FILTER_PATH = 'took,errors,items.*.status,items.*.error,items.*.result';

/** Our own request timeout, and undici's for the answer's headers and body (set to the same value). */
const TIMEOUT_CODES = new Set(['TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Statuses of a whole bulk request worth retrying: timeout, throttling, server and gateway errors. */
const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** Sends the actions as one `_bulk` request and interprets the answer. */
export async function sendBulk(client: EngineClient, actions: readonly EncodedAction[], options: ClassifyOptions = {}): Promise<BulkAttempt> {
  let res;
  try {
    res = await client.request('POST', '/_bulk', {
      body: encodeBody(actions),
      contentType: 'application/x-ndjson',
      acceptGzip: false,
      query: { filter_path: BULK_FILTER_PATH },
    });
  } catch (err) {
    // A request that timed out is sent again smaller: the engine goes on executing the abandoned one, and the same
    // size would time out again, each attempt adding one more copy to its load.
    if (err instanceof EngineTransportError && err.retryable) return { kind: 'retry', throttled: TIMEOUT_CODES.has(err.transportCode), timedOut: TIMEOUT_CODES.has(err.transportCode), reason: err.message };
    throw err;
  }
  if (res.status === 200) {
    if (ALL_APPLIED.test(res.head(80))) return { kind: 'items', outcomes: actions.map(() => APPLIED) };
    let items: unknown[] | undefined;
    try {
      items = bulkItems(res.json());
    } catch (error) {
      // Cut short or mangled on the way (a proxy): nothing is known applied, and versions make sending again safe.
      return { kind: 'retry', throttled: false, reason: `unreadable bulk response: ${(error as Error).message}` };
    }
    if (items === undefined || items.length !== actions.length) {
      return { kind: 'retry', throttled: false, reason: `bulk response does not match the request: ${actions.length} actions sent, ${items?.length ?? 'no'} items received` };
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
    const timedOut = res.status === 408 || res.status === 504;
    return { kind: 'retry', throttled: res.status === 429 || timedOut, timedOut, reason: `HTTP ${res.status} ${type}: ${reason}` };
  }
  throw requestRejected(`bulk request of ${actions.length} actions`, res.status, res.body);
}

/** What a bulk response means for the writer, item by item. */
export interface OutcomeTally {
  indexed: number;
  deleted: number;
  /** Of those, refused as older than the indexed document (409 on a versioned write). */
  stale: number;
  /** The highest version of a document that refused a write, as far as the engine's messages tell. */
  newestRefusing?: bigint;
  /** Items to send again (only these). */
  retry: EncodedAction[];
  /** Documents the engine refused for good. */
  letters: DeadLetter[];
  /** The first fatal item as an error to throw. */
  fatal?: AppError;
  /** Some item was refused with 429: the engine is overloaded. */
  throttled: boolean;
  /** The last retryable item error, for logs and the give-up message. */
  reason: string;
}

/**
 * How many server errors in a row one document may get, in answers the engine gave per item (so the engine is up),
 * before it is taken for the cause and dead-lettered: otherwise it would be retried, and the sync restarted, forever.
 * Counted from an answer in which the engine handled another document (see tallyOutcomes).
 */
export const SUSPECT_ATTEMPTS = 5;

/** `strikes` counts, per action across attempts, its server errors (see SUSPECT_ATTEMPTS). */
export function tallyOutcomes(items: readonly EncodedAction[], outcomes: readonly ItemOutcome[], strikes?: WeakMap<EncodedAction, number>): OutcomeTally {
  const tally: OutcomeTally = { indexed: 0, deleted: 0, stale: 0, retry: [], letters: [], throttled: false, reason: '' };
  // A document's first strike needs the engine to have handled another document of the same answer: when every item
  // of several fails alike the engine is in trouble (a failing shard), not the documents, and they are retried as
  // for an outage. A document sent alone cannot be told apart: it is struck, or a bad one would stall the sync.
  const othersHandled = outcomes.length === 1 || outcomes.some((o) => o.kind === 'success' || o.kind === 'document');
  outcomes.forEach((outcome, i) => {
    const item = items[i]!;
    let struck = 0;
    if (strikes !== undefined && outcome.kind === 'retry') {
      const previous = strikes.get(item) ?? 0;
      if (outcome.suspect !== true) strikes.delete(item);
      else if (othersHandled || previous > 0) strikes.set(item, (struck = previous + 1));
    }
    if (outcome.kind === 'success') {
      if (item.action.op === 'index') tally.indexed++;
      else tally.deleted++;
      if (outcome.stale) tally.stale++;
      if (outcome.current !== undefined && (tally.newestRefusing === undefined || outcome.current > tally.newestRefusing)) tally.newestRefusing = outcome.current;
    } else if (outcome.kind === 'retry' && struck >= SUSPECT_ATTEMPTS) {
      const reason = `${outcome.reason} (this document failed ${struck} times in a row while the engine answered for the others)`;
      tally.letters.push(letterOf(item.action, outcome.status, outcome.errorType, reason));
    } else if (outcome.kind === 'retry') {
      tally.retry.push(item);
      tally.throttled ||= outcome.status === 429;
      tally.reason = `${outcome.status} ${outcome.errorType}: ${outcome.reason}`;
    } else if (outcome.kind === 'document') {
      tally.letters.push(letterOf(item.action, outcome.status, outcome.errorType, outcome.reason));
    } else {
      tally.fatal ??= fatalError(item.action, outcome.status, outcome.errorType, outcome.reason);
    }
  });
  return tally;
}

/** A dead letter for an action, with its position and (for index actions) the source. */
export function letterOf(action: BulkAction, status: number, errorType: string, reason: string): DeadLetter {
  const letter: DeadLetter = { index: action.index, id: action.id, op: action.op, status, errorType, reason, at: new Date().toISOString() };
  if (action.position !== undefined) letter.position = action.position;
  if (action.op === 'index') letter.source = action.source;
  return letter;
}

function fatalError(action: BulkAction, status: number, errorType: string, reason: string): AppError {
  return new AppError(
    status === 401 || status === 403 ? 'SNK_CONNECT' : 'SNK_REQUEST',
    `writing document "${action.id}" to index "${action.index}" failed in a way that stops the sync (HTTP ${status}): ${errorType}: ${reason}`,
    { details: { index: action.index, id: action.id, status, errorType } },
  );
}
