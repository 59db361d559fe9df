import { setTimeout as sleep } from 'node:timers/promises';
import type { Message, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { errorCode, errorMessage, isRetriable } from '../errors.ts';
import { backoffDelay, DEFAULT_RETRY_POLICY, retry } from '../retry.ts';
import { deadLetterTopic } from '../topology/model.ts';
import { TRANSACTIONAL_PRODUCER_RETRY } from '../kafka/client.ts';
import type { Source, SourceBatch, SourceBatchOutcome, SourceContext, SourceDefinition, SourceRecordFailure } from '../component/component.ts';
import { ConnectorHealthTracker } from './connector-health.ts';
import type { HostOptions } from './host-options.ts';
import { sourceDeadLetterMessage } from './dead-letter.ts';
import { LifelineError } from '../errors.ts';
import { ProgressGuard, isMessageTooLarge, readSizeLimits, recreateProducer, refreshSizeLimits, sendBounded, type SizeLimits } from './transaction-budget.ts';
import { maybeCrashBeforeCommit, maybeLoseCommitAnswer } from './fault-injection.ts';
import { MemoryStoreBackend } from './memory-store-backend.ts';
import { commitOutcomeUnknown, isCommitOutcomeUnknown, isFencingError, isTransientTransactionError } from './transaction-errors.ts';
import { withIngestHeaders } from '../component/record-headers.ts';
import { markersWrittenBy, restoreStores } from './store-restorer.ts';
import { TransactionalStore } from './transactional-store.ts';

/** Where every source's cursor lives, keyed by source label (compacted, one partition). */
export const SOURCE_OFFSETS_TOPIC = '_lifeline.source-offsets';
const CURSOR_PARTITION = 0;

export interface SourceHostOptions extends HostOptions {
  readonly definition: SourceDefinition;
}

/**
 * Hosts one source: `produce()` a batch, commit its records and its cursor in one Kafka
 * transaction (transactional id `<app_id>.<label>.source`; a second process running the same
 * source fences the first), then `acknowledge()` — or `fail()` with the last committed cursor.
 * Records that do not encode with their topic's schema are dead-lettered in the same transaction.
 */
export class SourceHost {
  state: 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' = 'starting';
  private readonly health: ConnectorHealthTracker;
  /** One transactional producer per batch in flight; lane 0 has the id `<app_id>.<label>.source`. */
  private lanes: Producer[] = [];
  private failures = 0;
  private source!: Source;
  private cursorStore!: TransactionalStore;
  private committedCursor: unknown;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly logger: Logger;
  private readonly label: string;
  private limits!: SizeLimits;
  private progress!: ProgressGuard;

  constructor(private readonly options: SourceHostOptions) {
    this.label = options.declaration.label;
    this.logger = options.logger.child({ component: this.label, type: options.declaration.type });
    this.health = new ConnectorHealthTracker(this.label, this.logger, options.metrics);
  }

  /** The topics this source writes, whose size limits bound its transactions. */
  private limitedTopics(): string[] {
    return [...Object.values(this.options.declaration.outputs), deadLetterTopic(this.label), SOURCE_OFFSETS_TOPIC];
  }

  private createProducer(lane: number): Producer {
    const { kafka, topology } = this.options;
    return kafka.producer({
      transactionalId: `${topology.runtime.appId}.${this.label}.source${lane === 0 ? '' : `.${lane}`}`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60_000,
      retry: TRANSACTIONAL_PRODUCER_RETRY,
    });
  }

  async start(): Promise<void> {
    const { kafka, topology, declaration, definition } = this.options;
    const admin = kafka.admin();
    await admin.connect();
    try {
      this.limits = await readSizeLimits(admin, this.limitedTopics());
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    this.progress = new ProgressGuard(this.label, this.logger, this.options.metrics, (stalled, detail) => {
      this.health.set(stalled ? 'degraded' : 'up', stalled ? detail : undefined);
    });
    this.lanes = [this.createProducer(0)];
    // kafkajs sends InitProducerId at the first transaction, not on connect: the restore's marker
    // transaction below fences an older process running this source before the cursor is read.
    await this.lanes[0]?.connect();
    this.cursorStore = new TransactionalStore('cursor', SOURCE_OFFSETS_TOPIC, new MemoryStoreBackend(), undefined);
    await restoreStores({ kafka, writeMarkers: markersWrittenBy(this.lanes[0] as Producer, true), partition: CURSOR_PARTITION, stores: [this.cursorStore], logger: this.logger });
    this.committedCursor = this.cursorStore.get(this.label);
    this.source = definition.create(declaration.config as never);
    // More lanes for a source that commits several batches at once (each is fenced on its first transaction).
    for (let lane = 1; lane < Math.max(1, Math.floor(this.source.batchesInFlight ?? 1)); lane++) {
      const producer = this.createProducer(lane);
      await producer.connect();
      this.lanes.push(producer);
    }
    const context: SourceContext = {
      label: this.label,
      logger: this.logger,
      signal: this.abort.signal,
      connections: topology.connections,
      metricsRegistry: this.options.metrics.registry,
      cursor: this.committedCursor,
      setHealth: (state, detail) => this.health.set(state, detail),
      hasOutput: (output) => declaration.outputs[output] !== undefined,
    };
    await this.source.connect(context);
    this.state = 'running';
    this.options.metrics.setUp(this.label, true);
    this.logger.info({ cursor: this.committedCursor === undefined ? 'none' : 'restored' }, 'source started');
    this.loop = this.run();
  }

  /**
   * Produces batches and commits each on a free lane: one at a time for most sources; up to
   * `batchesInFlight` at once for a source that declares it (a webhook: each delivery's answer waits
   * for its own transaction only). A batch that moves the cursor is always committed alone, after
   * every batch before it.
   */
  private async run(): Promise<void> {
    const free = this.lanes.map((_, lane) => lane);
    const inFlight = new Set<Promise<void>>();
    while (!this.abort.signal.aborted && this.state !== 'failed') {
      if (free.length === 0) {
        await Promise.race(inFlight);
        continue;
      }
      let batch: SourceBatch | undefined;
      try {
        batch = await this.source.produce();
      } catch (error) {
        if (this.abort.signal.aborted) break;
        this.logger.warn({ err: errorMessage(error), code: errorCode(error) }, 'source produce failed');
        this.options.metrics.recordRetry(this.label, 'produce');
        await sleep(backoffDelay(Math.min(this.failures++, 8), DEFAULT_RETRY_POLICY));
        continue;
      }
      if (!batch) continue;
      const moves = batch.cursor !== undefined;
      if (moves) await Promise.allSettled(inFlight);
      const lane = free.shift() as number;
      const work: Promise<void> = this.commitAndSettle(batch, lane).finally(() => {
        free.push(lane);
        inFlight.delete(work);
      });
      inFlight.add(work);
      if (moves || this.lanes.length === 1) await work;
    }
    await Promise.allSettled(inFlight);
  }

  /** Commits one batch on one lane, then acknowledges it — or fails it, with a fresh producer for the lane. */
  private async commitAndSettle(batch: SourceBatch, lane: number): Promise<void> {
    let outcome: SourceBatchOutcome;
    try {
      outcome = await this.commit(batch, lane);
    } catch (error) {
      this.options.metrics.recordTransaction(this.label, 'aborted');
      this.progress.failed(batchPosition(batch), error);
      if (isCommitOutcomeUnknown(error)) await this.rereadCursor(lane);
      // The broker refused a batch the limits read at start let through: read them again, so the
      // retry dead-letters (a webhook: answers 413 with the limit) what no longer fits.
      if (isMessageTooLarge(error)) await this.refreshLimits();
      await this.source.fail(batch, error, this.committedCursor).catch((failError: unknown) => {
        this.logger.error({ err: errorMessage(failError) }, 'source could not handle a failed batch');
      });
      if (isFencingError(error)) {
        if (this.state === 'failed') return;
        this.state = 'failed';
        this.logger.error({ err: errorMessage(error) }, 'another process now runs this source; stopping it here');
        this.options.onFatal(new Error(`source ${this.label} was fenced by another process`));
        return;
      }
      this.logger.warn({ err: errorMessage(error), code: errorCode(error), retriable: isRetriable(error) }, 'source batch not committed');
      this.options.metrics.recordRetry(this.label, 'commit');
      // A failed transaction leaves kafkajs's sequence numbers behind: start the next one on a fresh producer.
      if (!isCommitOutcomeUnknown(error)) await this.replaceProducer(lane);
      await sleep(backoffDelay(Math.min(this.failures++, 8), DEFAULT_RETRY_POLICY));
      return;
    }
    this.failures = 0;
    this.progress.succeeded();
    await this.source.acknowledge(batch, outcome).catch((error: unknown) => {
      this.logger.error({ err: errorMessage(error) }, 'source could not acknowledge a committed batch');
    });
  }

  /**
   * After a commit whose outcome is unknown: a fresh producer (its first transaction fences the old
   * one and settles what it left open), then the cursor as Kafka holds it — so a batch that was
   * committed after all is not produced again, and one that was not is.
   */
  private async rereadCursor(lane: number): Promise<void> {
    try {
      await this.replaceProducer(lane);
      await restoreStores({ kafka: this.options.kafka, writeMarkers: markersWrittenBy(this.lanes[lane] as Producer, true), partition: CURSOR_PARTITION, stores: [this.cursorStore], logger: this.logger });
      this.committedCursor = this.cursorStore.get(this.label);
      this.logger.warn({ code: 'LL_COMMIT_OUTCOME_UNKNOWN', cursor: this.committedCursor === undefined ? 'none' : 'restored' }, 'commit outcome unknown; cursor read again from Kafka');
    } catch (error) {
      // Kafka unreachable: the cursor in memory is the older one, so the batch is produced again (at least once).
      this.logger.warn({ err: errorMessage(error) }, 'could not read the cursor again after a commit of unknown outcome');
    }
  }

  private async refreshLimits(): Promise<void> {
    const admin = this.options.kafka.admin();
    try {
      await admin.connect();
      await refreshSizeLimits(this.limits, admin, this.limitedTopics(), this.logger);
    } catch (error) {
      this.limits.touch();
      this.logger.warn({ err: errorMessage(error) }, 'could not read topic size limits again');
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  private async replaceProducer(lane: number): Promise<void> {
    try {
      this.lanes[lane] = await recreateProducer(this.lanes[lane] as Producer, () => this.createProducer(lane), this.logger);
    } catch (error) {
      // Kafka is down: the next attempt connects (kafkajs connects a disconnected producer on use).
      this.logger.warn({ err: errorMessage(error) }, 'could not recreate the source producer yet');
    }
  }

  private async commit(batch: SourceBatch, lane: number): Promise<SourceBatchOutcome> {
    const { serde, declaration, metrics } = this.options;
    const deadLettered: SourceRecordFailure[] = [];
    const deadLetter = (index: number, error: unknown, message: ReturnType<typeof sourceDeadLetterMessage>): void => {
      add(deadLetterTopic(this.label), message);
      metrics.recordDeadLetter(this.label, errorCode(error));
      deadLettered.push({
        index, code: errorCode(error), message: errorMessage(error),
        ...(error instanceof LifelineError ? { details: error.details } : {}),
      });
    };
    const byTopic = new Map<string, Message[]>();
    const add = (topic: string, message: Message): void => {
      const list = byTopic.get(topic);
      if (list) list.push(message);
      else byTopic.set(topic, [message]);
    };
    const ingestedAt = new Date();
    for (const [index, record] of batch.records.entries()) {
      const headers = withIngestHeaders(record.headers, this.label, ingestedAt);
      const topic = declaration.outputs[record.output];
      if (!topic) {
        // One record's wrong turn costs only that record: it is kept, the rest of the batch goes on.
        const error = new LifelineError('LL_SOURCE_OUTPUT_UNMAPPED', `source ${this.label} emitted to output "${record.output}", which topology.yaml does not map; mapped: ${Object.keys(declaration.outputs).join(', ')}`);
        deadLetter(index, error, sourceDeadLetterMessage({ component: this.label, error, originTopic: '', key: record.key, value: record.value, headers }));
        continue;
      }
      let value: Buffer | null;
      try {
        value = record.value === null ? null : await serde.encode(topic, record.value);
      } catch (error) {
        if (isRetriable(error)) throw error; // an outage (registry, Kafka): the batch is answered 503 / retried, never dead-lettered
        // The record is kept, as JSON, with the reason and what re-encoding it needs: `lifeline dlq replay` does that.
        deadLetter(index, error, sourceDeadLetterMessage({ component: this.label, error, originTopic: topic, key: record.key, value: record.value, headers }));
        continue;
      }
      const message: Message = { key: record.key, value, headers, ...(record.partition !== undefined ? { partition: record.partition } : {}) };
      // Limits read a while ago may be out of date (a topic's limit raised since): read them again before refusing.
      if (this.limits.tooLarge(topic, message) && this.limits.isStale()) await this.refreshLimits();
      const tooLarge = this.limits.tooLarge(topic, message);
      if (tooLarge) {
        this.logger.warn({ topic, code: tooLarge.code, size: tooLarge.details.size, limit: tooLarge.details.limit }, 'record too large for its topic; dead-lettered');
        deadLetter(index, tooLarge, sourceDeadLetterMessage({ component: this.label, error: tooLarge, originTopic: topic, key: record.key, value: record.value, encoded: value, headers }));
        continue;
      }
      add(topic, message);
    }
    if (batch.cursor !== undefined) {
      this.cursorStore.put(this.label, batch.cursor);
      this.cursorStore.acceptRecord();
      for (const write of this.cursorStore.changelogWrites()) add(SOURCE_OFFSETS_TOPIC, { key: write.key, value: write.value, partition: CURSOR_PARTITION });
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    if (topicMessages.length === 0) return { deadLettered };
    const transactionStarted = performance.now();
    try {
      await retry(async () => {
        const transaction = await (this.lanes[lane] as Producer).transaction();
        let ending = false;
        try {
          await sendBounded(transaction, topicMessages, this.limits);
          maybeCrashBeforeCommit();
          ending = true;
          await transaction.commit();
          maybeLoseCommitAnswer();
        } catch (error) {
          // EndTxn was sent: the batch may be in Kafka. Sending it again in a new transaction could
          // write it twice; the host re-reads the committed cursor instead (run()).
          if (ending) throw commitOutcomeUnknown(`source ${this.label}`, error);
          await transaction.abort().catch(() => undefined);
          throw error;
        }
      }, {
        retries: 6, initialDelayMs: 50, maxDelayMs: 2000, operation: `${this.label} source transaction`,
        shouldRetry: (error) => !isCommitOutcomeUnknown(error) && isTransientTransactionError(error), onRetry: () => metrics.recordRetry(this.label, 'transaction'),
      });
    } catch (error) {
      this.cursorStore.abortTransaction();
      throw error;
    }
    await this.cursorStore.commitTransaction();
    if (batch.cursor !== undefined) this.committedCursor = batch.cursor;
    metrics.recordTransaction(this.label, 'committed', (performance.now() - transactionStarted) / 1000);
    for (const [topic, messages] of byTopic) {
      if (topic !== SOURCE_OFFSETS_TOPIC) metrics.recordOut(this.label, topic, messages.length);
    }
    return { deadLettered };
  }

  describe(): { state: string; detail: string } {
    return this.health.describe(this.state, 'source');
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    this.abort.abort();
    await this.loop?.catch(() => undefined);
    await this.source?.close().catch(() => undefined);
    for (const producer of this.lanes) await producer.disconnect().catch(() => undefined);
    this.state = 'stopped';
    this.options.metrics.setUp(this.label, false);
    this.logger.info('source stopped');
  }
}

/** What identifies a batch across retries: its first record's idempotency key (or key) and size. */
function batchPosition(batch: SourceBatch): string {
  const first = batch.records[0];
  const id = first?.headers?.['lifeline.idempotency-key'] ?? first?.key ?? 'empty';
  return `${id}+${batch.records.length}`;
}
