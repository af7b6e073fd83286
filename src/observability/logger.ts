import { Writable } from 'node:stream';
import pino from 'pino';
import { redact } from '../config/redact.js';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level: string;
  /** Values that must never reach a log line (passwords, keys): replaced by `***` in every line written. */
  secrets?: readonly string[];
  /** Where lines go; standard error by default, so standard output stays for command results. */
  destination?: NodeJS.WritableStream;
}

/** Structured JSON logs, with every secret redacted from the whole line, whatever field or message holds it. */
export function createLogger(options: LoggerOptions): Logger {
  const target = options.destination ?? process.stderr;
  const secrets = options.secrets ?? [];
  const stream =
    secrets.length === 0
      ? target
      : new Writable({
          write(chunk: Buffer, _encoding, callback) {
            target.write(redact(chunk.toString('utf8'), secrets));
            callback();
          },
        });
  return pino({ level: options.level, base: { service: 'sluice' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
