/**
 * Minimal HTTP client for the Elasticsearch/OpenSearch REST API: one keep-alive undici Pool per engine URL,
 * auth header, TLS, total request timeout, optional gzip. It speaks plain `application/json` and
 * `application/x-ndjson`, which every supported server accepts (ES 7.10+, 8, 9; OpenSearch 1-3).
 */
import { promisify } from 'node:util';
import { constants as zlib, gunzip as gunzipCb, gzip as gzipCb, gzipSync } from 'node:zlib';
import { X509Certificate } from 'node:crypto';
import { TLSSocket, type DetailedPeerCertificate } from 'node:tls';
import { buildConnector, Pool } from 'undici';
import type { EngineAuth, EngineConfig, TlsOptions } from '../../config/config-types.js';
import { AppError } from '../../errors/app-error.js';
import { mapTransportError } from './es-errors.js';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);
/**
 * Bulk bodies are repetitive NDJSON: the fastest level already shrinks them about 8-fold (level 6 about 10-fold)
 * at a third of level 6's CPU, which the change stream spends on every batch.
 */
const GZIP_OPTIONS = { level: zlib.Z_BEST_SPEED };
/**
 * Bodies up to this size are gzipped on the event loop (about 0.4 ms for a 1,000-document bulk): zlib's
 * asynchronous path costs about as much CPU again in stream machinery and thread hand-offs. Larger ones go to the
 * thread pool so that no request blocks the loop for long.
 */
const SYNC_GZIP_MAX_BYTES = 1024 * 1024;

/** Logger shape the sink needs; a pino Logger satisfies it. */
export interface SinkLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';

export interface EngineRequestOptions {
  body?: string | Buffer | Buffer[];
  /** Default `application/json` when a body is given. */
  contentType?: string;
  query?: Record<string, string | number | boolean | undefined>;
  /**
   * Ask for a gzipped answer when compression is on (default true). `_bulk` turns it off: its answer is as long as
   * the request, usually read no further than its head, and compressing it costs the engine's CPU and ours.
   */
  acceptGzip?: boolean;
}

export interface EngineResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Response body as text (gunzipped when the server compressed it); decoded on first use. */
  readonly body: string;
  /** The first `bytes` bytes of the body as text (a multi-byte character cut at the end becomes U+FFFD). */
  head(bytes: number): string;
  /** The body parsed as JSON; throws `AppError('SNK_REQUEST')` when it is not JSON. */
  json(): unknown;
}

/** The settings the client uses; an `EngineConfig` fits. */
export type EngineClientConfig = Pick<EngineConfig, 'url' | 'auth' | 'tls' | 'requestTimeoutMs' | 'compress'>;

export interface EngineClientOptions {
  /** Maximum sockets to the engine (default 16). */
  connections?: number;
}

/** Talks to one engine URL. Create one per process and share it; `close()` it at shutdown. */
export class EngineClient {
  /** Origin and base path, for messages; never contains credentials. */
  readonly url: string;
  private readonly pool: Pool;
  private readonly basePath: string;
  private readonly headers: Record<string, string>;
  private readonly secrets: string[];
  private readonly timeoutMs: number;
  private readonly compress: boolean;

  constructor(config: EngineClientConfig, options: EngineClientOptions = {}) {
    const parsed = parseEngineUrl(config.url);
    this.url = `${parsed.origin}${parsed.basePath}`;
    this.basePath = parsed.basePath;
    this.timeoutMs = config.requestTimeoutMs;
    this.compress = config.compress;
    const auth = authHeader(config.auth);
    this.secrets = secretsOf(config.auth, auth);
    this.headers = { accept: 'application/json', 'user-agent': 'sluice' };
    if (auth !== undefined) this.headers['authorization'] = auth;
    this.pool = new Pool(parsed.origin, {
      connections: options.connections ?? 16,
      connect: config.tls.pinnedFingerprint === undefined ? tlsConnectOptions(config.tls) : pinnedConnector(config.tls, config.tls.pinnedFingerprint),
      headersTimeout: config.requestTimeoutMs,
      bodyTimeout: config.requestTimeoutMs,
    });
  }

  /** Sends one request. HTTP error statuses are returned, not thrown; transport failures throw `EngineTransportError`. */
  async request(method: HttpMethod, path: string, options: EngineRequestOptions = {}): Promise<EngineResponse> {
    const fullPath = this.basePath + path + queryString(options.query);
    const target = `${method} ${this.url}${path}`;
    const headers: Record<string, string> = { ...this.headers };
    if (this.compress && options.acceptGzip !== false) headers['accept-encoding'] = 'gzip';
    let body: Buffer | string | undefined = Array.isArray(options.body) ? Buffer.concat(options.body) : options.body;
    if (body !== undefined) {
      headers['content-type'] = options.contentType ?? 'application/json';
      if (this.compress) {
        body = Buffer.byteLength(body) <= SYNC_GZIP_MAX_BYTES ? gzipSync(body, GZIP_OPTIONS) : await gzip(body, GZIP_OPTIONS);
        headers['content-encoding'] = 'gzip';
      }
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.timeoutMs);
    try {
      const res = await this.pool.request({ method, path: fullPath, headers, body, signal: controller.signal });
      let raw = Buffer.from(await res.body.arrayBuffer());
      if (headerValue(res.headers, 'content-encoding') === 'gzip' && raw.length > 0) raw = await gunzip(raw);
      return makeResponse(res.statusCode, res.headers, raw, target);
    } catch (err) {
      if (err instanceof AppError) throw err;
      throw mapTransportError(err, target, this.secrets, timedOut ? this.timeoutMs : undefined);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Closes the sockets after in-flight requests finish. Idempotent. */
  async close(): Promise<void> {
    if (this.pool.closed || this.pool.destroyed) return;
    await this.pool.close();
  }
}

/** The `Authorization` header value for the configured auth, or undefined for none. */
export function authHeader(auth: EngineAuth): string | undefined {
  switch (auth.kind) {
    case 'none':
      return undefined;
    case 'basic':
      return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
    case 'apiKey':
      // With an id, the key pair is encoded as Elasticsearch expects; without, the key is the encoded form already.
      return `ApiKey ${auth.id === undefined ? auth.key : Buffer.from(`${auth.id}:${auth.key}`, 'utf8').toString('base64')}`;
    case 'bearer':
      return `Bearer ${auth.token}`;
  }
}

function secretsOf(auth: EngineAuth, header: string | undefined): string[] {
  const secrets: string[] = [];
  if (header !== undefined) secrets.push(header, header.slice(header.indexOf(' ') + 1));
  if (auth.kind === 'basic') secrets.push(auth.password);
  if (auth.kind === 'apiKey') secrets.push(auth.key);
  if (auth.kind === 'bearer') secrets.push(auth.token);
  return secrets;
}

function tlsConnectOptions(tls: TlsOptions): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } {
  const options: { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } = {
    rejectUnauthorized: tls.rejectUnauthorized,
  };
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  return options;
}

type Pin = NonNullable<TlsOptions['pinnedFingerprint']>;

/**
 * Trusts a server when some certificate it presents has the pinned fingerprint, as PGSync's client does with
 * ssl_assert_fingerprint: Elasticsearch 8's self-generated CA is not in any bundle, so CA verification is off and
 * the pin decides. Each certificate from the server's own up to the pinned one must be signed by the next (the
 * handshake proves the server holds its own certificate's key): a chain naming the pinned CA as issuer but signed
 * by another key, followed by the public CA certificate, is refused. A refusal closes the socket before a request
 * (and its credentials) is sent. TLS sessions are not resumed, since a resumed session shows no certificate to check.
 */
function pinnedConnector(tls: TlsOptions, pin: Pin): buildConnector.connector {
  const connect = buildConnector({ ...tlsConnectOptions(tls), rejectUnauthorized: false, maxCachedSessions: 0 });
  return (options, callback) =>
    connect(options, (err, socket) => {
      if (err !== null) return callback(err, null);
      if (!(socket instanceof TLSSocket)) return callback(null, socket);
      const problem = pinProblem(certificateChain(socket.getPeerCertificate(true)), pin);
      if (problem === undefined) return callback(null, socket);
      socket.destroy();
      return callback(Object.assign(new Error(problem), { code: 'ERR_TLS_CERT_FINGERPRINT_MISMATCH' }), null);
    });
}

/** Why the presented chain does not satisfy the pin, or undefined when it does. */
function pinProblem(chain: X509Certificate[], pin: Pin): string | undefined {
  const fingerprints = chain.map((cert) => (pin.algorithm === 'sha256' ? cert.fingerprint256 : cert.fingerprint));
  const pinned = fingerprints.indexOf(pin.value);
  if (pinned < 0) {
    return `no certificate the server presented has the ${pin.algorithm.toUpperCase()} fingerprint in ELASTICSEARCH_SSL_ASSERT_FINGERPRINT (presented: ${fingerprints.join(', ') || 'none'})`;
  }
  for (let i = 0; i < pinned; i++) {
    const [cert, issuer] = [chain[i]!, chain[i + 1]!];
    if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) {
      return `the server's certificate chain does not lead to the certificate pinned by ELASTICSEARCH_SSL_ASSERT_FINGERPRINT: "${cert.subject.replace(/\n/g, ', ')}" is not signed by the next certificate's key`;
    }
  }
  return undefined;
}

/** The peer certificate and its issuers as far as the server sent them (a self-signed one is its own issuer). */
function certificateChain(leaf: DetailedPeerCertificate): X509Certificate[] {
  const seen: DetailedPeerCertificate[] = [];
  let cert: DetailedPeerCertificate | undefined = leaf;
  while (cert !== undefined && cert.raw !== undefined && !seen.includes(cert)) {
    seen.push(cert);
    cert = cert.issuerCertificate;
  }
  return seen.map((c) => new X509Certificate(c.raw));
}

function parseEngineUrl(url: string): { origin: string; basePath: string } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new AppError('SNK_CONNECT', `search engine URL is not a valid URL: ${url}`, { cause: err });
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new AppError('SNK_CONNECT', `search engine URL must use http or https, got ${parsed.protocol}`);
  }
  return { origin: parsed.origin, basePath: parsed.pathname.replace(/\/+$/, '') };
}

function queryString(query: EngineRequestOptions['query']): string {
  if (query === undefined) return '';
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) params.append(key, String(value));
  }
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** First value of a response header (names are lower-case in undici). */
export function headerValue(headers: EngineResponse['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function makeResponse(status: number, headers: EngineResponse['headers'], raw: Buffer, target: string): EngineResponse {
  let text: string | undefined;
  const bodyText = (): string => (text ??= raw.toString('utf8'));
  return {
    status,
    headers,
    get body(): string {
      return bodyText();
    },
    head(bytes: number): string {
      return raw.toString('utf8', 0, Math.min(bytes, raw.length));
    },
    json(): unknown {
      const body = bodyText();
      try {
        return JSON.parse(body);
      } catch (err) {
        throw new AppError('SNK_REQUEST', `${target} returned HTTP ${status} with a body that is not JSON: ${body.slice(0, 200)}`, {
          cause: err,
          details: { status },
        });
      }
    },
  };
}
