import { EsError, indexNotFound, invalidIndexNameCause, illegalArgument, resourceAlreadyExists } from './errors.js';
import { randomId, type FlavorInfo } from './flavors.js';
import type { RootMapping } from './mapping-defs.js';
import { defaultRoutingNumShards, shardFor } from './routing.js';
import { parseTimeMs, type FlatSettings } from './settings.js';

export interface Doc {
  id: string;
  /**
   * The `_source` bytes exactly as sent: a range of the request body, which stays referenced instead of being
   * copied or kept parsed, so millions of documents fit in memory.
   */
  buf: Buffer;
  start: number;
  end: number;
  version: bigint;
  seqNo: number;
  routing?: string;
  /** Parsed `_source`, cached once a search needed it. */
  parsed?: unknown;
}

export interface SourceBytes {
  buf: Buffer;
  start: number;
  end: number;
}

export const rawSource = (doc: SourceBytes): string => doc.buf.toString('utf8', doc.start, doc.end);
export const parseSource = (doc: SourceBytes): unknown => JSON.parse(rawSource(doc));

export function sourceOf(doc: Doc): unknown {
  if (doc.parsed === undefined) doc.parsed = parseSource(doc);
  return doc.parsed;
}

export function bytesOf(text: string): SourceBytes {
  const buf = Buffer.from(text);
  return { buf, start: 0, end: buf.length };
}

export interface AliasMeta {
  is_write_index?: boolean;
  filter?: unknown;
  index_routing?: string;
  search_routing?: string;
  is_hidden?: boolean;
}

/**
 * One primary shard: its documents, the deletes external versioning still remembers, its own `_seq_no` counter
 * and what searches see of it as of the last refresh. The same `_id` on two shards is two documents, as in ES.
 */
export class ShardState {
  readonly docs = new Map<string, Doc>();
  /**
   * Versions of deleted documents and when they were deleted, so external versioning keeps rejecting older writes for
   * `index.gc_deletes` (60 s by default), after which ES forgets them and an older write recreates the document.
   */
  readonly tombstones = new Map<string, { version: bigint; at: number }>();
  private nextSeqNo = 0;
  /** What searches see: the documents as of the last refresh. */
  searchable: Doc[] = [];
  dirty = false;

  constructor(readonly number: number) {}

  takeSeqNo(): number {
    return this.nextSeqNo++;
  }

  get maxSeqNo(): number {
    return this.nextSeqNo - 1;
  }

  refresh(): void {
    if (!this.dirty) return;
    this.searchable = Array.from(this.docs.values());
    this.dirty = false;
  }
}

export class IndexState {
  readonly uuid = randomId(16);
  readonly creationDate = Date.now();
  /** Primary shards, `index.number_of_shards` of them (fixed at creation like the static setting). */
  readonly shards: ShardState[];
  private readonly routingNumShards: number;
  /** Some shard has writes a refresh has not exposed yet. */
  dirty = false;
  lastRefresh = Date.now();
  lastSearchAccess = Date.now();
  deletedDocs = 0;

  constructor(
    readonly name: string,
    public settings: FlatSettings,
    public mapping: RootMapping,
  ) {
    const count = Math.max(1, Number(settings.get('index.number_of_shards') ?? 1) || 1);
    this.shards = Array.from({ length: count }, (_, i) => new ShardState(i));
    const explicit = Number(settings.get('index.number_of_routing_shards'));
    this.routingNumShards = Number.isInteger(explicit) && explicit >= count && explicit % count === 0 ? explicit : defaultRoutingNumShards(count);
  }

  get numberOfShards(): number {
    return this.shards.length;
  }

  /** The shard a write or get with this routing (default: the id) goes to. */
  shardFor(id: string, routing: string | undefined): ShardState {
    return this.shards[shardFor(routing ?? id, this.shards.length, this.routingNumShards)] as ShardState;
  }

  /** Every stored document, every copy of an id (one per shard holding it), shard by shard. */
  *allDocs(): IterableIterator<Doc> {
    for (const shard of this.shards) yield* shard.docs.values();
  }

  get docCount(): number {
    let n = 0;
    for (const shard of this.shards) n += shard.docs.size;
    return n;
  }

  /** Documents searches see, over all shards. */
  get searchableCount(): number {
    let n = 0;
    for (const shard of this.shards) n += shard.searchable.length;
    return n;
  }

  /** A write happened on `shard`: the next refresh has something to expose. */
  markDirty(shard: ShardState): void {
    shard.dirty = true;
    this.dirty = true;
  }

  refresh(): void {
    this.lastRefresh = Date.now();
    if (!this.dirty) return;
    for (const shard of this.shards) shard.refresh();
    this.dirty = false;
  }

  get replicas(): number {
    const auto = this.settings.get('index.auto_expand_replicas');
    if (typeof auto === 'string' && auto !== 'false') return Number(auto.split('-')[0]) || 0;
    return Number(this.settings.get('index.number_of_replicas') ?? 1);
  }

  /** Explicit refresh interval in ms (-1 disables), or undefined for ES's default 1s with search-idle shards. */
  get refreshIntervalMs(): number | undefined {
    const value = this.settings.get('index.refresh_interval');
    return typeof value === 'string' ? parseTimeMs(value) : undefined;
  }

  get routingRequired(): boolean {
    return (this.mapping._routing as { required?: boolean } | undefined)?.required === true;
  }

  /** `_shards` of a write: the primary and its replicas (unassigned on a one-node cluster). */
  writeShards(): { total: number; successful: number; failed: number } {
    return { total: this.replicas + 1, successful: 1, failed: 0 };
  }

  get health(): 'green' | 'yellow' {
    return this.replicas > 0 ? 'yellow' : 'green';
  }
}

export interface Resolved {
  index: IndexState;
  /** Filter of the alias the index was reached through, if any. */
  filter?: unknown;
}

function wildcardRegex(pattern: string): RegExp {
  return new RegExp('^' + pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
}

export class Store {
  readonly indices = new Map<string, IndexState>();
  /** alias name → index name → alias properties */
  readonly aliases = new Map<string, Map<string, AliasMeta>>();
  readonly pipelines = new Map<string, unknown>();

  constructor(
    readonly flavor: FlavorInfo,
    private readonly createDefault: (name: string) => IndexState,
  ) {}

  static indexNameProblem(name: string): string | undefined {
    if (/[\\/*?"<>| ,]/.test(name)) return 'must not contain the following characters [ , ", *, \\, <, |, ,, >, /, ?]';
    if (name.includes('#')) return "must not contain '#'";
    if (name.includes(':')) return "must not contain ':'";
    if (/^[_\-+]/.test(name)) return "must not start with '_', '-', or '+'";
    const bytes = Buffer.byteLength(name);
    if (bytes > 255) return `index name is too long, (${bytes} > 255)`;
    if (name === '.' || name === '..') return "must not be '.' or '..'";
    if (name.toLowerCase() !== name) return 'must be lowercase';
    return undefined;
  }

  static checkIndexName(name: string): void {
    const problem = Store.indexNameProblem(name);
    if (problem) throw EsError.of(400, invalidIndexNameCause(name, problem));
  }

  assertCreatable(name: string): void {
    Store.checkIndexName(name);
    const existing = this.indices.get(name);
    if (existing) throw resourceAlreadyExists(name, existing.uuid);
    if (this.aliases.has(name)) {
      throw EsError.of(400, {
        type: 'invalid_index_name_exception',
        reason: `Invalid index name [${name}], already exists as alias`,
        index_uuid: '_na_',
        index: name,
      });
    }
  }

  add(index: IndexState): void {
    this.indices.set(index.name, index);
  }

  removeIndex(name: string): void {
    this.indices.delete(name);
    for (const [alias, members] of this.aliases) {
      members.delete(name);
      if (!members.size) this.aliases.delete(alias);
    }
  }

  aliasesOf(indexName: string): Record<string, AliasMeta> {
    const out: Record<string, AliasMeta> = {};
    for (const alias of [...this.aliases.keys()].sort()) {
      const meta = this.aliases.get(alias)?.get(indexName);
      if (meta) out[alias] = meta;
    }
    return out;
  }

  /** The index a write to `name` lands in: the index itself, an alias's write index, or a new index (auto-create). */
  resolveWrite(name: string, autoCreate = true): IndexState {
    const index = this.indices.get(name);
    if (index) return index;
    const members = this.aliases.get(name);
    if (members) {
      const entries = [...members.entries()];
      const explicit = entries.find(([, m]) => m.is_write_index === true);
      const target = explicit ?? (entries.length === 1 && entries[0]?.[1].is_write_index !== false ? entries[0] : undefined);
      if (!target) {
        throw illegalArgument(
          `no write index is defined for alias [${name}]. The write index may be explicitly disabled using is_write_index=false or the alias points to multiple indices without one being designated as a write index`,
        );
      }
      return this.indices.get(target[0]) as IndexState;
    }
    if (!autoCreate) throw indexNotFound(name, 'index_expression');
    Store.checkIndexName(name);
    const created = this.createDefault(name);
    this.add(created);
    return created;
  }

  /** Single-index reads (GET doc): an index or an alias with exactly one index. */
  resolveSingle(name: string): IndexState {
    const index = this.indices.get(name);
    if (index) return index;
    const members = this.aliases.get(name);
    if (!members) throw indexNotFound(name);
    if (members.size > 1) {
      throw illegalArgument(`alias [${name}] has more than one index associated with it [${[...members.keys()].sort().join(', ')}], can't execute a single index op`);
    }
    return this.indices.get([...members.keys()][0] as string) as IndexState;
  }

  /** Multi-index expressions (`a,b`, wildcards, `_all`, aliases, `-exclusions`) as search and friends resolve them. */
  resolve(expression: string | undefined, opts: { ignoreUnavailable?: boolean; allowNoIndices?: boolean } = {}): Resolved[] {
    const out = new Map<string, Resolved>();
    const parts = !expression || expression === '_all' ? ['*'] : expression.split(',').filter(Boolean);
    const addIndex = (name: string, filter?: unknown): void => {
      const index = this.indices.get(name);
      if (!index) return;
      const prev = out.get(name);
      if (prev && prev.filter === undefined) return;
      out.set(name, filter === undefined || (prev && prev.filter === undefined) ? { index } : { index, filter });
    };
    const addAlias = (alias: string): void => {
      for (const [name, meta] of this.aliases.get(alias) ?? []) addIndex(name, meta.filter);
    };
    for (const part of parts) {
      if (part.startsWith('-') && out.size) {
        const re = wildcardRegex(part.slice(1));
        for (const name of [...out.keys()]) if (re.test(name)) out.delete(name);
        continue;
      }
      if (part.includes('*')) {
        const re = wildcardRegex(part);
        for (const name of this.indices.keys()) if (re.test(name) && (!name.startsWith('.') || part.startsWith('.'))) addIndex(name);
        for (const alias of this.aliases.keys()) if (re.test(alias) && !alias.startsWith('.')) addAlias(alias);
        continue;
      }
      if (this.indices.has(part)) addIndex(part);
      else if (this.aliases.has(part)) addAlias(part);
      else if (!opts.ignoreUnavailable) throw indexNotFound(part);
    }
    if (!out.size && opts.allowNoIndices === false) throw indexNotFound(expression ?? '_all');
    return [...out.values()].sort((a, b) => (a.index.name < b.index.name ? -1 : 1));
  }
}
