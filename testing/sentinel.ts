import { partitionForKey } from '../src/runtime/processor-task.ts';

/**
 * Sentinels instead of sleeps. To show that nothing more arrives after a scenario, send a marker
 * through every partition after it and wait for the markers at the far end: records of one
 * partition keep their order through a processor or a source, so once a partition's marker has
 * arrived, everything sent on that partition before it has too (committed output included). A
 * check then holds on what arrived; no fixed sleep, no false pass on a slow machine.
 */

/** One key for each partition 0..partitions-1 under Kafka's default partitioner (murmur2, as kafkajs and Java use). */
export function keyPerPartition(prefix: string, partitions: number): string[] {
  const keys: Array<string | undefined> = Array.from({ length: partitions }, () => undefined);
  let found = 0;
  for (let index = 0; found < partitions; index++) {
    if (index > 100_000) throw new Error(`no key found for every one of ${partitions} partitions`);
    const key = `${prefix}-${index}`;
    const partition = partitionForKey(key, partitions);
    if (keys[partition] === undefined) {
      keys[partition] = key;
      found++;
    }
  }
  return keys as string[];
}

/** The partition Kafka's default partitioner gives a key: to send a sentinel the way a scenario's records went. */
export function partitionOf(key: string, partitions: number): number {
  return partitionForKey(key, partitions);
}
