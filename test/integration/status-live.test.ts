// `sluice status` against a running `sluice run`: it asks the instance's /status on SLUICE_HTTP_PORT, and once
// the instance is stopped it falls back to the checkpoint store and the slots, and says so.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { expectConverged, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { hasOpenssl, makeTestPki } from '../helpers/pki.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let schemaPath: string;
let plan: EntryPlan;
let env: Record<string, string>;
let port: number;
let sluice: RunningSluice | undefined;
const index = 'live_status_book';

interface StatusIndex {
  index: string;
  phase: string;
  changesApplied: number;
  documentsIndexed: number;
  snapshotDocuments: number;
  lastAppliedLsn?: string;
}

/** A loopback port free right now: `sluice status` finds the instance only on a fixed SLUICE_HTTP_PORT. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function liveStatus(): Promise<StatusIndex | undefined> {
  const response = await fetch(`http://127.0.0.1:${port}/status`);
  if (!response.ok) return undefined;
  return ((await response.json()) as { indexes: StatusIndex[] }).indexes.find((s) => s.index === index);
}

beforeAll(async () => {
  db = await createTestDatabase('status_live');
  await db.query(fixtureSql('book.sql'));
  await db.query(fixtureSql('book-data.sql'));
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-status-live-'));
  const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
  schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  plan = (await compileAgainst(db.url, schema)).plans[0]!;
  port = await freePort();
  env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', SLUICE_HTTP_PORT: String(port) });
});

afterAll(async () => {
  await sluice?.stop();
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('sluice status with a running instance', () => {
  it('prints the instance\'s live /status, then falls back to the stores once it is stopped', async () => {
    expect((await runCli(['-c', schemaPath, 'bootstrap'], env)).code).toBe(0);
    sluice = startSluice(['-c', schemaPath], env);
    await expectConverged(db.url, plan, engine.url);
    await db.query(`UPDATE author SET name = 'Renamed' WHERE id = 1`);
    await expectConverged(db.url, plan, engine.url);
    await waitFor('the instance to report applied changes', async () => {
      const s = await liveStatus();
      return s && s.phase === 'streaming' && s.changesApplied > 0 ? s : undefined;
    });

    const live = await runCli(['-c', schemaPath, 'status'], env);
    expect(live.code, live.stderr).toBe(0);
    expect(live.stdout).not.toContain('no running instance answered');
    const body = JSON.parse(live.stdout) as { indexes: StatusIndex[]; uptimeSeconds: number };
    expect(body.uptimeSeconds).toBeGreaterThan(0);
    const shown = body.indexes.find((s) => s.index === index);
    expect(shown).toMatchObject({ index, phase: 'streaming' });
    expect(shown!.snapshotDocuments).toBeGreaterThan(0);
    expect(shown!.changesApplied).toBeGreaterThan(0);
    expect(shown!.documentsIndexed).toBeGreaterThan(0);
    expect(shown!.lastAppliedLsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);

    expect(await sluice.stop()).toBe(0);
    sluice = undefined;
    const stopped = await runCli(['-c', schemaPath, 'status'], env);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(stopped.stdout).toContain(`no running instance answered on 127.0.0.1:${port} (connect ECONNREFUSED 127.0.0.1:${port}); from the checkpoint store and the replication slots:`);
    expect(stopped.stdout).toMatch(new RegExp(`${index}: streaming; checkpoint lsn [0-9A-F]+/[0-9A-F]+; slot ${db.name}_${index}, retained WAL \\d+ bytes`));
  });
});

describe.runIf(hasOpenssl())('sluice status with SLUICE_HTTP_TOKEN and HTTPS', () => {
  it('reads the live /status over HTTPS with the token; without the token the instance refuses it', async () => {
    const pki = makeTestPki('sluice-status-tls-');
    const token = 'status-token-0123456789abcdef';
    try {
      pki.ca('ca');
      pki.leaf('server', { ca: 'ca', commonName: 'sluice.example', dns: ['sluice.example'] });
      const secured = { ...env, SLUICE_HTTP_TOKEN: token, SLUICE_HTTP_TLS_CERT: pki.file('server.crt'), SLUICE_HTTP_TLS_KEY: pki.file('server.key') };
      sluice = startSluice(['-c', schemaPath], secured);
      await expectConverged(db.url, plan, engine.url);
      // The index converged already (the test before): wait for this instance's HTTPS server to answer.
      await waitFor('the HTTPS server', () =>
        new Promise<true | undefined>((resolve) => {
          httpsGet({ host: '127.0.0.1', port, path: '/healthz', ca: pki.read('ca.crt'), servername: 'sluice.example' }, (res) => {
            res.resume();
            resolve(res.statusCode === 200 ? true : undefined);
          }).on('error', () => resolve(undefined));
        }),
      );

      const live = await runCli(['-c', schemaPath, 'status'], secured);
      expect(live.code, live.stderr).toBe(0);
      expect(live.stdout).not.toContain('no running instance answered');
      expect((JSON.parse(live.stdout) as { indexes: StatusIndex[] }).indexes.map((s) => s.index)).toEqual([index]);
      // The token never shows, neither in the answer nor in the log.
      expect(live.stdout + live.stderr + sluice.output()).not.toContain(token);

      // Without the token (or with the wrong one), the instance refuses: status falls back to the stores.
      for (const other of [{ ...secured, SLUICE_HTTP_TOKEN: 'wrong-token-0123456789abcdef' }, { ...env, SLUICE_HTTP_TLS_CERT: pki.file('server.crt'), SLUICE_HTTP_TLS_KEY: pki.file('server.key') }]) {
        const refused = await runCli(['-c', schemaPath, 'status'], other);
        expect(refused.code, refused.stderr).toBe(0);
        expect(refused.stdout).toContain(`no running instance answered on 127.0.0.1:${port} (it answered 401: SLUICE_HTTP_TOKEN differs from the instance's)`);
        expect(refused.stdout).not.toContain('wrong-token');
      }
      // Another certificate configured than the one the instance serves: nothing is sent to it.
      pki.leaf('other', { ca: 'ca', commonName: 'other.example', dns: ['other.example'] });
      const mismatch = await runCli(['-c', schemaPath, 'status'], { ...secured, SLUICE_HTTP_TLS_CERT: pki.file('other.crt'), SLUICE_HTTP_TLS_KEY: pki.file('other.key') });
      expect(mismatch.stdout).toContain('(it serves another certificate than SLUICE_HTTP_TLS_CERT)');
    } finally {
      expect(await sluice?.stop()).toBe(0);
      sluice = undefined;
      pki.remove();
    }
  });
});
