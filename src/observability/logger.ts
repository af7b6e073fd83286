import { Writable } from 'node:stream';
import pino from 'pino';
import { redact } from '../config/redact.js';
import { prettifyLogText } from './pretty-format.js';
import { isTerminal, terminalLine } from './terminal-line.js';

export type Logger = pino.Logger;

/** `auto`: human-readable on a terminal, JSON lines otherwise. */
export type LogFormat = 'auto' | 'json' | 'pretty';

export interface LoggerOptions {
  level: string;
  /** Values that must never reach a log line (passwords, keys): replaced by `***` in every line written. */
  secrets?: readonly string[];
  /** Where lines go; standard error by default, so standard output stays for command results. */
  destination?: NodeJS.WritableStream;
  /** `auto` by default. */
  format?: LogFormat;
}

/** Whether `format` renders human-readable lines on `destination`. */
export function usesPrettyFormat(format: LogFormat | undefined, destination: NodeJS.WritableStream): boolean {
  return format === 'pretty' || (format !== 'json' && isTerminal(destination));
}

/**
 * Structured JSON logs, or their human-readable rendering, with every secret redacted from the whole line as
 * written, whatever field or message holds it. On a terminal, lines go above the progress bar, if one is drawn.
 */
export function createLogger(options: LoggerOptions): Logger {
  const target = options.destination ?? process.stderr;
  const secrets = options.secrets ?? [];
  const pretty = usesPrettyFormat(options.format, target);
  const color = isTerminal(target);
  const line = color ? terminalLine(target) : undefined;
  if (line !== undefined) line.barAllowed = pretty;
  const stream =
    secrets.length === 0 && !pretty && line === undefined
      ? target
      : new Writable({
          write(chunk: Buffer, _encoding, callback) {
            let text = chunk.toString('utf8');
            if (pretty) text = prettifyLogText(text, { color });
            if (secrets.length > 0) text = redact(text, secrets);
            if (line !== undefined) line.writeAbove(text);
            else target.write(text);
            callback();
          },
        });
  return pino({ level: options.level, base: { service: 'sluice' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
