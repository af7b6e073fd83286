import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDocumentQuery } from '../../src/transform/document-query.js';
import { bookScaleSql } from '../fixtures/book-scale.js';
import { deleteIndex, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { trackPeakRss } from '../helpers/process-stats.js';
import { sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

// A full sync holds chunks, not tables: 100k roots (well over 100 MB of document JSON) must sync with the V8
// heap capped far below that size, and the peak RSS (measured, not timed) must stay under the limit.
const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));
const ROOTS = 100_000;
const PEAK_RSS_LIMIT_MB = 250;
const HEAP_LIMIT_MB = 80;

let engine: EngineUnderTest;
let work: string;
let db: TestDatabase;

beforeAll(async () => {
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-memory-'));
  db = await createTestDatabase('memory');
  await db.query(fixtureSql('book.sql'));
  await db.query(bookScaleSql(ROOTS));
});

afterAll(async () => {
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('full sync memory', () => {
  it(`syncs ${ROOTS} roots with a ${HEAP_LIMIT_MB} MB heap and a bounded peak RSS`, async () => {
    const index = 'memory_books';
    const schema = fixtureSchema('book.json', db.name).map((e) => ({ ...(e as object), index }));
    const { plans } = await compileAgainst(db.url, schema);
    const documents = buildDocumentQuery(plans[0]!, { kind: 'all' });
    const { rows } = await db.query<{ mb: number }>(`SELECT sum(octet_length(_source)) / 1048576.0 AS mb FROM (${documents.text}) AS d`);
    const sourceMb = Number(rows[0]!.mb);
    expect(sourceMb).toBeGreaterThan(HEAP_LIMIT_MB);

    const schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify(schema));
    const child = spawn(process.execPath, [BIN, '-c', schemaPath, 'sync', '--once'], {
      env: { PATH: process.env.PATH ?? '', NODE_OPTIONS: `--max-old-space-size=${HEAP_LIMIT_MB}`, ...sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work }) },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const peak = trackPeakRss(child.pid!, 50);
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    const peakMb = peak.stop() / 1024;
    console.log(`${ROOTS} roots, ${sourceMb.toFixed(0)} MB of documents: peak RSS ${peakMb.toFixed(0)} MB with a ${HEAP_LIMIT_MB} MB heap`);
    expect(code).toBe(0);
    await (await request(`${engine.url}/${index}/_refresh`, { method: 'POST' })).body.dump();
    const count = (await (await request(`${engine.url}/${index}/_count`)).body.json()) as { count: number };
    expect(count.count).toBe(ROOTS);
    expect(peakMb).toBeLessThan(PEAK_RSS_LIMIT_MB);
    await deleteIndex(engine.url, index);
  });
});
