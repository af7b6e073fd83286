const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** JSON.stringify that writes bigints as plain JSON numbers (versions can be 64-bit LSNs). */
export function toJson(value: unknown, pretty = false): string {
  try {
    return JSON.stringify(value, null, pretty ? 2 : undefined);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  const text = JSON.stringify(
    value,
    (_key, v: unknown) => {
      if (typeof v !== 'bigint') return v;
      return v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : `\u0000BIG${v}`;
    },
    pretty ? 2 : undefined,
  );
  return text.replace(/"\\u0000BIG(-?\d+)"/g, '$1');
}

/** Numbers as ES prints longs: a JS number when exact, else a bigint (serialised by toJson). */
export const long = (v: bigint): number | bigint => (v <= MAX_SAFE && v >= -MAX_SAFE ? Number(v) : v);

type Pattern = string[];

function globMatch(glob: string, key: string): boolean {
  if (glob === '*' || glob === key) return true;
  if (!glob.includes('*')) return false;
  const re = new RegExp('^' + glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*') + '$');
  return re.test(key);
}

/** Patterns that continue below `key`; an empty pattern means the whole subtree is selected. */
function descend(patterns: Pattern[], key: string): Pattern[] {
  const next: Pattern[] = [];
  for (const p of patterns) {
    const [head, ...rest] = p;
    if (head === undefined) continue;
    if (head === '**') {
      next.push(p);
      if (rest.length === 0) next.push([]);
      else if (rest[0] !== undefined && globMatch(rest[0], key)) next.push(rest.slice(1));
    } else if (globMatch(head, key)) {
      next.push(rest);
    }
  }
  return next;
}

function include(value: unknown, patterns: Pattern[]): unknown {
  if (patterns.some((p) => p.length === 0)) return value;
  if (Array.isArray(value)) {
    const out = value.map((v) => include(v, patterns)).filter((v) => v !== undefined);
    return out.length ? out : undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(value)) {
    const next = descend(patterns, k);
    if (!next.length) continue;
    const r = include(v, next);
    if (r !== undefined) {
      out[k] = r;
      any = true;
    }
  }
  return any ? out : undefined;
}

function exclude(value: unknown, patterns: Pattern[]): unknown {
  if (patterns.some((p) => p.length === 0)) return undefined;
  if (Array.isArray(value)) return value.map((v) => exclude(v, patterns)).filter((v) => v !== undefined);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    const next = descend(patterns, k);
    const r = next.length ? exclude(v, next) : v;
    if (r !== undefined) out[k] = r;
  }
  return out;
}

/** ES `filter_path`: comma-separated dotted paths with `*` / `**` wildcards, `-` prefix excludes. */
export function applyFilterPath(value: unknown, filterPath: string): unknown {
  const all = filterPath.split(',').map((s) => s.trim()).filter(Boolean);
  const inc = all.filter((f) => !f.startsWith('-')).map((f) => f.split('.'));
  const exc = all.filter((f) => f.startsWith('-')).map((f) => f.slice(1).split('.'));
  let out = value;
  if (inc.length) out = include(out, inc) ?? {};
  if (exc.length) out = exclude(out, exc) ?? {};
  return out;
}
