// The checkpoint stores against real servers: one shared contract run over Redis, files and PostgreSQL,
// then what each adapter adds (PGSync's Redis key and formats, auth, eviction warnings, reconnection, TLS;
// atomic files; table creation and grants).
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint, CheckpointStore } from '../../src/checkpoint/checkpoint-store.js';
import { FileCheckpointStore } from '../../src/checkpoint/file-checkpoint-store.js';
import { openCheckpointStore } from '../../src/checkpoint/open-checkpoint-store.js';
import { leaseExpiry, PostgresCheckpointStore } from '../../src/checkpoint/postgres-checkpoint-store.js';
import { RedisCheckpointStore, REQUIRED_ACL } from '../../src/checkpoint/redis-checkpoint-store.js';
import { isRetryable } from '../../src/pipeline/index-sync.js';
import type { RedisConfig, SluiceConfig } from '../../src/config/config-types.js';
import { AppError } from '../../src/errors/app-error.js';
import { parseEnvironment } from '../../src/config/env.js';
import { findFreePort } from '../helpers/postgres-cluster.js';
import { waitFor } from '../helpers/live-sluice.js';
import { startRedisServer, type RedisTestServer } from '../helpers/redis-server.js';
import { createTestDatabase, testPool, testPostgresUrl, testRedisUrl, type TestDatabase } from '../helpers/test-env.js';

const unique = (label: string): string => `ckp_${label}_${randomBytes(4).toString('hex')}`;

function sample(slot: string, lsn = '0/16B3748'): Checkpoint {
  return {
    slot,
    lsn,
    snapshot: { snapshotName: '00000003-00000002-1', consistentLsn: '0/16B3700', doneUpTo: ['42', 'a|b'], complete: false },
    fingerprint: 'sha256:0f1e2d',
    updatedAt: new Date().toISOString(),
  };
}

/** A RedisConfig as the config parser builds it: credentials apart from the URL. */
function redisConfig(url: string, extra: Partial<RedisConfig> = {}): RedisConfig {
  const u = new URL(url);
  const config: RedisConfig = { url: `${u.protocol}//${u.host}`, db: 0, ...extra };
  if (u.password !== '' && config.password === undefined) config.password = decodeURIComponent(u.password);
  return config;
}

async function failure(promise: Promise<unknown>): Promise<AppError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

interface Bed {
  open(): Promise<CheckpointStore>;
  cleanup(): Promise<void>;
}

const beds: { kind: string; setup: () => Promise<Bed> }[] = [
  { kind: 'redis', setup: async () => ({ open: () => RedisCheckpointStore.open(redisConfig(testRedisUrl())), cleanup: async () => undefined }) },
  {
    kind: 'file',
    setup: async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-ckp-'));
      return { open: () => FileCheckpointStore.open(dir), cleanup: async () => rmSync(dir, { recursive: true, force: true }) };
    },
  },
  {
    kind: 'postgres',
    setup: async () => {
      const db = await createTestDatabase('ckp_suite');
      const pool = testPool(db.url, 4);
      return { open: () => PostgresCheckpointStore.open(pool), cleanup: async () => (await pool.end(), await db.drop()) };
    },
  },
];

describe.each(beds)('$kind checkpoint store', ({ setup }) => {
  let bed: Bed;
  let store: CheckpointStore;
  beforeAll(async () => {
    bed = await setup();
    store = await bed.open();
  });
  afterAll(async () => {
    await store?.close();
    await bed?.cleanup();
  });

  it('loads undefined for an unknown name', async () => {
    expect(await store.load(unique('unknown'))).toBeUndefined();
  });

  it('round-trips a full checkpoint, also through a second store instance', async () => {
    const name = unique('round');
    const checkpoint = sample(name);
    await store.save(name, checkpoint);
    expect(await store.load(name)).toEqual(checkpoint);
    const other = await bed.open();
    try {
      expect(await other.load(name)).toEqual(checkpoint);
    } finally {
      await other.close();
    }
  });

  it('overwrites, and keeps the last of several saves issued at once', async () => {
    const name = unique('over');
    await store.save(name, sample(name, '0/1'));
    await store.save(name, { slot: name, lsn: '0/2', updatedAt: 'later' });
    expect(await store.load(name)).toEqual({ slot: name, lsn: '0/2', updatedAt: 'later' });
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.save(name, sample(name, `0/${i + 10}`))));
    expect((await store.load(name))?.lsn).toBe('0/19');
  });

  it('forgets a removed name, and removing an unknown name is fine', async () => {
    const name = unique('rm');
    await store.save(name, sample(name));
    await store.remove(name);
    expect(await store.load(name)).toBeUndefined();
    await store.remove(unique('never'));
  });

  it('keeps names apart', async () => {
    const [a, b] = [unique('a'), unique('b')];
    await store.save(a, sample(a, '0/A'));
    await store.save(b, sample(b, '0/B'));
    await store.remove(a);
    expect(await store.load(a)).toBeUndefined();
    expect((await store.load(b))?.lsn).toBe('0/B');
  });

  it('saves many names concurrently', async () => {
    const names = Array.from({ length: 20 }, (_, i) => unique(`c${i}`));
    await Promise.all(names.map((name, i) => store.save(name, sample(name, `0/${i.toString(16)}`))));
    const loaded = await Promise.all(names.map((name) => store.load(name)));
    expect(loaded.map((c) => c?.lsn)).toEqual(names.map((_, i) => `0/${i.toString(16)}`));
  });

  it('gives an ownership lease to one holder at a time, renews it for that holder, and ends it on release', async () => {
    const name = unique('lease');
    expect(await store.claimLease(name, 'host-a:1', 60_000)).toEqual({ owner: 'host-a:1', remainingMs: 60_000 });
    const refused = await store.claimLease(name, 'host-b:2', 60_000);
    expect(refused.owner).toBe('host-a:1');
    expect(refused.remainingMs).toBeGreaterThan(0);
    expect(refused.remainingMs).toBeLessThanOrEqual(60_000);
    expect((await store.claimLease(name, 'host-a:1', 60_000)).owner).toBe('host-a:1');
    // Another holder's release, or a release of another name, leaves the lease alone.
    await store.releaseLease(name, 'host-b:2');
    await store.releaseLease(unique('other'), 'host-a:1');
    expect((await store.claimLease(name, 'host-b:2', 60_000)).owner).toBe('host-a:1');
    // A second store instance (another process) sees the same lease.
    const other = await bed.open();
    try {
      expect((await other.claimLease(name, 'host-c:3', 60_000)).owner).toBe('host-a:1');
      await store.releaseLease(name, 'host-a:1');
      expect(await other.claimLease(name, 'host-c:3', 60_000)).toEqual({ owner: 'host-c:3', remainingMs: 60_000 });
      expect((await store.claimLease(name, 'host-a:1', 60_000)).owner).toBe('host-c:3');
    } finally {
      await other.close();
    }
    // Leases are not checkpoints: the checkpoint of the same name is untouched by them.
    expect(await store.load(name)).toBeUndefined();
  });

  it('makes a fenced save or delete only while the fence holder owns the lease, and refuses it with CKP_NOT_OWNER after', async () => {
    const name = unique('fenced');
    const fence = { lease: name, holder: 'host-a:1' };
    // No lease at all: refused, nothing written.
    expect((await failure(store.save(name, sample(name), fence))).code).toBe('CKP_NOT_OWNER');
    expect(await store.load(name)).toBeUndefined();
    await store.claimLease(name, 'host-a:1', 60_000);
    await store.save(name, sample(name, '0/10'), fence);
    // Another record (a rebuild's) fenced by the entry's lease.
    const rebuild = unique('fenced_rebuild');
    await store.save(rebuild, sample(rebuild, '0/11'), fence);
    expect((await store.load(name))?.lsn).toBe('0/10');
    // Another holder's fence is refused while host-a holds the lease.
    const other = { lease: name, holder: 'host-b:2' };
    expect((await failure(store.save(name, sample(name, '0/99'), other))).code).toBe('CKP_NOT_OWNER');
    expect((await failure(store.remove(name, other))).code).toBe('CKP_NOT_OWNER');
    expect((await store.load(name))?.lsn).toBe('0/10');
    // The lease passes on (released, then taken): host-a's late writes no longer land.
    await store.releaseLease(name, 'host-a:1');
    await store.claimLease(name, 'host-b:2', 60_000);
    const late = await failure(store.save(name, sample(name, '0/05'), fence));
    expect(late.code).toBe('CKP_NOT_OWNER');
    expect(late.message).toContain(`host-a:1 no longer holds the ownership lease ${name}`);
    expect((await failure(store.remove(rebuild, fence))).code).toBe('CKP_NOT_OWNER');
    expect((await store.load(name))?.lsn).toBe('0/10');
    expect((await store.load(rebuild))?.lsn).toBe('0/11');
    await store.remove(rebuild, other);
    expect(await store.load(rebuild)).toBeUndefined();
    // An expired lease fences nothing in, even for its last holder.
    await store.releaseLease(name, 'host-b:2');
    await store.claimLease(name, 'host-c:3', 300);
    await sleep(450);
    expect((await failure(store.save(name, sample(name, '0/12'), { lease: name, holder: 'host-c:3' }))).code).toBe('CKP_NOT_OWNER');
    expect((await store.load(name))?.lsn).toBe('0/10');
  });

  it('tells who holds a lease without claiming it, and nothing once it is released or expired', async () => {
    const name = unique('lookup');
    expect(await store.leaseOf(name)).toBeUndefined();
    await store.claimLease(name, 'host-a:1', 60_000);
    const held = await store.leaseOf(name);
    expect(held?.owner).toBe('host-a:1');
    expect(held?.remainingMs).toBeGreaterThan(0);
    expect(held?.remainingMs).toBeLessThanOrEqual(60_000);
    // Looking did not take it: another holder is still refused, and the owner still renews.
    expect((await store.claimLease(name, 'host-b:2', 60_000)).owner).toBe('host-a:1');
    await store.releaseLease(name, 'host-a:1');
    expect(await store.leaseOf(name)).toBeUndefined();
    await store.claimLease(name, 'host-c:3', 300);
    await sleep(450);
    expect(await store.leaseOf(name)).toBeUndefined();
  });

  it('lets another holder take a lease once it has expired, and only one of several at once', async () => {
    const name = unique('expiry');
    expect((await store.claimLease(name, 'dead-owner', 300)).owner).toBe('dead-owner');
    await sleep(450);
    const claims = await Promise.all(['s1', 's2', 's3', 's4'].map(async (holder) => ({ holder, state: await store.claimLease(name, holder, 60_000) })));
    const winners = claims.filter((c) => c.state.owner === c.holder);
    expect(winners).toHaveLength(1);
    for (const claim of claims) expect(claim.state.owner).toBe(winners[0]!.holder);
  });
});

describe('Redis checkpoint store', () => {
  let store: RedisCheckpointStore;
  let plain: Redis;
  const servers: RedisTestServer[] = [];
  const dedicated = async (options: Parameters<typeof startRedisServer>[0]): Promise<RedisTestServer> => {
    const server = await startRedisServer(options);
    servers.push(server);
    return server;
  };
  beforeAll(async () => {
    store = await RedisCheckpointStore.open(redisConfig(testRedisUrl()));
    plain = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await store?.close();
    plain?.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('writes PGSync\'s meta hash, and the runbook\'s `DEL queue:<name>:meta` forgets progress', async () => {
    const name = unique('app_company');
    const checkpoint = sample(name);
    await plain.hset(`queue:${name}:meta`, 'txid_current', '777');
    await store.save(name, checkpoint);
    const hash = await plain.hgetall(`queue:${name}:meta`);
    expect(hash).toEqual({ checkpoint: JSON.stringify('0/16B3748'), sluice: JSON.stringify(checkpoint), txid_current: '777' });
    await plain.del(`queue:${name}:meta`);
    expect(await store.load(name)).toBeUndefined();
  });

  it('loads a PGSync-only hash as undefined with a warning, then replaces its checkpoint on save', async () => {
    const name = unique('pgsync');
    await plain.hset(`queue:${name}:meta`, 'checkpoint', '12345');
    expect(await store.load(name)).toBeUndefined();
    expect(store.pgsyncCheckpoint(name)).toBe('12345');
    expect(store.warnings().some((w) => w.includes(`queue:${name}:meta`) && w.includes('PGSync'))).toBe(true);
    await store.save(name, sample(name));
    expect(store.pgsyncCheckpoint(name)).toBeUndefined();
    expect(await plain.hget(`queue:${name}:meta`, 'checkpoint')).toBe('"0/16B3748"');
    // A PGSync still writing the key is noticed; Sluice keeps its own checkpoint.
    await plain.hset(`queue:${name}:meta`, 'checkpoint', '99999');
    expect((await store.load(name))?.lsn).toBe('0/16B3748');
    expect(store.warnings().some((w) => w.includes('(99999) was changed by another process'))).toBe(true);
  });

  it('replaces a non-hash value left by old PGSync versions', async () => {
    const name = unique('oldkey');
    await plain.set(`queue:${name}:meta`, '12345');
    expect(await store.load(name)).toBeUndefined();
    await store.save(name, { slot: name, updatedAt: 'now' });
    expect(await plain.hget(`queue:${name}:meta`, 'checkpoint')).toBe('null');
    expect(await store.load(name)).toEqual({ slot: name, updatedAt: 'now' });
  });

  it('reports an unreadable sluice field as CKP_CORRUPT naming the key', async () => {
    const name = unique('corrupt');
    await plain.hset(`queue:${name}:meta`, 'sluice', '{"slot":');
    const error = await failure(store.load(name));
    expect(error.code).toBe('CKP_CORRUPT');
    expect(error.message).toContain(`queue:${name}:meta`);
  });

  it('takes a lease over a value no Sluice writes (another type, no expiry), saying what it replaced; fences and lookups read it as no lease', async () => {
    const name = unique('badlease');
    const key = RedisCheckpointStore.leaseKey(name);
    await plain.hset(key, 'holder', 'someone');
    expect(await store.leaseOf(name)).toBeUndefined();
    expect((await failure(store.save(name, sample(name), { lease: name, holder: 'someone' }))).code).toBe('CKP_NOT_OWNER');
    await store.releaseLease(name, 'someone');
    expect(await store.claimLease(name, 'host-a:1', 60_000)).toEqual({ owner: 'host-a:1', remainingMs: 60_000, replaced: 'a value of type hash' });
    expect(await plain.get(key)).toBe('host-a:1');
    // A lease set by hand without expiry would never pass on.
    await plain.set(key, 'pinned-by-hand');
    expect(await store.leaseOf(name)).toBeUndefined();
    expect(await store.claimLease(name, 'host-b:2', 60_000)).toEqual({ owner: 'host-b:2', remainingMs: 60_000, replaced: 'a string without expiry' });
    expect(await plain.pttl(key)).toBeGreaterThan(59_000);
    // A lease as Sluice writes it is not replaced.
    expect(await store.claimLease(name, 'host-c:3', 60_000)).toMatchObject({ owner: 'host-b:2' });
    expect((await store.claimLease(name, 'host-c:3', 60_000)).replaced).toBeUndefined();
  });

  it('authenticates with a password and an ACL user; a wrong password is CKP_UNAVAILABLE without the secret', async () => {
    const password = 'pa ss/w0rd%sekret';
    const server = await dedicated({ password });
    const ok = await RedisCheckpointStore.open(redisConfig(server.url));
    await ok.save('auth_ok', sample('auth_ok'));
    await ok.close();
    const admin = new Redis({ host: server.host, port: server.port, password });
    await admin.call('ACL', 'SETUSER', 'sluice_ckp', 'on', '>user-sekret-1', '~queue:*', '+@all');
    admin.disconnect();
    const acl = await RedisCheckpointStore.open({ url: `redis://${server.host}:${server.port}`, db: 0, username: 'sluice_ckp', password: 'user-sekret-1' });
    expect((await acl.load('auth_ok'))?.slot).toBe('auth_ok');
    await acl.close();
    for (const wrong of ['wrong-sekret-9', undefined]) {
      const config = redisConfig(`redis://${server.host}:${server.port}`, wrong === undefined ? {} : { password: wrong });
      const error = await failure(RedisCheckpointStore.open(config));
      expect(error.code).toBe('CKP_UNAVAILABLE');
      expect(error.message).toContain(`${server.host}:${server.port}`);
      expect(error.message).not.toContain('sekret');
      expect(JSON.stringify(error.details)).not.toContain('sekret');
    }
  });

  it("works with the README's ACL grant; a user without the lease keys fails at once, naming what to grant", async () => {
    const server = await dedicated({});
    const admin = new Redis({ host: server.host, port: server.port });
    await admin.call('ACL', 'SETUSER', 'sluice_full', 'on', '>full-sekret-2', ...REQUIRED_ACL.split(' '));
    await admin.call('ACL', 'SETUSER', 'sluice_queue', 'on', '>queue-sekret-3', '~queue:*', '+@all');
    admin.disconnect();
    const open = (user: string, password: string) => RedisCheckpointStore.open({ url: `redis://${server.host}:${server.port}`, db: 0, username: user, password });
    const full = await open('sluice_full', 'full-sekret-2');
    const name = unique('acl');
    const holder = 'acl-holder';
    expect((await full.claimLease(name, holder, 10_000)).owner).toBe(holder);
    await full.save(name, sample(name), { lease: name, holder });
    expect((await full.load(name))?.slot).toBe(name);
    await full.remove(name, { lease: name, holder });
    await full.releaseLease(name, holder);
    await full.close();

    // Enough for PGSync (queue:* keys only), not for the leases: a grant is missing, which no retry brings.
    const partial = await open('sluice_queue', 'queue-sekret-3');
    try {
      const error = await failure(partial.claimLease(name, holder, 10_000));
      expect(error.code).toBe('CKP_UNAVAILABLE');
      expect(error.message).toMatch(/NOPERM/);
      expect(error.message).toContain('~sluice:*:lease');
      expect(isRetryable(error)).toBe(false);
    } finally {
      await partial.close();
    }

    // The grant without +set: refused inside the lease script, where Redis does not answer NOPERM.
    const admin2 = new Redis({ host: server.host, port: server.port });
    await admin2.call('ACL', 'SETUSER', 'sluice_noset', 'on', '>noset-sekret-4', ...REQUIRED_ACL.split(' ').filter((part) => part !== '+set'));
    admin2.disconnect();
    const noSet = await open('sluice_noset', 'noset-sekret-4');
    try {
      const error = await failure(noSet.claimLease(unique('acl'), holder, 10_000));
      expect(error.code).toBe('CKP_UNAVAILABLE');
      expect(error.message).toContain('+set');
      expect(isRetryable(error)).toBe(false);
    } finally {
      await noSet.close();
    }
  });

  it('reads the eviction policy and the append-only setting from INFO where CONFIG is forbidden (managed Redis)', async () => {
    const managed = await dedicated({ maxmemoryPolicy: 'allkeys-lru', args: ['--rename-command', 'CONFIG', ''] });
    const store = await RedisCheckpointStore.open(redisConfig(managed.url));
    try {
      expect(store.warnings()).toContain(
        'Redis maxmemory-policy is allkeys-lru: checkpoints can be evicted, which forces a full re-sync; set maxmemory-policy noeviction',
      );
      expect(store.warnings().some((w) => w.includes('appendonly no'))).toBe(true);
      expect(store.durable).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('fails to open an unreachable Redis with CKP_UNAVAILABLE', async () => {
    const port = await findFreePort();
    const error = await failure(RedisCheckpointStore.open({ url: `redis://127.0.0.1:${port}`, db: 0 }));
    expect(error.code).toBe('CKP_UNAVAILABLE');
  });

  it('warns about an evicting maxmemory-policy and about persistence; none for noeviction with appendfsync always', async () => {
    const lru = await dedicated({ maxmemoryPolicy: 'allkeys-lru' });
    const evicting = await RedisCheckpointStore.open(redisConfig(lru.url));
    expect(evicting.warnings()).toContain(
      'Redis maxmemory-policy is allkeys-lru: checkpoints can be evicted, which forces a full re-sync; set maxmemory-policy noeviction',
    );
    expect(evicting.warnings().some((w) => w.includes('appendonly no'))).toBe(true);
    expect(evicting.durable).toBe(false);
    await evicting.close();
    const safe = await dedicated({ maxmemoryPolicy: 'noeviction', args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const durable = await RedisCheckpointStore.open(redisConfig(safe.url));
    expect(durable.warnings()).toEqual([]);
    expect(durable.durable).toBe(true);
    await durable.close();
  });

  it('saves again after Redis restarts (ioredis reconnects)', async () => {
    const server = await dedicated({});
    const restarting = await RedisCheckpointStore.open(redisConfig(server.url));
    await restarting.save('restart', sample('restart', '0/1'));
    await server.restart();
    await restarting.save('restart', sample('restart', '0/2'));
    expect((await restarting.load('restart'))?.lsn).toBe('0/2');
    await restarting.close();
  });

  it('finds the primary through Sentinel and follows a failover: later saves and leases land on the promoted replica', async () => {
    const primary = await dedicated({});
    const replica = await dedicated({ args: ['--replicaof', primary.host, String(primary.port)] });
    const sentinel = await dedicated({ sentinelOf: { port: primary.port, name: 'ckp' } });
    const admin = new Redis({ host: sentinel.host, port: sentinel.port });
    const direct = (server: RedisTestServer) => new Redis({ host: server.host, port: server.port });
    const fields = (flat: string[]) => Object.fromEntries(flat.flatMap((value, i) => (i % 2 === 0 ? [[value, flat[i + 1]]] : [])));
    try {
      await waitFor('Sentinel to see the replica in sync', async () => {
        const replicas = ((await admin.call('SENTINEL', 'REPLICAS', 'ckp')) as string[][]).map(fields);
        return replicas.some((r) => r['port'] === String(replica.port) && r['master-link-status'] === 'ok' && !String(r['flags']).includes('down')) ? true : undefined;
      });
      // Sentinels that cannot name the primary (none answers, or none monitors the name) fail the open with the
      // reason, after a few rounds, rather than keep it waiting.
      const unreachable = await failure(RedisCheckpointStore.open({ url: 'redis://127.0.0.1:1', db: 0, sentinel: { hosts: [{ host: '127.0.0.1', port: await findFreePort() }], name: 'ckp' } }));
      expect(unreachable.code).toBe('CKP_UNAVAILABLE');
      expect(unreachable.message).toContain('All sentinels are unreachable');
      const unknown = await failure(RedisCheckpointStore.open({ url: 'redis://127.0.0.1:1', db: 0, sentinel: { hosts: [{ host: sentinel.host, port: sentinel.port }], name: 'nope' } }));
      expect(unknown.code).toBe('CKP_UNAVAILABLE');
      expect(unknown.message).toContain(`knows no primary named "nope"`);
      // The primary's own address is not needed: the Sentinel names it.
      const store = await RedisCheckpointStore.open({ url: 'redis://127.0.0.1:1', db: 0, sentinel: { hosts: [{ host: sentinel.host, port: sentinel.port }], name: 'ckp' } });
      try {
        await store.save('sentinel_ckp', sample('sentinel_ckp', '0/1'));
        const onPrimary = direct(primary);
        expect(await onPrimary.hget('queue:sentinel_ckp:meta', 'checkpoint')).toBe('"0/1"');
        onPrimary.disconnect();
        await waitFor('a failover to the replica', async () => {
          await admin.call('SENTINEL', 'FAILOVER', 'ckp').catch(() => undefined); // NOGOODSLAVE until the replica is known good
          const [, port] = (await admin.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'ckp')) as [string, string];
          return port === String(replica.port) ? true : undefined;
        });
        // Until Sentinel has demoted the old primary it still takes writes, which its resync then drops: Redis'
        // replication is asynchronous, which costs a snapshot of the index whose checkpoint went back, never changes.
        const old = direct(primary);
        await waitFor('the old primary to be demoted', async () => ((await old.info('replication')).includes('role:slave') ? true : undefined));
        old.disconnect();
        await store.save('sentinel_ckp', sample('sentinel_ckp', '0/2'));
        expect((await store.claimLease('sentinel_ckp', 'host-a:1', 60_000)).owner).toBe('host-a:1');
        const onPromoted = direct(replica);
        expect(await onPromoted.hget('queue:sentinel_ckp:meta', 'checkpoint')).toBe('"0/2"');
        expect(await onPromoted.get(RedisCheckpointStore.leaseKey('sentinel_ckp'))).toBe('host-a:1');
        onPromoted.disconnect();
        expect((await store.load('sentinel_ckp'))?.lsn).toBe('0/2');
      } finally {
        await store.close();
      }
    } finally {
      admin.disconnect();
    }
  });

  /** A primary and its replica, with a client on each; `attached` waits until the replica is online for WAIT. */
  async function primaryWithReplica() {
    // No 5 s pause before the full resync when the replica attaches (again).
    const primary = await dedicated({ args: ['--repl-diskless-sync-delay', '0'] });
    const replica = await dedicated({ args: ['--replicaof', primary.host, String(primary.port)] });
    const onPrimary = new Redis({ host: primary.host, port: primary.port });
    const onReplica = new Redis({ host: replica.host, port: replica.port });
    // Online: past the full resync, acknowledging offsets (a replica still loading counts as connected, not for WAIT).
    const attached = () => waitFor('the replica to be in sync', async () => ((await onReplica.info('replication')).includes('master_link_status:up') && /^slave0:.*state=online/m.test(await onPrimary.info('replication')) ? true : undefined));
    return { primary, onPrimary, onReplica, attached };
  }

  it('with REDIS_WAIT_REPLICAS, a save or delete counts only once the replicas have it', async () => {
    const { primary, onPrimary, onReplica, attached } = await primaryWithReplica();
    const replicasOfPrimary = async () => Number(/^connected_slaves:(\d+)/m.exec(await onPrimary.info('replication'))?.[1]);
    const name = unique('wait');
    const key = RedisCheckpointStore.key(name);
    await attached();
    // A long timeout where a replica answers (a loaded machine may take a while), a short one where none can.
    const waiting = await RedisCheckpointStore.open(redisConfig(primary.url, { wait: { replicas: 1, timeoutMs: 30_000 } }));
    const impatient = await RedisCheckpointStore.open(redisConfig(primary.url, { wait: { replicas: 1, timeoutMs: 300 } }));
    const plain = await RedisCheckpointStore.open(redisConfig(primary.url));
    try {
      await waiting.save(name, sample(name, '0/1'));
      // WAIT returned: the replica has applied the write, so a failover to it keeps the position.
      expect(await onReplica.hget(key, 'checkpoint')).toBe('"0/1"');

      // Without a replica the save stays on the primary but fails (retryable): its position is not acknowledged.
      await onReplica.call('REPLICAOF', 'NO', 'ONE');
      await waitFor('the primary to see no replica', async () => ((await replicasOfPrimary()) === 0 ? true : undefined));
      const short = await failure(impatient.save(name, sample(name, '0/2')));
      expect(short.code).toBe('CKP_UNAVAILABLE');
      expect(short.message).toContain('reached 0 of the 1 replicas REDIS_WAIT_REPLICAS asks for within 0.3 s');
      expect(isRetryable(short)).toBe(true);
      expect(await onPrimary.hget(key, 'checkpoint')).toBe('"0/2"');
      expect((await failure(impatient.remove(name))).message).toContain('delete of ' + key + ' reached 0 of the 1 replicas');
      await plain.save(name, sample(name, '0/3')); // a store without REDIS_WAIT_REPLICAS does not wait
      const opened = await RedisCheckpointStore.open(redisConfig(primary.url, { wait: { replicas: 1, timeoutMs: 300 } }));
      expect(opened.warnings()).toContain(
        'the Redis primary has 0 replicas connected and REDIS_WAIT_REPLICAS is 1: each checkpoint save waits up to 0.3 s and fails (nothing is acknowledged to PostgreSQL) until enough replicas are connected',
      );
      await opened.close();

      await onReplica.call('REPLICAOF', primary.host, String(primary.port));
      await attached();
      await waiting.save(name, sample(name, '0/4'));
      expect(await onReplica.hget(key, 'checkpoint')).toBe('"0/4"');
      expect(waiting.warnings().some((w) => w.includes('REDIS_WAIT_REPLICAS'))).toBe(false);

      // A user whose grant lacks +wait is told to add it, at once.
      await onPrimary.call('ACL', 'SETUSER', 'sluice_nowait', 'on', '>nowait-sekret-5', ...REQUIRED_ACL.split(' '));
      const noWait = await RedisCheckpointStore.open({ url: `redis://${primary.host}:${primary.port}`, db: 0, username: 'sluice_nowait', password: 'nowait-sekret-5', wait: { replicas: 1, timeoutMs: 300 } });
      try {
        const refused = await failure(noWait.save(name, sample(name, '0/5')));
        expect(refused.message).toContain(`${REQUIRED_ACL} +wait`);
        expect(refused.message).not.toContain('sekret');
        expect(isRetryable(refused)).toBe(false);
      } finally {
        await noWait.close();
      }
    } finally {
      await waiting.close();
      await impatient.close();
      await plain.close();
      onPrimary.disconnect();
      onReplica.disconnect();
    }
  });

  it('with REDIS_WAIT_REPLICAS, leases are served while a WAIT blocks, and a WAIT resent on a new connection does not count', async () => {
    const { primary, onPrimary, onReplica, attached } = await primaryWithReplica();
    await attached();
    // A stopped replica keeps its link (the primary still counts it online) but acknowledges nothing: WAIT blocks.
    const replicaPid = Number(/^process_id:(\d+)/m.exec(await onReplica.info('server'))![1]);
    onReplica.disconnect();
    const store = await RedisCheckpointStore.open(redisConfig(primary.url, { wait: { replicas: 1, timeoutMs: 30_000 } }));
    const name = unique('resent');
    process.kill(replicaPid, 'SIGSTOP');
    try {
      let settled = false;
      const saving = failure(store.save(name, sample(name, '0/7'))).finally(() => (settled = true));
      await waitFor('the save to wait in WAIT', async () => ((await onPrimary.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string).includes('cmd=wait') ? true : undefined);
      // The lease connection is not the one blocked in WAIT.
      expect((await store.claimLease(name, 'waiting-holder', 10_000)).owner).toBe('waiting-holder');
      expect(settled).toBe(false);
      // The connection drops: ioredis sends WAIT again on the new one, where it counts from that connection's own
      // writes (none), so its answer says nothing of the save: it must not count as done, whatever WAIT answers.
      const blocked = ((await onPrimary.call('CLIENT', 'LIST', 'TYPE', 'normal')) as string).split('\n').find((line) => line.includes('cmd=wait'))!;
      await onPrimary.call('CLIENT', 'KILL', 'ID', /\bid=(\d+)/.exec(blocked)![1]!);
      process.kill(replicaPid, 'SIGCONT'); // the resent WAIT then gets its answer at once
      const error = await saving;
      expect(error.code).toBe('CKP_UNAVAILABLE');
      expect(error.message).toContain('the connection to Redis was replaced before WAIT answered');
      expect(isRetryable(error)).toBe(true);
    } finally {
      process.kill(replicaPid, 'SIGCONT');
      await store.close();
      onPrimary.disconnect();
    }
  });

  it('connects over TLS with CA verification and a client certificate', async () => {
    const pki = makePki();
    const tlsPort = await findFreePort();
    await dedicated({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', pki.file('server.crt'), '--tls-key-file', pki.file('server.key'),
        '--tls-ca-cert-file', pki.file('ca.crt'), '--tls-auth-clients', 'yes'],
    });
    const url = `rediss://127.0.0.1:${tlsPort}`;
    const client = { cert: pki.read('client.crt'), key: pki.read('client.key') };
    const verified = await RedisCheckpointStore.open({ url, db: 0, tls: { ca: pki.read('ca.crt'), rejectUnauthorized: true, ...client } });
    await verified.save('tls', sample('tls'));
    await verified.close();
    const unverified = await RedisCheckpointStore.open({ url, db: 0, tls: { rejectUnauthorized: false, ...client } });
    expect((await unverified.load('tls'))?.slot).toBe('tls');
    await unverified.close();
    const untrusted = await failure(RedisCheckpointStore.open({ url, db: 0, tls: { ca: pki.read('other-ca.crt'), rejectUnauthorized: true, ...client } }));
    expect(untrusted.code).toBe('CKP_UNAVAILABLE');
    const noClientCert = await failure(RedisCheckpointStore.open({ url, db: 0, tls: { ca: pki.read('ca.crt'), rejectUnauthorized: true } }));
    expect(noClientCert.code).toBe('CKP_UNAVAILABLE');
    expect(noClientCert.message).not.toContain('PRIVATE KEY');

    // The same from the settings a user writes: REDIS_URL's redis-py parameters, or the REDIS_* variables.
    const fromEnv = (env: Record<string, string>) => {
      const parsed = parseEnvironment({ PG_USER: 'u', ...env }, {});
      expect(parsed.problems.filter((p) => p.severity === 'error')).toEqual([]);
      return parsed.config!.redis!;
    };
    const params = `ssl_ca_certs=${encodeURIComponent(pki.file('ca.crt'))}&ssl_certfile=${encodeURIComponent(pki.file('client.crt'))}&ssl_keyfile=${encodeURIComponent(pki.file('client.key'))}`;
    const variables = { REDIS_CA_CERTS: pki.file('ca.crt'), REDIS_CLIENT_CERT: pki.file('client.crt'), REDIS_CLIENT_KEY: pki.file('client.key') };
    for (const config of [
      fromEnv({ REDIS_URL: `${url}?${params}` }),
      fromEnv({ REDIS_HOST: '127.0.0.1', REDIS_PORT: String(tlsPort), REDIS_SCHEME: 'rediss', ...variables }),
      // The certificate names 127.0.0.1 only: reaching it as localhost needs ssl_check_hostname=false, as redis-py allows.
      fromEnv({ REDIS_URL: `rediss://localhost:${tlsPort}?${params}&ssl_check_hostname=false` }),
    ]) {
      const store = await RedisCheckpointStore.open(config);
      expect((await store.load('tls'))?.slot).toBe('tls');
      await store.close();
    }
    const wrongName = await failure(RedisCheckpointStore.open(fromEnv({ REDIS_URL: `rediss://localhost:${tlsPort}?${params}` })));
    expect(wrongName.code).toBe('CKP_UNAVAILABLE');
    pki.remove();
  });
});

/** A CA, a server certificate for 127.0.0.1, a client certificate and an unrelated CA, made with openssl. */
function makePki(): { file(name: string): string; read(name: string): string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-ckp-tls-'));
  const file = (name: string): string => join(dir, name);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) ssl('req', '-x509', ...key, '-keyout', `${ca}.key`, '-out', `${ca}.crt`, '-days', '2', '-subj', `/CN=sluice-${ca}`);
  writeFileSync(file('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  for (const leaf of ['server', 'client']) {
    ssl('req', ...key, '-keyout', `${leaf}.key`, '-out', `${leaf}.csr`, '-subj', `/CN=sluice-${leaf}`);
    ssl('x509', '-req', '-in', `${leaf}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${leaf}.crt`, '-days', '2', '-extfile', 'san.ext');
  }
  return { file, read: (name) => readFileSync(file(name), 'utf8'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

describe('file checkpoint store', () => {
  it('gives an expired lease to exactly one of many stores claiming it at once, round after round', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-lease-race-'));
    const stores = await Promise.all(Array.from({ length: 6 }, () => FileCheckpointStore.open(dir)));
    try {
      for (let round = 0; round < 60; round++) {
        const name = `race_${round}`;
        expect((await stores[0]!.claimLease(name, 'dead-owner', 1)).owner).toBe('dead-owner');
        await sleep(5);
        // Each store stands for a process; every claimant is also a fenced writer, as an owner would be at once.
        const claims = await Promise.all(stores.map(async (s, i) => ({ holder: `s${i}`, state: await s.claimLease(name, `s${i}`, 60_000) })));
        const winners = claims.filter((c) => c.state.owner === c.holder);
        expect(winners, `round ${round}`).toHaveLength(1);
        const writes = await Promise.allSettled(stores.map((s, i) => s.save(name, sample(name, `0/${i}`), { lease: name, holder: `s${i}` })));
        expect(writes.filter((w) => w.status === 'fulfilled')).toHaveLength(1);
      }
      // No guard or moved-aside file is left behind.
      expect(readdirSync(dir).filter((f) => f.includes('.guard') || f.endsWith('.expired'))).toEqual([]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('does not wait for a lease guard left by a process that died holding it; waits while its holder lives', { timeout: 15_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-guard-'));
    const store = await FileCheckpointStore.open(dir);
    const guard = join(dir, '.db_g.sluice.lease.guard');
    // What a guard names: host, pid, pid namespace, the process's start time (field 22 of /proc/<pid>/stat).
    const namespace = readlinkSync('/proc/self/ns/pid');
    const startTime = (pid: number) => {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
    };
    try {
      expect((await store.claimLease('db_g', 'h', 60_000)).owner).toBe('h');
      // A SIGKILL during a checkpoint save leaves the guard behind, naming a process that no longer exists.
      const dead = spawnSync(process.execPath, ['-e', '']).pid!;
      writeFileSync(guard, `${hostname()} ${dead} ${namespace} 12345`);
      await store.save('db_g', sample('db_g', '0/1'), { lease: 'db_g', holder: 'h' });
      expect(readdirSync(dir).filter((f) => f.includes('.guard'))).toEqual([]);
      // Its pid since taken by a process started later (this test's parent, here): gone too.
      writeFileSync(guard, `${hostname()} ${process.ppid} ${namespace} 1`);
      await store.save('db_g', sample('db_g', '0/2'), { lease: 'db_g', holder: 'h' });
      // A live holder is waited for, until it lets go.
      writeFileSync(guard, `${hostname()} ${process.ppid} ${namespace} ${startTime(process.ppid)}`);
      let saved = false;
      const saving = store.save('db_g', sample('db_g', '0/3'), { lease: 'db_g', holder: 'h' }).then(() => (saved = true));
      await sleep(500);
      expect(saved).toBe(false);
      rmSync(guard);
      await saving;
      expect(await store.load('db_g')).toMatchObject({ lsn: '0/3' });
      expect(readdirSync(dir).filter((f) => f.includes('.guard'))).toEqual([]);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  let dir: string;
  let store: FileCheckpointStore;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-ckp-file-'));
    store = await FileCheckpointStore.open(dir);
  });
  afterAll(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes `.<name>.sluice.json` atomically, leaving no temp files, and never touches PGSync\'s `.<name>`', async () => {
    writeFileSync(join(dir, '.db_idx'), '12345\n');
    expect(await store.load('db_idx')).toBeUndefined();
    expect(store.pgsyncCheckpoint('db_idx')).toBe('12345');
    expect(store.warnings().some((w) => w.includes('.db_idx') && w.includes('PGSync'))).toBe(true);
    await Promise.all(Array.from({ length: 10 }, (_, i) => store.save('db_idx', sample('db_idx', `0/${i}`))));
    await store.save('db_other', sample('db_other'));
    expect(readdirSync(dir).sort()).toEqual(['.db_idx', '.db_idx.sluice.json', '.db_other.sluice.json']);
    expect(readFileSync(join(dir, '.db_idx'), 'utf8')).toBe('12345\n');
    expect(JSON.parse(readFileSync(join(dir, '.db_idx.sluice.json'), 'utf8'))).toMatchObject({ slot: 'db_idx', lsn: '0/9' });
  });

  it('keeps checkpoint and lease files readable by their owner only (they hold root keys)', async () => {
    const previous = process.umask(0o022);
    try {
      await store.save('db_mode', sample('db_mode'));
      expect((await store.claimLease('db_mode', 'mode-holder', 10_000)).owner).toBe('mode-holder');
      for (const file of ['.db_mode.sluice.json', '.db_mode.sluice.lease']) expect(statSync(join(dir, file)).mode & 0o777, file).toBe(0o600);
      await store.releaseLease('db_mode', 'mode-holder');
      await store.remove('db_mode');
    } finally {
      process.umask(previous);
    }
  });

  it('reports a corrupt file as CKP_CORRUPT naming it (no silent re-sync)', async () => {
    for (const [name, text] of [['torn', '{"slot": "to'], ['empty', ''], ['shape', '{"slot": 1}']] as const) {
      writeFileSync(join(dir, `.${name}.sluice.json`), text);
      const error = await failure(store.load(name));
      expect(error.code).toBe('CKP_CORRUPT');
      expect(error.message).toContain(join(dir, `.${name}.sluice.json`));
    }
  });

  it('needs an existing writable directory: else CKP_UNAVAILABLE naming CHECKPOINT_PATH', async () => {
    const missing = join(dir, 'no', 'such');
    const error = await failure(FileCheckpointStore.open(missing));
    expect(error.code).toBe('CKP_UNAVAILABLE');
    expect(error.message).toContain(`CHECKPOINT_PATH ${missing}`);
    const notDir = await failure(FileCheckpointStore.open(join(dir, '.db_idx')));
    expect(notDir.message).toContain('is not a directory');
  });

  it('stops, not retries, when CHECKPOINT_PATH refuses writes after open (permissions, immutable, read-only), naming it', async (context) => {
    const locked = mkdtempSync(join(tmpdir(), 'sluice-ckp-locked-'));
    const lockable = await FileCheckpointStore.open(locked);
    await lockable.save('db_locked', sample('db_locked', '0/1'));
    // As root, permissions do not refuse anything; the immutable attribute does (ext4, xfs, btrfs).
    const asRoot = process.getuid?.() === 0;
    const lock = asRoot ? spawnSync('chattr', ['+i', locked]) : (execFileSync('chmod', ['0500', locked]), { status: 0 });
    if (lock.status !== 0) {
      rmSync(locked, { recursive: true, force: true });
      return context.skip('cannot make a directory unwritable here: chattr +i refused (no CAP_LINUX_IMMUTABLE, or a file system without it)');
    }
    try {
      for (const attempt of [() => lockable.save('db_locked', sample('db_locked', '0/2')), () => lockable.claimLease('db_locked', 'host-a:1', 60_000)]) {
        const error = await failure(attempt());
        expect(error.code).toBe('CKP_UNAVAILABLE');
        expect(error.message).toContain(`CHECKPOINT_PATH ${locked}`);
        expect(error.message).toContain('which waiting does not change');
        expect(error.message).toContain('the file system refuses this process');
        expect(isRetryable(error)).toBe(false);
      }
      // What was saved before stays readable.
      expect((await lockable.load('db_locked'))?.lsn).toBe('0/1');
    } finally {
      if (asRoot) execFileSync('chattr', ['-i', locked]);
      else execFileSync('chmod', ['0700', locked]);
      await lockable.close();
      rmSync(locked, { recursive: true, force: true });
    }
  });

  it('refuses at start a CHECKPOINT_PATH this process can write but not read (run as another user), leaving nothing', async (context) => {
    if (process.getuid?.() !== 0) return context.skip('needs root, to run the store as another user');
    // Owner-only write and search, no read: the probe's file, link and rename pass; the directory fsync needs read.
    const unreadable = mkdtempSync(join(tmpdir(), 'sluice-ckp-unreadable-'));
    const script = join(mkdtempSync(join(tmpdir(), 'sluice-ckp-script-')), 'open.mts');
    writeFileSync(script, `const { FileCheckpointStore } = await import(process.argv[2]);
try { await FileCheckpointStore.open(process.argv[3]); console.log('opened'); } catch (error) { console.log(error.message); }
`);
    execFileSync('chmod', ['0755', join(script, '..')]);
    execFileSync('chown', ['65534:65534', unreadable]);
    execFileSync('chmod', ['0300', unreadable]);
    try {
      const run = spawnSync(process.execPath, ['--import', 'tsx', script, join(process.cwd(), 'src/checkpoint/file-checkpoint-store.ts'), unreadable], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: tmpdir() },
      });
      expect(run.stderr).toBe('');
      expect(run.stdout.trim()).toBe(
        `CHECKPOINT_PATH ${unreadable} is not readable: grant this process read access to the directory (to make saves durable) or set CHECKPOINT_PATH elsewhere: EACCES: permission denied, open '${unreadable}'`,
      );
      expect(readdirSync(unreadable)).toEqual([]); // as root, the listing works
    } finally {
      rmSync(unreadable, { recursive: true, force: true });
      rmSync(join(script, '..'), { recursive: true, force: true });
    }
  });

  it('removes temp files abandoned by a crash at open', async () => {
    const stale = join(dir, '.db_idx.sluice.json.1.abcd.tmp');
    const fresh = join(dir, '.db_idx.sluice.json.2.abcd.tmp');
    // And what a crash in the middle of open's own probe leaves.
    const probes = ['.sluice-probe.7.0badc0de.tmp', '.sluice-probe.7.0badc0de.tmp.link', '.sluice-probe.8.0badc0de.tmp.link.renamed'];
    for (const name of [stale, fresh, ...probes.map((p) => join(dir, p))]) writeFileSync(name, '{');
    for (const name of [stale, ...probes.map((p) => join(dir, p))]) utimesSync(name, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    await (await FileCheckpointStore.open(dir)).close();
    for (const name of probes) expect(readdirSync(dir)).not.toContain(name);
    expect(readdirSync(dir)).not.toContain('.db_idx.sluice.json.1.abcd.tmp');
    expect(readdirSync(dir)).toContain('.db_idx.sluice.json.2.abcd.tmp');
    rmSync(fresh);
  });
});

describe('PostgreSQL checkpoint store', () => {
  let db: TestDatabase;
  const role = unique('role');
  const pools: pg.Pool[] = [];
  const poolFor = (user?: string): pg.Pool => {
    const url = new URL(db.url);
    if (user !== undefined) url.username = user;
    const pool = testPool(url.toString(), 2);
    pools.push(pool);
    return pool;
  };
  beforeAll(async () => {
    db = await createTestDatabase('ckp_pg');
    await db.query(`CREATE ROLE ${role} LOGIN`);
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end()));
    await db?.drop();
    const admin = new pg.Client({ connectionString: testPostgresUrl() });
    await admin.connect();
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
  });

  it('creates sluice.checkpoint in a fresh database (concurrent opens included)', async () => {
    const pool = poolFor();
    const stores = await Promise.all([PostgresCheckpointStore.open(pool), PostgresCheckpointStore.open(pool)]);
    const columns = await db.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_schema = 'sluice' AND table_name = 'checkpoint' ORDER BY ordinal_position`,
    );
    expect(columns.rows).toEqual([
      { column_name: 'name', data_type: 'text', is_nullable: 'NO' },
      { column_name: 'body', data_type: 'jsonb', is_nullable: 'NO' },
      { column_name: 'updated_at', data_type: 'timestamp with time zone', is_nullable: 'NO' },
    ]);
    await stores[0]?.save('pg_row', sample('pg_row'));
    const row = await db.query(`SELECT body->>'lsn' AS lsn FROM sluice.checkpoint WHERE name = 'pg_row'`);
    expect(row.rows).toEqual([{ lsn: '0/16B3748' }]);
    await db.query(`UPDATE sluice.checkpoint SET body = '{"x": 1}' WHERE name = 'pg_row'`);
    expect((await failure(stores[0]!.load('pg_row'))).code).toBe('CKP_CORRUPT');
    await Promise.all(stores.map((s) => s.close()));
  });

  it('takes a lease over a row no Sluice writes (unreadable expiry, no holder), saying what it replaced; fences and lookups read it as no lease', async () => {
    const store = await PostgresCheckpointStore.open(poolFor());
    try {
      const bodies = [
        '{"holder": "someone", "expiresAt": "garbage"}',
        '{"holder": "someone", "expiresAt": "2026-02-30T10:00:00+00:00"}',
        '{"holder": "someone", "expiresAt": "10:00:00"}',
        '{"holder": "someone"}',
        '{"expiresAt": "2999-01-01T00:00:00+00:00"}',
        '[1, 2]',
      ];
      // (Written as PostgreSQL prints jsonb, so that `replaced` reads the same.)
      for (const [i, body] of bodies.entries()) {
        const name = `pg_badlease_${i}`;
        await db.query(`INSERT INTO sluice.checkpoint (name, body) VALUES ($1, $2::jsonb)`, [`lease:${name}`, body]);
        expect(await store.leaseOf(name)).toBeUndefined();
        expect((await failure(store.save(name, sample(name), { lease: name, holder: 'someone' }))).code).toBe('CKP_NOT_OWNER');
        const claimed = await store.claimLease(name, 'host-a:1', 60_000);
        expect(claimed).toEqual({ owner: 'host-a:1', remainingMs: 60_000, replaced: body });
        expect((await store.leaseOf(name))?.owner).toBe('host-a:1');
        // Now a lease as Sluice writes it: kept from others, and nothing replaced on renewal.
        expect(await store.claimLease(name, 'host-b:2', 60_000)).toMatchObject({ owner: 'host-a:1' });
        expect((await store.claimLease(name, 'host-a:1', 60_000)).replaced).toBeUndefined();
      }
    } finally {
      await store.close();
    }
  });

  it('reads a lease expiry as Sluice writes it, and nothing from other text, with or without jsonpath datetime() (PostgreSQL 12)', async () => {
    const written = (await db.query<{ body: string }>(`SELECT jsonb_build_object('expiresAt', clock_timestamp())::text AS body`)).rows[0]!.body;
    const cases: Array<[string, boolean]> = [
      [written, true],
      ['{"expiresAt": "2026-11-24T10:00:00+05:45"}', true],
      ['{"expiresAt": "2026-11-24T10:00:00.5-03:30"}', true],
      ['{"expiresAt": "garbage"}', false],
      ['{"expiresAt": "10:00:00"}', false],
      ['{"expiresAt": "2026-11-24T10:00:00"}', false],
      ['{"expiresAt": "2026-13-01T10:00:00+00:00"}', false],
      ['{"expiresAt": "2026-11-24T10:00:00+99:00"}', false],
      ['{"expiresAt": 5}', false],
      ['{"holder": "x"}', false],
      ['[1]', false],
    ];
    // standard_conforming_strings may be off for a database or a role: the expressions must not depend on it.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      for (const conforming of ['on', 'off']) {
        await client.query(`SET standard_conforming_strings = ${conforming}`);
        for (const jsonpathDates of [true, false]) {
          for (const [body, readable] of cases) {
            const { rows } = await client.query<{ expiry: Date | null; direct: Date | null }>(
              `SELECT ${leaseExpiry('l', jsonpathDates)} AS expiry, CASE WHEN $2 THEN (l.body->>'expiresAt')::timestamptz END AS direct FROM (SELECT $1::jsonb AS body) AS l`,
              [body, readable],
            );
            expect(rows[0]!.expiry, `${body} (jsonpath ${jsonpathDates}, standard_conforming_strings ${conforming})`).toEqual(rows[0]!.direct);
          }
        }
      }
    } finally {
      await client.end();
    }
  });

  it('tells a role without CREATE on the database which grant is missing', async () => {
    const error = await failure(PostgresCheckpointStore.open(poolFor(role), 'sluice_other'));
    expect(error.code).toBe('CKP_UNAVAILABLE');
    expect(error.message).toContain(`GRANT CREATE ON DATABASE "${db.name}" TO "${role}"`);
    const noTable = await failure(PostgresCheckpointStore.open(poolFor(role)));
    expect(noTable.message).toContain(`GRANT USAGE ON SCHEMA "sluice" TO "${role}"`);
    await db.query(`GRANT USAGE ON SCHEMA sluice TO ${role}`);
    const noRows = await failure(PostgresCheckpointStore.open(poolFor(role)));
    expect(noRows.message).toContain(`GRANT SELECT, INSERT, UPDATE, DELETE ON "sluice".checkpoint TO "${role}"`);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON sluice.checkpoint TO ${role}`);
    const store = await PostgresCheckpointStore.open(poolFor(role));
    await store.save('by_role', sample('by_role'));
    expect((await store.load('by_role'))?.slot).toBe('by_role');
    // Revoked while running: the refusal names the grant and is not waited out (a grant does not come back by itself).
    await db.query(`REVOKE INSERT, UPDATE ON sluice.checkpoint FROM ${role}`);
    const revoked = await failure(store.save('by_role', sample('by_role', '0/2')));
    expect(revoked.code).toBe('CKP_UNAVAILABLE');
    expect(revoked.message).toContain('Grant the role SELECT, INSERT, UPDATE and DELETE');
    expect(isRetryable(revoked)).toBe(false);
    await db.query(`GRANT INSERT, UPDATE ON sluice.checkpoint TO ${role}`);
    await store.close();
  });
});

describe('openCheckpointStore', () => {
  it('opens the store the configuration names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-ckp-open-'));
    const base = { checkpointPath: dir } as SluiceConfig;
    const file = await openCheckpointStore({ ...base, checkpointStore: 'file' });
    expect(file).toBeInstanceOf(FileCheckpointStore);
    await file.close();
    const redis = await openCheckpointStore({ ...base, checkpointStore: 'redis', redis: redisConfig(testRedisUrl()) });
    expect(redis).toBeInstanceOf(RedisCheckpointStore);
    await redis.close();
    expect((await failure(openCheckpointStore({ ...base, checkpointStore: 'redis' }))).code).toBe('CKP_UNAVAILABLE');
    const db = await createTestDatabase('ckp_open');
    const u = new URL(db.url);
    const postgres = { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), database: db.name };
    const store = await openCheckpointStore({ ...base, checkpointStore: 'postgres', postgres });
    expect(store).toBeInstanceOf(PostgresCheckpointStore);
    await store.save('via_config', sample('via_config'));
    await store.close(); // ends its own pool, so the database can be dropped
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });
});
