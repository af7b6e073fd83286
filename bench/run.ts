// `npm run bench [-- --scale N]`: full sync of the book fixture at scale into the Elasticsearch-compatible test
// server, against the machine's ceiling measured in the same run (the same document query COPY'd to /dev/null
// by psql). Prints one table; record results in docs/benchmarks.md.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bookScaleSql } from '../test/fixtures/book-scale.js';
import { compileAgainst, fixtureSchema, fixtureSql } from '../test/helpers/fixtures.js';
import { startPostgresCluster } from '../test/helpers/postgres-cluster.js';
import { buildDocumentQuery } from '../src/transform/document-query.js';
import { trackPeakRss } from '../test/helpers/process-stats.js';
import { CDC_PARTS, runCdcBench, type CdcPart } from './cdc.js';
import { buildSluice, engineNodeArgs, startProcess } from './processes.js';

const { values } = parseArgs({
  options: {
    scale: { type: 'string', default: process.env.BENCH_SCALE ?? '1000000' },
    only: { type: 'string' },
    'cdc-items': { type: 'string', default: '200000' },
    'cdc-backlog': { type: 'string', default: '1000000' },
    'latency-seconds': { type: 'string', default: '20' },
    'cdc-parts': { type: 'string', default: CDC_PARTS.join(',') },
  },
});
const positive = (name: string, text: string | undefined): number => {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${text}`);
  return n;
};
const scale = positive('scale', values.scale);
if (values.only !== undefined && values.only !== 'full' && values.only !== 'cdc') throw new Error('--only must be "full" or "cdc"');
const cdcParts = values['cdc-parts'].split(',').filter((p) => p !== '');
for (const part of cdcParts) if (!(CDC_PARTS as readonly string[]).includes(part)) throw new Error(`--cdc-parts takes a comma-separated list of ${CDC_PARTS.join(', ')}; got "${part}"`);

if (values.only !== 'cdc') await fullSyncBench();
if (values.only !== 'full') {
  const cdc = await runCdcBench({
    items: positive('cdc-items', values['cdc-items']),
    backlogChanges: positive('cdc-backlog', values['cdc-backlog']),
    latencySeconds: positive('latency-seconds', values['latency-seconds']),
    parts: cdcParts as CdcPart[],
    log,
  });
  printTable('Change capture (sluice run), items with an author object', [...cdc.rows, machineRow()]);
}

async function fullSyncBench(): Promise<void> {

const work = mkdtempSync(join(tmpdir(), 'sluice-bench-'));
const cluster = await startPostgresCluster({ settings: { work_mem: '16MB' } });
const cleanups: Array<() => Promise<void> | void> = [() => cluster.stop(), () => rmSync(work, { recursive: true, force: true })];
try {
  const url = await cluster.createDatabase('bench');
  log(`loading ${scale.toLocaleString('en')} books`);
  const loadStarted = Date.now();
  await cluster.psql(fixtureSql('book.sql'), 'bench');
  await cluster.psql(bookScaleSql(scale), 'bench');
  log(`loaded in ${((Date.now() - loadStarted) / 1000).toFixed(1)} s`);

  const schema = fixtureSchema('book.json', 'bench');
  const schemaPath = join(work, 'schema.json');
  writeFileSync(schemaPath, JSON.stringify(schema));
  const { plans } = await compileAgainst(url, schema);
  const query = buildDocumentQuery(plans[0]!, { kind: 'all' });

  log('ceiling: COPY of the document query to /dev/null');
  const ceilingSeconds = await timeCommand(join(cluster.binDir, 'psql'), ['-X', '-q', '-d', url, '-c', `COPY (${query.text}) TO STDOUT`]);

  const engine = await startProcess(process.execPath, [...engineNodeArgs(), '--import', 'tsx', 'test/es-server/main.ts', '--flavor', 'es8', '--port', '0'], /listening on (\S+)/);
  cleanups.unshift(() => engine.stop());
  log('sluice sync --once');
  const started = process.hrtime.bigint();
  const cli = buildSluice();
  const sync = spawn(process.execPath, [cli, '-c', schemaPath, 'sync', '--once'], {
    env: { ...process.env, NODE_ENV: 'production', PG_HOST: cluster.host, PG_PORT: String(cluster.port), PG_USER: 'postgres', SLUICE_HTTP_PORT: '0', SLUICE_HTTP_HOST: '127.0.0.1', ELASTICSEARCH_URL: engine.match[1], CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'warning' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const peak = trackPeakRss(sync.pid!);
  let summary = '';
  sync.stdout.on('data', (chunk: Buffer) => (summary += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => sync.on('exit', resolve));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const peakRssMb = peak.stop() / 1024;
  if (code !== 0) throw new Error(`sluice exited with ${code}:\n${summary}`);
  const stats = (await (await fetch(`${engine.match[1]}/_test/stats`)).json()) as { docs?: Record<string, number> };
  const indexed = stats.docs?.book ?? NaN;

  const rate = scale / seconds;
  const ceiling = scale / ceilingSeconds;
  const rows = [
    ['roots', scale.toLocaleString('en')],
    ['documents in the engine', indexed.toLocaleString('en')],
    ['sluice sync --once', `${seconds.toFixed(1)} s, ${Math.round(rate).toLocaleString('en')} docs/s`],
    ['ceiling (psql COPY to /dev/null)', `${ceilingSeconds.toFixed(1)} s, ${Math.round(ceiling).toLocaleString('en')} docs/s`],
    ['ratio to ceiling (target >= 0.6)', (rate / ceiling).toFixed(2)],
    ['peak RSS of sluice (target <= 300 MB)', `${peakRssMb.toFixed(0)} MB`],
    ['machine', `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, PostgreSQL ${readFileSync(join(cluster.dataDir, 'PG_VERSION'), 'utf8').trim()}`],
  ];
  printTable('Full sync, book schema', rows);
  if (indexed !== scale) process.exitCode = 1;
} finally {
  for (const cleanup of cleanups) await cleanup();
}
}

function printTable(title: string, rows: string[][]): void {
  const width = Math.max(...rows.map((r) => r[0]!.length));
  process.stdout.write(`\n${title} (${new Date().toISOString().slice(0, 10)})\n`);
  for (const [name, value] of rows) process.stdout.write(`  ${name!.padEnd(width)}  ${value}\n`);
}

function machineRow(): string[] {
  return ['machine', `${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`];
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function timeCommand(command: string, args: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  if (code !== 0) throw new Error(`${command} exited with ${code}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}
