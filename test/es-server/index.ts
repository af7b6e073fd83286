/**
 * Elasticsearch/OpenSearch-compatible test server. Out of process (main.ts) it is driven over HTTP:
 * `POST /_test/faults` (a FaultRule as JSON, `path` a regex source), `DELETE /_test/faults`, `GET /_test/faults`,
 * `GET /_test/stats`, `GET /_test/requests?limit=N` and `POST /_test/reset`.
 */
export type { EngineFlavor, FaultController, FaultRule, RecordedRequest, TestEngine, TestEngineOptions } from './types.js';
export { startTestEngine } from './engine.js';
