// The PostgreSQL change source against the shared cluster: exported snapshot → stream handoff, decoded
// changes, acknowledgement semantics, restart, prompt slot drop after close, backpressure and slot errors.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../src/config/config-types.js';
import type { Change, StreamMessage } from '../../src/source/change-source.js';
import { createSlotWithSnapshot, dropSlot, slotInfo } from '../../src/source/postgres/replication-slot.js';
import { startReplicationStream, type PostgresReplicationStream } from '../../src/source/postgres/replication-stream.js';
import { createTestDatabase, type TestDatabase } from '../helpers/test-env.js';

type Begin = Extract<StreamMessage, { type: 'begin' }>;
type Commit = Extract<StreamMessage, { type: 'commit' }>;
type Message = Extract<StreamMessage, { type: 'message' }>;
interface Transaction {
  begin: Begin;
  items: (Change | Message)[];
  commit: Commit;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function configFromUrl(url: string): PostgresConfig {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: u.password ? decodeURIComponent(u.password) : undefined, database: u.pathname.slice(1) };
}

/** Reads whole transactions (keepalives skipped) until `count` commits arrived. */
async function readTransactions(stream: PostgresReplicationStream, count: number, timeoutMs = 20_000): Promise<Transaction[]> {
  const iterator = stream[Symbol.asyncIterator]();
  const transactions: Transaction[] = [];
  let open: { begin: Begin; items: (Change | Message)[] } | undefined;
  const deadline = Date.now() + timeoutMs;
  while (transactions.length < count) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`only ${transactions.length} of ${count} transactions arrived`)), deadline - Date.now())));
    const result = await Promise.race([iterator.next(), timeout]).finally(() => clearTimeout(timer));
    if (result.done) throw new Error('stream ended');
    const m = result.value;
    if (m.type === 'begin') {
      expect(open).toBeUndefined();
      open = { begin: m, items: [] };
    } else if (m.type === 'commit') {
      if (open === undefined) throw new Error('commit without begin');
      transactions.push({ ...open, commit: m });
      open = undefined;
    } else if (m.type === 'change') open?.items.push(m.change);
    else if (m.type === 'message') open?.items.push(m);
  }
  return transactions;
}

async function waitFor<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value) || Date.now() > deadline) return value;
    await sleep(50);
  }
}

describe('PostgreSQL replication stream', () => {
  let db: TestDatabase;
  let config: PostgresConfig;

  beforeAll(async () => {
    db = await createTestDatabase('replication_stream');
    config = configFromUrl(db.url);
    await db.query(`
      CREATE TABLE items (id int PRIMARY KEY, name text, qty int);
      ALTER TABLE items REPLICA IDENTITY FULL;
      CREATE TABLE keyed (id int PRIMARY KEY, label text);
      CREATE TABLE bulk (id int PRIMARY KEY, payload text);
      CREATE PUBLICATION pub FOR TABLE items, keyed;
      CREATE PUBLICATION bulk_pub FOR TABLE bulk;
      INSERT INTO items VALUES (1, 'one', 1), (2, 'two', 2);
      INSERT INTO keyed VALUES (10, 'ten');`);
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('hands off from the exported snapshot to the stream, acknowledges exactly, restarts and drops the slot at once', async () => {
    const slot = 'repl_main';
    const created = await createSlotWithSnapshot(config, db.name, slot);
    await db.query(`INSERT INTO items VALUES (3, 'three', 3)`);
    const reader = new pg.Client(db.url);
    await reader.connect();
    await reader.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    await reader.query(`SET TRANSACTION SNAPSHOT '${created.snapshotName}'`);
    const snapshotRows = await reader.query<{ id: number }>('SELECT id FROM items ORDER BY id');
    await reader.query('COMMIT');
    await reader.end();
    await created.release();
    expect(snapshotRows.rows.map((r) => r.id)).toEqual([1, 2]);

    await db.query(`UPDATE items SET name = 'THREE' WHERE id = 3`);
    await db.query('UPDATE keyed SET id = 11 WHERE id = 10');
    await db.query('DELETE FROM items WHERE id = 1');
    await db.query('TRUNCATE keyed RESTART IDENTITY');
    await db.query(`SELECT pg_logical_emit_message(true, 'sluice', 'x')`);
    await db.query(`BEGIN; INSERT INTO items VALUES (4, 'four', 4), (5, 'five', 5); UPDATE items SET qty = 50 WHERE id = 5; DELETE FROM items WHERE id = 4; COMMIT;`);

    const stream = await startReplicationStream(config, db.name, { slot, publication: 'pub', startLsn: created.consistentLsn, statusIntervalMs: 100 });
    const txs = await readTransactions(stream, 7);
    const items = { schema: 'public', table: 'items' };
    const keyed = { schema: 'public', table: 'keyed' };
    expect(txs.map((t) => t.items)).toEqual([
      [{ kind: 'insert', ...items, new: { id: '3', name: 'three', qty: '3' }, oldIsKeyOnly: false }],
      [{ kind: 'update', ...items, old: { id: '3', name: 'three', qty: '3' }, new: { id: '3', name: 'THREE', qty: '3' }, oldIsKeyOnly: false }],
      [{ kind: 'update', ...keyed, old: { id: '10' }, new: { id: '11', label: 'ten' }, oldIsKeyOnly: true }],
      [{ kind: 'delete', ...items, old: { id: '1', name: 'one', qty: '1' }, oldIsKeyOnly: false }],
      [{ kind: 'truncate', relations: [keyed], cascade: false, restartIdentity: true }],
      [{ type: 'message', lsn: expect.any(BigInt) as bigint, transactional: true, prefix: 'sluice', content: Buffer.from('x') }],
      [
        { kind: 'insert', ...items, new: { id: '4', name: 'four', qty: '4' }, oldIsKeyOnly: false },
        { kind: 'insert', ...items, new: { id: '5', name: 'five', qty: '5' }, oldIsKeyOnly: false },
        { kind: 'update', ...items, old: { id: '5', name: 'five', qty: '5' }, new: { id: '5', name: 'five', qty: '50' }, oldIsKeyOnly: false },
        { kind: 'delete', ...items, old: { id: '4', name: 'four', qty: '4' }, oldIsKeyOnly: false },
      ],
    ]);
    let previousEnd = created.consistentLsn;
    for (const tx of txs) {
      expect(tx.begin.finalLsn).toBe(tx.commit.commitLsn);
      expect(tx.commit.commitLsn).toBeGreaterThanOrEqual(previousEnd);
      expect(tx.commit.endLsn).toBeGreaterThan(tx.commit.commitLsn);
      expect(tx.commit.commitTime.getTime()).toBe(tx.begin.commitTime.getTime());
      previousEnd = tx.commit.endLsn;
    }
    const message = txs[5]?.items[0] as Message;
    expect(message.lsn).toBeGreaterThan(txs[4]?.commit.endLsn ?? 0n);
    expect(message.lsn).toBeLessThanOrEqual(txs[5]?.commit.commitLsn ?? 0n);

    // Status updates flow every 100 ms, yet nothing unacknowledged is confirmed.
    await sleep(400);
    expect((await slotInfo(db, slot)).confirmedFlushLsn).toBe(created.consistentLsn);
    const acked = txs[2]?.commit.endLsn ?? 0n;
    stream.acknowledge(acked);
    stream.acknowledge(txs[0]?.commit.endLsn ?? 0n);
    expect(stream.stats().acknowledgedLsn).toBe(acked);
    const info = await waitFor(() => slotInfo(db, slot), (i) => i.confirmedFlushLsn === acked);
    expect(info).toMatchObject({ exists: true, active: true, confirmedFlushLsn: acked, invalidated: false, walStatus: 'reserved' });
    expect(info.retainedBytes).toBeGreaterThan(0);
    await sleep(400);
    expect((await slotInfo(db, slot)).confirmedFlushLsn).toBe(acked);

    await stream.close();
    expect(await slotInfo(db, slot)).toMatchObject({ exists: true, active: false, activePid: null, confirmedFlushLsn: acked });

    const restarted = await startReplicationStream(config, db.name, { slot, publication: 'pub', startLsn: acked });
    const again = await readTransactions(restarted, 4);
    expect(again.map((t) => t.commit.commitLsn)).toEqual(txs.slice(3).map((t) => t.commit.commitLsn));
    expect(again.map((t) => t.begin.xid)).toEqual(txs.slice(3).map((t) => t.begin.xid));
    await restarted.close();

    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
    expect((await slotInfo(db, slot)).exists).toBe(false);
    await dropSlot(db, slot);
  });

  it('bounds the buffer of a 20,000-row transaction read slowly', async () => {
    const slot = 'repl_bulk';
    const created = await createSlotWithSnapshot(config, db.name, slot);
    await created.release();
    await db.query(`INSERT INTO bulk SELECT g, repeat('x', 20) FROM generate_series(1, 20000) g`);
    await db.query(`INSERT INTO bulk SELECT g, repeat('y', 20) FROM generate_series(20001, 40000) g`);
    const stream = await startReplicationStream(config, db.name, { slot, publication: 'bulk_pub', startLsn: created.consistentLsn, bufferSize: 500 });
    let inserts = 0;
    let seen = 0;
    let lastId = 0;
    for await (const m of stream) {
      if (m.type === 'change' && m.change.kind === 'insert') {
        inserts++;
        const id = Number(m.change.new?.['id']);
        expect(id).toBe(lastId + 1);
        lastId = id;
      }
      if (++seen % 100 === 0) {
        await sleep(10);
        expect(stream.stats().buffered).toBeLessThanOrEqual(500);
      }
      if (m.type === 'commit') break;
    }
    const stats = stream.stats();
    expect(inserts).toBe(20_000);
    expect(stats.capacity).toBe(500);
    expect(stats.maxBuffered).toBeLessThanOrEqual(500);
    expect(stats.maxBuffered).toBeGreaterThan(100);
    expect(stats.pauses).toBeGreaterThan(0);
    expect(stats.maxPendingBytes).toBeLessThan(1024 * 1024);

    // Closing in the middle of the next big transaction still frees the slot at once.
    let more = 0;
    for await (const m of stream) if (m.type === 'change' && ++more === 1000) break;
    await stream.close();
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
  });

  it('rejects a missing slot with SRC_SLOT_MISSING', async () => {
    await expect(startReplicationStream(config, db.name, { slot: 'no_such_slot', publication: 'pub', startLsn: 0n })).rejects.toMatchObject({
      code: 'SRC_SLOT_MISSING',
    });
  });

  it('dropSlot ends a walsender that is still streaming; the loss surfaces from the iterator', async () => {
    const slot = 'repl_dropped';
    const created = await createSlotWithSnapshot(config, db.name, slot);
    await created.release();
    const stream = await startReplicationStream(config, db.name, { slot, publication: 'pub', startLsn: 0n });
    const consumed = (async () => {
      for await (const m of stream) expect(m.type).toBe('keepalive');
    })().then(
      () => new Error('the stream ended without an error'),
      (error: unknown) => error,
    );
    await dropSlot(db, slot);
    expect((await slotInfo(db, slot)).exists).toBe(false);
    expect(await consumed).toMatchObject({ code: 'SRC_CONNECT', message: expect.stringMatching(/streaming from slot "repl_dropped" failed: terminating connection/) as string });
    await stream.close();
  });
});
