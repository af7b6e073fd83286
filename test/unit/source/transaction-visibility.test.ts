import { describe, expect, it } from 'vitest';
import { awaitVisible, namesStandby, notVisible } from '../../../src/source/postgres/transaction-visibility.js';

describe('notVisible', () => {
  it('finds transactions at or after xmax, or in progress, in a snapshot of 64-bit ids', () => {
    expect(notVisible([100, 105, 110, 111], '100:110:105,107')).toEqual([105, 110, 111]);
    expect(notVisible([99, 100], '100:110:')).toEqual([]);
    expect(notVisible([7, 7], '5:7:')).toEqual([7]);
  });

  it('compares 32-bit ids around the wrap, with the epoch of 64-bit ones ignored', () => {
    const epoch = 3n << 32n;
    // xmax just past the wrap (epoch 3, id 5): id 4294967290 of epoch 2 is older, id 6 is not yet completed.
    expect(notVisible([4294967290, 4, 6], `${epoch - 10n}:${epoch + 5n}:${epoch + 4n}`)).toEqual([4, 6]);
  });

  it('rejects a snapshot it cannot read', () => {
    expect(() => notVisible([1], 'nonsense')).toThrow(/unexpected snapshot/);
  });
});

describe('awaitVisible', () => {
  it('asks once when everything is visible, polls until it is, and reports a slow wait once', async () => {
    const answers = ['10:12:11', '10:12:11', '12:13:'];
    const queries: string[] = [];
    const pool = { query: async (text: string) => (queries.push(text), { rows: [{ snapshot: answers.shift() ?? '12:13:' }] }) };
    const slow: number[][] = [];
    await awaitVisible(pool as never, [11], new AbortController().signal, { slowAfterMs: 0, onSlow: (xids) => slow.push(xids) });
    expect(queries).toHaveLength(3);
    expect(slow).toEqual([[11]]);
    queries.length = 0;
    await awaitVisible(pool as never, [], new AbortController().signal);
    expect(queries).toHaveLength(0);
  });

  it('stops waiting when its signal aborts', async () => {
    const pool = { query: async () => ({ rows: [{ snapshot: '10:11:' }] }) };
    const stop = new AbortController();
    const waiting = awaitVisible(pool as never, [11], stop.signal);
    setTimeout(() => stop.abort(), 20);
    await expect(waiting).rejects.toThrow();
  });
});

describe('namesStandby', () => {
  it('finds the application name, or *, in every form of synchronous_standby_names, without case', () => {
    expect(namesStandby('*', 'sluice')).toBe(true);
    expect(namesStandby('ANY 1 (*)', 'sluice')).toBe(true);
    expect(namesStandby('FIRST 2 (replica_a, Sluice)', 'sluice')).toBe(true);
    expect(namesStandby('2 (replica_a, "SLUICE")', 'sluice')).toBe(true);
    expect(namesStandby('replica_a,sluice', 'sluice')).toBe(true);
    expect(namesStandby('', 'sluice')).toBe(false);
    expect(namesStandby('FIRST 1 (replica_a, replica_b)', 'sluice')).toBe(false);
    expect(namesStandby('"sluice_b"', 'sluice')).toBe(false);
  });
});

