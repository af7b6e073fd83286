import { describe, expect, it } from 'vitest';
import type { SluiceConfig } from '../../../src/config/config-types.js';
import { parseEnvironment } from '../../../src/config/env.js';
import { collectSecrets, redact, redactUrl } from '../../../src/config/redact.js';

const KEY_PEM = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';

function configOf(env: Record<string, string>): SluiceConfig {
  const files: Record<string, string> = { 'c.pem': '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----', 'k.pem': KEY_PEM };
  const result = parseEnvironment({ PG_USER: 'app', ...env }, {}, { readFile: (p) => files[p] ?? '' });
  if (result.config === undefined) throw new Error(JSON.stringify(result.problems));
  return result.config;
}

describe('collectSecrets', () => {
  it('collects passwords, keys, tokens and the encoded header forms', () => {
    const secrets = collectSecrets(
      configOf({
        PG_PASSWORD: 'pg-pw',
        ELASTICSEARCH_USER: 'elastic',
        ELASTICSEARCH_PASSWORD: 'es-pw',
        ELASTICSEARCH_URL: 'https://es:9200',
        ELASTICSEARCH_CLIENT_CERT: 'c.pem',
        ELASTICSEARCH_CLIENT_KEY: 'k.pem',
        REDIS_AUTH: 'redis-pw',
        REDIS_HOST: 'cache',
      }),
    );
    expect(secrets).toEqual(
      expect.arrayContaining(['pg-pw', 'es-pw', Buffer.from('elastic:es-pw').toString('base64'), KEY_PEM, 'redis-pw']),
    );
    expect(collectSecrets(configOf({ ELASTICSEARCH_API_KEY_ID: 'id', ELASTICSEARCH_API_KEY: 'key-value' }))).toEqual([
      'key-value',
      Buffer.from('id:key-value').toString('base64'),
    ]);
    expect(collectSecrets(configOf({ ELASTICSEARCH_BEARER_AUTH: 'tok-en' }))).toEqual(['tok-en']);
    // Each private key: PostgreSQL's and Redis's client keys as well as the engine's.
    expect(collectSecrets(configOf({ PG_SSLCERT: 'c.pem', PG_SSLKEY: 'k.pem' }))).toEqual([KEY_PEM]);
    expect(collectSecrets(configOf({ REDIS_URL: 'rediss://cache', REDIS_CLIENT_CERT: 'c.pem', REDIS_CLIENT_KEY: 'k.pem' }))).toEqual([KEY_PEM]);
    expect(collectSecrets(configOf({}))).toEqual([]);
  });
});

describe('redact', () => {
  it('replaces each secret and its URL-encoded form', () => {
    expect(redact('login p@ss/word failed (p%40ss%2Fword)', ['p@ss/word'])).toBe('login *** failed (***)');
  });

  it('replaces the JSON-escaped form, as found in log lines', () => {
    expect(redact(JSON.stringify({ msg: 'pw is a"b\\c' }), ['a"b\\c'])).toBe('{"msg":"pw is ***"}');
  });

  it('replaces short secrets only as whole tokens', () => {
    expect(redact('password app for application app:5432', ['app'])).toBe('password *** for application ***:5432');
  });

  it('masks the longest secret first and ignores empty ones', () => {
    expect(redact('hunter22 hunter2', ['hunter2', 'hunter22', ''])).toBe('*** ***');
    expect(redact('nothing here', [])).toBe('nothing here');
  });
});

describe('redactUrl', () => {
  it('masks the password of the userinfo and keeps the rest as written', () => {
    expect(redactUrl('postgres://user:secret@db:5432/app?sslmode=require')).toBe('postgres://user:***@db:5432/app?sslmode=require');
    expect(redactUrl('redis://:secret@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(redactUrl('https://u:p/w@d@es:9200')).toBe('https://u:***@es:9200');
  });

  it('leaves URLs without a password unchanged', () => {
    expect(redactUrl('http://es:9200/')).toBe('http://es:9200/');
    expect(redactUrl('postgres://user@db/app')).toBe('postgres://user@db/app');
    expect(redactUrl('not a url')).toBe('not a url');
  });
});
