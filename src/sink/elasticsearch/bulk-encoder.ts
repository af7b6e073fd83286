/**
 * NDJSON encoding of bulk actions. Document sources are JSON text built by PostgreSQL and are appended
 * as they are, never parsed (parsing and re-serialising dominates client CPU, machine-facts §8).
 */
import type { BulkAction } from '../document-sink.js';

/**
 * One action ready to send: its action line (ending in "\n"), for index actions the source (sent on the next line),
 * and the UTF-8 byte length of both lines.
 */
export interface EncodedAction {
  action: BulkAction;
  head: string;
  source: string | undefined;
  bytes: number;
}

/**
 * Encodes one action as `{"index":{...}}\n<source>\n` or `{"delete":{...}}\n`.
 * Metadata: `_index`, `_id`, `routing` (accepted by ES 7, 8, 9 and OpenSearch), `pipeline` (index only),
 * and with an external version `version` (integer literal) plus `version_type: external_gte`.
 */
export function encodeAction(action: BulkAction): EncodedAction {
  let meta = `{"_index":${indexJson(action.index)},"_id":${JSON.stringify(action.id)}`;
  if (action.routing !== undefined) meta += `,"routing":${JSON.stringify(action.routing)}`;
  if (action.op === 'index' && action.pipeline !== undefined) meta += `,"pipeline":${JSON.stringify(action.pipeline)}`;
  if (action.version !== undefined) meta += `,"version":${versionText(action.version)},"version_type":"external_gte"`;
  meta += '}}\n';
  if (action.op !== 'index') {
    const head = `{"delete":${meta}`;
    return { action, head, source: undefined, bytes: Buffer.byteLength(head, 'utf8') };
  }
  const head = `{"index":${meta}`;
  const source = singleLine(action.source);
  return { action, head, source, bytes: Buffer.byteLength(head, 'utf8') + Buffer.byteLength(source, 'utf8') + 1 };
}

// A batch's actions share their index and version: encode each once, not once per action.
let lastIndex = '';
let lastIndexJson = '""';
let lastVersion = -1n;
let lastVersionText = '-1';

function indexJson(index: string): string {
  if (index !== lastIndex) {
    lastIndex = index;
    lastIndexJson = JSON.stringify(index);
  }
  return lastIndexJson;
}

function versionText(version: bigint): string {
  if (version !== lastVersion) {
    lastVersion = version;
    lastVersionText = version.toString();
  }
  return lastVersionText;
}

/**
 * The request body for a list of encoded actions, written straight into one buffer: joining the lines as a string
 * first would copy every document twice more (the joined string, then its UTF-8 form for gzip and the socket).
 */
export function encodeBody(actions: readonly EncodedAction[]): Buffer {
  let total = 0;
  for (const a of actions) total += a.bytes;
  const body = Buffer.allocUnsafe(total);
  let at = 0;
  for (const a of actions) {
    at += body.write(a.head, at, 'utf8');
    if (a.source !== undefined) {
      at += body.write(a.source, at, 'utf8');
      body[at++] = 0x0a;
    }
  }
  return body;
}

/**
 * A raw line feed in valid JSON can only be insignificant whitespace (inside strings it is escaped), yet it
 * would split the NDJSON line. PostgreSQL `json` values keep their input whitespace, so replace it.
 */
function singleLine(source: string): string {
  return source.includes('\n') ? source.replace(/\n/g, ' ') : source;
}
