import { randomBytes } from 'node:crypto';
import type { EngineFlavor } from './types.js';

export interface FlavorInfo {
  flavor: EngineFlavor;
  isOpenSearch: boolean;
  major: number;
  version: string;
  /** index.version.created as ES prints it. */
  indexVersionCreated: string;
  /** compatible-with values accepted in vendored media types (none for OpenSearch's own vendor type). */
  compatVersions: number[];
  vendor: 'elasticsearch' | 'opensearch';
  /** Type name of mapping failures on write: ES 8.8+ renamed them. */
  docParsingType: 'document_parsing_exception' | 'mapper_parsing_exception';
  /** ES 8+ prefixes document parsing reasons with the parser location. */
  locationPrefix: boolean;
  /** es7 still emits `_type: "_doc"` on documents and hits. */
  docType: boolean;
  rejectedType: string;
  jsonContentType: string;
  root(clusterUuid: string): Record<string, unknown>;
}

const esRoot = (number: string, hash: string, date: string, lucene: string, wire: string, idx: string) =>
  (clusterUuid: string): Record<string, unknown> => ({
    name: 'es-test-node',
    cluster_name: 'docker-cluster',
    cluster_uuid: clusterUuid,
    version: {
      number,
      build_flavor: 'default',
      build_type: 'docker',
      build_hash: hash,
      build_date: date,
      build_snapshot: false,
      lucene_version: lucene,
      minimum_wire_compatibility_version: wire,
      minimum_index_compatibility_version: idx,
    },
    tagline: 'You Know, for Search',
  });

const ES_JSON = 'application/json; charset=UTF-8';

const flavors: Record<EngineFlavor, FlavorInfo> = {
  es7: {
    flavor: 'es7',
    isOpenSearch: false,
    major: 7,
    version: '7.17.15',
    indexVersionCreated: '7171599',
    compatVersions: [6, 7],
    vendor: 'elasticsearch',
    docParsingType: 'mapper_parsing_exception',
    locationPrefix: false,
    docType: true,
    rejectedType: 'es_rejected_execution_exception',
    jsonContentType: ES_JSON,
    root: esRoot('7.17.15', '0b8ecfb4378335f4689c4223d1f1115f16bef3ba', '2023-11-10T22:03:46.987399016Z', '8.11.1', '6.8.0', '6.0.0-beta1'),
  },
  es8: {
    flavor: 'es8',
    isOpenSearch: false,
    major: 8,
    version: '8.15.0',
    indexVersionCreated: '8512000',
    compatVersions: [7, 8],
    vendor: 'elasticsearch',
    docParsingType: 'document_parsing_exception',
    locationPrefix: true,
    docType: false,
    rejectedType: 'es_rejected_execution_exception',
    jsonContentType: ES_JSON,
    root: esRoot('8.15.0', '1a77947f34deddb41af25e6f0ddb8e830159c179', '2024-08-05T10:05:34.233336849Z', '9.11.1', '7.17.0', '7.0.0'),
  },
  es9: {
    flavor: 'es9',
    isOpenSearch: false,
    major: 9,
    version: '9.1.0',
    indexVersionCreated: '9033000',
    compatVersions: [8, 9],
    vendor: 'elasticsearch',
    docParsingType: 'document_parsing_exception',
    locationPrefix: true,
    docType: false,
    rejectedType: 'es_rejected_execution_exception',
    jsonContentType: ES_JSON,
    root: esRoot('9.1.0', '5e94a1c6e8d6c5c2b8a2a5d1e3b0f2b7c4d9e8a1', '2025-07-24T12:05:14.116940935Z', '10.2.2', '8.19.0', '8.0.0'),
  },
  opensearch2: {
    flavor: 'opensearch2',
    isOpenSearch: true,
    major: 2,
    version: '2.11.1',
    indexVersionCreated: '136327827',
    compatVersions: [7],
    vendor: 'opensearch',
    docParsingType: 'mapper_parsing_exception',
    locationPrefix: false,
    docType: false,
    rejectedType: 'rejected_execution_exception',
    jsonContentType: 'application/json; charset=UTF-8',
    root: (clusterUuid) => ({
      name: 'opensearch-test-node',
      cluster_name: 'opensearch-cluster',
      cluster_uuid: clusterUuid,
      version: {
        distribution: 'opensearch',
        number: '2.11.1',
        build_type: 'tar',
        build_hash: '6b1986e964d440be9137eba1413015c31c5a7752',
        build_date: '2023-11-29T21:43:10.135035992Z',
        build_snapshot: false,
        lucene_version: '9.7.0',
        minimum_wire_compatibility_version: '7.10.0',
        minimum_index_compatibility_version: '7.0.0',
      },
      tagline: 'The OpenSearch Project: https://opensearch.org/',
    }),
  },
};

export function flavorInfo(flavor: EngineFlavor): FlavorInfo {
  const info = flavors[flavor];
  if (!info) throw new Error(`unknown flavor ${String(flavor)}`);
  return info;
}

export const isFlavor = (value: string): value is EngineFlavor => value in flavors;

/** ES-style random identifiers (index uuid, cluster uuid, auto ids). */
export function randomId(bytes = 15): string {
  return randomBytes(bytes).toString('base64url');
}
