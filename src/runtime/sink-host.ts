import { AsyncLocalStorage } from 'node:async_hooks';
import type { Consumer, EachBatchPayload, Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorCode, errorMessage, isRetriable } from '../errors.ts';
import { CONSUMER_MAX_WAIT_MS } from '../kafka/client.ts';
import { scrubPhiFromText } from '../observe/phi-scrub.ts';
import { backoffDelay, DEFAULT_RETRY_POLICY } from '../retry.ts';
import { deadLetterTopic, phiPathsByTopic } from '../topology/model.ts';
import type { InputRecord, OutputRecord, Sink, SinkContext, SinkDefinition } from '../component/component.ts';
import { ConnectorHealthTracker } from './connector-health.ts';
import { LagMonitor } from './lag-monitor.ts';
import type { HostOptions } from './host-options.ts';
import { deadLetterMessage, headersAsStrings } from './dead-letter.ts';
import { maybeCrashBeforeCommit } from './fault-injection.ts';

export interface SinkHostOptions extends HostOptions {
  readonly definition: SinkDefinition;
  /** Backoff between attempts while the sink's target is down (tests shorten it). */
  readonly retryDelayMs?: { initial: number; max: number };
}

/**
 * Hosts one sink: at-least-once with idempotent writes (effectively once in the target). A batch
 * is decoded (poison → dead letters), written, and only then are dead letters and result events
 * sent and the input offsets committed. While the target is down (a retriable error) the batch is
 * retried with backoff and consumption waits — the backlog shows as consumer lag, nothing is
 * dead-lettered. Permanent per-record failures are dead-lettered and the rest keep flowing.
 *
 * Partitions are written concurrently, up to the sink's `maxInFlight` (kafkajs
 * `partitionsConsumedConcurrently`): each partition is a lane whose batches are written one after
 * another, in offset order, and whose offsets are committed after its own writes only. A lane's
 * forwarded records (result events) are collected per write call (AsyncLocalStorage), so each
 * write's results go out once, with its own batch. The sink is down while any lane is.
 */
export class SinkHost {
  state: 'starting' | 'running' | 'paused' | 'stopping' | 'stopped' | 'failed' = 'starting';
  private readonly health: ConnectorHealthTracker;
  private consumer!: Consumer;
  private producer!: Producer;
  private sink!: Sink;
  /** The forwards of the write call running in this async context (one per lane at a time). */
  private readonly forwardScope = new AsyncLocalStorage<Array<{ topic: string; record: OutputRecord }>>();
  /** Lanes (topic|partition) whose last write attempt failed retriably, with why. */
  private readonly downLanes = new Map<string, string>();
  private inFlight = 1;
  /** Failed attempts in a row per lane (its backoff), and the timers that resume paused lanes. */
  private readonly laneAttempts = new Map<string, number>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private heartbeatIntervalMs = 3_000;
  private readonly abort = new AbortController();
  private readonly logger: Logger;
  readonly label: string;
  readonly groupId: string;
  private readonly phiPathsByTopic: ReadonlyMap<string, readonly string[]>;

  constructor(private readonly options: SinkHostOptions) {
    this.label = options.declaration.label;
    this.groupId = `${options.topology.runtime.appId}.${this.label}`;
    this.logger = options.logger.child({ component: this.label, type: options.declaration.type });
    this.health = new ConnectorHealthTracker(this.label, this.logger, options.metrics);
    this.phiPathsByTopic = phiPathsByTopic(options.topology);
  }

  async start(): Promise<void> {
    const { kafka, topology, declaration, definition } = this.options;
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    this.sink = definition.create(declaration.config as never);
    const context: SinkContext = {
      label: this.label,
      logger: this.logger,
      signal: this.abort.signal,
      connections: topology.connections,
      metricsRegistry: this.options.metrics.registry,
      setHealth: (state, detail) => this.health.set(state, detail),
      hasOutput: (output) => declaration.outputs[output] !== undefined,
      forward: (output, record) => {
        const topic = declaration.outputs[output];
        if (!topic) throw new Error(`sink ${this.label} forwarded to output "${output}", which topology.yaml does not map`);
        const forwards = this.forwardScope.getStore();
        if (!forwards) throw new Error(`sink ${this.label} forwarded to output "${output}" outside of write(); forward from within the write call`);
        forwards.push({ topic, record });
      },
    };
    await this.sink.connect(context);
    this.inFlight = Math.max(1, Math.floor(this.sink.maxInFlight ?? 1));
    await this.startConsumer();
    this.state = 'running';
    this.options.metrics.setUp(this.label, true);
    this.logger.info({ group: this.groupId, inputs: declaration.inputs, maxInFlight: this.inFlight }, 'sink started');
  }

  /** A fresh consumer joins the group (at start, and when an operator resumes the group). */
  private async startConsumer(): Promise<void> {
    const { kafka, declaration } = this.options;
    const sessionTimeout = this.options.sessionTimeoutMs ?? 30_000;
    this.heartbeatIntervalMs = Math.max(500, Math.floor(sessionTimeout / 10));
    this.consumer = kafka.consumer({
      groupId: this.groupId, readUncommitted: false, sessionTimeout, heartbeatInterval: this.heartbeatIntervalMs,
      maxBytesPerPartition: 1024 * 1024,
      maxWaitTimeInMs: CONSUMER_MAX_WAIT_MS, // see processor-host.ts
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.owned = Object.entries(event.payload.memberAssignment).flatMap(([topic, partitions]) => partitions.map((partition) => ({ topic, partition })));
      // Lanes that moved to another process are no longer this host's to report down.
      const owned = new Set(this.owned.map(({ topic, partition }) => `${topic}|${partition}`));
      for (const lane of [...this.downLanes.keys()]) if (!owned.has(lane)) this.laneUp(lane);
      for (const lane of [...this.laneAttempts.keys()]) if (!owned.has(lane)) this.laneAttempts.delete(lane);
      void this.lag.refresh();
    });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...declaration.inputs], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false, eachBatchAutoResolve: false,
      // Up to maxInFlight partitions' batches are handled at once; kafkajs never hands one partition to two.
      partitionsConsumedConcurrently: this.inFlight,
      eachBatch: (payload) => this.eachBatch(payload),
    });
    this.lag.start();
  }

  /** Topic partitions the group gave this host (for the lag monitor). */
  private owned: Array<{ topic: string; partition: number }> = [];
  private lagMonitor: LagMonitor | undefined;
  private get lag(): LagMonitor {
    this.lagMonitor ??= new LagMonitor({
      kafka: this.options.kafka, groupId: this.groupId, metrics: this.options.metrics, logger: this.logger, owned: () => this.owned,
    });
    return this.lagMonitor;
  }

  /**
   * Leaves the group so an operator can reset its offsets (see control-listener.ts). A batch being
   * written finishes or, if the target is down, is left uncommitted: writes are idempotent, so it is
   * written again after the resume.
   */
  async suspendConsumer(): Promise<void> {
    if (this.state !== 'running') return;
    this.state = 'paused';
    await this.consumer.stop().catch(() => undefined);
    await this.consumer.disconnect().catch(() => undefined);
    this.options.metrics.setUp(this.label, false);
    this.logger.warn({ group: this.groupId }, 'sink paused by an operator');
  }

  async resumeConsumer(): Promise<void> {
    if (this.state !== 'paused') return;
    await this.startConsumer();
    this.state = 'running';
    this.options.metrics.setUp(this.label, true);
    this.logger.info({ group: this.groupId }, 'sink resumed');
  }

  private async eachBatch({ batch, heartbeat, isRunning, isStale, resolveOffset, pause }: EachBatchPayload): Promise<void> {
    const { serde, metrics, topology, declaration } = this.options;
    const chunkSize = topology.runtime.commitMaxRecords;
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!isRunning() || isStale()) return;
      const chunk = batch.messages.slice(start, start + chunkSize);
      const deadLetters: Message[] = [];
      const records: InputRecord[] = [];
      const rawByOffset = new Map<string, (typeof chunk)[number]>();
      for (const message of chunk) {
        rawByOffset.set(message.offset, message);
        try {
          const value = message.value === null ? null : (await serde.decode(message.value)).value;
          records.push({
            topic: batch.topic, partition: batch.partition, offset: message.offset, timestamp: Number(message.timestamp),
            key: message.key?.toString('utf8') ?? null, value, headers: headersAsStrings(message.headers), rawValue: message.value,
          });
        } catch (error) {
          if (isRetriable(error)) return this.retryLater(batch.topic, batch.partition, message.offset, error);
          deadLetters.push(this.deadLetter(error, errorMessage(error), batch.topic, batch.partition, message));
        }
      }
      const lane = `${batch.topic}|${batch.partition}`;
      const written = await this.writeOnce(lane, records, heartbeat);
      if ('retry' in written) {
        if (isRunning() && !isStale() && !this.abort.signal.aborted) this.pauseLane(lane, batch.topic, batch.partition, (chunk[0] as (typeof chunk)[number]).offset, pause, written.retry);
        else this.downLanes.delete(lane); // stopping or the partition moved: the next owner writes it again
        return;
      }
      const { failed, forwards } = written;
      for (const failure of failed) {
        const raw = rawByOffset.get(failure.record.offset);
        if (!raw) continue;
        const text = scrubPhiFromText(errorMessage(failure.error), failure.record.value, this.phiPathsByTopic.get(batch.topic) ?? []);
        if (declaration.onError === 'fail') {
          this.state = 'failed';
          this.options.onFatal(new Error(`${this.label}: record ${batch.topic}/${batch.partition}@${raw.offset} failed and on_error is fail: ${text}`));
          return;
        }
        if (declaration.onError === 'continue') continue;
        deadLetters.push(this.deadLetter(failure.error, text, batch.topic, batch.partition, raw));
      }
      const topicMessages = new Map<string, Message[]>();
      if (deadLetters.length > 0) topicMessages.set(deadLetterTopic(this.label), deadLetters);
      for (const { topic, record } of forwards) {
        const list = topicMessages.get(topic) ?? [];
        list.push({ key: record.key, value: record.value === null ? null : await serde.encode(topic, record.value), headers: record.headers ?? {} });
        topicMessages.set(topic, list);
      }
      if (topicMessages.size > 0) await this.producer.sendBatch({ topicMessages: [...topicMessages].map(([topic, messages]) => ({ topic, messages })), acks: -1 });
      maybeCrashBeforeCommit();
      const last = chunk[chunk.length - 1] as (typeof chunk)[number];
      await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
      resolveOffset(last.offset);
      metrics.recordIn(this.label, batch.topic, chunk.length);
      for (const [topic, messages] of topicMessages) metrics.recordOut(this.label, topic, messages.length);
      await heartbeat();
    }
  }

  /**
   * One attempt to write a lane's chunk. The result event forwards of the attempt are collected
   * in its own scope, so they go out once and only with a write that succeeded.
   */
  private async writeOnce(
    lane: string, records: readonly InputRecord[], heartbeat: () => Promise<void>,
  ): Promise<{ failed: readonly { record: InputRecord; error: unknown }[]; forwards: Array<{ topic: string; record: OutputRecord }> } | { retry: unknown }> {
    const forwards: Array<{ topic: string; record: OutputRecord }> = [];
    try {
      const started = performance.now();
      // A write may take longer than the session timeout (a slow Odoo): heartbeat meanwhile, or the
      // group would give the partition away and the write would be repeated forever.
      const { failed } = records.length === 0
        ? { failed: [] }
        : await whileHeartbeating(this.forwardScope.run(forwards, () => this.sink.write(records)), heartbeat, this.heartbeatIntervalMs);
      this.options.metrics.observeProcessing(this.label, (performance.now() - started) / 1000);
      this.laneAttempts.delete(lane);
      this.laneUp(lane);
      return { failed, forwards };
    } catch (error) {
      if (isRetriable(error)) return { retry: error };
      this.laneAttempts.delete(lane);
      this.downLanes.delete(lane);
      // A whole-batch permanent failure: every record in it failed for this reason.
      return { failed: records.map((record) => ({ record, error })), forwards: [] };
    }
  }

  /**
   * The target refused a lane's write for now (down, a lock, a timeout): the lane is rewound to the
   * chunk's first offset and paused for a backoff delay, then fetched and written again. Nothing is
   * dead-lettered and nothing past it is committed; its backlog shows as lag. Other lanes go on.
   */
  private pauseLane(lane: string, topic: string, partition: number, fromOffset: string, pause: () => () => void, error: unknown): void {
    const delays = this.options.retryDelayMs ?? { initial: 500, max: 15_000 };
    const attempt = this.laneAttempts.get(lane) ?? 0;
    this.laneAttempts.set(lane, attempt + 1);
    const detail = `${errorCode(error)}: ${errorMessage(error)}`.slice(0, 300);
    this.downLanes.set(lane, detail);
    this.health.set('down', detail);
    this.options.metrics.recordRetry(this.label, 'write');
    const delay = backoffDelay(Math.min(attempt, 10), { ...DEFAULT_RETRY_POLICY, initialDelayMs: delays.initial, maxDelayMs: delays.max });
    this.logger.warn({ attempt: attempt + 1, delayMs: delay, code: errorCode(error), lane }, 'sink write failed; retrying');
    this.consumer.seek({ topic, partition, offset: fromOffset });
    const resume = pause();
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      resume();
    }, delay);
    this.resumeTimers.add(timer);
  }

  /** A lane wrote (or left): the sink is up again once no lane is down. */
  private laneUp(lane: string): void {
    this.downLanes.delete(lane);
    if (this.downLanes.size === 0 && this.health.state !== 'up') this.health.set('up');
  }

  private retryLater(topic: string, partition: number, offset: string, error: unknown): void {
    this.logger.warn({ err: errorMessage(error), code: errorCode(error) }, 'could not decode (registry unavailable); retrying');
    this.options.metrics.recordRetry(this.label, 'decode');
    this.consumer.seek({ topic, partition, offset });
  }

  private deadLetter(error: unknown, text: string, topic: string, partition: number, message: { key: Buffer | null; value: Buffer | null; offset: string; headers?: Message['headers'] }): Message {
    this.options.metrics.recordDeadLetter(this.label, errorCode(error));
    this.logger.warn({ topic, offset: message.offset, code: errorCode(error), error: text }, 'record failed; dead-lettered');
    return deadLetterMessage({
      component: this.label, error, errorText: text, attempts: 1, origin: { topic, partition, offset: message.offset },
      key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}),
    });
  }

  describe(): { state: string; detail: string } {
    return this.health.describe(this.state, `group ${this.groupId}`);
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopping';
    this.abort.abort();
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
    await this.consumer?.stop().catch(() => undefined);
    await this.consumer?.disconnect().catch(() => undefined);
    await this.lagMonitor?.stop();
    await this.sink?.close().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    this.state = 'stopped';
    this.options.metrics.setUp(this.label, false);
    this.logger.info('sink stopped');
  }
}

/** Awaits `work`, calling `heartbeat` every `intervalMs` until it settles. */
async function whileHeartbeating<T>(work: Promise<T>, heartbeat: () => Promise<void>, intervalMs: number): Promise<T> {
  const timer = setInterval(() => {
    heartbeat().catch(() => undefined);
  }, intervalMs);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
