import { AppError } from '../errors/app-error.js';
import type { EntryPlan } from '../schema/sync-plan.js';
import type { GenerationTarget } from './index-lifecycle.js';
import { entryFingerprint, generationName } from './generation-names.js';

/**
 * The physical index a one-off full sync writes into: the one the entry's alias serves, a concrete index of that
 * name (a deployment from before generations), or, when there is nothing yet, a first generation behind a new
 * alias, as `sluice run` would create it.
 */
export async function servingIndexFor(target: Pick<GenerationTarget, 'resolveName' | 'swapAlias' | 'ensureIndex'>, plan: EntryPlan): Promise<{ index: string; created: boolean }> {
  const state = await target.resolveName(plan.index);
  if (state.kind === 'index') return { index: plan.index, created: false };
  if (state.kind === 'alias') {
    if (state.indices.length === 1) return { index: state.indices[0]!, created: false };
    throw new AppError('SNK_REQUEST', `alias "${plan.index}" points at several indices (${state.indices.join(', ')}): point it at one, then sync again`);
  }
  const index = generationName(plan.index, entryFingerprint(plan));
  await target.ensureIndex({ ...plan, index });
  await target.swapAlias({ alias: plan.index, to: index, from: [] });
  return { index, created: true };
}
