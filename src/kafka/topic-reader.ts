import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';
import { deleteOwnGroup, fetchTopicOffsetsSerially } from './client.ts';

/** Where to read one partition: from `from` (inclusive) up to `to` (exclusive), or on and on without `to`. */
export interface PartitionRange {
  readonly partition: number;
  readonly from: bigint;
  readonly to?: bigint;
}

export interface ReadOptions {
  /** The read's own consumer group (deleted afterwards); a random `_lifeline.reader.*` one by default. */
  readonly groupId?: string;
  /** Read records of open or aborted transactions too (default: committed only, as Lifeline's consumers). */
  readonly readUncommitted?: boolean;
  /** Stop when this signal aborts (Ctrl-C in `lifeline consume`). */
  readonly signal?: AbortSignal;
}

/** What the reader hands over for each record; return `false` to stop reading. */
export type RecordVisitor = (message: KafkaMessage, partition: number) => Promise<boolean | void> | boolean | void;

/**
 * Reads ranges of a topic without committing anything: a consumer in a throw-away group of its
 * own, positioned per partition by seek. A bounded range ends at `to`; since the last offsets of a
 * transactional partition may be commit markers that are never delivered, a range also ends when
 * the consumer's position (the end of a fetched batch, control records included) reaches `to`.
 */
export async function readTopicRanges(kafka: Kafka, topic: string, ranges: readonly PartitionRange[], visit: RecordVisitor, options: ReadOptions = {}): Promise<void> {
  const open = new Map<number, PartitionRange>();
  for (const range of ranges) if (range.to === undefined || range.from < range.to) open.set(range.partition, range);
  if (open.size === 0 || options.signal?.aborted) return;

  const groupId = options.groupId ?? `_lifeline.reader.${randomUUID()}`;
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: options.readUncommitted ?? false,
    maxWaitTimeInMs: 200,
    sessionTimeout: 10_000,
    heartbeatInterval: 1000,
  });
  let finish!: (error?: unknown) => void;
  const finished = new Promise<void>((resolve, reject) => {
    finish = (error?: unknown) => (error === undefined ? resolve() : reject(error));
  });
  const close = (partition: number): void => {
    open.delete(partition);
    if (open.size === 0) finish();
  };
  const onAbort = (): void => finish();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    // The next offset each partition has been read up to (records visited, or below `from`).
    const position = new Map([...open.values()].map((range) => [range.partition, range.from]));
    // The last offset (commit markers included) of the latest batch whose every record was handled.
    const completedBatchEnd = new Map<number, bigint>();
    // A batch-end event also follows a batch abandoned half-way (stale after the seek, or stopped), so
    // it ends a range only when every record of that batch was handled, or when the batch held nothing
    // but commit markers and aborted records that follow what was read.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      const range = open.get(event.payload.partition);
      if (range?.to === undefined) return;
      const last = BigInt(event.payload.lastOffset);
      const first = event.payload.firstOffset === null ? last : BigInt(event.payload.firstOffset);
      const wholeBatchRead = event.payload.batchSize > 0
        ? completedBatchEnd.get(range.partition) === last
        : (position.get(range.partition) ?? range.from) >= first;
      if (wholeBatchRead && last + 1n >= range.to) close(range.partition);
    });
    consumer.on(consumer.events.CRASH, (event) => {
      if (!event.payload.restart) finish(event.payload.error);
    });
    // pause() and seek() throw until the consumer has joined its group; wait for that, not for run() to return.
    const joined = new Promise<void>((resolveJoin) => consumer.on(consumer.events.GROUP_JOIN, () => resolveJoin()));
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: true,
      eachBatch: async ({ batch, isRunning, isStale }) => {
        const range = open.get(batch.partition);
        if (!range) return;
        for (const message of batch.messages) {
          if (!isRunning() || isStale() || !open.has(batch.partition)) return;
          const offset = BigInt(message.offset);
          // Fetched before the seek took effect, or visited already in a batch the seek made stale.
          if (offset < (position.get(batch.partition) ?? range.from)) continue;
          if (range.to !== undefined && offset >= range.to) {
            close(batch.partition);
            return;
          }
          const goOn = await visit(message, batch.partition);
          position.set(batch.partition, offset + 1n);
          if (goOn === false) {
            finish();
            return;
          }
          if (range.to !== undefined && offset + 1n >= range.to) {
            close(batch.partition);
            return;
          }
        }
        completedBatchEnd.set(batch.partition, BigInt(batch.lastOffset()));
      },
    });
    await joined;
    const others = (await partitionsOf(kafka, topic)).filter((partition) => !open.has(partition));
    if (others.length > 0) consumer.pause([{ topic, partitions: others }]);
    for (const range of open.values()) consumer.seek({ topic, partition: range.partition, offset: range.from.toString() });
    await finished;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await consumer.disconnect().catch(() => undefined);
    await deleteOwnGroup(kafka, groupId);
  }
}

async function partitionsOf(kafka: Kafka, topic: string): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    return (topics[0]?.partitions ?? []).map((partition) => partition.partitionId);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Every partition of a topic from its first to its current end offset (what exists right now). */
export async function wholeTopicRanges(admin: Admin, topic: string): Promise<PartitionRange[]> {
  const offsets = await fetchTopicOffsetsSerially(admin, topic);
  return offsets.map((entry) => ({ partition: entry.partition, from: BigInt(entry.low), to: BigInt(entry.high) }));
}
