import { join } from 'node:path';
import type { Admin, Kafka, KafkaMessage, Message, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { errorCode, errorMessage, isRetriable } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { TRANSACTIONAL_PRODUCER_RETRY } from '../kafka/client.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';
import { retry } from '../retry.ts';
import type { ErrorPolicy } from '../topology/model.ts';
import type { InputRecord, OutputRecord, Processor, ProcessorContext, ReferenceTableView, StoreSpec } from '../component/component.ts';
import { deadLetterMessage, headersAsStrings } from './dead-letter.ts';
import { LmdbStoreBackend } from './lmdb-store-backend.ts';
import { MemoryStoreBackend } from './memory-store-backend.ts';
import { markersWrittenBy, restoreStores, type RestoreProgress } from './store-restorer.ts';
import { nextChangelogOffsets } from './store-checkpoint.ts';
import { PartitionGauges } from './partition-gauges.ts';
import { maybeCrashBeforeCommit, maybeLoseCommitAnswer } from './fault-injection.ts';
import { scrubPhiFromText } from '../observe/phi-scrub.ts';
import { TransactionalStore } from './transactional-store.ts';
import type { SharedTransaction } from './shared-transaction.ts';
import { commitOutcomeUnknown, groupFenced, isCommitOutcomeUnknown, isFencingError, isTransientTransactionError, mustReopenTask } from './transaction-errors.ts';
import { ProgressGuard, SizeLimits, estimateMessageBytes, isMessageTooLarge, recreateProducer, sendBounded, staleLimitsCheck, type SentRequest } from './transaction-budget.ts';

/** Everything a task needs from its host; shared by all tasks of one processor. */
export interface TaskEnvironment {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly serde: AvroSerde;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  readonly label: string;
  readonly groupId: string;
  readonly transactionalIdPrefix: string;
  readonly exactlyOnce: boolean;
  readonly onError: ErrorPolicy;
  readonly outputs: Readonly<Record<string, string>>;
  readonly partitionsByTopic: ReadonlyMap<string, number>;
  readonly inputPartitions: number;
  readonly deadLetterTopic: string;
  readonly stores: readonly StoreSpec[];
  readonly changelogTopic: (store: string) => string;
  readonly storeKind: 'memory' | 'lmdb';
  readonly stateDir: string;
  readonly commitMaxRecords: number;
  readonly commitIntervalMs: number;
  /** Producer for at-least-once mode (one per host); exactly-once tasks own a transactional one, unless… */
  readonly sharedProducer?: Producer;
  /** …`runtime.transactions: per_process`: every task's commit joins the host's one transaction (KIP-447). */
  readonly sharedTransaction?: SharedTransaction;
  readonly commitConsumerOffsets: (offsets: Array<{ topic: string; partition: number; offset: string }>) => Promise<void>;
  /** Committed offsets; `requireStable` waits out (retries) offsets an open transaction still holds. */
  readonly fetchCommittedOffsets: (partition: number, requireStable?: boolean) => Promise<Map<string, bigint>>;
  readonly createProcessor: () => Processor;
  /** Reference tables by name, shared by every task of the processor. */
  readonly tables: ReadonlyMap<string, ReferenceTableView>;
  /** Repartition name -> internal topic, and back. */
  readonly repartitionTopics: ReadonlyMap<string, string>;
  /** PHI paths of each input topic's schema, to scrub PHI values out of error text. */
  readonly phiPathsByTopic: ReadonlyMap<string, readonly string[]>;
  /** Outputs keep the input's partition (the processor declared it preserves partitioning); else placed by key. */
  readonly preservesPartitioning: boolean;
  /** Longest a restore may take before the task gives up (and the process says why it is not ready). */
  readonly restoreTimeoutMs: number;
  /** Restore progress, for logs and /readyz; undefined when the restore ended. */
  readonly onRestoreProgress?: (partition: number, progress: RestoreProgress | undefined) => void;
  /**
   * Bumped by the host when this member may have been out of its group for a generation (it rejoined
   * under a new member id, or a generation went by without it): another member may have processed the
   * partitions meanwhile, so a task opened before holds state and offsets that are no longer Kafka's.
   */
  readonly membershipEpoch?: () => number;
  /** A timer found the task fenced: the host drops it as it does after a fenced batch. */
  readonly onFenced?: (task: ProcessorTask) => void;
  /** Serialises opening and closing of one state directory within the process (one owner at a time). */
  readonly directoryLocks: DirectoryLocks;
  /** Byte limits read from the broker at start (transaction-budget.ts); Kafka's defaults when absent. */
  readonly sizeLimits?: SizeLimits;
  /** Reads `sizeLimits` again from the broker (after it refused a batch as too large). */
  readonly refreshSizeLimits?: () => Promise<void>;
}

/** One owner per task directory within a process: a task opening a directory waits for the previous owner's close. */
export class DirectoryLocks {
  private readonly held = new Map<string, Promise<void>>();

  async acquire(path: string): Promise<() => void> {
    const previous = this.held.get(path) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => { release = resolve; });
    const chained = previous.then(() => mine);
    this.held.set(path, chained);
    await previous;
    return () => {
      release();
      if (this.held.get(path) === chained) this.held.delete(path);
    };
  }
}

/** Raised when a record failed under `on_error: fail`: the processor stops instead of skipping it. */
export class ProcessingHaltedError extends Error {
  override readonly name = 'ProcessingHaltedError';
}

const STORE_ENTRIES_GAUGE = {
  name: 'lifeline_store_entries', help: 'Entries in a state store (committed; expired entries count until the expiry timer deletes them), summed over the partitions this process owns.',
  labelNames: ['store'], aggregate: 'sum',
} as const;

/** Carries the topic a repartitioned record first arrived on. */
export const REPARTITION_ORIGIN_HEADER = 'lifeline.repartition.origin-topic';

/**
 * Kafka's murmur2 (Java client `Utils.murmur2`, what kafkajs's default partitioner computes with
 * 64-bit Long objects), in 32-bit integer arithmetic: the same hash, without a Long per byte group.
 */
export function murmur2(key: string | Buffer): number {
  const data = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  const length = data.length;
  const m = 0x5bd1e995;
  let h = (0x9747b28c ^ length) | 0;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = (data[i] as number) | ((data[i + 1] as number) << 8) | ((data[i + 2] as number) << 16) | ((data[i + 3] as number) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  switch (length & 3) {
    case 3: h ^= (data[whole + 2] as number) << 16; // falls through
    case 2: h ^= (data[whole + 1] as number) << 8; // falls through
    case 1: h ^= data[whole] as number; h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/**
 * The partition Kafka's default partitioner (murmur2, as the Java client and kafkajs use) picks for
 * a key: a record produced keyed by K and a record repartitioned to K land on the same partition.
 */
export function partitionForKey(key: string, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

/** How often a task reads its stores' expiry indexes; everything due is deleted, in bounded transactions. */
const EXPIRY_INTERVAL_MS = 1000;
/** Deletes per expiry transaction (and store); a sweep runs as many transactions as it needs. */
const EXPIRY_CHUNK = 2000;
/** At most this many timer calls in a row (each its own transaction) before the next tick. */
const MAX_TIMER_CHUNKS = 50;

interface PendingForward {
  readonly topic: string;
  readonly record: OutputRecord;
}

/**
 * One input partition of one processor: its stores, its transactional producer (one
 * transactional id per partition, because kafkajs's TxnOffsetCommit carries no group generation
 * and fencing rests on the id), its timers, and the transaction being built. Work on a task is
 * serialised through `exclusive`, so batches of co-partitioned inputs and timers never interleave.
 */
export class ProcessorTask {
  closed = false;
  private readonly stores = new Map<string, TransactionalStore>();
  private producer!: Producer;
  private processor!: Processor;
  private readonly timers: NodeJS.Timeout[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private committed = new Map<string, bigint>();
  private recordForwards: PendingForward[] = [];
  private recordRepartitions: Array<{ topic: string; message: Message }> = [];
  /** Records handled per input topic in the open transaction (lifeline_records_in_total moves at commit). */
  private pendingIn = new Map<string, number>();
  private recordDeadLetters: Message[] = [];
  private currentInput: (InputRecord & { origin?: string }) | undefined;
  private currentRaw: KafkaMessage | undefined;
  private pendingMessages = new Map<string, Message[]>();
  private pendingOffsets = new Map<string, bigint>();
  private pendingRecords = 0;
  private pendingBytes = 0;
  private readonly limits: SizeLimits;
  /** Watches for a batch failing twice from the same offset; then commits shrink (see transaction-budget.ts). */
  readonly progress: ProgressGuard;
  private transactionOpenedAt = 0;
  private releaseDirectories: Array<() => void> = [];
  readonly logger: Logger;
  readonly context: ProcessorContext;

  private readonly repartitionNames: ReadonlyMap<string, string>;

  /** The host's membership epoch when this task was created (see TaskEnvironment.membershipEpoch). */
  private readonly epoch: number;

  constructor(private readonly env: TaskEnvironment, readonly partition: number) {
    this.epoch = env.membershipEpoch?.() ?? 0;
    this.repartitionNames = new Map([...env.repartitionTopics].map(([name, topic]) => [topic, name]));
    this.logger = env.logger.child({ partition });
    this.limits = env.sizeLimits ?? SizeLimits.fixed(1_048_588);
    this.progress = new ProgressGuard(env.label, this.logger, env.metrics, () => undefined);
    const task = this;
    this.context = {
      label: env.label,
      partition,
      logger: this.logger,
      metricsRegistry: env.metrics.registry,
      store<V>(name: string) {
        const store = task.stores.get(name);
        if (!store) throw new Error(`processor ${env.label} did not declare a store named ${name}; declared: ${[...task.stores.keys()].join(', ') || 'none'}`);
        return store as TransactionalStore<V>;
      },
      forward(output, record) {
        const topic = env.outputs[output];
        if (!topic) throw new Error(`processor ${env.label} forwarded to output "${output}", which topology.yaml does not map; mapped: ${Object.keys(env.outputs).join(', ')}`);
        task.recordForwards.push({ topic, record });
      },
      table<V>(name: string) {
        const table = env.tables.get(name);
        if (!table) throw new Error(`processor ${env.label} did not declare a table named ${name}; declared: ${[...env.tables.keys()].join(', ') || 'none'}`);
        return table as ReferenceTableView<V>;
      },
      hasOutput(output) {
        return env.outputs[output] !== undefined;
      },
      count(event, n = 1) {
        env.metrics.recordProcessorEvent(env.label, event, n);
      },
      partitionGauge(spec) {
        return PartitionGauges.of(env.metrics.registry).gauge(spec, env.label, partition);
      },
      now: () => Date.now(),
      deadLetter(record, error) {
        const text = scrubPhiFromText(error.message, record.value, env.phiPathsByTopic.get(record.topic) ?? []);
        task.recordDeadLetters.push(deadLetterMessage({
          component: env.label, error, errorText: text, attempts: 1,
          origin: { topic: record.topic, partition: record.partition, offset: record.offset },
          key: record.key, value: record.rawValue, headers: record.headers,
        }));
        env.metrics.recordDeadLetter(env.label, errorCode(error));
      },
      repartition(name, key) {
        const topic = env.repartitionTopics.get(name);
        if (!topic) throw new Error(`processor ${env.label} did not declare a repartition named ${name}`);
        const raw = task.currentRaw;
        if (!raw || !task.currentInput) throw new Error('repartition() sends the record being processed; call it from process()');
        task.recordRepartitions.push({
          topic,
          message: {
            // The original timestamp travels with the record (as in Kafka Streams): event time survives the hop.
            key, value: raw.value, timestamp: raw.timestamp, partition: partitionForKey(key, env.inputPartitions),
            headers: { ...task.currentInput.headers, [REPARTITION_ORIGIN_HEADER]: task.currentInput.origin ?? task.currentInput.topic },
          },
        });
      },
      schedule(intervalMs, callback) {
        task.every(intervalMs, () => task.punctuate(callback), 'punctuation failed');
      },
    };
  }

  /** Fences older owners of this partition, restores its stores, then initialises the processor. */
  async open(): Promise<void> {
    const env = this.env;
    if (env.sharedTransaction) {
      // No producer of its own: an older owner's open transaction is waited out by the restore
      // (its marker is read only past it) and by the stable offsets read below (KIP-447).
    } else if (env.exactlyOnce) {
      this.producer = this.createTransactionalProducer();
      await this.producer.connect();
      // kafkajs sends InitProducerId for the transactional id only at the first transaction(), not on
      // connect: an empty transaction now fences older owners of this partition and aborts their open
      // transaction before the stores are restored and the committed offsets read.
      await (await this.producer.transaction()).abort();
    } else {
      this.producer = env.sharedProducer as Producer;
    }
    for (const spec of env.stores) {
      let backend;
      if (env.storeKind === 'lmdb') {
        const path = join(env.stateDir, env.label, spec.name, String(this.partition));
        this.releaseDirectories.push(await env.directoryLocks.acquire(path));
        backend = new LmdbStoreBackend(path);
      } else {
        backend = new MemoryStoreBackend();
      }
      this.stores.set(spec.name, new TransactionalStore(spec.name, env.changelogTopic(spec.name), backend, spec.ttlMs));
    }
    try {
      const restore = await restoreStores({
        kafka: env.kafka, admin: env.admin, partition: this.partition,
        writeMarkers: env.sharedTransaction
          ? async (topicMessages: TopicMessages[]) => { await (env.sharedTransaction as SharedTransaction).commit({ partition: this.partition, topicMessages, offsets: [] }); }
          : markersWrittenBy(this.producer, env.exactlyOnce),
        stores: [...this.stores.values()], logger: this.logger, timeoutMs: env.restoreTimeoutMs,
        onProgress: (progress) => env.onRestoreProgress?.(this.partition, progress),
      });
      if (restore.plans.length > 0) env.metrics.recordRestore(env.label, restore.plans.some((plan) => plan.mode === 'full') ? 'full' : 'tail', restore.restored);
    } finally {
      env.onRestoreProgress?.(this.partition, undefined);
    }
    if (this.stores.size > 0) this.every(EXPIRY_INTERVAL_MS, () => this.expireDue(), 'expiry failed');
    this.reportStoreSizes();
    // Read after fencing, so an older owner's last transaction is settled and its offsets visible
    // (per process: read as stable offsets, which wait for any transaction still holding them).
    this.committed = await env.fetchCommittedOffsets(this.partition, env.sharedTransaction !== undefined);
    this.processor = env.createProcessor();
    await this.processor.init?.(this.context);
  }

  /** Runs `work` every intervalMs on this task; a fenced task is handed back to the host to drop. */
  private every(intervalMs: number, work: () => Promise<void>, failure: string): void {
    const timer = setInterval(() => {
      if (this.closed) return;
      void this.exclusive(work).catch((error: unknown) => {
        if (mustReopenTask(error)) {
          this.logger.warn({ err: errorMessage(error), code: errorCode(error) }, isFencingError(error) ? 'task fenced by a newer owner; dropping it' : 'commit outcome unknown; reopening the task');
          // Not marked closed here: close() (from the host's dropTask) must still run, or the task would
          // keep its state directories locked and the partition could never be opened again.
          for (const each of this.timers) clearInterval(each);
          if (this.env.onFenced) this.env.onFenced(this);
          else void this.exclusive(() => this.close({ commit: false })).catch(() => undefined);
          return;
        }
        this.logger.error({ err: errorMessage(error), code: errorCode(error) }, failure);
      });
    }, intervalMs);
    timer.unref();
    this.timers.push(timer);
  }

  /** Deletes every expired entry, read from the expiry indexes, in transactions of EXPIRY_CHUNK deletes per store. */
  private async expireDue(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      let full = false;
      for (const store of this.stores.values()) {
        if (store.expire(EXPIRY_CHUNK) >= EXPIRY_CHUNK) full = true;
      }
      await this.commit();
      if (!full) break;
    }
    this.reportStoreSizes();
  }

  /** `lifeline_store_entries{component,store}`: committed entries, summed over the partitions this process owns. */
  private reportStoreSizes(): void {
    const gauges = PartitionGauges.of(this.env.metrics.registry);
    for (const store of this.stores.values()) {
      gauges.gauge(STORE_ENTRIES_GAUGE, this.env.label, this.partition).set({ store: store.name }, store.committedSize());
    }
  }

  private createTransactionalProducer(): Producer {
    return this.env.kafka.producer({
      transactionalId: `${this.env.transactionalIdPrefix}.${this.partition}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      retry: TRANSACTIONAL_PRODUCER_RETRY,
    });
  }

  /**
   * After a failed transaction: a fresh producer with the same transactional id (so kafkajs's
   * stale sequence numbers cannot fail the next one), and the failure counted toward the stall
   * check. Not after fencing: the id belongs to another owner then.
   */
  async afterFailedTransaction(position: string, error: unknown): Promise<void> {
    this.progress.failed(position, error); // before any await: the host reads progress.stalled as soon as this returns
    // Limits out of date (a topic's max.message.bytes lowered while running): the retry then dead-letters what no longer fits.
    if (isMessageTooLarge(error)) await this.env.refreshSizeLimits?.();
    if (!this.env.exactlyOnce || this.env.sharedTransaction || this.closed || mustReopenTask(error)) return;
    try {
      this.producer = await recreateProducer(this.producer, () => this.createTransactionalProducer(), this.logger);
    } catch (recreateError) {
      this.logger.warn({ err: errorMessage(recreateError) }, 'could not recreate the transactional producer yet; the next commit connects it');
    }
  }

  /** Records per transaction now: the configured number, divided while a batch makes no progress. */
  private commitRecordBudget(): number {
    return Math.max(1, Math.floor(this.env.commitMaxRecords / this.progress.divisor));
  }

  /** Runs work on this task after everything queued before it. */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The next offset to process for an input topic, or -1 when the group has none committed. */
  nextOffset(topic: string): bigint {
    return this.pendingOffsets.get(topic) ?? this.committed.get(topic) ?? -1n;
  }

  shouldCommit(): boolean {
    if (this.pendingRecords === 0) return false;
    return this.pendingRecords >= this.commitRecordBudget()
      || this.pendingBytes >= this.limits.requestBytes
      || Date.now() - this.transactionOpenedAt >= this.env.commitIntervalMs;
  }

  async handle(topic: string, message: KafkaMessage): Promise<void> {
    const env = this.env;
    const started = performance.now();
    if (this.pendingRecords === 0) this.transactionOpenedAt = Date.now();
    const headers = headersAsStrings(message.headers);
    const key = message.key === null ? null : message.key.toString('utf8');
    try {
      const value = message.value === null ? null : (env.serde.decodeCached(message.value) ?? await env.serde.decode(message.value)).value;
      const via = this.repartitionNames.get(topic);
      const origin = via === undefined ? undefined : headers[REPARTITION_ORIGIN_HEADER];
      this.currentRaw = message;
      this.currentInput = {
        topic: origin ?? topic, partition: this.partition, offset: message.offset, timestamp: Number(message.timestamp), key, value, headers,
        rawValue: message.value,
        ...(via !== undefined ? { via, origin } : {}),
      };
      const processing = this.processor.process(this.currentInput, this.context);
      if (processing !== undefined && typeof (processing as PromiseLike<void>).then === 'function') await processing;
      const accepting = this.acceptRecordScope(headers);
      if (accepting !== undefined) await accepting;
    } catch (error) {
      this.discardRecordScope();
      if (isRetriable(error)) throw error; // the whole transaction is retried; nothing of this record is kept
      const text = scrubPhiFromText(errorMessage(error), this.currentInput?.value, env.phiPathsByTopic.get(topic) ?? []);
      await this.applyErrorPolicy(error, text, topic, message);
    } finally {
      this.currentInput = undefined;
      this.currentRaw = undefined;
    }
    this.pendingOffsets.set(topic, BigInt(message.offset) + 1n);
    this.pendingRecords++;
    this.pendingIn.set(topic, (this.pendingIn.get(topic) ?? 0) + 1);
    env.metrics.observeProcessing(env.label, (performance.now() - started) / 1000);
  }

  /** `text` is the error's message with the record's PHI values scrubbed out. */
  private async applyErrorPolicy(error: unknown, text: string, topic: string, message: KafkaMessage): Promise<void> {
    const env = this.env;
    const code = errorCode(error);
    if (env.onError === 'fail') {
      throw new ProcessingHaltedError(`${env.label}: record ${topic}/${this.partition}@${message.offset} failed (${code}) and on_error is fail: ${text}`);
    }
    if (env.onError === 'continue') {
      this.logger.warn({ topic, offset: message.offset, code }, 'record failed; skipped (on_error: continue)');
      return;
    }
    this.logger.warn({ topic, offset: message.offset, code, error: text }, 'record failed; dead-lettered');
    this.addMessage(env.deadLetterTopic, deadLetterMessage({
      component: env.label, error, errorText: text, attempts: 1,
      origin: { topic, partition: this.partition, offset: message.offset },
      key: message.key, value: message.value, headers: message.headers,
    }));
    env.metrics.recordDeadLetter(env.label, code);
  }

  /**
   * A record (or a timer) succeeded: its writes and outputs join the open transaction. Synchronous
   * when every output topic's schema is cached (each record after the first); a promise otherwise.
   */
  private acceptRecordScope(inputHeaders: Record<string, string>): Promise<void> | undefined {
    const encoded: Array<[string, Message]> = [];
    for (let index = 0; index < this.recordForwards.length; index++) {
      const { topic, record } = this.recordForwards[index] as PendingForward;
      const value = record.value === null ? null : this.passedOn(topic, record.value) ?? this.env.serde.encodeCached(topic, record.value);
      if (value === undefined) return this.acceptRecordScopeAfterLookup(inputHeaders);
      encoded.push([topic, this.outputMessage(topic, record, value, inputHeaders)]);
    }
    this.acceptEncoded(encoded);
    return undefined;
  }

  /**
   * The input's own bytes, when a processor forwards the input's decoded value unchanged (the same
   * object; inputs are read-only) to a topic registered with the schema id those bytes carry (dedup's
   * outputs): the same record, without decoding's result being validated and encoded again.
   */
  private passedOn(topic: string, value: unknown): Buffer | undefined {
    const input = this.currentInput;
    return input !== undefined && value === input.value ? this.env.serde.reusableFor(topic, input.rawValue) : undefined;
  }

  /** The first record to an output topic: its schema is looked up (and cached) before encoding. */
  private async acceptRecordScopeAfterLookup(inputHeaders: Record<string, string>): Promise<void> {
    const encoded: Array<[string, Message]> = [];
    for (const { topic, record } of this.recordForwards) {
      const value = record.value === null ? null : await this.env.serde.encode(topic, record.value);
      encoded.push([topic, this.outputMessage(topic, record, value, inputHeaders)]);
    }
    this.acceptEncoded(encoded);
  }

  private outputMessage(topic: string, record: OutputRecord, value: Buffer | null, inputHeaders: Record<string, string>): Message {
    const partition = record.partition ?? this.placement(topic, record.key);
    return {
      key: record.key, value, headers: record.headers ? { ...inputHeaders, ...record.headers } : inputHeaders,
      ...(partition !== undefined ? { partition } : {}),
    };
  }

  private acceptEncoded(encoded: Array<[string, Message]>): void {
    const sizes: number[] = [];
    for (const [topic, message] of encoded) {
      const size = estimateMessageBytes(message);
      sizes.push(size);
      // A record its topic cannot take fails alone (dead-lettered by on_error), never the transaction.
      const tooLarge = this.limits.tooLarge(topic, message, size);
      // Limits read a while ago may be out of date (a topic's limit raised since): the batch is
      // retried once they are read again (afterFailedTransaction), and only then is this decided.
      if (tooLarge && this.limits.isStale() && this.env.refreshSizeLimits) throw staleLimitsCheck(tooLarge);
      if (tooLarge) throw tooLarge;
    }
    for (let index = 0; index < encoded.length; index++) {
      const [topic, message] = encoded[index] as [string, Message];
      this.addMessage(topic, message, sizes[index]);
    }
    for (const { topic, message } of this.recordRepartitions) this.addMessage(topic, message);
    for (const message of this.recordDeadLetters) this.addMessage(this.env.deadLetterTopic, message);
    this.recordForwards = [];
    this.recordRepartitions = [];
    this.recordDeadLetters = [];
    for (const store of this.stores.values()) store.acceptRecord();
  }

  private discardRecordScope(): void {
    this.recordForwards = [];
    this.recordRepartitions = [];
    this.recordDeadLetters = [];
    for (const store of this.stores.values()) store.discardRecord();
  }

  private addMessage(topic: string, message: Message, size = estimateMessageBytes(message)): void {
    this.pendingBytes += size;
    const list = this.pendingMessages.get(topic);
    if (list) list.push(message);
    else this.pendingMessages.set(topic, [message]);
  }

  /**
   * Where an output record goes when the processor did not say: the partition Kafka's default
   * partitioner gives its key (so key → partition holds for every consumer), unless the processor
   * declared that it preserves partitioning (then the input's partition, as the topology check knows).
   * A null key stays on the input's partition when the output has as many partitions, else Kafka spreads it.
   */
  private placement(topic: string, key: string | null): number | undefined {
    const partitions = this.env.partitionsByTopic.get(topic);
    const sameCount = partitions === this.env.inputPartitions;
    if (this.env.preservesPartitioning && sameCount) return this.partition;
    if (key !== null && partitions !== undefined) return partitionForKey(key, partitions);
    return sameCount ? this.partition : undefined;
  }

  /**
   * One timer tick: the callback runs in a transaction of its own. A callback that returns true has
   * more due than it handled (it reads its store's due() with a limit): it is called again at once,
   * each call its own transaction, so an outage's backlog is released in bounded transactions.
   */
  private async punctuate(callback: (now: number) => Promise<void | boolean> | void | boolean): Promise<void> {
    for (let chunk = 0; chunk < MAX_TIMER_CHUNKS; chunk++) {
      if (this.closed) return;
      let more: void | boolean;
      try {
        more = await callback(Date.now());
        await this.acceptRecordScope({});
      } catch (error) {
        this.discardRecordScope();
        throw error;
      }
      await this.commit();
      if (more !== true) return;
    }
  }

  /** False once the member left its group and rejoined after this task opened: it may commit nothing more. */
  get current(): boolean {
    return (this.env.membershipEpoch?.() ?? 0) === this.epoch;
  }

  /**
   * Commits outputs, dead letters, changelog writes and input offsets as one Kafka transaction
   * (exactly-once), or sends then commits offsets (at-least-once). Committed store state is
   * updated only after Kafka accepted the transaction.
   */
  async commit(): Promise<void> {
    const env = this.env;
    if (!this.current) throw groupFenced(`${env.label} partition ${this.partition}`, new Error('this member rejoined its group after missing a generation; another member may have processed the partition meanwhile'));
    for (const store of this.stores.values()) {
      if (!store.hasPendingWrites()) continue;
      for (const write of store.changelogWrites()) this.addMessage(store.changelogTopic, { key: write.key, value: write.value, partition: this.partition });
    }
    if (this.pendingMessages.size === 0 && this.pendingOffsets.size === 0) return;
    const topicMessages: TopicMessages[] = [...this.pendingMessages].map(([topic, messages]) => ({ topic, messages }));
    const offsets = [...this.pendingOffsets].map(([topic, next]) => ({ topic, partition: this.partition, offset: next.toString() }));
    let sent: SentRequest[] = [];
    const transactionStarted = performance.now();
    try {
      if (env.sharedTransaction) {
        // Joins the host's next transaction (retried, counted and fenced there).
        sent = await env.sharedTransaction.commit({ partition: this.partition, topicMessages, offsets, current: () => this.current });
      } else if (env.exactlyOnce) {
        await retry(async () => {
          const transaction = await this.producer.transaction();
          let ending = false;
          try {
            // The offsets travel beside the records: kafkajs (patched) sends the coordinator's
            // requests one at a time, so AddOffsetsToTxn follows the send's AddPartitionsToTxn and
            // TxnOffsetCommit goes out while the produce request is in flight — one round trip less
            // per commit. Both are settled before the transaction is ended or aborted.
            const [records, offsetsSent] = await Promise.allSettled([
              topicMessages.length > 0 ? sendBounded(transaction, topicMessages, this.limits) : Promise.resolve([]),
              offsets.length > 0
                ? transaction.sendOffsets({
                  consumerGroupId: env.groupId,
                  topics: offsets.map(({ topic, partition, offset }) => ({ topic, partitions: [{ partition, offset }] })),
                })
                : Promise.resolve(),
            ]);
            if (records.status === 'rejected') throw records.reason;
            if (offsetsSent.status === 'rejected') throw offsetsSent.reason;
            sent = records.value;
            maybeCrashBeforeCommit();
            ending = true;
            await transaction.commit();
            maybeLoseCommitAnswer();
          } catch (error) {
            // EndTxn was sent: the broker may have committed. Neither an abort nor a second
            // transaction with the same outputs is safe; the task is reopened from what Kafka holds.
            if (ending) throw commitOutcomeUnknown(`${env.label} partition ${this.partition}`, error);
            await transaction.abort().catch(() => undefined);
            throw error;
          }
        }, {
          retries: 6, initialDelayMs: 50, maxDelayMs: 2000, operation: `${env.label} transaction on partition ${this.partition}`,
          shouldRetry: (error) => !isCommitOutcomeUnknown(error) && isTransientTransactionError(error),
          onRetry: () => env.metrics.recordRetry(env.label, 'transaction'),
        });
      } else {
        if (topicMessages.length > 0) sent = await sendBounded(this.producer, topicMessages, this.limits);
        maybeCrashBeforeCommit();
        if (offsets.length > 0) await env.commitConsumerOffsets(offsets);
      }
    } catch (error) {
      this.abortTransaction();
      if (!env.sharedTransaction) env.metrics.recordTransaction(env.label, 'aborted');
      throw error;
    }
    const transactionSeconds = (performance.now() - transactionStarted) / 1000; // Kafka's part only, as the shared transaction times it
    const checkpoints = nextChangelogOffsets(sent, this.partition);
    for (const store of this.stores.values()) {
      await store.commitTransaction(checkpoints.get(store.changelogTopic)); // without writes: only forgets what it read
    }
    for (const [topic, next] of this.pendingOffsets) this.committed.set(topic, next);
    for (const [topic, messages] of this.pendingMessages) env.metrics.recordOut(env.label, topic, messages.length);
    // Counted per transaction, not per record: the counters move when the records are committed.
    for (const [topic, count] of this.pendingIn) env.metrics.recordIn(env.label, topic, count);
    if (!env.sharedTransaction) env.metrics.recordTransaction(env.label, 'committed', transactionSeconds);
    this.progress.succeeded();
    this.pendingMessages = new Map();
    this.pendingOffsets = new Map();
    this.pendingRecords = 0;
    this.pendingIn = new Map();
    this.pendingBytes = 0;
  }

  /** Drops everything since the last commit; the consumer must seek back to `nextOffset`. */
  abortTransaction(): void {
    this.discardRecordScope();
    for (const store of this.stores.values()) store.abortTransaction();
    this.pendingMessages = new Map();
    this.pendingOffsets = new Map();
    this.pendingRecords = 0;
    this.pendingIn = new Map();
    this.pendingBytes = 0;
  }

  /** The input offset to resume from after an abort. */
  committedOffset(topic: string): bigint {
    return this.committed.get(topic) ?? -1n;
  }

  storeSizes(): Record<string, number> {
    return Object.fromEntries([...this.stores].map(([name, store]) => [name, store.committedSize()]));
  }


  async close(options: { commit: boolean }): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.timers) clearInterval(timer);
    try {
      if (options.commit) await this.commit();
    } catch (error) {
      this.logger.warn({ err: errorMessage(error) }, 'final commit failed; the next owner reprocesses from the last commit');
    }
    this.abortTransaction();
    await Promise.resolve(this.processor?.close?.()).catch(() => undefined);
    PartitionGauges.of(this.env.metrics.registry).forget(this.env.label, this.partition);
    for (const store of this.stores.values()) await store.close().catch(() => undefined);
    for (const release of this.releaseDirectories) release();
    this.releaseDirectories = [];
    if (this.env.exactlyOnce && !this.env.sharedTransaction && this.producer) await this.producer.disconnect().catch(() => undefined);
  }
}

