import { formatProblems } from '../../errors/app-error.js';
import { createContext, prepareEntries, type GlobalFlags } from '../context.js';

/** `sluice validate`: settings and schema.json against the database catalog; writes nothing. */
export async function validateCommand(flags: GlobalFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const prepared = await prepareEntries(context, 1);
  try {
    out.write(`${context.config.schemaPath}: valid, ${prepared.plans.length} ${prepared.plans.length === 1 ? 'entry' : 'entries'}\n`);
    for (const plan of prepared.plans) {
      out.write(`  ${plan.index}: database ${plan.database}, root ${plan.root.schema}.${plan.root.table}, ${countNodes(plan.root)} tables\n`);
    }
    if (prepared.warnings.length > 0) out.write(`${formatProblems(prepared.warnings)}\n`);
    return 0;
  } finally {
    await prepared.close();
  }
}

function countNodes(node: { children: Array<{ children: unknown[] }> }): number {
  return 1 + node.children.reduce((sum, child) => sum + countNodes(child as { children: Array<{ children: unknown[] }> }), 0);
}
