import type { EngineConfig } from '../../../src/config/config-types.js';
import type { DeadLetter, DeadLetterStore } from '../../../src/sink/document-sink.js';

export function engineConfig(url: string, overrides: Partial<EngineConfig> = {}): EngineConfig {
  return {
    url,
    auth: { kind: 'none' },
    tls: { rejectUnauthorized: true },
    requestTimeoutMs: 5_000,
    bulkMaxActions: 100,
    bulkMaxBytes: 1024 * 1024,
    bulkConcurrency: 1,
    retryInitialMs: 5,
    retryMaxMs: 20,
    retryGiveUpMs: 5_000,
    compress: false,
    ...overrides,
  };
}

export class MemoryDeadLetters implements DeadLetterStore {
  readonly letters: DeadLetter[] = [];
  async record(letters: DeadLetter[]): Promise<void> {
    this.letters.push(...letters);
  }
  async close(): Promise<void> {}
}
