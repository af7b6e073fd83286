import { textArrayLiteral, quoteLiteral } from './sql.js';

/** Move the value at path `from` of a JSON object to path `to` (intermediate objects created). */
export interface JsonMove {
  from: string[];
  to: string[];
}

/**
 * Applies `transform.move` rules to a JSON object expression. Moves work on jsonb (so key order follows
 * jsonb's rules in documents that use them); a missing source value leaves the document unchanged.
 */
export function applyMoves(objectExpr: string, moves: JsonMove[]): string {
  if (moves.length === 0) return objectExpr;
  let expr = `(${objectExpr})::jsonb`;
  for (const move of moves) {
    const from = textArrayLiteral(move.from);
    const value = `(d #> ${from})`;
    const set = setPath(`(d #- ${from})`, move.to, value);
    // OFFSET 0 keeps the planner from inlining `d`, which would rebuild the whole document once per reference.
    expr = `(SELECT CASE WHEN ${value} IS NULL THEN d ELSE ${set} END FROM (SELECT ${expr} AS d OFFSET 0) AS m)`;
  }
  return `(${expr})::json`;
}

/** `doc` with `value` at `path`, merging into existing objects along the way. */
function setPath(doc: string, path: string[], value: string): string {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (rest.length === 0) return `(${doc} || jsonb_build_object(${quoteLiteral(head)}, ${value}))`;
  const existing = `coalesce(CASE WHEN jsonb_typeof(${doc} -> ${quoteLiteral(head)}) = 'object' THEN ${doc} -> ${quoteLiteral(head)} END, '{}'::jsonb)`;
  return `(${doc} || jsonb_build_object(${quoteLiteral(head)}, ${setPath(existing, rest, value)}))`;
}
