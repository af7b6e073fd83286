import { describe, expect, it } from 'vitest';
import { createLogger, usesPrettyFormat } from '../../../src/observability/logger.js';
import { formatPrettyLine, prettifyLogText } from '../../../src/observability/pretty-format.js';
import { terminalLine } from '../../../src/observability/terminal-line.js';
import { CONTROL, RecordingStream } from './fake-streams.js';

const SECRET = 'pg-Secr3t"Value\\7731';
const PRETTY_HEAD = /^\d\d:\d\d:\d\d /;

describe('createLogger formats', () => {
  it('writes JSON lines without control characters when the destination is not a terminal', () => {
    const out = new RecordingStream(false);
    const logger = createLogger({ level: 'info', destination: out });
    logger.child({ index: 'books' }).info({ documents: 1000 }, 'snapshot finished; streaming');
    logger.warn('plain');
    const lines = out.text.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, index: 'books', documents: 1000, msg: 'snapshot finished; streaming', service: 'sluice' });
    expect(out.text).not.toMatch(CONTROL);
  });

  it('writes human-readable lines with a coloured level on a terminal (auto)', () => {
    const out = new RecordingStream(true);
    const logger = createLogger({ level: 'info', destination: out });
    logger.child({ index: 'books' }).info({ documents: 1000 }, 'snapshot finished; streaming');
    expect(out.text).toMatch(/^\d\d:\d\d:\d\d \x1b\[32mINFO \x1b\[0m \[books\] snapshot finished; streaming {2}documents=1000\n$/);
  });

  it('renders pretty lines without colour when forced on a pipe, and JSON when forced on a terminal', () => {
    const pipe = new RecordingStream(false);
    createLogger({ level: 'info', destination: pipe, format: 'pretty' }).warn({ index: 'books', retryInMs: 200 }, 'sync interrupted; retrying');
    expect(pipe.text).toMatch(/^\d\d:\d\d:\d\d WARN {2}\[books\] sync interrupted; retrying {2}retryInMs=200\n$/);
    expect(pipe.text).not.toMatch(CONTROL);

    const tty = new RecordingStream(true);
    createLogger({ level: 'info', destination: tty, format: 'json' }).info({ index: 'books' }, 'hello');
    expect(JSON.parse(tty.text)).toMatchObject({ index: 'books', msg: 'hello' });
    expect(tty.text).not.toMatch(CONTROL);
    // Something parses that terminal: the progress reporter must not draw on it.
    expect(terminalLine(tty).barAllowed).toBe(false);
  });

  it('resolves auto from the destination', () => {
    expect(usesPrettyFormat('auto', new RecordingStream(true))).toBe(true);
    expect(usesPrettyFormat(undefined, new RecordingStream(false))).toBe(false);
    expect(usesPrettyFormat('json', new RecordingStream(true))).toBe(false);
    expect(usesPrettyFormat('pretty', new RecordingStream(false))).toBe(true);
  });

  it('honours the level', () => {
    const out = new RecordingStream(true);
    const logger = createLogger({ level: 'warn', destination: out });
    logger.info('hidden');
    logger.debug('hidden');
    expect(out.text).toBe('');
  });
});

describe('secrets in pretty lines', () => {
  it('are masked in the message, fields, nested objects and error stacks', () => {
    for (const format of ['pretty', 'json'] as const) {
      const out = new RecordingStream(true);
      const logger = createLogger({ level: 'debug', destination: out, secrets: [SECRET], format });
      logger.info({ url: `postgres://app:${SECRET}@db/app`, nested: { password: SECRET } }, `connecting with ${SECRET}`);
      logger.error({ err: new Error(`auth failed for ${SECRET}`) }, 'failed');
      expect(out.text).toContain('***');
      expect(out.text.includes(SECRET), format).toBe(false);
      expect(out.text.includes(JSON.stringify(SECRET).slice(1, -1)), format).toBe(false);
      expect(out.text.includes(encodeURIComponent(SECRET)), format).toBe(false);
    }
  });
});

describe('formatPrettyLine', () => {
  const time = '2024-05-01T10:03:04.000Z';

  it('quotes values a reader could misparse and prints objects as JSON', () => {
    const line = formatPrettyLine({ level: 40, time, msg: 'm', service: 'sluice', a: 'two words', b: '', c: 'k=v', d: null, e: [1, 2], f: { g: true }, h: 'plain' }, { color: false });
    expect(line).toMatch(PRETTY_HEAD);
    expect(line.slice(9)).toBe('WARN  m  a="two words" b="" c="k=v" d=null e=[1,2] f={"g":true} h=plain\n');
  });

  it('shows the error message inline and its stack indented below', () => {
    const line = formatPrettyLine({ level: 50, time, msg: 'failed', err: { type: 'Error', message: 'boom', stack: 'Error: boom\n    at f (x.ts:1:1)' } }, { color: false });
    expect(line.slice(9)).toBe('ERROR failed  err=boom\n    Error: boom\n    at f (x.ts:1:1)\n');
  });

  it('labels every level and keeps a non-string index as a field', () => {
    const labels = [10, 20, 30, 40, 50, 60].map((level) => formatPrettyLine({ level, time, msg: '' }, { color: false }).slice(9, 14));
    expect(labels).toEqual(['TRACE', 'DEBUG', 'INFO ', 'WARN ', 'ERROR', 'FATAL']);
    expect(formatPrettyLine({ level: 30, time, msg: 'x', index: 3 }, { color: false }).slice(9)).toBe('INFO  x  index=3\n');
  });

  it('passes text that is not a JSON object through', () => {
    expect(prettifyLogText('not json\n', { color: false })).toBe('not json\n');
  });
});

describe('log lines and the progress bar on one terminal', () => {
  it('erase the bar, print the line and redraw the bar in one write', () => {
    const out = new RecordingStream(true);
    const logger = createLogger({ level: 'info', destination: out });
    const line = terminalLine(out);
    line.draw('[books] 42%');
    out.writes.length = 0;
    logger.info('between');
    expect(out.writes).toHaveLength(1);
    expect(out.writes[0]).toMatch(/^\r\x1b\[K\d\d:\d\d:\d\d .*between\n\[books\] 42%$/);
    line.clear();
    out.writes.length = 0;
    logger.info('after');
    expect(out.writes[0]).toMatch(PRETTY_HEAD);
  });
});
