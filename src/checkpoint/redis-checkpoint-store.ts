/**
 * Checkpoints in Redis, in PGSync's meta hash `queue:<name>:meta`, so the seed's runbook step
 * `redis-cli del "queue:app_company:meta"` keeps meaning "forget progress, sync this index again".
 *
 * Fields written by `save` (one MULTI, so both change together):
 * - `checkpoint`: the acknowledged LSN as a JSON string (`"0/16B3748"`, `null` before the first one). PGSync
 *   stored a JSON integer (a txid) here; the field stays a JSON value so PGSync tooling still parses it.
 * - `sluice`: the JSON of the whole Checkpoint. Only this field is read back.
 * PGSync's `txid_current` field is left alone. A hash holding only PGSync's fields means nothing to Sluice:
 * `load` returns undefined (a fresh sync) and records a warning.
 *
 * Durability: Redis acknowledges a write once it is in memory. Only `appendonly yes` with
 * `appendfsync always` makes it durable before the reply; with `everysec` up to about a second of writes,
 * and without AOF everything since the last RDB snapshot, is lost when the Redis server crashes. A lost or
 * older checkpoint costs repeated work (snapshot chunks done again, or a new snapshot of the index when the key
 * is gone or older than its slot's position), never lost changes.
 * `open` checks the server settings and reports the trade-off through `warnings()`. Replication to replicas is
 * asynchronous too: a failover can promote a replica without the latest saves. With REDIS_WAIT_REPLICAS, each save
 * and delete ends with `WAIT`, and counts as done only once that many replicas have it.
 *
 * Ownership leases live beside, in `sluice:<name>:lease` (outside PGSync's `queue:` keys): the holder as value,
 * expiring by Redis' own clock (PX). Claim and release are Lua scripts, so checking the holder and writing are one
 * step for the server.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { RedisConfig, RedisSentinelConfig } from '../config/config-types.js';
import { redact, redactUrl } from '../config/redact.js';
import { AppError } from '../errors/app-error.js';
import { checkName, decodeCheckpoint, encodeCheckpoint, notOwner, pgsyncCheckpointWarning } from './checkpoint-codec.js';
import type { Checkpoint, CheckpointStore, LeaseFence, LeaseState } from './checkpoint-store.js';

/**
 * What every lease script first reads: the holder named at KEYS[1], or false when there is no lease Sluice wrote there.
 * Sluice only writes strings with an expiry: a value of another type or without expiry was put there by hand, and
 * read as a lease it would keep the index unclaimable until someone deleted it (GET fails on another type).
 */
const LEASE_HOLDER = `
local function lease_holder(key)
  if redis.call('TYPE', key).ok ~= 'string' or redis.call('PTTL', key) < 0 then return false end
  return redis.call('GET', key)
end`;
/**
 * Sets the lease when free or already the claimant's; answers the holder, its milliseconds left, and what was
 * replaced ('' when nothing unreadable was).
 */
const CLAIM_SCRIPT = `${LEASE_HOLDER}
local replaced = ''
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'none' and not lease_holder(KEYS[1]) then
  replaced = kind == 'string' and 'a string without expiry' or ('a value of type ' .. kind)
  redis.call('DEL', KEYS[1])
end
local holder = lease_holder(KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {ARGV[1], tonumber(ARGV[2]), replaced}
end
return {holder, redis.call('PTTL', KEYS[1]), replaced}`;
/** The holder and its time left, read together; nothing when there is no lease. */
const LEASE_OF_SCRIPT = `${LEASE_HOLDER}
local holder = lease_holder(KEYS[1])
if holder == false then return false end
return {holder, redis.call('PTTL', KEYS[1])}`;
/**
 * Writes both fields of a checkpoint only while the lease KEYS[2] is ARGV[1]'s (an expired key reads as gone), in
 * the same atomic step: a save queued or resent after a reconnect cannot land once the lease has passed on.
 * A non-hash value an old PGSync left at the key is replaced, as in an unfenced save.
 */
const FENCED_SAVE_SCRIPT = `${LEASE_HOLDER}
if lease_holder(KEYS[2]) ~= ARGV[1] then return 0 end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return 1`;
/** Deletes KEYS[1] only while the lease KEYS[2] is ARGV[1]'s. */
const FENCED_DELETE_SCRIPT = `${LEASE_HOLDER}
if lease_holder(KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1`;
/** Deletes the lease only when the caller holds it. */
const RELEASE_SCRIPT = `${LEASE_HOLDER}
if lease_holder(KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Field holding Sluice's Checkpoint JSON in the meta hash. */
export const SLUICE_FIELD = 'sluice';
/** PGSync's checkpoint field, kept up to date with the acknowledged LSN. */
export const CHECKPOINT_FIELD = 'checkpoint';

export interface RedisCheckpointStoreOptions {
  /** Milliseconds before a command without reply fails (default 60 000). */
  commandTimeoutMs?: number;
  /** Milliseconds to wait for the connection at open (default 10 000). */
  connectTimeoutMs?: number;
}

export class RedisCheckpointStore implements CheckpointStore {
  private readonly found: string[] = [];
  private readonly pgsync = new Map<string, string>();
  private closed = false;
  /** Connections `client` has made since open: a write and its WAIT count only on one connection. */
  private connections = 0;

  private constructor(
    private readonly client: Redis,
    /**
     * Lease claims, renewals and lookups. With REDIS_WAIT_REPLICAS a connection of their own: Redis serves nothing
     * else of a connection blocked in WAIT, and a renewal held up behind it would let the lease lapse.
     */
    private readonly leases: Redis,
    private readonly where: string,
    private readonly secrets: string[],
    warnings: string[],
    /** True when the server fsyncs every write before replying (`appendonly yes`, `appendfsync always`). */
    readonly durable: boolean | undefined,
    private readonly wait: RedisConfig['wait'],
  ) {
    this.found.push(...warnings);
    client.on('ready', () => this.connections++);
  }

  /** The meta hash of `name`, as PGSync names it. */
  static key(name: string): string {
    return `queue:${name}:meta`;
  }

  /** The ownership lease of `name`. */
  static leaseKey(name: string): string {
    return `sluice:${name}:lease`;
  }

  /**
   * Connects (password, ACL user, db, TLS) and reads the server's eviction and persistence settings.
   * Throws `AppError('CKP_UNAVAILABLE')` when Redis cannot be reached or refuses the login; the message
   * never contains the password.
   */
  static async open(config: RedisConfig, options: RedisCheckpointStoreOptions = {}): Promise<RedisCheckpointStore> {
    const where = describe(config);
    const secrets = [config.password, config.tls?.key, config.sentinel?.password].filter((s): s is string => s !== undefined && s !== '');
    const opening = { done: false };
    const client = config.sentinel === undefined ? new Redis(config.url, clientOptions(config, options, opening)) : new Redis(clientOptions(config, options, opening));
    let lastError: Error | undefined;
    /** What the Sentinels last answered that was not a primary (unreachable, no such name, refused). */
    let sentinelAnswer: string | undefined;
    // Without a listener ioredis prints every connection error; commands report their own failures.
    client.on('error', (error: Error) => (lastError = error));
    client.on('sentinelError', (error: Error) => (sentinelAnswer = error.message.replace(/got an invalid reply: null$/, `knows no primary named "${config.sentinel?.name}"`)));
    try {
      await client.connect();
      await client.ping();
      opening.done = true;
    } catch (error) {
      client.disconnect();
      const cause = lastError ?? (error as Error);
      throw unavailable(where, 'connect', sentinelAnswer === undefined ? cause : new Error(`${cause.message} (${sentinelAnswer})`), secrets);
    }
    let leases = client;
    if (config.wait !== undefined) {
      leases = client.duplicate({ connectionName: 'sluice-leases' });
      leases.on('error', (error: Error) => (lastError = error));
      try {
        await leases.connect();
        await leases.ping();
      } catch (error) {
        leases.disconnect();
        client.disconnect();
        throw unavailable(where, 'connect (lease connection)', lastError ?? error, secrets);
      }
    }
    const settings = await readSettings(client);
    const warnings: string[] = [];
    const policy = settings.get('maxmemory-policy');
    if (policy !== undefined && policy !== 'noeviction') {
      warnings.push(
        `Redis maxmemory-policy is ${policy}: checkpoints can be evicted, which forces a full re-sync; set maxmemory-policy noeviction`,
      );
    }
    const aof = settings.get('appendonly');
    const fsync = settings.get('appendfsync');
    let durable: boolean | undefined;
    // With the append-only file on and its fsync policy unknown (INFO only), durability is not known either.
    if (aof !== undefined && (aof === 'no' || fsync !== undefined)) {
      durable = aof === 'yes' && fsync === 'always';
      if (!durable) {
        const mode = aof === 'yes' ? `appendfsync ${fsync ?? '?'}` : 'appendonly no';
        warnings.push(
          `Redis has ${mode}: a checkpoint is acknowledged once it is in memory, so a Redis crash can lose the latest ` +
            'checkpoints, and each index whose slot was acknowledged past its restored checkpoint is then snapshotted again (nothing is lost); ' +
            'set appendonly yes and appendfsync always for durable checkpoints',
        );
      }
    }
    const wait = config.wait;
    if (wait !== undefined && settings.replicas !== undefined && settings.replicas < wait.replicas) {
      warnings.push(
        `the Redis primary has ${settings.replicas} replica${settings.replicas === 1 ? '' : 's'} connected and REDIS_WAIT_REPLICAS is ${wait.replicas}: ` +
          `each checkpoint save waits up to ${wait.timeoutMs / 1000} s and fails (nothing is acknowledged to PostgreSQL) until enough replicas are connected`,
      );
    }
    return new RedisCheckpointStore(client, leases, where, secrets, warnings, durable, wait);
  }

  async load(name: string): Promise<Checkpoint | undefined> {
    checkName(name);
    const key = RedisCheckpointStore.key(name);
    let values: (string | null)[];
    try {
      values = await this.client.hmget(key, SLUICE_FIELD, CHECKPOINT_FIELD);
    } catch (error) {
      if (!isWrongType(error)) throw unavailable(this.where, `load of ${key}`, error, this.secrets);
      // An old PGSync version stored a plain value at this key: not ours, replaced by the next save.
      const raw = await this.client.get(key).catch(() => null);
      this.notePgsync(name, key, raw ?? '(non-hash value)');
      return undefined;
    }
    const [sluice, checkpoint] = values;
    if (sluice === null || sluice === undefined) {
      if (checkpoint !== null && checkpoint !== undefined) this.notePgsync(name, key, checkpoint);
      return undefined;
    }
    const stored = decodeCheckpoint(sluice, `${this.where} ${key} field ${SLUICE_FIELD}`);
    if (checkpoint !== JSON.stringify(stored.lsn ?? null)) {
      // Sluice writes both fields in one MULTI: someone else (a PGSync still running?) changed `checkpoint`.
      this.note(
        `Redis key ${key} field ${CHECKPOINT_FIELD} (${String(checkpoint).slice(0, 40)}) was changed by another process ` +
          '(is PGSync still running against it?); Sluice resumes from its own checkpoint',
      );
    }
    return stored;
  }

  async save(name: string, checkpoint: Checkpoint, fence?: LeaseFence): Promise<void> {
    checkName(name);
    const key = RedisCheckpointStore.key(name);
    const fields = { [CHECKPOINT_FIELD]: JSON.stringify(checkpoint.lsn ?? null), [SLUICE_FIELD]: encodeCheckpoint(checkpoint) };
    const connection = this.connections;
    if (fence !== undefined) {
      let written: number;
      try {
        const args = [fence.holder, CHECKPOINT_FIELD, fields[CHECKPOINT_FIELD], SLUICE_FIELD, fields[SLUICE_FIELD]];
        written = Number(await this.client.eval(FENCED_SAVE_SCRIPT, 2, key, RedisCheckpointStore.leaseKey(fence.lease), ...args));
      } catch (error) {
        throw unavailable(this.where, `save of ${key}`, error, this.secrets);
      }
      if (written !== 1) throw notOwner('save', name, fence);
      await this.replicated(`save of ${key}`, connection);
      this.pgsync.delete(name);
      return;
    }
    try {
      const replies = await this.client.multi().hset(key, fields).exec();
      const failure = replies?.find(([error]) => error !== null)?.[0];
      if (failure) {
        if (!isWrongType(failure)) throw failure;
        // A non-hash value left by an old PGSync version: delete and replace it, as PGSync does.
        const retried = await this.client.multi().del(key).hset(key, fields).exec();
        const again = retried?.find(([error]) => error !== null)?.[0];
        if (again) throw again;
      } else if (replies === null) {
        throw new Error('transaction aborted');
      }
    } catch (error) {
      throw unavailable(this.where, `save of ${key}`, error, this.secrets);
    }
    await this.replicated(`save of ${key}`, connection);
    this.pgsync.delete(name);
  }

  async remove(name: string, fence?: LeaseFence): Promise<void> {
    checkName(name);
    const key = RedisCheckpointStore.key(name);
    const connection = this.connections;
    let deleted = 1;
    try {
      if (fence === undefined) await this.client.del(key);
      else deleted = Number(await this.client.eval(FENCED_DELETE_SCRIPT, 2, key, RedisCheckpointStore.leaseKey(fence.lease), fence.holder));
    } catch (error) {
      throw unavailable(this.where, `delete of ${key}`, error, this.secrets);
    }
    if (deleted !== 1) throw notOwner('delete', name, fence!);
    await this.replicated(`delete of ${key}`, connection);
  }

  /**
   * With REDIS_WAIT_REPLICAS: waits until that many replicas have every write of this connection so far. Short of
   * them, the write stays on the primary but the call fails (retryable), so that the position it carries is not
   * acknowledged to PostgreSQL: a failover to a replica without it would otherwise cost a snapshot of the index.
   * WAIT counts from the last write of its own connection: one sent again on a new connection (ioredis resends what
   * a dropped one left unanswered) would count replicas that never had the write, so a save spanning two
   * connections (`connection`, counted before the write) is not counted as done either.
   */
  private async replicated(doing: string, connection: number): Promise<void> {
    const wait = this.wait;
    if (wait === undefined) return;
    let reached: number;
    try {
      reached = Number(await this.client.call('WAIT', String(wait.replicas), String(wait.timeoutMs)));
    } catch (error) {
      throw unavailable(this.where, `${doing}: WAIT`, error, this.secrets, `${REQUIRED_ACL} +wait`);
    }
    if (this.connections !== connection) {
      throw new AppError('CKP_UNAVAILABLE', `${this.where}: ${doing}: the connection to Redis was replaced before WAIT answered, so it cannot tell whether the replicas have it: not counted as done`, {
        details: { redisError: 'WAIT' },
      });
    }
    if (reached < wait.replicas) {
      throw new AppError(
        'CKP_UNAVAILABLE',
        `${this.where}: ${doing} reached ${reached} of the ${wait.replicas} replicas REDIS_WAIT_REPLICAS asks for within ${wait.timeoutMs / 1000} s: not counted as done`,
        { details: { redisError: 'WAIT' } },
      );
    }
  }

  async claimLease(name: string, holder: string, ttlMs: number): Promise<LeaseState> {
    checkName(name);
    const key = RedisCheckpointStore.leaseKey(name);
    try {
      const [owner, remaining, replaced] = (await this.leases.eval(CLAIM_SCRIPT, 1, key, holder, String(Math.ceil(ttlMs)))) as [string, number, string];
      return { owner, remainingMs: Math.max(0, Number(remaining)), ...(replaced !== '' ? { replaced } : {}) };
    } catch (error) {
      throw unavailable(this.where, `lease claim of ${key}`, error, this.secrets);
    }
  }

  async releaseLease(name: string, holder: string): Promise<void> {
    checkName(name);
    const key = RedisCheckpointStore.leaseKey(name);
    try {
      await this.leases.eval(RELEASE_SCRIPT, 1, key, holder);
    } catch (error) {
      throw unavailable(this.where, `lease release of ${key}`, error, this.secrets);
    }
  }

  async leaseOf(name: string): Promise<LeaseState | undefined> {
    checkName(name);
    const key = RedisCheckpointStore.leaseKey(name);
    try {
      const found = (await this.leases.eval(LEASE_OF_SCRIPT, 1, key)) as [string, number] | null;
      return found === null ? undefined : { owner: found[0], remainingMs: Math.max(0, Number(found[1])) };
    } catch (error) {
      throw unavailable(this.where, `lease lookup of ${key}`, error, this.secrets);
    }
  }

  /** Warnings from open (eviction, persistence) and from loads that found only a PGSync checkpoint. */
  warnings(): string[] {
    return [...this.found];
  }

  /** The PGSync checkpoint value the last `load(name)` found instead of a Sluice one, if any. */
  pgsyncCheckpoint(name: string): string | undefined {
    return this.pgsync.get(name);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...new Set([this.client, this.leases])].map(quit));
  }

  private notePgsync(name: string, key: string, value: string): void {
    this.pgsync.set(name, value);
    this.note(pgsyncCheckpointWarning(name, `Redis key ${key}`, value));
  }

  private note(warning: string): void {
    if (!this.found.includes(warning)) this.found.push(warning);
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through: drop the connection
    }
  }
  client.disconnect();
}

function clientOptions(config: RedisConfig, options: RedisCheckpointStoreOptions, opening: { done: boolean }): RedisOptions {
  const tls = tlsOptions(config);
  return {
    lazyConnect: true,
    db: config.db,
    ...(config.username === undefined ? {} : { username: config.username }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(tls === undefined ? {} : { tls }),
    connectionName: 'sluice-checkpoint',
    connectTimeout: options.connectTimeoutMs ?? 10_000,
    commandTimeout: options.commandTimeoutMs ?? 60_000,
    // ioredis reconnects on its own; a command issued meanwhile waits for it, and fails (CKP_UNAVAILABLE)
    // after the command timeout or 20 reconnection attempts, whichever comes first.
    enableOfflineQueue: true,
    maxRetriesPerRequest: 20,
    // A primary demoted by a failover answers writes with READONLY. Under Sentinel: reconnect, which asks the Sentinels
    // for the new primary, and send the command again (the lease scripts and saves are idempotent; a save's MULTI is
    // discarded rather than sent again, and retried by the caller). Without: only reconnect (a managed Redis's
    // endpoint then leads to its new primary), and let the command fail with READONLY, so that a REDIS_URL naming a
    // replica is reported, at the caller's pace, rather than reconnected to in a loop.
    reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? (config.sentinel === undefined ? 1 : 2) : false),
    ...(config.sentinel === undefined ? {} : sentinelOptions(config.sentinel, tls, options, opening)),
  };
}

/** Rounds over every Sentinel at open before giving up (later, reconnection goes on for as long as it takes). */
const SENTINEL_OPEN_ROUNDS = 3;

/** ioredis' Sentinel mode: asks the Sentinels for the primary, checks its role, and follows a failover at once. */
function sentinelOptions(sentinel: RedisSentinelConfig, tls: ConnectionOptions | undefined, options: RedisCheckpointStoreOptions, opening: { done: boolean }): RedisOptions {
  return {
    sentinels: sentinel.hosts.map(({ host, port }) => ({ host, port })),
    name: sentinel.name,
    role: 'master',
    ...(sentinel.username === undefined ? {} : { sentinelUsername: sentinel.username }),
    ...(sentinel.password === undefined ? {} : { sentinelPassword: sentinel.password }),
    // With TLS (rediss), the Sentinels are reached with the same TLS settings as the primary.
    ...(tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: tls }),
    failoverDetector: true,
    // ioredis retries the Sentinels forever by default, so a start with every Sentinel down, or none monitoring the
    // name, would hang without a word: at open it gives up after a few rounds (CKP_UNAVAILABLE says why).
    sentinelRetryStrategy: (attempt: number) => (opening.done ? Math.min(attempt * 200, 2000) : attempt < SENTINEL_OPEN_ROUNDS ? 200 * attempt : null),
    sentinelCommandTimeout: options.connectTimeoutMs ?? 10_000,
    // The configured Sentinels only (no SENTINEL SENTINELS): the ACL a Sentinel user needs stays small.
    updateSentinels: false,
  };
}

function tlsOptions(config: RedisConfig): ConnectionOptions | undefined {
  const tls = config.tls ?? (config.url.startsWith('rediss:') ? { rejectUnauthorized: true } : undefined);
  if (tls === undefined) return undefined;
  const options: ConnectionOptions = { rejectUnauthorized: tls.rejectUnauthorized };
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  if (tls.checkHostname === false) options.checkServerIdentity = () => undefined;
  return options;
}

/**
 * `CONFIG GET` of the settings that matter. Managed Redis often forbids or renames CONFIG: `INFO` then still tells the
 * eviction policy and whether the append-only file is on (not its fsync policy, which stays unknown). `INFO` also
 * tells how many replicas are connected (unknown when it is forbidden).
 */
async function readSettings(client: Redis): Promise<{ get(name: string): string | undefined; replicas: number | undefined }> {
  const settings = new Map<string, string>();
  let replicas: number | undefined;
  for (const name of ['maxmemory-policy', 'appendonly', 'appendfsync']) {
    try {
      const reply = (await client.call('CONFIG', 'GET', name)) as unknown;
      const flat = Array.isArray(reply) ? reply : Object.entries(reply as Record<string, unknown>).flat();
      for (let i = 0; i + 1 < flat.length; i += 2) settings.set(String(flat[i]), String(flat[i + 1]));
    } catch {
      // Forbidden or renamed: INFO below.
    }
  }
  try {
    const info = String(await client.info());
    const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim();
    const connected = field('connected_slaves');
    if (connected !== undefined && /^\d+$/.test(connected)) replicas = Number(connected);
    const policy = field('maxmemory_policy');
    if (policy !== undefined && !settings.has('maxmemory-policy')) settings.set('maxmemory-policy', policy);
    const aof = field('aof_enabled');
    if (aof !== undefined && !settings.has('appendonly')) settings.set('appendonly', aof === '1' ? 'yes' : 'no');
  } catch {
    // INFO forbidden as well: the settings stay unknown.
  }
  return { get: (name) => settings.get(name), replicas };
}

function describe(config: RedisConfig): string {
  const sentinel = config.sentinel;
  if (sentinel === undefined) return `Redis ${redactUrl(config.url)} db ${config.db}`;
  const hosts = sentinel.hosts.map(({ host, port }) => `${host.includes(':') ? `[${host}]` : host}:${port}`).join(',');
  return `Redis primary "${sentinel.name}" of Sentinels ${hosts} db ${config.db}`;
}

function isWrongType(error: unknown): boolean {
  return /^WRONGTYPE/.test((error as Error | undefined)?.message ?? '');
}

/**
 * An AppError without the driver error as cause: ioredis attaches the command and its arguments (AUTH
 * carries the password) to its errors. Only the message, with every secret masked, is kept.
 */
function unavailable(where: string, doing: string, error: unknown, secrets: string[], acl = REQUIRED_ACL): AppError {
  const e = error as { message?: string; name?: string; code?: string };
  const message = redact(`${where}: ${doing} failed: ${e.message ?? String(error)}`, secrets);
  // An ACL refusal does not pass by waiting: said at once, with what to grant, instead of retried for good. A command
  // refused inside a script (the leases' Lua) is answered in other words than NOPERM.
  if (/^NOPERM|can't run this command or subcommand|ACL failure in script/.test(e.message ?? '')) {
    return new AppError('CKP_UNAVAILABLE', `${message}. The Redis user needs ${acl} (README, Redis)`, { details: { redisError: 'NOPERM', retryable: false } });
  }
  return new AppError('CKP_UNAVAILABLE', message, { details: { redisError: e.code ?? e.name } });
}

/** The keys and commands the store uses: checkpoints, leases (through scripts), and the settings check. */
export const REQUIRED_ACL =
  '~queue:*:meta ~sluice:*:lease +ping +info +client|setname +select +hmget +get +set +pttl +type +hset +del +multi +exec +eval +quit +config|get';
