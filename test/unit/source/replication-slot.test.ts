import { describe, expect, it } from 'vitest';
import type { PostgresConfig } from '../../../src/config/config-types.js';
import { replicationError, slotNameFor } from '../../../src/source/postgres/replication-slot.js';

describe('slotNameFor', () => {
  it("follows PGSync's rule lower(database)_index without characters outside [0-9A-Za-z_]", () => {
    expect(slotNameFor('books', 'book')).toBe('books_book');
    expect(slotNameFor('my-db', 'idx.v1')).toBe('mydb_idxv1');
    expect(slotNameFor('Shop DB', 'orders_2024')).toBe('shopdb_orders_2024');
  });

  it('lower-cases the index too (PostgreSQL rejects upper case in slot names)', () => {
    expect(slotNameFor('Books', 'MyIndex')).toBe('books_myindex');
    expect(slotNameFor('db', 'Ünïcode-Idx')).toBe('db_ncodeidx');
  });

  it('cuts to 63 bytes with a hash so long names stay distinct', () => {
    const a = slotNameFor('d'.repeat(40), `${'i'.repeat(40)}_a`);
    const b = slotNameFor('d'.repeat(40), `${'i'.repeat(40)}_b`);
    expect(a).toHaveLength(63);
    expect(b).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9_]+$/);
    expect(a.startsWith('d'.repeat(40))).toBe(true);
    expect(slotNameFor('d'.repeat(40), 'i'.repeat(22))).toHaveLength(63);
    expect(slotNameFor('d'.repeat(40), 'i'.repeat(22))).toBe(`${'d'.repeat(40)}_${'i'.repeat(22)}`);
    expect(slotNameFor('d'.repeat(40), `${'i'.repeat(40)}_a`)).toBe(a);
  });
});

describe('replicationError', () => {
  const config: PostgresConfig = { host: 'db', port: 5432, user: 'sluice', password: 'secret', database: 'app' };
  const pgError = (message: string, code: string, detail?: string): Error => Object.assign(new Error(message), { code, detail });

  it('maps a missing slot to SRC_SLOT_MISSING', () => {
    const e = replicationError(pgError('replication slot "s1" does not exist', '42704'), 's1', 'START_REPLICATION', config, 'app');
    expect(e.code).toBe('SRC_SLOT_MISSING');
    expect(e.message).toContain('sluice@db:5432/app');
    expect(e.message).not.toContain('secret');
  });

  it('maps invalidated slots to SRC_SLOT_LOST (PostgreSQL 13-15 and 16+ wording)', () => {
    const pg15 = pgError('cannot read from logical replication slot "s1"', '55000', 'This slot has been invalidated because it exceeded the maximum reserved size.');
    const pg16 = pgError('can no longer get changes from replication slot "s1"', '55000', 'This slot has been invalidated because it was conflicting with recovery.');
    const removed = pgError('requested WAL segment 000000010000000000000003 has already been removed', '58P01');
    for (const error of [pg15, pg16, removed]) expect(replicationError(error, 's1', 'streaming', config, 'app').code).toBe('SRC_SLOT_LOST');
  });

  it('maps anything else to SRC_CONNECT and keeps AppErrors', () => {
    const e = replicationError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 's1', 'connecting', config, 'app');
    expect(e.code).toBe('SRC_CONNECT');
    expect(e.details).toMatchObject({ pgCode: 'ECONNREFUSED', slot: 's1' });
    expect(replicationError(e, 's2', 'x', config, 'app')).toBe(e);
  });
});
