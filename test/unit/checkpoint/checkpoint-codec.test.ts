import { describe, expect, it } from 'vitest';
import { checkpointProblem, decodeCheckpoint, encodeCheckpoint, KeyedQueue, pgsyncCheckpointWarning } from '../../../src/checkpoint/checkpoint-codec.js';
import type { Checkpoint } from '../../../src/checkpoint/checkpoint-store.js';
import { AppError } from '../../../src/errors/app-error.js';

const full: Checkpoint = {
  slot: 'db_index',
  lsn: '0/16B3748',
  snapshot: { snapshotName: '00000003-00000002-1', consistentLsn: '16/B374D848', doneUpTo: ['1', 'a|b'], complete: false },
  fingerprint: 'f',
  updatedAt: '2024-01-01T00:00:00.000Z',
};

describe('decodeCheckpoint', () => {
  it('round-trips a full checkpoint and keeps fields it does not know', () => {
    expect(decodeCheckpoint(encodeCheckpoint(full), 'x')).toEqual(full);
    const newer = { ...full, shards: 3 };
    const generations = { ...full, origin: { system: '7311', timeline: 2 }, generation: 'book-abc', diverged: 'refused as stale', rebuild: { generation: 'book-def', fingerprint: 'def', slot: 'db_book_r', startedAt: 't', requested: true }, retired: [{ index: 'book-0', dropAfter: 't' }] };
    expect(decodeCheckpoint(encodeCheckpoint(generations), 'x')).toEqual(generations);
    expect(decodeCheckpoint(JSON.stringify(newer), 'x')).toEqual(newer);
    expect(decodeCheckpoint({ slot: 's', updatedAt: 't' }, 'x')).toEqual({ slot: 's', updatedAt: 't' });
  });

  it.each([
    ['{"slot":', 'not valid JSON'],
    ['', 'not valid JSON'],
    ['[]', 'not a JSON object'],
    ['null', 'not a JSON object'],
    ['{"updatedAt":"t"}', '"slot"'],
    ['{"slot":"s"}', '"updatedAt"'],
    ['{"slot":"s","updatedAt":"t","lsn":123}', '"lsn"'],
    ['{"slot":"s","updatedAt":"t","generation":3}', '"generation"'],
    ['{"slot":"s","updatedAt":"t","diverged":true}', '"diverged"'],
    ['{"slot":"s","updatedAt":"t","rebuild":{"generation":"g"}}', '"rebuild"'],
    ['{"slot":"s","updatedAt":"t","rebuild":{"generation":"g","fingerprint":"f","slot":"s_r","startedAt":"t","requested":"yes"}}', '"rebuild.requested"'],
    ['{"slot":"s","updatedAt":"t","retired":["g"]}', '"retired"'],
    ['{"slot":"s","updatedAt":"t","origin":{"system":7311,"timeline":1}}', '"origin"'],
    ['{"slot":"s","updatedAt":"t","origin":{"system":"7311","timeline":"1"}}', '"origin"'],
    ['{"slot":"s","updatedAt":"t","lsn":"16B3748"}', '"lsn"'],
    ['{"slot":"s","updatedAt":"t","snapshot":{"complete":true}}', 'consistentLsn'],
    ['{"slot":"s","updatedAt":"t","snapshot":{"consistentLsn":"0/1"}}', 'complete'],
    ['{"slot":"s","updatedAt":"t","snapshot":{"consistentLsn":"0/1","complete":false,"doneUpTo":[1]}}', 'doneUpTo'],
  ])('rejects %s as CKP_CORRUPT (%s) naming where it was found', (text, problem) => {
    let error: unknown;
    try {
      decodeCheckpoint(text, 'file /ckp/.x.sluice.json');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('CKP_CORRUPT');
    expect((error as AppError).message).toContain('file /ckp/.x.sluice.json');
    expect((error as AppError).message).toContain(problem);
  });

  it('accepts every valid LSN form', () => {
    for (const lsn of ['0/0', 'FFFFFFFF/FFFFFFFF', 'a/b']) expect(checkpointProblem({ slot: 's', updatedAt: 't', lsn })).toBeUndefined();
  });
});

describe('pgsyncCheckpointWarning', () => {
  it('names the place, the value and the index, and shortens long values', () => {
    const warning = pgsyncCheckpointWarning('app_company', 'Redis key queue:app_company:meta', '12345');
    expect(warning).toContain('queue:app_company:meta');
    expect(warning).toContain('(12345)');
    expect(warning).toContain('index app_company is synced again');
    expect(pgsyncCheckpointWarning('n', 'w', 'x'.repeat(100)).length).toBeLessThan(250);
  });
});

describe('KeyedQueue', () => {
  const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

  it('runs tasks of one key in call order, other keys concurrently, and survives failures', async () => {
    const queue = new KeyedQueue();
    const log: string[] = [];
    const task = (label: string, ms: number, fail = false) => async (): Promise<string> => {
      log.push(`start ${label}`);
      await tick(ms);
      log.push(`end ${label}`);
      if (fail) throw new Error(label);
      return label;
    };
    const a1 = queue.run('a', task('a1', 20, true));
    const a2 = queue.run('a', task('a2', 1));
    const b1 = queue.run('b', task('b1', 1));
    await expect(a1).rejects.toThrow('a1');
    expect(await a2).toBe('a2');
    expect(await b1).toBe('b1');
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
    await queue.idle();
  });

  it('idle() waits for every task started', async () => {
    const queue = new KeyedQueue();
    let done = 0;
    void queue.run('a', async () => (await tick(10), done++));
    void queue.run('b', async () => (await tick(5), done++));
    await queue.idle();
    expect(done).toBe(2);
  });
});
