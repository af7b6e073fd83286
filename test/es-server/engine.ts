import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { buildIndex } from './api-indices.js';
import type { EngineState } from './context.js';
import { FaultRegistry } from './faults.js';
import { flavorInfo, randomId } from './flavors.js';
import { createRequestListener } from './http.js';
import { buildRouter } from './routes.js';
import { ScrollRegistry } from './scroll.js';
import { nestSettings } from './settings.js';
import { parseSource, Store, type Doc, type IndexState } from './store.js';
import type { FaultRule, RecordedRequest, TestEngine, TestEngineOptions } from './types.js';

const DEFAULT_REFRESH_MS = 1000;
const SEARCH_IDLE_MS = 30_000;
const TICK_MS = 100;

/** Periodic refresh like ES's refresh_interval (default 1s, skipped for search-idle shards; -1 disables). */
function tick(engine: EngineState, now: number): void {
  for (const index of engine.store.indices.values()) {
    if (!index.dirty) continue;
    const explicit = index.refreshIntervalMs;
    if (explicit !== undefined && explicit <= 0) continue;
    if (explicit === undefined && now - index.lastSearchAccess >= SEARCH_IDLE_MS) continue;
    if (now - index.lastRefresh >= (explicit ?? DEFAULT_REFRESH_MS)) index.refresh();
  }
  engine.scrolls.sweep(now);
}

function controlEndpoint(engine: EngineState, requests: RecordedRequest[], counts: Map<string, number>) {
  return (method: string, path: string, body: Buffer, query: URLSearchParams): { status: number; body: unknown } => {
    const route = `${method} ${path.replace(/\/+$/, '')}`;
    try {
      switch (route) {
        case 'POST /_test/faults': {
          const rule = JSON.parse(body.toString('utf8') || 'null') as FaultRule;
          engine.faults.inject(rule);
          return { status: 200, body: { acknowledged: true, pending: engine.faults.pending() } };
        }
        case 'DELETE /_test/faults':
          engine.faults.clear();
          return { status: 200, body: { acknowledged: true, pending: 0 } };
        case 'GET /_test/faults':
          return { status: 200, body: { pending: engine.faults.pending(), rules: engine.faults.list() } };
        case 'GET /_test/stats': {
          const docs: Record<string, number> = {};
          const searchable: Record<string, number> = {};
          for (const [name, index] of engine.store.indices) {
            docs[name] = index.docCount;
            searchable[name] = index.searchableCount;
          }
          let total = 0;
          for (const n of counts.values()) total += n;
          return {
            status: 200,
            body: {
              flavor: engine.flavor.flavor,
              requests: { total, recorded: requests.length, byEndpoint: Object.fromEntries(counts) },
              docs,
              searchable,
              aliases: Object.fromEntries([...engine.store.aliases].map(([a, m]) => [a, [...m.keys()]])),
              scrollContexts: engine.scrolls.size,
              faultsPending: engine.faults.pending(),
            },
          };
        }
        case 'GET /_test/requests': {
          const limit = Number(query.get('limit') ?? 100);
          return { status: 200, body: requests.slice(-limit) };
        }
        case 'POST /_test/reset':
          engine.store.indices.clear();
          engine.store.aliases.clear();
          engine.store.pipelines.clear();
          engine.faults.clear();
          engine.scrolls.clear('all');
          requests.length = 0;
          counts.clear();
          return { status: 200, body: { acknowledged: true } };
        default:
          return { status: 404, body: { error: `unknown test endpoint [${route}]`, status: 404 } };
      }
    } catch (err) {
      return { status: 400, body: { error: err instanceof Error ? err.message : String(err), status: 400 } };
    }
  };
}

export async function startTestEngine(options: TestEngineOptions = {}): Promise<TestEngine> {
  const flavor = flavorInfo(options.flavor ?? 'es8');
  const faults = new FaultRegistry();
  const engine: EngineState = {
    flavor,
    faults,
    scrolls: new ScrollRegistry(),
    clusterUuid: randomId(16),
    store: undefined as unknown as Store,
  };
  engine.store = new Store(flavor, (name) => buildIndex(engine, name));
  const requests: RecordedRequest[] = [];
  const counts = new Map<string, number>();
  const listener = createRequestListener({
    engine,
    options: { maxContentLengthBytes: options.maxContentLengthBytes ?? 100 * 1024 * 1024, auth: options.auth },
    router: buildRouter(),
    requests,
    endpointCounts: counts,
    control: controlEndpoint(engine, requests, counts),
  });
  const server: Server = options.tls ? createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener) : createHttpServer(listener);
  server.keepAliveTimeout = 65_000;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const timer = setInterval(() => tick(engine, Date.now()), TICK_MS);
  timer.unref();
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const store = engine.store;
  let closed: Promise<void> | undefined;

  return {
    url: `${options.tls ? 'https' : 'http'}://${urlHost}:${port}`,
    flavor: flavor.flavor,
    faults,
    requests,
    store: {
      indices: () => [...store.indices.keys()].sort(),
      documents: (index) => {
        const target = tryResolve(store, index);
        return new Map(target ? [...target.allDocs()].map((d) => [d.id, parseSource(d)]) : []);
      },
      document: (index, id) => {
        const doc = firstCopy(tryResolve(store, index), id);
        return doc ? parseSource(doc) : undefined;
      },
      copies: (index, id) => {
        const target = tryResolve(store, index);
        if (!target) return [];
        return target.shards.flatMap((shard) => {
          const doc = shard.docs.get(id);
          return doc ? [{ shard: shard.number, ...(doc.routing !== undefined ? { routing: doc.routing } : {}), version: Number(doc.version), source: parseSource(doc) }] : [];
        });
      },
      mapping: (index) => tryResolve(store, index)?.mapping,
      settings: (index) => {
        const target = tryResolve(store, index);
        return target ? (nestSettings(target.settings).index as Record<string, unknown>) : undefined;
      },
      version: (index, id) => {
        const v = firstCopy(tryResolve(store, index), id)?.version;
        return v === undefined ? undefined : Number(v);
      },
    },
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        clearInterval(timer);
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      })),
  };
}

/** The copy of an id on the lowest shard holding one (there is one copy unless routings differed). */
function firstCopy(index: IndexState | undefined, id: string): Doc | undefined {
  for (const shard of index?.shards ?? []) {
    const doc = shard.docs.get(id);
    if (doc) return doc;
  }
  return undefined;
}

function tryResolve(store: Store, name: string) {
  try {
    return store.resolveSingle(name);
  } catch {
    return undefined;
  }
}
