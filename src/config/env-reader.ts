import type { Problem } from '../errors/app-error.js';

/** Reads a text file (CA bundles, client certificates and keys). Injected so that parsing stays pure. */
export type ReadTextFile = (path: string) => string;

/**
 * Variables whose value is a secret or may contain one (URLs with userinfo). Their values are never
 * printed in a problem message; `parseEnvironment` additionally redacts every message with them.
 */
export const SECRET_VARIABLES = [
  'PG_PASSWORD',
  'PGPASSWORD',
  'PG_URL',
  'PG_PASSWORD_RO',
  'PG_URL_RO',
  'ELASTICSEARCH_PASSWORD',
  'ELASTICSEARCH_URL',
  'ELASTICSEARCH_HTTP_AUTH',
  'ELASTICSEARCH_BASIC_AUTH',
  'ELASTICSEARCH_BEARER_AUTH',
  'ELASTICSEARCH_API_KEY',
  'REDIS_AUTH',
  'REDIS_SENTINEL_PASSWORD',
  'REDIS_URL',
  'SLUICE_HTTP_TOKEN',
] as const;

const SECRET_SET: ReadonlySet<string> = new Set(SECRET_VARIABLES);

export function isSecretVariable(name: string): boolean {
  return SECRET_SET.has(name);
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);
const MAX_SHOWN_CHARS = 80;

export interface IntRange {
  min: number;
  max: number;
}

/**
 * Typed access to the environment that records every problem instead of stopping at the first one.
 * An empty value counts as unset (compose files often write `VAR=`). Non-secret values are trimmed.
 */
export class EnvReader {
  readonly problems: Problem[] = [];

  constructor(
    private readonly env: Record<string, string | undefined>,
    private readonly readFile: ReadTextFile,
  ) {}

  /** The value, or undefined when unset or empty. */
  raw(name: string): string | undefined {
    const value = this.env[name];
    if (value === undefined) return undefined;
    const cleaned = isSecretVariable(name) ? value : value.trim();
    return cleaned === '' ? undefined : cleaned;
  }

  has(name: string): boolean {
    return this.raw(name) !== undefined;
  }

  /** Names of every variable present (and non-empty) in the environment. */
  names(): string[] {
    return Object.keys(this.env).filter((name) => this.has(name));
  }

  error(location: string, message: string): void {
    this.problems.push({ location, message, severity: 'error' });
  }

  warn(location: string, message: string): void {
    this.problems.push({ location, message, severity: 'warning' });
  }

  hasErrors(): boolean {
    return this.problems.some((p) => p.severity === 'error');
  }

  /** ` (got "value")` for non-secret variables, nothing for secret ones. */
  shown(name: string, value: string): string {
    if (isSecretVariable(name)) return '';
    const cut = value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}…` : value;
    return ` (got "${cut}")`;
  }

  bool(name: string): boolean | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const lower = value.toLowerCase();
    if (TRUE_WORDS.has(lower)) return true;
    if (FALSE_WORDS.has(lower)) return false;
    this.error(name, `must be a boolean: true/false, 1/0, yes/no or on/off${this.shown(name, value)}`);
    return undefined;
  }

  int(name: string, range: IntRange): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    return this.checkInt(name, value, range);
  }

  checkInt(location: string, value: string, range: IntRange): number | undefined {
    if (!/^\+?\d+$/.test(value)) {
      this.error(location, `must be a whole number${this.shown(location, value)}`);
      return undefined;
    }
    const parsed = Number(value);
    if (parsed < range.min || parsed > range.max) {
      this.error(location, `must be between ${range.min} and ${range.max}${this.shown(location, value)}`);
      return undefined;
    }
    return parsed;
  }

  /** A duration given in seconds (fractions allowed), returned in whole milliseconds. */
  secondsAsMs(name: string, range: IntRange): number | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    if (!/^\+?(\d+(\.\d*)?|\.\d+)$/.test(value)) {
      this.error(name, `must be a number of seconds, e.g. 1 or 0.5${this.shown(name, value)}`);
      return undefined;
    }
    const ms = Math.round(Number(value) * 1000);
    if (ms < range.min || ms > range.max) {
      this.error(name, `must be between ${range.min / 1000} and ${range.max / 1000} seconds${this.shown(name, value)}`);
      return undefined;
    }
    return ms;
  }

  /** One of a closed set of words (compared case-insensitively, returned in lower case). */
  oneOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const value = this.raw(name);
    if (value === undefined) return undefined;
    const lower = value.toLowerCase();
    const match = allowed.find((word) => word === lower);
    if (match === undefined) this.error(name, `must be one of ${allowed.join(', ')}${this.shown(name, value)}`);
    return match;
  }

  /** Reads the PEM file named by the variable; `kind` decides what the contents must look like. */
  pemFile(name: string, kind: 'certificate' | 'key'): string | undefined {
    const path = this.raw(name);
    return path === undefined ? undefined : this.readPem(name, path, kind);
  }

  /**
   * A certificate and its key, each a PEM file named by its variable: both or neither (`need` says why, when only one
   * is set). Undefined unless both are set and readable.
   */
  pemPair(certName: string, keyName: string, need: string): { cert: string; key: string } | undefined {
    const hasCert = this.has(certName);
    if (hasCert !== this.has(keyName)) {
      const [present, missing] = hasCert ? [certName, keyName] : [keyName, certName];
      this.error(missing, `required because ${present} is set: ${need}`);
    }
    const cert = this.pemFile(certName, 'certificate');
    const key = this.pemFile(keyName, 'key');
    return cert !== undefined && key !== undefined ? { cert, key } : undefined;
  }

  /** Reads a PEM file whose path came from `location` (a variable, or a parameter inside a URL variable). */
  readPem(location: string, path: string, kind: 'certificate' | 'key'): string | undefined {
    let contents: string;
    try {
      contents = this.readFile(path);
    } catch (error) {
      this.error(location, `cannot read file "${path}": ${describeFileError(error)}`);
      return undefined;
    }
    const marker = kind === 'certificate' ? '-----BEGIN CERTIFICATE-----' : 'PRIVATE KEY-----';
    if (!contents.includes(marker)) {
      this.error(location, `file "${path}" does not contain a PEM ${kind === 'certificate' ? 'certificate' : 'private key'}`);
      return undefined;
    }
    if (kind === 'key' && /ENCRYPTED/.test(contents)) {
      this.error(location, `file "${path}" holds an encrypted private key: give an unencrypted one and protect the file instead (mode 0600, a secret mount)`);
      return undefined;
    }
    return contents;
  }

  /**
   * The variable to read when a `SLUICE_` setting and a legacy name mean the same thing: the `SLUICE_` one
   * wins, with a warning at the legacy name when both are set. Undefined when neither is set.
   */
  preferSluice(sluiceName: string, legacyName: string): string | undefined {
    const hasSluice = this.has(sluiceName);
    const hasLegacy = this.has(legacyName);
    if (hasSluice && hasLegacy) {
      this.warn(legacyName, `ignored: ${sluiceName} is also set and takes precedence`);
    }
    if (hasSluice) return sluiceName;
    return hasLegacy ? legacyName : undefined;
  }
}

function describeFileError(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    default:
      return typeof code === 'string' ? code : 'read failed';
  }
}

/** Decodes a percent-encoded URL component; undefined when the encoding is malformed. */
export function decodeComponent(value: string): string | undefined {
  try {
    return decodeURIComponent(value);
  } catch {
    return undefined;
  }
}
