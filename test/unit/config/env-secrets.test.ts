import { describe, expect, it } from 'vitest';
import { parseEnvironment } from '../../../src/config/env.js';
import type { Problem } from '../../../src/errors/app-error.js';

const MARKER = 'Mk7-secret-canary';
const SPECIAL = 'p@ss:w/rd#Mk7?';
const ENC = encodeURIComponent(SPECIAL);

/** Every message and location must be free of both markers, raw and URL-encoded. */
function expectNoSecret(problems: Problem[]): void {
  expect(problems.length).toBeGreaterThan(0);
  for (const problem of problems) {
    for (const secret of [MARKER, SPECIAL, ENC, encodeURIComponent(MARKER)]) {
      expect(problem.message).not.toContain(secret);
      expect(problem.location).not.toContain(secret);
    }
  }
}

const readFile = (path: string): string => {
  if (path === 'key-with-secret.txt') return `not a pem ${MARKER}`;
  throw Object.assign(new Error(`ENOENT ${path}`), { code: 'ENOENT' });
};

describe('parseEnvironment never reveals secrets', () => {
  it('in errors and warnings about parseable values', () => {
    const result = parseEnvironment(
      {
        PG_URL: `postgres://u:${ENC}@h:5432/db?sslmode=bad&application_name=x`,
        PG_PASSWORD: MARKER,
        PG_PASSWORD_RO: MARKER,
        PG_URL_RO: `postgres://u:${MARKER}@replica/db`,
        ELASTICSEARCH_URL: `ftp://u:${ENC}@es`,
        ELASTICSEARCH_PASSWORD: MARKER,
        ELASTICSEARCH_HTTP_AUTH: MARKER,
        ELASTICSEARCH_BASIC_AUTH: MARKER,
        ELASTICSEARCH_BEARER_AUTH: MARKER,
        ELASTICSEARCH_API_KEY: MARKER,
        ELASTICSEARCH_CLIENT_CERT: 'missing-cert.pem',
        ELASTICSEARCH_CLIENT_KEY: 'key-with-secret.txt',
        REDIS_URL: `redis://:${ENC}@cache:6379/notadb`,
        REDIS_AUTH: MARKER,
      },
      {},
      { readFile },
    );
    expect(result.config).toBeUndefined();
    expect(result.problems.map((p) => p.location)).toEqual(
      expect.arrayContaining(['PG_URL', 'PG_PASSWORD', 'ELASTICSEARCH_URL', 'ELASTICSEARCH_HTTP_AUTH', 'ELASTICSEARCH_BASIC_AUTH', 'ELASTICSEARCH_CLIENT_KEY', 'REDIS_URL']),
    );
    expectNoSecret(result.problems);
  });

  it('in errors about a URL with credentials put in a *_HOST variable, whose password no secret variable holds', () => {
    const result = parseEnvironment(
      {
        PG_HOST: `postgres://app:${MARKER}@db.example:5432/app`,
        PG_USER: 'app',
        ELASTICSEARCH_HOST: `https://elastic:${MARKER}@es.example:9200`,
        REDIS_HOST: `redis://:${MARKER}@cache:6379`,
        REDIS_CHECKPOINT: 'true',
      },
      {},
      { readFile },
    );
    expect(result.problems.filter((p) => p.severity === 'error').map((p) => p.location).sort()).toEqual(['ELASTICSEARCH_HOST', 'PG_HOST', 'REDIS_HOST']);
    expect(result.problems.find((p) => p.location === 'PG_HOST')?.message).toMatch(/not a URL; use PG_URL/);
    expectNoSecret(result.problems);
  });

  it('in errors about URLs that cannot be parsed at all', () => {
    const result = parseEnvironment(
      {
        PG_URL: `postgres://u:${MARKER}@h:99999/db`,
        ELASTICSEARCH_URL: `http://u:${MARKER}@es:99999`,
        REDIS_URL: `redis://:${MARKER}@cache:99999`,
        ELASTICSEARCH_HTTP_AUTH: `,${MARKER}`,
      },
      {},
      { readFile },
    );
    expect(result.problems.filter((p) => p.severity === 'error').map((p) => p.location).sort()).toEqual(
      ['ELASTICSEARCH_HTTP_AUTH', 'ELASTICSEARCH_URL', 'PG_URL', 'REDIS_URL'],
    );
    expectNoSecret(result.problems);
  });

  it('in warnings of a valid configuration, and in config.warnings', () => {
    const result = parseEnvironment(
      {
        PG_URL: `postgresql://u:${ENC}@h/db?connect_timeout=5`,
        PG_PASSWORD: MARKER,
        ELASTICSEARCH_API_KEY: MARKER,
        ELASTICSEARCH_BEARER_AUTH: MARKER,
        ELASTICSEARCH_URL: `https://u:${ENC}@es:9200`,
        ELASTICSEARCH_USER: 'u',
        ELASTICSEARCH_PASSWORD: MARKER,
        REDIS_URL: `redis://:${ENC}@cache:6379/0`,
        REDIS_AUTH: MARKER,
      },
      {},
      { readFile },
    );
    expect(result.config?.postgres.password).toBe(SPECIAL);
    expectNoSecret(result.problems);
    for (const warning of result.config?.warnings ?? []) {
      expect(warning).not.toContain(MARKER);
      expect(warning).not.toContain(SPECIAL);
      expect(warning).not.toContain(ENC);
    }
  });

  it('even when a secret is pasted into a non-secret variable whose value is echoed', () => {
    const result = parseEnvironment({ PG_USER: 'a', PG_PASSWORD: MARKER, PG_PORT: MARKER, ELASTICSEARCH_HTTP_AUTH: `u,${SPECIAL}`, PG_SSLMODE: SPECIAL }, {}, { readFile });
    expect(result.problems.map((p) => p.location)).toEqual(['PG_PORT', 'PG_SSLMODE']);
    expect(result.problems[0]?.message).toContain('(got "***")');
    expectNoSecret(result.problems);
  });
});
