import { describe, expect, it } from 'vitest';
import { parseEnvironment } from '../../../src/config/env.js';
import { collectSecrets } from '../../../src/config/redact.js';

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const ENCRYPTED_KEY_PEM = '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIE\n-----END ENCRYPTED PRIVATE KEY-----\n';

function readerOf(files: Record<string, string>): (path: string) => string {
  return (path) => {
    const contents = files[path];
    if (contents === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return contents;
  };
}
const parse = (env: Record<string, string>, files: Record<string, string> = {}) =>
  parseEnvironment(env, {}, { readFile: readerOf(files) });

describe('parseEnvironment: PostgreSQL', () => {
  it("takes libpq's PGSSLMODE and PGSSLROOTCERT after PG_SSLMODE and PG_SSLROOTCERT", () => {
    const fromLibpq = parse({ PG_USER: 'u', PGSSLMODE: 'verify-full', PGSSLROOTCERT: 'ca.pem' }, { 'ca.pem': CA_PEM });
    expect(fromLibpq.config?.postgres).toMatchObject({ sslMode: 'verify-full', sslRootCert: CA_PEM });
    const ours = parse({ PG_USER: 'u', PG_SSLMODE: 'require', PGSSLMODE: 'disable' });
    expect(ours.config?.postgres.sslMode).toBe('require');
  });

  it('refuses verify-ca without a root certificate, which would accept any publicly signed certificate', () => {
    for (const env of [{ PG_SSLMODE: 'verify-ca' }, { PGSSLMODE: 'verify-ca' }] as Record<string, string>[]) {
      const result = parse({ PG_USER: 'u', ...env });
      expect(result.config).toBeUndefined();
      expect(result.problems).toContainEqual(expect.objectContaining({ location: Object.keys(env)[0], severity: 'error', message: expect.stringMatching(/verify-ca needs PG_SSLROOTCERT/) }));
    }
    expect(parse({ PG_USER: 'u', PG_SSLMODE: 'verify-ca', PG_SSLROOTCERT: 'ca.pem' }, { 'ca.pem': CA_PEM }).config).toBeDefined();
  });

  it('reads a client certificate and its key together, from PG_URL, PG_SSLCERT/PG_SSLKEY or PGSSLCERT/PGSSLKEY', () => {
    const files = { 'c.pem': CA_PEM, 'k.pem': KEY_PEM, 'enc.pem': ENCRYPTED_KEY_PEM };
    for (const env of [
      { PG_SSLCERT: 'c.pem', PG_SSLKEY: 'k.pem' },
      { PGSSLCERT: 'c.pem', PGSSLKEY: 'k.pem' },
      { PG_URL: 'postgresql://u@db/app?sslcert=c.pem&sslkey=k.pem' },
    ] as Record<string, string>[]) {
      const result = parse({ PG_USER: 'u', ...env }, files);
      expect(result.problems, JSON.stringify(env)).toEqual([]);
      expect(result.config?.postgres).toMatchObject({ sslCert: CA_PEM, sslKey: KEY_PEM });
    }
    expect(parse({ PG_USER: 'u', PG_SSLCERT: 'c.pem' }, files).problems).toEqual([
      { location: 'PG_SSLKEY', severity: 'error', message: 'required because PG_SSLCERT gives the other half: a client certificate needs its key' },
    ]);
    expect(parse({ PG_USER: 'u', PG_SSLCERT: 'c.pem', PG_SSLKEY: 'enc.pem' }, files).problems).toEqual([
      { location: 'PG_SSLKEY', severity: 'error', message: expect.stringContaining('encrypted private key') },
    ]);
    const disabled = parse({ PG_USER: 'u', PG_SSLMODE: 'disable', PG_SSLCERT: 'c.pem', PG_SSLKEY: 'k.pem' }, files);
    expect(disabled.config?.postgres.sslCert).toBeUndefined();
    expect(disabled.problems).toEqual([{ location: 'PG_SSLCERT', severity: 'warning', message: expect.stringContaining('disable') }]);
  });

  it('warns about a misspelled PG_, ELASTICSEARCH_ or REDIS_ variable, and is silent about others under those prefixes', () => {
    const result = parse({ PG_USER: 'u', PG_SSL_MODE: 'verify-full', REDIS_AUHT: 'x', PG_MAJOR: '15' });
    const warned = result.problems.filter((p) => p.severity === 'warning').map((p) => `${p.location}: ${p.message}`);
    expect(warned).toContain('PG_SSL_MODE: unknown setting, not used; did you mean PG_SSLMODE?');
    expect(warned).toContain('REDIS_AUHT: unknown setting, not used; did you mean REDIS_AUTH?');
    expect(warned.some((w) => w.startsWith('PG_MAJOR'))).toBe(false);
  });

  it('lets PG_URL parts override PG_* variables, warning where they disagree', () => {
    const result = parse({
      PG_URL: 'postgresql://sync:p%40ss@db.internal:6543/app?sslmode=require',
      PG_HOST: 'other-host',
      PG_PORT: '6543',
      PG_USER: 'someone',
      PG_PASSWORD: 'old',
      PG_SSLMODE: 'disable',
    });
    expect(result.config?.postgres).toEqual({
      host: 'db.internal',
      port: 6543,
      user: 'sync',
      password: 'p@ss',
      database: 'app',
      sslMode: 'require',
    });
    expect(result.problems.map((p) => [p.location, p.severity])).toEqual([
      ['PG_HOST', 'warning'],
      ['PG_USER', 'warning'],
      ['PG_PASSWORD', 'warning'],
      ['PG_SSLMODE', 'warning'],
    ]);
  });

  it('accepts postgres://, takes the parts PG_URL lacks from PG_* and defaults', () => {
    const config = parse({ PG_URL: 'postgres://sync@[::1]', PG_PASSWORD: 'pw', PG_DATABASE: 'app' }).config;
    expect(config?.postgres).toEqual({ host: '::1', port: 5432, user: 'sync', password: 'pw', database: 'app' });
  });

  it("reads libpq's host and port parameters, so a URL without a host can name a socket directory (Cloud SQL)", () => {
    expect(parse({ PG_URL: 'postgresql://sync:pw@/app?host=/cloudsql/proj:region:inst' }).config?.postgres).toMatchObject({ host: '/cloudsql/proj:region:inst', user: 'sync', password: 'pw', database: 'app' });
    expect(parse({ PG_URL: 'postgresql:///app?host=/var/run/postgresql&port=5433', PG_USER: 'u' }).config?.postgres).toMatchObject({ host: '/var/run/postgresql', port: 5433, database: 'app' });
    // The parameters win over the URL's own host and port, as in libpq; without any host, PG_HOST or localhost.
    expect(parse({ PG_URL: 'postgresql://u@h:5433/db?host=other&port=6000' }).config?.postgres).toMatchObject({ host: 'other', port: 6000 });
    expect(parse({ PG_URL: 'postgresql:///db', PG_USER: 'u', PG_HOST: '/tmp' }).config?.postgres?.host).toBe('/tmp');
    for (const [env, at] of [[{ PG_HOST: 'pg1,pg2', PG_USER: 'u' }, 'PG_HOST'], [{ PG_URL: 'postgresql://u@pg1,pg2/db' }, 'PG_URL']] as const) {
      expect(parse(env).problems, at).toEqual([{ location: at, severity: 'error', message: expect.stringContaining('names several hosts') }]);
    }
    expect(parse({ PG_URL: 'postgresql://u:secret-pw@h:99999/db' }).problems).toEqual([{ location: 'PG_URL', severity: 'error', message: 'port 99999 is out of range (1 to 65535)' }]);
    for (const bad of ['postgresql://u@h/db?host=a,b', 'postgresql://u@h/db?port=http']) {
      const refused = parse({ PG_URL: bad });
      expect(refused.config, bad).toBeUndefined();
      expect(refused.problems.map((p) => p.location)).toContain('PG_URL');
    }
  });

  it("takes libpq's PGPASSWORD when PG_PASSWORD and PG_URL give none, as a secret", () => {
    const result = parse({ PG_USER: 'u', PGPASSWORD: 'libpq-secret-1' });
    expect(result.problems).toEqual([]);
    expect(result.config?.postgres.password).toBe('libpq-secret-1');
    expect(collectSecrets(result.config!)).toContain('libpq-secret-1');
    expect(parse({ PG_USER: 'u', PG_PASSWORD: 'own', PGPASSWORD: 'libpq-secret-1' }).config?.postgres.password).toBe('own');
    expect(parse({ PG_URL: 'postgresql://u:url-pw@h/db', PGPASSWORD: 'libpq-secret-1' }).config?.postgres.password).toBe('url-pw');
    // Masked in messages like the other secrets (here, a host variable that holds it by mistake).
    expect(JSON.stringify(parse({ PG_USER: 'u', PGPASSWORD: 'libpq-secret-1', PG_HOST: 'http://libpq-secret-1@h' }).problems)).not.toContain('libpq-secret-1');
  });

  it('does not require PG_USER when PG_URL has a user, and does otherwise', () => {
    expect(parse({ PG_URL: 'postgresql://u@h/db' }).problems).toEqual([]);
    expect(parse({ PG_URL: 'postgresql://h/db' }).problems).toEqual([
      { location: 'PG_USER', severity: 'error', message: 'required: set PG_USER, or give the user in PG_URL' },
    ]);
  });

  it('rejects other schemes and unparseable URLs', () => {
    expect(parse({ PG_URL: 'mysql://u@h/db' }).problems).toEqual([
      { location: 'PG_URL', severity: 'error', message: expect.stringContaining('postgresql://') },
    ]);
    expect(parse({ PG_URL: 'not a url' }).problems.map((p) => p.location)).toEqual(['PG_URL']);
    expect(parse({ PG_URL: 'postgresql://u@h/db?sslmode=bogus' }).problems.map((p) => p.location)).toEqual(['PG_URL']);
  });

  it('reads PG_SSLROOTCERT through the injected reader and names the variable when the file is missing', () => {
    const ok = parse({ PG_USER: 'a', PG_SSLMODE: 'verify-full', PG_SSLROOTCERT: '/certs/ca.pem' }, { '/certs/ca.pem': CA_PEM });
    expect(ok.config?.postgres.sslRootCert).toBe(CA_PEM);
    expect(ok.config?.postgres.sslMode).toBe('verify-full');
    expect(parse({ PG_USER: 'a', PG_SSLROOTCERT: '/nope.pem' }).problems).toEqual([
      { location: 'PG_SSLROOTCERT', severity: 'error', message: 'cannot read file "/nope.pem": no such file' },
    ]);
    expect(parse({ PG_USER: 'a', PG_SSLROOTCERT: '/x.txt' }, { '/x.txt': 'hello' }).problems).toEqual([
      { location: 'PG_SSLROOTCERT', severity: 'error', message: expect.stringContaining('PEM certificate') },
    ]);
  });

  it('reads SLUICE_QUERY_PROBE_SECONDS in seconds within 5-3600, unset by default', () => {
    expect(parse({ PG_USER: 'a' }).config?.postgres.queryProbeMs).toBeUndefined();
    expect(parse({ PG_USER: 'a', SLUICE_QUERY_PROBE_SECONDS: '45' }).config?.postgres.queryProbeMs).toBe(45_000);
    for (const bad of ['4', '3601', 'soon']) {
      expect(parse({ PG_USER: 'a', SLUICE_QUERY_PROBE_SECONDS: bad }).problems.map((p) => p.location)).toEqual(['SLUICE_QUERY_PROBE_SECONDS']);
    }
  });

  it('validates PG_WORK_MEM as a PostgreSQL memory size', () => {
    expect(parse({ PG_USER: 'a', PG_WORK_MEM: '16MB' }).config?.postgres.workMem).toBe('16MB');
    expect(parse({ PG_USER: 'a', PG_WORK_MEM: "16MB'; DROP" }).problems.map((p) => p.location)).toEqual(['PG_WORK_MEM']);
  });
});

describe('parseEnvironment: Redis and the checkpoint store', () => {
  it('uses the file store when no Redis is configured', () => {
    const config = parse({ PG_USER: 'a' }).config;
    expect(config?.checkpointStore).toBe('file');
    expect(config?.redis).toBeUndefined();
    expect(parse({ PG_USER: 'a', SLUICE_CHECKPOINT_STORE: 'postgres' }).config?.checkpointStore).toBe('postgres');
  });

  it('uses Redis when REDIS_CHECKPOINT=true, with localhost:6379 defaults', () => {
    const config = parse({ PG_USER: 'a', REDIS_CHECKPOINT: 'true' }).config;
    expect(config?.checkpointStore).toBe('redis');
    expect(config?.redis).toEqual({ url: 'redis://localhost:6379', db: 0 });
  });

  it('uses Redis when REDIS_HOST or REDIS_URL is set, reading every part', () => {
    const fromParts = parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_PORT: '6380', REDIS_DB: '2', REDIS_USER: 'u', REDIS_AUTH: 'pw', REDIS_SCHEME: 'rediss' });
    expect(fromParts.config?.checkpointStore).toBe('redis');
    expect(fromParts.config?.redis).toEqual({
      url: 'rediss://cache:6380',
      db: 2,
      username: 'u',
      password: 'pw',
      tls: { rejectUnauthorized: true },
    });
    const fromUrl = parse({ PG_USER: 'a', REDIS_URL: 'redis://:s%3Acret@cache:6379/3', REDIS_DB: '1' });
    expect(fromUrl.config?.redis).toEqual({ url: 'redis://cache:6379', db: 3, password: 's:cret' });
    expect(fromUrl.problems).toEqual([{ location: 'REDIS_DB', severity: 'warning', message: expect.stringContaining('REDIS_URL') }]);
  });

  it('finds the primary through REDIS_SENTINELS (port 26379 by default) under REDIS_SENTINEL_MASTER, with the Sentinels\' own login', () => {
    const result = parse({ PG_USER: 'a', REDIS_SENTINELS: 's1, s2:26380,[::1]:26381', REDIS_SENTINEL_MASTER: 'checkpoints', REDIS_SENTINEL_USER: 'watcher', REDIS_SENTINEL_PASSWORD: 'sentinel-secret', REDIS_AUTH: 'pw', REDIS_DB: '2' });
    expect(result.problems).toEqual([]);
    expect(result.config?.checkpointStore).toBe('redis');
    expect(result.config?.redis).toEqual({
      url: 'redis://localhost:6379',
      db: 2,
      password: 'pw',
      sentinel: { hosts: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }, { host: '::1', port: 26381 }], name: 'checkpoints', username: 'watcher', password: 'sentinel-secret' },
    });
    expect(parse({ PG_USER: 'a', REDIS_SENTINELS: 's1' }).config?.redis?.sentinel).toEqual({ hosts: [{ host: 's1', port: 26379 }], name: 'mymaster' });
    // The primary's own address is unused then; the Sentinel settings alone are unused without REDIS_SENTINELS.
    const both = parse({ PG_USER: 'a', REDIS_SENTINELS: 's1', REDIS_HOST: 'cache' });
    expect(both.problems).toEqual([{ location: 'REDIS_HOST', severity: 'warning', message: expect.stringContaining('REDIS_SENTINELS finds the primary') }]);
    const alone = parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_SENTINEL_MASTER: 'x' });
    expect(alone.problems).toEqual([{ location: 'REDIS_SENTINEL_MASTER', severity: 'warning', message: expect.stringContaining('REDIS_SENTINELS is not set') }]);
    for (const bad of ['s1,,s2', 's1:http', 'redis://s1:26379', 's1:70000']) {
      const refused = parse({ PG_USER: 'a', REDIS_SENTINELS: bad, REDIS_SENTINEL_PASSWORD: 'sentinel-secret' });
      expect(refused.config, bad).toBeUndefined();
      expect(refused.problems.map((p) => p.location)).toEqual(['REDIS_SENTINELS']);
      expect(JSON.stringify(refused.problems)).not.toContain('sentinel-secret');
    }
  });

  it('waits for REDIS_WAIT_REPLICAS replicas after each write, up to REDIS_WAIT_TIMEOUT_SECONDS (5 s by default)', () => {
    expect(parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_WAIT_REPLICAS: '1' }).config?.redis?.wait).toEqual({ replicas: 1, timeoutMs: 5000 });
    const set = parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_WAIT_REPLICAS: '2', REDIS_WAIT_TIMEOUT_SECONDS: '0.5' });
    expect(set.problems).toEqual([]);
    expect(set.config?.redis?.wait).toEqual({ replicas: 2, timeoutMs: 500 });
    // 0 (the default) is off; a timeout alone is unused.
    for (const env of [{ REDIS_WAIT_REPLICAS: '0' }, {}] as Array<Record<string, string>>) expect(parse({ PG_USER: 'a', REDIS_HOST: 'cache', ...env }).config?.redis).not.toHaveProperty('wait');
    const alone = parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_WAIT_TIMEOUT_SECONDS: '2' });
    expect(alone.problems).toEqual([{ location: 'REDIS_WAIT_TIMEOUT_SECONDS', severity: 'warning', message: expect.stringContaining('REDIS_WAIT_REPLICAS is not set or 0') }]);
    for (const [name, value] of [['REDIS_WAIT_REPLICAS', '-1'], ['REDIS_WAIT_REPLICAS', 'one'], ['REDIS_WAIT_REPLICAS', '101'], ['REDIS_WAIT_TIMEOUT_SECONDS', '60'], ['REDIS_WAIT_TIMEOUT_SECONDS', '0']] as const) {
      const refused = parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_WAIT_REPLICAS: '1', [name]: value });
      expect(refused.config, `${name}=${value}`).toBeUndefined();
      expect(refused.problems.map((p) => [p.location, p.severity])).toEqual([[name, 'error']]);
    }
  });

  it('rejects REDIS_CHECKPOINT=true with another explicit store', () => {
    expect(parse({ PG_USER: 'a', REDIS_CHECKPOINT: 'true', SLUICE_CHECKPOINT_STORE: 'file' }).problems).toEqual([
      { location: 'SLUICE_CHECKPOINT_STORE', severity: 'error', message: expect.stringContaining('contradicts REDIS_CHECKPOINT=true') },
    ]);
    expect(parse({ PG_USER: 'a', REDIS_CHECKPOINT: '1', SLUICE_CHECKPOINT_STORE: 'redis' }).problems).toEqual([]);
  });

  it('lets an explicit store win over a configured Redis, warning that Redis is unused', () => {
    const result = parse({ PG_USER: 'a', REDIS_HOST: 'cache', SLUICE_CHECKPOINT_STORE: 'postgres' });
    expect(result.config?.checkpointStore).toBe('postgres');
    expect(result.problems).toEqual([{ location: 'REDIS_HOST', severity: 'warning', message: expect.stringContaining('unused') }]);
  });

  it('keeps file checkpoints when REDIS_CHECKPOINT=false is explicit', () => {
    expect(parse({ PG_USER: 'a', REDIS_HOST: 'cache', REDIS_CHECKPOINT: 'false' }).config?.checkpointStore).toBe('file');
  });

  it('rejects bad Redis URLs', () => {
    expect(parse({ PG_USER: 'a', REDIS_URL: 'http://cache' }).problems.map((p) => p.location)).toEqual(['REDIS_URL']);
    expect(parse({ PG_USER: 'a', REDIS_URL: 'redis://cache/x' }).problems.map((p) => p.location)).toEqual(['REDIS_URL']);
  });

  it("reads the database from ?db= as PGSync's redis-py does, and names every other parameter as ignored", () => {
    expect(parse({ PG_USER: 'a', REDIS_URL: 'redis://cache:6379?db=4' }).config?.redis).toEqual({ url: 'redis://cache:6379', db: 4 });
    expect(parse({ PG_USER: 'a', REDIS_URL: 'redis://cache:6379/4?db=4' }).config?.redis?.db).toBe(4);
    const twice = parse({ PG_USER: 'a', REDIS_URL: 'redis://cache:6379/4?db=5' });
    expect(twice.config).toBeUndefined();
    expect(twice.problems).toEqual([{ location: 'REDIS_URL', severity: 'error', message: expect.stringContaining('twice') }]);
    expect(parse({ PG_USER: 'a', REDIS_URL: 'redis://cache?db=x' }).problems).toEqual([
      { location: 'REDIS_URL', severity: 'error', message: expect.stringContaining('database number') },
    ]);
    const other = parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache?health_check_interval=10' });
    expect(other.config?.redis?.tls).toEqual({ rejectUnauthorized: true });
    expect(other.problems).toEqual([{ location: 'REDIS_URL', severity: 'warning', message: expect.stringContaining('"health_check_interval" is ignored') }]);
  });

  it("takes redis-py's TLS parameters from REDIS_URL, or REDIS_CA_CERTS / REDIS_CLIENT_CERT / REDIS_CLIENT_KEY", () => {
    const files = { 'ca.pem': CA_PEM, 'c.pem': CA_PEM, 'k.pem': KEY_PEM };
    const fromUrl = parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache?ssl_ca_certs=ca.pem&ssl_certfile=c.pem&ssl_keyfile=k.pem' }, files);
    expect(fromUrl.problems).toEqual([]);
    expect(fromUrl.config?.redis?.tls).toEqual({ rejectUnauthorized: true, ca: CA_PEM, cert: CA_PEM, key: KEY_PEM });
    const fromVariables = parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache', REDIS_CA_CERTS: 'ca.pem', REDIS_CLIENT_CERT: 'c.pem', REDIS_CLIENT_KEY: 'k.pem' }, files);
    expect(fromVariables.config?.redis?.tls).toEqual(fromUrl.config?.redis?.tls);

    const unverified = parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache?ssl_cert_reqs=none' });
    expect(unverified.config?.redis?.tls).toEqual({ rejectUnauthorized: false });
    expect(unverified.problems).toEqual([{ location: 'REDIS_URL', severity: 'warning', message: expect.stringContaining('not verified') }]);
    const anyName = parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache?ssl_check_hostname=false&ssl_cert_reqs=required' });
    expect(anyName.config?.redis?.tls).toEqual({ rejectUnauthorized: true, checkHostname: false });

    expect(parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache?ssl_cert_reqs=maybe' }).problems).toEqual([
      { location: 'REDIS_URL', severity: 'error', message: expect.stringContaining('none, optional or required') },
    ]);
    expect(parse({ PG_USER: 'a', REDIS_URL: 'rediss://cache', REDIS_CLIENT_CERT: 'c.pem' }, files).problems).toEqual([
      { location: 'REDIS_CLIENT_KEY', severity: 'error', message: expect.stringContaining('both the client certificate and its key') },
    ]);
    const plain = parse({ PG_USER: 'a', REDIS_URL: 'redis://cache', REDIS_CA_CERTS: 'ca.pem' }, files);
    expect(plain.config?.redis?.tls).toBeUndefined();
    expect(plain.problems).toEqual([{ location: 'REDIS_CA_CERTS', severity: 'warning', message: expect.stringContaining('not rediss') }]);
  });
});
