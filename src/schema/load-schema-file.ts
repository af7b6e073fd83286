import { readFile } from 'node:fs/promises';
import { AppError, InvalidConfigError } from '../errors/app-error.js';
import { parseSchema } from './parse-schema.js';
import type { SchemaEntry } from './schema-types.js';
import type { Problem } from '../errors/app-error.js';

/** Reads and structurally checks schema.json; throws with every problem found, keeps warnings. */
export async function loadSchemaFile(path: string, env: Record<string, string | undefined>): Promise<{ entries: SchemaEntry[]; warnings: Problem[] }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (error as Error).message;
    throw new AppError('CFG_SCHEMA_FILE', `Cannot read schema file ${path}: ${reason} (set it with --config or SCHEMA)`, { cause: error });
  }
  let text: string;
  try {
    // Strict: a file saved in Latin-1 would otherwise turn its accented names into U+FFFD without a word. A leading
    // byte-order mark (some Windows editors write one) is dropped: it is not JSON.
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new AppError('CFG_SCHEMA_FILE', `Schema file ${path} is not UTF-8 text: save it as UTF-8`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (error) {
    throw new AppError('CFG_SCHEMA_FILE', `Schema file ${path} is not valid JSON: ${(error as Error).message}`, { cause: error });
  }
  const { entries, problems } = parseSchema(document, env);
  if (problems.some((p) => p.severity === 'error')) {
    throw new InvalidConfigError('SCH_INVALID', `Schema file ${path} is invalid`, sortProblems(problems));
  }
  return { entries, warnings: problems };
}

export function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === 'error' ? -1 : 1));
}
