// Loads SQL fixtures into a test database and compiles schema.json fixtures against it.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { compilePlan } from '../../src/schema/compile-plan.js';
import { parseSchema } from '../../src/schema/parse-schema.js';
import type { EntryPlan } from '../../src/schema/sync-plan.js';
import type { Problem } from '../../src/errors/app-error.js';
import { readCatalog } from '../../src/source/postgres/catalog.js';
import { buildDocumentQuery, type RootFilter } from '../../src/transform/document-query.js';

export function fixturePath(relative: string): string {
  return fileURLToPath(new URL(`../fixtures/${relative}`, import.meta.url));
}

export function fixtureSql(name: string): string {
  return readFileSync(fixturePath(`sql/${name}`), 'utf8');
}

/** A schema fixture with every entry's `database` set to the test database. */
export function fixtureSchema(name: string, database: string): unknown[] {
  const entries = JSON.parse(readFileSync(fixturePath(`schemas/${name}`), 'utf8')) as Array<Record<string, unknown>>;
  return entries.map((entry) => ({ ...entry, database }));
}

export async function compileAgainst(url: string, schema: unknown): Promise<{ plans: EntryPlan[]; problems: Problem[] }> {
  const parsed = parseSchema(schema);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const catalog = await readCatalog(client);
    const problems = [...parsed.problems];
    const plans: EntryPlan[] = [];
    for (const entry of parsed.entries) {
      const compiled = compilePlan(entry, catalog);
      problems.push(...compiled.problems);
      if (compiled.plan) plans.push(compiled.plan);
    }
    return { plans, problems };
  } finally {
    await client.end();
  }
}

export interface BuiltDocument {
  id: string;
  routing: string | null;
  raw: string;
  source: Record<string, unknown>;
}

/** Runs the document query of a plan and returns the documents in key order. */
export async function buildDocuments(url: string, plan: EntryPlan, filter: RootFilter = { kind: 'all' }): Promise<BuiltDocument[]> {
  const client = new pg.Client({ connectionString: url, options: '-c TimeZone=UTC' });
  await client.connect();
  try {
    const query = buildDocumentQuery(plan, filter);
    const result = await client.query<{ _id: string; _routing: string | null; _source: string }>(query.text, query.values);
    return result.rows.map((row) => ({ id: row._id, routing: row._routing, raw: row._source, source: JSON.parse(row._source) as Record<string, unknown> }));
  } finally {
    await client.end();
  }
}
