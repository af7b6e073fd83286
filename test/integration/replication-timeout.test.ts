// A replication connection that goes silent without closing (a failover, a NAT dropping the flow: simulated by
// stopping the walsender with SIGSTOP) is taken for dead after SLUICE_REPLICATION_TIMEOUT_SECONDS and reopened;
// once PostgreSQL serves the slot again, changes flow and the index converges.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { slotNameFor } from '../../src/source/postgres/replication-slot.js';
import { fixtureSchema, fixtureSql } from '../helpers/fixtures.js';
import { startLiveIndex, type LiveIndex } from '../helpers/live-index.js';
import { expectConverged, logLines, waitFor } from '../helpers/live-sluice.js';

const index = 'silent_book';
let live: LiveIndex;
let stopped: number | undefined;

beforeAll(async () => {
  live = await startLiveIndex(
    'silent',
    [fixtureSql('book.sql'), fixtureSql('book-data.sql')],
    (database) => fixtureSchema('book.json', database).map((e) => ({ ...(e as object), index })),
    { PGSYNC_LOG_LEVEL: 'info', SLUICE_REPLICATION_TIMEOUT_SECONDS: '15' },
  );
});

afterAll(async () => {
  if (stopped !== undefined) process.kill(stopped, 'SIGCONT');
  await live?.close();
});

describe('a replication connection gone silent', () => {
  it('is given up after SLUICE_REPLICATION_TIMEOUT_SECONDS and reopened; changes then flow again', async () => {
    await waitFor('the stream', async () => (live.sluice.output().includes('snapshot finished; streaming') ? true : undefined));
    await expectConverged(live.db.url, live.plan, live.engine.url);
    const slot = slotNameFor(live.db.name, index);
    const pid = await waitFor('the walsender', async () => (await live.db.query<{ pid: number | null }>('SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows[0]?.pid ?? undefined);
    process.kill(pid, 'SIGSTOP');
    stopped = pid;
    try {
      await waitFor(
        'the silent stream to be given up',
        async () => (logLines(live.sluice.output()).some((l) => String(l.err ?? '').includes('sent nothing on the replication stream')) ? true : undefined),
        60_000,
      );
    } finally {
      process.kill(pid, 'SIGCONT');
      stopped = undefined;
    }
    await live.db.query(`UPDATE book SET title = 'After the silence' WHERE id = 1`);
    await expectConverged(live.db.url, live.plan, live.engine.url, 60_000);
  }, 120_000);
});
