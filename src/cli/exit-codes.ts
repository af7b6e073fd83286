/** Process exit codes of the `sluice` command; documented in README and `sluice --help`. */
export const EXIT_CODES = {
  /** The command did what it was asked. */
  ok: 0,
  /** A runtime failure: PostgreSQL, the search engine or a store failed or stayed unreachable, or the HTTP port could not be bound. */
  failure: 1,
  /** Wrong command line: unknown command or flag, missing argument. */
  usage: 2,
  /** Invalid settings or schema.json: the report lists every problem with its location. */
  invalidConfig: 3,
  /** `sluice verify` found the index out of sync with PostgreSQL (or `--repair` could not fix every document). */
  drift: 4,
  /** Stopped by SIGINT/SIGTERM before finishing (work done so far is durable). */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    runtime failure (PostgreSQL, search engine or store failed or unreachable;
       HTTP port not bindable)
  2    usage error (unknown command or flag, missing argument)
  3    invalid configuration or schema.json (every problem is listed with its location)
  4    drift: \`sluice verify\` found documents missing, different or extra in the index
  130  \`sync --once\` or \`verify\` interrupted by SIGINT/SIGTERM (\`run\` stops cleanly and exits 0)`;
