// A SQL_ASCII database hands out its bytes unconverted; what is not valid UTF-8 reaches Sluice altered, and a key
// or join value altered that way matches no row. `sluice run` says so at start.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { logLines, startSluice, waitFor, type RunningSluice, stopShowingOutput } from '../helpers/live-sluice.js';
import { runCli, sluiceEnv } from '../helpers/run-cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

let db: TestDatabase;
let engine: EngineUnderTest;
let work: string;
let sluice: RunningSluice | undefined;

beforeAll(async () => {
  db = await createTestDatabase('sql_ascii', `ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`);
  await db.query(`CREATE TABLE shelf (id int PRIMARY KEY, name text); INSERT INTO shelf VALUES (1, 'one')`);
  engine = await engineForTest('es8');
  work = mkdtempSync(join(tmpdir(), 'sluice-encoding-'));
});

afterAll(async () => {
  await stopShowingOutput(sluice);
  await engine?.close();
  await db?.drop();
  rmSync(work, { recursive: true, force: true });
});

describe('a SQL_ASCII database', () => {
  it('gets a warning at start naming the encoding, and is synced all the same', async () => {
    const schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify([{ database: db.name, index: 'ascii_shelf', nodes: { table: 'shelf', columns: ['id', 'name'] } }]));
    const env = sluiceEnv(db.url, engine.url, { CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'info' });
    const bootstrap = await runCli(['-c', schemaPath, 'bootstrap'], env);
    expect(bootstrap.code, bootstrap.stderr).toBe(0);
    const running = startSluice(['-c', schemaPath], env);
    sluice = running;
    const warning = await waitFor('the encoding warning', async () => logLines(running.output()).find((l) => l.encoding === 'SQL_ASCII'));
    expect(warning).toMatchObject({ level: 40, database: db.name, msg: expect.stringContaining('convert the database to UTF8') });
    await waitFor('the snapshot', async () => (logLines(running.output()).some((l) => l.msg === 'snapshot finished; streaming') ? true : undefined));
    expect(await running.stop()).toBe(0);
    sluice = undefined;
  });
});
