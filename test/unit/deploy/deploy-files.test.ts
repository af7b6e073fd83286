// CI checks of the deployment files (there is no Docker engine in CI): Dockerfile, .dockerignore,
// docker-compose.yml, .env.example, config/redis.conf, config/schema.json and deploy/postgres/init.sql.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { LEGACY_VARIABLES, SLUICE_VARIABLES } from '../../../src/config/env-catalog.js';
import { parseSchema } from '../../../src/schema/parse-schema.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const KNOWN = new Set<string>([...SLUICE_VARIABLES, ...LEGACY_VARIABLES]);

type Service = {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, unknown> | string[];
  env_file?: string | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: string | string[] };
  profiles?: string[];
  restart?: string;
};
const composeText = read('docker-compose.yml');
const compose = parseYaml(composeText) as { services: Record<string, Service> };
const service = (name: string): Service => {
  const s = compose.services[name];
  if (s === undefined) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const environmentOf = (s: Service): Record<string, string> => {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((line) => {
      const eq = line.indexOf('=');
      return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
    }));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
};
/** `${NAME}`, `${NAME:-default}`, `$NAME` (but not the `$$` escape) in a compose string. */
const interpolatedNames = (text: string): string[] =>
  [...text.matchAll(/(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))/g)].map((m) => (m[1] ?? m[2])!);

/** `NAME=value` lines of .env.example, commented-out ones (`# NAME=value`) included, with the line above. */
interface EnvLine { name: string; value: string; commented: boolean; comment: string }
const envExample = read('.env.example');
const envLines: EnvLine[] = (() => {
  const lines = envExample.split('\n');
  const out: EnvLine[] = [];
  lines.forEach((line, i) => {
    const m = /^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out.push({ name: m[2]!, value: m[3]!.trim(), commented: m[1] !== undefined, comment: (lines[i - 1] ?? '').trim() });
  });
  return out;
})();

/** Dockerfile instructions (continuations joined, comments dropped), grouped by stage. */
interface Stage { name?: string; base: string; instructions: { op: string; args: string }[] }
const stages: Stage[] = (() => {
  const logical = read('Dockerfile')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const out: Stage[] = [];
  for (const line of logical) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const m = /^(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?/i.exec(args);
      out.push({ base: m?.[1] ?? '', name: m?.[2], instructions: [] });
    } else {
      out.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return out;
})();
const finalStage = stages.at(-1)!;
const copies = (stage: Stage) =>
  stage.instructions
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(/\s+/);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), destination: paths.at(-1)! };
    });

describe('Dockerfile', () => {
  it('is a node:20-bookworm-slim multi-stage build', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.base).toBe('node:20-bookworm-slim');
    const build = stages[0]!.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join(' && ');
    expect(build).toMatch(/npm ci\b/);
    expect(build).toMatch(/npm run build\b/);
    expect(build).toMatch(/npm prune --omit=dev\b/);
  });

  it('copies only paths that exist in the repository or that the build stage produces', () => {
    const outDir = (JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { outDir: string } }).compilerOptions.outDir;
    const produced = new Set([outDir, 'node_modules']); // npm run build, npm ci (pruned)
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!'));
    const stageNames = new Set(stages.map((s) => s.name).filter((n) => n !== undefined));
    let count = 0;
    for (const stage of stages) {
      for (const copy of copies(stage)) {
        for (const source of copy.sources) {
          count++;
          const relative = source.replace(/^\/app\//, '').replace(/^\.\//, '').replace(/\/$/, '');
          if (copy.from === undefined) {
            expect(existsSync(join(ROOT, relative)), `COPY ${source}`).toBe(true);
            expect(ignored, `COPY ${source} is excluded by .dockerignore`).not.toContain(relative);
          } else {
            expect(stageNames, `COPY --from=${copy.from}`).toContain(copy.from);
            expect(produced.has(relative) || existsSync(join(ROOT, relative)), `COPY --from=${copy.from} ${source}`).toBe(true);
          }
        }
      }
    }
    expect(count).toBeGreaterThan(0);
    const runtimeSources = copies(finalStage).flatMap((c) => c.sources.map((s) => s.replace(/^\/app\//, '').replace(/\/$/, '')));
    for (const needed of ['dist', 'bin', 'node_modules', 'package.json']) expect(runtimeSources).toContain(needed);
  });

  it('runs `sluice run` as a non-root user with a health check on /healthz', () => {
    const last = (op: string) => finalStage.instructions.filter((i) => i.op === op).at(-1)?.args;
    const user = last('USER');
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
    expect(last('WORKDIR')).toBe('/app');
    expect(last('CMD')).toBe('["node", "bin/sluice.js", "run"]');
    expect(existsSync(join(ROOT, 'bin/sluice.js'))).toBe(true);
    expect(last('EXPOSE')).toBe('8080');
    const healthcheck = last('HEALTHCHECK');
    expect(healthcheck).toMatch(/CMD \["node", "bin\/healthcheck\.js"\]$/);
    expect(existsSync(join(ROOT, 'bin/healthcheck.js'))).toBe(true);
    const env = finalStage.instructions.filter((i) => i.op === 'ENV').map((i) => i.args);
    expect(env).toContain('NODE_ENV=production');
    expect(env).toContain('CHECKPOINT_PATH=/app/data');
    for (const e of env) expect(KNOWN.has(e.split('=')[0]!) || e.startsWith('NODE_ENV='), e).toBe(true);
  });

  it('.dockerignore keeps local state and credentials out of the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git', '.tmp', 'data', 'logs', 'coverage', '.env']) expect(ignored).toContain(entry);
  });
});

describe('docker-compose.yml', () => {
  it('has the seed stack plus the optional postgres, each with a health check', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['elasticsearch', 'postgres', 'redis', 'sluice']);
    expect(service('elasticsearch').image).toBe('elasticsearch:7.17.15');
    expect(service('redis').image).toBe('redis:7-alpine');
    expect(service('postgres').image).toBe('postgres:16');
    expect(JSON.stringify(service('elasticsearch').healthcheck?.test)).toContain('_cluster/health');
    expect(JSON.stringify(service('redis').healthcheck?.test)).toContain('redis-cli');
    expect(JSON.stringify(service('redis').healthcheck?.test)).toContain('ping');
    expect(JSON.stringify(service('postgres').healthcheck?.test)).toContain('pg_isready');
  });

  it('runs Elasticsearch single-node without security, 1 GB heap, data in ./data/elasticsearch', () => {
    const env = environmentOf(service('elasticsearch'));
    expect(env['discovery.type']).toBe('single-node');
    expect(env['xpack.security.enabled']).toBe('false');
    expect(env.ES_JAVA_OPTS).toBe('-Xms1g -Xmx1g');
    expect(service('elasticsearch').volumes).toContain('./data/elasticsearch:/usr/share/elasticsearch/data');
    expect(service('elasticsearch').ports?.some((p) => p.endsWith(':9200'))).toBe(true);
  });

  it('starts Redis with config/redis.conf and keeps its data in ./data/redis', () => {
    const redis = service('redis');
    const mount = redis.volumes?.find((v) => v.startsWith('./config/redis.conf:'));
    expect(mount).toBeDefined();
    const inContainer = mount!.split(':')[1]!;
    expect([redis.command].flat().join(' ')).toContain(inContainer);
    expect(redis.volumes).toContain('./data/redis:/data');
  });

  it('wires sluice to the services, the config and the data volumes', () => {
    const sluice = service('sluice');
    expect(sluice.build).toBe('.');
    expect([sluice.env_file].flat()).toContain('.env');
    expect(sluice.restart).toBe('unless-stopped');
    const env = environmentOf(sluice);
    expect(env).toMatchObject({
      ELASTICSEARCH_URL: 'http://elasticsearch:9200',
      REDIS_HOST: 'redis',
      REDIS_CHECKPOINT: 'true',
      SCHEMA: '/app/config/schema.json',
    });
    expect(sluice.volumes).toEqual(expect.arrayContaining(['./config:/app/config:ro', './data/sluice:/app/data', './logs/sluice:/app/logs']));
    expect(sluice.depends_on).toMatchObject({ elasticsearch: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(sluice.ports?.some((p) => p.includes('8080'))).toBe(true);
    // The schema path inside the container is the mounted ./config/schema.json.
    expect(existsSync(join(ROOT, 'config', env.SCHEMA!.replace('/app/config/', '')))).toBe(true);
  });

  it('puts postgres behind the with-postgres profile with logical decoding and the sample init script', () => {
    const postgres = service('postgres');
    expect(postgres.profiles).toEqual(['with-postgres']);
    const command = [postgres.command].flat().join(' ');
    for (const setting of ['wal_level=logical', 'max_replication_slots=', 'max_wal_senders=']) expect(command).toContain(setting);
    const init = postgres.volumes?.find((v) => v.includes('/docker-entrypoint-initdb.d/'));
    expect(init?.split(':')[0]).toBe('./deploy/postgres/init.sql');
    expect(existsSync(join(ROOT, 'deploy/postgres/init.sql'))).toBe(true);
    for (const name of ['elasticsearch', 'redis', 'sluice']) expect(service(name).profiles, name).toBeUndefined();
  });

  it('names only variables Sluice knows, in the sluice service and in ${…} interpolations', () => {
    const names = [...Object.keys(environmentOf(service('sluice'))), ...interpolatedNames(composeText)];
    expect(names.length).toBeGreaterThan(0);
    expect(names.filter((n) => !KNOWN.has(n))).toEqual([]);
  });
});

describe('.env.example', () => {
  it('lists every variable of the seed and the main Sluice settings, each with a comment', () => {
    const names = envLines.map((l) => l.name);
    const seed = ['PG_HOST', 'PG_PORT', 'PG_DATABASE', 'PG_USER', 'PG_PASSWORD', 'ELASTICSEARCH_PORT', 'PGSYNC_LOG_LEVEL', 'PGSYNC_BATCH_SIZE', 'PGSYNC_FLUSH_INTERVAL'];
    const sluice = ['SLUICE_HTTP_PORT', 'SLUICE_CHECKPOINT_STORE', 'SLUICE_DEAD_LETTER_PATH', 'SLUICE_SNAPSHOT_CHUNK_SIZE', 'SLUICE_SNAPSHOT_CONCURRENCY', 'SLUICE_BULK_MAX_BYTES', 'SLUICE_BULK_CONCURRENCY'];
    const commented = ['PG_SSLMODE', 'PG_SSLROOTCERT', 'ELASTICSEARCH_USER', 'ELASTICSEARCH_PASSWORD', 'ELASTICSEARCH_API_KEY', 'ELASTICSEARCH_CA_CERTS', 'ELASTICSEARCH_VERIFY_CERTS', 'ELASTICSEARCH_CLIENT_CERT', 'ELASTICSEARCH_CLIENT_KEY', 'REDIS_AUTH', 'REDIS_USER', 'REDIS_SCHEME'];
    for (const name of [...seed, ...sluice]) expect(envLines.find((l) => l.name === name && !l.commented), name).toBeDefined();
    for (const name of commented) expect(envLines.find((l) => l.name === name && l.commented), name).toBeDefined();
    expect(new Set(names).size).toBe(names.length);
    for (const line of envLines) {
      expect(line.comment, `comment above ${line.name}`).toMatch(/^#\s+\S/);
      expect(line.comment, `comment above ${line.name}`).not.toMatch(/^#\s*[A-Z][A-Z0-9_]*=/);
    }
  });

  it('names only variables Sluice knows', () => {
    expect(envLines.map((l) => l.name).filter((n) => !KNOWN.has(n))).toEqual([]);
  });

  it('holds no real-looking secret: only change-me placeholders', () => {
    const secret = /PASSWORD|_AUTH$|API_KEY|BEARER|_URL$/;
    for (const line of envLines.filter((l) => secret.test(l.name))) {
      expect(line.value, line.name).toBe('change-me');
    }
    for (const line of envLines) {
      // A long run of letters and digits (a token, a base64 key); file paths are split at `/` and `.`.
      for (const part of line.value.split(/[/.]/)) {
        expect(/^[A-Za-z0-9+=_-]{20,}$/.test(part) && /\d/.test(part) && /[A-Za-z]/.test(part), `${line.name} looks like a token`).toBe(false);
      }
      expect(line.value, `${line.name} has credentials in a URL`).not.toMatch(/:\/\/[^/\s]*:[^/\s]*@/);
      expect(line.value, `${line.name} holds a key or certificate`).not.toMatch(/BEGIN [A-Z ]*(KEY|CERTIFICATE)/);
    }
  });
});

describe('config/redis.conf', () => {
  const conf = read('config/redis.conf');
  const directives = conf.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  it('never evicts checkpoints and persists them', () => {
    expect(directives.filter((d) => d.startsWith('maxmemory-policy'))).toEqual(['maxmemory-policy noeviction']);
    expect(directives).toContain('appendonly yes');
    expect(directives).toContain('appendfsync always');
  });
});

describe('sample schema and database', () => {
  const document = JSON.parse(read('config/schema.json')) as unknown;
  const { entries, problems } = parseSchema(document);

  it('config/schema.json parses without problems, for database app', () => {
    expect(problems).toEqual([]);
    expect(entries.map((e) => e.database)).toEqual(['app']);
  });

  it('deploy/postgres/init.sql creates every table of the schema and publishes them for `sluice run`', () => {
    const sql = read('deploy/postgres/init.sql');
    const created = new Set([...sql.matchAll(/CREATE TABLE (\w+)/g)].map((m) => m[1]!));
    const tables = new Set<string>();
    const visit = (node: unknown) => {
      const n = node as { table: string; relationship?: { through_tables?: string[] }; children?: unknown[] };
      tables.add(n.table);
      n.relationship?.through_tables?.forEach((t) => tables.add(t));
      n.children?.forEach(visit);
    };
    (document as { nodes: unknown }[]).forEach((entry) => visit(entry.nodes));
    expect([...tables].filter((t) => !created.has(t))).toEqual([]);
    const publication = /CREATE PUBLICATION sluice FOR TABLE([^;]+);/.exec(sql)?.[1] ?? '';
    const published = new Set(publication.split(',').map((t) => t.trim().replace(/^public\./, '')));
    expect([...tables].filter((t) => !published.has(t))).toEqual([]);
    for (const t of tables) expect(sql).toContain(`ALTER TABLE public.${t} REPLICA IDENTITY FULL;`);
    expect(sql).toMatch(/INSERT INTO book /);
  });
});
