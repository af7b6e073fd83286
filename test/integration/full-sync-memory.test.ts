import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { deleteIndex, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { trackPeakRss } from '../helpers/process-stats.js';
import { sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

// Peak RSS of a full sync must not grow with the table: measured on 10k and 100k roots (not timed).
const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const PEAK_RSS_LIMIT_MB = 250;

let engine: EngineUnderTest;
let work: string;
const databases: TestDatabase[] = [];

beforeAll(async () => {
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-memory-'));
});

afterAll(async () => {
  await engine?.close();
  for (const db of databases) await db.drop();
  rmSync(work, { recursive: true, force: true });
});

async function syncBooks(books: number): Promise<{ peakMb: number; count: number }> {
  const db = await createTestDatabase(`memory_${books}`);
  databases.push(db);
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(books));
  const index = `memory_${books}`;
  const schemaPath = join(work, `${index}.json`);
  writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }))));
  const child = spawn(process.execPath, [BIN, '-c', schemaPath, 'sync', '--once'], {
    env: { PATH: process.env.PATH ?? '', ...sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }) },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const peak = trackPeakRss(child.pid!, 50);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const peakMb = peak.stop() / 1024;
  expect(code).toBe(0);
  await request(`${engine.url}/${index}/_refresh`, { method: 'POST' }).then((r) => r.body.dump());
  const count = (await (await request(`${engine.url}/${index}/_count`)).body.json()) as { count: number };
  await deleteIndex(engine.url, index);
  return { peakMb, count: count.count };
}

describe('full sync memory', () => {
  it('stays bounded from 10k to 100k roots', async () => {
    const small = await syncBooks(10_000);
    const large = await syncBooks(100_000);
    console.log(`peak RSS: 10k roots ${small.peakMb.toFixed(0)} MB, 100k roots ${large.peakMb.toFixed(0)} MB`);
    expect(small.count).toBe(10_000);
    expect(large.count).toBe(100_000);
    expect(large.peakMb).toBeLessThan(PEAK_RSS_LIMIT_MB);
    // Ten times the rows may not cost more than a third more memory (chunks, not tables, are held).
    expect(large.peakMb).toBeLessThan(small.peakMb * 1.33);
  });
});
