import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../../src/checkpoint/checkpoint-store.js';
import { checkHistory } from '../../../src/pipeline/database-history.js';
import type { ChangeSource } from '../../../src/source/change-source.js';
import { switchPoint } from '../../../src/source/postgres/database-origin.js';

/** A source whose server is `system` on `timeline`, having left each earlier timeline at the LSN `left` gives. */
function source(system: string, timeline: number, left: Record<number, bigint> = {}): ChangeSource {
  return {
    origin: async (since?: number) => (since === undefined || since === timeline ? { system, timeline } : { system, timeline, leftSinceAt: left[since] ?? null }),
  } as unknown as ChangeSource;
}

const checkpoint = (origin: Checkpoint['origin'], lsn = '0/3000000'): Checkpoint => ({
  slot: 'db_book',
  lsn,
  snapshot: { consistentLsn: '0/1000000', complete: true },
  ...(origin ? { origin } : {}),
  updatedAt: 't',
});

describe('checkHistory', () => {
  it('passes a checkpoint on the same system and timeline, or one without a recorded origin, and reports the origin', async () => {
    expect(await checkHistory(source('7', 1), checkpoint({ system: '7', timeline: 1 }))).toEqual({ origin: { system: '7', timeline: 1 } });
    expect(await checkHistory(source('7', 2), checkpoint(undefined))).toEqual({ origin: { system: '7', timeline: 2 } });
    expect(await checkHistory(source('7', 2), undefined)).toEqual({ origin: { system: '7', timeline: 2 } });
  });

  it('passes a timeline change after the checkpoint position, and refuses one before it', async () => {
    expect((await checkHistory(source('7', 2, { 1: 0x3000000n }), checkpoint({ system: '7', timeline: 1 }))).diverged).toBeUndefined();
    const diverged = await checkHistory(source('7', 2, { 1: 0x2ffffffn }), checkpoint({ system: '7', timeline: 1 }));
    expect(diverged.diverged).toMatch(/left timeline 1 at 0\/2FFFFFF \(now timeline 2.*before the checkpoint's position 0\/3000000/);
    expect(diverged.origin).toEqual({ system: '7', timeline: 2 });
  });

  it('refuses a checkpoint its snapshot marked diverged (the engine had newer versions), even on the same system and timeline', async () => {
    const marked = { ...checkpoint({ system: '7', timeline: 1 }), diverged: 'the engine refused 3 of this snapshot\'s writes' };
    expect(await checkHistory(source('7', 1), marked)).toEqual({ origin: { system: '7', timeline: 1 }, diverged: marked.diverged });
  });

  it('refuses another system, and a timeline whose history lacks the checkpoint timeline', async () => {
    expect((await checkHistory(source('8', 1), checkpoint({ system: '7', timeline: 1 }))).diverged).toMatch(/another PostgreSQL cluster \(system identifier 8; the checkpoint was taken on 7\)/);
    expect((await checkHistory(source('7', 3), checkpoint({ system: '7', timeline: 2 }))).diverged).toMatch(/timeline 3, whose history does not contain the checkpoint's timeline 2/);
  });

  it('refuses a primary whose WAL ends before the checkpoint position on the same timeline (a snapshot restore), and keeps walEnd out of the origin', async () => {
    const at = (walEnd: bigint) => ({ origin: async () => ({ system: '7', timeline: 1, walEnd }) }) as unknown as ChangeSource;
    const restored = await checkHistory(at(0x2ffffffn), checkpoint({ system: '7', timeline: 1 }));
    expect(restored.diverged).toMatch(/WAL ends at 0\/2FFFFFF, before the checkpoint's position 0\/3000000 on the same timeline 1/);
    expect(restored.origin).toEqual({ system: '7', timeline: 1 });
    expect(await checkHistory(at(0x3000000n), checkpoint({ system: '7', timeline: 1 }))).toEqual({ origin: { system: '7', timeline: 1 } });
    expect(await checkHistory(at(0x10n), undefined)).toEqual({ origin: { system: '7', timeline: 1 } });
  });

  it('takes the snapshot position when it is ahead of the acknowledged one', async () => {
    const early = { ...checkpoint({ system: '7', timeline: 1 }, '0/10'), snapshot: { consistentLsn: '0/5000000', complete: false } };
    expect((await checkHistory(source('7', 2, { 1: 0x4000000n }), early)).diverged).toMatch(/position 0\/5000000/);
  });
});

describe('switchPoint', () => {
  it('reads where a history file says the server left a timeline', () => {
    const history = '1\t0/3000060\tno recovery target specified\n\n2\t0/5000A0\tat restore point "x"\n';
    expect(switchPoint(history, 1)).toBe(0x3000060n);
    expect(switchPoint(history, 2)).toBe(0x5000a0n);
    expect(switchPoint(history, 4)).toBeNull();
    expect(switchPoint('', 1)).toBeNull();
  });
});
