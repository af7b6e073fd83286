/**
 * Finds query connections that died without being closed.
 *
 * A server that crashes or is failed over, or a network path that drops a flow, closes nothing: the client keeps
 * waiting for an answer that will never come. Node sets only the first TCP keepalive delay (libuv 1.46), so with
 * Linux's defaults the kernel gives up after some eleven minutes, and until then the pipeline stands still. Silence
 * alone proves nothing (PostgreSQL sends nothing while a query runs or waits for a lock), so after a query has made
 * no progress for a while, a fresh connection asks the server about the waiting connection's session.
 */
import pg from 'pg';

/** The server session behind a connection: its backend's pid and start time, unique together across restarts. */
export interface ServerSession {
  pid: number;
  started: string;
}

/**
 * What a fresh connection learned about a session:
 * - `running`: the session exists and is busy (a query, a lock wait): the wait is PostgreSQL's, not the network's;
 * - `idle`: the session exists and waits for its client, though the client waits for it: an answer was lost;
 * - `gone`: no such session (the server restarted, failed over, or ended the backend);
 * - `unreachable`: no connection could be made (refused, no route, timed out);
 * - `unknown`: the server answered with an error (login refused, too many connections): nothing is concluded.
 */
export type SessionState = 'running' | 'idle' | 'gone' | 'unreachable' | 'unknown';

/** Node codes of a connection attempt that never reached a server, as opposed to a server refusing it. */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN']);

function timedOut(error: Error | null | undefined): Error | null | undefined {
  if (error instanceof Error && error.message === 'timeout expired' && (error as { code?: unknown }).code === undefined) {
    return Object.assign(error, { code: 'ETIMEDOUT' });
  }
  return error;
}

/** The session of `client`'s connection, asked on that connection. */
export async function identifySession(client: pg.ClientBase): Promise<ServerSession | undefined> {
  const { rows } = await client.query<{ pid: number; started: string }>(
    'SELECT pid, backend_start::text AS started FROM pg_stat_activity WHERE pid = pg_backend_pid()',
  );
  const row = rows[0];
  return row === undefined ? undefined : { pid: row.pid, started: row.started };
}

/** Asks the server about `session` on a new connection made with `options`, giving up after `timeoutMs`. */
export async function probeSession(options: pg.ClientConfig, session: ServerSession, timeoutMs: number): Promise<SessionState> {
  const client = new pg.Client({ ...options, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<SessionState>((resolve) => {
    timer = setTimeout(() => {
      (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
      resolve('unreachable');
    }, timeoutMs);
    timer.unref();
  });
  const ask = (async (): Promise<SessionState> => {
    await client.connect();
    const { rows } = await client.query<{ state: string | null }>('SELECT state FROM pg_stat_activity WHERE pid = $1 AND backend_start::text = $2', [session.pid, session.started]);
    const row = rows[0];
    if (row === undefined) return 'gone';
    return row.state === 'idle' || row.state === 'idle in transaction' ? 'idle' : 'running';
  })().catch((error: unknown) => {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' && UNREACHABLE_CODES.has(code)) return 'unreachable' as const;
    // node-postgres's own words for a connection that timed out or broke before the server answered.
    if (/connection timeout|Connection terminated/i.test(String((error as Error).message))) return 'unreachable' as const;
    return 'unknown' as const;
  });
  try {
    return await Promise.race([ask, deadline]);
  } finally {
    clearTimeout(timer);
    void client.end().catch(() => undefined);
  }
}

export interface LivenessOptions {
  /** A connection whose queries made no progress for this long is asked about. */
  probeAfterMs: number;
  /** Options of the fresh connection that asks. */
  probeOptions: pg.ClientConfig;
}

/**
 * A node-postgres client that is destroyed, failing its queries with code `ECONNABORTED` (aborted here), when a probe finds that
 * the server no longer holds its session, or twice in a row cannot be reached or waits for this client while this
 * client waits for it. Queries still running or waiting on the server are left alone however long they take.
 */
export class LivenessClient extends pg.Client {
  private session: ServerSession | undefined;
  private pending = 0;
  /** When a query last completed, or when the client became busy: the stall is measured from here. */
  private progressAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private suspicions = 0;
  private probing = false;

  constructor(
    config: pg.ClientConfig,
    private readonly liveness: LivenessOptions,
  ) {
    super(config);
    const query = this.query.bind(this) as (...args: unknown[]) => unknown;
    // Every query form but Submittables (not used by Sluice) goes through here; a callback is wrapped, a promise chained.
    (this as { query: unknown }).query = (...args: unknown[]) => {
      if (typeof (args[0] as { submit?: unknown } | undefined)?.submit === 'function') return query(...args);
      this.began();
      const last = args.length - 1;
      const callback = args[last];
      if (typeof callback === 'function') {
        args[last] = (error: unknown, result: unknown) => {
          this.ended();
          (callback as (e: unknown, r: unknown) => void)(error, result);
        };
        return query(...args);
      }
      try {
        return (query(...args) as Promise<unknown>).finally(() => this.ended());
      } catch (error) {
        this.ended();
        throw error;
      }
    };
    // node-postgres fails a connection attempt past connectionTimeoutMillis with a bare Error('timeout expired'): given
    // the network's code, it is retried like any other unreachable server.
    const connect = this.connect.bind(this) as (callback?: (error?: Error | null, client?: unknown) => void) => Promise<void> | undefined;
    (this as { connect: unknown }).connect = (callback?: (error?: Error | null, client?: unknown) => void) => {
      if (typeof callback === 'function') return connect((error, client) => callback(timedOut(error), client));
      return (connect() as Promise<void>).catch((error: Error) => {
        throw timedOut(error);
      });
    };
    this.on('end', () => clearTimeout(this.timer));
    // A connection that breaks fails its queries, which is how callers learn of it; the event must not also crash the
    // process while the client is checked out of its pool (the pool listens only while the client is idle).
    this.on('error', () => undefined);
  }

  /** Learns this connection's session; until then (and if that fails) the connection is not watched. */
  async identify(): Promise<void> {
    this.session = await identifySession(this);
  }

  private began(): void {
    if (this.pending++ > 0) return;
    this.progressAt = Date.now();
    this.arm(this.liveness.probeAfterMs);
  }

  private ended(): void {
    this.pending--;
    this.progressAt = Date.now();
    this.suspicions = 0;
    if (this.pending === 0) clearTimeout(this.timer);
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.check(), ms);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const session = this.session;
    if (this.pending === 0 || this.probing || session === undefined) return;
    const stalled = Date.now() - this.progressAt;
    if (stalled < this.liveness.probeAfterMs) return this.arm(this.liveness.probeAfterMs - stalled);
    const progressAt = this.progressAt;
    this.probing = true;
    let state: SessionState;
    try {
      state = await probeSession(this.liveness.probeOptions, session, Math.min(10_000, this.liveness.probeAfterMs));
    } finally {
      this.probing = false;
    }
    // An answer that arrived meanwhile outdates what the probe saw.
    if (this.pending === 0 || this.progressAt !== progressAt) return;
    const seconds = Math.round((Date.now() - progressAt) / 1000);
    if (state === 'gone') return this.kill(`the server no longer has its session (backend pid ${session.pid}) after ${seconds} s without an answer: a restart, a failover or a terminated backend whose connection never closed`);
    // Unreachable or idle once may be a slow server or an answer on its way; twice in a row, an interval apart, is not.
    if (state === 'unreachable' && ++this.suspicions >= 2) {
      return this.kill(`the server cannot be reached on a new connection, twice in a row, after ${seconds} s without an answer`);
    }
    if (state === 'idle' && ++this.suspicions >= 2) {
      return this.kill(`the server has been waiting for this connection (backend pid ${session.pid}) while it waited ${seconds} s for an answer: the answer was lost on the way`);
    }
    if (state !== 'idle' && state !== 'unreachable') this.suspicions = 0;
    this.arm(this.liveness.probeAfterMs);
  }

  private kill(reason: string): void {
    const error = Object.assign(new Error(`connection taken for dead: ${reason}`), { code: 'ECONNABORTED' });
    // Fails the waiting queries with this error; a pool drops the client (it is no longer queryable).
    (this.connection as unknown as { stream: { destroy(error: Error): void } }).stream.destroy(error);
  }
}
