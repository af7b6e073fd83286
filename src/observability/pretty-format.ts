/**
 * Human-readable rendering of pino's JSON log lines, for a terminal:
 * `12:03:04 INFO  [books] snapshot finished; streaming  documents=1000`.
 */

const LEVELS: ReadonlyMap<number, { label: string; color: number }> = new Map([
  [10, { label: 'TRACE', color: 90 }],
  [20, { label: 'DEBUG', color: 36 }],
  [30, { label: 'INFO', color: 32 }],
  [40, { label: 'WARN', color: 33 }],
  [50, { label: 'ERROR', color: 31 }],
  [60, { label: 'FATAL', color: 35 }],
]);

/** Shown in the line's head (time, level, index, message) or constant for the process. */
const HEAD_FIELDS = new Set(['time', 'level', 'msg', 'index', 'service', 'pid', 'hostname']);

export interface PrettyOptions {
  /** ANSI colour for the level; only for a terminal. */
  color: boolean;
}

/** One JSON line (or several, one per line) as pino wrote them; text that is not a JSON object passes unchanged. */
export function prettifyLogText(text: string, options: PrettyOptions): string {
  let out = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      record = undefined;
    }
    out += record !== null && typeof record === 'object' && !Array.isArray(record) ? formatPrettyLine(record as Record<string, unknown>, options) : `${line}\n`;
  }
  return out;
}

export function formatPrettyLine(record: Record<string, unknown>, options: PrettyOptions): string {
  const level = typeof record.level === 'number' ? LEVELS.get(record.level) : undefined;
  const label = (level?.label ?? String(record.level ?? '')).padEnd(5);
  let line = `${clock(record.time)} ${options.color && level !== undefined ? `\x1b[${String(level.color)}m${label}\x1b[0m` : label}`;
  if (typeof record.index === 'string') line += ` [${record.index}]`;
  if (typeof record.msg === 'string') line += ` ${record.msg}`;
  const fields: string[] = [];
  let stack: string | undefined;
  for (const [key, value] of Object.entries(record)) {
    if (HEAD_FIELDS.has(key) && (key !== 'index' || typeof value === 'string')) continue;
    if (value === undefined) continue;
    if (isSerializedError(value)) {
      fields.push(`${key}=${formatValue(value.message)}`);
      stack ??= value.stack;
    } else {
      fields.push(`${key}=${formatValue(value)}`);
    }
  }
  if (fields.length > 0) line += `  ${fields.join(' ')}`;
  if (stack !== undefined) line += `\n${stack.split('\n').map((l) => `    ${l.trim()}`).join('\n')}`;
  return `${line}\n`;
}

/** Local wall-clock time of pino's ISO timestamp, HH:MM:SS. */
function clock(time: unknown): string {
  const date = new Date(typeof time === 'string' || typeof time === 'number' ? time : Number.NaN);
  if (Number.isNaN(date.getTime())) return '--:--:--';
  return [date.getHours(), date.getMinutes(), date.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** Bare words stay bare; anything a reader could misparse (spaces, `=`, quotes, empty) is JSON-quoted. */
function formatValue(value: unknown): string {
  if (typeof value === 'string') return /^[^\s="\\]+$/.test(value) ? value : JSON.stringify(value);
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value) ?? String(value);
}

/** pino's err serializer output: `{ type, message, stack }`. */
function isSerializedError(value: unknown): value is { message: string; stack?: string } {
  return value !== null && typeof value === 'object' && typeof (value as { message?: unknown }).message === 'string' && typeof (value as { stack?: unknown }).stack === 'string';
}
