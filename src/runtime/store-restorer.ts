import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { deleteOwnGroup } from '../kafka/client.ts';
import type { TransactionalStore } from './transactional-store.ts';

export const RESTORE_MARKER_HEADER = 'lifeline.restore-marker';
const MARKER_KEY = '__lifeline.restore-marker';

/**
 * Rebuilds one partition's stores from their compacted changelogs. A committed read cannot see
 * where the log ends (transaction markers take offsets, and an open transaction of a fenced
 * zombie hides what follows), so we append a marker record and read until it comes back: then
 * everything committed before it has been applied. The marker is a tombstone of its own key, so
 * compaction removes it.
 */
export async function restoreStores(options: {
  kafka: Kafka;
  /** The task's producer: transactional under exactly-once (it has already fenced older owners). */
  producer: Producer;
  transactional: boolean;
  partition: number;
  stores: readonly TransactionalStore[];
  logger: Logger;
}): Promise<{ restored: number; ms: number }> {
  const { kafka, producer, partition, stores, logger } = options;
  if (stores.length === 0) return { restored: 0, ms: 0 };
  const started = performance.now();
  const marker = randomUUID();
  const topicMessages = stores.map((store) => ({
    topic: store.changelogTopic,
    messages: [{ key: MARKER_KEY, value: null, partition, headers: { [RESTORE_MARKER_HEADER]: marker } }],
  }));
  if (options.transactional) {
    const transaction = await producer.transaction();
    try {
      await transaction.sendBatch({ topicMessages });
      await transaction.commit();
    } catch (error) {
      await transaction.abort().catch(() => undefined);
      throw error;
    }
  } else {
    await producer.sendBatch({ topicMessages, acks: -1 });
  }

  const byTopic = new Map(stores.map((store) => [store.changelogTopic, { store, buffer: store.restoreBuffer(), done: false }]));
  const groupId = `_lifeline.restore.${randomUUID()}`;
  const consumer = kafka.consumer({
    groupId,
    readUncommitted: false,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
    maxWaitTimeInMs: 100,
  });
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [...byTopic.keys()], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 1,
        eachBatch: async ({ batch }) => {
          const target = byTopic.get(batch.topic);
          if (!target || batch.partition !== partition || target.done) {
            consumer.pause([{ topic: batch.topic, partitions: [batch.partition] }]);
            return;
          }
          for (const message of batch.messages) {
            const seen = message.headers?.[RESTORE_MARKER_HEADER];
            if (seen !== undefined) {
              if (String(seen) === marker) {
                target.done = true;
                break;
              }
              continue;
            }
            if (message.key === null) continue;
            await target.buffer.add(message.key.toString('utf8'), message.value);
          }
          if (target.done) {
            await target.buffer.flush();
            consumer.pause([{ topic: batch.topic, partitions: [partition] }]);
            if ([...byTopic.values()].every((entry) => entry.done)) resolve();
          }
        },
      }).catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    void deleteOwnGroup(kafka, groupId); // in the background: the restore is done
  }
  const restored = [...byTopic.values()].reduce((sum, entry) => sum + entry.buffer.restored, 0);
  const ms = performance.now() - started;
  logger.info({ restored, ms: Math.round(ms), stores: stores.map((store) => store.name) }, 'stores restored from changelog');
  return { restored, ms };
}
