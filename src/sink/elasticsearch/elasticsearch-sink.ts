/**
 * The Elasticsearch/OpenSearch adapter: one HTTP client, engine detection at connect, index administration
 * and bulk writers. The same code path serves ES 7.10+, 8, 9 and OpenSearch 1-3.
 */
import type { EngineConfig } from '../../config/config-types.js';
import type { DeadLetterStore, EngineInfo, IndexDefinition } from '../document-sink.js';
import type { BulkWriterOptions } from './bulk-writer.js';
import { BulkWriter } from './bulk-writer.js';
import type { SinkLogger } from './engine-client.js';
import { EngineClient } from './engine-client.js';
import { detectEngine } from './engine-info.js';
import { routingsOf, scanDocuments, type StoredCopy } from './document-scan.js';
import { countDocuments, deleteIndex, ensureIndex, refresh } from './index-manager.js';
import { resolveName, swapAlias, type AliasSwap, type NameState } from './aliases.js';

export class ElasticsearchSink {
  private readonly writers = new Set<BulkWriter>();
  private closing: Promise<void> | undefined;

  private constructor(
    /** The HTTP client (shared by every writer). */
    readonly client: EngineClient,
    /** Flavour and version read from `GET /` at connect. */
    readonly info: EngineInfo,
    private readonly config: EngineConfig,
    private readonly deadLetters: DeadLetterStore,
    private readonly logger?: SinkLogger,
  ) {}

  /**
   * Opens the client and detects the engine. Throws `SNK_CONNECT` (unreachable, credentials refused) or
   * `SNK_UNSUPPORTED` (not a supported engine); the client is closed in that case.
   */
  static async connect(config: EngineConfig, deadLetters: DeadLetterStore, logger?: SinkLogger): Promise<ElasticsearchSink> {
    // A few sockets beyond the bulk slots leave room for admin requests and refreshes.
    const client = new EngineClient(config, { connections: Math.max(1, config.bulkConcurrency) + 2 });
    try {
      const info = await detectEngine(client, config.flavorHint);
      logger?.info({ url: client.url, flavor: info.flavor, version: info.version }, 'connected to the search engine');
      return new ElasticsearchSink(client, info, config, deadLetters, logger);
    } catch (err) {
      await client.close().catch(() => undefined);
      throw err;
    }
  }

  /** Creates the index from its definition unless it exists; true when created now. */
  ensureIndex(def: IndexDefinition): Promise<boolean> {
    return ensureIndex(this.client, def);
  }

  /** Deletes an index; false when it did not exist. */
  deleteIndex(name: string): Promise<boolean> {
    return deleteIndex(this.client, name);
  }

  /** Whether `name` is an alias (and over which indices), a concrete index, or nothing. */
  resolveName(name: string): Promise<NameState> {
    return resolveName(this.client, name);
  }

  /** Points an alias at one index atomically (see swapAlias). */
  swapAlias(swap: AliasSwap): Promise<void> {
    return swapAlias(this.client, swap);
  }

  /** A new bulk writer over the shared client; closed with the sink. */
  writer(options?: BulkWriterOptions): BulkWriter {
    // Each attempt of a sync takes a writer: the sink lets go of it once it is closed, or the writers of failed
    // attempts (and their buffers) would live as long as the process.
    const writer: BulkWriter = new BulkWriter(this.client, this.config, this.deadLetters, this.logger, {
      ...options,
      onClose: () => {
        this.writers.delete(writer);
        options?.onClose?.();
      },
    });
    this.writers.add(writer);
    return writer;
  }

  refresh(index: string): Promise<void> {
    return refresh(this.client, index);
  }

  /** Every stored copy of every document of the index, with its routing (scroll). */
  documents(index: string): AsyncIterable<StoredCopy> {
    return scanDocuments(this.client, index);
  }

  /** Every routing each document is stored under (for deletes and moves in an index that requires routing). */
  routingsOf(index: string, ids: string[]): Promise<Map<string, Array<string | null>>> {
    return routingsOf(this.client, index, ids);
  }

  count(index: string): Promise<number> {
    return countDocuments(this.client, index);
  }

  /** Closes the writers (unflushed actions are discarded) and then the client. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.writers].map((w) => w.close()));
      await this.client.close();
    })();
    return this.closing;
  }
}
