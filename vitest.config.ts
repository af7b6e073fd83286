import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure code) and `integration` (real PostgreSQL and Redis started once by
// test/global-setup.ts; each file starts its own Elasticsearch-compatible test server from test/es-server/).
export default defineConfig({
  test: {
    globals: false,
    allowOnly: false,
    // Integration files share one PostgreSQL cluster (a database each) and one Redis; two at a time suits 2 cores.
    maxWorkers: 2,
    minWorkers: 1,
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
        },
      },
    ],
  },
});
