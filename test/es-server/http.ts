import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync, inflate, inflateSync } from 'node:zlib';
import type { EngineState, Reply, Req } from './context.js';
import { EsError, parseJson, simpleError } from './errors.js';
import { statusFaultReply, tooLargeReply, type RawReply } from './faults.js';
import { applyFilterPath, toJson } from './json.js';
import { negotiate } from './media.js';
import { checkQueryParams, type Router } from './router.js';
import type { RecordedRequest, TestEngineOptions } from './types.js';
import { checkAuth } from './auth.js';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
const MAX_RECORDED = 10_000;

export interface FrontDeps {
  engine: EngineState;
  options: Required<Pick<TestEngineOptions, 'maxContentLengthBytes'>> & Pick<TestEngineOptions, 'auth'>;
  router: Router;
  requests: RecordedRequest[];
  endpointCounts: Map<string, number>;
  control: (method: string, path: string, body: Buffer, query: URLSearchParams) => { status: number; body: unknown };
}

interface Body {
  buffer: Buffer;
  wireBytes: number;
  tooLarge: boolean;
}

/**
 * An exact-size, unpooled copy: stored documents point into request bodies, and a slice of a pooled or socket
 * buffer would keep the whole slab alive.
 */
function ownBuffer(chunks: Buffer[], length: number): Buffer {
  const out = Buffer.allocUnsafeSlow(length);
  let offset = 0;
  for (const chunk of chunks) offset += chunk.copy(out, offset);
  return out;
}

function readBody(req: IncomingMessage, limit: number): Promise<Body> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    let tooLarge = Number(req.headers['content-length'] ?? 0) > limit;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (bytes > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve({ buffer: tooLarge ? Buffer.alloc(0) : ownBuffer(chunks, bytes), wireBytes: bytes, tooLarge }));
    req.on('error', reject);
  });
}

async function decode(body: Body, encoding: string | undefined, limit: number): Promise<Body> {
  if (!encoding || body.tooLarge || !body.buffer.length) return body;
  const enc = encoding.trim().toLowerCase();
  if (enc !== 'gzip' && enc !== 'x-gzip' && enc !== 'deflate') return body;
  try {
    // Small bodies (every bulk Sluice sends) inline: the asynchronous path's overhead is most of the work for them.
    const options = { maxOutputLength: limit + 1 };
    const buffer =
      body.buffer.length <= 256 * 1024
        ? (enc === 'deflate' ? inflateSync : gunzipSync)(body.buffer, options)
        : await (enc === 'deflate' ? inflateAsync : gunzipAsync)(body.buffer, options);
    if (buffer.length > limit) return { ...body, buffer: Buffer.alloc(0), tooLarge: true };
    // zlib joins a large output into a buffer of its own already; smaller ones are slices of a pool or a chunk.
    const own = buffer.byteOffset === 0 && buffer.buffer.byteLength === buffer.length;
    return { ...body, buffer: own ? buffer : ownBuffer([buffer], buffer.length) };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return { ...body, buffer: Buffer.alloc(0), tooLarge: true };
    throw simpleError(400, `request body could not be decoded with content-encoding [${encoding}]`);
  }
}

/** `gzip` (or `*`) among the accepted encodings, without `q=0`. */
function acceptsGzip(header: string | string[] | undefined): boolean {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  return text.split(',').some((part) => {
    const [coding, ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    return (coding === 'gzip' || coding === '*') && (q === undefined || Number(q.slice(2)) > 0);
  });
}

export function createRequestListener(deps: FrontDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { engine } = deps;
  const flavor = engine.flavor;

  const baseHeaders = (req: IncomingMessage, fromEngine = true): Record<string, string | string[]> => {
    const headers: Record<string, string | string[]> = {};
    if (fromEngine && !flavor.isOpenSearch) headers['x-elastic-product'] = 'Elasticsearch';
    const opaque = req.headers['x-opaque-id'];
    if (fromEngine && typeof opaque === 'string') headers['x-opaque-id'] = opaque;
    return headers;
  };

  /**
   * The body as the engine sends it: gzipped when the client accepts gzip, as Elasticsearch and OpenSearch do with
   * `http.compression` (on by default over plain HTTP; Netty's compressor has no size threshold).
   */
  const encoded = (req: IncomingMessage, headers: Record<string, string | string[]>, text: string): Buffer => {
    if (!acceptsGzip(req.headers['accept-encoding'])) return Buffer.from(text);
    headers['content-encoding'] = 'gzip';
    headers['vary'] = 'accept-encoding';
    return gzipSync(text, { level: 1 });
  };

  const sendRaw = (req: IncomingMessage, res: ServerResponse, reply: RawReply): void => {
    const headers = baseHeaders(req, reply.fromEngine);
    if (reply.unauthenticated) delete headers['x-elastic-product'];
    if (reply.contentType) headers['content-type'] = reply.contentType;
    Object.assign(headers, reply.headers);
    // Answers the engine's own HTTP layer makes (Netty's 413) or a proxy's are not compressed.
    const body = reply.fromEngine ? encoded(req, headers, reply.body) : Buffer.from(reply.body);
    headers['content-length'] = String(body.length);
    res.writeHead(reply.status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  /** `cut`: the answer's headers and half its body go out, then the connection closes (a `truncate` fault). */
  const sendReply = (req: IncomingMessage, res: ServerResponse, reply: Reply, contentType: string, query: URLSearchParams, cut = false): void => {
    const headers = baseHeaders(req);
    let text = '';
    if (reply.raw !== undefined || reply.body !== undefined) {
      // As AbstractRestChannel.newErrorBuilder: error bodies are never filtered.
      const filter = reply.status >= 400 ? null : query.get('filter_path');
      const pretty = query.has('pretty') && query.get('pretty') !== 'false';
      const isJson = reply.headers?.['content-type'] === undefined;
      if (isJson && ((filter && reply.filtered !== true) || pretty)) {
        let value = reply.raw !== undefined ? JSON.parse(reply.raw) : reply.body;
        if (filter && reply.filtered !== true) value = applyFilterPath(value, filter);
        text = toJson(value, pretty) + (pretty ? '\n' : '');
      } else text = reply.raw ?? toJson(reply.body);
      headers['content-type'] = contentType;
    }
    Object.assign(headers, reply.headers);
    const body = encoded(req, headers, text);
    headers['content-length'] = String(body.length);
    res.writeHead(reply.status, headers);
    if (cut) {
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
      return;
    }
    res.end(req.method === 'HEAD' ? undefined : body);
  };

  const errorReply = (err: unknown): Reply => {
    if (err instanceof EsError) {
      if (err.status === 200) return { status: 200, headers: err.headers };
      return { status: err.status, body: err.body, headers: err.headers };
    }
    const reason = err instanceof Error ? err.message : String(err);
    process.stderr.write(`es-test-server: internal error: ${err instanceof Error ? err.stack : reason}\n`);
    const cause = { type: 'exception', reason };
    return { status: 500, body: { error: { root_cause: [cause], ...cause }, status: 500 } };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const uri = req.url ?? '/';
    const q = uri.indexOf('?');
    const path = q < 0 ? uri : uri.slice(0, q);
    const queryString = q < 0 ? '' : uri.slice(q + 1);
    const query = new URLSearchParams(queryString);

    if (path === '/_test' || path.startsWith('/_test/')) {
      const body = await readBody(req, Number.MAX_SAFE_INTEGER);
      const out = deps.control(method, path, body.buffer, query);
      const text = JSON.stringify(out.body);
      res.writeHead(out.status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': String(Buffer.byteLength(text)) });
      res.end(text);
      return;
    }

    const record: RecordedRequest = { method, path, query: queryString, headers: { ...req.headers }, bodyBytes: 0 };
    deps.requests.push(record);
    if (deps.requests.length > MAX_RECORDED) deps.requests.splice(0, deps.requests.length - MAX_RECORDED);

    const match = deps.router.match(method, path, uri);
    const key = match instanceof EsError ? `${method} (no handler)` : match.key;
    deps.endpointCounts.set(key, (deps.endpointCounts.get(key) ?? 0) + 1);

    const fault = engine.faults.takeRequestFault(method, path);
    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return;
    }
    const limit = deps.options.maxContentLengthBytes;
    let body = await readBody(req, limit);
    record.bodyBytes = body.wireBytes;
    if (fault?.kind === 'delay') await sleep(fault.ms);
    if (fault?.kind === 'status') {
      sendRaw(req, res, statusFaultReply(flavor, fault.status, method, path, body.wireBytes));
      return;
    }
    const denied = checkAuth(req.headers, deps.options.auth, flavor, uri);
    if (denied) {
      sendRaw(req, res, denied);
      return;
    }
    try {
      body = await decode(body, req.headers['content-encoding'], limit);
    } catch (err) {
      sendReply(req, res, errorReply(err), flavor.jsonContentType, query);
      return;
    }
    if (body.tooLarge) {
      // As Netty's HttpObjectAggregator in 7.x and OpenSearch: a body found too large while it is decompressed (its
      // length was not known up front) gets its 413 and the connection closed ("impossible to recover"); one too
      // large by its Content-Length keeps the connection.
      const close = req.headers['content-encoding'] !== undefined && (flavor.major < 8 || flavor.isOpenSearch);
      const reply = tooLargeReply(flavor, body.wireBytes, limit);
      sendRaw(req, res, close ? { ...reply, headers: { connection: 'close' } } : reply);
      if (close) res.once('finish', () => req.socket.destroy());
      return;
    }

    let contentType = flavor.jsonContentType;
    let reply: Reply;
    try {
      contentType = negotiate(req.headers, flavor, body.buffer.length > 0);
      if (match instanceof EsError) throw match;
      checkQueryParams(query, match.allowedQuery, path);
      let text: string | undefined;
      const request: Req = {
        method,
        path,
        params: match.params,
        query,
        headers: req.headers,
        body: body.buffer,
        engine,
        text: () => (text ??= body.buffer.toString('utf8')),
        json: () => (body.buffer.length ? parseJson(request.text()) : undefined),
      };
      reply = await match.handler(request);
    } catch (err) {
      reply = errorReply(err);
    }
    if (fault?.kind === 'delayReply') await sleep(fault.ms);
    if (fault?.kind === 'dropAfter') {
      req.socket.destroy();
      return;
    }
    sendReply(req, res, reply, contentType, query, fault?.kind === 'truncate');
  };

  return (req, res) => {
    handle(req, res).catch((err: unknown) => {
      process.stderr.write(`es-test-server: ${err instanceof Error ? err.stack : String(err)}\n`);
      if (!res.headersSent) {
        res.writeHead(500);
        res.end();
      } else res.destroy();
    });
  };
}
