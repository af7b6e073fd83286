import * as aliases from './api-aliases.js';
import * as cluster from './api-cluster.js';
import * as docs from './api-documents.js';
import * as indices from './api-indices.js';
import { handleBulk } from './bulk.js';
import { Router } from './router.js';
import { handleClearScroll, handleScroll } from './scroll.js';
import { handleCount, handleSearch } from './search.js';

const P = (s: string): string[] => s.split(' ').filter(Boolean);

const WILDCARDS = P('allow_no_indices expand_wildcards ignore_unavailable ignore_throttled');
const SOURCE = P('_source _source_excludes _source_includes');
const BULK = P('wait_for_active_shards refresh routing timeout type pipeline require_alias require_data_stream list_executed_pipelines include_source_on_error').concat(SOURCE);
const INDEX_DOC = P('wait_for_active_shards op_type refresh routing timeout version version_type if_seq_no if_primary_term pipeline require_alias require_data_stream include_source_on_error');
const UPDATE_DOC = P('wait_for_active_shards lang refresh retry_on_conflict routing timeout if_seq_no if_primary_term require_alias include_source_on_error').concat(SOURCE);
const DELETE_DOC = P('wait_for_active_shards refresh routing timeout if_seq_no if_primary_term version version_type');
const GET_DOC = P('stored_fields preference realtime refresh routing version version_type force_synthetic_source').concat(SOURCE);
const SEARCH = P(
  'allow_partial_search_results analyzer analyze_wildcard batched_reduce_size ccs_minimize_roundtrips default_operator df docvalue_fields explain from lenient max_concurrent_shard_requests min_compatible_shard_node preference pre_filter_shard_size request_cache routing scroll search_type stats stored_fields suggest_field suggest_mode suggest_size suggest_text terminate_after timeout track_scores track_total_hits typed_keys rest_total_hits_as_int version seq_no_primary_term q size sort include_named_queries_score force_synthetic_source',
).concat(SOURCE, WILDCARDS);
const COUNT = P('analyzer analyze_wildcard default_operator df lenient min_score preference routing terminate_after q').concat(WILDCARDS);
const MASTER = P('master_timeout timeout');
const INDEX_READ = P('flat_settings include_defaults local features include_type_name').concat(WILDCARDS, MASTER);
const CAT = P('format h help s v bytes time local health pri include_unloaded_segments').concat(WILDCARDS, MASTER);
const HEALTH = P('level local wait_for_active_shards wait_for_events wait_for_nodes wait_for_no_initializing_shards wait_for_no_relocating_shards wait_for_status').concat(WILDCARDS, MASTER);

/** Every endpoint Sluice (and its tests) call, with the query parameters ES accepts on each. */
export function buildRouter(): Router {
  const r = new Router();
  r.add('GET|HEAD', '/', cluster.root);
  r.add('POST|PUT', '/_bulk', handleBulk, BULK).add('POST|PUT', '/{index}/_bulk', handleBulk, BULK);

  r.add('PUT', '/{index}', indices.createIndex, P('wait_for_active_shards include_type_name').concat(MASTER));
  r.add('GET', '/{index}', indices.getIndex, INDEX_READ);
  r.add('HEAD', '/{index}', indices.headIndex, INDEX_READ);
  r.add('DELETE', '/{index}', indices.deleteIndex, WILDCARDS.concat(MASTER));
  r.add('GET', '/_mapping', indices.getMapping, INDEX_READ).add('GET', '/{index}/_mapping', indices.getMapping, INDEX_READ);
  r.add('PUT|POST', '/{index}/_mapping', indices.putMapping, P('write_index_only include_type_name').concat(WILDCARDS, MASTER));
  r.add('GET', '/_settings', indices.getSettings, INDEX_READ).add('GET', '/{index}/_settings', indices.getSettings, INDEX_READ);
  r.add('GET', '/{index}/_settings/{name}', indices.getSettings, INDEX_READ).add('GET', '/_settings/{name}', indices.getSettings, INDEX_READ);
  r.add('PUT', '/{index}/_settings', indices.putSettings, P('flat_settings preserve_existing reopen').concat(WILDCARDS, MASTER));
  r.add('PUT', '/_settings', indices.putSettings, P('flat_settings preserve_existing reopen').concat(WILDCARDS, MASTER));
  r.add('GET|POST', '/_refresh', indices.refresh, WILDCARDS).add('GET|POST', '/{index}/_refresh', indices.refresh, WILDCARDS);
  r.add('GET|POST', '/_flush', indices.flush, WILDCARDS.concat(P('force wait_if_ongoing')));
  r.add('GET|POST', '/{index}/_flush', indices.flush, WILDCARDS.concat(P('force wait_if_ongoing')));
  const MERGE = WILDCARDS.concat(P('flush max_num_segments only_expunge_deletes wait_for_completion'));
  r.add('POST', '/_forcemerge', indices.flush, MERGE).add('POST', '/{index}/_forcemerge', indices.flush, MERGE);

  r.add('POST', '/_aliases', aliases.updateAliases, MASTER);
  r.add('PUT|POST', '/{index}/_alias/{name}', aliases.putAlias, MASTER).add('PUT|POST', '/{index}/_aliases/{name}', aliases.putAlias, MASTER);
  r.add('DELETE', '/{index}/_alias/{name}', aliases.deleteAlias, MASTER).add('DELETE', '/{index}/_aliases/{name}', aliases.deleteAlias, MASTER);
  const ALIAS_READ = WILDCARDS.concat(P('local master_timeout'));
  r.add('GET', '/_alias', aliases.getAliases, ALIAS_READ).add('GET', '/_aliases', aliases.getAliases, ALIAS_READ);
  r.add('GET', '/_alias/{name}', aliases.getAliases, ALIAS_READ).add('HEAD', '/_alias/{name}', aliases.headAlias, ALIAS_READ);
  r.add('GET', '/{index}/_alias', aliases.getAliases, ALIAS_READ).add('GET', '/{index}/_aliases', aliases.getAliases, ALIAS_READ);
  r.add('GET', '/{index}/_alias/{name}', aliases.getAliases, ALIAS_READ).add('HEAD', '/{index}/_alias/{name}', aliases.headAlias, ALIAS_READ);

  r.add('PUT|POST', '/{index}/_doc/{id}', docs.indexDoc, INDEX_DOC).add('POST', '/{index}/_doc', docs.indexDoc, INDEX_DOC);
  r.add('PUT|POST', '/{index}/_create/{id}', docs.indexDoc, INDEX_DOC);
  r.add('POST', '/{index}/_update/{id}', docs.updateDoc, UPDATE_DOC);
  r.add('GET|HEAD', '/{index}/_doc/{id}', docs.getDoc, GET_DOC).add('DELETE', '/{index}/_doc/{id}', docs.deleteDoc, DELETE_DOC);
  r.add('GET|HEAD', '/{index}/_source/{id}', docs.getSource, GET_DOC);
  r.add('GET|POST', '/_mget', docs.mget, GET_DOC).add('GET|POST', '/{index}/_mget', docs.mget, GET_DOC);

  r.add('GET|POST', '/_search', handleSearch, SEARCH).add('GET|POST', '/{index}/_search', handleSearch, SEARCH);
  r.add('GET|POST', '/_count', handleCount, COUNT).add('GET|POST', '/{index}/_count', handleCount, COUNT);
  const SCROLL = P('scroll scroll_id rest_total_hits_as_int');
  r.add('GET|POST', '/_search/scroll', handleScroll, SCROLL).add('GET|POST', '/_search/scroll/{scroll_id}', handleScroll, SCROLL);
  r.add('DELETE', '/_search/scroll', handleClearScroll, SCROLL).add('DELETE', '/_search/scroll/{scroll_id}', handleClearScroll, SCROLL);

  r.add('GET', '/_cluster/health', cluster.clusterHealth, HEALTH).add('GET', '/_cluster/health/{index}', cluster.clusterHealth, HEALTH);
  r.add('GET', '/_cat/indices', cluster.catIndices, CAT).add('GET', '/_cat/indices/{index}', cluster.catIndices, CAT);
  r.add('GET', '/_cat/aliases', cluster.catAliases, CAT).add('GET', '/_cat/aliases/{name}', cluster.catAliases, CAT);
  const PIPELINE = P('if_version summary').concat(MASTER);
  r.add('PUT', '/_ingest/pipeline/{id}', cluster.putPipeline, PIPELINE).add('DELETE', '/_ingest/pipeline/{id}', cluster.deletePipeline, PIPELINE);
  r.add('GET', '/_ingest/pipeline', cluster.getPipeline, PIPELINE).add('GET', '/_ingest/pipeline/{id}', cluster.getPipeline, PIPELINE);
  return r;
}
