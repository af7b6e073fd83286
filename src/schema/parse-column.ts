import type { ColumnSpec, JsonOperator, JsonPathStep } from './schema-types.js';

// Longest operators first: PGSync tried `->` before `->>` and mis-parsed `doc->>name` (pgsync-reference §8.4).
const OPERATOR_PATTERN = /(#>>|#>|->>|->)/;

/**
 * Parses a `columns` entry such as `doc->x->0->y`, `doc->>firstname` or `doc#>{a,b,c}->4`.
 * Returns an error message instead when the entry is malformed.
 */
export function parseColumnSpec(raw: string, location: string): ColumnSpec | string {
  const parts = raw.split(OPERATOR_PATTERN).map((part) => part.trim());
  const column = parts[0] ?? '';
  if (column === '') return `column entry "${raw}" has no column name before its JSON operator`;
  const path: JsonPathStep[] = [];
  const keyTokens = [column];
  for (let i = 1; i < parts.length; i += 2) {
    const operator = parts[i] as JsonOperator;
    const token = parts[i + 1] ?? '';
    if (token === '') return `column entry "${raw}" has nothing after "${operator}"`;
    const argument = parseArgument(operator, token);
    if (Array.isArray(argument) && argument.some((element) => element === '')) return `column entry "${raw}" has an empty element in its path "${token}"`;
    if (typeof argument === 'number' && !Number.isSafeInteger(argument)) return `column entry "${raw}" has an array index out of range (${token})`;
    path.push({ operator, argument });
    keyTokens.push(token.replace(/[{}]/g, ''));
  }
  return { raw, column, path, key: keyTokens.join('_'), location };
}

function parseArgument(operator: JsonOperator, token: string): JsonPathStep['argument'] {
  if (operator === '#>' || operator === '#>>') {
    const inner = token.startsWith('{') && token.endsWith('}') ? token.slice(1, -1) : token;
    return inner.split(',').map((element) => element.trim());
  }
  return /^-?\d+$/.test(token) ? Number(token) : token;
}
