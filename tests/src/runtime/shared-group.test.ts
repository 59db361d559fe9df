import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { keyPerPartition } from '../../../testing/sentinel.ts';
import { assignedPartitions, countedSender, counterPair } from '../../../testing/runtime-fixture.ts';

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
    // A sentinel through every partition instead of a sleep: once each is counted, a repeated input would have been too.
    const sentinels = keyPerPartition('sentinel', 4);
    await sendTo(sentinels, TOTAL);
    await collector.waitUntil((records) => records.filter(({ value }) => value.key.startsWith('sentinel-')).length >= sentinels.length, 'a sentinel on each partition', 60_000);
    const records = collector.records.filter(({ value }) => !value.key.startsWith('sentinel-'));

    const origins = new Set(records.map(({ value }) => `${value.origin_partition}@${value.origin_offset}`));
    assert.equal(origins.size, TOTAL, 'no input lost');
    assert.equal(records.length, TOTAL, 'no input repeated');
    assert.equal(collector.records.length, TOTAL + sentinels.length, 'no sentinel repeated');
    // The moved partitions kept their state: counts continue where the stopped process left them.
    for (const [account, count] of expected) {
      const counts = records.filter(({ value }) => value.key === account).map(({ value }) => value.count).sort((a, b) => a - b);
      assert.deepEqual(counts, Array.from({ length: count }, (_, index) => index + 1), `${account} counted 1..${count}`);
    }
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
