import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { ensureTopics } from '../kafka/topic-admin.ts';
import { STATUS_TOPIC, type ProcessStatus } from '../runtime/status-publisher.ts';

/** Rate samples kept per component for the node charts: an hour at the default 5 s period. */
const HISTORY_POINTS = 720;
/** Processes the console lists at most (a compacted topic of dead instances must not grow memory without end). */
const MAX_INSTANCES = 500;

export interface RateSample {
  readonly at: number;
  readonly rateIn: number;
  readonly rateOut: number;
}

/**
 * Tails `_lifeline.status` from the beginning (it is compacted: the latest status of every
 * process) and keeps the latest status per instance, so a restarted console shows the same fleet.
 * Also keeps a bounded history of each component's rates for the node detail charts.
 */
export class StatusWatcher {
  private consumer: Consumer | undefined;
  private readonly latest = new Map<string, ProcessStatus>();
  private readonly history = new Map<string, RateSample[]>();
  private caughtUp: Promise<void> | undefined;

  constructor(private readonly kafka: Kafka, private readonly logger: Logger) {}

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    let ends: Map<number, bigint>;
    try {
      if (!(await admin.listTopics()).includes(STATUS_TOPIC)) {
        await ensureTopics(admin, [{ name: STATUS_TOPIC, partitions: 1, cleanupPolicy: 'compact' }]);
      }
      ends = new Map((await admin.fetchTopicOffsets(STATUS_TOPIC)).map((entry) => [entry.partition, BigInt(entry.high)]));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
    const consumer = this.kafka.consumer({ groupId: `_lifeline.console.${randomUUID()}`, maxWaitTimeInMs: 250, sessionTimeout: 10_000, heartbeatInterval: 1000 });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: STATUS_TOPIC, fromBeginning: true });
    // Disconnecting a consumer in the middle of its first join leaves a broker connection open: start() waits for the join.
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    let markCaughtUp!: () => void;
    this.caughtUp = new Promise((resolve) => { markCaughtUp = resolve; });
    const pending = new Set([...ends].filter(([, end]) => end > 0n).map(([partition]) => partition));
    if (pending.size === 0) markCaughtUp();
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition }) => {
        this.apply(message.key?.toString('utf8') ?? '', message.value);
        const end = ends.get(partition);
        if (end !== undefined && BigInt(message.offset) + 1n >= end && pending.delete(partition) && pending.size === 0) markCaughtUp();
      },
    });
    await Promise.race([joined, new Promise((resolve) => setTimeout(resolve, 30_000).unref())]);
    // Compaction or transaction markers can leave the end unreachable by records: never wait long.
    await Promise.race([this.caughtUp, new Promise((resolve) => setTimeout(resolve, 3000).unref())]);
  }

  private apply(instance: string, value: Buffer | null): void {
    if (!instance) return;
    if (value === null) {
      this.latest.delete(instance);
      return;
    }
    let status: ProcessStatus;
    try {
      status = JSON.parse(value.toString('utf8')) as ProcessStatus;
    } catch (error) {
      this.logger.warn({ instance, err: errorMessage(error) }, 'a process status is not JSON; ignored');
      return;
    }
    this.latest.delete(instance);
    this.latest.set(instance, status);
    while (this.latest.size > MAX_INSTANCES) {
      const oldest = this.latest.keys().next().value;
      if (oldest === undefined) break;
      this.latest.delete(oldest);
    }
    for (const [label, component] of Object.entries(status.components ?? {})) {
      const key = `${status.app_id}\u0000${label}\u0000${instance}`;
      const samples = this.history.get(key) ?? [];
      samples.push({ at: status.at, rateIn: component.rate_in, rateOut: component.rate_out });
      if (samples.length > HISTORY_POINTS) samples.splice(0, samples.length - HISTORY_POINTS);
      this.history.set(key, samples);
    }
    if (this.history.size > MAX_INSTANCES * 50) this.history.clear();
  }

  /** Latest status of every process of an application. */
  statuses(appId: string): ProcessStatus[] {
    return [...this.latest.values()].filter((status) => status.app_id === appId);
  }

  /** Rate samples of a component, summed over the processes hosting it, per publishing time bucket. */
  rateHistory(appId: string, label: string, sinceMs: number): RateSample[] {
    const buckets = new Map<number, { rateIn: number; rateOut: number }>();
    for (const [key, samples] of this.history) {
      if (!key.startsWith(`${appId}\u0000${label}\u0000`)) continue;
      for (const sample of samples) {
        if (sample.at < sinceMs) continue;
        const bucket = Math.floor(sample.at / 5000) * 5000;
        const sum = buckets.get(bucket) ?? { rateIn: 0, rateOut: 0 };
        sum.rateIn += sample.rateIn;
        sum.rateOut += sample.rateOut;
        buckets.set(bucket, sum);
      }
    }
    return [...buckets].sort(([a], [b]) => a - b).map(([at, sum]) => ({ at, rateIn: Math.round(sum.rateIn * 100) / 100, rateOut: Math.round(sum.rateOut * 100) / 100 }));
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
