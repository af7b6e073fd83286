/**
 * Checkpoints as files in CHECKPOINT_PATH: `<dir>/.<name>.sluice.json`, one per name. PGSync's own
 * `<dir>/.<name>` (an integer) is never written; when it is the only file, `load` returns undefined and
 * records a warning. Every write is atomic and durable: temp file, fsync, rename over the old file,
 * fsync of the directory. A crash leaves either the old or the new checkpoint, never a torn one.
 *
 * Ownership leases (for processes sharing the directory on one machine): `<dir>/.<name>.sluice.lease`, created
 * exclusively, holding the holder and its time to live; the owner renews it by touching it, so it expires at its
 * modification time plus that time. An expired lease is taken by renaming it away first: of several standbys only
 * one rename succeeds.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, open, readFile, readdir, rename, rm, stat, unlink, utimes } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppError } from '../errors/app-error.js';
import { checkName, decodeCheckpoint, encodeCheckpoint, KeyedQueue, pgsyncCheckpointWarning } from './checkpoint-codec.js';
import type { Checkpoint, CheckpointStore, LeaseState } from './checkpoint-store.js';

const SUFFIX = '.sluice.json';
const LEASE_SUFFIX = '.sluice.lease';
/** Temp files: `.<name>.sluice.json.<pid>.<random>.tmp`. */
const TEMP = /^\..+\.sluice\.json\.\d+\.[0-9a-f]+\.tmp$/;
const STALE_TEMP_MS = 60_000;
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export class FileCheckpointStore implements CheckpointStore {
  private readonly queue = new KeyedQueue();
  private readonly found: string[] = [];
  private readonly pgsync = new Map<string, string>();
  private closed = false;

  private constructor(readonly dir: string) {}

  /**
   * Checks that `dir` (CHECKPOINT_PATH) is an existing writable directory, by writing and deleting a probe
   * file, and removes temp files a crashed process left behind. Throws `AppError('CKP_UNAVAILABLE')`.
   */
  static async open(dir: string): Promise<FileCheckpointStore> {
    const path = resolve(dir);
    const fail = (problem: string, error?: unknown): AppError =>
      new AppError('CKP_UNAVAILABLE', `CHECKPOINT_PATH ${path} ${problem}${error ? `: ${(error as Error).message}` : ''}`, {
        details: { path },
      });
    try {
      if (!(await stat(path)).isDirectory()) throw fail('is not a directory: set CHECKPOINT_PATH to a writable directory');
      await access(path, constants.W_OK | constants.X_OK);
    } catch (error) {
      if (error instanceof AppError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw fail('does not exist: create it or set CHECKPOINT_PATH to a writable directory');
      throw fail('is not writable: grant this process write access or set CHECKPOINT_PATH elsewhere', error);
    }
    const probe = join(path, `.sluice-probe.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      await (await open(probe, 'wx')).close();
      await unlink(probe);
    } catch (error) {
      await rm(probe, { force: true }).catch(() => undefined);
      throw fail('is not writable: grant this process write access or set CHECKPOINT_PATH elsewhere', error);
    }
    await removeStaleTempFiles(path);
    return new FileCheckpointStore(path);
  }

  /** The file holding the checkpoint of `name`. */
  path(name: string): string {
    checkFileName(name);
    return join(this.dir, `.${name}${SUFFIX}`);
  }

  async load(name: string): Promise<Checkpoint | undefined> {
    const path = this.path(name);
    return this.run(name, async () => {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          await this.lookForPgsync(name);
          return undefined;
        }
        throw this.ioError(`cannot read checkpoint ${path}`, error);
      }
      return decodeCheckpoint(text, `file ${path}`);
    });
  }

  async save(name: string, checkpoint: Checkpoint): Promise<void> {
    const path = this.path(name);
    const text = `${encodeCheckpoint(checkpoint)}\n`;
    return this.run(name, async () => {
      const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      let handle: FileHandle | undefined;
      try {
        handle = await open(temp, 'wx');
        await handle.writeFile(text, 'utf8');
        await handle.sync();
        await handle.close();
        handle = undefined;
        await rename(temp, path);
        await syncDirectory(this.dir);
      } catch (error) {
        await handle?.close().catch(() => undefined);
        await rm(temp, { force: true }).catch(() => undefined);
        throw this.ioError(`cannot write checkpoint ${path}`, error);
      }
      this.pgsync.delete(name);
    });
  }

  async remove(name: string): Promise<void> {
    const path = this.path(name);
    return this.run(name, async () => {
      try {
        await unlink(path);
        await syncDirectory(this.dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.ioError(`cannot delete checkpoint ${path}`, error);
      }
    });
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    checkFileName(name);
    const path = join(this.dir, `.${name}${LEASE_SUFFIX}`);
    return this.run(`${name}${LEASE_SUFFIX}`, async () => {
      try {
        for (;;) {
          const created = await createLease(path, holder, ttlMs);
          if (created) return { owner: holder, remainingMs: ttlMs };
          const found = await readLease(path);
          if (found === undefined) continue; // released or taken away meanwhile: try to create it again
          const remainingMs = found.expiresAt - Date.now();
          if (found.holder === holder && remainingMs > 0) {
            const now = new Date();
            await utimes(path, now, now);
            return { owner: holder, remainingMs: found.ttlMs };
          }
          if (remainingMs > 0) return { owner: found.holder, remainingMs };
          await takeExpired(path, found);
        }
      } catch (error) {
        throw this.ioError(`cannot claim lease ${path}`, error);
      }
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkFileName(name);
    const path = join(this.dir, `.${name}${LEASE_SUFFIX}`);
    return this.run(`${name}${LEASE_SUFFIX}`, async () => {
      try {
        const found = await readLease(path);
        if (found?.holder === holder) await unlink(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.ioError(`cannot release lease ${path}`, error);
      }
    });
  }

  async leaseOf(name: string): Promise<LeaseState | undefined> {
    checkFileName(name);
    const path = join(this.dir, `.${name}${LEASE_SUFFIX}`);
    try {
      const found = await readLease(path);
      const remainingMs = found === undefined ? 0 : found.expiresAt - Date.now();
      return found !== undefined && remainingMs > 0 ? { owner: found.holder, remainingMs } : undefined;
    } catch (error) {
      throw this.ioError(`cannot read lease ${path}`, error);
    }
  }

  /** Warnings from loads that found only PGSync's checkpoint file. */
  warnings(): string[] {
    return [...this.found];
  }

  /** The content of PGSync's `.<name>` file when the last `load(name)` found it instead of a Sluice checkpoint. */
  pgsyncCheckpoint(name: string): string | undefined {
    return this.pgsync.get(name);
  }

  /** Waits for writes in progress; later calls fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.queue.idle();
  }

  private run<T>(name: string, task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AppError('CKP_UNAVAILABLE', `checkpoint store ${this.dir} is closed`));
    return this.queue.run(name, task);
  }

  private async lookForPgsync(name: string): Promise<void> {
    const path = join(this.dir, `.${name}`);
    let text: string;
    try {
      text = (await readFile(path, 'utf8')).trim();
    } catch {
      return; // none (or unreadable, which does not matter either: it is not ours)
    }
    this.pgsync.set(name, text);
    const warning = pgsyncCheckpointWarning(name, `file ${path}`, text);
    if (!this.found.includes(warning)) this.found.push(warning);
  }

  private ioError(doing: string, error: unknown): AppError {
    return new AppError('CKP_UNAVAILABLE', `${doing} (CHECKPOINT_PATH ${this.dir}): ${(error as Error).message}`, {
      cause: error,
      details: { path: this.dir },
    });
  }
}

function checkFileName(name: string): void {
  checkName(name);
  if (!SAFE_NAME.test(name)) {
    throw new TypeError(`checkpoint name ${JSON.stringify(name)} cannot be a file name: use letters, digits, "_", "-" and "."`);
  }
}

interface FileLease {
  holder: string;
  ttlMs: number;
  /** Modification time plus time to live, in Date.now() milliseconds. */
  expiresAt: number;
  mtimeMs: number;
}

/** Creates the lease file unless it exists; false when it does. */
async function createLease(path: string, holder: string, ttlMs: number): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
  try {
    await handle.writeFile(`${JSON.stringify({ holder, ttlMs })}\n`, 'utf8');
  } finally {
    await handle.close();
  }
  return true;
}

/** The lease at `path`, or undefined when there is none. A file being written (empty, torn) counts as held now. */
async function readLease(path: string): Promise<FileLease | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    let parsed: { holder?: unknown; ttlMs?: unknown } = {};
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch {
      // just created by another process, not written yet
    }
    const holder = typeof parsed.holder === 'string' ? parsed.holder : '(being written)';
    const ttlMs = typeof parsed.ttlMs === 'number' ? parsed.ttlMs : STALE_TEMP_MS;
    return { holder, ttlMs, expiresAt: info.mtimeMs + ttlMs, mtimeMs: info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * Moves the expired lease `seen` out of the way. Another standby may have taken it in between and created its own:
 * what was moved is then checked, and put back when it is not the expired lease that was seen.
 */
async function takeExpired(path: string, seen: FileLease): Promise<void> {
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.expired`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await readLease(aside);
  if (moved !== undefined && (moved.holder !== seen.holder || moved.mtimeMs !== seen.mtimeMs)) {
    try {
      await link(aside, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
  }
  await rm(aside, { force: true });
}

/** fsync of a directory makes a rename or unlink in it durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (error) {
    // Some platforms and file systems cannot fsync a directory; the rename is then as durable as they allow.
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'EISDIR' && code !== 'EPERM') throw error;
  } finally {
    await handle.close();
  }
}

/**
 * Deletes temp files left by a crash between write and rename. A save takes milliseconds, so a temp file
 * older than a minute is abandoned (process ids are no guide: in a container every run is pid 1).
 */
async function removeStaleTempFiles(dir: string): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!TEMP.test(entry)) continue;
    const path = join(dir, entry);
    try {
      if (Date.now() - (await stat(path)).mtimeMs > STALE_TEMP_MS) await rm(path, { force: true });
    } catch {
      // gone already, or not ours to delete
    }
  }
}
