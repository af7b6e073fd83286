import type { Problem } from '../errors/app-error.js';

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects problems with their locations, plus typed readers that report instead of throwing. */
export class ProblemList {
  private readonly problems: Problem[] = [];

  error(location: string, message: string): void {
    this.problems.push({ location, message, severity: 'error' });
  }

  warning(location: string, message: string): void {
    this.problems.push({ location, message, severity: 'warning' });
  }

  all(): Problem[] {
    return [...this.problems];
  }

  hasErrors(): boolean {
    return this.problems.some((p) => p.severity === 'error');
  }

  unknownKeys(value: Record<string, unknown>, allowed: Set<string>, at: string, what: string): void {
    for (const key of Object.keys(value)) {
      if (!allowed.has(key)) {
        const hint = closest(key, allowed);
        this.error(`${at}.${key}`, `unknown ${what} key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; allowed: ${[...allowed].join(', ')}`);
      }
    }
  }

  requiredString(value: Record<string, unknown>, key: string, at: string): string | undefined {
    const v = value[key];
    if (typeof v === 'string' && v.trim() !== '') return v;
    this.error(`${at}.${key}`, v === undefined ? `"${key}" is required` : `"${key}" must be a non-empty string, got ${JSON.stringify(v)}`);
    return undefined;
  }

  optionalString(value: Record<string, unknown>, key: string, at: string): string | undefined {
    const v = value[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v === 'string' && v.trim() !== '') return v;
    this.error(`${at}.${key}`, `"${key}" must be a non-empty string, got ${JSON.stringify(v)}`);
    return undefined;
  }

  optionalObject(value: Record<string, unknown>, key: string, at: string): Record<string, unknown> | undefined {
    const v = value[key];
    if (v === undefined || v === null) return undefined;
    if (isPlainObject(v)) return v;
    this.error(`${at}.${key}`, `"${key}" must be an object`);
    return undefined;
  }

  optionalStringList(value: Record<string, unknown>, key: string, at: string): string[] | undefined {
    const v = value[key];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v) && v.every((item) => typeof item === 'string' && item !== '')) return v as string[];
    this.error(`${at}.${key}`, `"${key}" must be a list of names`);
    return undefined;
  }

  oneOf<T extends string>(value: Record<string, unknown>, key: string, allowed: readonly T[], at: string): T | undefined {
    const v = value[key];
    if (typeof v === 'string' && (allowed as readonly string[]).includes(v)) return v as T;
    const hint = typeof v === 'string' && (allowed as readonly string[]).includes(v.toLowerCase()) ? ` (values are case-sensitive: "${v.toLowerCase()}")` : '';
    this.error(`${at}.${key}`, v === undefined ? `"${key}" is required: one of ${allowed.join(', ')}` : `"${key}" must be one of ${allowed.join(', ')}, got ${JSON.stringify(v)}${hint}`);
    return undefined;
  }
}

/** The allowed name within edit distance 2 of `name`, for did-you-mean hints. */
export function closest(name: string, allowed: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    // Ties go to the candidate sharing the first letter (a typo rarely starts with a wrong letter).
    if (d < bestDistance || (d === bestDistance && best !== undefined && best[0] !== name[0] && candidate[0] === name[0])) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Optimal-string-alignment distance: edits plus adjacent transpositions ("lable" is 1 from "label"). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}
