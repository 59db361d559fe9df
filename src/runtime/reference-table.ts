import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import type { ReferenceTableView } from './component.ts';
import type { StoreBackend, StoredEntry } from './store-backend.ts';

/**
 * A compacted topic materialised in full on every instance (Kafka Streams calls it a global
 * table): a consumer of its own — a fresh group, nothing committed — reads every partition from the
 * beginning and keeps applying changes; the latest value per key lands in a memory or LMDB backend.
 * Tombstones delete. Ready once it has read up to where the topic ended when it started.
 */
export class ReferenceTable<V = unknown> implements ReferenceTableView<V> {
  private consumer: Consumer | undefined;
  private readonly caughtUp = new Map<number, boolean>();
  private readonly targets = new Map<number, bigint>();
  private readyResolve: (() => void) | undefined;
  readonly ready: Promise<void>;
  private applied = 0;

  constructor(
    readonly topic: string,
    private readonly kafka: Kafka,
    private readonly serde: AvroSerde,
    private readonly backend: StoreBackend,
    private readonly logger: Logger,
  ) {
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
  }

  get(key: string): V | undefined {
    return this.backend.get(key)?.v as V | undefined;
  }

  get size(): number {
    return this.backend.size();
  }

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      for (const { partition, high, low } of await admin.fetchTopicOffsets(this.topic)) {
        this.targets.set(partition, BigInt(high));
        this.caughtUp.set(partition, high === low);
      }
    } finally {
      await admin.disconnect();
    }
    this.checkReady();
    this.consumer = this.kafka.consumer({ groupId: `_lifeline.table.${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 200, maxBytesPerPartition: 8 * 1024 * 1024 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const writes = new Map<string, StoredEntry | null>();
        for (const message of batch.messages) {
          if (message.key === null) continue;
          const key = message.key.toString('utf8');
          if (message.value === null) {
            writes.set(key, null);
            continue;
          }
          try {
            const { value } = await this.serde.decode(message.value);
            // Plain data: avsc decodes into generated classes, which an LMDB backend cannot store.
            writes.set(key, { v: JSON.parse(JSON.stringify(value)) as unknown });
          } catch (error) {
            this.logger.warn({ topic: this.topic, offset: message.offset, err: errorMessage(error) }, 'reference record skipped: it does not decode');
          }
        }
        await this.backend.apply(writes);
        this.applied += writes.size;
        // Transaction markers occupy offsets a committed read never returns, so within two of the end counts as the end.
        const target = this.targets.get(batch.partition) ?? 0n;
        if (BigInt(batch.highWatermark) >= target && BigInt(batch.lastOffset()) + 3n >= target) this.caughtUp.set(batch.partition, true);
        this.checkReady();
      },
    });
  }

  /** Waits until the table holds what its topic held at start, at most `timeoutMs`; says whether it does. */
  async waitReady(timeoutMs: number): Promise<boolean> {
    const timedOut = Symbol('timeout');
    const result = await Promise.race([this.ready, sleep(timeoutMs, timedOut)]);
    if (result === timedOut) {
      this.logger.warn({ topic: this.topic, applied: this.applied }, 'reference table not caught up yet; starting anyway');
      return false;
    }
    return true;
  }

  private checkReady(): void {
    if ([...this.caughtUp.values()].every(Boolean)) {
      this.readyResolve?.();
      this.readyResolve = undefined;
    }
  }

  async close(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
    await this.backend.close().catch(() => undefined);
  }
}
