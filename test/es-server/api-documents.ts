import { boolParam, isObject, type Reply, type Req } from './context.js';
import { EsError, indexNotFoundCause, illegalArgument, routingMissingCause, validationFailed } from './errors.js';
import { validateWriteOp } from './bulk.js';
import { parseSourceFilter, sourceJson, type SourceFilter } from './hits.js';
import { toJson } from './json.js';
import type { Doc } from './store.js';
import { executeWrite, outcomeBody, type WriteOp } from './writes.js';

function opFromQuery(req: Req, op: WriteOp['op']): WriteOp {
  const q = req.query;
  const versionType = q.get('version_type') ?? undefined;
  if (versionType !== undefined && !['internal', 'external', 'external_gte'].includes(versionType)) {
    throw illegalArgument(`No version type match [${versionType}]`);
  }
  const version = q.get('version');
  const ifSeqNo = q.get('if_seq_no');
  const ifTerm = q.get('if_primary_term');
  const opType = q.get('op_type');
  if (opType !== null && opType !== 'index' && opType !== 'create') throw illegalArgument(`opType must be 'create' or 'index', found: [${opType}]`);
  return {
    op: op === 'index' && opType === 'create' ? 'create' : op,
    index: req.params.index as string,
    id: req.params.id,
    routing: q.get('routing') ?? undefined,
    pipeline: q.get('pipeline') ?? undefined,
    version: version === null ? undefined : BigInt(version),
    versionType,
    ifSeqNo: ifSeqNo === null ? undefined : Number(ifSeqNo),
    ifPrimaryTerm: ifTerm === null ? undefined : Number(ifTerm),
  };
}

function writeReply(req: Req, op: WriteOp): Reply {
  const problems: string[] = [];
  validateWriteOp(op, problems);
  if (problems.length) throw validationFailed(problems);
  const out = executeWrite(req.engine, op);
  if (!out.ok) throw EsError.of(out.status, out.error);
  const refresh = req.query.get('refresh');
  const forced = refresh === '' || refresh === 'true';
  if (forced || refresh === 'wait_for') out.index.refresh();
  const { status: _s, ...body } = outcomeBody(req.engine, out, forced);
  return { status: out.status, body };
}

export function indexDoc(req: Req): Reply {
  const op = opFromQuery(req, req.path.includes('/_create/') ? 'create' : 'index');
  if (op.id === undefined) op.op = 'create';
  const text = req.text();
  if (!text.trim()) throw validationFailed(['source is missing']);
  op.body = { buf: req.body, start: 0, end: req.body.length };
  try {
    op.source = JSON.parse(text);
  } catch (err) {
    op.parseError = err;
  }
  return writeReply(req, op);
}

export function updateDoc(req: Req): Reply {
  const op = opFromQuery(req, 'update');
  const body = req.json();
  if (!isObject(body)) throw validationFailed(['script or doc is missing']);
  if (body.script !== undefined) throw illegalArgument('scripted updates are not supported by the test engine');
  if (body.doc === undefined && body.upsert === undefined) throw validationFailed(['script or doc is missing']);
  op.update = { doc: body.doc, docAsUpsert: body.doc_as_upsert === true, upsert: body.upsert, detectNoop: body.detect_noop !== false };
  return writeReply(req, op);
}

export function deleteDoc(req: Req): Reply {
  return writeReply(req, opFromQuery(req, 'delete'));
}

/**
 * A get is routed like a write: it reads the shard the routing (default: the id) picks, so a copy of the id
 * stored under another routing is not seen. Without routing on an index that requires it: routing_missing_exception.
 */
function findDoc(req: Req, indexName: string, id: string, realtime: boolean, routing: string | undefined): { index: string; doc: Doc | undefined } {
  const index = req.engine.store.resolveSingle(indexName);
  const { flavor } = req.engine;
  if (routing === undefined && index.routingRequired) throw EsError.of(400, routingMissingCause(flavor.major, flavor.isOpenSearch, index.name, id));
  const shard = index.shardFor(id, routing);
  const doc = realtime ? shard.docs.get(id) : shard.searchable.find((d) => d.id === id);
  return { index: index.name, doc };
}

const routingParam = (req: Req): string | undefined => req.query.get('routing') || undefined;

function renderGet(req: Req, index: string, id: string, doc: Doc | undefined, filter: SourceFilter): string {
  const head: Record<string, unknown> = { _index: index };
  if (req.engine.flavor.docType) head._type = '_doc';
  head._id = id;
  if (!doc) return toJson({ ...head, found: false });
  head._version = doc.version;
  head._seq_no = doc.seqNo;
  head._primary_term = 1;
  if (doc.routing !== undefined) head._routing = doc.routing;
  head.found = true;
  const text = toJson(head);
  const source = sourceJson(doc, filter);
  return source === undefined ? text : `${text.slice(0, -1)},"_source":${source}}`;
}

export function getDoc(req: Req): Reply {
  const id = req.params.id as string;
  const { index, doc } = findDoc(req, req.params.index as string, id, boolParam(req.query, 'realtime', true), routingParam(req));
  if (req.method === 'HEAD') return { status: doc ? 200 : 404 };
  return { status: doc ? 200 : 404, raw: renderGet(req, index, id, doc, parseSourceFilter(undefined, req.query)) };
}

export function getSource(req: Req): Reply {
  const id = req.params.id as string;
  const { index, doc } = findDoc(req, req.params.index as string, id, boolParam(req.query, 'realtime', true), routingParam(req));
  if (!doc) {
    if (req.method === 'HEAD') return { status: 404 };
    throw EsError.of(404, { type: 'resource_not_found_exception', reason: `Document not found [${index}]/[${id}]` });
  }
  if (req.method === 'HEAD') return { status: 200 };
  return { status: 200, raw: sourceJson(doc, parseSourceFilter(undefined, req.query)) ?? '{}' };
}

export function mget(req: Req): Reply {
  const body = req.json();
  const defaultIndex = req.params.index;
  const specs: Record<string, unknown>[] = [];
  if (isObject(body) && Array.isArray(body.docs)) specs.push(...body.docs.map((d) => (isObject(d) ? d : {})));
  else if (isObject(body) && Array.isArray(body.ids)) specs.push(...body.ids.map((id) => ({ _id: id })));
  else if (!isObject(body) || (body.docs === undefined && body.ids === undefined)) {
    throw illegalArgument('Unknown parameter [' + (isObject(body) ? Object.keys(body)[0] : 'null') + '] in request body or parameter is of the wrong type[START_OBJECT] ');
  }
  if (!specs.length) throw validationFailed(['no documents to get']);
  const problems: string[] = [];
  specs.forEach((s, i) => {
    if (s._index === undefined && !defaultIndex) problems.push(`index is missing for doc ${i}`);
    if (s._id === undefined) problems.push(`id is missing for doc ${i}`);
  });
  if (problems.length) throw validationFailed(problems);
  const docs = specs.map((spec) => {
    const indexName = String(spec._index ?? defaultIndex);
    const id = String(spec._id);
    try {
      const routing = spec.routing ?? spec._routing;
      const { index, doc } = findDoc(req, indexName, id, boolParam(req.query, 'realtime', true), routing === undefined || routing === null ? routingParam(req) : String(routing));
      return renderGet(req, index, id, doc, parseSourceFilter(spec._source, req.query));
    } catch (err) {
      if (!(err instanceof EsError)) throw err;
      const error = err.status === 404 ? { root_cause: [indexNotFoundCause(indexName)], ...indexNotFoundCause(indexName) } : (err.body as { error: unknown }).error;
      return toJson({ _index: indexName, ...(req.engine.flavor.docType ? { _type: '_doc' } : {}), _id: id, error });
    }
  });
  return { status: 200, raw: `{"docs":[${docs.join(',')}]}` };
}
