// A seeded random workload over every table of the book fixture (test/fixtures/sql/book.sql), for the
// convergence and crash tests. The same seed against the same starting data gives the same statements: every
// choice comes from the seeded PRNG, and existing rows are picked by position in key order, not by random().
//
// Every statement respects the foreign keys: ids are picked among existing rows, parents are detached before
// they are deleted, ratings only move to books without one (rating.book_isbn is UNIQUE). A transaction that
// fails anyway is rolled back and counted, never thrown.
import pg from 'pg';

/** mulberry32: a small, fast 32-bit PRNG; the same seed gives the same sequence in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Random {
  private readonly next: () => number;

  constructor(readonly seed: number) {
    this.next = mulberry32(seed);
  }

  float(): number {
    return this.next();
  }

  /** An integer in [min, max], both included. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  weighted<T>(entries: ReadonlyArray<readonly [T, number]>): T {
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [value, weight] of entries) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return entries[entries.length - 1]![0];
  }
}

/** The seed of a randomised test: `SLUICE_TEST_SEED` when set, else `fallback`. */
export function testSeed(fallback: number): number {
  const raw = process.env.SLUICE_TEST_SEED;
  if (raw === undefined || raw.trim() === '') return fallback;
  const seed = Number(raw);
  if (!Number.isInteger(seed)) throw new Error(`SLUICE_TEST_SEED must be an integer, got ${JSON.stringify(raw)}`);
  return seed;
}

export interface WorkloadProgress {
  /** Transactions finished so far (committed or rolled back). */
  transactions: number;
  /** Operations run so far. */
  operations: number;
}

export interface WorkloadOptions {
  seed: number;
  /** Operations in all; one operation is one logical change (a few statements at most). */
  operations: number;
  /** Each transaction holds 1..maxTransactionSize operations. */
  maxTransactionSize: number;
  /** Chance that an operation is a TRUNCATE of a child table (default 0.003: rare). */
  truncateChance?: number;
  /** Awaited after every transaction, e.g. to pace the workload or to kill Sluice at that moment. */
  afterTransaction?: (progress: WorkloadProgress) => Promise<void> | void;
  /** Stops before the next transaction once aborted. */
  signal?: AbortSignal;
  /** Where the seed and the summary are logged (default console.log). */
  log?: (message: string) => void;
}

export interface WorkloadResult {
  seed: number;
  operations: number;
  transactions: number;
  committed: number;
  rolledBack: number;
  /** The first few errors of rolled-back transactions. */
  failures: string[];
  /** Operations run, by kind (of committed and rolled-back transactions alike). */
  byKind: Record<string, number>;
}

type Row = Record<string, unknown>;

/** What an operation gets: the connection inside the open transaction and the PRNG. */
class Session {
  private isbnCounter = 0;

  constructor(
    readonly client: pg.Client,
    readonly rng: Random,
  ) {}

  async query(sql: string, params: unknown[] = []): Promise<pg.QueryResult<Row>> {
    return this.client.query<Row>(sql, params);
  }

  /**
   * One existing row of `table` (matching `where`), picked by its position in id order, or undefined when
   * there is none. `where` may use `$1..$n` for `params`.
   */
  async pick(table: string, columns = 'id', where = 'TRUE', params: unknown[] = []): Promise<Row | undefined> {
    const position = `$${params.length + 1}`;
    const sql = `SELECT ${columns} FROM ${table} WHERE ${where} ORDER BY id LIMIT 1 OFFSET (SELECT floor(${position}::float8 * count(*))::bigint FROM ${table} WHERE ${where})`;
    const { rows } = await this.query(sql, [...params, this.rng.float()]);
    return rows[0];
  }

  async pickId(table: string, where = 'TRUE', params: unknown[] = []): Promise<number | undefined> {
    const row = await this.pick(table, 'id', where, params);
    return row === undefined ? undefined : Number(row.id);
  }

  /** An existing id of `table`, or null (a nullable foreign key) with probability `nullChance`. */
  async optionalId(table: string, nullChance: number): Promise<number | null> {
    if (this.rng.chance(nullChance)) return null;
    return (await this.pickId(table)) ?? null;
  }

  /** A free id: one more than the largest (ids of deleted rows come back, as after a sequence reset). */
  async nextId(table: string): Promise<number> {
    const { rows } = await this.query(`SELECT coalesce(max(id), 0) + 1 AS id FROM ${table}`);
    return Number(rows[0]!.id);
  }

  /** A new ISBN, unique within this run (seed and counter); sometimes contains "00" (the replace transform). */
  isbn(): string {
    this.isbnCounter += 1;
    return `${String(this.rng.int(0, 99_999)).padStart(5, '0')}-${(this.rng.seed >>> 0).toString(36)}-${this.isbnCounter}`;
  }

  text(words = 3): string {
    const parts: string[] = [];
    const count = this.rng.int(1, words);
    for (let i = 0; i < count; i++) parts.push(this.rng.pick(WORDS));
    return parts.join(this.rng.chance(0.9) ? ' ' : this.rng.pick(SEPARATORS));
  }

  tags(): string | null {
    if (this.rng.chance(0.2)) return null;
    const list: string[] = [];
    for (let i = this.rng.int(0, 3); i > 0; i--) list.push(this.rng.pick(WORDS));
    return JSON.stringify(list);
  }

  doc(): string | null {
    if (this.rng.chance(0.2)) return null;
    const doc: Record<string, unknown> = { firstname: this.text(1) };
    if (this.rng.chance(0.6)) doc.a = { b: { c: Array.from({ length: this.rng.int(0, 6) }, () => this.rng.int(-5, 500)) } };
    if (this.rng.chance(0.6)) doc.x = [{ y: this.rng.int(0, 9) }, this.rng.chance(0.8) ? { z: this.text(1) } : { w: 1 }];
    if (this.rng.chance(0.2)) doc.extra = { nested: this.text(2), n: this.rng.float() };
    return JSON.stringify(doc);
  }

  timestamp(): string | null {
    if (this.rng.chance(0.2)) return null;
    const ms = Date.UTC(1950, 0, 1) + Math.floor(this.rng.float() * 80 * 365 * 86_400_000);
    const micros = this.rng.chance(0.3) ? `.${String(this.rng.int(0, 999_999)).padStart(6, '0')}` : '';
    return new Date(ms).toISOString().slice(0, 19).replace('T', ' ') + micros;
  }

  date(): string | null {
    if (this.rng.chance(0.15)) return null;
    return new Date(Date.UTC(1900, 0, 1) + this.rng.int(0, 40_000) * 86_400_000).toISOString().slice(0, 10);
  }
}

const WORDS = [
  'alpha', 'Book', 'river', 'night', 'garden', 'Été', 'Zürich', 'naïve', '東京', 'книга', '📚', 'quote"d', "o'clock",
  'back\\slash', 'tab\there', 'new\nline', 'percent%', 'under_score', 'x', 'long-word-with-dashes', '00', 'fr-FR', '<b>',
];
const SEPARATORS = [' | ', ', ', '-', '/', '  '];

type Operation = (s: Session) => Promise<void>;

const CHILD_TABLES_TO_TRUNCATE = ['book_author', 'book_language', 'book_subject', 'rating'];

/** Link tables: [table, column of the other side, table of the other side]. */
const LINKS = [
  ['book_author', 'author_id', 'author'],
  ['book_language', 'language_id', 'language'],
  ['book_subject', 'subject_id', 'subject'],
] as const;

const OPERATIONS: ReadonlyArray<readonly [string, number, Operation]> = [
  // book (the root)
  ['book.insert', 12, async (s) => {
    const id = await s.nextId('book');
    await s.query(
      'INSERT INTO book (id, isbn, title, description, copyright, tags, doc, publisher_id, publish_date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      [id, s.isbn(), s.text(), s.rng.chance(0.3) ? null : s.text(6), s.rng.chance(0.5) ? null : s.text(1), s.tags(), s.doc(), await s.optionalId('publisher', 0.2), s.timestamp()],
    );
  }],
  ['book.update', 10, async (s) => {
    const id = await s.pickId('book');
    if (id === undefined) return;
    const columns: Array<[string, unknown]> = [];
    const candidates: Array<() => Promise<[string, unknown]>> = [
      async () => ['title', s.text()],
      async () => ['description', s.rng.chance(0.3) ? null : s.text(6)],
      async () => ['copyright', s.text(1)], // no document uses it: must not change anything
      async () => ['tags', s.tags()],
      async () => ['doc', s.doc()],
      async () => ['publisher_id', await s.optionalId('publisher', 0.2)],
      async () => ['publish_date', s.timestamp()],
    ];
    for (let n = s.rng.int(1, 3); n > 0; n--) columns.push(await s.rng.pick(candidates)());
    const unique = new Map(columns);
    const sets = [...unique.keys()].map((c, i) => `${c} = $${i + 2}`);
    await s.query(`UPDATE book SET ${sets.join(', ')} WHERE id = $1`, [id, ...unique.values()]);
  }],
  ['book.change-id', 3, async (s) => {
    const id = await s.pickId('book');
    if (id !== undefined) await s.query('UPDATE book SET id = (SELECT max(id) + 1 FROM book) WHERE id = $1', [id]);
  }],
  ['book.change-isbn', 3, async (s) => {
    const id = await s.pickId('book');
    // ON UPDATE CASCADE moves the link rows and the rating along.
    if (id !== undefined) await s.query('UPDATE book SET isbn = $2 WHERE id = $1', [id, s.isbn()]);
  }],
  ['book.delete', 3, async (s) => {
    const id = await s.pickId('book');
    if (id !== undefined) await s.query('DELETE FROM book WHERE id = $1', [id]);
  }],
  ['book.update-many', 0.5, async (s) => {
    const publisher = await s.pickId('publisher');
    if (publisher !== undefined) await s.query('UPDATE book SET title = title || $2 WHERE publisher_id = $1', [publisher, ` ${s.text(1)}`]);
  }],

  // publisher (one_to_one through book.publisher_id)
  ['publisher.insert', 2, async (s) => {
    await s.query('INSERT INTO publisher (id, name, is_active) VALUES ($1, $2, $3)', [await s.nextId('publisher'), s.text(2), s.rng.chance(0.7)]);
  }],
  ['publisher.update', 3, async (s) => {
    const id = await s.pickId('publisher');
    if (id === undefined) return;
    if (s.rng.chance(0.5)) await s.query('UPDATE publisher SET name = $2 WHERE id = $1', [id, s.text(2)]);
    else await s.query('UPDATE publisher SET is_active = NOT is_active WHERE id = $1', [id]);
  }],
  ['publisher.delete', 1, async (s) => {
    const id = await s.pickId('publisher');
    if (id === undefined) return;
    await s.query('UPDATE book SET publisher_id = NULL WHERE publisher_id = $1', [id]);
    await s.query('DELETE FROM publisher WHERE id = $1', [id]);
  }],

  // author (through book_author), city, country, continent (a one_to_one chain below author)
  ['author.insert', 3, async (s) => {
    await s.query('INSERT INTO author (id, name, date_of_birth, city_id) VALUES ($1, $2, $3, $4)', [await s.nextId('author'), s.text(2), s.date(), await s.optionalId('city', 0.1)]);
  }],
  ['author.update', 3, async (s) => {
    const id = await s.pickId('author');
    if (id === undefined) return;
    if (s.rng.chance(0.6)) await s.query('UPDATE author SET name = $2 WHERE id = $1', [id, s.text(2)]);
    else await s.query('UPDATE author SET date_of_birth = $2 WHERE id = $1', [id, s.date()]);
  }],
  ['author.move-city', 3, async (s) => {
    const id = await s.pickId('author');
    if (id !== undefined) await s.query('UPDATE author SET city_id = $2 WHERE id = $1', [id, await s.optionalId('city', 0.1)]);
  }],
  ['author.delete', 1, async (s) => {
    const id = await s.pickId('author');
    if (id !== undefined) await s.query('DELETE FROM author WHERE id = $1', [id]);
  }],
  ['city.insert', 1, async (s) => {
    await s.query('INSERT INTO city (id, name, country_id) VALUES ($1, $2, $3)', [await s.nextId('city'), s.text(1), await s.optionalId('country', 0.1)]);
  }],
  ['city.rename', 2, async (s) => {
    const id = await s.pickId('city');
    if (id !== undefined) await s.query('UPDATE city SET name = $2 WHERE id = $1', [id, s.text(2)]);
  }],
  ['city.move-country', 1, async (s) => {
    const id = await s.pickId('city');
    if (id !== undefined) await s.query('UPDATE city SET country_id = $2 WHERE id = $1', [id, await s.optionalId('country', 0.1)]);
  }],
  ['city.rename-many', 0.3, async (s) => {
    const country = await s.pickId('country');
    if (country !== undefined) await s.query("UPDATE city SET name = name || '*' WHERE country_id = $1", [country]);
  }],
  ['city.delete', 0.5, async (s) => {
    const id = await s.pickId('city');
    if (id === undefined) return;
    await s.query('UPDATE author SET city_id = NULL WHERE city_id = $1', [id]);
    await s.query('DELETE FROM city WHERE id = $1', [id]);
  }],
  ['country.insert', 0.5, async (s) => {
    await s.query('INSERT INTO country (id, name, continent_id) VALUES ($1, $2, $3)', [await s.nextId('country'), s.text(1), await s.optionalId('continent', 0.1)]);
  }],
  ['country.rename', 1, async (s) => {
    const id = await s.pickId('country');
    if (id !== undefined) await s.query('UPDATE country SET name = $2 WHERE id = $1', [id, s.text(2)]);
  }],
  ['country.move-continent', 1, async (s) => {
    const id = await s.pickId('country');
    if (id !== undefined) await s.query('UPDATE country SET continent_id = $2 WHERE id = $1', [id, await s.optionalId('continent', 0.1)]);
  }],
  ['country.delete', 0.4, async (s) => {
    const id = await s.pickId('country');
    if (id === undefined) return;
    await s.query('UPDATE city SET country_id = NULL WHERE country_id = $1', [id]);
    await s.query('DELETE FROM country WHERE id = $1', [id]);
  }],
  ['continent.insert', 0.3, async (s) => {
    await s.query('INSERT INTO continent (id, name) VALUES ($1, $2)', [await s.nextId('continent'), s.text(1)]);
  }],
  ['continent.rename', 1, async (s) => {
    const id = await s.pickId('continent');
    if (id !== undefined) await s.query('UPDATE continent SET name = $2 WHERE id = $1', [id, s.text(2)]);
  }],
  ['continent.delete', 0.4, async (s) => {
    const id = await s.pickId('continent');
    if (id === undefined) return;
    await s.query('UPDATE country SET continent_id = NULL WHERE continent_id = $1', [id]);
    await s.query('DELETE FROM continent WHERE id = $1', [id]);
  }],

  // language and subject (scalars through book_language / book_subject)
  ['language.insert', 1, async (s) => {
    await s.query('INSERT INTO language (id, code) VALUES ($1, $2)', [await s.nextId('language'), `${s.rng.pick(['en', 'fr', 'de', 'pt', 'zh'])}-${s.rng.pick(['GB', 'FR', 'DE', 'BR', 'CN', 'x-y'])}`]);
  }],
  ['language.update', 2, async (s) => {
    const id = await s.pickId('language');
    if (id !== undefined) await s.query('UPDATE language SET code = $2 WHERE id = $1', [id, `${s.text(1)}-${s.rng.int(0, 99)}`]);
  }],
  ['language.delete', 0.5, async (s) => {
    const id = await s.pickId('language');
    if (id !== undefined) await s.query('DELETE FROM language WHERE id = $1', [id]);
  }],
  ['subject.insert', 1, async (s) => {
    await s.query('INSERT INTO subject (id, name) VALUES ($1, $2)', [await s.nextId('subject'), s.text(2)]);
  }],
  ['subject.rename', 2, async (s) => {
    const id = await s.pickId('subject');
    if (id !== undefined) await s.query('UPDATE subject SET name = $2 WHERE id = $1', [id, s.text(2)]);
  }],
  ['subject.delete', 0.5, async (s) => {
    const id = await s.pickId('subject');
    if (id !== undefined) await s.query('DELETE FROM subject WHERE id = $1', [id]);
  }],

  // link tables: insert, delete, repoint to another book or to another author / language / subject
  ...LINKS.flatMap(([table, column, other]): Array<readonly [string, number, Operation]> => [
    [`${table}.insert`, 4, async (s) => {
      const book = await s.pick('book', 'isbn');
      const target = await s.pickId(other);
      if (book === undefined || target === undefined) return;
      await s.query(`INSERT INTO ${table} (id, book_isbn, ${column}) VALUES ($1, $2, $3)`, [await s.nextId(table), book.isbn, target]);
    }],
    [`${table}.delete`, 2, async (s) => {
      const id = await s.pickId(table);
      if (id !== undefined) await s.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
    }],
    [`${table}.repoint-book`, 2, async (s) => {
      const id = await s.pickId(table);
      const book = await s.pick('book', 'isbn');
      if (id !== undefined && book !== undefined) await s.query(`UPDATE ${table} SET book_isbn = $2 WHERE id = $1`, [id, book.isbn]);
    }],
    [`${table}.repoint-${other}`, 2, async (s) => {
      const id = await s.pickId(table);
      const target = await s.pickId(other);
      if (id !== undefined && target !== undefined) await s.query(`UPDATE ${table} SET ${column} = $2 WHERE id = $1`, [id, target]);
    }],
  ]),

  // rating (one_to_one object; book_isbn is UNIQUE)
  ['rating.insert', 3, async (s) => {
    const book = await s.pick('book', 'isbn', 'NOT EXISTS (SELECT 1 FROM rating r WHERE r.book_isbn = book.isbn)');
    if (book !== undefined) await s.query('INSERT INTO rating (id, book_isbn, value) VALUES ($1, $2, $3)', [await s.nextId('rating'), book.isbn, s.rng.int(0, 99) / 10]);
  }],
  ['rating.update', 3, async (s) => {
    const id = await s.pickId('rating');
    if (id !== undefined) await s.query('UPDATE rating SET value = $2 WHERE id = $1', [id, s.rng.int(0, 99) / 10]);
  }],
  ['rating.move', 3, async (s) => {
    const id = await s.pickId('rating');
    const book = await s.pick('book', 'isbn', 'NOT EXISTS (SELECT 1 FROM rating r WHERE r.book_isbn = book.isbn)');
    if (id !== undefined && book !== undefined) await s.query('UPDATE rating SET book_isbn = $2 WHERE id = $1', [id, book.isbn]);
  }],
  ['rating.delete', 2, async (s) => {
    const id = await s.pickId('rating');
    if (id !== undefined) await s.query('DELETE FROM rating WHERE id = $1', [id]);
  }],
];

const WEIGHTED_OPERATIONS = OPERATIONS.map(([name, weight, run]) => [{ name, run }, weight] as const);

/** Every operation kind the workload draws from (TRUNCATE comes on top, by `truncateChance`). */
export const OPERATION_KINDS: readonly string[] = [...OPERATIONS.map(([name]) => name), 'truncate'];

/**
 * Runs `operations` random operations against the book fixture tables of `db`, in transactions of random size
 * 1..maxTransactionSize, on one connection. Resolves with what was committed and rolled back; never throws for a
 * failed transaction (only when the database cannot be reached at all at the start).
 */
export async function runRandomWorkload(db: string | { url: string }, options: WorkloadOptions): Promise<WorkloadResult> {
  const log = options.log ?? ((message: string) => console.log(message));
  const truncateChance = options.truncateChance ?? 0.003;
  const rng = new Random(options.seed);
  log(`random workload: seed ${options.seed}, ${options.operations} operations, transactions of 1..${options.maxTransactionSize}`);
  const client = new pg.Client({ connectionString: typeof db === 'string' ? db : db.url });
  let broken: Error | undefined;
  client.on('error', (error) => (broken = error));
  await client.connect();
  const session = new Session(client, rng);
  const result: WorkloadResult = { seed: options.seed, operations: 0, transactions: 0, committed: 0, rolledBack: 0, failures: [], byKind: {} };
  try {
    while (result.operations < options.operations && !options.signal?.aborted) {
      const size = Math.min(rng.int(1, Math.max(1, options.maxTransactionSize)), options.operations - result.operations);
      if (broken) {
        // The connection is gone (the server restarted?): nothing more can run on it.
        result.failures.push(`connection lost: ${broken.message}`);
        break;
      }
      try {
        await client.query('BEGIN');
        for (let i = 0; i < size; i++) {
          result.operations += 1;
          if (rng.chance(truncateChance)) {
            const table = rng.pick(CHILD_TABLES_TO_TRUNCATE);
            result.byKind.truncate = (result.byKind.truncate ?? 0) + 1;
            await client.query(`TRUNCATE ${table}`);
            continue;
          }
          const operation = rng.weighted(WEIGHTED_OPERATIONS);
          result.byKind[operation.name] = (result.byKind[operation.name] ?? 0) + 1;
          await operation.run(session);
        }
        await client.query('COMMIT');
        result.committed += 1;
      } catch (error) {
        result.rolledBack += 1;
        if (result.failures.length < 10) result.failures.push((error as Error).message);
        await client.query('ROLLBACK').catch(() => undefined);
      }
      result.transactions += 1;
      await options.afterTransaction?.({ transactions: result.transactions, operations: result.operations });
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  log(
    `random workload seed ${options.seed}: ${result.operations} operations in ${result.transactions} transactions ` +
      `(${result.committed} committed, ${result.rolledBack} rolled back${result.failures.length > 0 ? `: ${result.failures.slice(0, 3).join('; ')}` : ''})`,
  );
  return result;
}

/** The random workload in rounds of new seeds (seed, seed + 1, …), each transaction followed by `pauseMs`, until stopped. */
export function backgroundWorkload(
  db: string | { url: string },
  options: { seed: number; operations: number; maxTransactionSize: number; pauseMs: number; truncateChance?: number; log?: (message: string) => void },
): { stop(): Promise<WorkloadResult[]> } {
  const controller = new AbortController();
  const results: WorkloadResult[] = [];
  const done = (async () => {
    for (let round = 0; !controller.signal.aborted; round++) {
      results.push(
        await runRandomWorkload(db, {
          seed: options.seed + round,
          operations: options.operations,
          maxTransactionSize: options.maxTransactionSize,
          ...(options.truncateChance !== undefined ? { truncateChance: options.truncateChance } : {}),
          ...(options.log ? { log: options.log } : {}),
          signal: controller.signal,
          afterTransaction: () => new Promise((resolve) => setTimeout(resolve, options.pauseMs)),
        }),
      );
    }
  })();
  return {
    stop: async () => {
      controller.abort();
      await done;
      return results;
    },
  };
}
