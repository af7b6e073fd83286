import { PUBLICATION, bootstrapStatements, teardownStatements } from '../../source/postgres/bootstrap-sql.js';
import { dropSlot, slotNameFor } from '../../source/postgres/replication-slot.js';
import { earlierRebuildSlotName, rebuildSlotName, reindexRequestName } from '../../lifecycle/generation-names.js';
import { postgresError } from '../../source/postgres/connect.js';
import { createContext, openSharedCheckpointStore, prepareEntries, type GlobalFlags } from '../context.js';
import { EXIT_CODES } from '../exit-codes.js';
import { AppError } from '../../errors/app-error.js';

export interface BootstrapFlags extends GlobalFlags {
  printSql?: boolean;
  replicaIdentity?: boolean;
}

/** `sluice bootstrap`: the publication, REPLICA IDENTITY FULL where needed, and one slot per index. */
export async function bootstrapCommand(flags: BootstrapFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const prepared = await prepareEntries(context, 1, { live: true });
  try {
    for (const database of new Set(prepared.plans.map((p) => p.database))) {
      const plans = prepared.plans.filter((p) => p.database === database);
      const statements = bootstrapStatements(plans, plans.map((p) => slotNameFor(p.database, p.index)), { replicaIdentityFull: flags.replicaIdentity !== false });
      if (flags.printSql) {
        out.write(`\\connect ${database}\n${statements.join('\n')}\n`);
        continue;
      }
      for (const statement of statements) {
        try {
          await prepared.pool(database).query(statement);
        } catch (error) {
          throw postgresError(error, `bootstrap (${statement.slice(0, 80)}…)`, context.config.postgres, database);
        }
      }
      out.write(`${database}: publication "${PUBLICATION}" covers ${plans.length} ${plans.length === 1 ? 'index' : 'indexes'}; slots ${plans.map((p) => slotNameFor(p.database, p.index)).join(', ')} ready\n`);
    }
    return EXIT_CODES.ok;
  } finally {
    await prepared.close();
  }
}

/** `sluice teardown`: drops the slots (freeing their WAL), the publication and the checkpoints. */
export async function teardownCommand(flags: BootstrapFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const context = createContext(flags);
  const prepared = await prepareEntries(context, 1);
  try {
    if (!flags.printSql) {
      // A running owner would lose its slot mid-stream and start the index over against a missing publication.
      const store = await openSharedCheckpointStore(context, prepared);
      try {
        for (const plan of prepared.plans) {
          const lease = await store.leaseOf(slotNameFor(plan.database, plan.index));
          if (lease) throw new AppError('CKP_NOT_OWNER', `index ${plan.index} is owned by ${lease.owner} (a running \`sluice run\`): stop every \`sluice run\` of this schema first, then teardown`);
        }
      } finally {
        await store.close();
      }
    }
    for (const database of new Set(prepared.plans.map((p) => p.database))) {
      // With each entry's slot, the slot of a rebuild that may be under way beside it.
      const slots = [
        ...new Set(
          prepared.plans
            .filter((p) => p.database === database)
            .flatMap((p) => {
              // And the rebuild slot an earlier version named otherwise: every entry of the schema goes, whatever it holds.
              const name = slotNameFor(p.database, p.index);
              const earlier = earlierRebuildSlotName(name);
              return [name, rebuildSlotName(name), ...(earlier !== undefined ? [earlier] : [])];
            }),
        ),
      ];
      if (flags.printSql) {
        out.write(`\\connect ${database}\n${teardownStatements(slots).join('\n')}\n`);
        continue;
      }
      const pool = prepared.pool(database);
      for (const slot of slots) await dropSlot(pool, slot);
      await pool.query(teardownStatements([]).join('\n'));
      out.write(`${database}: dropped slots ${slots.join(', ')} and publication "${PUBLICATION}"\n`);
    }
    if (!flags.printSql) {
      const store = await openSharedCheckpointStore(context, prepared);
      try {
        for (const plan of prepared.plans) {
          const name = slotNameFor(plan.database, plan.index);
          const earlier = earlierRebuildSlotName(name);
          for (const record of [name, rebuildSlotName(name), ...(earlier !== undefined ? [earlier] : []), reindexRequestName(name)]) await store.remove(record);
        }
      } finally {
        await store.close();
      }
    }
    return EXIT_CODES.ok;
  } finally {
    await prepared.close();
  }
}
