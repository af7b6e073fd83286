import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  IGNORED_PGSYNC_PREFIXES,
  IGNORED_PGSYNC_VARIABLES,
  LEGACY_VARIABLES,
  SLUICE_VARIABLES,
  levenshtein,
  suggest,
} from '../../../src/config/env-catalog.js';
import { parseEnvironment } from '../../../src/config/env.js';

const KNOWN = new Set<string>([...SLUICE_VARIABLES, ...LEGACY_VARIABLES, ...Object.keys(IGNORED_PGSYNC_VARIABLES)]);

/** Names the parser asks for, over environments that take every branch. */
function namesRead(): Set<string> {
  const read = new Set<string>();
  const envs: Record<string, string>[] = [
    {},
    { REDIS_CHECKPOINT: 'true', SLUICE_RETRY_INITIAL_MS: '1', ELASTICSEARCH_INITIAL_BACKOFF: '1' },
    { ELASTICSEARCH_URL: 'http://es', REDIS_URL: 'redis://r', PG_URL: 'postgres://u@h/d?sslrootcert=x', PGSYNC_BATCH_SIZE: '1' },
  ];
  for (const base of envs) {
    const env = new Proxy(base, {
      get(target, name) {
        if (typeof name === 'string') read.add(name);
        return Reflect.get(target, name);
      },
    });
    parseEnvironment(env, {}, { readFile: () => '' });
  }
  return read;
}

describe('the variable catalog', () => {
  it('lists exactly the variables the parser reads', () => {
    const read = namesRead();
    expect([...read].filter((name) => !KNOWN.has(name))).toEqual([]);
    expect([...SLUICE_VARIABLES, ...LEGACY_VARIABLES].filter((name) => !read.has(name))).toEqual([]);
  });

  it('is documented in docs/configuration.md, and the page names no other variable', () => {
    const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
    const documented = new Set([...doc.matchAll(/`([A-Z][A-Z0-9_]*[A-Z0-9_*])`/g)].map((m) => m[1] ?? ''));
    const missing = [...KNOWN, ...Object.keys(IGNORED_PGSYNC_PREFIXES).map((p) => `${p}*`)].filter((n) => !documented.has(n));
    expect(missing).toEqual([]);
    const allowed = new Set(['SLUICE_', 'PGSYNC_', 'PG_', 'PGSSL', 'ELASTICSEARCH_', 'OPENSEARCH_', 'REDIS_', 'SLUICE_BULK_CONCURENCY', 'REDIS_SENTINEL', 'PGPASSFILE', 'SLUICE_BULK_*', 'SLUICE_SNAPSHOT_*', 'PATH', 'HOME', 'TRACE', 'DEBUG', 'INFO', 'WARNING', 'WARN', 'ERROR', 'CRITICAL', 'FATAL', 'CFG_INVALID', 'B', 'MB', 'GB', 'TB', 'VAR', 'KEY', 'SQLALCHEMY_*']);
    expect([...documented].filter((n) => !KNOWN.has(n) && !allowed.has(n))).toEqual([]);
  });

  it('suggests names within two edits', () => {
    expect(levenshtein('kitten', 'sitting')).toBe(3);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(suggest('SLUICE_HTTP_PROT')).toBe('SLUICE_HTTP_PORT');
    expect(suggest('PGSYNC_BATCHSIZE')).toBe('PGSYNC_BATCH_SIZE');
    expect(suggest('SLUICE_COMPLETELY_DIFFERENT')).toBeUndefined();
  });
});
