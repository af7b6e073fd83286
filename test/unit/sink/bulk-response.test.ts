import { describe, expect, it } from 'vitest';
import type { BulkAction } from '../../../src/sink/document-sink.js';
import { bulkItems, classifyItem } from '../../../src/sink/elasticsearch/bulk-response.js';

const indexAction: BulkAction = { op: 'index', index: 'books', id: '1', source: '{}' };
const versionedIndex: BulkAction = { ...indexAction, version: 3n };
const deleteAction: BulkAction = { op: 'delete', index: 'books', id: '1' };

function err(op: string, status: number, error: Record<string, unknown>): unknown {
  return { [op]: { _index: 'books', _id: '1', status, error } };
}

// Item bodies as Elasticsearch 7/8/9 and OpenSearch write them.
const cases: Array<[string, unknown, BulkAction, string, string?]> = [
  ['created', { index: { _index: 'books', _id: '1', _version: 1, result: 'created', status: 201 } }, indexAction, 'success'],
  ['updated', { index: { _index: 'books', _id: '1', _version: 2, result: 'updated', status: 200 } }, indexAction, 'success'],
  ['deleted', { delete: { _index: 'books', _id: '1', result: 'deleted', status: 200 } }, deleteAction, 'success'],
  ['delete not found', { delete: { _index: 'books', _id: '1', _version: 1, result: 'not_found', status: 404 } }, deleteAction, 'success'],
  [
    'version conflict with external version (newer already indexed)',
    err('index', 409, { type: 'version_conflict_engine_exception', reason: '[1]: version conflict, current version [5] is higher or equal to the one provided [3]', index: 'books' }),
    versionedIndex,
    'success',
  ],
  [
    'version conflict without version',
    err('index', 409, { type: 'version_conflict_engine_exception', reason: '[1]: version conflict, document already exists (current version [1])' }),
    indexAction,
    'document',
    'version_conflict_engine_exception',
  ],
  [
    'es_rejected_execution_exception',
    err('index', 429, { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1, max_coordinating_and_primary_bytes=1]' }),
    indexAction,
    'retry',
  ],
  ['opensearch rejected_execution_exception', err('index', 429, { type: 'rejected_execution_exception', reason: 'rejected execution' }), indexAction, 'retry'],
  [
    'circuit_breaking_exception',
    err('index', 429, { type: 'circuit_breaking_exception', reason: '[parent] Data too large, data for [<http_request>] would be [1024/1kb]', bytes_wanted: 1024, bytes_limit: 512, durability: 'TRANSIENT' }),
    indexAction,
    'retry',
  ],
  [
    'unavailable_shards_exception',
    err('index', 503, { type: 'unavailable_shards_exception', reason: '[books][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[books][0]] containing [1] requests]' }),
    indexAction,
    'retry',
  ],
  ['500 item', err('index', 500, { type: 'null_pointer_exception', reason: null }), indexAction, 'retry'],
  [
    'flood-stage block (429)',
    err('index', 429, { type: 'cluster_block_exception', reason: 'index [books] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];' }),
    indexAction,
    'retry',
  ],
  [
    'read-only-allow-delete block (403, older versions)',
    err('index', 403, { type: 'cluster_block_exception', reason: 'blocked by: [FORBIDDEN/12/index read-only / allow delete (api)];' }),
    indexAction,
    'retry',
  ],
  [
    'write block set by an operator',
    err('index', 403, { type: 'cluster_block_exception', reason: 'index [books] blocked by: [FORBIDDEN/8/index write (api)];' }),
    indexAction,
    'fatal',
  ],
  [
    'mapper_parsing_exception (ES 7)',
    err('index', 400, { type: 'mapper_parsing_exception', reason: "failed to parse field [age] of type [long] in document with id '1'. Preview of field's value: 'abc'", caused_by: { type: 'illegal_argument_exception', reason: 'For input string: "abc"' } }),
    indexAction,
    'document',
    'mapper_parsing_exception',
  ],
  [
    'document_parsing_exception (ES 8.8+)',
    err('index', 400, { type: 'document_parsing_exception', reason: "[1:9] failed to parse field [age] of type [long] in document with id '1'" }),
    indexAction,
    'document',
    'document_parsing_exception',
  ],
  [
    'strict_dynamic_mapping_exception',
    err('index', 400, { type: 'strict_dynamic_mapping_exception', reason: '[1:9] mapping set to strict, dynamic introduction of [foo] within [_doc] is not allowed' }),
    indexAction,
    'document',
    'strict_dynamic_mapping_exception',
  ],
  [
    'illegal_argument_exception (field limit)',
    err('index', 400, { type: 'illegal_argument_exception', reason: 'Limit of total fields [1000] has been exceeded while adding new fields [1]' }),
    indexAction,
    'document',
    'illegal_argument_exception',
  ],
  [
    'index_not_found_exception',
    err('index', 404, { type: 'index_not_found_exception', reason: 'no such index [books]', 'resource.type': 'index_expression', 'resource.id': 'books', index_uuid: '_na_', index: 'books' }),
    indexAction,
    'fatal',
  ],
  ['index_not_found on delete', err('delete', 404, { type: 'index_not_found_exception', reason: 'no such index [books]' }), deleteAction, 'fatal'],
  [
    'security_exception',
    err('index', 403, { type: 'security_exception', reason: 'action [indices:data/write/bulk[s]] is unauthorized for user [reader] with roles [viewer]' }),
    indexAction,
    'fatal',
  ],
  ['401', err('index', 401, { type: 'security_exception', reason: 'missing authentication credentials' }), indexAction, 'fatal'],
  ['malformed item', { index: { _id: '1' } }, indexAction, 'fatal'],
  // Every document alike, not this one's fault: waited for, not dead-lettered.
  ['index closed', err('index', 400, { type: 'index_closed_exception', reason: 'closed', 'index': 'books' }), indexAction, 'retry', 'index_closed_exception'],
  ['pipeline missing', err('index', 400, { type: 'illegal_argument_exception', reason: 'pipeline with id [enrich] does not exist' }), indexAction, 'retry'],
];

describe('classifyItem', () => {
  it.each(cases)('%s', (_name, item, action, kind, errorType) => {
    const outcome = classifyItem(item, action);
    expect(outcome.kind).toBe(kind);
    if (errorType !== undefined && outcome.kind !== 'success') expect(outcome.errorType).toBe(errorType);
  });

  it('keeps the engine reason with its cause', () => {
    const outcome = classifyItem(cases.find((c) => c[0] === 'mapper_parsing_exception (ES 7)')![1], indexAction);
    expect(outcome).toMatchObject({
      kind: 'document',
      status: 400,
      reason: expect.stringContaining("failed to parse field [age] of type [long]") as unknown,
    });
    expect(outcome.kind === 'document' && outcome.reason).toContain('caused by illegal_argument_exception: For input string: "abc"');
  });

  it('marks a stale external version as success but stale', () => {
    const item = err('index', 409, { type: 'version_conflict_engine_exception', reason: 'x' });
    expect(classifyItem(item, versionedIndex)).toEqual({ kind: 'success', status: 409, stale: true });
  });

  it('treats a delete on a missing index as success when the index is not expected', () => {
    const item = err('delete', 404, { type: 'index_not_found_exception', reason: 'no such index [books]' });
    expect(classifyItem(item, deleteAction, { expectIndex: false }).kind).toBe('success');
    expect(classifyItem(item, indexAction, { expectIndex: false }).kind).toBe('fatal');
  });
});

describe('bulkItems', () => {
  it('returns the items array or undefined', () => {
    expect(bulkItems({ took: 1, errors: false, items: [1] })).toEqual([1]);
    expect(bulkItems({ error: 'x' })).toBeUndefined();
    expect(bulkItems('nope')).toBeUndefined();
  });
});
