/** SQL quoting helpers. Identifiers and literals from schema.json never reach SQL unquoted. */

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** A string literal; standard_conforming_strings is on in every supported PostgreSQL, so `\` is literal. */
export function quoteLiteral(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function qualified(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

export function textArrayLiteral(values: string[]): string {
  return `ARRAY[${values.map(quoteLiteral).join(', ')}]::text[]`;
}

/** Generates unique table aliases within one statement. */
export class AliasGenerator {
  private next = 0;
  take(prefix: string): string {
    return `${prefix}${this.next++}`;
  }
}
