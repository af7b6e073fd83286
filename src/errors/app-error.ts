import type { ErrorCode } from './codes.js';

/** Base error of Sluice: a stable `code` for tests and alerts, structured `details`, and the native `cause`. */
export class AppError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.details = options.details ?? {};
  }
}

/** One problem found in configuration or schema, with where it was found. */
export interface Problem {
  /** Where: an environment variable name, a CLI flag, or a JSON location such as `$[0].nodes.children[1].table`. */
  location: string;
  message: string;
  severity: 'error' | 'warning';
}

/** Configuration or schema is invalid: carries every problem found, reported at once. */
export class InvalidConfigError extends AppError {
  readonly problems: Problem[];

  constructor(code: ErrorCode, summary: string, problems: Problem[]) {
    super(code, `${summary}\n${formatProblems(problems)}`, { details: { problems } });
    this.name = 'InvalidConfigError';
    this.problems = problems;
  }
}

export function formatProblems(problems: Problem[]): string {
  return problems.map((p) => `  ${p.severity === 'error' ? 'error' : 'warning'} at ${p.location}: ${p.message}`).join('\n');
}

/** Normalizes a caught value into an Error. */
export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}
