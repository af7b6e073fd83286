// `sluice run` as a child process, and the convergence oracle: the index equals a fresh full sync.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import { allDocuments } from './engine.js';
import { buildDocuments } from './fixtures.js';

const BIN = fileURLToPath(new URL('../../bin/sluice.js', import.meta.url));

export interface RunningSluice {
  child: ChildProcess;
  output(): string;
  /** SIGTERM, then the exit code; a process still running after `timeoutMs` is SIGKILLed and the call fails. */
  stop(timeoutMs?: number): Promise<number | null>;
  /** SIGKILL: a crash at whatever instant it is in. */
  kill(): Promise<void>;
}

export function startSluice(args: string[], env: Record<string, string>): RunningSluice {
  const child = spawn(process.execPath, [BIN, ...args, 'run'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    output: () => output,
    stop: async (timeoutMs = 60_000) => {
      if (child.exitCode === null) child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
      const outcome = await Promise.race([exited, late]);
      clearTimeout(timer);
      if (outcome !== 'late') return outcome;
      child.kill('SIGKILL');
      await exited;
      throw new Error(`sluice run did not exit within ${timeoutMs} ms of SIGTERM; its output:\n${output.slice(-4000)}`);
    },
    kill: async () => {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Stops a test's `sluice run` (if it started), printing its output when it did not exit 0 or SHOW_SLUICE_OUTPUT is set. */
export async function stopShowingOutput(sluice: RunningSluice | undefined): Promise<void> {
  if (sluice === undefined) return;
  const code = await sluice.stop();
  if (code !== 0 || process.env.SHOW_SLUICE_OUTPUT) console.log(sluice.output());
}

/** A JSON log line of a Sluice process. */
export interface LogLine {
  msg?: string;
  [key: string]: unknown;
}

/**
 * The JSON log lines of a process's output; a line cut short by SIGKILL is skipped. A line with a key twice fails:
 * log readers differ on which one they keep.
 */
export function logLines(output: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    let parsed: LogLine;
    try {
      parsed = JSON.parse(line) as LogLine;
    } catch {
      // a line cut by SIGKILL
      continue;
    }
    const keys = topLevelKeys(line);
    const twice = keys.filter((key, i) => keys.indexOf(key) !== i);
    if (twice.length > 0) throw new Error(`log line with ${twice.join(', ')} more than once: ${line}`);
    lines.push(parsed);
  }
  return lines;
}

/** The keys of a JSON object's text at its top level, in order, duplicates included (JSON.parse keeps only the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, end + 1)) as string);
      expectKey = false;
      i = end;
    } else if (c === '{' || c === '[') {
      depth++;
      expectKey = c === '{' && depth === 1;
    } else if (c === '}' || c === ']') depth--;
    else if (c === ',') expectKey = depth === 1;
  }
  return keys;
}

export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the index holds exactly the documents a fresh full sync would build (same ids, same content). */
export async function expectConverged(dbUrl: string, plan: EntryPlan, engineUrl: string, timeoutMs = 30_000): Promise<void> {
  let expected = new Map<string, unknown>();
  let actual = new Map<string, unknown>();
  try {
    await waitFor(
      'the index to equal a fresh full sync',
      async () => {
        expected = new Map((await buildDocuments(dbUrl, plan)).map((d) => [d.id, d.source]));
        actual = await allDocuments(engineUrl, plan.index);
        return sameDocuments(expected, actual) ? true : undefined;
      },
      timeoutMs,
    );
  } catch (error) {
    expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected));
    throw error;
  }
}

function sameDocuments(expected: Map<string, unknown>, actual: Map<string, unknown>): boolean {
  if (expected.size !== actual.size) return false;
  for (const [id, doc] of expected) if (JSON.stringify(sortKeys(doc)) !== JSON.stringify(sortKeys(actual.get(id)))) return false;
  return true;
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, sortKeys(v)]));
  return value;
}
