import { request } from 'undici';

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: any;
}

/** One raw HTTP call; `body` objects are sent as JSON, strings and buffers as they are. */
export async function call(
  url: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const isRaw = typeof body === 'string' || Buffer.isBuffer(body);
  const sendHeaders = { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers };
  const res = await request(`${url}${path}`, {
    method: method as 'GET',
    headers: sendHeaders,
    body: body === undefined ? undefined : isRaw ? (body as string | Buffer) : JSON.stringify(body),
  });
  const text = await res.body.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, text, json };
}

/** NDJSON body for _bulk from action/source pairs. */
export const ndjson = (...lines: unknown[]): string => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';

export const bulk = (url: string, body: string, query = ''): Promise<RawResponse> =>
  call(url, 'POST', `/_bulk${query}`, body, { 'content-type': 'application/x-ndjson' });
