import { boolParam, isObject, type Reply, type Req } from './context.js';
import { cause, fail, illegalArgument, jsonErrorReason, validationFailed } from './errors.js';
import { selectsItem, type BulkItemsFault } from './faults.js';
import { executeWrite, ItemsJson, type WriteOp, type WriteOutcome } from './writes.js';

const ACTIONS = new Set(['index', 'create', 'update', 'delete']);
const META_KEYS = new Set([
  '_index', '_id', 'routing', 'version', 'version_type', 'if_seq_no', 'if_primary_term', 'retry_on_conflict',
  'pipeline', '_source', 'require_alias', 'require_data_stream', 'dynamic_templates', 'list_executed_pipelines',
]);
const VERSION_TYPES = new Set(['internal', 'external', 'external_gte']);

function tokenName(v: unknown): string {
  if (v === null) return 'VALUE_NULL';
  if (Array.isArray(v)) return 'START_ARRAY';
  if (typeof v === 'string') return 'VALUE_STRING';
  if (typeof v === 'number') return 'VALUE_NUMBER';
  if (typeof v === 'boolean') return 'VALUE_BOOLEAN';
  return 'START_OBJECT';
}

/**
 * The action line every client sends most: `{"index"|"delete"|"create":{"_index":…,"_id":…[,"routing":…]
 * [,"version":N,"version_type":…]}}` with plain strings (no escapes or control characters). Read without JSON.parse,
 * to the same object JSON.parse would give; anything else takes the general path.
 */
const PLAIN_ACTION =
  /^\{"(index|delete|create)":\{"_index":"([^"\\\x00-\x1f]*)","_id":"([^"\\\x00-\x1f]*)"(?:,"routing":"([^"\\\x00-\x1f]*)")?(?:,"version":(\d{1,15}),"version_type":"(external_gte|external|internal)")?\}\}$/;

const malformed = (line: number, detail: string) => illegalArgument(`Malformed action/metadata line [${line}], ${detail}`);

interface Parsed {
  /** The action of each op is `op.op`. */
  ops: WriteOp[];
  requireAlias: boolean[];
  problems: string[];
  /** The whole body as text when it is ASCII (character offsets are byte offsets), else undefined. */
  ascii: string | undefined;
}

/** Versions are read from the raw text: external versions (LSNs) may exceed 2^53. */
function readVersion(actionLine: string, value: unknown): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'number') {
    const m = /"version"\s*:\s*"?(-?\d+)/.exec(actionLine);
    if (m) return BigInt(m[1] as string);
  }
  try {
    return BigInt(String(value));
  } catch {
    throw illegalArgument(`For input string: "${String(value)}"`);
  }
}

interface Defaults {
  index: string | undefined;
  routing: string | undefined;
  pipeline: string | undefined;
  requireAlias: boolean;
}

/** An action line in any JSON form, checked like ES's BulkRequestParser. */
function generalAction(actionLine: string, lineNo: number, flavor: Req['engine']['flavor'], defaults: Defaults): { op: WriteOp; requireAlias: boolean } {
  let action: unknown;
  try {
    action = JSON.parse(actionLine);
  } catch (err) {
    const reason = jsonErrorReason(actionLine, err);
    throw fail(400, 'x_content_parse_exception', reason, undefined, cause('json_parse_exception', reason.replace(/^\[\d+:\d+\] /, '')));
  }
  if (!isObject(action)) throw malformed(lineNo, `expected START_OBJECT but found [${tokenName(action)}]`);
  const keys = Object.keys(action);
  if (keys.length === 0) throw malformed(lineNo, 'expected FIELD_NAME but found [END_OBJECT]');
  const name = keys[0] as string;
  if (!ACTIONS.has(name)) throw malformed(lineNo, `expected field [create], [delete], [index] or [update] but found [${name}]`);
  const meta = action[name];
  if (!isObject(meta)) throw malformed(lineNo, `expected START_OBJECT but found [${tokenName(meta)}]`);
  if (keys.length > 1) throw malformed(lineNo, 'expected END_OBJECT but found [FIELD_NAME]');
  for (const k in meta) {
    const v = meta[k];
    const known = META_KEYS.has(k) || (flavor.major === 7 && (k === '_type' || k === '_routing'));
    if (!known) throw illegalArgument(`Action/metadata line [${lineNo}] contains an unknown parameter [${k}]`);
    if ((isObject(v) || Array.isArray(v)) && k !== '_source' && k !== 'dynamic_templates') {
      throw malformed(lineNo, `expected a simple value for field [${k}] but found [${tokenName(v)}]`);
    }
  }
  const versionType = meta.version_type === undefined ? undefined : String(meta.version_type);
  if (versionType !== undefined && !VERSION_TYPES.has(versionType)) throw illegalArgument(`No version type match [${versionType}]`);
  const op: WriteOp = {
    op: name as WriteOp['op'],
    index: meta._index === undefined ? (defaults.index as string) : String(meta._index),
    id: undefined,
    routing: meta.routing !== undefined ? String(meta.routing) : meta._routing !== undefined ? String(meta._routing) : defaults.routing,
    pipeline: meta.pipeline !== undefined ? String(meta.pipeline) : defaults.pipeline,
    version: readVersion(actionLine, meta.version),
    versionType,
    ifSeqNo: meta.if_seq_no === undefined ? undefined : Number(meta.if_seq_no),
    ifPrimaryTerm: meta.if_primary_term === undefined ? undefined : Number(meta.if_primary_term),
  };
  if (meta._id !== undefined && meta._id !== null) op.id = String(meta._id);
  return { op, requireAlias: meta.require_alias === true || defaults.requireAlias };
}

function parseBulk(req: Req): Parsed {
  const flavor = req.engine.flavor;
  const buf = req.body;
  const defaults: Defaults = {
    index: req.params.index,
    routing: req.query.get('routing') ?? undefined,
    pipeline: req.query.get('pipeline') ?? undefined,
    requireAlias: boolParam(req.query, 'require_alias'),
  };
  // Lines are cut on the buffer (0x0A never occurs inside a UTF-8 sequence) so documents keep their byte ranges.
  // An ASCII body (the usual case) is decoded once: its character offsets are its byte offsets.
  const whole = req.text();
  const ascii = whole.length === buf.length;
  const parsed: Parsed = { ops: [], requireAlias: [], problems: [], ascii: ascii ? whole : undefined };
  // Every action of a bulk usually names the same index: reusing one string keeps its hash for the lookups.
  let lastIndex = '';
  let pos = 0;
  let line = 0;
  // The current line: [start, end) without its `\r\n` or `\n`.
  let start = 0;
  let end = 0;
  const nextLine = (): boolean => {
    if (pos >= buf.length) return false;
    const nl = ascii ? whole.indexOf('\n', pos) : buf.indexOf(10, pos);
    const stop = nl < 0 ? buf.length : nl;
    end = stop > pos && buf[stop - 1] === 13 ? stop - 1 : stop;
    start = pos;
    pos = stop + 1;
    line++;
    return true;
  };
  const lineText = (): string => (ascii ? whole.slice(start, end) : buf.toString('utf8', start, end));
  while (nextLine()) {
    const actionLine = lineText();
    const lineNo = line;
    if (actionLine.trim() === '') throw malformed(lineNo, 'expected START_OBJECT but found [null]');
    let op: WriteOp;
    let requireAlias: boolean;
    const plain = PLAIN_ACTION.exec(actionLine);
    if (plain !== null) {
      // What generalAction makes of this line, without JSON.parse and the checks the pattern already made.
      const index = plain[2] as string;
      if (index !== lastIndex) lastIndex = index;
      const version = plain[5];
      op = {
        op: plain[1] as WriteOp['op'],
        index: lastIndex,
        id: plain[3],
        routing: plain[4] ?? defaults.routing,
        pipeline: defaults.pipeline,
        version: version === undefined ? undefined : BigInt(Number(version)),
        versionType: plain[6],
        ifSeqNo: undefined,
        ifPrimaryTerm: undefined,
      };
      requireAlias = defaults.requireAlias;
    } else {
      ({ op, requireAlias } = generalAction(actionLine, lineNo, flavor, defaults));
    }
    validateWriteOp(op, parsed.problems);
    if (op.op !== 'delete') {
      if (!nextLine()) break;
      if (op.op === 'update') {
        const docLine = lineText();
        let body: unknown;
        try {
          body = JSON.parse(docLine);
        } catch (err) {
          throw fail(400, 'x_content_parse_exception', jsonErrorReason(docLine, err));
        }
        if (!isObject(body)) throw fail(400, 'parsing_exception', 'Failed to derive xcontent');
        if (body.script !== undefined) throw illegalArgument('scripted updates are not supported by the test engine');
        op.update = { doc: body.doc, docAsUpsert: body.doc_as_upsert === true, upsert: body.upsert, detectNoop: body.detect_noop !== false };
        if (body.doc === undefined && body.upsert === undefined) parsed.problems.push('script or doc is missing');
      } else {
        // Parsed when the op runs (parseDocLine): a parse failure is the item's error, never the request's.
        op.body = { buf, start, end };
      }
    }
    parsed.ops.push(op);
    parsed.requireAlias.push(requireAlias);
  }
  return parsed;
}

/** An index/create op's document, parsed just before it is written so the parse is garbage right after. */
function parseDocLine(op: WriteOp, ascii: string | undefined): void {
  const body = op.body;
  if (body === undefined || op.source !== undefined || op.parseError !== undefined) return;
  try {
    op.source = JSON.parse(ascii !== undefined ? ascii.slice(body.start, body.end) : body.buf.toString('utf8', body.start, body.end));
  } catch (err) {
    op.parseError = err;
  }
}

export function validateWriteOp(op: WriteOp, problems: string[]): void {
  if (!op.index) problems.push('index is missing');
  if ((op.op === 'delete' || op.op === 'update') && op.id === undefined) problems.push('id is missing');
  if (op.id !== undefined) {
    const bytes = Buffer.byteLength(op.id);
    if (bytes > 512) problems.push(`id [${op.id}] is too long, must be no longer than 512 bytes but was: ${bytes}`);
    if (op.id === '') problems.push('if _id is specified it must not be empty');
  }
  const external = op.versionType === 'external' || op.versionType === 'external_gte';
  if (op.version !== undefined && !external && op.op !== 'update') {
    problems.push('internal versioning can not be used for optimistic concurrency control. Please use `if_seq_no` and `if_primary_term` instead');
  }
  if (external && op.version === undefined) problems.push(`illegal version value [-3] for version type [${op.versionType?.toUpperCase()}]`);
  if (external && op.version !== undefined && op.version < 0n) problems.push(`illegal version value [${op.version}] for version type [${op.versionType?.toUpperCase()}]`);
  if (op.op === 'create' && external) problems.push('create operations only support internal versioning. use index instead');
  if (op.op === 'update' && op.version !== undefined) problems.push("can't provide version in update request");
  if (op.ifSeqNo !== undefined && op.version !== undefined) problems.push('compare and write operations can not use versioning');
  if (op.ifSeqNo !== undefined && (op.ifPrimaryTerm === undefined || op.ifPrimaryTerm === 0)) problems.push('ifSeqNo is set, but primary term is [0]');
}

/** Injected item failures happen on the shard, after the coordinating node auto-created the index. */
function injectedOutcome(req: Req, op: WriteOp, fault: BulkItemsFault): WriteOutcome {
  let index;
  try {
    index = req.engine.store.resolveWrite(op.index, op.op !== 'delete' || op.versionType === 'external' || op.versionType === 'external_gte');
  } catch {
    index = undefined;
  }
  const name = index?.name ?? op.index;
  const reason = fault.reason ?? defaultItemReason(fault.errorType, name);
  return {
    ok: false,
    indexName: name,
    id: op.id,
    status: fault.status,
    error: cause(fault.errorType, reason, { index_uuid: index?.uuid ?? '_na_', shard: '0', index: name }),
  };
}

function defaultItemReason(type: string, index: string): string {
  if (type.includes('rejected_execution')) {
    return `rejected execution of primary operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, primary_operation_bytes=1024, max_coordinating_and_primary_bytes=53687091]`;
  }
  if (type === 'circuit_breaking_exception') return '[parent] Data too large, data for [indices:data/write/bulk[s]] would be larger than the limit';
  if (type === 'unavailable_shards_exception') return `[${index}][0] primary shard is not active Timeout: [1m]`;
  return `${type} injected by the test engine`;
}

export function handleBulk(req: Req): Reply {
  const started = Date.now();
  if (req.body.length === 0) throw validationFailed(['no requests added']);
  if (req.body[req.body.length - 1] !== 10) throw illegalArgument('The bulk request must be terminated by a newline [\\n]');
  const { ops, requireAlias, problems, ascii } = parseBulk(req);
  if (problems.length) throw validationFailed(problems);
  if (!ops.length) throw validationFailed(['no requests added']);

  const engine = req.engine;
  const fault = engine.faults.takeBulkFault(req.method, req.path);
  const refresh = req.query.get('refresh');
  const forced = refresh === '' || refresh === 'true';
  const touched = new Set<string>();
  const filter = bulkFilter(req.query.get('filter_path'));
  const items = new ItemsJson(engine, forced, filter?.items);
  let errors = false;
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as WriteOp;
    let out: WriteOutcome;
    if (fault && selectsItem(fault, i)) out = injectedOutcome(req, op, fault);
    else if (requireAlias[i] && !engine.store.aliases.has(op.index)) {
      out = {
        ok: false,
        indexName: op.index,
        id: op.id,
        status: 404,
        error: cause('index_not_found_exception', `no such index [${op.index}] and [require_alias] request flag is [true] and [${op.index}] is not an alias`, { 'resource.type': 'index_expression', 'resource.id': op.index, index_uuid: '_na_', index: op.index }),
      };
    } else {
      parseDocLine(op, ascii);
      out = executeWrite(engine, op);
    }
    if (!out.ok) errors = true;
    else touched.add(out.index.name);
    items.add(op.op, out);
  }
  if (forced || refresh === 'wait_for') {
    for (const name of touched) engine.store.indices.get(name)?.refresh();
  }
  const took = Math.max(1, Date.now() - started);
  // Elasticsearch 8.13 and later write `errors` before `took` (the response is chunked on the REST layer); 7.x and
  // OpenSearch `took` first.
  const errorsFirst = engine.flavor.major >= 8 && !engine.flavor.isOpenSearch;
  if (filter === undefined) {
    const head = errorsFirst ? `"errors":${errors},"took":${took}` : `"took":${took},"errors":${errors}`;
    return { status: 200, raw: `{${head},"items":[${items.text()}]}` };
  }
  const kept: string[] = [];
  if (!errorsFirst && filter.top.has('took')) kept.push(`"took":${took}`);
  if (filter.top.has('errors')) kept.push(`"errors":${errors}`);
  if (errorsFirst && filter.top.has('took')) kept.push(`"took":${took}`);
  if (filter.top.has('items') && items.size() > 0) kept.push(`"items":[${items.text()}]`);
  return { status: 200, raw: `{${kept.join(',')}}`, filtered: true };
}

/**
 * A `filter_path` the bulk answer can apply while it is written: top-level keys and `items.*.<field>` patterns,
 * nothing else (no excludes, wildcards elsewhere or deeper paths). `items` undefined keeps whole items.
 */
export function bulkFilter(filterPath: string | null): { top: Set<string>; items: Set<string> | undefined } | undefined {
  if (filterPath === null || filterPath === '') return undefined;
  const top = new Set<string>();
  const fields = new Set<string>();
  let whole = false;
  for (const pattern of filterPath.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const parts = pattern.split('.');
    if (parts.some((p) => p === '' || (p.includes('*') && p !== '*')) || pattern.startsWith('-')) return undefined;
    if (parts.length === 1 && parts[0] !== '*') {
      top.add(parts[0] as string);
      if (parts[0] === 'items') whole = true;
    } else if (parts.length === 3 && parts[0] === 'items' && parts[1] === '*' && parts[2] !== '*') {
      top.add('items');
      fields.add(parts[2] as string);
    } else return undefined;
  }
  return { top, items: whole ? undefined : fields };
}
