import { setTimeout as sleep } from 'node:timers/promises';
import { boolParam, isObject, ok, type Reply, type Req } from './context.js';
import { fail } from './errors.js';
import { parseTimeMs } from './settings.js';
import type { IndexState } from './store.js';

export function root(req: Req): Reply {
  if (req.method === 'HEAD') return { status: 200 };
  return ok(req.engine.flavor.root(req.engine.clusterUuid));
}

const RANK = { green: 0, yellow: 1, red: 2 } as const;

function healthBody(req: Req, indices: IndexState[]): Record<string, unknown> {
  const status = indices.some((i) => i.health === 'yellow') ? 'yellow' : 'green';
  const primaries = indices.reduce((n, i) => n + Number(i.settings.get('index.number_of_shards') ?? 1), 0);
  const unassigned = indices.reduce((n, i) => n + Number(i.settings.get('index.number_of_shards') ?? 1) * i.replicas, 0);
  const body: Record<string, unknown> = {
    cluster_name: req.engine.flavor.isOpenSearch ? 'opensearch-cluster' : 'docker-cluster',
    status,
    timed_out: false,
    number_of_nodes: 1,
    number_of_data_nodes: 1,
  };
  if (req.engine.flavor.isOpenSearch) {
    body.discovered_master = true;
    body.discovered_cluster_manager = true;
  }
  Object.assign(body, {
    active_primary_shards: primaries,
    active_shards: primaries,
    relocating_shards: 0,
    initializing_shards: 0,
    unassigned_shards: unassigned,
    delayed_unassigned_shards: 0,
    number_of_pending_tasks: 0,
    number_of_in_flight_fetch: 0,
    task_max_waiting_in_queue_millis: 0,
    active_shards_percent_as_number: primaries + unassigned ? (primaries / (primaries + unassigned)) * 100 : 100,
  });
  return body;
}

/** GET /_cluster/health: waits for `wait_for_status` up to `timeout` (30s) and answers 408 when it is not reached. */
export async function clusterHealth(req: Req): Promise<Reply> {
  const store = req.engine.store;
  const pick = (): IndexState[] => (req.params.index ? store.resolve(req.params.index).map((r) => r.index) : [...store.indices.values()]);
  const wanted = req.query.get('wait_for_status') as keyof typeof RANK | null;
  const deadline = Date.now() + (parseTimeMs(req.query.get('timeout') ?? '30s') ?? 30_000);
  for (;;) {
    const body = healthBody(req, pick());
    if (!wanted || RANK[body.status as keyof typeof RANK] <= (RANK[wanted] ?? 2)) return ok(body);
    if (Date.now() >= deadline) return { status: 408, body: { ...body, timed_out: true } };
    await sleep(Math.min(100, Math.max(1, deadline - Date.now())));
  }
}

function byteSize(index: IndexState): string {
  let bytes = 0;
  for (const doc of index.allDocs()) bytes += doc.end - doc.start + 64;
  return `${bytes + 225}b`;
}

const CAT_COLUMNS = ['health', 'status', 'index', 'uuid', 'pri', 'rep', 'docs.count', 'docs.deleted', 'store.size', 'pri.store.size'];

function table(req: Req, rows: Record<string, string>[], columns: string[]): Reply {
  const h = req.query.get('h');
  const cols = h ? h.split(',').map((c) => c.trim()) : columns;
  const s = req.query.get('s');
  if (s) {
    const [col, dir] = s.split(':');
    rows.sort((a, b) => {
      const x = a[col as string] ?? '';
      const y = b[col as string] ?? '';
      const c = /^\d+$/.test(x) && /^\d+$/.test(y) ? Number(x) - Number(y) : x < y ? -1 : x > y ? 1 : 0;
      return dir === 'desc' ? -c : c;
    });
  }
  if (req.query.get('format') === 'json') return ok(rows.map((r) => Object.fromEntries(cols.map((c) => [c, r[c] ?? null]))));
  const lines = boolParam(req.query, 'v') ? [Object.fromEntries(cols.map((c) => [c, c])), ...rows] : rows;
  const widths = cols.map((c) => Math.max(0, ...lines.map((r) => (r[c] ?? '').length)));
  const text = lines.map((r) => cols.map((c, i) => (r[c] ?? '').padEnd(widths[i] as number)).join(' ').trimEnd() + '\n').join('');
  return { status: 200, raw: text, headers: { 'content-type': 'text/plain; charset=UTF-8' } };
}

export function catIndices(req: Req): Reply {
  const store = req.engine.store;
  const indices = req.params.index ? store.resolve(req.params.index).map((r) => r.index) : [...store.indices.values()];
  const withDataset = req.engine.flavor.major >= 8 && !req.engine.flavor.isOpenSearch;
  const rows = indices.map((i) => {
    const size = byteSize(i);
    const row: Record<string, string> = {
      health: i.health,
      status: 'open',
      index: i.name,
      uuid: i.uuid,
      pri: String(i.settings.get('index.number_of_shards') ?? '1'),
      rep: String(i.replicas),
      'docs.count': String(i.searchableCount),
      'docs.deleted': String(i.deletedDocs),
      'store.size': size,
      'pri.store.size': size,
    };
    if (withDataset) row['dataset.size'] = size;
    return row;
  });
  return table(req, rows, withDataset ? [...CAT_COLUMNS, 'dataset.size'] : CAT_COLUMNS);
}

export function catAliases(req: Req): Reply {
  const rows: Record<string, string>[] = [];
  for (const [alias, members] of req.engine.store.aliases) {
    for (const [index, meta] of members) {
      rows.push({
        alias,
        index,
        filter: meta.filter === undefined ? '-' : '*',
        'routing.index': meta.index_routing ?? '-',
        'routing.search': meta.search_routing ?? '-',
        is_write_index: meta.is_write_index === undefined ? '-' : String(meta.is_write_index),
      });
    }
  }
  return table(req, rows, ['alias', 'index', 'filter', 'routing.index', 'routing.search', 'is_write_index']);
}

export function putPipeline(req: Req): Reply {
  const body = req.json();
  if (!isObject(body)) throw fail(400, 'parse_exception', 'request body is required');
  if (!Array.isArray(body.processors)) throw fail(400, 'parse_exception', '[processors] required property is missing', { property_name: 'processors' });
  req.engine.store.pipelines.set(req.params.id as string, body);
  return ok({ acknowledged: true });
}

export function getPipeline(req: Req): Reply {
  const pipelines = req.engine.store.pipelines;
  const id = req.params.id;
  if (!id) return ok(Object.fromEntries(pipelines));
  const found = Object.fromEntries([...pipelines].filter(([k]) => id.split(',').includes(k)));
  return { status: Object.keys(found).length ? 200 : 404, body: found };
}

export function deletePipeline(req: Req): Reply {
  const id = req.params.id as string;
  if (!req.engine.store.pipelines.delete(id)) throw fail(404, 'resource_not_found_exception', `pipeline [${id}] is missing`);
  return ok({ acknowledged: true });
}
