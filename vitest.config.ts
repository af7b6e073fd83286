import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure code, parallel) and `integration` (real PostgreSQL, Redis and the
// Elasticsearch-compatible test server, started by test/global-setup.ts and stopped at the end).
export default defineConfig({
  test: {
    globals: false,
    allowOnly: false,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Files share one PostgreSQL cluster (a database each) and one Redis; two at a time suits 2 cores.
          maxWorkers: 2,
          minWorkers: 1,
        },
      },
    ],
  },
});
