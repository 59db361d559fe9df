import { createRequire } from 'node:module';
import type { Kafka } from 'kafkajs';

/**
 * Counts the records a read_committed consumer still has to read: between a committed offset and
 * the partition's last stable offset (LSO), without the transaction markers (commit/abort control
 * records take offsets but are never delivered) and without aborted records. kafkajs exposes no
 * such call, so this reads through its own cluster and Batch classes (kafkajs 2.2.4 is frozen, so
 * these internals do not move): ListOffsets under read_committed for the LSO, then one bounded
 * Fetch from the committed offset, counted the way the consumer would deliver it.
 */
const require = createRequire(import.meta.url);
const Batch = require('kafkajs/src/consumer/batch.js') as new (topic: string, fetchedOffset: string, partitionData: unknown) => { messages: Array<{ offset: string }> };
const READ_COMMITTED = 1;
/** Backlogs up to this many offsets are counted record by record; above, offsets are reported (markers included). */
export const EXACT_WINDOW = 5000;
const FETCH_MAX_BYTES = 1024 * 1024;

export interface BacklogRequest {
  readonly topic: string;
  readonly partition: number;
  /** The committed (next to read) offset; null when nothing is committed (then from the log start). */
  readonly from: bigint | null;
}

export interface Backlog {
  readonly topic: string;
  readonly partition: number;
  /** Last stable offset: where a read_committed consumer's reading ends now. */
  readonly end: bigint;
  readonly start: bigint;
  /** Records to read: counted exactly when `exact`, else offsets (which include transaction markers). */
  readonly records: bigint;
  readonly exact: boolean;
}

interface KafkaCluster {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  addMultipleTargetTopics(topics: string[]): Promise<void>;
  findLeaderForPartitions(topic: string, partitions: number[]): Record<string, number[]>;
  findBroker(options: { nodeId: string }): Promise<KafkaBroker>;
}

interface KafkaBroker {
  fetch(request: unknown): Promise<{ responses: Array<{ topicName: string; partitions: Array<Record<string, unknown> & { partition: number }> }> }>;
  listOffsets(request: unknown): Promise<{ responses: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }>;
}

function createCluster(kafka: Kafka): KafkaCluster {
  const symbol = Object.getOwnPropertySymbols(kafka).find((candidate) => candidate.description === 'private:Kafka:createCluster');
  if (!symbol) throw new Error('kafkajs internals changed: no cluster factory on the client (committed-backlog.ts expects kafkajs 2.2.x)');
  const factory = (kafka as unknown as Record<symbol, (options: unknown) => KafkaCluster>)[symbol] as (options: unknown) => KafkaCluster;
  return factory({ allowAutoTopicCreation: false, isolationLevel: READ_COMMITTED });
}

/** Counts what remains to be read for each requested partition (see the module comment); one connection per call. */
export async function committedBacklog(kafka: Kafka, requests: readonly BacklogRequest[]): Promise<Backlog[]> {
  if (requests.length === 0) return [];
  const reader = new BacklogReader(kafka);
  try {
    return await reader.read(requests);
  } finally {
    await reader.close();
  }
}

/** Keeps its connections between reads (a lag monitor reads every few seconds). */
export class BacklogReader {
  private cluster: KafkaCluster | undefined;
  private connected: Promise<void> | undefined;

  constructor(private readonly kafka: Kafka) {}

  async read(requests: readonly BacklogRequest[]): Promise<Backlog[]> {
    if (requests.length === 0) return [];
    this.cluster ??= createCluster(this.kafka);
    this.connected ??= this.cluster.connect();
    try {
      await this.connected;
    } catch (error) {
      this.connected = undefined;
      throw error;
    }
    return readBacklog(this.cluster, requests);
  }

  async close(): Promise<void> {
    const cluster = this.cluster;
    this.cluster = undefined;
    this.connected = undefined;
    await cluster?.disconnect().catch(() => undefined);
  }
}

async function readBacklog(cluster: KafkaCluster, requests: readonly BacklogRequest[]): Promise<Backlog[]> {
  {
    const topics = [...new Set(requests.map((request) => request.topic))];
    await cluster.addMultipleTargetTopics(topics);
    const ends = new Map<string, bigint>();
    const starts = new Map<string, bigint>();
    for (const request of requests) {
      const broker = await leaderOf(cluster, request.topic, request.partition);
      if (!broker) continue;
      // replicaId -1 (a client): a broker refuses read_committed ListOffsets from a "replica".
      for (const [target, timestamp] of [[ends, -1], [starts, -2]] as const) {
        const { responses } = await broker.listOffsets({ replicaId: -1, isolationLevel: READ_COMMITTED, topics: [{ topic: request.topic, partitions: [{ partition: request.partition, timestamp }] }] });
        const offset = responses.find((entry) => entry.topic === request.topic)?.partitions.find((entry) => entry.partition === request.partition)?.offset;
        if (offset !== undefined) target.set(`${request.topic}:${request.partition}`, BigInt(offset));
      }
    }
    const out: Backlog[] = [];
    for (const request of requests) {
      const id = `${request.topic}:${request.partition}`;
      const end = ends.get(id) ?? 0n;
      const start = starts.get(id) ?? 0n;
      const from = request.from === null || request.from < start ? start : request.from;
      const offsets = end > from ? end - from : 0n;
      if (offsets === 0n || offsets > BigInt(EXACT_WINDOW)) {
        out.push({ topic: request.topic, partition: request.partition, end, start, records: offsets, exact: offsets === 0n });
        continue;
      }
      const counted = await countRecords(cluster, request.topic, request.partition, from, end);
      out.push({ topic: request.topic, partition: request.partition, end, start, ...counted });
    }
    return out;
  }
}

/** A record as a read_committed consumer gets it (control records and aborted records left out). */
export interface FetchedRecord {
  readonly offset: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: Record<string, Buffer | string | Array<Buffer | string> | undefined>;
}

/**
 * Reads one partition read_committed without a consumer group (kafkajs has no manual assignment):
 * a bounded Fetch from a position, the records as a consumer would get them, and where to fetch next.
 * Store restores use it, so a task opening a partition joins no group of its own.
 */
export class PartitionFetcher {
  private readonly cluster: KafkaCluster;
  private connected = false;

  constructor(kafka: Kafka, private readonly maxBytes = FETCH_MAX_BYTES) {
    this.cluster = createCluster(kafka);
  }

  async fetch(topic: string, partition: number, position: bigint, maxWaitMs: number): Promise<{ records: FetchedRecord[]; next: bigint }> {
    if (!this.connected) {
      await this.cluster.connect();
      this.connected = true;
    }
    await this.cluster.addMultipleTargetTopics([topic]);
    const broker = await leaderOf(this.cluster, topic, partition);
    if (!broker) throw new Error(`no leader known for ${topic}/${partition}`);
    const response = await broker.fetch({
      replicaId: -1, isolationLevel: READ_COMMITTED, maxWaitTime: maxWaitMs, minBytes: 1, maxBytes: this.maxBytes,
      topics: [{ topic, partitions: [{ partition, fetchOffset: position.toString(), maxBytes: this.maxBytes }] }],
    });
    const data = response.responses.find((entry) => entry.topicName === topic)?.partitions.find((entry) => entry.partition === partition);
    if (!data) return { records: [], next: position };
    const raw = (data as { messages?: Array<{ offset: string }> }).messages ?? [];
    const records = new Batch(topic, position.toString(), data).messages as unknown as FetchedRecord[];
    const last = raw.reduce((max, message) => (BigInt(message.offset) > max ? BigInt(message.offset) : max), position - 1n);
    return { records, next: last + 1n > position ? last + 1n : position };
  }

  async close(): Promise<void> {
    if (this.connected) await this.cluster.disconnect().catch(() => undefined);
    this.connected = false;
  }
}

async function leaderOf(cluster: KafkaCluster, topic: string, partition: number): Promise<KafkaBroker | undefined> {
  const nodeId = Object.keys(cluster.findLeaderForPartitions(topic, [partition]))[0];
  return nodeId === undefined ? undefined : cluster.findBroker({ nodeId });
}

/** Fetches from `from` (read_committed) and counts deliverable records below `end`; what one fetch does not reach is counted in offsets. */
async function countRecords(cluster: KafkaCluster, topic: string, partition: number, from: bigint, end: bigint): Promise<{ records: bigint; exact: boolean }> {
  const broker = await leaderOf(cluster, topic, partition);
  if (!broker) return { records: end - from, exact: false };
  let position = from;
  let records = 0n;
  for (let round = 0; round < 8 && position < end; round++) {
    const response = await broker.fetch({
      replicaId: -1, isolationLevel: READ_COMMITTED, maxWaitTime: 0, minBytes: 1, maxBytes: FETCH_MAX_BYTES,
      topics: [{ topic, partitions: [{ partition, fetchOffset: position.toString(), maxBytes: FETCH_MAX_BYTES }] }],
    });
    const data = response.responses.find((entry) => entry.topicName === topic)?.partitions.find((entry) => entry.partition === partition);
    if (!data) break;
    const batch = new Batch(topic, position.toString(), data);
    const raw = (data as { messages?: Array<{ offset: string }> }).messages ?? [];
    if (raw.length === 0) {
      // Nothing deliverable before the LSO: the rest are markers (or an open transaction's, not yet stable).
      return { records, exact: true };
    }
    for (const message of batch.messages) if (BigInt(message.offset) < end) records++;
    const last = raw.reduce((max, message) => (BigInt(message.offset) > max ? BigInt(message.offset) : max), position - 1n);
    if (last + 1n <= position) break;
    position = last + 1n;
  }
  if (position >= end) return { records, exact: true };
  return { records: records + (end - position), exact: false };
}
