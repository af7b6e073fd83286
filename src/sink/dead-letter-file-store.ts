/**
 * Dead-letter store in a JSON-lines file: one DeadLetter per line, appended and fsynced before `record`
 * resolves, so a letter is durable before the change that produced it is acknowledged.
 */
import { mkdir, open, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { DeadLetter, DeadLetterStore } from './document-sink.js';

export class FileDeadLetterStore implements DeadLetterStore {
  private handle: Promise<FileHandle> | undefined;
  /** Appends run one after another so lines never interleave. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(readonly path: string) {}

  /** Appends the letters and fsyncs the file. Throws `AppError('SNK_DEAD_LETTER')` when the file cannot be written. */
  record(letters: DeadLetter[]): Promise<void> {
    if (this.closed) return Promise.reject(new AppError('SNK_DEAD_LETTER', `dead-letter store ${this.path} is closed`));
    if (letters.length === 0) return this.queue;
    const text = letters.map((letter) => JSON.stringify(letter)).join('\n') + '\n';
    const run = this.queue.then(() => this.append(text, letters.length));
    // The chain must survive a failed append; the caller still sees the failure through `run`.
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Waits for pending appends and closes the file. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue;
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await (await handle.catch(() => undefined))?.close();
  }

  private async append(text: string, count: number): Promise<void> {
    try {
      const handle = await this.open();
      await handle.appendFile(text, 'utf8');
      await handle.sync();
    } catch (err) {
      throw new AppError('SNK_DEAD_LETTER', `cannot write ${count} dead letter(s) to ${this.path}: ${(err as Error).message}`, {
        cause: err,
        details: { path: this.path },
      });
    }
  }

  private open(): Promise<FileHandle> {
    if (!this.handle) {
      const opening = (async () => {
        await mkdir(dirname(this.path), { recursive: true });
        // Dead letters hold whole documents: readable by the service's user only (a file already there keeps its mode).
        return open(this.path, 'a', 0o600);
      })();
      // A failed open is retried on the next record instead of being cached.
      opening.catch(() => {
        if (this.handle === opening) this.handle = undefined;
      });
      this.handle = opening;
    }
    return this.handle;
  }
}

/** Reads every dead letter from a JSON-lines file; a missing file holds none. */
export async function readDeadLetters(path: string): Promise<DeadLetter[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new AppError('SNK_DEAD_LETTER', `cannot read dead letters from ${path}: ${(err as Error).message}`, { cause: err });
  }
  const lines = text.split('\n');
  // A crash in the middle of an append leaves the last line without its end: that letter was never acknowledged.
  const torn = !text.endsWith('\n') ? lines.length - 1 : -1;
  const letters: DeadLetter[] = [];
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    try {
      letters.push(JSON.parse(line) as DeadLetter);
    } catch (err) {
      if (i === torn) return;
      throw new AppError('SNK_DEAD_LETTER', `${path} line ${i + 1} is not valid JSON`, { cause: err });
    }
  });
  return letters;
}
