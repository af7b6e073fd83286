/**
 * Aliases over versioned physical indices (design §7): what a name currently is, and the atomic swap.
 */
import type { EngineClient } from './engine-client.js';
import { AppError } from '../../errors/app-error.js';
import { asRecord, parseEngineErrorText, requestRejected } from './es-errors.js';
import { indexPath } from './index-manager.js';

/** What an index name is in the engine right now. */
export type NameState =
  | { kind: 'none' }
  /** A concrete index (a deployment from before generations, e.g. PGSync's). */
  | { kind: 'index' }
  /** An alias over these concrete indices. */
  | { kind: 'alias'; indices: string[] };

export async function resolveName(client: EngineClient, name: string): Promise<NameState> {
  const res = await client.request('GET', `${indexPath(name)}/_alias`);
  if (res.status === 404 && parseEngineErrorText(res.body, 404).type === 'index_not_found_exception') return { kind: 'none' };
  if (res.status < 200 || res.status >= 300) throw requestRejected(`reading what "${name}" is`, res.status, res.body);
  // Keyed by concrete index: the name itself when it is an index, the alias' members otherwise.
  const indices = Object.keys(asRecord(res.json()) ?? {});
  return indices.includes(name) ? { kind: 'index' } : { kind: 'alias', indices: indices.sort() };
}

export interface AliasSwap {
  alias: string;
  /** The index the alias must point to afterwards (only it). */
  to: string;
  /** Indices the alias leaves. */
  from: string[];
  /** A concrete index named like the alias, deleted in the same request (adoption of a pre-alias deployment). */
  replaceIndex?: boolean;
  /**
   * Aborted when this process no longer owns the index: a swap redone after that would undo the new owner's, so none
   * is. (The first request is the caller's to guard.)
   */
  signal?: AbortSignal;
}

/** Swaps tried when the alias turns out to have moved meanwhile (another hand on it) before giving up. */
const SWAP_ATTEMPTS = 3;

/**
 * Points `alias` at `to` alone, in one `_aliases` request: searches see the old indices until the instant of
 * the swap and the new one from then on, never neither. With `replaceIndex`, the concrete index of that name
 * is deleted in the same request (the engine removes indices before adding aliases).
 *
 * `from` was read earlier, and the alias may have moved since. Engines skip a remove that finds nothing (8.14+ also
 * say so in `errors`), so the request can succeed and leave the alias on an index `from` did not name: it is read
 * back, and swapped again from what it is on.
 */
export async function swapAlias(client: EngineClient, swap: AliasSwap): Promise<void> {
  let from = swap.from;
  let replaceIndex = swap.replaceIndex === true;
  for (let attempt = 1; ; attempt++) {
    const actions: object[] = [{ add: { index: swap.to, alias: swap.alias } }];
    for (const index of from) if (index !== swap.to) actions.push({ remove: { index, alias: swap.alias } });
    if (replaceIndex) actions.push({ remove_index: { index: swap.alias } });
    const res = await client.request('POST', '/_aliases', { body: JSON.stringify({ actions }) });
    if (res.status < 200 || res.status >= 300) throw requestRejected(`pointing alias "${swap.alias}" at "${swap.to}"`, res.status, res.body);
    const now = await resolveName(client, swap.alias);
    const others = now.kind === 'alias' ? now.indices.filter((index) => index !== swap.to) : [];
    if (now.kind === 'alias' && now.indices.includes(swap.to) && others.length === 0) return;
    if (attempt >= SWAP_ATTEMPTS) {
      // Waited out and tried again from the start, as an engine that keeps failing is: another writer of the alias
      // (an outside script, a process that has not noticed it lost the index) may stop.
      throw new AppError('SNK_UNAVAILABLE', `pointing alias "${swap.alias}" at "${swap.to}" alone: it is on ${describeName(now)} after ${attempt} swaps (something else moves it)`);
    }
    swap.signal?.throwIfAborted();
    from = others;
    replaceIndex = now.kind === 'index';
  }
}

function describeName(state: NameState): string {
  if (state.kind === 'none') return 'no index';
  if (state.kind === 'index') return 'a concrete index of that name';
  return state.indices.map((index) => `"${index}"`).join(', ');
}
