// vitest globalSetup of the `integration` project: ONE PostgreSQL cluster and ONE Redis for the whole
// run (each test file takes its own database, see test/helpers/test-env.ts), stopped at the end.
import type { TestProject } from 'vitest/node';
import { startPostgresCluster, type PostgresCluster } from './helpers/postgres-cluster.js';
import { startRedisServer, type RedisTestServer } from './helpers/redis-server.js';
// The ProvidedContext keys are declared in test-env.ts (type-only import: no runtime code here).
import type {} from './helpers/test-env.js';

export default async function setup({ provide }: TestProject): Promise<() => Promise<void>> {
  let postgres: PostgresCluster | undefined;
  let redis: RedisTestServer | undefined;

  const teardown = async (): Promise<void> => {
    const results = await Promise.allSettled([postgres?.stop(), redis?.stop()]);
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length > 0) {
      throw new AggregateError(
        failures.map((f) => f.reason as unknown),
        'stopping the integration test servers failed',
      );
    }
  };

  const [pgResult, redisResult] = await Promise.allSettled([startPostgresCluster(), startRedisServer()]);
  if (pgResult.status === 'fulfilled') postgres = pgResult.value;
  if (redisResult.status === 'fulfilled') redis = redisResult.value;
  if (postgres === undefined || redis === undefined) {
    // One of them may have started: do not leave it behind.
    await teardown().catch(() => undefined);
    const reasons = [pgResult, redisResult].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    throw reasons.length === 1 ? (reasons[0]?.reason as unknown) : new AggregateError(reasons.map((r) => r.reason as unknown), 'starting the integration test servers failed');
  }

  provide('pgUrl', postgres.connectionString('postgres'));
  provide('pgBinDir', postgres.binDir);
  provide('pgDataDir', postgres.dataDir);
  provide('redisUrl', redis.url);

  return teardown;
}
