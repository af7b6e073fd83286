import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StreamedTransactions, writeFully } from '../../../src/pipeline/streamed-transactions.js';
import type { RowChange, RowValues } from '../../../src/source/change-source.js';
import type { ChangeRoutes, RowLookup, TableRoute } from '../../../src/transform/change-routes.js';

const route = (isRoot: boolean, valueColumns: string[]): TableRoute => ({ isRoot, valueColumns, rootKeysQuery: () => ({ text: '', values: [] }) });
const lookup = (table: string, keyColumns: string[], valueColumns: string[]): RowLookup => ({ table, keyColumns, valueColumns, currentValuesQuery: () => ({ text: '', values: [] }) });
// book (root, key id) and rating (child, found through book_id).
const ROUTES: ChangeRoutes = {
  routes: new Map([
    ['public.book', [route(true, ['id'])]],
    ['public.rating', [route(false, ['book_id'])]],
  ]),
  relevantColumns: new Map([
    ['public.book', new Set(['id', 'title'])],
    ['public.rating', new Set(['id', 'book_id', 'stars'])],
  ]),
  rowLookups: new Map([
    ['public.book', lookup('public.book', ['id'], ['id'])],
    ['public.rating', lookup('public.rating', ['id'], ['book_id'])],
  ]),
};

const row = (values: Record<string, string | null | undefined>): RowValues => Object.assign(Object.create(null) as RowValues, values);
const insert = (table: string, values: Record<string, string | null>): RowChange => ({ kind: 'insert', schema: 'public', table, new: row(values), oldIsKeyOnly: false });

async function collect(buffer: StreamedTransactions, xid: number, size = 1000): Promise<RowChange[][]> {
  const txn = buffer.commit(xid);
  if (txn === undefined) return [];
  const batches: RowChange[][] = [];
  for await (const batch of txn.changes(size)) batches.push(batch);
  await txn.close();
  return batches;
}

/** The changes as plain objects, sorted, for comparison. */
function plain(batches: RowChange[][]): unknown[] {
  return batches
    .flat()
    .map((c) => JSON.stringify({ kind: c.kind, table: c.table, old: c.old && { ...c.old }, new: c.new && { ...c.new } }))
    .sort()
    .map((s) => JSON.parse(s) as unknown);
}

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'sluice-streamed-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('StreamedTransactions', () => {
  it('reduces changes to the value columns of their routes, drops duplicates, other tables and irrelevant updates', async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir });
    buffer.start(7, 0x100n);
    buffer.add(7, 7, insert('book', { id: '1', title: 'A long title', body: 'x'.repeat(1000) }));
    for (let i = 0; i < 100; i++) buffer.add(7, 7, insert('rating', { id: String(i), book_id: '1', stars: '5' }));
    buffer.add(7, 7, insert('audit', { id: '1' }));
    // REPLICA IDENTITY FULL update of a column no document uses.
    buffer.add(7, 7, { kind: 'update', schema: 'public', table: 'book', old: row({ id: '1', title: 't', body: 'a' }), new: row({ id: '1', title: 't', body: 'b' }), oldIsKeyOnly: false });
    // A child moved to another book: both books matter; an unchanged TOASTed value is taken from the old row.
    buffer.add(7, 7, { kind: 'update', schema: 'public', table: 'rating', old: row({ id: '5', book_id: '1', stars: '5' }), new: row({ id: '5', book_id: '2', stars: undefined }), oldIsKeyOnly: false });
    buffer.add(7, 7, { kind: 'update', schema: 'public', table: 'rating', old: row({ id: '6', book_id: '3', stars: '5' }), new: row({ id: '6', book_id: undefined, stars: '4' }), oldIsKeyOnly: false });
    expect(buffer.oldestStart()).toBe(0x100n);
    expect(plain(await collect(buffer, 7))).toEqual([
      { kind: 'insert', table: 'book', new: { id: '1' } },
      { kind: 'insert', table: 'rating', new: { book_id: '1' } },
      { kind: 'insert', table: 'rating', new: { book_id: '3' } },
      { kind: 'update', table: 'rating', old: { book_id: '1' }, new: { book_id: '2' } },
    ]);
    expect(buffer.size).toBe(0);
    expect(buffer.oldestStart()).toBeUndefined();
  });

  it('keeps the key of a row whose new values lack a value column and whose old row was not sent', async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir });
    buffer.start(8, 1n);
    // REPLICA IDENTITY DEFAULT: no old row, book_id an unchanged TOASTed value. The key lets the applier read it.
    buffer.add(8, 8, { kind: 'update', schema: 'public', table: 'rating', new: row({ id: '7', book_id: undefined, stars: '2' }), oldIsKeyOnly: false });
    // With the value there, the key is not kept (changes of one book's ratings stay one line).
    buffer.add(8, 8, { kind: 'update', schema: 'public', table: 'rating', new: row({ id: '8', book_id: '4', stars: '2' }), oldIsKeyOnly: false });
    expect(plain(await collect(buffer, 8))).toEqual([
      { kind: 'insert', table: 'rating', new: { book_id: '4' } },
      { kind: 'insert', table: 'rating', new: { id: '7' } },
    ]);
  });

  it('spills past its memory bound to an already unlinked file, and reads everything back in batches', async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir, memoryBytes: 4096 });
    buffer.start(9, 1n);
    const ids: string[] = [];
    for (let i = 0; i < 5000; i++) {
      // Multi-byte keys, so that characters straddle the read chunks.
      const id = `${i}-ключ-✓`;
      ids.push(id);
      await buffer.add(9, 9, insert('book', { id, title: null }));
    }
    expect(buffer.stats().memoryBytes).toBeLessThanOrEqual(4096);
    expect(buffer.stats().spilledBytes).toBeGreaterThan(100_000);
    expect(readdirSync(dir)).toEqual([]);
    const batches = await collect(buffer, 9, 300);
    expect(batches.every((b) => b.length <= 300)).toBe(true);
    expect(batches.flat().map((c) => c.new!['id']).sort()).toEqual(ids.sort());
    expect(buffer.stats().memoryBytes).toBe(0);
  });

  it('drops an aborted subtransaction, in memory and in the file, and keeps the rest', async () => {
    for (const memoryBytes of [1 << 20, 0]) {
      const buffer = new StreamedTransactions(ROUTES, { directory: dir, memoryBytes });
      buffer.start(10, 1n);
      await buffer.add(10, 10, insert('book', { id: 'top' }));
      await buffer.add(10, 11, insert('book', { id: 'aborted' }));
      await buffer.add(10, 11, { kind: 'truncate', relations: [{ schema: 'public', table: 'rating' }], cascade: false, restartIdentity: false });
      await buffer.add(10, 12, insert('book', { id: 'kept' }));
      // The same change in a surviving and an aborted subtransaction: it stays.
      await buffer.add(10, 12, insert('book', { id: 'both' }));
      await buffer.add(10, 11, insert('book', { id: 'both' }));
      await buffer.abort(10, 11);
      await buffer.add(10, 13, insert('book', { id: 'later' }));
      const txn = buffer.commit(10)!;
      expect(txn.truncates).toEqual([]);
      const got: string[] = [];
      for await (const batch of txn.changes(2)) for (const c of batch) got.push(c.new!['id']!);
      await txn.close();
      expect(got.sort()).toEqual(['both', 'kept', 'later', 'top']);
    }
  });

  it('forgets a transaction aborted whole, and keeps others open', async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir, memoryBytes: 0 });
    buffer.start(20, 0x500n);
    buffer.start(21, 0x300n);
    await buffer.add(20, 20, insert('book', { id: '1' }));
    await buffer.add(21, 21, insert('book', { id: '2' }));
    expect(buffer.oldestStart()).toBe(0x300n);
    await buffer.abort(21, 21);
    expect(buffer.commit(21)).toBeUndefined();
    expect(buffer.oldestStart()).toBe(0x500n);
    expect(plain(await collect(buffer, 20))).toEqual([{ kind: 'insert', table: 'book', new: { id: '1' } }]);
    await buffer.discardAll();
  });

  it("takes a later segment's start LSN only where the first segment had none (0/0, an origin-tagged transaction)", async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir });
    buffer.start(30, 0n);
    buffer.start(31, 0x700n);
    expect(buffer.oldestStart()).toBe(0n);
    buffer.start(30, 0x600n);
    buffer.start(31, 0x900n);
    expect(buffer.startOf(30)).toBe(0x600n);
    expect(buffer.startOf(31)).toBe(0x700n);
    expect(buffer.oldestStart()).toBe(0x600n);
    await buffer.discardAll();
  });

  it('keeps truncates of surviving subtransactions', async () => {
    const buffer = new StreamedTransactions(ROUTES, { directory: dir });
    buffer.start(30, 1n);
    const truncate = { kind: 'truncate' as const, relations: [{ schema: 'public', table: 'book' }], cascade: true, restartIdentity: false };
    buffer.add(30, 31, truncate);
    const txn = buffer.commit(30)!;
    expect(txn.truncates).toEqual([truncate]);
    await txn.close();
  });
});

describe('writeFully', () => {
  /** A file that takes at most `most` bytes per write, and none once `capacity` is reached. */
  function shortWrites(most: number, capacity = Infinity) {
    const file = Buffer.alloc(64);
    let size = 0;
    return {
      file,
      handle: {
        write: async (data: Buffer, offset: number, length: number, position: number) => {
          const bytesWritten = Math.max(0, Math.min(most, length, capacity - size));
          data.copy(file, position, offset, offset + bytesWritten);
          size = Math.max(size, position + bytesWritten);
          return { bytesWritten, buffer: data };
        },
      },
    };
  }

  it('writes what a short write left, at the right place', async () => {
    const { file, handle } = shortWrites(3);
    await writeFully(handle as never, Buffer.from('0123456789'), 5);
    expect(file.subarray(5, 15).toString()).toBe('0123456789');
  });

  it('fails when the file takes nothing more', async () => {
    const { handle } = shortWrites(3, 7);
    await expect(writeFully(handle as never, Buffer.from('0123456789'), 0)).rejects.toMatchObject({ code: 'ENOSPC', message: expect.stringMatching(/took no more bytes at 7/) });
  });
});
