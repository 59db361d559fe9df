import kafkajs, { type Admin, type Message, type Producer, type RecordMetadata, type TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { Counter as CounterClass } from 'prom-client';
import { LifelineError, errorCode, errorMessage } from '../errors.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';
import { retry } from '../retry.ts';

const { ConfigResourceTypes } = kafkajs; // not an ESM named export of the CommonJS package

/**
 * Size-safe transactions. Kafka refuses a record batch (one partition's share of a produce
 * request) larger than the topic's `max.message.bytes`, and a request larger than the broker's
 * `socket.request.max.bytes`; kafkajs sends one batch per partition per request and never splits.
 * So the hosts bound what they send by bytes as well as by records: a transaction's messages go
 * out in as many requests as needed (one transaction may hold many), each below the limits read
 * from the broker at start; a record too large for its topic on its own is dead-lettered with
 * LL_RECORD_TOO_LARGE instead of failing its batch for ever.
 */

/** The v2 record batch header. */
export const RECORD_BATCH_OVERHEAD = 61;
/** Upper bound of a record's own framing (length, attributes, deltas, key/value lengths, header count as varints). */
const RECORD_OVERHEAD = 40;
/** Upper bound of one header's framing (two varint lengths). */
const HEADER_OVERHEAD = 10;
/** Requests are packed to this share of a limit: the estimate is an upper bound, this is room for error. */
const PACKING_SHARE = 0.9;
/** What Kafka uses when nothing says otherwise (message.max.bytes 1048588). */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;
/** A record found too large with limits older than this has them read again first (a raised limit is seen). */
export const LIMITS_RECHECK_MS = 30_000;
/** kafkajs's own request framing is small; keep every request well under socket.request.max.bytes. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;

function byteLength(value: Buffer | string | null | undefined): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/** An upper bound of the bytes a message takes inside a record batch (uncompressed). */
export function estimateMessageBytes(message: Message): number {
  let size = RECORD_OVERHEAD + byteLength(message.key as Buffer | string | null) + byteLength(message.value as Buffer | string | null);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    const values = Array.isArray(value) ? value : [value];
    for (const one of values) size += HEADER_OVERHEAD + Buffer.byteLength(name) + byteLength(one as Buffer | string | undefined);
  }
  return size;
}

/** The byte limits a host sends under (read at start; read again when the broker refuses a record as too large). */
export class SizeLimits {
  private byTopic: ReadonlyMap<string, number>;
  private broker: number;
  private request: number;
  private readAt = Date.now();

  constructor(byTopic: ReadonlyMap<string, number>, brokerMessageBytes: number, requestBytes: number) {
    this.byTopic = byTopic;
    this.broker = brokerMessageBytes;
    this.request = requestBytes;
  }

  /**
   * Whether a record found too large should first have the limits read again: they are older than
   * `maxAgeMs` (a topic's limit may have been raised since; without this a raised limit would be
   * seen only after a restart).
   */
  isStale(maxAgeMs = LIMITS_RECHECK_MS): boolean {
    return Date.now() - this.readAt > maxAgeMs;
  }

  /** The broker's message.max.bytes: the limit of a topic that sets none. */
  get brokerMessageBytes(): number {
    return this.broker;
  }

  /** Bytes of one produce request at most. */
  get requestBytes(): number {
    return this.request;
  }

  /** Takes the limits read again from the broker (a topic's max.message.bytes changed while running). */
  /** The limits were just checked (or could not be): the next recheck is LIMITS_RECHECK_MS away. */
  touch(): void {
    this.readAt = Date.now();
  }

  update(fresh: SizeLimits): void {
    this.byTopic = fresh.byTopic;
    this.broker = fresh.broker;
    this.request = fresh.request;
    this.readAt = fresh.readAt;
  }

  /** The largest record batch the topic accepts. */
  limitFor(topic: string): number {
    return this.byTopic.get(topic) ?? this.broker;
  }

  /** Why a message cannot be sent to the topic at all, or undefined when it fits (`messageBytes`: its estimate, when known). */
  tooLarge(topic: string, message: Message, messageBytes = estimateMessageBytes(message)): LifelineError | undefined {
    const size = messageBytes + RECORD_BATCH_OVERHEAD;
    const limit = this.limitFor(topic);
    if (size <= limit && size <= this.request) return undefined;
    return recordTooLarge(topic, size, Math.min(limit, this.request));
  }

  /** Known limits only (a test or a tool without a broker connection). */
  static fixed(limit: number, byTopic: ReadonlyMap<string, number> = new Map()): SizeLimits {
    return new SizeLimits(byTopic, limit, Math.min(MAX_REQUEST_BYTES, Math.max(limit, ...byTopic.values())));
  }
}

/**
 * A record looks too large by limits older than LIMITS_RECHECK_MS. Thrown (retriable) from a
 * processor's record scope, which cannot wait: the batch is retried after the host read the limits
 * again (isMessageTooLarge answers true), and only then is the record dead-lettered or sent.
 */
export function staleLimitsCheck(tooLarge: LifelineError): LifelineError {
  return new LifelineError('LL_RECORD_TOO_LARGE', `${tooLarge.message}, by limits read over ${LIMITS_RECHECK_MS / 1000} s ago: reading them again first`, {
    retriable: true, details: { ...tooLarge.details, stale_limits: true },
  });
}

/**
 * The broker refused a record batch as too large (MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE):
 * the limits the host read at start are out of date (a topic's max.message.bytes was lowered).
 */
export function isMessageTooLarge(error: unknown): boolean {
  if (error instanceof LifelineError && error.details.stale_limits === true) return true;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type;
    if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') return true;
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return false;
}

/**
 * Reads the limits again after the broker refused a batch as too large, so the next attempt
 * dead-letters (or, at a webhook, answers 413 with the limit) what no longer fits instead of
 * sending it again. Best effort: when the broker cannot be asked, the old limits stay.
 */
export async function refreshSizeLimits(limits: SizeLimits, admin: Admin, topics: readonly string[], logger: Logger): Promise<void> {
  try {
    const fresh = await readSizeLimitsOnce(admin, topics);
    limits.update(fresh);
    logger.info({ topics: topics.map((topic) => `${topic}=${limits.limitFor(topic)}`) }, 'topic size limits read again');
  } catch (error) {
    limits.touch(); // not again at once: the next record found too large waits for the next recheck
    logger.warn({ err: errorMessage(error) }, 'could not read topic size limits again; keeping the ones read before');
  }
}

export function recordTooLarge(topic: string, size: number, limit: number): LifelineError {
  return new LifelineError('LL_RECORD_TOO_LARGE', `record of about ${size} bytes is larger than ${topic} accepts (max.message.bytes ${limit})`, { details: { topic, size, limit } });
}

/**
 * Reads `max.message.bytes` of each topic and the broker's `message.max.bytes` /
 * `socket.request.max.bytes` (admin describeConfigs), once when a host starts.
 */
export async function readSizeLimits(admin: Admin, topics: readonly string[]): Promise<SizeLimits> {
  // A topic created a moment ago can be unknown to the broker's metadata for a moment (retriable).
  return retry(() => readSizeLimitsOnce(admin, topics), { operation: 'reading topic size limits', retries: 8, initialDelayMs: 100, maxDelayMs: 2000 });
}

async function readSizeLimitsOnce(admin: Admin, topics: readonly string[]): Promise<SizeLimits> {
  let brokerMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;
  let requestBytes = MAX_REQUEST_BYTES;
  const cluster = await admin.describeCluster();
  const broker = cluster.brokers[0];
  if (broker) {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: String(broker.nodeId), configNames: ['message.max.bytes', 'socket.request.max.bytes'] }],
    });
    for (const entry of described.resources[0]?.configEntries ?? []) {
      const value = Number(entry.configValue);
      if (!Number.isFinite(value) || value <= 0) continue;
      if (entry.configName === 'message.max.bytes') brokerMessageBytes = value;
      if (entry.configName === 'socket.request.max.bytes') requestBytes = Math.min(requestBytes, Math.floor(value / 2));
    }
  }
  const byTopic = new Map<string, number>();
  const unique = [...new Set(topics)];
  if (unique.length > 0) {
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: unique.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: ['max.message.bytes'] })),
    });
    for (const resource of described.resources) {
      const entry = resource.configEntries.find((candidate) => candidate.configName === 'max.message.bytes');
      const value = Number(entry?.configValue);
      if (Number.isFinite(value) && value > 0) byTopic.set(resource.resourceName, value);
    }
  }
  return new SizeLimits(byTopic, brokerMessageBytes, requestBytes);
}

/**
 * Splits a transaction's messages into produce requests: within each request every topic's share
 * (hence every partition's record batch) stays under the topic's limit and the whole under the
 * request limit. Order per topic is kept. A message that does not fit alone goes in a request of
 * its own (callers dead-letter those first with `tooLarge`).
 */
export function splitIntoRequests(topicMessages: readonly TopicMessages[], limits: SizeLimits): TopicMessages[][] {
  const requests: TopicMessages[][] = [];
  let current = new Map<string, Message[]>();
  let currentTopicBytes = new Map<string, number>();
  let currentBytes = 0;
  const flush = (): void => {
    if (current.size === 0) return;
    requests.push([...current].map(([topic, messages]) => ({ topic, messages })));
    current = new Map();
    currentTopicBytes = new Map();
    currentBytes = 0;
  };
  const requestBudget = Math.floor(limits.requestBytes * PACKING_SHARE);
  for (const { topic, messages } of topicMessages) {
    const topicBudget = Math.floor(limits.limitFor(topic) * PACKING_SHARE) - RECORD_BATCH_OVERHEAD;
    for (const message of messages) {
      const size = estimateMessageBytes(message);
      const topicBytes = currentTopicBytes.get(topic) ?? 0;
      if ((topicBytes > 0 && topicBytes + size > topicBudget) || (currentBytes > 0 && currentBytes + size > requestBudget)) flush();
      const list = current.get(topic);
      if (list) list.push(message);
      else current.set(topic, [message]);
      currentTopicBytes.set(topic, (currentTopicBytes.get(topic) ?? 0) + size);
      currentBytes += size + RECORD_BATCH_OVERHEAD;
    }
  }
  flush();
  return requests;
}

/** Sends a transaction's messages in size-bounded requests (see splitIntoRequests). */
export async function sendBounded(sender: Pick<Producer, 'sendBatch'>, topicMessages: readonly TopicMessages[], limits: SizeLimits): Promise<SentRequest[]> {
  const sent: SentRequest[] = [];
  for (const request of splitIntoRequests(topicMessages, limits)) sent.push({ request, results: await sender.sendBatch({ topicMessages: request }) });
  return sent;
}

/** One produce request and the broker's answer (base offsets per partition): store checkpoints are computed from them. */
export interface SentRequest {
  readonly request: readonly TopicMessages[];
  readonly results: readonly RecordMetadata[];
}

/** Bytes a message adds to an open transaction (for commit-by-bytes decisions). */
export function transactionBytes(messages: Iterable<Message>): number {
  let total = 0;
  for (const message of messages) total += estimateMessageBytes(message);
  return total;
}

/**
 * Replaces a transactional producer after a failed or aborted transaction. kafkajs keeps the
 * idempotent sequence numbers of a failed send, so the next transaction on the same producer can
 * fail with OUT_OF_ORDER_SEQUENCE_NUMBER for ever; a new producer with the same transactional id
 * starts clean. Fencing stays safe: the id is the same, so InitProducerId aborts our own open
 * transaction and bumps the epoch exactly as a restart would. Never call it after a fencing
 * error (another owner holds the id now; re-initialising would fence that owner).
 */
export async function recreateProducer(old: Producer, create: () => Producer, logger: Logger): Promise<Producer> {
  await old.disconnect().catch(() => undefined);
  const fresh = create();
  await fresh.connect();
  logger.info('transactional producer recreated after a failed transaction');
  return fresh;
}

/**
 * Watches commits of one unit of work (a source, a processor partition) for a batch that fails
 * twice from the same position. Then it asks the caller to split the batch (halving what goes in
 * one transaction, down to one record or delivery), and reports the stall — health, metric
 * `lifeline_stalled_batches_total`, an error log — until a commit succeeds.
 */
export class ProgressGuard {
  private position: string | undefined;
  private failures = 0;
  private shrink = 1;
  stalled = false;
  /** What the last failure was (its code), while stalled: said in health details. */
  cause: string | undefined;

  constructor(
    private readonly label: string,
    private readonly logger: Logger,
    private readonly metrics: RuntimeMetrics,
    private readonly onStall: (stalled: boolean, detail: string) => void,
  ) {}

  /** The divisor to apply to the configured batch size (1 = unchanged). */
  get divisor(): number {
    return this.shrink;
  }

  /** A commit starting at `position` failed. */
  failed(position: string, error: unknown): void {
    if (position === this.position) this.failures++;
    else {
      this.position = position;
      this.failures = 1;
    }
    if (this.failures < 2) return;
    this.shrink = Math.min(this.shrink * 2, 1 << 20);
    const detail = `no progress: the batch at ${position} failed ${this.failures} times (${errorCode(error)}: ${errorMessage(error).slice(0, 200)}); splitting it`;
    if (!this.stalled) stalledCounter(this.metrics).inc({ component: this.label });
    this.stalled = true;
    this.cause = errorCode(error);
    this.logger.error({ code: 'LL_NO_PROGRESS', position, failures: this.failures, err: errorMessage(error), cause: errorCode(error) }, 'batch failed twice without progress; splitting it');
    this.onStall(true, detail);
  }

  /** A commit succeeded: progress. */
  succeeded(): void {
    const wasStalled = this.stalled;
    this.position = undefined;
    this.failures = 0;
    this.stalled = false;
    this.cause = undefined;
    // Grow back gradually: the records after the bad spot are usually fine.
    if (this.shrink > 1) this.shrink = Math.max(1, Math.floor(this.shrink / 2));
    if (wasStalled) this.onStall(false, 'progress again');
  }
}

type StalledCounter = { inc(labels: { component: string }): void };

function stalledCounter(metrics: RuntimeMetrics): StalledCounter {
  const name = 'lifeline_stalled_batches_total';
  const registry = metrics.registry;
  const existing = registry.getSingleMetric(name) as StalledCounter | undefined;
  if (existing) return existing;
  return new CounterClass({ name, help: 'Batches that failed twice from the same position (no progress); the host split them and reported itself degraded.', labelNames: ['component'], registers: [registry] });
}

