import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../../src/source/postgres/lsn.js';

describe('LSN', () => {
  it('parses and formats like PostgreSQL', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16_b374_d848n);
    expect(parseLsn('16/b374d848')).toBe(0x16_b374_d848n);
    expect(formatLsn(0x16_b374_d848n)).toBe('16/B374D848');
    expect(formatLsn(0n)).toBe('0/0');
    expect(parseLsn('0/0')).toBe(0n);
    expect(formatLsn(0x1_0000_0000n)).toBe('1/0');
    expect(formatLsn(0xffff_ffff_ffff_ffffn)).toBe('FFFFFFFF/FFFFFFFF');
    expect(parseLsn('FFFFFFFF/FFFFFFFF')).toBe(0xffff_ffff_ffff_ffffn);
  });

  it('round-trips', () => {
    for (const lsn of [1n, 0xabcn, 0x1_0000_0001n, 0x7fff_ffff_0000_00a0n]) expect(parseLsn(formatLsn(lsn))).toBe(lsn);
  });

  it('rejects malformed text and out-of-range values', () => {
    for (const bad of ['', '16', '16/', '/1', 'G/1', '1/2/3', '123456789/0', '-1/0']) expect(() => parseLsn(bad)).toThrow(RangeError);
    expect(() => formatLsn(-1n)).toThrow(RangeError);
    expect(() => formatLsn(1n << 64n)).toThrow(RangeError);
  });
});
