// Runs the real `sluice` executable (bin/sluice.js) as a child process and collects its output.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runCli(args: string[], env: Record<string, string>, options: { cwd?: string; onSpawn?: (child: ChildProcess) => void } = {}): Promise<CliResult> {
  // Only what the test sets, plus PATH/HOME: the developer's own PG_*/ELASTICSEARCH_* must not leak in.
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  options.onSpawn?.(child);
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Settings pointing Sluice at a test database and engine. */
export function sluiceEnv(pgUrl: string, engineUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  const url = new URL(pgUrl);
  return {
    PG_HOST: url.hostname,
    PG_PORT: url.port,
    PG_USER: decodeURIComponent(url.username),
    ...(url.password ? { PG_PASSWORD: decodeURIComponent(url.password) } : {}),
    ELASTICSEARCH_URL: engineUrl,
    PGSYNC_LOG_LEVEL: 'warning',
    // Several Sluice processes run at once in tests: each HTTP server on a free loopback port.
    SLUICE_HTTP_PORT: '0',
    SLUICE_HTTP_HOST: '127.0.0.1',
    // A process restarted after a SIGKILL stands by until its predecessor's ownership lease expires: kept short.
    SLUICE_LEASE_TTL_SECONDS: '3',
    ...extra,
  };
}
