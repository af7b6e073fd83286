import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import dotenv from 'dotenv';
import { InvalidConfigError, type Problem } from '../errors/app-error.js';
import type { SluiceConfig } from './config-types.js';
import { parseEnvironment } from './env.js';

export interface LoadConfigOptions {
  /** CLI flags; `config` is `--config`/`-c`, the schema.json path. */
  flags?: { config?: string };
  /** Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory of `.env` and base of relative certificate paths; default `process.cwd()`. */
  cwd?: string;
}

export interface LoadedConfig {
  config: SluiceConfig;
  /** Warning problems (dead PGSync variables, unknown SLUICE_ names, ignored duplicates). */
  warnings: Problem[];
  /**
   * The environment the settings were read from: `.env` overlaid by the real environment. Use it wherever
   * PGSync would have seen `.env` values in `os.environ`, e.g. `$NAME` substitution in schema.json.
   */
  env: Record<string, string | undefined>;
}

/**
 * Resolves the configuration: `<cwd>/.env` (dotenv syntax; a variable already in the environment wins, even
 * when empty), then `parseEnvironment`. The `.env` values are not copied into `process.env` (see `env`).
 * Throws InvalidConfigError `CFG_INVALID` listing every problem (errors first) when any is an error.
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const fileProblems: Problem[] = [];
  const fromFile = readDotenv(cwd, fileProblems);
  const merged: Record<string, string | undefined> = { ...fromFile };
  for (const [name, value] of Object.entries(env)) {
    if (value !== undefined) merged[name] = value;
  }
  const result = parseEnvironment(merged, options.flags, { readFile: (path) => readFileSync(resolve(cwd, path), 'utf8') });
  const problems = [...fileProblems, ...result.problems];
  if (result.config === undefined || fileProblems.some((p) => p.severity === 'error')) {
    const ordered = [...problems.filter((p) => p.severity === 'error'), ...problems.filter((p) => p.severity !== 'error')];
    throw new InvalidConfigError('CFG_INVALID', 'Invalid configuration', ordered);
  }
  return { config: result.config, warnings: problems, env: merged };
}

/** The variables of `<cwd>/.env`, or none when the file does not exist. */
function readDotenv(cwd: string, problems: Problem[]): Record<string, string> {
  const path = join(cwd, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code !== 'ENOENT') {
      problems.push({ location: '.env', message: `cannot read ${path}: ${String(code ?? 'read failed')}`, severity: 'error' });
    }
    return {};
  }
  return dotenv.parse(text);
}
