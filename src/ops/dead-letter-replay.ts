import type { Admin, IHeaders, Kafka, Message } from 'kafkajs';
import { ensureTopics } from '../kafka/topic-admin.ts';
import { TRANSACTIONAL_PRODUCER_RETRY, fetchTopicOffsetsSerially } from '../kafka/client.ts';
import { readTopicRanges, wholeTopicRanges, type PartitionRange } from '../kafka/topic-reader.ts';
import { LifelineError } from '../errors.ts';
import { DEAD_LETTER_HEADERS, avroValueFromJson, headersAsStrings } from '../runtime/dead-letter.ts';
import { DLQ_REPLAYED_TOPIC } from './ops-topics.ts';

/** Headers a replayed record carries besides its own (idempotency key, correlation id, trace context…). */
export const REPLAY_HEADERS = {
  id: 'lifeline.replay.id',
  count: 'lifeline.replay.count',
  from: 'lifeline.replay.from',
  at: 'lifeline.replay.at',
  by: 'lifeline.replay.by',
} as const;

export interface DeadLetterFilter {
  /** Error classes (lifeline.error.class, e.g. LL_ODOO_USER_ERROR); any when empty. */
  readonly errorClasses?: readonly string[];
  /** Failed at or after (epoch ms). */
  readonly since?: number;
  /** Failed at or before (epoch ms). */
  readonly until?: number;
  readonly key?: string;
  readonly originTopic?: string;
}

export interface DeadLetter {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** `ops.dlq.x.v1/0@12`: the dead letter's own position, which identifies it. */
  readonly position: string;
  readonly failedAt: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Readonly<Record<string, string>>;
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly component: string;
  readonly attempts: number;
  readonly origin: { readonly topic: string; readonly partition: number; readonly offset: string };
  /** How often the record had been replayed before it failed this time. */
  readonly replayCount: number;
}

/** A dead letter that was replayed, from the compacted marker topic. */
export interface ReplayMarker {
  readonly replay_id: string;
  readonly at: number;
  readonly by: string;
  readonly origin_topic: string;
}

export function deadLetterPosition(topic: string, partition: number, offset: string): string {
  return `${topic}/${partition}@${offset}`;
}

/** Reads a dead-letter topic (up to `bounds`, per partition end offsets, when given) and keeps what passes the filter. */
export async function readDeadLetters(kafka: Kafka, admin: Admin, topic: string, filter: DeadLetterFilter = {}, bounds?: ReadonlyMap<number, bigint>): Promise<DeadLetter[]> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) return [];
  const ranges: PartitionRange[] = (await wholeTopicRanges(admin, topic)).map((range) => {
    const bound = bounds?.get(range.partition);
    return bound === undefined || range.to === undefined || bound > range.to ? range : { ...range, to: bound };
  });
  const letters: DeadLetter[] = [];
  await readTopicRanges(kafka, topic, ranges, (message, partition) => {
    const letter = toDeadLetter(topic, partition, message.offset, Number(message.timestamp), message.key, message.value, message.headers);
    if (passes(letter, filter)) letters.push(letter);
  });
  return letters.sort((a, b) => a.partition - b.partition || Number(BigInt(a.offset) - BigInt(b.offset)));
}

/** End offsets of a dead-letter topic now: a plan replays what existed when it was made, not what failed since. */
export async function deadLetterBounds(admin: Admin, topic: string): Promise<Map<number, bigint>> {
  const topics = await admin.listTopics();
  if (!topics.includes(topic)) return new Map();
  return new Map((await fetchTopicOffsetsSerially(admin, topic)).map((entry) => [entry.partition, BigInt(entry.high)]));
}

function toDeadLetter(topic: string, partition: number, offset: string, timestamp: number, key: Buffer | null, value: Buffer | null, rawHeaders: IHeaders | undefined): DeadLetter {
  const headers = headersAsStrings(rawHeaders);
  const failedAt = Date.parse(headers[DEAD_LETTER_HEADERS.failedAt] ?? '');
  return {
    topic, partition, offset,
    position: deadLetterPosition(topic, partition, offset),
    failedAt: Number.isNaN(failedAt) ? timestamp : failedAt,
    key: key?.toString('utf8') ?? null,
    value,
    headers,
    errorClass: headers[DEAD_LETTER_HEADERS.errorClass] ?? 'UNKNOWN',
    errorMessage: headers[DEAD_LETTER_HEADERS.errorMessage] ?? '',
    component: headers[DEAD_LETTER_HEADERS.component] ?? '',
    attempts: Number(headers[DEAD_LETTER_HEADERS.attempts] ?? '1'),
    origin: {
      topic: headers[DEAD_LETTER_HEADERS.originTopic] ?? '',
      partition: Number(headers[DEAD_LETTER_HEADERS.originPartition] ?? '-1'),
      offset: headers[DEAD_LETTER_HEADERS.originOffset] ?? '',
    },
    replayCount: Number(headers[REPLAY_HEADERS.count] ?? '0') || 0,
  };
}

function passes(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.errorClasses && filter.errorClasses.length > 0 && !filter.errorClasses.includes(letter.errorClass)) return false;
  if (filter.since !== undefined && letter.failedAt < filter.since) return false;
  if (filter.until !== undefined && letter.failedAt > filter.until) return false;
  if (filter.key !== undefined && letter.key !== filter.key) return false;
  if (filter.originTopic !== undefined && letter.origin.topic !== filter.originTopic) return false;
  return true;
}

/** Which dead letters were replayed already: the latest marker per dead-letter position. */
export async function readReplayMarkers(kafka: Kafka, admin: Admin): Promise<Map<string, ReplayMarker>> {
  const markers = new Map<string, ReplayMarker>();
  if (!(await admin.listTopics()).includes(DLQ_REPLAYED_TOPIC)) return markers;
  await readTopicRanges(kafka, DLQ_REPLAYED_TOPIC, await wholeTopicRanges(admin, DLQ_REPLAYED_TOPIC), (message) => {
    const position = message.key?.toString('utf8');
    if (!position) return;
    if (message.value === null) markers.delete(position);
    else markers.set(position, JSON.parse(message.value.toString('utf8')) as ReplayMarker);
  });
  return markers;
}

export interface ReplaySelection {
  readonly selected: readonly DeadLetter[];
  readonly alreadyReplayed: readonly DeadLetter[];
  /** Replayed `maxAttempts` times already and failed again: the cause is not fixed. */
  readonly budgetExhausted: readonly DeadLetter[];
  /** Beyond `max`. */
  readonly deferred: readonly DeadLetter[];
  readonly missingOrigin: readonly DeadLetter[];
}

export interface ReplayLimits {
  /** Replay at most this many now (the rest stay for a later run). */
  readonly max?: number;
  /** A record replayed this many times that failed again is left alone. */
  readonly maxAttempts: number;
  /** Replay dead letters that were replayed before as well. */
  readonly includeReplayed?: boolean;
}

export function selectForReplay(letters: readonly DeadLetter[], markers: ReadonlyMap<string, ReplayMarker>, limits: ReplayLimits): ReplaySelection {
  const selected: DeadLetter[] = [];
  const alreadyReplayed: DeadLetter[] = [];
  const budgetExhausted: DeadLetter[] = [];
  const deferred: DeadLetter[] = [];
  const missingOrigin: DeadLetter[] = [];
  for (const letter of letters) {
    if (!letter.origin.topic) missingOrigin.push(letter);
    else if (!limits.includeReplayed && markers.has(letter.position)) alreadyReplayed.push(letter);
    else if (letter.replayCount >= limits.maxAttempts) budgetExhausted.push(letter);
    else if (limits.max !== undefined && selected.length >= limits.max) deferred.push(letter);
    else selected.push(letter);
  }
  return { selected, alreadyReplayed, budgetExhausted, deferred, missingOrigin };
}

/** The record as it goes back to its origin topic: its own headers (idempotency key included), no dead-letter headers, and where it came from. */
export function replayMessage(letter: DeadLetter, replay: { id: string; by: string; at: Date }, originPartitions: number | undefined): Message {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(letter.headers)) {
    if (name.startsWith('lifeline.error.') || name.startsWith('lifeline.origin.') || name === DEAD_LETTER_HEADERS.valueFormat) continue;
    headers[name] = value;
  }
  Object.assign(headers, {
    [REPLAY_HEADERS.id]: replay.id,
    [REPLAY_HEADERS.count]: String(letter.replayCount + 1),
    [REPLAY_HEADERS.from]: letter.position,
    [REPLAY_HEADERS.at]: replay.at.toISOString(),
    [REPLAY_HEADERS.by]: replay.by,
  });
  // Back to the partition it failed on, so it meets the same keyed state (when the topic still has it).
  const partition = originPartitions !== undefined && letter.origin.partition >= 0 && letter.origin.partition < originPartitions ? letter.origin.partition : undefined;
  return { key: letter.key, value: letter.value, headers, ...(partition !== undefined ? { partition } : {}) };
}

/** Encodes a value with the origin topic's registered schema (AvroSerde.encode). */
export type ReplayEncoder = (topic: string, value: unknown) => Promise<Buffer>;

/** Whether the dead letter holds its record as JSON (a source record that never became Avro). */
export function isJsonDeadLetter(letter: DeadLetter): boolean {
  return letter.headers[DEAD_LETTER_HEADERS.valueFormat] === 'json';
}

/**
 * The value as it goes back: raw bytes as they are; a JSON dead letter re-encoded in the origin
 * topic's Avro format (the schema registered now, so a fixed contract or mapping takes effect).
 */
export async function replayValue(letter: DeadLetter, encode: ReplayEncoder | undefined): Promise<Buffer | null> {
  if (!isJsonDeadLetter(letter) || letter.value === null) return letter.value;
  if (!encode) throw new LifelineError('LL_CONFIG_INVALID', `${letter.position} holds JSON that must be re-encoded for ${letter.origin.topic}; replay it with a schema registry connection (lifeline dlq replay)`);
  return encode(letter.origin.topic, avroValueFromJson(letter.value.toString('utf8')));
}

export interface ReplayOutcome {
  readonly replayed: number;
  readonly byOriginTopic: Readonly<Record<string, number>>;
}

/**
 * Sends the dead letters back to their origin topics. Each batch of records commits in one Kafka
 * transaction together with the markers saying they were replayed, so a replay that dies half-way
 * is resumed by running it again, without sending anything twice. The transactional id is per
 * dead-letter topic: two replays of the same dead letters at once fence each other.
 */
export async function replayDeadLetters(
  kafka: Kafka, admin: Admin, dlqTopic: string, letters: readonly DeadLetter[],
  replay: { id: string; by: string }, progress: (line: string) => void, batchSize = 200, encode?: ReplayEncoder,
): Promise<ReplayOutcome> {
  if (letters.length === 0) return { replayed: 0, byOriginTopic: {} };
  await ensureTopics(admin, [{ name: DLQ_REPLAYED_TOPIC, partitions: 1, cleanupPolicy: 'compact' }]);
  const originTopics = [...new Set(letters.map((letter) => letter.origin.topic))];
  const metadata = await admin.fetchTopicMetadata({ topics: originTopics });
  const partitionsOf = new Map(metadata.topics.map((topic) => [topic.name, topic.partitions.length]));
  const producer = kafka.producer({ transactionalId: `lifeline.dlq-replay.${dlqTopic}`, idempotent: true, maxInFlightRequests: 1, retry: TRANSACTIONAL_PRODUCER_RETRY });
  await producer.connect();
  const byOriginTopic: Record<string, number> = {};
  let replayed = 0;
  try {
    for (let start = 0; start < letters.length; start += batchSize) {
      const batch = letters.slice(start, start + batchSize);
      const at = new Date();
      const byTopic = new Map<string, Message[]>();
      for (const letter of batch) {
        const list = byTopic.get(letter.origin.topic) ?? [];
        const message = replayMessage(letter, { ...replay, at }, partitionsOf.get(letter.origin.topic));
        list.push({ ...message, value: await replayValue(letter, encode) });
        byTopic.set(letter.origin.topic, list);
      }
      const markers: Message[] = batch.map((letter) => ({
        key: letter.position,
        value: JSON.stringify({ replay_id: replay.id, at: at.getTime(), by: replay.by, origin_topic: letter.origin.topic } satisfies ReplayMarker),
      }));
      const transaction = await producer.transaction();
      try {
        await transaction.sendBatch({ topicMessages: [...[...byTopic].map(([topic, messages]) => ({ topic, messages })), { topic: DLQ_REPLAYED_TOPIC, messages: markers }] });
        await transaction.commit();
      } catch (error) {
        await transaction.abort().catch(() => undefined);
        throw error;
      }
      for (const letter of batch) byOriginTopic[letter.origin.topic] = (byOriginTopic[letter.origin.topic] ?? 0) + 1;
      replayed += batch.length;
      progress(`replayed ${replayed}/${letters.length} dead letters`);
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  return { replayed, byOriginTopic };
}

/** Reads a dead-letter topic and decides what a replay with these filter and limits would send. */
export async function selectDeadLetters(kafka: Kafka, admin: Admin, dlqTopic: string, filter: DeadLetterFilter, limits: ReplayLimits, bounds?: ReadonlyMap<number, bigint>): Promise<ReplaySelection> {
  const [letters, markers] = await Promise.all([readDeadLetters(kafka, admin, dlqTopic, filter, bounds), readReplayMarkers(kafka, admin)]);
  return selectForReplay(letters, markers, limits);
}

export function describeSelection(selection: ReplaySelection): string {
  const parts = [`${selection.selected.length} to replay`];
  if (selection.alreadyReplayed.length > 0) parts.push(`${selection.alreadyReplayed.length} replayed before (skipped)`);
  if (selection.budgetExhausted.length > 0) parts.push(`${selection.budgetExhausted.length} out of retry budget (skipped)`);
  if (selection.deferred.length > 0) parts.push(`${selection.deferred.length} beyond --max (left for later)`);
  if (selection.missingOrigin.length > 0) parts.push(`${selection.missingOrigin.length} without origin headers (skipped)`);
  return parts.join(', ');
}
