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

  it('starts saves at least the interval apart', async () => {
    const starts: number[] = [];
    const saver = new LatestPositionSaver(async () => {
      starts.push(Date.now());
    }, (e) => {
      throw e;
    }, 200);
    saver.request(1n);
    await turn();
    saver.request(2n);
    saver.request(3n);
    await new Promise((r) => setTimeout(r, 50));
    expect(starts).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 300));
    expect(starts).toHaveLength(2);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(195);
  });

  it('idle() saves what is wanted at once instead of waiting out the interval', async () => {
    const saved: bigint[] = [];
    // An hour: were the interval waited out, the test would time out.
    const saver = new LatestPositionSaver(async (lsn) => {
      saved.push(lsn);
    }, (e) => {
      throw e;
    }, 3_600_000);
    saver.request(1n);
    await turn();
    saver.request(2n);
    await turn();
    expect(saved).toEqual([1n]);
    await saver.idle();
    expect(saved).toEqual([1n, 2n]);
  });
});
