import type { EngineAuth, TlsOptions } from './config-types.js';
import type { EnvReader } from './env-reader.js';
import { isLocalHost } from '../util/loopback.js';

/** Basic credentials found in the userinfo of ELASTICSEARCH_URL. */
export interface UrlCredentials {
  username: string;
  password: string;
}

interface Candidate {
  source: string;
  auth: EngineAuth;
}

/**
 * Engine authentication. When several methods are set, the first of API key, bearer token, basic credentials
 * wins (basic: URL userinfo, ELASTICSEARCH_USER/PASSWORD, ELASTICSEARCH_HTTP_AUTH, ELASTICSEARCH_BASIC_AUTH,
 * in that order) and every other one is reported as ignored.
 */
export function parseEngineAuth(r: EnvReader, fromUrl: UrlCredentials | undefined, url: string): EngineAuth {
  const candidates = [
    apiKey(r),
    bearer(r),
    ...urlAndUserPassword(r, fromUrl),
    httpAuth(r),
    basicAuth(r),
  ]
    .filter((c): c is Candidate => c !== undefined)
    // Userinfo still lacking its user or password yields to any complete credential.
    .sort((a, b) => Number(isIncomplete(a)) - Number(isIncomplete(b)));
  const [winner, ...rest] = candidates;
  for (const loser of rest) {
    r.warn(loser.source, `ignored: ${winner?.source} already gives the engine credentials; set only one method`);
  }
  // An invalid URL was reported by parseEngineUrl already.
  if (winner !== undefined && url.startsWith('http:') && URL.canParse(url) && !isLocalHost(new URL(url).hostname)) {
    r.warn(winner.source, 'sent in clear text: the engine URL uses http, so anyone on the network path can read these credentials; use an https URL');
  }
  return winner?.auth ?? { kind: 'none' };
}

function apiKey(r: EnvReader): Candidate | undefined {
  const id = r.raw('ELASTICSEARCH_API_KEY_ID');
  const key = r.raw('ELASTICSEARCH_API_KEY');
  if (key === undefined) {
    if (id !== undefined) r.warn('ELASTICSEARCH_API_KEY_ID', 'ignored: ELASTICSEARCH_API_KEY is not set');
    return undefined;
  }
  // Without an id the key is the already-encoded base64 of "id:key", as Kibana shows it.
  return { source: 'ELASTICSEARCH_API_KEY', auth: id === undefined ? { kind: 'apiKey', key } : { kind: 'apiKey', id, key } };
}

function bearer(r: EnvReader): Candidate | undefined {
  const token = r.raw('ELASTICSEARCH_BEARER_AUTH');
  return token === undefined ? undefined : { source: 'ELASTICSEARCH_BEARER_AUTH', auth: { kind: 'bearer', token } };
}

/**
 * Basic credentials from the URL's userinfo, a part it lacks (a user without password, or the reverse) taken
 * from ELASTICSEARCH_USER / ELASTICSEARCH_PASSWORD; without userinfo, those two variables alone.
 */
function urlAndUserPassword(r: EnvReader, fromUrl: UrlCredentials | undefined): Candidate[] {
  if (fromUrl === undefined) return [userPassword(r)].filter((c): c is Candidate => c !== undefined);
  const credentials = { ...fromUrl };
  const lacking = (['username', 'password'] as const).filter((part) => credentials[part] === '');
  for (const part of lacking) {
    const name = part === 'username' ? 'ELASTICSEARCH_USER' : 'ELASTICSEARCH_PASSWORD';
    const value = r.raw(name);
    if (value !== undefined) credentials[part] = value;
  }
  const urlCandidate = { source: 'ELASTICSEARCH_URL', auth: { kind: 'basic' as const, ...credentials } };
  if (isIncomplete(urlCandidate)) {
    const missing = credentials.username === '' ? 'a user (ELASTICSEARCH_USER)' : 'a password (ELASTICSEARCH_PASSWORD)';
    r.warn('ELASTICSEARCH_URL', `its credentials lack ${missing}: it is sent empty unless another credential setting is used`);
  }
  // Variables that filled a gap are used; both set alongside complete userinfo are a competing credential.
  const rest = lacking.length === 0 ? userPassword(r) : undefined;
  if (lacking.length === 1) {
    const other = lacking[0] === 'username' ? 'ELASTICSEARCH_PASSWORD' : 'ELASTICSEARCH_USER';
    if (r.has(other)) r.warn(other, 'ignored: ELASTICSEARCH_URL gives it');
  }
  return rest === undefined ? [urlCandidate] : [urlCandidate, rest];
}

function isIncomplete(candidate: Candidate): boolean {
  return candidate.source === 'ELASTICSEARCH_URL' && candidate.auth.kind === 'basic' && (candidate.auth.username === '' || candidate.auth.password === '');
}

/** PGSync puts user and password into the URL only when both are set. */
function userPassword(r: EnvReader): Candidate | undefined {
  const username = r.raw('ELASTICSEARCH_USER');
  const password = r.raw('ELASTICSEARCH_PASSWORD');
  if (username !== undefined && password !== undefined) {
    return { source: 'ELASTICSEARCH_USER', auth: { kind: 'basic', username, password } };
  }
  if (username !== undefined) r.warn('ELASTICSEARCH_USER', 'ignored: ELASTICSEARCH_PASSWORD is not set');
  if (password !== undefined) r.warn('ELASTICSEARCH_PASSWORD', 'ignored: ELASTICSEARCH_USER is not set');
  return undefined;
}

/** `user,password` (PGSync reads a comma-separated list); the password may itself contain commas. */
function httpAuth(r: EnvReader): Candidate | undefined {
  const value = r.raw('ELASTICSEARCH_HTTP_AUTH');
  if (value === undefined) return undefined;
  const comma = value.indexOf(',');
  if (comma <= 0) {
    r.error('ELASTICSEARCH_HTTP_AUTH', 'must be "user,password"');
    return undefined;
  }
  const auth = { kind: 'basic' as const, username: value.slice(0, comma), password: value.slice(comma + 1) };
  return { source: 'ELASTICSEARCH_HTTP_AUTH', auth };
}

/** `user:password`, or its base64 encoding (how the 8.x Python client reads a string). */
function basicAuth(r: EnvReader): Candidate | undefined {
  const value = r.raw('ELASTICSEARCH_BASIC_AUTH');
  if (value === undefined) return undefined;
  const plain = value.includes(':') ? value : decodeBase64(value);
  const colon = plain?.indexOf(':') ?? -1;
  if (plain === undefined || colon <= 0) {
    r.error('ELASTICSEARCH_BASIC_AUTH', 'must be "user:password" or its base64 encoding');
    return undefined;
  }
  const auth = { kind: 'basic' as const, username: plain.slice(0, colon), password: plain.slice(colon + 1) };
  return { source: 'ELASTICSEARCH_BASIC_AUTH', auth };
}

function decodeBase64(value: string): string | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value) || value.length % 4 !== 0) return undefined;
  const text = Buffer.from(value, 'base64').toString('utf8');
  return text.includes('\uFFFD') ? undefined : text;
}

/** CA bundle, certificate verification and the client certificate for mutual TLS. */
export function parseEngineTls(r: EnvReader, url: string): TlsOptions {
  const tls: TlsOptions = { rejectUnauthorized: r.bool('ELASTICSEARCH_VERIFY_CERTS') ?? true };
  const ca = r.pemFile('ELASTICSEARCH_CA_CERTS', 'certificate');
  if (ca !== undefined) tls.ca = ca;
  const client = r.pemPair('ELASTICSEARCH_CLIENT_CERT', 'ELASTICSEARCH_CLIENT_KEY', 'mutual TLS needs both the client certificate and its key');
  if (client !== undefined) {
    tls.cert = client.cert;
    tls.key = client.key;
  }
  const pin = parseFingerprint(r);
  if (pin !== undefined) tls.pinnedFingerprint = pin;
  else if (!tls.rejectUnauthorized && url.startsWith('https:')) {
    r.warn('ELASTICSEARCH_VERIFY_CERTS', "false: the engine's certificate is not checked, so a machine on the network path can pose as the engine and read the credentials and documents; give its CA (ELASTICSEARCH_CA_CERTS) or pin its certificate (ELASTICSEARCH_SSL_ASSERT_FINGERPRINT)");
  }
  if (url.startsWith('http:')) {
    for (const name of ['ELASTICSEARCH_CA_CERTS', 'ELASTICSEARCH_CLIENT_CERT', 'ELASTICSEARCH_CLIENT_KEY', FINGERPRINT]) {
      if (r.has(name)) r.warn(name, `unused: the engine URL uses http, not https`);
    }
  }
  return tls;
}

const FINGERPRINT = 'ELASTICSEARCH_SSL_ASSERT_FINGERPRINT';

/**
 * A SHA-256 (or SHA-1) certificate fingerprint in hex, with or without ':' separators, as Elasticsearch 8 prints
 * its CA's at first start and `openssl x509 -fingerprint -sha256` shows any certificate's.
 */
function parseFingerprint(r: EnvReader): TlsOptions['pinnedFingerprint'] {
  const raw = r.raw(FINGERPRINT);
  if (raw === undefined) return undefined;
  const hex = raw.replace(/[:\s]/g, '').toUpperCase();
  const algorithm = hex.length === 64 ? 'sha256' : hex.length === 40 ? 'sha1' : undefined;
  if (!/^[0-9A-F]+$/.test(hex) || algorithm === undefined) {
    const md5 = /^[0-9A-F]{32}$/.test(hex) ? ' (MD5 fingerprints are not accepted)' : '';
    r.error(FINGERPRINT, `must be a SHA-256 fingerprint (64 hex digits) or a SHA-1 one (40), ':' separators allowed${md5}`);
    return undefined;
  }
  if (r.bool('ELASTICSEARCH_VERIFY_CERTS') === true || r.has('ELASTICSEARCH_CA_CERTS')) {
    r.warn(FINGERPRINT, 'replaces CA verification: the pinned certificate is trusted instead of ELASTICSEARCH_CA_CERTS and ELASTICSEARCH_VERIFY_CERTS');
  }
  return { algorithm, value: hex.match(/../g)!.join(':') };
}
