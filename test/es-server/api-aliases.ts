import { isObject, ok, type Reply, type Req } from './context.js';
import { cause, EsError, fail, illegalArgument, indexNotFound, validationFailed } from './errors.js';
import { Store, type AliasMeta } from './store.js';

const list = (one: unknown, many: unknown): string[] => {
  const out: string[] = [];
  if (typeof one === 'string') out.push(...one.split(','));
  if (Array.isArray(many)) out.push(...many.map(String));
  else if (typeof many === 'string') out.push(...many.split(','));
  return out;
};

function aliasMeta(spec: Record<string, unknown>): AliasMeta {
  const meta: AliasMeta = {};
  if (spec.filter !== undefined) meta.filter = spec.filter;
  const routing = spec.routing === undefined ? undefined : String(spec.routing);
  if (spec.index_routing !== undefined || routing !== undefined) meta.index_routing = String(spec.index_routing ?? routing);
  if (spec.search_routing !== undefined || routing !== undefined) meta.search_routing = String(spec.search_routing ?? routing);
  if (typeof spec.is_write_index === 'boolean') meta.is_write_index = spec.is_write_index;
  if (typeof spec.is_hidden === 'boolean') meta.is_hidden = spec.is_hidden;
  return meta;
}

/** The `aliases` section of a create-index body. */
export function parseAliasBody(aliases: unknown): Record<string, AliasMeta> {
  if (!isObject(aliases)) throw fail(400, 'parse_exception', 'key [aliases] must be an object');
  return Object.fromEntries(Object.entries(aliases).map(([name, spec]) => [name, aliasMeta(isObject(spec) ? spec : {})]));
}

const globRe = (p: string): RegExp => new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');

type AliasMap = Map<string, Map<string, AliasMeta>>;

function concreteIndices(store: Store, names: string[]): string[] {
  const out: string[] = [];
  for (const name of names) {
    if (name.includes('*') || name === '_all') {
      out.push(...store.resolve(name).map((r) => r.index.name));
    } else if (store.indices.has(name)) out.push(name);
    else if (store.aliases.has(name)) throw illegalArgument(`The provided expression [${name}] matches an alias, specify the corresponding concrete indices instead.`);
    else throw indexNotFound(name);
  }
  return out;
}

function addAlias(store: Store, aliases: AliasMap, index: string, alias: string, meta: AliasMeta, dropping: readonly string[] = []): void {
  if (!alias.trim()) throw illegalArgument('alias name is required');
  const problem = Store.indexNameProblem(alias.toLowerCase());
  if (problem) throw fail(400, 'invalid_alias_name_exception', `Invalid alias name [${alias}], ${problem}`, { index_uuid: '_na_', index: alias });
  if (store.indices.has(alias) && !dropping.includes(alias)) {
    const reason = store.flavor.major >= 8 && !store.flavor.isOpenSearch
      ? `Invalid alias name [${alias}]: an index or data stream exists with the same name as the alias`
      : `Invalid alias name [${alias}], an index exists with the same name as the alias`;
    throw fail(400, 'invalid_alias_name_exception', reason, { index_uuid: store.indices.get(alias)?.uuid ?? '_na_', index: alias });
  }
  const members = aliases.get(alias) ?? new Map<string, AliasMeta>();
  members.set(index, meta);
  aliases.set(alias, members);
}

/** Removes matching aliases from `index`; whether any was. With `mustExist`, none is the whole request's 404. */
function removeAlias(aliases: AliasMap, index: string, pattern: string, mustExist: boolean): boolean {
  const re = globRe(pattern);
  let removed = false;
  for (const [alias, members] of aliases) {
    if ((pattern === '_all' || re.test(alias)) && members.delete(index)) {
      removed = true;
      if (!members.size) aliases.delete(alias);
    }
  }
  if (!removed && mustExist) throw aliasesMissing([pattern]);
  return removed;
}

const aliasesMissing = (names: string[]): EsError =>
  fail(404, 'aliases_not_found_exception', `aliases [${names.join(',')}] missing`, { 'resource.type': 'aliases', 'resource.id': names.join(',') });

/** `must_exist` on a remove action: Elasticsearch 7.11+ and OpenSearch 2.12+ parse it; older ones refuse the field. */
function mustExistKnown(store: Store): boolean {
  const [major = 0, minor = 0] = store.flavor.version.split('.').map(Number);
  return store.flavor.isOpenSearch ? major > 2 || (major === 2 && minor >= 12) : major > 7 || (major === 7 && minor >= 11);
}

/** Elasticsearch 8.14+ answers a partly applied request with `errors` and a result per action. */
function reportsActionResults(store: Store): boolean {
  const [major = 0, minor = 0] = store.flavor.version.split('.').map(Number);
  return !store.flavor.isOpenSearch && (major > 8 || (major === 8 && minor >= 14));
}

function checkWriteIndexes(aliases: AliasMap): void {
  for (const [alias, members] of aliases) {
    const writers = [...members].filter(([, m]) => m.is_write_index === true).map(([i]) => i);
    if (writers.length > 1) throw fail(400, 'illegal_state_exception', `alias [${alias}] has more than one write index [${writers.join(',')}]`);
  }
}

function commit(store: Store, aliases: AliasMap, dropIndices: string[] = []): void {
  checkWriteIndexes(aliases);
  store.aliases.clear();
  for (const [k, v] of aliases) store.aliases.set(k, v);
  for (const name of dropIndices) store.removeIndex(name);
}

const cloneAliases = (store: Store): AliasMap => new Map([...store.aliases].map(([k, v]) => [k, new Map(v)]));

/** POST /_aliases: all actions apply atomically or none do. */
export function updateAliases(req: Req): Reply {
  const body = req.json();
  const actions = isObject(body) ? body.actions : undefined;
  if (!Array.isArray(actions) || !actions.length) throw validationFailed(['no actions specified']);
  const store = req.engine.store;
  const aliases = cloneAliases(store);
  const drop: string[] = [];
  const parsed = actions.map((entry: unknown) => {
    if (!isObject(entry) || Object.keys(entry).length !== 1) throw fail(400, 'x_content_parse_exception', '[1:1] [alias_action] failed to parse field [actions]');
    const type = Object.keys(entry)[0] as string;
    const spec = entry[type];
    if (!isObject(spec)) throw fail(400, 'x_content_parse_exception', `[1:1] [${type}] failed to parse`);
    const indexNames = list(spec.index, spec.indices);
    if (!indexNames.length) throw validationFailed(['One of [index] or [indices] is required']);
    return { type, spec, indexNames };
  });
  // Like Elasticsearch, indices to remove go first, whatever their place in the list: that is what lets one
  // request replace a concrete index by an alias of the same name.
  for (const { indexNames } of parsed.filter((a) => a.type === 'remove_index')) {
    const concrete = concreteIndices(store, indexNames);
    drop.push(...concrete);
    for (const members of aliases.values()) for (const i of concrete) members.delete(i);
    for (const [alias, members] of aliases) if (!members.size) aliases.delete(alias);
  }
  // Like Elasticsearch (TransportIndicesAliasesAction): a remove that finds nothing is skipped unless `must_exist`, and
  // the request fails only when no action is left. 8.14+ then reports which actions found nothing.
  const results: Array<{ type: string; indices: string[]; aliases: string[]; missing: boolean }> = [];
  for (const { type, spec, indexNames } of parsed.filter((a) => a.type !== 'remove_index')) {
    const aliasNames = list(spec.alias, spec.aliases);
    if (!aliasNames.length) throw validationFailed(['One of [alias] or [aliases] is required']);
    if (spec.must_exist !== undefined && !mustExistKnown(store)) throw fail(400, 'x_content_parse_exception', `[1:1] [${type}] unknown field [must_exist]`);
    const indices = concreteIndices(store, indexNames);
    if (type === 'add') {
      for (const index of indices) for (const alias of aliasNames) addAlias(store, aliases, index, alias, aliasMeta(spec), drop);
      results.push({ type, indices, aliases: aliasNames, missing: false });
    } else if (type === 'remove') {
      let removed = false;
      for (const index of indices) for (const alias of aliasNames) removed = removeAlias(aliases, index, alias, spec.must_exist === true) || removed;
      results.push({ type, indices, aliases: aliasNames, missing: !removed });
    } else {
      throw illegalArgument(`Unsupported alias action [${type}]`);
    }
  }
  if (results.length > 0 && drop.length === 0 && results.every((r) => r.missing)) throw aliasesMissing(results.flatMap((r) => r.aliases));
  commit(store, aliases, drop);
  const errors = results.some((r) => r.missing);
  if (!reportsActionResults(store)) return ok(req.engine.flavor.major >= 8 && !req.engine.flavor.isOpenSearch ? { acknowledged: true, errors: false } : { acknowledged: true });
  if (!errors) return ok({ acknowledged: true, errors: false });
  return ok({
    acknowledged: true,
    errors: true,
    action_results: results.map((r) => ({
      action: { type: r.type, indices: [...r.indices].sort(), aliases: r.aliases },
      status: r.missing ? 404 : 200,
      ...(r.missing ? { error: { type: 'aliases_not_found_exception', reason: `aliases [${r.aliases.join(',')}] missing`, 'resource.type': 'aliases', 'resource.id': r.aliases.join(',') } } : {}),
    })),
  });
}

export function putAlias(req: Req): Reply {
  const store = req.engine.store;
  const body = req.body.length ? req.json() : {};
  const aliases = cloneAliases(store);
  const indices = concreteIndices(store, (req.params.index as string).split(','));
  for (const index of indices) addAlias(store, aliases, index, req.params.name as string, aliasMeta(isObject(body) ? body : {}));
  commit(store, aliases);
  return ok({ acknowledged: true });
}

export function deleteAlias(req: Req): Reply {
  const store = req.engine.store;
  const aliases = cloneAliases(store);
  const indices = concreteIndices(store, (req.params.index as string).split(','));
  for (const name of (req.params.name as string).split(',')) {
    let removed = false;
    for (const index of indices) {
      try {
        removeAlias(aliases, index, name, true);
        removed = true;
      } catch (err) {
        if (!(err instanceof EsError)) throw err;
      }
    }
    if (!removed) throw EsError.of(404, cause('aliases_not_found_exception', `aliases [${name}] missing`, { 'resource.type': 'aliases', 'resource.id': name }));
  }
  commit(store, aliases);
  return ok({ acknowledged: true });
}

/** GET /_alias/{name}, /{index}/_alias[/{name}], /_alias: ES's odd `{"error":"alias [x] missing"}` shape on misses. */
export function getAliases(req: Req): Reply {
  const store = req.engine.store;
  const patterns = req.params.name?.split(',').filter((n) => n !== '_all' && n !== '*');
  const indices = req.params.index ? store.resolve(req.params.index).map((r) => r.index.name) : [...store.indices.keys()].sort();
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  for (const index of indices) {
    const all = store.aliasesOf(index);
    const picked = patterns?.length
      ? Object.fromEntries(Object.entries(all).filter(([alias]) => patterns.some((p) => globRe(p).test(alias) && seen.add(p))))
      : all;
    if (patterns?.length && !Object.keys(picked).length) continue;
    out[index] = { aliases: picked };
  }
  const missing = (patterns ?? []).filter((p) => !p.includes('*') && !seen.has(p));
  if (missing.length) {
    const message = missing.length === 1 ? `alias [${missing[0]}] missing` : `aliases [${missing.join(',')}] missing`;
    return { status: 404, body: { error: message, status: 404, ...out } };
  }
  return ok(out);
}

export function headAlias(req: Req): Reply {
  const reply = getAliases(req);
  const found = reply.status === 200 && Object.keys(reply.body as object).length > 0;
  return { status: found ? 200 : 404 };
}
