import { describe, expect, it } from 'vitest';
import { LatestPositionSaver } from '../../../src/pipeline/stream-phase.js';

/** A save that stays open until `release()`; records every position it was given. */
function gatedSaves() {
  const saved: bigint[] = [];
  let release: () => void = () => undefined;
  const save = (lsn: bigint) => {
    saved.push(lsn);
    return new Promise<void>((resolve) => (release = resolve));
  };
  return { saved, save, release: () => release() };
}

const turn = () => new Promise((r) => setImmediate(r));

describe('LatestPositionSaver', () => {
  it('saves one position at a time and, after a save, only the newest position requested meanwhile', async () => {
    const gate = gatedSaves();
    const saver = new LatestPositionSaver(gate.save, (e) => {
      throw e;
    });
    saver.request(10n);
    saver.request(20n);
    saver.request(30n);
    saver.request(25n);
    expect(gate.saved).toEqual([10n]);
    gate.release();
    await turn();
    expect(gate.saved).toEqual([10n, 30n]);
    gate.release();
    await saver.idle();
    expect(gate.saved).toEqual([10n, 30n]);
    saver.request(30n);
    saver.request(5n);
    await saver.idle();
    expect(gate.saved).toEqual([10n, 30n]);
  });

  it('idle() waits for the save requested during the running one', async () => {
    const gate = gatedSaves();
    const saver = new LatestPositionSaver(gate.save, () => undefined);
    saver.request(1n);
    saver.request(2n);
    let idle = false;
    const waiting = saver.idle().then(() => (idle = true));
    gate.release();
    await turn();
    expect(idle).toBe(false);
    gate.release();
    await waiting;
    expect(gate.saved).toEqual([1n, 2n]);
  });

  it('reports a failed save and saves nothing after it', async () => {
    const errors: unknown[] = [];
    const saved: bigint[] = [];
    const saver = new LatestPositionSaver(async (lsn) => {
      saved.push(lsn);
      if (lsn === 2n) throw new Error('disk full');
    }, (e) => errors.push(e));
    saver.request(1n);
    await saver.idle();
    saver.request(2n);
    await saver.idle();
    saver.request(3n);
    await saver.idle();
    expect(saved).toEqual([1n, 2n]);
    expect(errors).toHaveLength(1);
    expect(String(errors[0])).toMatch(/disk full/);
  });
});
