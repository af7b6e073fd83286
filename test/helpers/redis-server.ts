// Throwaway Redis servers for tests: `redis-server` as a child process on a free port on 127.0.0.1,
// without persistence, in a temporary directory. Never touches a system Redis.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { findFreePort } from './postgres-cluster.js';

export interface RedisTestServer {
  host: string;
  port: number;
  /** `redis://127.0.0.1:PORT` (with `:password@` when a password is set). */
  url: string;
  password: string | undefined;
  /** Temporary working directory (`--dir`), holding the log file. */
  dir: string;
  /** Stops the server (SIGTERM, then SIGKILL) and deletes its directory. */
  stop(): Promise<void>;
  /** Stops and starts again on the same port. Data is NOT kept (no persistence). */
  restart(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** Sets `--requirepass`. */
  password?: string;
  /** Sets `--maxmemory-policy`. */
  maxmemoryPolicy?: string;
  /** Extra command-line arguments, appended last (so they win). */
  args?: string[];
  /**
   * Runs a Redis Sentinel instead, monitoring the primary on `port` under `name` (quorum 1, down after 1 s), from a
   * sentinel.conf in its directory (Sentinel rewrites its configuration file, so it needs one).
   */
  sentinelOf?: { port: number; name: string };
}

const HOST = '127.0.0.1';
const START_ATTEMPTS = 5;
const READY_TIMEOUT_MS = 15_000;

/** Path of `redis-server`; throws naming the package to install. */
export function findRedisServer(): string {
  const override = process.env['SLUICE_TEST_REDIS_SERVER'];
  if (override !== undefined && override !== '') return override;
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/bin', '/usr/local/bin', '/usr/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  throw new Error('redis-server not found on PATH or in /usr/bin. Install it, e.g. `apt-get install redis-server`.');
}

// Safety net: kill servers still running when the process ends, and delete their directories.
const children = new Set<ChildProcess>();
const dirsToRemove = new Set<string>();
let exitHookInstalled = false;

function killAllSync(): void {
  for (const child of children) {
    children.delete(child);
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const dir of dirsToRemove) {
    dirsToRemove.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** Resolves once the server answers a RESP PING (any reply, even -NOAUTH, proves it serves). */
function pingOnce(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('*1\r\n$4\r\nPING\r\n'));
    socket.on('data', (data) => done(data.length > 0 && (data[0] === 0x2b /* + */ || data[0] === 0x2d) /* - */));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function startRedisServer(options: StartRedisServerOptions = {}): Promise<RedisTestServer> {
  const binary = findRedisServer();
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-'));
  dirsToRemove.add(dir);
  const logFile = join(dir, 'redis.log');
  let port = 0;
  let child: ChildProcess | undefined;
  let removed = false;

  const launch = async (): Promise<void> => {
    const sentinel = options.sentinelOf;
    const conf = join(dir, 'sentinel.conf');
    if (sentinel !== undefined) {
      writeFileSync(
        conf,
        [`sentinel monitor ${sentinel.name} ${HOST} ${sentinel.port} 1`, `sentinel down-after-milliseconds ${sentinel.name} 1000`, `sentinel failover-timeout ${sentinel.name} 10000`, ''].join('\n'),
      );
    }
    const args = [
      ...(sentinel === undefined ? [] : [conf, '--sentinel']),
      '--port', String(port),
      '--bind', HOST,
      ...(sentinel === undefined ? ['--save', '', '--appendonly', 'no'] : []),
      '--dir', dir,
      '--daemonize', 'no',
      '--logfile', logFile,
      ...(options.password === undefined ? [] : ['--requirepass', options.password]),
      ...(options.maxmemoryPolicy === undefined ? [] : ['--maxmemory-policy', options.maxmemoryPolicy]),
      ...(options.args ?? []),
    ];
    const proc = spawn(binary, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    let spawnError: Error | undefined;
    proc.on('error', (error) => (spawnError = error));
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    child = proc;

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError !== undefined) throw new Error(`cannot run ${binary}: ${spawnError.message}`, { cause: spawnError });
      if (proc.exitCode !== null || proc.signalCode !== null) {
        let log = '';
        try {
          log = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
        } catch {
          // no log yet
        }
        throw new Error(`redis-server exited (code ${String(proc.exitCode)}, signal ${String(proc.signalCode)}) on port ${port}:\n${stderr}${log}`);
      }
      if (await pingOnce(port)) return;
      if (Date.now() > deadline) {
        proc.kill('SIGKILL');
        throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms`);
      }
      await sleep(50);
    }
  };

  const halt = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (proc === undefined) return;
    proc.kill('SIGTERM');
    if (!(await waitForExit(proc, 5000))) {
      proc.kill('SIGKILL');
      await waitForExit(proc, 5000);
    }
    children.delete(proc);
  };

  installExitHook();
  try {
    for (let attempt = 1; ; attempt++) {
      port = await findFreePort();
      try {
        await launch();
        break;
      } catch (error) {
        await halt();
        // Lost the port to another process between probing and binding: try another one.
        if (attempt < START_ATTEMPTS && /address already in use|could not create server tcp/i.test((error as Error).message)) continue;
        throw error;
      }
    }
  } catch (error) {
    dirsToRemove.delete(dir);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const auth = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}@`;
  return {
    host: HOST,
    port,
    url: `redis://${auth}${HOST}:${port}`,
    password: options.password,
    dir,
    async stop(): Promise<void> {
      await halt();
      if (!removed) {
        removed = true;
        dirsToRemove.delete(dir);
        rmSync(dir, { recursive: true, force: true });
      }
    },
    async restart(): Promise<void> {
      if (removed) throw new Error('Redis test server was stopped for good');
      await halt();
      try {
        await launch();
      } catch (error) {
        await halt();
        throw error;
      }
    },
  };
}
