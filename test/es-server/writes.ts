import { cause, EsError, routingMissingCause, type Cause } from './errors.js';
import { randomId } from './flavors.js';
import { toJson } from './json.js';
import type { EngineState } from './context.js';
import { countFields, mergeMapping } from './mapping-defs.js';
import { DocError, parseDocument } from './mapping-docs.js';
import { bytesOf, parseSource, type Doc, type IndexState, type ShardState, type SourceBytes } from './store.js';
import { parseTimeMs } from './settings.js';

export interface WriteOp {
  op: 'index' | 'create' | 'update' | 'delete';
  index: string;
  id?: string;
  routing?: string;
  pipeline?: string;
  version?: bigint;
  versionType?: string;
  ifSeqNo?: number;
  ifPrimaryTerm?: number;
  /** index/create: the document bytes as sent, and their parse (or the parse failure). */
  body?: SourceBytes;
  source?: unknown;
  parseError?: unknown;
  update?: { doc?: unknown; docAsUpsert?: boolean; upsert?: unknown; detectNoop?: boolean };
}

export type WriteOutcome =
  | { ok: true; index: IndexState; id: string; version: bigint; result: 'created' | 'updated' | 'deleted' | 'not_found' | 'noop'; seqNo: number; status: number }
  | { ok: false; indexName: string; id: string | undefined; status: number; error: Cause };

/** The inner cause of an ES error envelope, as bulk items carry it (no root_cause). */
export function itemCause(err: EsError): Cause {
  const { root_cause: _r, ...rest } = (err.body as { error: Cause & { root_cause?: unknown } }).error;
  return rest as Cause;
}

const failure = (indexName: string, id: string | undefined, status: number, error: Cause): WriteOutcome => ({ ok: false, indexName, id, status, error });

function conflict(index: IndexState, shard: ShardState, id: string, reason: string): WriteOutcome {
  return failure(index.name, id, 409, cause('version_conflict_engine_exception', `[${id}]: version conflict, ${reason}`, { index_uuid: index.uuid, shard: String(shard.number), index: index.name }));
}

const isExternal = (op: WriteOp): boolean => op.versionType === 'external' || op.versionType === 'external_gte';

/**
 * Optimistic concurrency and external versioning checks shared by every write; returns a conflict or the new
 * version. Like ES, against the copy on the shard the write goes to only: a copy under another routing is
 * another document.
 */
/** The version of the delete of `id`, while `index.gc_deletes` keeps it; expired ones are forgotten. */
function liveTombstone(index: IndexState, shard: ShardState, id: string): bigint | undefined {
  const tomb = shard.tombstones.get(id);
  if (tomb === undefined) return undefined;
  const setting = index.settings.get('index.gc_deletes');
  const keepMs = (typeof setting === 'string' ? parseTimeMs(setting) : undefined) ?? 60_000;
  if (Date.now() - tomb.at < keepMs) return tomb.version;
  shard.tombstones.delete(id);
  return undefined;
}

function nextVersion(op: WriteOp, index: IndexState, shard: ShardState, id: string, existing: Doc | undefined): WriteOutcome | bigint {
  // Most shards never saw a delete: skip the second lookup (every write of a backlog passes here).
  const tomb = existing === undefined && shard.tombstones.size > 0 ? liveTombstone(index, shard, id) : undefined;
  if (op.ifSeqNo !== undefined) {
    const term = op.ifPrimaryTerm ?? 1;
    if (!existing) return conflict(index, shard, id, `required seqNo [${op.ifSeqNo}], primary term [${term}]. but no document was found`);
    if (existing.seqNo !== op.ifSeqNo || term !== 1) {
      return conflict(index, shard, id, `required seqNo [${op.ifSeqNo}], primary term [${term}]. current document has seqNo [${existing.seqNo}] and primary term [1]`);
    }
  }
  if (isExternal(op) && op.version !== undefined) {
    const current = existing?.version ?? tomb;
    if (current !== undefined) {
      const gte = op.versionType === 'external_gte';
      if (gte ? op.version < current : op.version <= current) {
        return conflict(index, shard, id, `current version [${current}] is higher ${gte ? 'than' : 'or equal to'} the one provided [${op.version}]`);
      }
    }
    return op.version;
  }
  return (existing?.version ?? tomb ?? 0n) + 1n;
}

function docFailureOutcome(index: IndexState, id: string, err: unknown): WriteOutcome {
  if (err instanceof DocError) return failure(index.name, id, 400, err.detail);
  if (err instanceof EsError) return failure(index.name, id, err.status, itemCause(err));
  throw err;
}

/** `existed`: the shard holds a copy of `id` (the caller looked it up already). */
function store(engine: EngineState, index: IndexState, shard: ShardState, op: WriteOp, id: string, existed: boolean, body: SourceBytes, source: unknown, version: bigint): WriteOutcome {
  let additions;
  try {
    additions = parseDocument(
      { flavor: engine.flavor, mapping: index.mapping, id, body, ignoreMalformed: index.settings.get('index.mapping.ignore_malformed') === 'true' },
      source,
    );
    if (additions) {
      const merged = mergeMapping(index.mapping, additions);
      const limit = Number(index.settings.get('index.mapping.total_fields.limit') ?? 1000);
      const before = countFields(index.mapping.properties);
      const after = countFields(merged.properties);
      if (after > limit) {
        return failure(index.name, id, 400, cause('illegal_argument_exception', `Limit of total fields [${limit}] has been exceeded while adding new fields [${after - before}]`));
      }
      index.mapping = merged;
    }
  } catch (err) {
    return docFailureOutcome(index, id, err);
  }
  const seqNo = shard.takeSeqNo();
  const { buf, start, end } = body;
  shard.docs.set(id, op.routing === undefined ? { id, buf, start, end, version, seqNo } : { id, buf, start, end, version, seqNo, routing: op.routing });
  if (shard.tombstones.size > 0) shard.tombstones.delete(id);
  if (existed) index.deletedDocs++;
  index.markDirty(shard);
  return { ok: true, index, id, version, result: existed ? 'updated' : 'created', seqNo, status: existed ? 200 : 201 };
}

function deepMerge(base: unknown, patch: unknown): unknown {
  if (typeof base !== 'object' || base === null || Array.isArray(base) || typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
    return patch;
  }
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(out[k], v);
  return out;
}

const isSet = (value: unknown): boolean => value === true || value === 'true';

/**
 * The index block refusing this write, as IndexMetadata defines them: read_only (5) and write (8), set by an operator,
 * refuse every write with 403; read_only_allow_delete (12), which the flood-stage disk watermark sets, refuses all
 * but deletes with 429 (since 7.x).
 */
function writeBlock(index: IndexState, op: WriteOp['op']): { status: number; text: string } | undefined {
  if (isSet(index.settings.get('index.blocks.read_only'))) return { status: 403, text: 'FORBIDDEN/5/index read-only (api)' };
  if (isSet(index.settings.get('index.blocks.write'))) return { status: 403, text: 'FORBIDDEN/8/index write (api)' };
  if (op !== 'delete' && isSet(index.settings.get('index.blocks.read_only_allow_delete'))) {
    return { status: 429, text: 'TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block' };
  }
  return undefined;
}

/** Index, create, update or delete one document, like a primary shard does. */
export function executeWrite(engine: EngineState, given: WriteOp): WriteOutcome {
  // The engines' request classes take an empty routing for none: the id then picks the shard.
  const op = given.routing === '' ? { ...given, routing: undefined } : given;
  let index: IndexState;
  try {
    index = engine.store.resolveWrite(op.index, op.op !== 'delete' || isExternal(op));
  } catch (err) {
    if (err instanceof EsError) return failure(op.index, op.id, err.status, itemCause(err));
    throw err;
  }
  const id = op.id ?? randomId(15);
  const block = writeBlock(index, op.op);
  if (block !== undefined) return failure(index.name, id, block.status, cause('cluster_block_exception', `index [${index.name}] blocked by: [${block.text}];`));
  if (index.routingRequired && op.routing === undefined) {
    return failure(index.name, id, 400, routingMissingCause(engine.flavor.major, engine.flavor.isOpenSearch, index.name, id));
  }
  const shard = index.shardFor(id, op.routing);
  const pipeline = op.pipeline ?? (index.settings.get('index.default_pipeline') as string | undefined);
  if (op.op !== 'delete' && pipeline !== undefined && pipeline !== '_none' && !engine.store.pipelines.has(pipeline)) {
    return failure(index.name, id, 400, cause('illegal_argument_exception', `pipeline with id [${pipeline}] does not exist`));
  }

  if (op.op === 'delete') {
    const version = nextVersion(op, index, shard, id, shard.docs.get(id));
    if (typeof version !== 'bigint') return version;
    const existed = shard.docs.delete(id);
    shard.tombstones.set(id, { version, at: Date.now() });
    if (existed) {
      index.markDirty(shard);
      index.deletedDocs++;
    }
    return { ok: true, index, id, version, result: existed ? 'deleted' : 'not_found', seqNo: shard.takeSeqNo(), status: existed ? 200 : 404 };
  }

  if (op.op === 'update') {
    const existing = shard.docs.get(id);
    const upd = op.update ?? {};
    if (!existing) {
      const upsert = upd.docAsUpsert ? upd.doc : upd.upsert;
      if (upsert === undefined) {
        return failure(index.name, id, 404, cause('document_missing_exception', `[${id}]: document missing`, { index_uuid: index.uuid, shard: String(shard.number), index: index.name }));
      }
      const version = nextVersion(op, index, shard, id, existing);
      if (typeof version !== 'bigint') return version;
      return store(engine, index, shard, op, id, false, bytesOf(JSON.stringify(upsert)), upsert, version);
    }
    const current = parseSource(existing);
    const merged = deepMerge(current, upd.doc ?? {});
    if (upd.detectNoop !== false && JSON.stringify(merged) === JSON.stringify(current)) {
      if (op.ifSeqNo !== undefined) {
        const check = nextVersion(op, index, shard, id, existing);
        if (typeof check !== 'bigint') return check;
      }
      return { ok: true, index, id, version: existing.version, result: 'noop', seqNo: existing.seqNo, status: 200 };
    }
    const version = nextVersion({ ...op, versionType: 'internal' }, index, shard, id, existing);
    if (typeof version !== 'bigint') return version;
    return store(engine, index, shard, { ...op, routing: op.routing ?? existing.routing }, id, true, bytesOf(JSON.stringify(merged)), merged, version);
  }

  if (op.parseError !== undefined) {
    const detail = op.parseError instanceof Error ? op.parseError.message : String(op.parseError);
    const reason = `${engine.flavor.locationPrefix ? '[1:1] ' : ''}failed to parse`;
    const inner = cause(engine.flavor.major >= 8 ? 'x_content_parse_exception' : 'json_parse_exception', detail);
    return failure(index.name, id, 400, cause(engine.flavor.docParsingType, reason, undefined, inner));
  }
  // One lookup of the id serves the create check, the version check and the result.
  const existing = shard.docs.get(id);
  if (op.op === 'create' && existing !== undefined) {
    return conflict(index, shard, id, `document already exists (current version [${existing.version}])`);
  }
  const version = nextVersion(op, index, shard, id, existing);
  if (typeof version !== 'bigint') return version;
  return store(engine, index, shard, op, id, existing !== undefined, op.body ?? bytesOf(JSON.stringify(op.source)), op.source, version);
}

/** The per-item response body ES returns for a write (bulk item or single-document API). */
export function outcomeBody(engine: EngineState, out: WriteOutcome, forcedRefresh = false): Record<string, unknown> {
  if (!out.ok) {
    const body: Record<string, unknown> = { _index: out.indexName };
    if (engine.flavor.docType) body._type = '_doc';
    body._id = out.id ?? null;
    body.status = out.status;
    body.error = out.error;
    return body;
  }
  const body: Record<string, unknown> = { _index: out.index.name };
  if (engine.flavor.docType) body._type = '_doc';
  body._id = out.id;
  body._version = out.version <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(out.version) : out.version;
  body.result = out.result;
  if (forcedRefresh && out.result !== 'noop') body.forced_refresh = true;
  body._shards = out.result === 'noop' ? { total: 0, successful: 0, failed: 0 } : out.index.writeShards();
  body._seq_no = out.seqNo;
  body._primary_term = 1;
  body.status = out.status;
  return body;
}

/** JSON.stringify(id), without its cost for the usual ids: those with no character JSON escapes. */
function idJson(id: string): string {
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || (c >= 0xd800 && c <= 0xdfff)) return JSON.stringify(id);
  }
  return `"${id}"`;
}

/**
 * The `items` of a _bulk answer as JSON text. Successful items are written directly, from pieces that repeat
 * across a bulk made once, into one string: a bulk answers thousands of them. With `fields` (a `filter_path` of
 * `items.*.<field>` patterns) each item keeps only those fields, and an item left with none is left out, as the
 * generic filter would do to the whole answer afterwards, at a fraction of its cost.
 */
export class ItemsJson {
  private json = '';
  private count = 0;
  private readonly type: string;
  /** The index and action of the last successful item, and the text that depends only on them. */
  private index: IndexState | undefined;
  private action = '';
  private head = '';
  /** By result: `"result":…,"_shards":…,"_seq_no":` for the last index. */
  private middles = new Map<string, string>();

  constructor(
    private readonly engine: EngineState,
    private readonly forcedRefresh: boolean,
    private readonly fields?: ReadonlySet<string>,
  ) {
    this.type = engine.flavor.docType ? '"_type":"_doc",' : '';
  }

  add(action: string, out: WriteOutcome): void {
    if (this.fields !== undefined) {
      this.addFiltered(action, out, this.fields);
      return;
    }
    if (this.count++ > 0) this.json += ',';
    if (!out.ok) {
      this.json += `{"${action}":${toJson(outcomeBody(this.engine, out, this.forcedRefresh))}}`;
      return;
    }
    if (out.index !== this.index) {
      this.index = out.index;
      this.action = '';
      this.middles.clear();
    }
    if (action !== this.action) {
      this.action = action;
      this.head = `{"${action}":{"_index":${JSON.stringify(out.index.name)},${this.type}"_id":`;
    }
    let middle = this.middles.get(out.result);
    if (middle === undefined) {
      const noop = out.result === 'noop';
      const forced = this.forcedRefresh && !noop ? '"forced_refresh":true,' : '';
      const shards = noop ? '{"total":0,"successful":0,"failed":0}' : `{"total":${out.index.replicas + 1},"successful":1,"failed":0}`;
      middle = `,"result":"${out.result}",${forced}"_shards":${shards},"_seq_no":`;
      this.middles.set(out.result, middle);
    }
    this.json += this.head + idJson(out.id) + ',"_version":' + out.version + middle + out.seqNo + ',"_primary_term":1,"status":' + out.status + '}}';
  }

  private addFiltered(action: string, out: WriteOutcome, fields: ReadonlySet<string>): void {
    let inner = '';
    if (out.ok && fields.has('status') && fields.has('result') && fields.size === (fields.has('error') ? 3 : 2)) {
      // The filter clients use to read outcomes only: no object built per item.
      inner = `"result":"${out.result}","status":${out.status}`;
    } else {
      const body = outcomeBody(this.engine, out, this.forcedRefresh);
      for (const key in body) {
        if (!fields.has(key)) continue;
        inner += `${inner === '' ? '' : ','}${JSON.stringify(key)}:${toJson(body[key])}`;
      }
    }
    if (inner === '') return;
    if (this.count++ > 0) this.json += ',';
    this.json += `{"${action}":{${inner}}}`;
  }

  /** How many items the text holds. */
  size(): number {
    return this.count;
  }

  /** The items, comma-separated. */
  text(): string {
    return this.json;
  }
}
