// The stream phase keeps the ids of the transactions in the batch in hand, whose visibility its document query waits
// for. While a streamed transaction is open the acknowledgement cannot move, so batches without changes end early:
// the transactions without changes of that time (empty ones on PostgreSQL 14, logical messages, on any version)
// must not pile up in that list until the next change. The visibility wait and the document building are replaced
// here by recorders: what is under test is which xids reach them.
import { describe, expect, it, vi } from 'vitest';
import type { StreamMessage, RowChange } from '../../../src/source/change-source.js';

const waitedFor: number[][] = [];
vi.mock('../../../src/source/postgres/transaction-visibility.js', () => ({
  awaitVisible: async (_pool: unknown, xids: number[]) => void waitedFor.push([...xids]),
  assertNotSynchronousStandby: async () => undefined,
}));
// The version ceiling saved before writes reads the server's flushed WAL position.
vi.mock('../../../src/source/postgres/database-origin.js', () => ({ durableWalEnd: async () => 0x10_0000n }));
vi.mock('../../../src/pipeline/change-applier.js', () => ({
  buildChanges: async () => ({ result: { indexed: 0, deleted: 0, skippedIrrelevant: 0, missingOldValues: 0 }, keys: [], firstRows: [] }),
  writeBuiltChanges: async () => ({ indexed: 0, deleted: 0, skippedIrrelevant: 0, missingOldValues: 0 }),
  deleteOrphans: async () => ({ documents: 0, misrouted: 0 }),
  routingFollowsRootRow: () => true,
}));

const { runStreamPhase } = await import('../../../src/pipeline/stream-phase.js');

describe('the stream phase, while a streamed transaction is open', () => {
  it('does not keep the xids of transactions without changes: the next batch waits for its own only', async () => {
    const empty = 2000;
    const at = new Date();
    const change = { kind: 'insert', schema: 'public', table: 'book', new: { id: '1' }, oldIsKeyOnly: false } as RowChange;
    const messages: StreamMessage[] = [
      { type: 'stream-start', xid: 1000, firstSegment: true, lsn: 0x100n },
      { type: 'change', xid: 1000, change },
      { type: 'stream-stop' },
    ];
    let lsn = 0x1000n;
    for (let i = 0; i < empty; i++, lsn += 100n) {
      messages.push({ type: 'begin', xid: 2000 + i, finalLsn: lsn + 10n, commitTime: at });
      messages.push({ type: 'commit', commitLsn: lsn + 10n, endLsn: lsn + 20n, commitTime: at });
    }
    messages.push({ type: 'begin', xid: 900_000, finalLsn: lsn + 10n, commitTime: at });
    messages.push({ type: 'change', change });
    messages.push({ type: 'commit', commitLsn: lsn + 10n, endLsn: lsn + 20n, commitTime: at });
    const stream = {
      acknowledge: () => undefined,
      close: async () => undefined,
      async *[Symbol.asyncIterator]() {
        yield* messages;
      },
    };
    const writer = { add: async () => undefined, flush: async () => undefined, settled: async () => undefined };
    const store = { save: async () => undefined };
    const routes = { routes: new Map(), relevantColumns: new Map(), rowLookups: new Map() };
    const plan = { index: 'book', root: { schema: 'public', table: 'book', children: [] } };
    await runStreamPhase(plan as never, routes as never, {} as never, stream as never, writer as never, {} as never, store as never, { slot: 'db_book', updatedAt: '' }, {
      name: 'db_book',
      batchSize: 1000,
      flushIntervalMs: 60_000,
      chunkSize: 100,
      signal: new AbortController().signal,
    });
    expect(waitedFor).toEqual([[900_000]]);
  });
});
