/** A cause object as ES serialises it: `{type, reason, ...extra, caused_by?}`. */
export interface Cause {
  type: string;
  reason: string | null;
  caused_by?: Cause;
  [key: string]: unknown;
}

export type HeaderMap = Record<string, string | string[]>;

/** Thrown by handlers; the HTTP layer turns it into a response. */
export class EsError extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers?: HeaderMap,
  ) {
    super(typeof body === 'object' && body !== null ? JSON.stringify(body).slice(0, 300) : String(body));
  }

  /** The `{"error":{root_cause,...},"status"}` envelope, root cause = innermost cause like ES's guessRootCauses. */
  static of(status: number, error: Cause, headers?: HeaderMap, rootCause?: Cause[]): EsError {
    let inner = error;
    while (inner.caused_by && isEsCause(inner.caused_by)) inner = inner.caused_by;
    const root = rootCause ?? [withoutCause(inner)];
    return new EsError(status, { error: { root_cause: root, ...error }, status }, headers);
  }
}

/** Causes that come from Java libraries (Jackson, JDK) are not ES exceptions and never become root causes. */
const foreignCauses = new Set([
  'json_parse_exception',
  'number_format_exception',
  'illegal_state_exception',
  'date_time_parse_exception',
  'json_e_o_f_exception',
]);
function isEsCause(c: Cause): boolean {
  return !foreignCauses.has(c.type);
}

function withoutCause(c: Cause): Cause {
  if (!c.caused_by) return c;
  const { caused_by: _ignored, ...rest } = c;
  return rest as Cause;
}

export function cause(type: string, reason: string | null, extra?: Record<string, unknown>, causedBy?: Cause): Cause {
  const c: Cause = { type, reason, ...extra };
  if (causedBy) c.caused_by = causedBy;
  return c;
}

export function fail(status: number, type: string, reason: string, extra?: Record<string, unknown>, causedBy?: Cause): EsError {
  return EsError.of(status, cause(type, reason, extra, causedBy));
}

export const illegalArgument = (reason: string, causedBy?: Cause): EsError =>
  fail(400, 'illegal_argument_exception', reason, undefined, causedBy);

export function validationFailed(messages: string[]): EsError {
  const reason = 'Validation Failed: ' + messages.map((m, i) => `${i + 1}: ${m};`).join('');
  return fail(400, 'action_request_validation_exception', reason);
}

export function indexNotFoundCause(name: string, resourceType = 'index_or_alias'): Cause {
  return cause('index_not_found_exception', `no such index [${name}]`, {
    'resource.type': resourceType,
    'resource.id': name,
    index_uuid: '_na_',
    index: name,
  });
}

export const indexNotFound = (name: string, resourceType?: string): EsError =>
  EsError.of(404, indexNotFoundCause(name, resourceType));

export function invalidIndexNameCause(name: string, why: string): Cause {
  return cause('invalid_index_name_exception', `Invalid index name [${name}], ${why}`, { index_uuid: '_na_', index: name });
}

export const resourceAlreadyExists = (name: string, uuid: string): EsError =>
  fail(400, 'resource_already_exists_exception', `index [${name}/${uuid}] already exists`, { index_uuid: uuid, index: name });

/** `{"error":"...","status":N}`: the bare shape ES uses for routing and content-type problems. */
export function simpleError(status: number, message: string, headers?: HeaderMap): EsError {
  return new EsError(status, { error: message, status }, headers);
}

/** Position in text as ES reports it, `[line:col]`, both 1-based. */
export function lineCol(text: string, offset: number): string {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `[${line}:${end - lineStart + 1}]`;
}

/** JSON.parse failure → Jackson-like reason with ES's `[line:col]` prefix. */
export function jsonErrorReason(text: string, err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  const pos = /position (\d+)/.exec(msg);
  const offset = pos ? Number(pos[1]) : text.length;
  const ch = text.charAt(offset);
  const detail =
    offset >= text.length
      ? 'Unexpected end-of-input: expected close marker for Object'
      : `Unexpected character ('${ch}' (code ${ch.charCodeAt(0)})): was expecting double-quote to start field name`;
  return `${lineCol(text, offset)} ${detail}`;
}

/** Body that is not JSON, as ES reports it for most JSON endpoints. */
export function badJson(text: string, err: unknown): EsError {
  const reason = jsonErrorReason(text, err);
  return fail(400, 'x_content_parse_exception', reason, undefined, cause('json_parse_exception', reason.replace(/^\[\d+:\d+\] /, '')));
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badJson(text, err);
  }
}

/**
 * RoutingMissingException (400): a write, get or mget item without routing on an index whose mapping has
 * `_routing.required`. ES 7 still names the type (`[index]/[_doc]/[id]`); ES 8+ and OpenSearch 2 do not.
 */
export function routingMissingCause(major: number, isOpenSearch: boolean, index: string, id: string): Cause {
  const path = major === 7 && !isOpenSearch ? `[${index}]/[_doc]/[${id}]` : `[${index}]/[${id}]`;
  return cause('routing_missing_exception', `routing is required for ${path}`, { index_uuid: '_na_', index });
}
