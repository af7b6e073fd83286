/**
 * A scripted HTTP server for sink unit tests: every request is recorded and answered by a test-supplied
 * function, so each test decides status codes, bulk item results, delays and dropped connections.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export interface RecordedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Body text, gunzipped when the client compressed it. */
  body: string;
  /** Raw body length in bytes as received. */
  rawBytes: number;
}

export interface ScriptedResponse {
  status?: number;
  /** Objects are sent as JSON; strings and Buffers as they are. */
  body?: unknown;
  headers?: Record<string, string>;
  delayMs?: number;
  /** Destroy the socket instead of answering. */
  drop?: boolean;
}

export type Responder = (req: RecordedRequest, n: number) => ScriptedResponse | Promise<ScriptedResponse>;

export interface ScriptedServer {
  url: string;
  requests: RecordedRequest[];
  /** Highest number of requests being handled at the same time. */
  maxConcurrent: () => number;
  close: () => Promise<void>;
}

export async function startScriptedServer(respond: Responder): Promise<ScriptedServer> {
  const requests: RecordedRequest[] = [];
  let current = 0;
  let max = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      current++;
      max = Math.max(max, current);
      const raw = Buffer.concat(chunks);
      const body = req.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
      const recorded: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, rawBytes: raw.length };
      requests.push(recorded);
      void (async () => {
        const answer = await respond(recorded, requests.length - 1);
        if (answer.delayMs) await new Promise((r) => setTimeout(r, answer.delayMs));
        current--;
        if (answer.drop) {
          req.socket.destroy();
          return;
        }
        const payload =
          answer.body === undefined ? '' : typeof answer.body === 'string' || Buffer.isBuffer(answer.body) ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status ?? 200, { 'content-type': 'application/json', ...answer.headers });
        res.end(payload);
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    maxConcurrent: () => max,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface BulkLine {
  op: 'index' | 'delete';
  meta: Record<string, unknown>;
  source?: string;
}

/** Parses an NDJSON bulk body into its actions. */
export function parseBulk(body: string): BulkLine[] {
  const lines = body.split('\n');
  const out: BulkLine[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const action = JSON.parse(line) as Record<string, Record<string, unknown>>;
    const op = Object.keys(action)[0] as 'index' | 'delete';
    if (op === 'index') out.push({ op, meta: action[op]!, source: lines[++i] });
    else out.push({ op, meta: action[op]! });
  }
  return out;
}

/** A bulk response; `item(line, i)` may override the default success item of each action. */
export function bulkResponse(body: string, item?: (line: BulkLine, i: number) => Record<string, unknown> | undefined): ScriptedResponse {
  const lines = parseBulk(body);
  const items = lines.map((line, i) => {
    const custom = item?.(line, i);
    const base = { _index: line.meta['_index'], _id: line.meta['_id'] };
    if (custom) return { [line.op]: { ...base, ...custom } };
    return { [line.op]: { ...base, status: line.op === 'index' ? 201 : 200, result: line.op === 'index' ? 'created' : 'deleted' } };
  });
  const errors = items.some((it) => ((Object.values(it)[0] as { status?: number } | undefined)?.status ?? 0) >= 300);
  return { status: 200, body: { took: 1, errors, items } };
}

/** The error part of a bulk item, as Elasticsearch writes it. */
export function itemError(status: number, type: string, reason: string): Record<string, unknown> {
  return { status, error: { type, reason } };
}
