/**
 * Retry timing helpers: full-jitter exponential backoff and an abortable sleep.
 * Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter") spreads retries of many
 * clients over the whole window, which is what an overloaded search engine (HTTP 429) needs.
 */

/**
 * Delay before retry number `attempt` (0 for the first retry): a uniformly random value in
 * `[0, min(maxMs, initialMs * 2^attempt)]`, rounded down to whole milliseconds.
 * @param random source of randomness in [0, 1); injectable for tests.
 */
export function backoffDelayMs(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const safeAttempt = Math.max(0, Math.floor(attempt));
  // 2 ** 1100 is Infinity; Math.min keeps the ceiling finite.
  const ceilingMs = Math.max(0, Math.min(maxMs, initialMs * 2 ** safeAttempt));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * ceilingMs);
}

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason as soon as `signal` aborts.
 * The timer is not unref'd: a pending retry keeps the process alive on purpose.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal | undefined): unknown {
  return signal?.reason ?? new Error('sleep aborted');
}
