import type { SluiceConfig } from './config-types.js';

const MASK = '***';
/** Secrets shorter than this are replaced only where they stand as a whole token, to keep messages readable. */
const MIN_SUBSTRING_LENGTH = 4;

/**
 * Every secret value in a resolved configuration: passwords, tokens, keys, the client private key, and the
 * encoded forms that end up in `Authorization` headers. Pass the result to `redact` before logging text that
 * may echo a URL, a header or a driver message.
 */
export function collectSecrets(config: SluiceConfig): string[] {
  const secrets: string[] = [];
  const add = (value: string | undefined): void => {
    if (value !== undefined && value !== '') secrets.push(value);
  };
  add(config.postgres.password);
  const auth = config.engine.auth;
  switch (auth.kind) {
    case 'basic':
      add(auth.password);
      add(base64(`${auth.username}:${auth.password}`));
      break;
    case 'apiKey':
      add(auth.key);
      if (auth.id !== undefined) add(base64(`${auth.id}:${auth.key}`));
      break;
    case 'bearer':
      add(auth.token);
      break;
    case 'none':
      break;
  }
  add(config.postgres.sslKey);
  add(config.engine.tls.key);
  add(config.redis?.password);
  add(config.redis?.sentinel?.password);
  add(config.redis?.tls?.key);
  add(config.http?.token);
  add(config.http?.tls?.key);
  return [...new Set(secrets)];
}

/**
 * Replaces each secret, its URL-encoded form and its JSON-escaped form with `***`. Secrets of 4 characters or more are replaced
 * wherever they occur; shorter ones only as whole tokens (not inside a longer word), so that a password such
 * as "app" does not mangle every "application" in the text. Empty secrets are ignored.
 */
export function redact(text: string, secrets: readonly string[]): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    forms.add(secret);
    forms.add(encodeURIComponent(secret));
    // As it appears inside a JSON string (log lines), when quoting changes it.
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  // Longest first, so a secret that contains another one is masked whole.
  const ordered = [...forms].sort((a, b) => b.length - a.length);
  let result = text;
  for (const form of ordered) {
    if (form.length >= MIN_SUBSTRING_LENGTH) {
      result = result.split(form).join(MASK);
    } else {
      const pattern = new RegExp(`(?<![\\p{L}\\p{N}_])${escapeRegExp(form)}(?![\\p{L}\\p{N}_])`, 'gu');
      result = result.replace(pattern, MASK);
    }
  }
  return result;
}

/**
 * A host variable's value for an error message: quoted, unless it holds "@" (a URL with credentials put where a host
 * name goes), whose password no secret list knows about.
 */
export function shownHost(value: string): string {
  return value.includes('@') ? '(not shown: it contains "@", as a URL with credentials would)' : `"${value}"`;
}

/**
 * The URL with the password of its userinfo replaced by `***` (`postgres://user:***@host/db`); the rest is kept
 * as written, and text without a password is returned unchanged. The userinfo ends at the last `@`, so a
 * password with unencoded `/`, `?`, `#` or `@` is still masked (at worst a path containing `@` is masked too).
 */
export function redactUrl(url: string): string {
  const schemeEnd = url.indexOf('://');
  if (schemeEnd < 0) return url;
  const userinfoStart = schemeEnd + 3;
  const at = url.lastIndexOf('@');
  if (at < userinfoStart) return url;
  const colon = url.indexOf(':', userinfoStart);
  if (colon < 0 || colon > at) return url;
  return `${url.slice(0, colon + 1)}${MASK}${url.slice(at)}`;
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
