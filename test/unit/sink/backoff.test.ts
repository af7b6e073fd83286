import { describe, expect, it } from 'vitest';
import { backoffDelayMs, sleep } from '../../../src/util/backoff.js';

describe('backoffDelayMs', () => {
  it('stays within [0, min(max, initial * 2^attempt)]', () => {
    for (let attempt = 0; attempt < 40; attempt++) {
      const ceiling = Math.min(5000, 100 * 2 ** attempt);
      for (const r of [0, 0.25, 0.5, 0.999999]) {
        const d = backoffDelayMs(attempt, 100, 5000, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
      expect(backoffDelayMs(attempt, 100, 5000, () => 0.999999)).toBe(Math.floor(0.999999 * ceiling));
    }
  });

  it('is full jitter: zero is possible and the cap is respected for huge attempts', () => {
    expect(backoffDelayMs(3, 100, 5000, () => 0)).toBe(0);
    expect(backoffDelayMs(5000, 100, 5000, () => 0.5)).toBe(2500);
    expect(backoffDelayMs(-1, 100, 5000, () => 0.5)).toBe(50);
  });

  it('uses Math.random by default', () => {
    for (let i = 0; i < 100; i++) {
      const d = backoffDelayMs(2, 10, 1000);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThanOrEqual(40);
    }
  });
});

describe('sleep', () => {
  it('resolves after the delay', async () => {
    const start = Date.now();
    await sleep(20);
    expect(Date.now() - start).toBeGreaterThanOrEqual(15);
  });

  it('rejects with the abort reason', async () => {
    const ac = new AbortController();
    const p = sleep(10_000, ac.signal);
    ac.abort(new Error('stop'));
    await expect(p).rejects.toThrow('stop');
    await expect(sleep(1, ac.signal)).rejects.toThrow('stop');
  });
});
