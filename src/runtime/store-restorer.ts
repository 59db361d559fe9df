import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer, TopicMessages } from 'kafkajs';
import type { Logger } from 'pino';
import { LifelineError } from '../errors.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';
import { PartitionFetcher } from '../kafka/committed-backlog.ts';
import { STORE_FORMAT } from './store-backend.ts';
import type { TransactionalStore } from './transactional-store.ts';

export const RESTORE_MARKER_HEADER = 'lifeline.restore-marker';
const MARKER_KEY = '__lifeline.restore-marker';

/**
 * A checkpoint older than this is not trusted: a compacted changelog keeps tombstones for
 * delete.retention.ms (Kafka's default 24 h) only, so a tail read after a longer gap could miss a
 * delete. Half of that default leaves a margin.
 */
export const MAX_CHECKPOINT_AGE_MS = 12 * 3600 * 1000;
const PROGRESS_LOG_MS = 5000;

export interface RestoreProgress {
  readonly stores: readonly string[];
  /** Changelog records applied so far. */
  readonly read: number;
  /** Records between each store's starting point and the end of its changelog, offsets counted (markers included). */
  readonly toRead: number;
  readonly startedAt: number;
  readonly deadlineAt: number;
}

export interface RestoreResult {
  /** Changelog records read and applied (the tail since each checkpoint, or everything after a wipe). */
  readonly restored: number;
  readonly ms: number;
  /** Per store: `tail` from its checkpoint, or `full` and why. */
  readonly plans: ReadonlyArray<{ store: string; from: string; mode: 'tail' | 'full'; reason?: string }>;
}

/** Why a store's local checkpoint cannot be used (then the store is wiped and rebuilt in full), or undefined. */
export function staleReason(checkpoint: { offset: string; at: number; format: number } | undefined, low: bigint, high: bigint, now = Date.now()): string | undefined {
  if (!checkpoint) return 'no local checkpoint';
  if (checkpoint.format !== STORE_FORMAT) return `local state has format ${checkpoint.format}, this version writes ${STORE_FORMAT}`;
  const offset = BigInt(checkpoint.offset);
  if (offset < low) return `checkpoint ${offset} is before the changelog's first offset ${low}`;
  if (offset > high) return `checkpoint ${offset} is beyond the changelog's end ${high} (the topic was recreated?)`;
  if (now - checkpoint.at > MAX_CHECKPOINT_AGE_MS) return `checkpoint is ${Math.round((now - checkpoint.at) / 3_600_000)} h old (tombstones may have been compacted away)`;
  return undefined;
}

/** Marker records written by a producer of the task's own: in a transaction of their own under exactly-once. */
export function markersWrittenBy(producer: Producer, transactional: boolean): (topicMessages: TopicMessages[]) => Promise<void> {
  return async (topicMessages) => {
    if (!transactional) {
      await producer.sendBatch({ topicMessages, acks: -1 });
      return;
    }
    const transaction = await producer.transaction();
    try {
      await transaction.sendBatch({ topicMessages });
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  };
}

/**
 * Brings one partition's stores up to date with their compacted changelogs. Each store starts from
 * its local checkpoint (the tail only) or, when that is missing or stale, from a wiped state and the
 * changelog's beginning. A committed read cannot see where the log ends (transaction markers take
 * offsets, and an open transaction of a fenced zombie hides what follows), so we append a marker
 * record and read until it comes back: then everything committed before it has been applied. The
 * marker is a tombstone of its own key, so compaction removes it.
 *
 * The read joins no consumer group (kafkajs has no manual assignment; a group per restore cost a
 * join per task and left groups behind): it fetches the one partition directly, read_committed,
 * at most 1 MiB per fetch (PartitionFetcher). Progress is checkpointed as it goes, so a restore that
 * runs past `timeoutMs` (LL_RESTORE_TIMEOUT) resumes where it stopped on the next attempt.
 */
export async function restoreStores(options: {
  kafka: Kafka;
  /** Reads the changelogs' first and end offsets; a temporary one is made when absent. */
  admin?: Admin;
  /**
   * Writes the restore's marker records, as the task writes: `markersWrittenBy(producer, ...)` for a
   * producer of its own (transactional under exactly-once: it has already fenced older owners), or
   * a processor's shared per-process transaction.
   */
  writeMarkers: (topicMessages: TopicMessages[]) => Promise<void>;
  partition: number;
  stores: readonly TransactionalStore[];
  logger: Logger;
  /** Default: 10 minutes. */
  timeoutMs?: number;
  onProgress?: (progress: RestoreProgress) => void;
}): Promise<RestoreResult> {
  const { kafka, partition, stores, logger } = options;
  if (stores.length === 0) return { restored: 0, ms: 0, plans: [] };
  const timeoutMs = options.timeoutMs ?? 600_000;
  const admin = options.admin ?? kafka.admin();
  if (!options.admin) await admin.connect();
  const startedAt = Date.now();
  const started = performance.now();

  const plans: Array<{ store: string; from: string; mode: 'tail' | 'full'; reason?: string }> = [];
  const starts = new Map<string, bigint>();
  let toRead = 0n;
  for (const store of stores) {
    const offsets = (await fetchTopicOffsetsSerially(admin, store.changelogTopic)).find((entry) => entry.partition === partition);
    const low = BigInt(offsets?.low ?? '0');
    const high = BigInt(offsets?.high ?? '0');
    const checkpoint = store.checkpoint();
    const reason = staleReason(checkpoint, low, high);
    let from: bigint;
    if (reason === undefined) {
      from = BigInt((checkpoint as { offset: string }).offset);
      plans.push({ store: store.name, from: from.toString(), mode: 'tail' });
    } else {
      await store.wipe();
      from = low;
      plans.push({ store: store.name, from: from.toString(), mode: 'full', reason });
    }
    starts.set(store.changelogTopic, from);
    toRead += high > from ? high - from : 0n;
  }
  if (!options.admin) await admin.disconnect().catch(() => undefined);

  const marker = randomUUID();
  const topicMessages = stores.map((store) => ({
    topic: store.changelogTopic,
    messages: [{ key: MARKER_KEY, value: null, partition, headers: { [RESTORE_MARKER_HEADER]: marker } }],
  }));
  await options.writeMarkers(topicMessages);

  const byTopic = new Map(stores.map((store) => [store.changelogTopic, { store, buffer: store.restoreBuffer(), done: false }]));
  const restoredSoFar = (): number => [...byTopic.values()].reduce((sum, entry) => sum + entry.buffer.restored, 0);
  const deadlineAt = startedAt + timeoutMs;
  const progress = (): RestoreProgress => ({ stores: stores.map((store) => store.name), read: restoredSoFar(), toRead: Number(toRead), startedAt, deadlineAt });
  options.onProgress?.(progress());
  let progressTimer: NodeJS.Timeout | undefined;
  const fetcher = new PartitionFetcher(kafka, 1024 * 1024);
  try {
    progressTimer = setInterval(() => {
      const now = progress();
      options.onProgress?.(now);
      logger.info({ read: now.read, toRead: now.toRead, stores: now.stores }, 'restoring stores from changelog');
    }, PROGRESS_LOG_MS);
    // Every store of the partition at once: each reads its own changelog partition.
    await Promise.all([...byTopic].map(async ([topic, target]) => {
      let position = starts.get(topic) ?? 0n;
      while (!target.done) {
        if (Date.now() >= deadlineAt) {
          throw new LifelineError('LL_RESTORE_TIMEOUT', `restore of partition ${partition} (${stores.map((store) => store.name).join(', ')}) passed its deadline of ${Math.round(timeoutMs / 1000)} s after reading ${restoredSoFar()} of about ${toRead} changelog records; it resumes from its checkpoint on the next attempt`);
        }
        const { records, next } = await fetcher.fetch(topic, partition, position, Math.min(200, Math.max(0, deadlineAt - Date.now())));
        for (const message of records) {
          const seen = message.headers?.[RESTORE_MARKER_HEADER];
          if (seen !== undefined) {
            if (String(seen) === marker) {
              target.done = true;
              target.buffer.reached((BigInt(message.offset) + 1n).toString());
              break;
            }
            continue;
          }
          if (message.key === null) continue;
          await target.buffer.add(message.key.toString('utf8'), message.value, message.offset);
        }
        position = next;
      }
      await target.buffer.flush();
    }));
  } finally {
    clearInterval(progressTimer);
    await fetcher.close();
    // What was read is kept, with the checkpoint it reaches: a retry continues from there.
    for (const entry of byTopic.values()) if (!entry.done) await entry.buffer.flush().catch(() => undefined);
  }
  const restored = restoredSoFar();
  const ms = performance.now() - started;
  logger.info({ restored, ms: Math.round(ms), plans }, 'stores restored from changelog');
  return { restored, ms, plans };
}
