/**
 * Canonical JSON for comparing a document built by PostgreSQL with the `_source` the engine stores.
 * Both texts are parsed here rather than with JSON.parse, which rounds numbers beyond 2^53 (bigint and
 * numeric columns are exact in Sluice's documents, so a drifted digit must show) and keeps no number text.
 */
import { createHash } from 'node:crypto';

/** A JSON number kept exactly, as a canonical decimal text (`899.00` and `8.99e2` both become `899`). */
export class JsonNumber {
  constructor(readonly canonical: string) {}
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | { [key: string]: JsonValue };

/** Parses JSON text; numbers become `JsonNumber`s. Throws a SyntaxError naming the offset on invalid input. */
export function parseExactJson(text: string): JsonValue {
  const parser = new Parser(text);
  const value = parser.value();
  parser.end();
  return value;
}

/** The value as JSON text with object keys sorted and numbers in canonical form. */
export function canonicalJson(value: JsonValue): string {
  if (value === null || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value instanceof JsonNumber) return value.canonical;
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k]!)}`).join(',')}}`;
}

/** SHA-256 (hex) of the canonical form: equal for documents that differ only in key order, spacing or number spelling. */
export function contentHash(value: JsonValue): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

/** Canonical text of a JSON number literal: digits without leading or trailing zeros, then `e<exponent>` when not 0. */
export function canonicalNumber(literal: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(literal);
  if (!match) throw new SyntaxError(`invalid JSON number ${literal}`);
  const [, sign, integer, fraction = '', exponent = '0'] = match;
  let digits = `${integer}${fraction}`.replace(/^0+/, '');
  // BigInt keeps exponents of any size exact.
  let scale = BigInt(exponent) - BigInt(fraction.length);
  if (digits === '') return '0';
  const trimmed = digits.replace(/0+$/, '');
  scale += BigInt(digits.length - trimmed.length);
  digits = trimmed;
  return `${sign}${digits}${scale === 0n ? '' : `e${scale}`}`;
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

class Parser {
  private pos = 0;

  constructor(private readonly text: string) {}

  value(): JsonValue {
    this.skip();
    const c = this.text[this.pos];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === 't') return this.literal('true', true);
    if (c === 'f') return this.literal('false', false);
    if (c === 'n') return this.literal('null', null);
    return this.number();
  }

  end(): void {
    this.skip();
    if (this.pos !== this.text.length) this.fail('unexpected text after the value');
  }

  private object(): JsonValue {
    const out: { [key: string]: JsonValue } = {};
    this.pos++;
    this.skip();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return out;
    }
    for (;;) {
      this.skip();
      if (this.text[this.pos] !== '"') this.fail('expected a key');
      const key = this.string();
      this.skip();
      this.expect(':');
      // defineProperty: a key named "__proto__" must be data, not the prototype.
      Object.defineProperty(out, key, { value: this.value(), enumerable: true, writable: true, configurable: true });
      this.skip();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect('}');
      return out;
    }
  }

  private array(): JsonValue[] {
    const out: JsonValue[] = [];
    this.pos++;
    this.skip();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.skip();
      if (this.text[this.pos] === ',') {
        this.pos++;
        continue;
      }
      this.expect(']');
      return out;
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++;
    for (;;) {
      const c = this.text[this.pos];
      if (c === undefined) this.fail('unterminated string');
      if (c === '\\') this.pos += 2;
      else if (c === '"') break;
      else this.pos++;
    }
    this.pos++;
    // The literal's escapes are exactly JSON's, so JSON.parse decodes it (and rejects bad escapes).
    try {
      return JSON.parse(this.text.slice(start, this.pos)) as string;
    } catch {
      return this.fail('invalid string');
    }
  }

  private number(): JsonNumber {
    const match = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    match.lastIndex = this.pos;
    const found = match.exec(this.text);
    if (!found || (found[0].length > 1 && /^-?0\d/.test(found[0]))) this.fail('unexpected character');
    this.pos += found[0].length;
    return new JsonNumber(canonicalNumber(found[0]));
  }

  private literal<T>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.pos)) this.fail('unexpected character');
    this.pos += word.length;
    return value;
  }

  private expect(c: string): void {
    if (this.text[this.pos] !== c) this.fail(`expected "${c}"`);
    this.pos++;
  }

  private skip(): void {
    while (WHITESPACE.has(this.text[this.pos]!)) this.pos++;
  }

  private fail(what: string): never {
    throw new SyntaxError(`invalid JSON at offset ${this.pos}: ${what}`);
  }
}
