/**
 * Checkpoints as files in CHECKPOINT_PATH: `<dir>/.<name>.sluice.json`, one per name. PGSync's own
 * `<dir>/.<name>` (an integer) is never written; when it is the only file, `load` returns undefined and
 * records a warning. Every write is atomic and durable: temp file, fsync, rename over the old file,
 * fsync of the directory. A crash leaves either the old or the new checkpoint, never a torn one.
 *
 * Ownership leases (for processes sharing the directory on one machine): `<dir>/.<name>.sluice.lease`, created
 * exclusively, holding the holder and its time to live; the owner renews it by touching it, so it expires at its
 * modification time plus that time (wall clock: a clock stepped forward by more than a fifth of the time to live can
 * end a lease early). Only a free lease is created without more ado; everything done to an existing one (renewal,
 * release, taking it once expired, and a fenced checkpoint write checking it) happens while holding its guard,
 * `<lease>.guard`, also created exclusively, so no process ever removes or touches a lease another has just taken.
 */
import { randomBytes } from 'node:crypto';
import { constants, existsSync, readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { access, link, open, readFile, readdir, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FileHandle } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AppError } from '../errors/app-error.js';
import { checkName, decodeCheckpoint, encodeCheckpoint, KeyedQueue, notOwner, pgsyncCheckpointWarning } from './checkpoint-codec.js';
import type { Checkpoint, CheckpointStore, LeaseFence, LeaseState } from './checkpoint-store.js';

const SUFFIX = '.sluice.json';
const LEASE_SUFFIX = '.sluice.lease';
/** Temp files: `.<name>.sluice.json.<pid>.<random>.tmp`, lease guards being written (`….guard.<pid>.<random>.draft`), open's probes. */
const TEMP = /^(\..+\.sluice\.(json\.\d+\.[0-9a-f]+\.tmp|lease\.guard\.\d+\.[0-9a-f]+\.draft)|\.sluice-probe\.\d+\.[0-9a-f]+\.tmp(\.link(\.renamed)?)?)$/;
const STALE_TEMP_MS = 60_000;
/** A guard is held for a few file operations; one this old was left by a crashed process. */
const STALE_GUARD_MS = 30_000;
/** How long an operation waits for a guard held by a live process before failing. */
const GUARD_WAIT_MS = 60_000;
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
/** File system refusals that stay until someone acts (unlike a full disk, which may be freed). */
const REFUSED_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

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
    // Every kind of operation the store makes, so that a refusal later means something changed after start: create,
    // hard-link (lease guards), rename, fsync the directory (which needs it readable), delete.
    const probe = join(path, `.sluice-probe.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    const linked = `${probe}.link`;
    let step = 'is not writable: grant this process write access or set CHECKPOINT_PATH elsewhere';
    try {
      await (await open(probe, 'wx', 0o600)).close();
      step = 'does not support or refuses hard links (lease guards need them; a mount that maps file owners can refuse them): use a local file system, or SLUICE_CHECKPOINT_STORE=redis or postgres';
      await link(probe, linked);
      step = 'is not writable: grant this process write access or set CHECKPOINT_PATH elsewhere';
      await rename(linked, `${linked}.renamed`);
      await unlink(`${linked}.renamed`);
      step = 'is not readable: grant this process read access to the directory (to make saves durable) or set CHECKPOINT_PATH elsewhere';
      await syncDirectory(path);
      step = 'is not writable: grant this process write access or set CHECKPOINT_PATH elsewhere';
      await unlink(probe);
    } catch (error) {
      for (const leftover of [probe, linked, `${linked}.renamed`]) await rm(leftover, { force: true }).catch(() => undefined);
      throw fail(step, error);
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

  async save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void> {
    const path = this.path(name);
    const text = `${encodeCheckpoint(checkpoint)}\n`;
    return this.run(name, () => this.fenced('save', name, fence, () => this.write(name, path, text)));
  }

  private async write(name: string, path: string, text: string): Promise<void> {
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    let handle: FileHandle | undefined;
    try {
      handle = await open(temp, 'wx', 0o600);
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
  }

  async remove(name: string, fence?: LeaseFence): Promise<void> {
    const path = this.path(name);
    return this.run(name, () =>
      this.fenced('delete', name, fence, async () => {
        try {
          await unlink(path);
          await syncDirectory(this.dir);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw this.ioError(`cannot delete checkpoint ${path}`, error);
        }
      }),
    );
  }

  /** `write` as is, or under the fence's lease guard once the lease is found held by the fence's holder. */
  private async fenced(doing: 'save' | 'delete', name: string, fence: LeaseFence | undefined, write: () => Promise<void>): Promise<void> {
    if (fence === undefined) return write();
    const lease = this.leasePath(fence.lease);
    let held: boolean;
    try {
      held = await withGuard(lease, async () => {
        const found = await readLease(lease);
        if (found?.holder !== fence.holder || found.expiresAt <= Date.now()) return false;
        await write();
        return true;
      });
    } catch (error) {
      if (error instanceof AppError) throw error;
      throw this.ioError(`cannot check lease ${lease}`, error);
    }
    if (!held) throw notOwner(doing, name, fence);
  }

  private leasePath(name: string): string {
    checkFileName(name);
    return join(this.dir, `.${name}${LEASE_SUFFIX}`);
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    const path = this.leasePath(name);
    return this.run(`${name}${LEASE_SUFFIX}`, async () => {
      try {
        for (;;) {
          // A free lease is simply created: that succeeds for one process only, and never replaces a file.
          if (await createLease(path, holder, ttlMs)) return { owner: holder, remainingMs: ttlMs };
          const state = await withGuard(path, async (): Promise<LeaseState | undefined> => {
            const found = await readLease(path);
            if (found === undefined) return undefined; // released meanwhile: create it again
            const remainingMs = found.expiresAt - Date.now();
            if (remainingMs > 0 && found.holder !== holder) return { owner: found.holder, remainingMs };
            if (remainingMs > 0) {
              const now = new Date();
              await utimes(path, now, now);
              return { owner: holder, remainingMs: found.ttlMs };
            }
            // Expired. Under the guard nobody else removes or renews it, and nobody creates one while it exists.
            await unlink(path);
            return (await createLease(path, holder, ttlMs)) ? { owner: holder, remainingMs: ttlMs } : undefined;
          });
          if (state !== undefined) return state;
        }
      } catch (error) {
        throw this.ioError(`cannot claim lease ${path}`, error);
      }
    });
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    const path = this.leasePath(name);
    return this.run(`${name}${LEASE_SUFFIX}`, async () => {
      try {
        await withGuard(path, async () => {
          const found = await readLease(path);
          if (found?.holder === holder) await unlink(path);
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw this.ioError(`cannot release lease ${path}`, error);
      }
    });
  }

  async leaseOf(name: string): Promise<LeaseState | undefined> {
    const path = this.leasePath(name);
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
    const refused = REFUSED_CODES.has((error as NodeJS.ErrnoException).code ?? '');
    const hint = refused ? `: the file system refuses this process (permissions, an immutable file, a read-only mount), which waiting does not change; fix it, then start again` : '';
    return new AppError('CKP_UNAVAILABLE', `${doing} (CHECKPOINT_PATH ${this.dir}): ${(error as Error).message}${hint}`, {
      cause: error,
      // Like a revoked grant on the PostgreSQL store or a Redis ACL refusal: stop with the reason instead of retrying.
      details: { path: this.dir, ...(refused ? { retryable: false } : {}) },
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
    handle = await open(path, 'wx', 0o600);
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

/**
 * The lease at `path`, or undefined when there is none. A file being written (empty, torn) counts as held now.
 * Content and modification time come from one open file, never from two files that replaced each other.
 */
async function readLease(path: string): Promise<FileLease | undefined> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, 'r');
    const info = await handle.stat();
    const text = await handle.readFile('utf8');
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
  } finally {
    await handle?.close();
  }
}

/**
 * Runs `task` while holding the guard of the lease at `lease` (a file created exclusively beside it), so that at
 * most one process at a time changes that lease. A guard older than STALE_GUARD_MS was left by a crashed process
 * and is removed (moved aside first, and put back when what was moved is not the stale one seen).
 */
async function withGuard<T>(lease: string, task: () => Promise<T>): Promise<T> {
  const guard = `${lease}.guard`;
  const deadline = Date.now() + GUARD_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    if (await createGuard(guard)) {
      try {
        return await task();
      } finally {
        await unlink(guard).catch(() => undefined);
      }
    }
    const seen = await stat(guard).catch(() => undefined);
    if (seen !== undefined && (Date.now() - seen.mtimeMs > STALE_GUARD_MS || (await holderGone(guard)))) {
      await removeStaleGuard(guard, seen);
      continue;
    }
    if (Date.now() > deadline) throw new Error(`lease guard ${guard} held for more than ${GUARD_WAIT_MS / 1000} s`);
    await sleep(Math.min(50, 2 + attempt * 2));
  }
}

/**
 * Creates the guard already naming its holder (written beside it, then linked in place: the guard never exists
 * empty), or returns false when another process holds it. The holder is named by host, pid, pid namespace and the
 * process's start time, so that a guard left by a process that died holding it (SIGKILL during a checkpoint save)
 * is seen to be gone at once.
 */
async function createGuard(guard: string): Promise<boolean> {
  const draft = `${guard}.${process.pid}.${randomBytes(4).toString('hex')}.draft`;
  await writeFile(draft, guardHolder(), { mode: 0o600 });
  try {
    await link(draft, guard);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}

/** `host pid pid-namespace start-time` of this process; `-` for what the platform does not tell (no /proc). */
function guardHolder(): string {
  return `${hostname()} ${process.pid} ${pidNamespace() ?? '-'} ${startTimeOf(process.pid) ?? '-'}`;
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined when there is no such process. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count from after its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * True when the guard's holder is known to be gone: a process of this host and pid namespace that no longer runs,
 * or whose pid now belongs to a process started later. A holder that cannot be told (another host or namespace, a
 * platform without /proc, a guard from an older version) is waited for until the guard is stale.
 */
async function holderGone(guard: string): Promise<boolean> {
  const text = await readFile(guard, 'utf8').catch(() => undefined);
  const [host, pidText, namespace, startTime] = (text ?? '').split(' ');
  const ours = pidNamespace();
  if (host !== hostname() || pidText === undefined || !/^\d+$/.test(pidText) || ours === undefined || namespace !== ours || startTime === undefined || startTime === '-') return false;
  const now = startTimeOf(Number(pidText));
  return now === undefined ? existsSync('/proc/self') : now !== startTime;
}

async function removeStaleGuard(guard: string, seen: { ino: number; mtimeMs: number }): Promise<void> {
  const aside = `${guard}.${process.pid}.${randomBytes(4).toString('hex')}.stale`;
  try {
    await rename(guard, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  const moved = await stat(aside).catch(() => undefined);
  if (moved !== undefined && (moved.ino !== seen.ino || moved.mtimeMs !== seen.mtimeMs)) {
    await link(aside, guard).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
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
