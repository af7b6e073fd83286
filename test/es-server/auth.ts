import type { IncomingHttpHeaders } from 'node:http';
import { timingSafeEqual } from 'node:crypto';
import type { RawReply } from './faults.js';
import type { FlavorInfo } from './flavors.js';
import type { TestEngineOptions } from './types.js';

const same = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

function challenge(flavor: FlavorInfo): string[] {
  if (flavor.isOpenSearch) return ['Basic realm="OpenSearch Security"'];
  const values = ['Basic realm="security" charset="UTF-8"'];
  if (flavor.major >= 8) values.push('Bearer realm="security"');
  values.push('ApiKey');
  return values;
}

/** Rejects requests without the configured credentials, with ES's security_exception (or OpenSearch's plain 401). */
export function checkAuth(headers: IncomingHttpHeaders, auth: TestEngineOptions['auth'], flavor: FlavorInfo, uri: string): RawReply | undefined {
  if (!auth) return undefined;
  const header = headers.authorization ?? '';
  const [scheme = '', credentials = ''] = header.split(/\s+/, 2);
  let reason: string | undefined;
  const extra: Record<string, unknown> = {};
  if ('apiKey' in auth) {
    if (scheme.toLowerCase() === 'apikey' && same(credentials, auth.apiKey)) return undefined;
    if (!header) reason = `missing authentication credentials for REST request [${uri}]`;
    else {
      reason = 'unable to authenticate with provided credentials and anonymous access is not allowed for this request';
      const id = scheme.toLowerCase() === 'apikey' ? Buffer.from(credentials, 'base64').toString().split(':')[0] : undefined;
      extra.additional_unsuccessful_credentials = id ? `API key: unable to find apikey with id ${id}` : `unsupported authentication scheme [${scheme}]`;
    }
  } else {
    if (scheme.toLowerCase() === 'basic') {
      const decoded = Buffer.from(credentials, 'base64').toString();
      const sep = decoded.indexOf(':');
      const user = decoded.slice(0, sep);
      if (sep > 0 && same(user, auth.username) && same(decoded.slice(sep + 1), auth.password)) return undefined;
      reason = `unable to authenticate user [${user}] for REST request [${uri}]`;
    } else reason = `missing authentication credentials for REST request [${uri}]`;
  }
  const www = challenge(flavor);
  if (flavor.isOpenSearch) return { status: 401, body: 'Unauthorized', contentType: 'text/plain; charset=UTF-8', fromEngine: true, headers: { 'www-authenticate': www } };
  const error = { type: 'security_exception', reason, ...extra, header: { 'WWW-Authenticate': www } };
  return {
    status: 401,
    body: JSON.stringify({ error: { root_cause: [error], ...error }, status: 401 }),
    contentType: flavor.jsonContentType,
    fromEngine: true,
    unauthenticated: true,
    headers: { 'www-authenticate': www },
  };
}
