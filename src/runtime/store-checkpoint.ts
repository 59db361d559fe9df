import type { Message, RecordMetadata } from 'kafkajs';

/**
 * The changelog offset each store reaches with a commit: the produce response gives the base
 * offset of what a transaction wrote to a partition; the next offset is that plus the count.
 * It becomes the store's checkpoint, written to the local state with the same writes.
 */
export function nextChangelogOffsets(sent: readonly RecordMetadata[], messages: ReadonlyMap<string, readonly Message[]>, partition: number): Map<string, string> {
  const next = new Map<string, string>();
  for (const result of sent) {
    if (result.partition !== partition || result.baseOffset === undefined) continue;
    const count = messages.get(result.topicName)?.length ?? 0;
    if (count === 0) continue;
    next.set(result.topicName, (BigInt(result.baseOffset) + BigInt(count)).toString());
  }
  return next;
}
