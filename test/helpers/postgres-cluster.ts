// Throwaway PostgreSQL clusters for tests: initdb into a temporary directory, start on a free port on
// 127.0.0.1 with logical replication enabled, and stop (and delete) again. Never touches a system cluster.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type PostgresAuthMethod = 'trust' | 'scram-sha-256';

export interface PostgresCluster {
  host: string;
  port: number;
  /** The cluster's data directory (PGDATA). */
  dataDir: string;
  /** Temporary directory holding `dataDir`, the Unix socket and the server log. */
  baseDir: string;
  /** File the server logs to. */
  logFile: string;
  /** Directory of the PostgreSQL server binaries used. */
  binDir: string;
  authMethod: PostgresAuthMethod;
  /** Always `postgres`. */
  superuser: string;
  /** Always `postgres`; only demanded by the server when `authMethod` is `scram-sha-256`. */
  superuserPassword: string;
  /** `postgres://postgres@127.0.0.1:PORT/DB` (with `:postgres` as password under scram-sha-256). */
  connectionString(database?: string): string;
  /** Creates database `name` (dropping it first if it exists) and returns its connection string. */
  createDatabase(name: string): Promise<string>;
  /** Runs SQL with `psql -X -v ON_ERROR_STOP=1 -At` as the superuser; resolves with stdout, rejects with stderr. */
  psql(sql: string, database?: string): Promise<string>;
  /** Stops the server (`pg_ctl stop -m fast`) and deletes its directory, unless `keepData` (then `start()` can bring it back). */
  stop(options?: { keepData?: boolean }): Promise<void>;
  /** Starts a server stopped with `stop({ keepData: true })`, on the same port. */
  start(): Promise<void>;
  /** Stops (`-m fast`) and starts again: keeps data and port. */
  restart(): Promise<void>;
  /** A cold backup: stops the server, copies its data directory beside it and starts it again. Returns the copy. */
  backup(): Promise<string>;
  /**
   * Restores `backup` as a point-in-time restore does: stops the server, replaces its data directory with the copy,
   * starts it as a standby (it replays the copy's WAL) and promotes it, which starts a new timeline. Everything
   * written after the backup is gone, replication slots included.
   */
  restoreAsNewTimeline(backup: string): Promise<void>;
  /**
   * Restores `backup` as a volume or VM snapshot is restored: stops the server, replaces its data directory with the
   * copy and starts it. The timeline and system identifier stay; everything written after the backup is gone.
   */
  restoreInPlace(backup: string): Promise<void>;
}

export interface StartPostgresClusterOptions {
  /** Authentication for TCP connections from 127.0.0.1 (normal and replication). Default `trust`. */
  authMethod?: PostgresAuthMethod;
  /** Extra postgresql.conf settings; they override the defaults below. */
  settings?: Record<string, string>;
  /** Serve TLS (`ssl = on`) with this certificate; unset: no TLS. */
  tls?: PostgresClusterTls;
}

export interface PostgresClusterTls {
  /** Server certificate and its key (PEM files); copied into the data directory, the key readable by the server only. */
  certFile: string;
  keyFile: string;
  /**
   * Accept TCP connections over TLS only: `hostssl` lines in pg_hba.conf instead of `host` (default true).
   * `connectionString()` has no sslmode: clients of such a cluster must add their own TLS options.
   */
  required?: boolean;
  /** CA (PEM file) that signs client certificates (`ssl_ca_file`); needed by `certUsers`. */
  clientCaFile?: string;
  /** Roles that log in over TCP with a client certificate (`cert` in pg_hba.conf, CN = role name) instead of `authMethod`. */
  certUsers?: string[];
}

const HOST = '127.0.0.1';
const SUPERUSER = 'postgres';
const SUPERUSER_PASSWORD = 'postgres';
const START_ATTEMPTS = 5;

interface RunAs {
  uid: number;
  gid: number;
}

interface RunningCluster {
  binDir: string;
  dataDir: string;
  baseDir: string;
  runAs: RunAs | undefined;
  /** Still to delete at exit (false once a test asked to keep the data). */
  removeAtExit: boolean;
}

// ---------------------------------------------------------------------------------------------
// Finding binaries

/** Directory of the PostgreSQL server binaries (the one holding `initdb`). Throws naming the package to install. */
export function findPostgresBinDir(): string {
  const override = process.env['SLUICE_TEST_PG_BINDIR'];
  if (override !== undefined && override !== '') {
    if (existsSync(join(override, 'initdb'))) return override;
    throw new Error(`SLUICE_TEST_PG_BINDIR=${override} holds no initdb`);
  }
  try {
    const bindir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    if (bindir !== '' && existsSync(join(bindir, 'initdb'))) return bindir;
  } catch {
    // pg_config missing or failing: fall through to the Debian layout.
  }
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root);
  } catch {
    versions = [];
  }
  const candidates = versions
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a) || b.localeCompare(a));
  const best = candidates[0];
  if (best !== undefined) return join(root, best, 'bin');
  throw new Error(
    'PostgreSQL server binaries (initdb, pg_ctl, postgres) not found: neither `pg_config --bindir` nor ' +
      '/usr/lib/postgresql/*/bin holds initdb. Install them, e.g. `apt-get install postgresql-15`.',
  );
}

// ---------------------------------------------------------------------------------------------
// Processes

let postgresUser: RunAs | undefined;

/** initdb refuses to run as root: then run the server tools as the `postgres` OS user. */
function runAsForServer(): RunAs | undefined {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return undefined;
  if (postgresUser !== undefined) return postgresUser;
  try {
    const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) throw new Error('unparsable id output');
    postgresUser = { uid, gid };
    return postgresUser;
  } catch (error) {
    throw new Error(
      'Running as root, but there is no `postgres` OS user to run initdb/pg_ctl as ' +
        '(it comes with `apt-get install postgresql-15`, or create it with `useradd --system postgres`).',
      { cause: error },
    );
  }
}

/** The environment without PG* variables (they would redirect tools to another server), in the C locale. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('PG')) env[key] = value;
  }
  env['LC_ALL'] = 'C';
  env['LANG'] = 'C';
  return { ...env, ...extra };
}

interface RunOptions {
  runAs?: RunAs | undefined;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string;
}

class CommandError extends Error {
  constructor(
    message: string,
    readonly stdout: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

function run(command: string, args: string[], options: RunOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? cleanEnv(),
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.runAs === undefined ? {} : { uid: options.runAs.uid, gid: options.runAs.gid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => reject(new Error(`cannot run ${command}: ${error.message}`, { cause: error })));
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(stdout);
        return;
      }
      const how = signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
      const output = (stderr.trim() || stdout.trim()).slice(-4000);
      reject(new CommandError(`${command} ${args.join(' ')} failed (${how}): ${output}`, stdout, stderr, code));
    });
    child.stdin.on('error', () => {
      // The process may exit before reading its input; the exit code reports the failure.
    });
    child.stdin.end(options.input ?? '');
  });
}

/** A port free on 127.0.0.1 right now (the OS picks it). */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('could not determine a free port'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Safety net: never leave a server running when the process ends, even after a crash.

const running = new Map<string, RunningCluster>();
let exitHookInstalled = false;

function stopAllSync(): void {
  for (const [dataDir, cluster] of running) {
    running.delete(dataDir);
    spawnSync(join(cluster.binDir, 'pg_ctl'), ['stop', '-D', cluster.dataDir, '-m', 'immediate', '-w', '-t', '30', '-s'], {
      cwd: cluster.baseDir,
      env: cleanEnv(),
      stdio: 'ignore',
      ...(cluster.runAs === undefined ? {} : { uid: cluster.runAs.uid, gid: cluster.runAs.gid }),
    });
    if (cluster.removeAtExit) rmSync(cluster.baseDir, { recursive: true, force: true });
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', stopAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      stopAllSync();
      // Without other listeners, keep the default behaviour: die of the signal.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// The cluster

function quoteConfValue(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function startPostgresCluster(options: StartPostgresClusterOptions = {}): Promise<PostgresCluster> {
  const binDir = findPostgresBinDir();
  const runAs = runAsForServer();
  const authMethod = options.authMethod ?? 'trust';
  const baseDir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const dataDir = join(baseDir, 'data');
  const logFile = join(baseDir, 'postgresql.log');
  const confFile = join(dataDir, 'sluice-test.conf');
  let port = 0;
  let removed = false;

  const removeBaseDir = (): void => {
    if (removed) return;
    removed = true;
    rmSync(baseDir, { recursive: true, force: true });
  };

  // The server runs as `postgres` when we are root: it must own the base dir (socket, log, data).
  chmodSync(baseDir, 0o755);
  if (runAs !== undefined) chownSync(baseDir, runAs.uid, runAs.gid);
  const serverEnv = cleanEnv({ HOME: baseDir });
  const asServer: RunOptions = { runAs, cwd: baseDir, env: serverEnv };

  const writeConf = (): void => {
    const settings: Record<string, string> = {
      listen_addresses: HOST,
      port: String(port),
      unix_socket_directories: baseDir,
      wal_level: 'logical',
      max_replication_slots: '20',
      max_wal_senders: '20',
      fsync: 'off',
      synchronous_commit: 'off',
      // With synchronous_commit=off, logical decoding waits for the WAL writer's flush: keep that short.
      wal_writer_delay: '10ms',
      full_page_writes: 'off',
      shared_buffers: '256MB',
      max_connections: '200',
      logging_collector: 'off',
      log_line_prefix: '%m [%p] %q%u@%d ',
      log_timezone: 'UTC',
      timezone: 'UTC',
      // Relative to the data directory, where the certificate and key were copied.
      ...(options.tls === undefined ? {} : { ssl: 'on', ssl_cert_file: 'server.crt', ssl_key_file: 'server.key' }),
      ...(options.tls?.clientCaFile === undefined ? {} : { ssl_ca_file: 'client-ca.crt' }),
      ...options.settings,
    };
    const body = Object.entries(settings)
      .map(([key, value]) => `${key} = ${quoteConfValue(value)}`)
      .join('\n');
    writeFileSync(confFile, `# Written by test/helpers/postgres-cluster.ts\n${body}\n`);
    if (runAs !== undefined) chownSync(confFile, runAs.uid, runAs.gid);
  };

  const pgCtlStart = async (): Promise<void> => {
    await run(join(binDir, 'pg_ctl'), ['start', '-D', dataDir, '-l', logFile, '-w', '-t', '60', '-s'], asServer);
    running.set(dataDir, { binDir, dataDir, baseDir, runAs, removeAtExit: true });
  };

  const pgCtlStop = async (mode: 'fast' | 'immediate'): Promise<void> => {
    await run(join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', mode, '-w', '-t', '60', '-s'], asServer);
  };

  installExitHook();
  try {
    const pwFile = join(baseDir, 'pwfile');
    writeFileSync(pwFile, `${SUPERUSER_PASSWORD}\n`, { mode: 0o600 });
    if (runAs !== undefined) chownSync(pwFile, runAs.uid, runAs.gid);
    await run(
      join(binDir, 'initdb'),
      ['-D', dataDir, '--no-sync', '-A', 'trust', '-E', 'UTF8', '--no-locale', '-U', SUPERUSER, `--pwfile=${pwFile}`],
      asServer,
    );
    rmSync(pwFile, { force: true });

    if (options.tls !== undefined) {
      const files: Array<readonly [string, string, number]> = [[options.tls.certFile, 'server.crt', 0o644], [options.tls.keyFile, 'server.key', 0o600]];
      if (options.tls.clientCaFile !== undefined) files.push([options.tls.clientCaFile, 'client-ca.crt', 0o644]);
      for (const [from, to, mode] of files) {
        const target = join(dataDir, to);
        copyFileSync(from, target);
        chmodSync(target, mode);
        if (runAs !== undefined) chownSync(target, runAs.uid, runAs.gid);
      }
    }
    // `replication` matches physical replication only; logical replication connections match their database (`all`).
    const tcp = options.tls !== undefined && options.tls.required !== false ? 'hostssl' : 'host   ';
    const hbaFile = join(dataDir, 'pg_hba.conf');
    writeFileSync(
      hbaFile,
      [
        '# Written by test/helpers/postgres-cluster.ts',
        '# TYPE  DATABASE     USER  ADDRESS       METHOD',
        'local   all          all                 trust',
        'local   replication  all                 trust',
        ...(options.tls?.certUsers ?? []).flatMap((user) => [
          `hostssl all          ${user}  127.0.0.1/32  cert`,
          `hostssl replication  ${user}  127.0.0.1/32  cert`,
        ]),
        `${tcp} all          all   127.0.0.1/32  ${authMethod}`,
        `${tcp} replication  all   127.0.0.1/32  ${authMethod}`,
        '',
      ].join('\n'),
    );
    if (runAs !== undefined) chownSync(hbaFile, runAs.uid, runAs.gid);
    appendFileSync(join(dataDir, 'postgresql.conf'), "\ninclude 'sluice-test.conf'\n");

    // Another process may grab the port between probing and binding: then retry on a new one.
    for (let attempt = 1; ; attempt++) {
      port = await findFreePort();
      writeConf();
      try {
        await pgCtlStart();
        break;
      } catch (error) {
        const log = tail(logFile);
        if (attempt < START_ATTEMPTS && /could not (bind|create listen)|already in use/i.test(log)) continue;
        throw new Error(`PostgreSQL did not start (port ${port}): ${(error as Error).message}\nServer log ${logFile}:\n${log}`, {
          cause: error,
        });
      }
    }
  } catch (error) {
    if (running.has(dataDir)) {
      running.delete(dataDir);
      await pgCtlStop('immediate').catch(() => undefined);
    }
    removeBaseDir();
    throw error;
  }

  const connectionString = (database = 'postgres'): string => {
    const auth = authMethod === 'trust' ? SUPERUSER : `${SUPERUSER}:${encodeURIComponent(SUPERUSER_PASSWORD)}`;
    return `postgres://${auth}@${HOST}:${port}/${encodeURIComponent(database)}`;
  };

  // psql talks over the Unix socket (always trust), so it works whatever the TCP auth method.
  const psql = (sql: string, database = 'postgres'): Promise<string> =>
    run(
      existsSync(join(binDir, 'psql')) ? join(binDir, 'psql') : 'psql',
      ['-X', '-v', 'ON_ERROR_STOP=1', '-At', '-q', '-h', baseDir, '-p', String(port), '-U', SUPERUSER, '-d', database, '-f', '-'],
      { env: cleanEnv({ PGCONNECT_TIMEOUT: '10' }), input: sql },
    );

  const stop = async (stopOptions: { keepData?: boolean } = {}): Promise<void> => {
    if (removed) return;
    if (running.has(dataDir)) {
      running.delete(dataDir);
      try {
        await pgCtlStop('fast');
      } catch {
        await pgCtlStop('immediate').catch(() => undefined);
      }
    }
    if (stopOptions.keepData !== true) removeBaseDir();
  };

  const start = async (): Promise<void> => {
    if (removed) throw new Error(`PostgreSQL cluster ${dataDir} was stopped for good (stop() without keepData)`);
    if (running.has(dataDir)) return;
    try {
      await pgCtlStart();
    } catch (error) {
      throw new Error(`PostgreSQL did not start again (port ${port}): ${(error as Error).message}\nServer log ${logFile}:\n${tail(logFile)}`, {
        cause: error,
      });
    }
  };

  return {
    host: HOST,
    port,
    dataDir,
    baseDir,
    logFile,
    binDir,
    authMethod,
    superuser: SUPERUSER,
    superuserPassword: SUPERUSER_PASSWORD,
    connectionString,
    psql,
    async createDatabase(name: string): Promise<string> {
      // Replication slots pin a database: drop them (ending their walsenders) before the database.
      const literal = `'${name.replace(/'/g, "''")}'`;
      await psql(
        `SELECT count(pg_terminate_backend(active_pid, 10000)) FROM pg_replication_slots WHERE database = ${literal} AND active_pid IS NOT NULL;\n` +
          `SELECT count(pg_drop_replication_slot(slot_name)) FROM pg_replication_slots WHERE database = ${literal} AND NOT active;\n`,
      );
      await psql(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE);`);
      await psql(`CREATE DATABASE ${quoteIdent(name)};`);
      return connectionString(name);
    },
    stop,
    start,
    async restart(): Promise<void> {
      await stop({ keepData: true });
      await start();
    },
    async backup(): Promise<string> {
      await stop({ keepData: true });
      const copy = join(baseDir, `backup-${Date.now()}`);
      // cp -a keeps the owner and modes the server insists on.
      execFileSync('cp', ['-a', dataDir, copy]);
      await start();
      return copy;
    },
    async restoreInPlace(backup: string): Promise<void> {
      await stop({ keepData: true });
      rmSync(dataDir, { recursive: true, force: true });
      execFileSync('cp', ['-a', backup, dataDir]);
      await start();
    },
    async restoreAsNewTimeline(backup: string): Promise<void> {
      await stop({ keepData: true });
      rmSync(dataDir, { recursive: true, force: true });
      execFileSync('cp', ['-a', backup, dataDir]);
      const signal = join(dataDir, 'standby.signal');
      writeFileSync(signal, '');
      if (runAs !== undefined) chownSync(signal, runAs.uid, runAs.gid);
      await start();
      await run(join(binDir, 'pg_ctl'), ['promote', '-D', dataDir, '-w', '-t', '60', '-s'], asServer);
    },
  };
}
