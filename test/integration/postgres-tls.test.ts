// PostgreSQL over TLS, end to end: a dedicated cluster that accepts TCP connections over TLS only (hostssl),
// with a certificate from a test CA. validate, bootstrap, sync --once and run (whose logical replication
// connection must use TLS too) work with PG_SSLMODE=verify-full; a wrong CA, no TLS and a certificate for
// another name fail with errors naming the problem.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allDocuments, engineForTest, type EngineUnderTest } from '../helpers/engine.js';
import { fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { startSluice, waitFor, type RunningSluice } from '../helpers/live-sluice.js';
import { hasOpenssl, makeTestPki, type TestPki } from '../helpers/pki.js';
import { findFreePort, startPostgresCluster, type PostgresCluster } from '../helpers/postgres-cluster.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';

const DATABASE = 'tls_db';
const ROLE = 'sluice_tls';
const PASSWORD = 'pg-Tls-Secr3t-5519';
const INDEX = 'tls_book';
/** Logs in with a client certificate (pg_hba.conf `cert`), no password. */
const CERT_ROLE = 'sluice_cert';

let pki: TestPki;
let cluster: PostgresCluster;
let engine: EngineUnderTest;
let work: string;
let schemaPath: string;
let sluice: RunningSluice | undefined;

/** Settings reaching the cluster by the name on its certificate, with full verification against the test CA. */
function env(extra: Record<string, string> = {}, target: PostgresCluster = cluster): Record<string, string> {
  return {
    PG_HOST: 'localhost',
    PG_PORT: String(target.port),
    PG_USER: ROLE,
    PG_PASSWORD: PASSWORD,
    PG_SSLMODE: 'verify-full',
    PG_SSLROOTCERT: pki.file('ca.crt'),
    ELASTICSEARCH_URL: engine.url,
    CHECKPOINT_PATH: work,
    PGSYNC_LOG_LEVEL: 'warning',
    PGSYNC_FLUSH_INTERVAL: '0.1',
    SLUICE_HTTP_PORT: '0',
    SLUICE_HTTP_HOST: '127.0.0.1',
    ...extra,
  };
}

function expectNoPassword(result: CliResult): void {
  expect(result.stdout.includes(PASSWORD), 'stdout shows PG_PASSWORD').toBe(false);
  expect(result.stderr.includes(PASSWORD), 'stderr shows PG_PASSWORD').toBe(false);
}

/** Creates the role and the book fixture on a cluster (over its Unix socket, which needs no TLS). */
async function loadFixture(target: PostgresCluster): Promise<void> {
  await target.createDatabase(DATABASE);
  await target.psql(`CREATE ROLE ${ROLE} LOGIN REPLICATION SUPERUSER PASSWORD '${PASSWORD}';`);
  await target.psql(`${fixtureSql('book.sql')}${fixtureSql('book-data.sql')}`, DATABASE);
}

describe.runIf(hasOpenssl())('PostgreSQL over TLS (hostssl only)', () => {
  beforeAll(async () => {
    pki = makeTestPki('sluice-pg-tls-');
    pki.ca('ca');
    pki.ca('other-ca');
    pki.leaf('server', { ca: 'ca', commonName: 'localhost', dns: ['localhost'], ips: ['127.0.0.1'] });
    // Client certificates have their own CA: the server would send one it also trusts in its own chain.
    pki.ca('client-ca');
    pki.leaf('client', { ca: 'client-ca', commonName: CERT_ROLE });
    pki.leaf('stranger', { ca: 'other-ca', commonName: CERT_ROLE });
    cluster = await startPostgresCluster({
      authMethod: 'scram-sha-256',
      tls: { certFile: pki.file('server.crt'), keyFile: pki.file('server.key'), clientCaFile: pki.file('client-ca.crt'), certUsers: [CERT_ROLE] },
    });
    await loadFixture(cluster);
    await cluster.psql(`CREATE ROLE ${CERT_ROLE} LOGIN REPLICATION SUPERUSER`);
    engine = await engineForTest('es8');
    work = mkdtempSync(join(tmpdir(), 'sluice-pg-tls-'));
    schemaPath = join(work, 'schema.json');
    writeFileSync(schemaPath, JSON.stringify(fixtureSchema('book.json', DATABASE).map((e) => ({ ...(e as object), index: INDEX }))));
  });

  afterAll(async () => {
    await sluice?.kill();
    await engine?.close();
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
    pki?.remove();
  });

  it('the server refuses TCP connections without TLS (the pg_hba.conf under test is hostssl only)', async () => {
    const hba = await cluster.psql(`SELECT type || ' ' || array_to_string(database, ',') FROM pg_hba_file_rules WHERE type <> 'local' ORDER BY line_number`);
    expect(hba.trim().split('\n')).toEqual(['hostssl all', 'hostssl replication', 'hostssl all', 'hostssl replication']);
    expect((await cluster.psql('SHOW ssl')).trim()).toBe('on');
  });

  it('validate works with verify-full, from PG_SSLMODE/PG_SSLROOTCERT and from PG_URL parameters', async () => {
    const result = await runCli(['-c', schemaPath, 'validate'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`${INDEX}: database ${DATABASE}`);

    const url = `postgresql://${ROLE}:${PASSWORD}@localhost:${cluster.port}/${DATABASE}?sslmode=verify-full&sslrootcert=${encodeURIComponent(pki.file('ca.crt'))}`;
    const { PG_SSLMODE: _mode, PG_SSLROOTCERT: _ca, PG_PASSWORD: _password, ...rest } = env();
    const viaUrl = await runCli(['-c', schemaPath, 'validate'], { ...rest, PG_URL: url });
    expect(viaUrl.stderr).toBe('');
    expect(viaUrl.code).toBe(0);
  });

  it("without PG_SSLMODE (libpq's default, prefer) it uses the TLS the server offers, as PGSync did", async () => {
    const { PG_SSLMODE: _mode, PG_SSLROOTCERT: _ca, ...rest } = env();
    for (const extra of [{}, { PG_SSLMODE: 'prefer' }, { PGSSLMODE: 'prefer' }] as Array<Record<string, string>>) {
      const result = await runCli(['-c', schemaPath, 'validate'], { ...rest, ...extra });
      expect(result.stderr, JSON.stringify(extra)).toBe('');
      expect(result.code).toBe(0);
    }
  });

  it('bootstrap creates the publication and the slot over TLS (replication connection included)', async () => {
    const result = await runCli(['-c', schemaPath, 'bootstrap'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect((await cluster.psql(`SELECT slot_name FROM pg_replication_slots WHERE database = '${DATABASE}'`, DATABASE)).trim()).toBe(`${DATABASE}_${INDEX}`);
    expect((await cluster.psql(`SELECT count(*) FROM pg_publication WHERE pubname = 'sluice'`, DATABASE)).trim()).toBe('1');
  });

  it('sync --once indexes every document over TLS', async () => {
    const result = await runCli(['-c', schemaPath, 'sync', '--once'], env());
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect([...(await allDocuments(engine.url, INDEX)).keys()].sort()).toEqual(['1', '2', '3']);
  });

  it('run streams a new row into the index; its walsender (logical replication) connection is encrypted', async () => {
    sluice = startSluice(['-c', schemaPath], env());
    const walsender = `SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.backend_type = 'walsender' AND a.usename = '${ROLE}'`;
    await waitFor('the replication connection of sluice run', async () => ((await cluster.psql(walsender)).trim() === '' ? undefined : true));
    await cluster.psql(`INSERT INTO book (id, isbn, title, publisher_id) VALUES (4, '004', 'Streamed over TLS', 1)`, DATABASE);
    const doc = await waitFor('the new row in the index', async () => (await allDocuments(engine.url, INDEX)).get('4'));
    expect(doc).toMatchObject({ book_id: 4, book_isbn: 'XX4', book_title: 'Streamed over TLS' });
    // Every connection Sluice holds, the walsender streaming the change included, uses TLS.
    const connections = await cluster.psql(`SELECT a.backend_type || ':' || s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = '${ROLE}' ORDER BY 1`);
    const lines = connections.trim().split('\n');
    expect(lines).toContain('walsender:true');
    expect(lines.filter((line) => !line.endsWith(':true'))).toEqual([]);
    expect(await sluice.stop()).toBe(0);
    expect(sluice.output().includes(PASSWORD)).toBe(false);
    sluice = undefined;
  });

  it('verify-full with another CA fails naming the certificate problem (exit 1), never printing PG_PASSWORD', async () => {
    for (const command of [['validate'], ['sync', '--once']]) {
      const result = await runCli(['-c', schemaPath, ...command], env({ PG_SSLROOTCERT: pki.file('other-ca.crt') }));
      expect(result.code, `${command.join(' ')}: ${result.stderr}`).toBe(1);
      // Node's wording of UNABLE_TO_VERIFY_LEAF_SIGNATURE: the chain does not lead to the CA given.
      expect(result.stderr).toMatch(/^error \[SRC_CONNECT\]: PostgreSQL sluice_tls@localhost:\d+\/tls_db: .* failed: unable to verify the first certificate \(PG_SSLMODE=verify-full: check PG_SSLROOTCERT/);
      expectNoPassword(result);
    }
  });

  it('PG_SSLMODE=disable is rejected by pg_hba.conf, surfaced as such (exit 1)', async () => {
    const result = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'disable', PG_SSLROOTCERT: '' }));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error \[SRC_CONNECT\]: PostgreSQL sluice_tls@localhost:\d+\/tls_db: .* failed: no pg_hba\.conf entry for host "127\.0\.0\.1", user "sluice_tls", database "tls_db", no encryption/);
    expectNoPassword(result);
  });

  it('PG_SSLMODE=disable means no TLS even with PG_SSLROOTCERT set; require with it verifies the CA (as libpq)', async () => {
    // disable with a root certificate once still connected over verified TLS.
    const disabled = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'disable', PG_SSLROOTCERT: pki.file('ca.crt') }));
    expect(disabled.code).toBe(1);
    expect(disabled.stderr).toContain('no encryption');
    const required = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'require', PG_SSLROOTCERT: '' }));
    expect(required.stderr).toBe('');
    expect(required.code).toBe(0);
    const wrongCa = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'require', PG_SSLROOTCERT: pki.file('other-ca.crt') }));
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toMatch(/^error \[SRC_CONNECT\]: .* failed: unable to verify the first certificate/);
  });

  it('logs in with a client certificate (pg_hba.conf cert) from PG_SSLCERT/PG_SSLKEY, libpq\'s PGSSLCERT/PGSSLKEY or PG_URL', async () => {
    const { PG_PASSWORD: _password, ...base } = env({ PG_USER: CERT_ROLE });
    const variants: Array<Record<string, string>> = [
      { PG_SSLCERT: pki.file('client.crt'), PG_SSLKEY: pki.file('client.key') },
      { PGSSLCERT: pki.file('client.crt'), PGSSLKEY: pki.file('client.key'), PG_SSLMODE: 'require' },
      { PG_URL: `postgresql://${CERT_ROLE}@localhost:${cluster.port}/${DATABASE}?sslcert=${encodeURIComponent(pki.file('client.crt'))}&sslkey=${encodeURIComponent(pki.file('client.key'))}` },
    ];
    for (const variant of variants) {
      const result = await runCli(['-c', schemaPath, 'sync', '--once'], { ...base, ...variant });
      expect(result.stderr, JSON.stringify(variant)).toBe('');
      expect(result.code).toBe(0);
    }
    // Without prefer's probe: the certificate goes on the replication-capable pool's every connection too.
    const { PG_SSLMODE: _mode, PG_SSLROOTCERT: _ca, ...unset } = base;
    const preferred = await runCli(['-c', schemaPath, 'validate'], { ...unset, PG_SSLCERT: pki.file('client.crt'), PG_SSLKEY: pki.file('client.key') });
    expect(preferred.stderr).toBe('');
    expect(preferred.code).toBe(0);
  });

  it('without a client certificate, or with one another CA signed, the cert login fails naming the server\'s reason', async () => {
    const { PG_PASSWORD: _password, ...base } = env({ PG_USER: CERT_ROLE });
    const none = await runCli(['-c', schemaPath, 'validate'], base);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error \[SRC_CONNECT\]: PostgreSQL sluice_cert@localhost:\d+\/tls_db: .*(certificate|password)/);
    const stranger = await runCli(['-c', schemaPath, 'validate'], { ...base, PG_SSLCERT: pki.file('stranger.crt'), PG_SSLKEY: pki.file('stranger.key') });
    expect(stranger.code).toBe(1);
    expect(stranger.stderr).toMatch(/^error \[SRC_CONNECT\]: PostgreSQL sluice_cert@localhost/);
    // Under prefer the plain login that follows is refused too (hostssl only): the error gives the TLS answer as well.
    const { PG_SSLMODE: _mode, PG_SSLROOTCERT: _ca, ...preferring } = base;
    const preferred = await runCli(['-c', schemaPath, 'validate'], { ...preferring, PG_SSLCERT: pki.file('stranger.crt'), PG_SSLKEY: pki.file('stranger.key') });
    expect(preferred.code).toBe(1);
    expect(preferred.stderr).toMatch(/no encryption; over TLS, tried first: .*alert unknown ca/);
  });

  it('prefer does not settle for no TLS when the server merely cannot be reached: the error is the connection\'s', async () => {
    const { PG_SSLMODE: _mode, PG_SSLROOTCERT: _ca, ...preferring } = env();
    const closed = await findFreePort();
    const result = await runCli(['-c', schemaPath, 'validate'], { ...preferring, PG_PORT: String(closed) });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error \[SRC_CONNECT\]: PostgreSQL sluice_tls@localhost:\d+\/tls_db: connecting \(over TLS, as PG_SSLMODE=prefer tries first\) failed: .*ECONNREFUSED/);
  });

  describe('a certificate for another host name', () => {
    let elsewhere: PostgresCluster | undefined;

    beforeAll(async () => {
      pki.leaf('elsewhere', { ca: 'ca', commonName: 'db.elsewhere.test', dns: ['db.elsewhere.test'] });
      elsewhere = await startPostgresCluster({ authMethod: 'scram-sha-256', tls: { certFile: pki.file('elsewhere.crt'), keyFile: pki.file('elsewhere.key') } });
      await loadFixture(elsewhere);
    });

    afterAll(async () => {
      await elsewhere?.stop();
    });

    it('verify-ca accepts it (CA checked, name not); verify-full refuses it naming the mismatch', async () => {
      for (const host of ['127.0.0.1', 'localhost']) {
        const verifyCa = await runCli(['-c', schemaPath, 'validate'], env({ PG_HOST: host, PG_SSLMODE: 'verify-ca' }, elsewhere));
        expect(verifyCa.stderr, host).toBe('');
        expect(verifyCa.code, host).toBe(0);

        const verifyFull = await runCli(['-c', schemaPath, 'validate'], env({ PG_HOST: host }, elsewhere));
        expect(verifyFull.code, host).toBe(1);
        expect(verifyFull.stderr).toMatch(new RegExp(`^error \\[SRC_CONNECT\\]: PostgreSQL sluice_tls@${host.replace(/\./g, '\\.')}:\\d+/tls_db: .* failed: Hostname/IP does not match certificate's altnames`));
        expect(verifyFull.stderr).toContain(host === 'localhost' ? 'DNS:db.elsewhere.test' : 'IP: 127.0.0.1 is not in the cert');
        expectNoPassword(verifyFull);
      }
    });

    it('prefer with a root certificate checks the chain but not the name, as libpq; a chain from another CA means no TLS', async () => {
      const preferred = await runCli(['-c', schemaPath, 'validate'], env({ PG_HOST: '127.0.0.1', PG_SSLMODE: 'prefer' }, elsewhere));
      expect(preferred.stderr).toBe('');
      expect(preferred.code).toBe(0);
      // This cluster takes TLS logins only: going without TLS is refused, and the error tells what TLS answered.
      const otherCa = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'prefer', PG_SSLROOTCERT: pki.file('other-ca.crt') }, elsewhere));
      expect(otherCa.code).toBe(1);
      expect(otherCa.stderr).toMatch(/no encryption; over TLS, tried first: unable to verify the first certificate/);
      expectNoPassword(otherCa);
    });

    it('verify-ca still refuses a certificate from another CA', async () => {
      const result = await runCli(['-c', schemaPath, 'validate'], env({ PG_SSLMODE: 'verify-ca', PG_SSLROOTCERT: pki.file('other-ca.crt') }, elsewhere));
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^error \[SRC_CONNECT\]: .* failed: unable to verify the first certificate/);
      expectNoPassword(result);
    });
  });
});
