import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { AppError } from '../errors/app-error.js';
import type { SluiceMetrics } from '../observability/metrics.js';
import type { IndexStatus } from '../pipeline/index-status.js';
import { route } from './routes.js';

export interface HttpServerOptions {
  /** Bind address, e.g. '0.0.0.0' or '127.0.0.1'. */
  host: string;
  /** 0 picks a free port (see `url`). */
  port: number;
  /** Called on every request for a fresh snapshot of each index. */
  statuses: () => IndexStatus[];
  /** `/readyz` answers 200 when every index is streaming with lagSeconds ≤ this (unknown lag counts as ready). */
  readyLagSeconds: number;
  /** Replaced by `***` in every response body. */
  secrets: readonly string[];
  /** The pipeline's counters and histograms, added to `/metrics`. */
  metrics?: SluiceMetrics;
  /** Reported by `/status`; the version in package.json by default. */
  version?: string;
  /** SLUICE_HTTP_TOKEN: /metrics and /status need it as a bearer token. */
  token?: string;
  /** SLUICE_HTTP_TLS_CERT / SLUICE_HTTP_TLS_KEY: serve HTTPS with this certificate. */
  tls?: { cert: string; key: string };
}

export interface HttpServer {
  /** `http://host:port` (`https` with TLS) as bound (the real port when 0 was asked). */
  url: string;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/** Serves /healthz, /readyz, /metrics and /status with node:http. Resolves once listening; rejects if it cannot bind. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const startedAt = performance.now();
  const version = options.version ?? packageVersion();
  const ctx = {
    statuses: options.statuses,
    readyLagSeconds: options.readyLagSeconds,
    secrets: options.secrets,
    version,
    uptimeSeconds: () => Math.round((performance.now() - startedAt) / 10) / 100,
    ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
    ...(options.token !== undefined ? { token: options.token } : {}),
  };

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    const response = route(method, req.url ?? '/', ctx, req.headers.authorization);
    const body = Buffer.from(response.body, 'utf8');
    res.writeHead(response.status, { ...response.headers, 'content-length': String(body.length) });
    res.end(method === 'HEAD' ? undefined : body);
    // Request bodies are not read; drain them so the connection can be reused.
    req.resume();
  };
  const server: Server = options.tls === undefined ? createServer(handler) : createHttpsServer({ cert: options.tls.cert, key: options.tls.key }, handler);
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(listenError(error, options.host, options.port));
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });

  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://${host}:${String(address.port)}`,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((error) => (error !== undefined ? reject(error) : resolve()));
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

const LISTEN_HINTS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'another process uses this port: choose another SLUICE_HTTP_PORT',
  EACCES: 'ports below 1024 need privileges: choose a higher SLUICE_HTTP_PORT',
  EADDRNOTAVAIL: 'no network interface of this host has that address: set SLUICE_HTTP_HOST to one it has, or 0.0.0.0',
  ENOTFOUND: 'the host name does not resolve: set SLUICE_HTTP_HOST to an address of this host, or 0.0.0.0',
  EAI_AGAIN: 'the host name could not be resolved now: set SLUICE_HTTP_HOST to an address instead',
};

function listenError(error: Error, host: string, port: number): AppError {
  const code = (error as NodeJS.ErrnoException).code ?? 'UNKNOWN';
  const hint = LISTEN_HINTS[code] ?? error.message;
  return new AppError('SRV_LISTEN', `the HTTP server cannot listen on ${host}:${String(port)}: ${code} (${hint})`, { cause: error });
}

let cachedVersion: string | undefined;

function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      // ../../package.json from both src/server/ and dist/server/.
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
      cachedVersion = typeof pkg.version === 'string' ? pkg.version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
