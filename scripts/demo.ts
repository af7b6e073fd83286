// `npm run demo`: Sluice working on this machine with no external services. Starts a throwaway PostgreSQL
// (wal_level=logical) with the book sample, syncs it into ELASTICSEARCH_URL when set or else into the
// project's local test engine, applies a few live changes and shows the documents changing.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startTestEngine } from '../test/es-server/index.js';
import { fixtureSchema, fixtureSql } from '../test/helpers/fixtures.js';
import { startPostgresCluster } from '../test/helpers/postgres-cluster.js';

const INDEX = 'demo_books';
const cleanups: Array<() => Promise<unknown> | unknown> = [];
const say = (text: string) => process.stdout.write(`${text}\n`);

try {
  say('1. Starting a throwaway PostgreSQL with wal_level=logical and the book sample…');
  const cluster = await startPostgresCluster();
  cleanups.push(() => cluster.stop());
  const dbUrl = await cluster.createDatabase('demo');
  await cluster.psql(fixtureSql('book.sql') + fixtureSql('book-data.sql'), 'demo');

  let engineUrl = process.env.ELASTICSEARCH_URL;
  if (engineUrl) say(`2. Using the search engine at ELASTICSEARCH_URL`);
  else {
    const engine = await startTestEngine({ flavor: 'es8' });
    cleanups.push(() => engine.close());
    engineUrl = engine.url;
    say(`2. No ELASTICSEARCH_URL: using the project's local test engine at ${engineUrl}`);
  }

  const work = mkdtempSync(join(tmpdir(), 'sluice-demo-'));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', 'demo').map((e) => ({ ...(e as object), index: INDEX }))));
  const url = new URL(dbUrl);
  const env = { ...process.env, PG_HOST: url.hostname, PG_PORT: url.port, PG_USER: 'postgres', SLUICE_HTTP_PORT: '0', SLUICE_HTTP_HOST: '127.0.0.1', ELASTICSEARCH_URL: engineUrl, CHECKPOINT_PATH: work, PGSYNC_FLUSH_INTERVAL: '0.1', PGSYNC_LOG_LEVEL: 'warning' };

  say('3. sluice bootstrap (publication, REPLICA IDENTITY FULL, replication slot):');
  await sluice(['-c', schemaPath, 'bootstrap'], env);
  say('4. sluice run: snapshot, then streaming changes…');
  const run = spawn(process.execPath, ['bin/sluice.js', '-c', schemaPath, 'run'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise<number | null>((resolve) => run.on('exit', resolve));
  cleanups.unshift(async () => {
    if (run.exitCode === null) run.kill('SIGTERM');
    await exited;
  });

  const book = async (id: string) => {
    const response = await fetch(`${engineUrl}/${INDEX}/_search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: { ids: { values: [id] } } }) });
    const body = (await response.json()) as { hits?: { hits?: Array<{ _source: Record<string, unknown> }> } };
    return body.hits?.hits?.[0]?._source;
  };
  const show = (doc: Record<string, unknown> | undefined) => {
    if (!doc) return say('   (no document)');
    const authors = (doc.authors as Array<{ name: string; city_label?: { name: string } }> | null) ?? [];
    say(`   book ${String(doc.book_id)} "${String(doc.book_title)}" isbn ${String(doc.book_isbn)}, authors: ${authors.map((a) => `${a.name} (${a.city_label?.name ?? '?'})`).join(', ') || 'none'}, languages: ${JSON.stringify(doc.languages)}`);
  };
  const until = async (what: string, check: () => Promise<boolean>) => {
    for (let i = 0; i < 300; i++) {
      if (await check()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what}`);
  };

  await until('the snapshot', async () => (await book('1')) !== undefined);
  say('   after the snapshot:');
  show(await book('1'));

  const db = new pg.Client({ connectionString: dbUrl });
  await db.connect();
  cleanups.unshift(() => db.end());
  say('5. Live changes:');
  say("   UPDATE city SET name = 'Lyon' WHERE id = 1   -- a grandchild three levels down");
  await db.query(`UPDATE city SET name = 'Lyon' WHERE id = 1`);
  await until('the city change', async () => JSON.stringify(await book('1')).includes('Lyon'));
  show(await book('1'));
  say("   INSERT INTO book_language (book_isbn, language_id) VALUES ('001', 3)   -- a row of a join table");
  await db.query(`INSERT INTO book_language (book_isbn, language_id) VALUES ('001', 3)`);
  await until('the new language', async () => JSON.stringify((await book('1'))?.languages).includes('de=DE'));
  show(await book('1'));
  say('   DELETE FROM book WHERE id = 3');
  await db.query(`DELETE FROM book WHERE id = 3`);
  await until('the delete', async () => (await book('3')) === undefined);
  say('   book 3 is gone from the index');

  say('6. Stopping Sluice (SIGTERM: finishes the batch in hand, stores the checkpoint, acknowledges):');
  run.kill('SIGTERM');
  say(`   sluice run exited with code ${String(await exited)}`);
  await sluice(['-c', schemaPath, 'teardown'], env);
  say('Done.');
} finally {
  for (const cleanup of cleanups) await cleanup();
}

function sluice(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(process.execPath, ['bin/sluice.js', ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.on('data', (chunk: Buffer) => process.stdout.write(chunk.toString().replace(/^(?=.)/gm, '   ')));
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sluice ${args.join(' ')} exited with ${code}`)))));
}
