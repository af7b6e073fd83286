// CDC benchmark (part of `npm run bench`): root-row change throughput on a 1M-change backlog (with peak RSS),
// child-row changes fanning out to many roots, commit-to-indexed latency at a steady 1,000 tx/s, and one large
// transaction (1M row changes) streamed before its commit. The ceilings are measured in the same run: pg_recvlogical
// decoding the same WAL to /dev/null.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { buildDocumentQuery } from '../src/transform/document-query.js';
import { compileAgainst } from '../test/helpers/fixtures.js';
import { startPostgresCluster, type PostgresCluster } from '../test/helpers/postgres-cluster.js';
import { trackPeakRss } from '../test/helpers/process-stats.js';
import { buildSluice, engineNodeArgs, startProcess } from './processes.js';

const SCHEMA = [
  {
    database: 'cdc',
    index: 'items',
    nodes: {
      table: 'item',
      columns: ['id', 'title', 'price', 'v', 'created_at'],
      children: [{ table: 'author', label: 'author', columns: ['id', 'name', 'country'], relationship: { type: 'one_to_one', variant: 'object' } }],
    },
  },
];

export interface CdcResult {
  rows: Array<[string, string]>;
}

export const CDC_PARTS = ['backlog', 'fanout', 'latency', 'large'] as const;
export type CdcPart = (typeof CDC_PARTS)[number];

export async function runCdcBench(options: {
  items: number;
  backlogChanges: number;
  latencySeconds: number;
  largeTransaction?: number;
  /** The measurements to run (default all); the initial snapshot always runs. */
  parts?: readonly CdcPart[];
  log: (m: string) => void;
}): Promise<CdcResult> {
  const { log } = options;
  const parts = new Set(options.parts ?? CDC_PARTS);
  const rows: Array<[string, string]> = [];
  const work = mkdtempSync(join(tmpdir(), 'sluice-bench-cdc-'));
  const cluster = await startPostgresCluster({ settings: { logical_decoding_work_mem: '256MB' } });
  const cleanups: Array<() => Promise<void> | void> = [() => cluster.stop(), () => rmSync(work, { recursive: true, force: true })];
  try {
    const url = await cluster.createDatabase('cdc');
    const authors = Math.max(1, Math.floor(options.items / 100));
    await cluster.psql(
      `CREATE TABLE author (id int PRIMARY KEY, name text NOT NULL, country text);
       CREATE TABLE item (id bigint PRIMARY KEY, title text, price numeric, v int NOT NULL DEFAULT 0, created_at timestamptz, author_id int REFERENCES author (id));
       CREATE INDEX ON item (author_id);
       INSERT INTO author SELECT i, 'Author ' || i, 'Country ' || (i % 50) FROM generate_series(1, ${authors}) i;
       INSERT INTO item SELECT i, 'Title ' || i, round((random() * 1000)::numeric, 2), 0, now() - i * interval '1 second', 1 + i % ${authors} FROM generate_series(1, ${options.items}) i;
       ANALYZE;`,
      'cdc',
    );
    const schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify(SCHEMA));
    const engine = await startProcess(process.execPath, [...engineNodeArgs(), '--import', 'tsx', 'test/es-server/main.ts', '--flavor', 'es8', '--port', '0'], /listening on (\S+)/);
    cleanups.unshift(() => engine.stop());
    const cli = buildSluice();
    const env = { ...process.env, NODE_ENV: 'production', PG_HOST: cluster.host, PG_PORT: String(cluster.port), PG_USER: 'postgres', SLUICE_HTTP_PORT: '0', SLUICE_HTTP_HOST: '127.0.0.1', ELASTICSEARCH_URL: engine.match[1]!, CHECKPOINT_PATH: work, PGSYNC_LOG_LEVEL: 'info', PGSYNC_FLUSH_INTERVAL: '0.05' };
    await exec(process.execPath, [cli, '-c', schemaPath, 'bootstrap'], env);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    cleanups.unshift(() => client.end());
    const slot = 'cdc_items';

    log('initial snapshot');
    let sluice = startSluice(cli, schemaPath, env);
    await indexed(engine.match[1]!, 'items', options.items);
    await caughtUp(client, slot);
    await sluice.stop();
    const postmaster = Number(readFileSync(join(cluster.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

    if (parts.has('backlog')) {
      log(`root-change backlog: ${options.backlogChanges.toLocaleString('en')} updates in 10-row transactions`);
      await client.query(`SELECT pg_create_logical_replication_slot('ceiling', 'pgoutput')`);
      await backlog(cluster, options.backlogChanges, options.items);
      // The backlog leaves ~1M dead row versions: autovacuum would start on them at some moment of the drain and be
      // counted as Sluice's document queries. Vacuumed now, the drain reads the table as a steady workload leaves it.
      await client.query('VACUUM (ANALYZE) item');
      const end = (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      const ceilingCpu = cpuMeter(postmaster);
      const ceilingSeconds = await timed(() => exec(join(cluster.binDir, 'pg_recvlogical'), ['-d', url, '-S', 'ceiling', '--start', '-E', end, '-f', '/dev/null', '-o', 'proto_version=1', '-o', 'publication_names=sluice', '--no-loop'], env));
      const ceilingWalsender = ceilingCpu.read().walsender;
      await client.query(`SELECT pg_drop_replication_slot('ceiling')`);
      sluice = startSluice(cli, schemaPath, env);
      const peak = trackPeakRss(sluice.child.pid!, 100);
      const cpu = cpuMeter(postmaster, { sluice: sluice.child.pid!, engine: engine.child.pid! });
      const rootSeconds = await timed(() => caughtUp(client, slot, end));
      const used = cpu.read();
      const peakMb = peak.stop() / 1024;
      const applied = appliedChanges(sluice.output());
      await sluice.stop();
      if (applied < options.backlogChanges) process.stderr.write(sluice.output());
      if (applied < options.backlogChanges) throw new Error(`sluice applied ${applied} changes, expected ${options.backlogChanges}`);

      log('document-query ceiling: the same roots, 1,000 per query, one query at a time');
      const documentSeconds = await documentQueryCeiling(client, url, options.backlogChanges, options.items);
      const rootRate = options.backlogChanges / rootSeconds;
      const ceilingRate = options.backlogChanges / ceilingSeconds;
      // Every process of the drain shares this machine's cores: with all of them busy all the time, the drain could
      // take no less than its total CPU divided by the cores. That bounds the ratio whatever Sluice does.
      const drainCpu = used.sluice! + used.engine! + used.walsender + used.postgres;
      const ratioBound = (cpus().length * ceilingSeconds) / drainCpu;
      rows.push(
        ['root changes (backlog)', `${options.backlogChanges.toLocaleString('en')} in ${rootSeconds.toFixed(1)} s, ${Math.round(rootRate).toLocaleString('en')} changes/s`],
        ['ceiling (pg_recvlogical, same WAL)', `${ceilingSeconds.toFixed(1)} s, ${Math.round(ceilingRate).toLocaleString('en')} changes/s; walsender CPU ${ceilingWalsender.toFixed(1)} s`],
        ['ratio to ceiling (target >= 0.7)', (rootRate / ceilingRate).toFixed(2)],
        [
          'ratio bound on this machine (every core busy)',
          `${ratioBound.toFixed(2)}: the drain used ${drainCpu.toFixed(1)} CPU-s in all, ${((100 * drainCpu) / (cpus().length * rootSeconds)).toFixed(0)}% of the cores while it ran`,
        ],
        [
          'ratio bound for Sluice alone (a core of its own)',
          `${(ceilingSeconds / used.sluice!).toFixed(2)}: ceiling seconds / Sluice CPU-s, what Sluice's own work allows when the engine and PostgreSQL run elsewhere`,
        ],
        ['document queries alone, same roots (second ceiling)', `${documentSeconds.toFixed(1)} s, ${Math.round(options.backlogChanges / documentSeconds).toLocaleString('en')} roots/s`],
        ['peak RSS draining the backlog (target <= 300 MB)', `${peakMb.toFixed(0)} MB`],
        [
          'CPU seconds while draining',
          `sluice ${used.sluice!.toFixed(1)} (system ${used.sluiceSystem!.toFixed(1)}), test engine ${used.engine!.toFixed(1)} (system ${used.engineSystem!.toFixed(1)}), walsender ${used.walsender.toFixed(1)}, other PostgreSQL (document queries) ${used.postgres.toFixed(1)}; ${(cpus().length * rootSeconds).toFixed(1)} available`,
        ],
      );
    }

    if (parts.has('fanout')) {
      log(`fan-out: ${authors.toLocaleString('en')} author updates, 100 items each`);
      await client.query(`UPDATE author SET name = name || '.'`);
      const fanEnd = (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      sluice = startSluice(cli, schemaPath, env);
      const fanSeconds = await timed(() => caughtUp(client, slot, fanEnd));
      await sluice.stop();
      rows.push(['fan-out child changes', `${authors.toLocaleString('en')} authors → ${options.items.toLocaleString('en')} documents in ${fanSeconds.toFixed(1)} s, ${Math.round(options.items / fanSeconds).toLocaleString('en')} docs/s`]);
    }

    if (parts.has('latency')) {
      log(`latency: 1,000 tx/s for ${options.latencySeconds} s`);
      sluice = startSluice(cli, schemaPath, env);
      await caughtUp(client, slot);
      // A fresh process's first batches include compiling its code paths and opening connections: a running
      // service is measured, so two seconds of the same load come first.
      await steadyWriter(client, 1000, 2, options.items);
      await caughtUp(client, slot);
      const batchesFrom = sluice.output().length;
      await steadyWriter(client, 1000, options.latencySeconds, options.items);
      const latencyEnd = (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      await caughtUp(client, slot, latencyEnd);
      const latencies = batchLatencies(sluice.output().slice(batchesFrom));
      await sluice.stop();
      rows.push(['commit-to-indexed at 1,000 tx/s (upper bound)', `p50 ${latencies.p50} ms, p99 ${latencies.p99} ms (target p99 <= 200 ms)`]);
    }

    if (parts.has('large')) {
      const largeChanges = options.largeTransaction ?? 1_000_000;
      const passes = Math.ceil(largeChanges / options.items);
      log(`large transaction: ${(passes * options.items).toLocaleString('en')} updates (${passes} × every item) in one transaction`);
      // PostgreSQL's default: a transaction over it spills to disk (protocol 1) or is streamed (protocol 2).
      await client.query(`ALTER SYSTEM SET logical_decoding_work_mem = '64MB'`);
      await client.query('SELECT pg_reload_conf()');
      for (const name of ['ceiling_v1', 'ceiling_v2']) await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [name]);
      await client.query(`BEGIN; ${'UPDATE item SET v = v + 1;'.repeat(passes)} COMMIT;`);
      const largeEnd = (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
      const recvlogical = (name: string, protocol: string[]) =>
        timed(() => exec(join(cluster.binDir, 'pg_recvlogical'), ['-d', url, '-S', name, '--start', '-E', largeEnd, '-f', '/dev/null', ...protocol, '-o', 'publication_names=sluice', '--no-loop'], env));
      const largeCeilingV1 = await recvlogical('ceiling_v1', ['-o', 'proto_version=1']);
      const largeCeiling = await recvlogical('ceiling_v2', ['-o', 'proto_version=2', '-o', 'streaming=on']);
      const streamedTxns = Number((await client.query<{ n: string }>(`SELECT stream_txns AS n FROM pg_stat_replication_slots WHERE slot_name = 'ceiling_v2'`)).rows[0]?.n ?? 0);
      for (const name of ['ceiling_v1', 'ceiling_v2']) await client.query('SELECT pg_drop_replication_slot($1)', [name]);
      sluice = startSluice(cli, schemaPath, env);
      const largePeak = trackPeakRss(sluice.child.pid!, 100);
      const largeSeconds = await timed(() => caughtUp(client, slot, largeEnd));
      const largePeakMb = largePeak.stop() / 1024;
      const sluiceStreamed = Number((await client.query<{ n: string }>(`SELECT stream_txns AS n FROM pg_stat_replication_slots WHERE slot_name = $1`, [slot])).rows[0]?.n ?? 0);
      await sluice.stop();
      const largeTotal = passes * options.items;
      rows.push(
        [
          `one transaction of ${largeTotal.toLocaleString('en')} root changes (streamed, logical_decoding_work_mem 64MB)`,
          `${largeSeconds.toFixed(1)} s to drain (Sluice started after the commit), ${Math.round(largeTotal / largeSeconds).toLocaleString('en')} changes/s, peak RSS ${largePeakMb.toFixed(0)} MB, slot stream_txns ${sluiceStreamed}`,
        ],
        ['ceiling: pg_recvlogical proto_version 2, streaming on', `${largeCeiling.toFixed(1)} s, ${Math.round(largeTotal / largeCeiling).toLocaleString('en')} changes/s (stream_txns ${streamedTxns}); ratio ${(largeCeiling / largeSeconds).toFixed(2)}`],
        ['for comparison: pg_recvlogical proto_version 1 (spills to disk)', `${largeCeilingV1.toFixed(1)} s, ${Math.round(largeTotal / largeCeilingV1).toLocaleString('en')} changes/s`],
      );
    }
    return { rows };
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

function startSluice(cli: string, schemaPath: string, env: NodeJS.ProcessEnv) {
  // BENCH_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the Sluice processes.
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? [];
  const child = spawn(process.execPath, [...nodeArgs, cli, '-c', schemaPath, 'run'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  // BENCH_LOG_DIR keeps each Sluice process's log, named by its pid.
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      if (process.env.BENCH_LOG_DIR) writeFileSync(join(process.env.BENCH_LOG_DIR, `sluice-${child.pid}.log`), output);
      resolve();
    }),
  );
  return {
    child,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits until the engine holds `count` documents in `index` or its generations (`<index>-<fingerprint>`). */
async function indexed(engineUrl: string, index: string, count: number): Promise<void> {
  for (;;) {
    const stats = (await (await fetch(`${engineUrl}/_test/stats`)).json()) as { docs?: Record<string, number> };
    const docs = Object.entries(stats.docs ?? {}).reduce((n, [name, size]) => (name === index || name.startsWith(`${index}-`) ? n + size : n), 0);
    if (docs >= count) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the slot has confirmed `lsn` (default: the current WAL end), i.e. everything before it is indexed. */
async function caughtUp(client: pg.Client, slot: string, lsn?: string): Promise<void> {
  const target = lsn ?? (await client.query<{ lsn: string }>('SELECT pg_current_wal_insert_lsn()::text AS lsn')).rows[0]!.lsn;
  for (;;) {
    const { rows } = await client.query<{ done: boolean }>(`SELECT coalesce(confirmed_flush_lsn >= $2::pg_lsn, false) AS done FROM pg_replication_slots WHERE slot_name = $1`, [slot, target]);
    if (rows[0]?.done) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function backlog(cluster: PostgresCluster, changes: number, items: number): Promise<void> {
  const statements: string[] = [];
  for (let i = 0; i < changes; i += 10) {
    const from = 1 + (i % items);
    statements.push(`UPDATE item SET v = v + 1 WHERE id BETWEEN ${from} AND ${from + 9};`);
  }
  await cluster.psql(statements.join('\n'), 'cdc');
}

/**
 * Seconds PostgreSQL takes to build the documents Sluice rebuilds for the backlog: the same roots (the backlog updates
 * ids 1.. in order, so each 1,000-change batch is 1,000 consecutive ids) with Sluice's own key-list document query,
 * 1,000 roots per query, read by one client with nothing else running. Sluice needs this on top of decoding the
 * stream and writing the engine, so it bounds the change rate whatever the decoding ceiling.
 */
async function documentQueryCeiling(client: pg.Client, url: string, changes: number, items: number): Promise<number> {
  const plan = (await compileAgainst(url, SCHEMA.map((e) => ({ ...e, database: 'cdc' })))).plans[0]!;
  const started = process.hrtime.bigint();
  for (let done = 0; done < changes; done += 1000) {
    const keys: string[][] = [];
    for (let i = done; i < Math.min(changes, done + 1000); i++) keys.push([String(1 + (i % items))]);
    const query = buildDocumentQuery(plan, { kind: 'keys', keys });
    await client.query({ text: query.text, values: query.values, rowMode: 'array' });
  }
  return Number(process.hrtime.bigint() - started) / 1e9;
}

/** Single-row transactions at a steady rate. */
async function steadyWriter(client: pg.Client, perSecond: number, seconds: number, items: number): Promise<void> {
  const started = Date.now();
  for (let i = 0; i < perSecond * seconds; i++) {
    const due = started + (i * 1000) / perSecond;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await client.query('UPDATE item SET v = v + 1 WHERE id = $1', [1 + ((i * 7919) % items)]);
  }
}

/** Per transaction, the time from its batch's oldest commit to the batch being applied: an upper bound of its latency. */
function batchLatencies(log: string): { p50: number; p99: number } {
  const samples: number[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('"changes applied"')) continue;
    const entry = JSON.parse(line) as { time: string; oldestCommitTime?: string; transactions: number };
    if (!entry.oldestCommitTime) continue;
    const latency = Date.parse(entry.time) - Date.parse(entry.oldestCommitTime);
    for (let i = 0; i < entry.transactions; i++) samples.push(latency);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Row changes Sluice reports as applied. */
function appliedChanges(log: string): number {
  let total = 0;
  for (const line of log.split('\n')) if (line.includes('"changes applied"')) total += (JSON.parse(line) as { changes: number }).changes;
  return total;
}

/** User + system (or only system) CPU seconds a process has used so far (Linux /proc, 100 ticks a second); 0 once it is gone. */
function cpuSeconds(pid: number, only?: 'system'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((only === 'system' ? 0 : Number(fields[11])) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds used from now on by the named processes (and as `<name>System` the part spent in the kernel), by
 * PostgreSQL's walsenders and by the rest of PostgreSQL (the postmaster's other children: backends running the
 * document queries, background workers). PostgreSQL's children are sampled every 50 ms, so one that starts and exits
 * in between (pg_recvlogical's walsender) is counted up to its last sample.
 */
function cpuMeter(postmaster: number, named: Record<string, number> = {}): { read(): Record<string, number> & { walsender: number; postgres: number } } {
  const before = new Map<number, number>();
  const systemBefore = new Map<number, number>();
  for (const pid of [...Object.values(named), ...childrenOf(postmaster)]) before.set(pid, cpuSeconds(pid));
  for (const pid of Object.values(named)) systemBefore.set(pid, cpuSeconds(pid, 'system'));
  const latest = new Map<number, { seconds: number; walsender: boolean }>();
  const sample = () => {
    for (const pid of childrenOf(postmaster)) {
      const seconds = cpuSeconds(pid);
      if (seconds > 0) latest.set(pid, { seconds, walsender: latest.get(pid)?.walsender ?? isWalsender(pid) });
    }
  };
  const timer = setInterval(sample, 50);
  return {
    read() {
      clearInterval(timer);
      sample();
      const used: Record<string, number> & { walsender: number; postgres: number } = { walsender: 0, postgres: 0 };
      for (const [name, pid] of Object.entries(named)) {
        used[name] = cpuSeconds(pid) - (before.get(pid) ?? 0);
        used[`${name}System`] = cpuSeconds(pid, 'system') - (systemBefore.get(pid) ?? 0);
      }
      for (const [pid, { seconds, walsender }] of latest) {
        if (walsender) used.walsender += seconds - (before.get(pid) ?? 0);
        else used.postgres += seconds - (before.get(pid) ?? 0);
      }
      return used;
    },
  };
}

/** PostgreSQL titles a walsender's process "postgres: walsender <user> <client> ...". */
function isWalsender(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('walsender');
  } catch {
    return false;
  }
}

/** The processes whose parent is `ppid` (PostgreSQL's backends and walsenders are the postmaster's children). */
function childrenOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === ppid) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return Number(process.hrtime.bigint() - started) / 1e9;
}

function exec(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn(command, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}`)))));
}
