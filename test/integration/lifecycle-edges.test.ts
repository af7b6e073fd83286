// Generations at the edges: an alias someone else set up, a live generation that never took the alias before a
// schema change, and the version ceiling the entry keeps after a hand-over. Each scenario has its own database
// and engine; the lifecycle runs in-process where a step must be stopped exactly.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointPosition } from '../../src/pipeline/database-history.js';
import { formatLsn } from '../../src/source/postgres/lsn.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { engineCall, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSql } from '../helpers/fixtures.js';
import { runLifecycle } from '../helpers/lifecycle-harness.js';
import { expectConverged, logLines, startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

interface Scene {
  db: TestDatabase;
  engine: EngineUnderTest;
  env: Record<string, string>;
  work: string;
  sluice?: RunningSluice;
}

let scene: Scene | undefined;

async function setUp(prefix: string, books: number, extraEnv: Record<string, string> = {}): Promise<Scene> {
  const db = await createTestDatabase(prefix);
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(books));
  const engine = await engineForTest('es8');
  const work = mkdtempSync(join(tmpdir(), `sluice-${prefix}-`));
  const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'info', PGSYNC_FLUSH_INTERVAL: '0.1', ...extraEnv });
  scene = { db, engine, env, work };
  return scene;
}

afterEach(async () => {
  const s = scene;
  scene = undefined;
  if (!s) return;
  const code = await s.sluice?.stop();
  if ((code !== undefined && code !== 0) || process.env.SHOW_SLUICE_OUTPUT) console.log(s.sluice?.output());
  await s.engine.close();
  await s.db.drop();
  rmSync(s.work, { recursive: true, force: true });
});

/** Writes a one-entry schema of `book` with these columns and bootstraps it. */
async function bookSchema(s: Scene, index: string, columns: string[]) {
  const schema = [{ database: s.db.name, index, nodes: { table: 'book', columns } }];
  const path = join(s.work, 'schema.json');
  writeFileSync(path, JSON.stringify(schema));
  const bootstrap = await runCli(['-c', path, 'bootstrap'], s.env);
  expect(bootstrap.code, bootstrap.stderr).toBe(0);
  return { path, plan: (await compileAgainst(s.db.url, schema)).plans[0]! };
}

const aliasTargets = async (s: Scene, alias: string): Promise<string[]> => {
  const { status, json } = await engineCall(s.engine.url, 'GET', `/_alias/${alias}`);
  return status === 200 ? Object.keys(json).sort() : [];
};

describe('generations at the edges', () => {
  it('a first start over an alias someone else set up takes the alias, and leaves their index alone', async () => {
    const s = await setUp('foreign_alias', 200, { SLUICE_REINDEX_GRACE_SECONDS: '1' });
    expect((await engineCall(s.engine.url, 'PUT', '/their_books', { aliases: { ext_book: {} } })).status).toBe(200);
    const { path, plan } = await bookSchema(s, 'ext_book', ['id', 'isbn', 'title']);
    const running = startSluice(['-c', path], s.env);
    s.sluice = running;
    await expectConverged(s.db.url, plan, s.engine.url, 60_000);
    await waitFor('the warning about the index Sluice did not create', async () =>
      logLines(running.output()).find((l) => String(l.msg).startsWith('the alias left indices Sluice did not create')),
    );
    // Past the grace period (1 s) and a supervision step: their index is still there.
    await sleep(3_000);
    expect((await engineCall(s.engine.url, 'GET', '/their_books')).status).toBe(200);
    expect((await aliasTargets(s, 'ext_book')).every((i) => i.startsWith('ext_book-'))).toBe(true);
    expect(logLines(running.output()).some((l) => l.msg === 'deleted a previous generation after its grace period' && l.generation === 'their_books')).toBe(false);
  });

  it('a live generation that never took the alias is retired at the hand-over, and deleted after the grace period', async () => {
    const s = await setUp('unserved_live', 500);
    expect((await engineCall(s.engine.url, 'PUT', '/seedx', {})).status).toBe(200);
    const v1 = await bookSchema(s, 'seedx', ['id', 'isbn', 'title']);
    let first: string | undefined;
    // Stopped just before the first generation replaces the seed's concrete index.
    let run = await runLifecycle(v1.path, s.env, {
      beforeSwap: (swap, r) => {
        first = swap.to;
        r.abort();
        throw Object.assign(new Error('stopped before the swap'), { code: 'SNK_UNAVAILABLE' });
      },
    });
    await waitFor('the first swap attempt', async () => first, 60_000);
    await run.done.catch(() => undefined);
    await run.close();

    const v2 = await bookSchema(s, 'seedx', ['id', 'isbn', 'title', 'publisher_id']);
    run = await runLifecycle(v2.path, s.env, {}, 1_000, 10_000);
    try {
      const served = await waitFor('the alias', async () => (await aliasTargets(s, 'seedx'))[0], 60_000);
      expect(served).not.toBe(first);
      await expectConverged(s.db.url, v2.plan, s.engine.url, 60_000);
      await waitFor('the first generation deleted', async () => ((await engineCall(s.engine.url, 'GET', `/${first}`)).status === 404 ? true : undefined), 30_000);
    } finally {
      await run.close();
    }
  });

  it.skipIf(process.env.ELASTICSEARCH_URL)('an alias swap carried out but never answered is found done on the retry, at the first start and at a hand-over', async () => {
    const s = await setUp('swap_unanswered', 300, { SLUICE_REINDEX_GRACE_SECONDS: '1' });
    const faults = s.engine.server!.faults;
    const v1 = await bookSchema(s, 'lost_swap', ['id', 'isbn', 'title']);
    faults.inject({ kind: 'dropAfter', method: 'POST', path: '^/_aliases$' });
    s.sluice = startSluice(['-c', v1.path], s.env);
    await expectConverged(s.db.url, v1.plan, s.engine.url, 60_000);
    expect(faults.pending()).toBe(0);
    const first = await aliasTargets(s, 'lost_swap');
    expect(first).toHaveLength(1);
    expect(await s.sluice.stop()).toBe(0);

    const v2 = await bookSchema(s, 'lost_swap', ['id', 'isbn', 'title', 'publisher_id']);
    faults.inject({ kind: 'truncate', method: 'POST', path: '^/_aliases$' });
    s.sluice = startSluice(['-c', v2.path], s.env);
    const second = await waitFor('the hand-over', async () => {
      const now = await aliasTargets(s, 'lost_swap');
      return now.length === 1 && now[0] !== first[0] ? now[0] : undefined;
    }, 120_000);
    expect(faults.pending()).toBe(0);
    await expectConverged(s.db.url, v2.plan, s.engine.url, 60_000);
    await waitFor('the first generation deleted after the grace period', async () => ((await engineCall(s.engine.url, 'GET', `/${first[0]}`)).status === 404 ? true : undefined), 30_000);
    expect(await aliasTargets(s, 'lost_swap')).toEqual([second]);
  });

  it('after a hand-over under steady writes, the checkpoint covers every version in the new generation', async () => {
    const s = await setUp('handover_ceiling', 500, { PGSYNC_LOG_LEVEL: 'warning' });
    const v1 = await bookSchema(s, 'ceil_book', ['id', 'isbn', 'title']);
    let run = await runLifecycle(v1.path, s.env);
    await expectConverged(s.db.url, v1.plan, s.engine.url, 60_000);
    const first = (await aliasTargets(s, 'ceil_book'))[0]!;
    await run.close();

    const client = new pg.Client({ connectionString: s.db.url });
    await client.connect();
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        await client.query(`UPDATE book SET title = 'w${i}' WHERE id = ${1 + (i % 500)}`);
        await sleep(5);
      }
    })();
    try {
      const v2 = await bookSchema(s, 'ceil_book', ['id', 'isbn', 'title', 'publisher_id']);
      let swappedTo: string | undefined;
      // Stopped right after the swap: nothing after it runs, as with a SIGKILL there.
      run = await runLifecycle(v2.path, s.env, {
        afterSwap: (swap, r) => {
          if (swap.to === first) return;
          swappedTo = swap.to;
          r.abort();
        },
      });
      await waitFor('the hand-over', async () => swappedTo, 120_000);
      await run.done;
      const entry = (await run.store.load(run.name))!;
      await run.close();
      await engineCall(s.engine.url, 'POST', `/${swappedTo}/_refresh`);
      const { json } = await engineCall(s.engine.url, 'POST', `/${swappedTo}/_search`, { size: 10_000, version: true, query: { match_all: {} } });
      const top = (json.hits.hits as Array<{ _version: number | string }>).reduce((max, hit) => (BigInt(hit._version) > max ? BigInt(hit._version) : max), 0n);
      // No document may carry a version past what the checkpoint records (database-history.ts relies on it).
      expect(formatLsn(checkpointPosition(entry) >= top ? top : checkpointPosition(entry))).toBe(formatLsn(top));
    } finally {
      writing = false;
      await writer;
      await client.end();
    }
  });
});
