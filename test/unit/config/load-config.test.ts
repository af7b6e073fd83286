import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load-config.js';
import { InvalidConfigError } from '../../../src/errors/app-error.js';

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

describe('loadConfig', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-config-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads .env from cwd without overriding the real environment', () => {
    writeFileSync(
      join(dir, '.env'),
      ['# seed .env', 'PG_HOST=from-file', 'PG_USER=file-user', 'PG_PASSWORD="quoted pw"', 'PGSYNC_BATCH_SIZE=200', 'export PG_DATABASE=app', ''].join('\n'),
    );
    const env = { PG_USER: 'real-user', PGSYNC_BATCH_SIZE: '' };
    const { config, warnings, env: merged } = loadConfig({ cwd: dir, env });
    expect(config.postgres).toMatchObject({ host: 'from-file', user: 'real-user', password: 'quoted pw', database: 'app' });
    // Set (even empty) in the environment → the .env value is not used; empty means "default".
    expect(config.engine.bulkMaxActions).toBe(1000);
    expect(warnings).toEqual([]);
    expect(env).toEqual({ PG_USER: 'real-user', PGSYNC_BATCH_SIZE: '' });
    expect(merged).toMatchObject({ PG_HOST: 'from-file', PG_USER: 'real-user', PGSYNC_BATCH_SIZE: '' });
  });

  it('works without a .env file and resolves certificate paths against cwd', () => {
    writeFileSync(join(dir, 'ca.pem'), CA_PEM);
    const { config } = loadConfig({ cwd: dir, env: { PG_USER: 'a', PG_SSLROOTCERT: 'ca.pem' }, flags: { config: 's.json' } });
    expect(config.postgres.sslRootCert).toBe(CA_PEM);
    expect(config.schemaPath).toBe('s.json');
  });

  it('returns warnings with the config', () => {
    const { config, warnings } = loadConfig({ cwd: dir, env: { PG_USER: 'a', NUM_WORKERS: '2' } });
    expect(warnings.map((w) => w.location)).toEqual(['NUM_WORKERS']);
    expect(config.warnings).toHaveLength(1);
  });

  it('throws CFG_INVALID with every problem, errors first, and no secret', () => {
    writeFileSync(join(dir, '.env'), 'PG_PASSWORD=Mk7-dotenv-secret\nNUM_WORKERS=3\n');
    let caught: unknown;
    try {
      loadConfig({ cwd: dir, env: { PG_PORT: 'x', ELASTICSEARCH_HTTP_AUTH: 'Mk7-env-secret' } });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidConfigError);
    const error = caught as InvalidConfigError;
    expect(error.code).toBe('CFG_INVALID');
    expect(error.problems.map((p) => [p.location, p.severity])).toEqual([
      ['PG_PORT', 'error'],
      ['PG_USER', 'error'],
      ['ELASTICSEARCH_HTTP_AUTH', 'error'],
      ['NUM_WORKERS', 'warning'],
    ]);
    expect(error.message).toContain('Invalid configuration');
    expect(error.message).not.toContain('Mk7-');
  });
});
