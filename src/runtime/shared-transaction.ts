import type { Kafka, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { TRANSACTIONAL_PRODUCER_RETRY } from '../kafka/client.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';
import { retry } from '../retry.ts';
import { maybeCrashBeforeCommit, maybeLoseCommitAnswer } from './fault-injection.ts';
import { commitOutcomeUnknown, groupFenced, isCommitOutcomeUnknown, isGroupFenced, isTransientTransactionError, transactionErrorType } from './transaction-errors.ts';
import { recreateProducer, sendBounded, type SentRequest, type SizeLimits } from './transaction-budget.ts';

/** What one task hands to the next transaction: its records (outputs, dead letters, changelog) and its input offsets. */
export interface TransactionContribution {
  readonly partition: number;
  readonly topicMessages: readonly TopicMessages[];
  readonly offsets: ReadonlyArray<{ topic: string; partition: number; offset: string }>;
  /** False once the task that made it was superseded (its member rejoined after missing a generation). */
  readonly current?: () => boolean;
}

/** The consumer group member a transaction's offsets are committed for (KIP-447). */
export interface GroupGeneration {
  readonly generationId: number;
  readonly memberId: string;
}

interface Waiting {
  readonly contribution: TransactionContribution;
  resolve(sent: SentRequest[]): void;
  reject(error: unknown): void;
}

/**
 * A member that dies or freezes with a transaction open is not fenced by the partition's next owner
 * (another transactional id): its transaction holds back read_committed readers of every partition it
 * wrote — and the next owner's restore — until the broker aborts it, at most this time-out plus the
 * broker's check interval (`transaction.abort.timed.out.transaction.cleanup.interval.ms`, 10 s).
 * Kafka Streams uses 10 s under exactly-once v2 for the same reason. A transaction's clock starts at
 * its first AddPartitionsToTxn, when the commit begins, so processing time does not count.
 */
const TRANSACTION_TIMEOUT_MS = 10_000;

/** The group coordinator refused the offsets: this member no longer holds the generation they were read in. */
const GROUP_FENCING_ERRORS = new Set(['ILLEGAL_GENERATION', 'UNKNOWN_MEMBER_ID', 'FENCED_INSTANCE_ID', 'REBALANCE_IN_PROGRESS']);

/**
 * One transactional producer for every task of a processor in this process (`runtime.transactions:
 * per_process`), as KIP-447 allows: a task's commit joins the next transaction, and the tasks that
 * commit while one transaction is in flight share the one after it (group commit). The offsets carry
 * the member's group generation, so the group coordinator refuses them once a rebalance gave the
 * partitions to another member; that, not a transactional id per partition, fences a zombie.
 * The transactional id is stable per process slot (`<app>.<label>.<host>.<slot>`): a restarted
 * process fences its previous incarnation's open transaction at once instead of after its timeout.
 */
export class SharedTransaction {
  private producer: Producer | undefined;
  private waiting: Waiting[] = [];
  private committing = false;
  private generation: GroupGeneration | undefined;
  private stopped = false;
  /** Batches being processed now (between batchStarted and batchEnded): the next transaction waits for their commits. */
  private activeBatches = 0;
  private wake: (() => void) | undefined;

  constructor(private readonly options: {
    readonly kafka: Kafka;
    readonly transactionalId: string;
    readonly groupId: string;
    readonly label: string;
    readonly limits: () => SizeLimits;
    readonly metrics: RuntimeMetrics;
    readonly logger: Logger;
    /** Whether this member still owns an input partition (a revoked task's late commit is refused). */
    readonly owns: (partition: number) => boolean;
    /** Longest a transaction waits for the other batches in progress to join it (default 20 ms). */
    readonly gatherMs?: number;
  }) {}

  /** A batch began (its task's lock held): the next transaction waits (up to gatherMs) for its commit. */
  batchStarted(): void {
    this.activeBatches++;
  }

  /** The batch ended (committed, failed or stopped): a transaction waiting for it goes. */
  batchEnded(): void {
    this.activeBatches = Math.max(0, this.activeBatches - 1);
    this.wake?.();
  }

  /**
   * Until every batch in progress has handed in its commit, or gatherMs passed: the batches of one
   * fetch (one per partition, processed side by side) then share one transaction, not one each.
   */
  private async gather(): Promise<void> {
    const deadline = Date.now() + (this.options.gatherMs ?? 20);
    while (this.waiting.length < this.activeBatches && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
      this.wake = undefined;
    }
  }

  get transactionalId(): string {
    return this.options.transactionalId;
  }

  /** Connects the producer and ends (aborts) whatever a previous holder of the transactional id left open. */
  async start(): Promise<void> {
    const producer = this.createProducer();
    await producer.connect();
    await (await producer.transaction()).abort();
    this.producer = producer;
  }

  /** The generation the member joined in; offsets committed from now on carry it. */
  setGeneration(generation: GroupGeneration): void {
    this.generation = generation;
  }

  /** Joins `contribution` to the next transaction; resolves with the produce requests sent once it committed. */
  commit(contribution: TransactionContribution): Promise<SentRequest[]> {
    const joined = new Promise<SentRequest[]>((resolve, reject) => this.waiting.push({ contribution, resolve, reject }));
    this.wake?.();
    void this.drain();
    return joined;
  }

  private async drain(): Promise<void> {
    if (this.committing) return;
    this.committing = true;
    try {
      while (this.waiting.length > 0) {
        await this.gather();
        const batch = this.waiting;
        this.waiting = [];
        // The generation the contributions are checked against now is the one their offsets carry: a
        // rejoin after this point makes the coordinator refuse them, not accept them as the new member's.
        const generation = this.generation;
        const owned = batch.filter((entry) => this.options.owns(entry.contribution.partition) && (entry.contribution.current?.() ?? true));
        for (const entry of batch) {
          if (!owned.includes(entry)) entry.reject(groupFenced(`${this.options.label} partition ${entry.contribution.partition}`, new Error('the partition was revoked, or its task superseded, before its commit')));
        }
        if (owned.length === 0) continue;
        try {
          const sent = await this.run(owned.map((entry) => entry.contribution), generation);
          for (const entry of owned) entry.resolve(sent);
        } catch (error) {
          for (const entry of owned) entry.reject(error);
        }
      }
    } finally {
      this.committing = false;
    }
  }

  /** One transaction for the contributions: records, then every partition's offsets with the member's generation. */
  private async run(contributions: readonly TransactionContribution[], generation: GroupGeneration | undefined): Promise<SentRequest[]> {
    const { label, groupId, metrics } = this.options;
    const byTopic = new Map<string, TopicMessages['messages']>();
    for (const contribution of contributions) {
      for (const { topic, messages } of contribution.topicMessages) {
        const list = byTopic.get(topic);
        if (list) list.push(...messages);
        else byTopic.set(topic, [...messages]);
      }
    }
    const topicMessages: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    const offsetsByTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const contribution of contributions) {
      for (const { topic, partition, offset } of contribution.offsets) {
        const list = offsetsByTopic.get(topic) ?? [];
        list.push({ partition, offset });
        offsetsByTopic.set(topic, list);
      }
    }
    const where = `${label} transaction of partition(s) ${contributions.map((contribution) => contribution.partition).join(',')}`;
    const started = performance.now();
    try {
      const sent = await retry(async () => {
        const producer = await this.connectedProducer();
        const transaction = await producer.transaction();
        let ending = false;
        try {
          const [records, offsetsSent] = await Promise.allSettled([
            topicMessages.length > 0 ? sendBounded(transaction, topicMessages, this.options.limits()) : Promise.resolve([]),
            offsetsByTopic.size > 0
              ? transaction.sendOffsets({
                consumerGroupId: groupId,
                ...(generation ? { consumerGroupMetadata: generation } : {}),
                topics: [...offsetsByTopic].map(([topic, partitions]) => ({ topic, partitions })),
              })
              : Promise.resolve(),
          ]);
          if (records.status === 'rejected') throw records.reason;
          if (offsetsSent.status === 'rejected') {
            const type = transactionErrorType(offsetsSent.reason);
            throw type !== undefined && GROUP_FENCING_ERRORS.has(type) ? groupFenced(where, offsetsSent.reason) : offsetsSent.reason;
          }
          maybeCrashBeforeCommit();
          ending = true;
          await transaction.commit();
          maybeLoseCommitAnswer();
          return records.value;
        } catch (error) {
          if (ending) throw commitOutcomeUnknown(where, error);
          await transaction.abort().catch(() => undefined);
          throw error;
        }
      }, {
        retries: 6, initialDelayMs: 50, maxDelayMs: 2000, operation: where,
        shouldRetry: (error) => !isCommitOutcomeUnknown(error) && !isGroupFenced(error) && isTransientTransactionError(error),
        onRetry: () => metrics.recordRetry(label, 'transaction'),
      });
      metrics.recordTransaction(label, 'committed', (performance.now() - started) / 1000);
      return sent;
    } catch (error) {
      metrics.recordTransaction(label, 'aborted');
      // kafkajs keeps sequence numbers of a failed transaction: the next one gets a fresh producer
      // (the same transactional id, so nothing of the failed one can still commit).
      await this.replaceProducer();
      throw error;
    }
  }

  private async connectedProducer(): Promise<Producer> {
    if (!this.producer) {
      const producer = this.createProducer();
      await producer.connect();
      this.producer = producer;
    }
    return this.producer;
  }

  private async replaceProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    if (!old || this.stopped) return;
    try {
      this.producer = await recreateProducer(old, () => this.createProducer(), this.options.logger);
    } catch (error) {
      this.options.logger.warn({ err: errorMessage(error) }, 'could not recreate the shared transactional producer yet; the next commit connects it');
    }
  }

  private createProducer(): Producer {
    return this.options.kafka.producer({
      transactionalId: this.options.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: TRANSACTION_TIMEOUT_MS,
      retry: TRANSACTIONAL_PRODUCER_RETRY,
    });
  }

  /** After the tasks closed (their last commits done): no more transactions; the producer disconnects. */
  async stop(): Promise<void> {
    this.stopped = true;
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }
}
