// Keeps README.md and docs/operations.md honest: every `sluice <command>` (and its --flags), every sluice_
// metric and every setting they name must exist in the code users run.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { IGNORED_PGSYNC_VARIABLES, LEGACY_VARIABLES, SLUICE_VARIABLES } from '../../../src/config/env-catalog.js';
import { ERROR_CODES } from '../../../src/errors/codes.js';
import { buildProgram } from '../../../src/main.js';
import { SluiceMetrics, renderMetrics } from '../../../src/observability/metrics.js';
import { newIndexStatus } from '../../../src/pipeline/index-status.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCS = ['README.md', 'docs/operations.md'];

interface Doc {
  path: string;
  /** Inline code spans and fenced blocks. */
  code: { text: string }[];
  /** The whole text. */
  parts: { text: string }[];
}

function readDoc(path: string): Doc {
  const text = readFileSync(join(ROOT, path), 'utf8');
  const code: Doc['code'] = [];
  const fenced = /```[^\n]*\n([\s\S]*?)```/g;
  for (const m of text.matchAll(fenced)) code.push({ text: m[1]! });
  for (const m of text.replace(fenced, ' ').matchAll(/`([^`\n]+)`/g)) code.push({ text: m[1]! });
  return { path, code, parts: [{ text }] };
}

const docs = DOCS.map(readDoc);
const program = buildProgram(() => undefined);
const commands = new Map<string, Command>(program.commands.map((c) => [c.name(), c]));
const globalFlags = new Set(program.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined));

interface Invocation {
  doc: string;
  command: string;
  flags: string[];
  line: string;
}

/**
 * `sluice X …`, `npx sluice X …` and `bin/sluice.js X …` inside code. On a docker compose line `sluice` is the
 * service name (`docker compose exec sluice node bin/sluice.js status`): only `bin/sluice.js X` counts there.
 */
function invocations(doc: Doc): Invocation[] {
  const found: Invocation[] = [];
  for (const { text } of doc.code) {
    for (const line of text.split('\n')) {
      const compose = /docker[ -]compose\b/.test(line);
      for (const m of line.matchAll(/(?<![\w./-])(bin\/sluice\.js|sluice)(?=\s)((?:\s+[^\s#;|&`]+)*)/g)) {
        if (compose && m[1] === 'sluice') continue;
        // A role or ACL user named sluice (`ALTER ROLE sluice WITH …`, `ACL SETUSER sluice on …`).
        if (/\b[A-Z]{2,}\s+$/.test(line.slice(0, m.index))) continue;
        const words = m[2]!.trim().split(/\s+/).filter((w) => w !== '');
        const command = words[0];
        if (command === undefined || !/^[a-z][a-z-]*$/.test(command)) continue;
        found.push({ doc: doc.path, command, flags: words.slice(1).filter((w) => w.startsWith('-')).map((w) => w.replace(/[.,:)]+$/, '')), line: line.trim() });
      }
    }
  }
  return found;
}

/** Metric families the process exposes, read from a rendered /metrics with every optional series present. */
function metricFamilies(): { names: Set<string>; histograms: Set<string> } {
  const status = { ...newIndexStatus('book'), lagSeconds: 1, retainedWalBytes: 1 };
  const text = renderMetrics([status], { metrics: new SluiceMetrics() });
  const names = new Set<string>();
  const histograms = new Set<string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    names.add(m[1]!);
    if (m[2] === 'histogram') histograms.add(m[1]!);
  }
  return { names, histograms };
}

const SETTING_PREFIX = /(?<![A-Za-z0-9_])((?:SLUICE|PGSYNC|PG|ELASTICSEARCH|OPENSEARCH|REDIS)_[A-Z0-9_]*[A-Z0-9])(?![A-Za-z0-9_*])/g;
const KNOWN_SETTINGS = new Set<string>([...SLUICE_VARIABLES, ...LEGACY_VARIABLES, ...Object.keys(IGNORED_PGSYNC_VARIABLES)]);

describe('the docs name only what exists', () => {
  it('finds the invocations it checks (the extraction works)', () => {
    const all = docs.flatMap(invocations).map((i) => i.command);
    expect(all).toEqual(expect.arrayContaining(['run', 'bootstrap', 'status', 'reset', 'teardown', 'validate']));
  });

  it('every `sluice <command>` is a command of src/main.ts, with flags it has', () => {
    const problems: string[] = [];
    for (const inv of docs.flatMap(invocations)) {
      const command = commands.get(inv.command);
      if (command === undefined) {
        problems.push(`${inv.doc}: unknown command "sluice ${inv.command}" in: ${inv.line}`);
        continue;
      }
      const flags = new Set([...globalFlags, '--help', '-h', ...command.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => f !== undefined)]);
      for (const flag of inv.flags) {
        if (!flags.has(flag)) problems.push(`${inv.doc}: "sluice ${inv.command}" has no option ${flag} (in: ${inv.line})`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('every sluice_ metric is one src/observability/metrics.ts exposes', () => {
    const { names, histograms } = metricFamilies();
    const problems: string[] = [];
    for (const doc of docs) {
      for (const { text } of doc.parts) {
        for (const m of text.matchAll(/(?<![A-Za-z0-9_])sluice_[a-z0-9_]*[a-z0-9](?![A-Za-z0-9_])/g)) {
          const name = m[0];
          const base = name.replace(/_(bucket|sum|count)$/, '');
          if (names.has(name) || (base !== name && histograms.has(base))) continue;
          problems.push(`${doc.path}: unknown metric ${name}`);
        }
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it('every setting is one src/config/env-catalog.ts knows', () => {
    const problems: string[] = [];
    for (const doc of docs) {
      for (const { text } of doc.parts) {
        // A sample of Sluice's own "unknown setting" warning names a misspelt variable on purpose.
        const checked = text.split('\n').filter((line) => !line.includes('unknown setting')).join('\n');
        for (const m of checked.matchAll(SETTING_PREFIX)) {
          const name = m[1]!;
          if (KNOWN_SETTINGS.has(name)) continue;
          problems.push(`${doc.path}: unknown setting ${name}`);
        }
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it('every error code in `[CODE]` or backticks is one src/errors/codes.ts defines', () => {
    const codes = new Set(Object.keys(ERROR_CODES));
    const problems: string[] = [];
    for (const doc of docs) {
      for (const { text } of doc.code) {
        for (const m of text.matchAll(/(?<![A-Za-z0-9_])((?:CFG|SCH|SRC|SNK|CKP)_[A-Z_]*[A-Z])(?![A-Za-z0-9_])/g)) {
          if (!codes.has(m[1]!)) problems.push(`${doc.path}: unknown error code ${m[1]}`);
        }
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });
});
