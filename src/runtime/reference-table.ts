import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage, isRetriable } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { deleteOwnGroup } from '../kafka/client.ts';
import type { ReferenceTableView } from '../component/component.ts';
import type { StoreBackend, StoredEntry } from './store-backend.ts';
import { readPath } from '../component/value-path.ts';

const INDEX_PREFIX = 'i\u0000';
const RECORD_PREFIX = 'r\u0000';


/**
 * A compacted topic materialised in full on every instance (Kafka Streams calls it a global
 * table): a consumer of its own — a fresh group, nothing committed — reads every partition from the
 * beginning and keeps applying changes; the latest value per key lands in a memory or LMDB backend.
 * Tombstones delete. Ready once it has read up to where the topic ended when it started.
 */
export class ReferenceTable<V = unknown> implements ReferenceTableView<V> {
  private readonly groupId = `_lifeline.table.${randomUUID()}`;
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
    /** Index by this dotted value path instead of the record key. */
    private readonly keyField?: string,
    /** Told the table's size after each batch it applied (lifeline_reference_table_records). */
    private readonly onSize?: (records: number) => void,
  ) {
    this.ready = new Promise((resolve) => { this.readyResolve = resolve; });
  }

  get(key: string): V | undefined {
    return this.backend.get(this.keyField ? `${INDEX_PREFIX}${key}` : key)?.v as V | undefined;
  }

  get size(): number {
    return this.keyField ? this.indexed : this.backend.size();
  }

  private indexed = 0;

  /**
   * Keyed by a value field, a record's entry moves when that field changes and goes when the record
   * is deleted; a second entry per record (record key -> field value) remembers where it is.
   */
  private indexWrites(key: string, value: unknown, writes: Map<string, StoredEntry | null>): void {
    const field = this.keyField as string;
    const pending = writes.get(`${RECORD_PREFIX}${key}`);
    const previous = (pending === undefined ? this.backend.get(`${RECORD_PREFIX}${key}`)?.v : pending?.v) as string | undefined;
    const next = value === null ? undefined : readPath(value, field);
    const nextKey = next === undefined || next === null || next === false ? undefined : String(next);
    if (previous !== undefined && previous !== nextKey) {
      writes.set(`${INDEX_PREFIX}${previous}`, null);
      this.indexed--;
    }
    if (nextKey === undefined) {
      writes.set(`${RECORD_PREFIX}${key}`, null);
      return;
    }
    if (previous !== nextKey) this.indexed++;
    writes.set(`${INDEX_PREFIX}${nextKey}`, { v: value });
    writes.set(`${RECORD_PREFIX}${key}`, { v: nextKey });
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
    this.consumer = this.kafka.consumer({ groupId: this.groupId, readUncommitted: false, maxWaitTimeInMs: 200, maxBytesPerPartition: 8 * 1024 * 1024 });
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
            if (this.keyField) this.indexWrites(key, null, writes);
            else writes.set(key, null);
            continue;
          }
          try {
            const { value } = await this.serde.decode(message.value);
            // Plain data: avsc decodes into generated classes, which an LMDB backend cannot store.
            const plain = JSON.parse(JSON.stringify(value)) as unknown;
            if (this.keyField) this.indexWrites(key, plain, writes);
            else writes.set(key, { v: plain });
          } catch (error) {
            // An outage (registry unreachable) is retried with the batch, never a skipped reference record.
            if (isRetriable(error)) throw error;
            this.logger.warn({ topic: this.topic, offset: message.offset, err: errorMessage(error) }, 'reference record skipped: it does not decode');
          }
        }
        await this.backend.apply(writes);
        this.applied += writes.size;
        this.onSize?.(this.size);
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
    const consumer = this.consumer;
    await consumer?.disconnect().catch(() => undefined);
    if (consumer) await deleteOwnGroup(this.kafka, this.groupId);
    await this.backend.close().catch(() => undefined);
  }
}
