import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { assertExactCounts, assignedPartitions, countedSender, countedThroughSentinels, counterPair } from '../../../testing/runtime-fixture.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

for (const transactions of ['per_partition', 'per_process'] as const) {
  test(`two lifeline run processes share a group (transactions ${transactions}); stopping one moves its partitions and state to the other`, { timeout: 300_000 }, async () => {
    const TOTAL = 8000;
    const { topology, kafka, serde, collector, first, second } = await counterPair({ partitions: 4, store: 'memory', commitMaxRecords: 200, transactions }, cleanups);
    assert.deepEqual([...assignedPartitions(first), ...assignedPartitions(second)].sort(), [0, 1, 2, 3], 'partitions split between the two');
    assert.equal(assignedPartitions(first).length, 2);

    const { expected, send, sendTo } = await countedSender(kafka, serde, topology.input, 32, cleanups);
    await send(0, TOTAL / 2);
    await collector.waitForCount(TOTAL / 2, 120_000);

    const stoppedHad = assignedPartitions(second);
    const firstLinesBefore = first.lines.length;
    await second.kill('SIGTERM'); // graceful: finishes its transaction and leaves the group
    assert.equal(second.exitCode, 0, 'graceful stop exits 0');
    await first.waitForLine(/partitions assigned/, 60_000, firstLinesBefore);
    assert.deepEqual(assignedPartitions(first, firstLinesBefore), [0, 1, 2, 3], 'the survivor holds every partition');
    await first.waitForLine(/stores restored from changelog/, 60_000, firstLinesBefore);

    await send(TOTAL / 2, TOTAL);
    await collector.waitForCount(TOTAL, 120_000);
    const records = await countedThroughSentinels(collector, sendTo, 4, TOTAL);

    const origins = new Set(records.map(({ value }) => `${value.origin_partition}@${value.origin_offset}`));
    assert.equal(origins.size, TOTAL, 'no input lost');
    assert.equal(records.length, TOTAL, 'no input repeated');
    assert.equal(collector.records.length, TOTAL + 4, 'no sentinel repeated');
    // The moved partitions kept their state: counts continue where the stopped process left them.
    assertExactCounts(records, expected);
    assert.ok(stoppedHad.length === 2);
    if (transactions === 'per_process') {
      // Memory stores, yet each process has a slot of state_dir and a transactional id stable per slot
      // (a restart fences its predecessor's open transaction at once): two processes, two ids.
      const idOf = (process: typeof first): string | undefined => {
        const line = process.lines.find((candidate) => candidate.includes('one transactional producer for every partition'));
        return line === undefined ? undefined : (JSON.parse(line) as { transactionalId: string }).transactionalId;
      };
      const ids = [idOf(first), idOf(second)];
      assert.ok(ids.every((id) => /\.slot-\d+$/.test(id ?? '')), `transactional ids per slot: ${ids.join(', ')}`);
      assert.notEqual(ids[0], ids[1], 'each process its own');
    }
  });
}
