import type { Kafka } from 'kafkajs';
import { committedBacklog } from '../src/kafka/committed-backlog.ts';

/**
 * Waits until every given consumer group has read and committed everything committed to its input
 * topics (true backlog 0: transaction markers and aborted records not counted), twice in a row.
 * Once the traffic has stopped, that proves a pipeline has settled — nothing is in flight that could
 * still arrive — without a fixed sleep. Throws with the groups still behind when the time runs out.
 */
export async function waitForQuiescence(kafka: Kafka, groupIds: readonly string[], timeoutMs: number): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    let settledPasses = 0;
    let behind: string[] = [];
    while (settledPasses < 2) {
      if (Date.now() > deadline) throw new Error(`the pipeline did not settle within ${timeoutMs} ms; still behind: ${behind.join(', ')}`);
      behind = [];
      for (const groupId of groupIds) {
        const committed = await admin.fetchOffsets({ groupId });
        const requests = committed.flatMap(({ topic, partitions }) => partitions.map(({ partition, offset }) => ({ topic, partition, from: Number(offset) >= 0 ? BigInt(offset) : null })));
        for (const entry of await committedBacklog(kafka, requests)) {
          if (entry.records > 0n) behind.push(`${groupId} ${entry.topic}[${entry.partition}]: ${entry.records}`);
        }
      }
      settledPasses = behind.length === 0 ? settledPasses + 1 : 0;
      if (settledPasses < 2) await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } finally {
    await admin.disconnect();
  }
}
