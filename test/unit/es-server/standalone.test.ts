import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { bulk, call, ndjson } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../es-server/main.ts', import.meta.url));

async function launch(args: string[]): Promise<{ child: ChildProcess; url: string; stdout: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^listening on (\S+)\n/.exec(out);
      if (m) resolve(m[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${err}`)));
  });
  return { child, url, stdout: () => out };
}

describe('standalone server (test/es-server/main.ts)', () => {
  it('prints one ready line, serves the chosen flavour, is driven over HTTP and stops on SIGTERM', async () => {
    const { child, url, stdout } = await launch(['--flavor', 'opensearch2', '--port', '0', '--host', '127.0.0.1']);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const root = await call(url, 'GET', '/');
      expect(root.json.version.distribution).toBe('opensearch');
      expect((await call(url, 'POST', '/_test/faults', { kind: 'status', status: 429, path: '/_bulk$' })).json.pending).toBe(1);
      const body = ndjson({ index: { _index: 'cli', _id: '1' } }, { a: 1 });
      expect((await bulk(url, body)).json.error.type).toBe('rejected_execution_exception');
      expect((await bulk(url, body)).json.errors).toBe(false);
      const stats = await call(url, 'GET', '/_test/stats');
      expect(stats.json).toMatchObject({ flavor: 'opensearch2', docs: { cli: 1 }, requests: { byEndpoint: { 'POST /_bulk': 2 } } });
    } finally {
      child.kill('SIGTERM');
    }
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(code).toBe(0);
    expect(stdout()).toMatch(/^listening on http:\/\/127\.0\.0\.1:\d+\n$/);
  });

  it('exits cleanly on SIGINT and refuses unknown flavours', async () => {
    const { child } = await launch(['--port', '0']);
    child.kill('SIGINT');
    expect((await once(child, 'exit'))[0]).toBe(0);
    const bad = spawn(process.execPath, ['--import', 'tsx', MAIN, '--flavor', 'es6'], { stdio: 'ignore' });
    expect((await once(bad, 'exit'))[0]).toBe(2);
  });
});
