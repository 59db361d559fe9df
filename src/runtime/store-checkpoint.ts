import type { SentRequest } from './transaction-budget.ts';

/**
 * The changelog offset each store reaches with a commit: each produce response gives the base
 * offset of what its request wrote to a partition; the next offset is that plus the request's count
 * of messages there. The highest over the requests becomes the store's checkpoint, written to the
 * local state with the same writes.
 */
export function nextChangelogOffsets(sent: readonly SentRequest[], partition: number): Map<string, string> {
  const next = new Map<string, bigint>();
  for (const { request, results } of sent) {
    for (const result of results) {
      if (result.partition !== partition || result.baseOffset === undefined) continue;
      const count = request.filter((entry) => entry.topic === result.topicName)
        .reduce((sum, entry) => sum + entry.messages.filter((message) => (message.partition ?? partition) === partition).length, 0);
      if (count === 0) continue;
      const end = BigInt(result.baseOffset) + BigInt(count);
      if (end > (next.get(result.topicName) ?? -1n)) next.set(result.topicName, end);
    }
  }
  return new Map([...next].map(([topic, offset]) => [topic, offset.toString()]));
}
