import { describe, expect, it } from 'vitest';
import { rebuildSlotName } from '../../../src/lifecycle/generation-names.js';
import { slotNameFor } from '../../../src/source/postgres/replication-slot.js';

describe('rebuildSlotName', () => {
  it('appends "_r" to a slot name that leaves room for it', () => {
    expect(rebuildSlotName('db_book')).toBe('db_book_r');
    const longest = 'a'.repeat(61);
    expect(rebuildSlotName(longest)).toBe(`${longest}_r`);
  });

  it('keeps slot names apart that differ only past the 61st character, within 63 bytes', () => {
    const base = `shop_${'products_of_the_european_catalogue_'.repeat(2)}`.slice(0, 61);
    const names = [`${base}v1`, `${base}v2`, `${base}w`, slotNameFor('shop', `${'x'.repeat(70)}1`), slotNameFor('shop', `${'x'.repeat(70)}2`)];
    const rebuilds = names.map(rebuildSlotName);
    expect(new Set(rebuilds).size).toBe(names.length);
    for (const name of rebuilds) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(/^[a-z0-9_]+_r$/);
    }
    expect(rebuilds[0]!.startsWith(base.slice(0, 52))).toBe(true);
    // The same slot always gets the same rebuild slot (a restarted process finds its rebuild).
    expect(rebuildSlotName(names[0]!)).toBe(rebuilds[0]);
  });
});
