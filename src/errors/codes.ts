/**
 * Stable error codes, grouped by area. Tests and alerts match on these, never on message text.
 * Each entry: the cause and what the operator does about it.
 */
export const ERROR_CODES = {
  CFG_INVALID: 'Environment or CLI settings are invalid. Fix every variable listed in the report.',
  CFG_SCHEMA_FILE: 'schema.json cannot be read or is not valid JSON. Check the path (--config, SCHEMA) and the syntax.',
  SCH_INVALID: 'schema.json does not match the database or the PGSync format. Fix every location listed.',
  SRC_CONNECT: 'PostgreSQL cannot be reached or refused the login. Check PG_* settings, network and pg_hba.conf.',
  SRC_NOT_BOOTSTRAPPED: 'The publication is missing or does not cover every table of schema.json. Run `sluice bootstrap` (or the SQL of `sluice bootstrap --print-sql`) as the tables\' owner.',
  SRC_QUERY: 'A query against PostgreSQL failed. The message names the query purpose and table.',
  SRC_SLOT_MISSING: 'The replication slot does not exist (dropped by someone, or never created). Sluice must create it again and resync.',
  SRC_SLOT_LOST:
    'The replication slot was invalidated (WAL beyond max_slot_wal_keep_size removed, or a recovery conflict). Its changes are gone: drop it and resync.',
  SRC_HISTORY_CHANGED:
    "The server's history no longer contains the checkpoint's position (point-in-time restore, failover to a replica that missed changes, another cluster). The index is rebuilt into a new generation from a snapshot.",
  SRC_SYNC_STANDBY:
    "Sluice's replication connection was chosen as a synchronous standby (synchronous_standby_names names it, e.g. with \"*\"): commits would wait for Sluice while Sluice waits for them. Sluice disconnects and retries with backoff; leave it out of synchronous_standby_names.",
  SRC_PROTOCOL: 'The replication stream sent data Sluice cannot decode (unknown relation, binary value, unknown message). Report it; a restart resumes from the last acknowledged position.',
  SNK_CONNECT: 'The search engine cannot be reached or refused the credentials. Check ELASTICSEARCH_* settings.',
  SNK_UNAVAILABLE: 'The search engine kept failing (429/5xx/connection, or answers cut short) past the retry budget, or failed a request other than a bulk with 408/429/5xx. Nothing was acknowledged; `sluice run` waits and tries again.',
  SNK_REQUEST: 'The search engine rejected a request that is not about one document (e.g. index creation).',
  SNK_UNSUPPORTED: 'The server is not a supported Elasticsearch (7.10+, 8, 9) or OpenSearch (1-3). Point ELASTICSEARCH_* at one.',
  SNK_DEAD_LETTER: 'The dead-letter store cannot be written. Check SLUICE_DEAD_LETTER_PATH permissions and disk space.',
  SRV_LISTEN:
    'The HTTP server of /healthz, /readyz, /metrics and /status cannot listen on SLUICE_HTTP_HOST:SLUICE_HTTP_PORT (port in use, privileged port, or an address this host does not have). The message says which.',
  CKP_UNAVAILABLE:
    'The checkpoint store cannot be reached or used (Redis down or refusing the login, CHECKPOINT_PATH missing or read-only, a missing grant on PostgreSQL). The message says which; fix it and restart.',
  CKP_CORRUPT:
    'A stored checkpoint cannot be read. The message names the file or key: repair it, or delete it (`sluice reset <index>`) to sync that index again from scratch. `sluice run` keeps the other indexes going and reads it again until then.',
  CKP_NOT_OWNER:
    'Another process owns the index (its lease in the checkpoint store): `sluice run` lost the lease (it could not renew it in time, or another process took it) and stands by, or `sluice reset` or `sluice teardown` was refused while a `sluice run` owns the index. Stop the owner named in the message, or check the checkpoint store.',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;
