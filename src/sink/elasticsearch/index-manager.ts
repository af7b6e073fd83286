/**
 * Index administration: create when missing, delete, refresh, count. Alias handling belongs to the
 * index lifecycle (design §7) and is not here.
 */
import { AppError } from '../../errors/app-error.js';
import type { IndexDefinition } from '../document-sink.js';
import type { EngineClient } from './engine-client.js';
import { asRecord, parseEngineErrorText, requestRejected } from './es-errors.js';

/** Path segment for an index name. */
export function indexPath(name: string): string {
  return `/${encodeURIComponent(name)}`;
}

/**
 * Creates the index with `{settings: {index: settings}, mappings}` unless it exists.
 * Returns true when this call created it. A concurrent creator (`resource_already_exists_exception`) counts as
 * existing. Other refusals throw `AppError('SNK_REQUEST')` quoting the engine's error type and reason.
 */
export async function ensureIndex(client: EngineClient, def: IndexDefinition): Promise<boolean> {
  if (def.pipeline !== undefined) await requirePipeline(client, def.pipeline);
  const head = await client.request('HEAD', indexPath(def.name));
  if (head.status === 200) return false;
  if (head.status !== 404) throw requestRejected(`checking whether index "${def.name}" exists`, head.status, head.body);

  const body: Record<string, unknown> = {};
  if (def.settings !== undefined && Object.keys(def.settings).length > 0) body['settings'] = { index: def.settings };
  if (def.mappings !== undefined && Object.keys(def.mappings).length > 0) body['mappings'] = def.mappings;
  const res = await client.request('PUT', indexPath(def.name), { body: JSON.stringify(body) });
  if (res.status >= 200 && res.status < 300) return true;
  const { type } = parseEngineErrorText(res.body, res.status);
  if (type === 'resource_already_exists_exception') return false;
  throw requestRejected(`creating index "${def.name}"`, res.status, res.body);
}

/**
 * Fails with `SNK_REQUEST` when the ingest pipeline does not exist: every document would be refused alike. A role
 * without the privilege to read pipelines (401/403 here) is not required to have it: writes then tell.
 */
async function requirePipeline(client: EngineClient, id: string): Promise<void> {
  const res = await client.request('GET', `/_ingest/pipeline/${encodeURIComponent(id)}`);
  if ((res.status >= 200 && res.status < 300) || res.status === 401 || res.status === 403) return;
  if (res.status === 404) {
    throw new AppError('SNK_REQUEST', `ingest pipeline "${id}" (the schema entry's "pipeline") does not exist in the search engine: create it (PUT _ingest/pipeline/${id}), then start again`, {
      details: { status: 404, pipeline: id },
    });
  }
  throw requestRejected(`checking ingest pipeline "${id}"`, res.status, res.body);
}

/** Deletes an index. Returns false when it did not exist. */
export async function deleteIndex(client: EngineClient, name: string): Promise<boolean> {
  const res = await client.request('DELETE', indexPath(name));
  if (res.status >= 200 && res.status < 300) return true;
  if (res.status === 404 && parseEngineErrorText(res.body, 404).type === 'index_not_found_exception') return false;
  throw requestRejected(`deleting index "${name}"`, res.status, res.body);
}

/** Makes recent writes visible to search and count (tests, verification; never the sync path). */
export async function refresh(client: EngineClient, index: string): Promise<void> {
  const res = await client.request('POST', `${indexPath(index)}/_refresh`);
  if (res.status < 200 || res.status >= 300) throw requestRejected(`refreshing index "${index}"`, res.status, res.body);
}

/** Number of documents in an index (as of the last refresh). */
export async function countDocuments(client: EngineClient, index: string): Promise<number> {
  const res = await client.request('GET', `${indexPath(index)}/_count`);
  if (res.status < 200 || res.status >= 300) throw requestRejected(`counting documents of index "${index}"`, res.status, res.body);
  const count = asRecord(res.json())?.['count'];
  if (typeof count !== 'number') {
    throw new AppError('SNK_REQUEST', `counting documents of index "${index}": the response has no numeric "count"`);
  }
  return count;
}
