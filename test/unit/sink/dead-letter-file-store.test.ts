import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileDeadLetterStore, readDeadLetters } from '../../../src/sink/dead-letter-file-store.js';
import type { DeadLetter } from '../../../src/sink/document-sink.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-dl-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const letter = (id: string): DeadLetter => ({
  index: 'books',
  id,
  op: 'index',
  status: 400,
  errorType: 'mapper_parsing_exception',
  reason: 'failed to parse\nfield "x"',
  position: '0/1A',
  source: '{"x":"\\n"}',
  at: '2024-01-01T00:00:00.000Z',
});

describe('FileDeadLetterStore', () => {
  it('appends one JSON line per letter, creating the directory', async () => {
    const path = join(dir, 'nested', 'deeper', 'dead.jsonl');
    const store = new FileDeadLetterStore(path);
    await Promise.all([store.record([letter('1'), letter('2')]), store.record([letter('3')]), store.record([])]);
    await store.close();
    const again = new FileDeadLetterStore(path);
    await again.record([letter('4')]);
    await again.close();
    const read = await readDeadLetters(path);
    expect(read.map((l) => l.id)).toEqual(['1', '2', '3', '4']);
    expect(read[0]).toEqual(letter('1'));
  });

  it('fails with SNK_DEAD_LETTER when the path cannot be written', async () => {
    const blocker = join(dir, 'file-not-dir');
    writeFileSync(blocker, 'x');
    const store = new FileDeadLetterStore(join(blocker, 'dead.jsonl'));
    await expect(store.record([letter('1')])).rejects.toMatchObject({ code: 'SNK_DEAD_LETTER' });
    await store.close();
    await expect(store.record([letter('1')])).rejects.toMatchObject({ code: 'SNK_DEAD_LETTER' });
  });

  it('creates the file readable by its owner only, since it holds whole documents', async () => {
    const path = join(dir, 'private.jsonl');
    const store = new FileDeadLetterStore(path);
    await store.record([letter('1')]);
    await store.close();
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('skips a last line cut short by a crash, but not a broken line before it', async () => {
    const path = join(dir, 'torn.jsonl');
    const whole = `${JSON.stringify(letter('1'))}\n`;
    writeFileSync(path, `${whole}${JSON.stringify(letter('2')).slice(0, 30)}`);
    expect((await readDeadLetters(path)).map((l) => l.id)).toEqual(['1']);
    writeFileSync(path, `{"index":\n${whole}`);
    await expect(readDeadLetters(path)).rejects.toMatchObject({ code: 'SNK_DEAD_LETTER', message: expect.stringContaining('line 1 is not valid JSON') as unknown });
  });

  it('reads nothing from a missing file', async () => {
    expect(await readDeadLetters(join(dir, 'missing.jsonl'))).toEqual([]);
  });
});
