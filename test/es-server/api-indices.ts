import { boolParam, isObject, ok, type EngineState, type Reply, type Req } from './context.js';
import { cause, EsError, fail, illegalArgument, indexNotFound } from './errors.js';
import { asCreateIndexError, checkMapping, mergeMapping } from './mapping-defs.js';
import { flattenSettings, nestSettings, validateSettings, type FlatSettings } from './settings.js';
import { IndexState, type AliasMeta } from './store.js';
import { parseAliasBody } from './api-aliases.js';

/** Builds an index from a create-index body (or defaults for auto-creation), validating like ES. */
export function buildIndex(engine: EngineState, name: string, body: Record<string, unknown> = {}): IndexState {
  const flat = flattenSettings(body.settings);
  validateSettings(flat, {});
  const settings: FlatSettings = new Map();
  settings.set('index.number_of_shards', '1');
  settings.set('index.number_of_replicas', '1');
  if (!engine.flavor.isOpenSearch) settings.set('index.routing.allocation.include._tier_preference', 'data_content');
  else settings.set('index.replication.type', 'DOCUMENT');
  for (const [k, v] of flat) if (v !== null && !['index.uuid', 'index.version.created', 'index.creation_date', 'index.provided_name'].includes(k)) settings.set(k, v);
  let mapping;
  try {
    mapping = checkMapping(body.mappings, engine.flavor.major);
  } catch (err) {
    throw asCreateIndexError(err);
  }
  const index = new IndexState(name, settings, mapping);
  settings.set('index.provided_name', name);
  settings.set('index.creation_date', String(index.creationDate));
  settings.set('index.uuid', index.uuid);
  settings.set('index.version.created', engine.flavor.indexVersionCreated);
  return index;
}

export function settingsBody(index: IndexState, flat: boolean): Record<string, unknown> {
  if (flat) return Object.fromEntries([...index.settings.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
  return nestSettings(index.settings);
}

export function createIndex(req: Req): Reply {
  const name = req.params.index as string;
  const engine = req.engine;
  const body = req.body.length ? parseCreateBody(req.text()) : {};
  for (const key of Object.keys(body)) {
    if (!['settings', 'mappings', 'aliases'].includes(key)) throw fail(400, 'parse_exception', `unknown key [${key}] for create index`);
  }
  engine.store.assertCreatable(name);
  const aliases: [string, AliasMeta][] = body.aliases === undefined ? [] : Object.entries(parseAliasBody(body.aliases));
  for (const [alias] of aliases) {
    if (engine.store.indices.has(alias) || alias === name) {
      throw fail(400, 'invalid_alias_name_exception', `Invalid alias name [${alias}]: an index or data stream exists with the same name as the alias`, { index_uuid: '_na_', index: alias });
    }
  }
  const index = buildIndex(engine, name, body);
  engine.store.add(index);
  for (const [alias, meta] of aliases) {
    const members = engine.store.aliases.get(alias) ?? new Map<string, AliasMeta>();
    members.set(name, meta);
    engine.store.aliases.set(alias, members);
  }
  return ok({ acknowledged: true, shards_acknowledged: true, index: name });
}

function parseCreateBody(text: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw EsError.of(400, cause('parse_exception', 'Failed to parse content to map', undefined, cause('json_parse_exception', err instanceof Error ? err.message : String(err))));
  }
  if (!isObject(body)) throw fail(400, 'parse_exception', 'Failed to parse content to map');
  return body;
}

export function headIndex(req: Req): Reply {
  const store = req.engine.store;
  const names = (req.params.index as string).split(',');
  const found = names.every((n) => (n.includes('*') ? true : store.indices.has(n) || store.aliases.has(n)));
  if (!found) return { status: 404 };
  const resolved = store.resolve(req.params.index, { ignoreUnavailable: true });
  return { status: resolved.length || names.some((n) => n.includes('*')) ? 200 : 404 };
}

function targets(req: Req): IndexState[] {
  return req.engine.store
    .resolve(req.params.index, { ignoreUnavailable: boolParam(req.query, 'ignore_unavailable'), allowNoIndices: boolParam(req.query, 'allow_no_indices', true) })
    .map((r) => r.index);
}

export function getIndex(req: Req): Reply {
  const out: Record<string, unknown> = {};
  for (const index of targets(req)) {
    out[index.name] = {
      aliases: req.engine.store.aliasesOf(index.name),
      mappings: index.mapping,
      settings: settingsBody(index, boolParam(req.query, 'flat_settings')),
    };
  }
  return ok(out);
}

export function deleteIndex(req: Req): Reply {
  const store = req.engine.store;
  const names = (req.params.index as string).split(',');
  const victims = new Set<string>();
  for (const name of names) {
    if (name.includes('*') || name === '_all') {
      if (req.engine.flavor.major >= 8 && !req.engine.flavor.isOpenSearch) throw illegalArgument('Wildcard expressions or all indices are not allowed');
      for (const r of store.resolve(name)) victims.add(r.index.name);
    } else if (store.indices.has(name)) victims.add(name);
    else if (store.aliases.has(name)) {
      throw illegalArgument(`The provided expression [${name}] matches an alias, specify the corresponding concrete indices instead.`);
    } else if (!boolParam(req.query, 'ignore_unavailable')) throw indexNotFound(name);
  }
  for (const name of victims) store.removeIndex(name);
  return ok({ acknowledged: true });
}

export function getMapping(req: Req): Reply {
  const out: Record<string, unknown> = {};
  for (const index of targets(req)) out[index.name] = { mappings: index.mapping };
  return ok(out);
}

export function putMapping(req: Req): Reply {
  const body = req.json();
  if (!isObject(body)) throw illegalArgument('mapping source is empty');
  const mapping = checkMapping(body, req.engine.flavor.major);
  const indices = targets(req);
  if (!indices.length) throw indexNotFound(req.params.index ?? '_all');
  const merged = indices.map((index) => mergeMapping(index.mapping, mapping));
  indices.forEach((index, i) => (index.mapping = merged[i] as typeof index.mapping));
  return ok({ acknowledged: true });
}

export function getSettings(req: Req): Reply {
  const out: Record<string, unknown> = {};
  const flat = boolParam(req.query, 'flat_settings');
  const filter = req.params.name;
  for (const index of targets(req)) {
    let settings = index.settings;
    if (filter) {
      const patterns = filter.split(',').map((p) => new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$'));
      settings = new Map([...settings].filter(([k]) => patterns.some((re) => re.test(k))));
    }
    const view = new IndexState(index.name, settings, {});
    out[index.name] = { settings: settingsBody(view, flat) };
  }
  return ok(out);
}

export function putSettings(req: Req): Reply {
  let body = req.json();
  if (isObject(body) && Object.keys(body).length === 1 && isObject(body.settings)) body = body.settings;
  const flat = flattenSettings(body);
  if (!flat.size) throw EsError.of(400, cause('action_request_validation_exception', 'Validation Failed: 1: no settings to update;'));
  const indices = targets(req);
  for (const index of indices) validateSettings(flat, { update: { index: index.name, uuid: index.uuid } });
  for (const index of indices) {
    for (const [k, v] of flat) {
      if (v === null) index.settings.delete(k);
      else index.settings.set(k, v);
    }
  }
  return ok({ acknowledged: true });
}

export const refresh = (req: Req): Reply => shardsReply(req, true);
/** _flush and _forcemerge: acknowledged per shard; neither makes new documents visible to searches. */
export const flush = (req: Req): Reply => shardsReply(req, false);

function shardsReply(req: Req, refreshing: boolean): Reply {
  const indices = targets(req);
  let total = 0;
  let successful = 0;
  for (const index of indices) {
    if (refreshing) index.refresh();
    const shards = Number(index.settings.get('index.number_of_shards') ?? 1);
    total += shards * (1 + index.replicas);
    successful += shards;
  }
  return ok({ _shards: { total, successful, failed: 0 } });
}

