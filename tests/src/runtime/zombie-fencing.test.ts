import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { assertExactCounts, assignedPartitions, countedSender, countedThroughSentinels, counterPair } from '../../../testing/runtime-fixture.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/**
 * A zombie: a process frozen (SIGSTOP) in the middle of a stream, past its session time-out, while
 * the other member takes its partitions over and goes on; then thawed (SIGCONT) with its batch and
 * open transaction where it left them. Whatever it then tries to commit must be refused — by its
 * partition's transactional id taken over (per_partition) or by its stale group generation
 * (per_process, KIP-447) — so every input is counted exactly once.
 */
for (const transactions of ['per_partition', 'per_process'] as const) {
  test(`a member frozen past its session time-out and thawed while another owns its partitions commits nothing (transactions ${transactions}): every input exactly once`, { timeout: 300_000 }, async () => {
    const TOTAL = 12_000;
    const { topology, kafka, serde, collector, first: zombie, second: survivor } = await counterPair({ partitions: 2, store: 'lmdb', commitMaxRecords: 200, transactions }, cleanups);
    assert.equal(assignedPartitions(zombie).length, 1, 'each member holds one partition');

    const { expected, send, sendTo } = await countedSender(kafka, serde, topology.input, 16, cleanups);
    // A steady stream, so the zombie is frozen with a batch in hand.
    const streaming = (async () => {
      for (let from = 0; from < TOTAL; from += 200) {
        await send(from, from + 200);
        await sleep(40);
      }
    })();
    await collector.waitForCount(2_000, 60_000);
    const zombiePid = zombie.pid as number;
    const survivorLinesBefore = survivor.lines.length;
    process.kill(zombiePid, 'SIGSTOP');
    try {
      // The survivor takes both partitions over once the zombie's session (6 s) has expired, and goes on.
      await survivor.waitForLine(/"partitions":\[0,1\]/, 60_000, survivorLinesBefore);
      const countAtTakeOver = collector.records.length;
      await collector.waitForCount(countAtTakeOver + 1_000, 60_000);
    } finally {
      process.kill(zombiePid, 'SIGCONT');
    }
    await streaming;
    await collector.waitForCount(TOTAL, 180_000);
    const records = await countedThroughSentinels(collector, sendTo, 2, TOTAL);
    const origins = new Set(records.map(({ value }) => `${value.origin_partition}@${value.origin_offset}`));
    assert.equal(origins.size, TOTAL, 'no input lost');
    assert.equal(records.length, TOTAL, 'no input counted twice');
    assertExactCounts(records, expected);
    // What refused the zombie, when it had something to commit (logged by the thawed process).
    const refusals = zombie.lines.filter((line) => /batch failed|task fenced|LL_GROUP_FENCED|ILLEGAL_GENERATION|UNKNOWN_MEMBER_ID|PRODUCER_FENCED|INVALID_PRODUCER_EPOCH/.test(line));
    console.log(`zombie (${transactions}): ${refusals.length} refusal line(s); first: ${refusals[0]?.slice(0, 400) ?? 'none'}`);
  });
}

/**
 * The same freeze with no batch in hand: nothing of the zombie's is left to refuse, and once thawed
 * it rejoins under a new member id, and the sticky assignment hands its partition back. The task it
 * kept open from before the freeze holds the counts of that moment, while the survivor counted on
 * meanwhile; going on from it would count some inputs from stale state (the same count twice). A
 * member that missed a generation reopens every task from its checkpoint and changelog tail.
 */
// per_process only: under per_partition the survivor's producer fences the kept task's, whose next
// commit fails and reopens it, so that mode never went on from stale state (checked once, 2026-12-03).
{
  const transactions = 'per_process';
  test(`a member frozen while idle, thawed and given its partition back, counts on from the survivor's state (transactions ${transactions})`, { timeout: 300_000 }, async () => {
    const { topology, kafka, serde, collector, first, second } = await counterPair({ partitions: 2, store: 'lmdb', commitMaxRecords: 200, transactions }, cleanups);
    // The sticky plan lets the survivor (holding both) keep partition 0 and hands 1 back to the member
    // that reports holding it: the member frozen is the one holding 1.
    const [zombie, survivor] = assignedPartitions(first).includes(1) ? [first, second] : [second, first];
    const zombiePartition = 1;
    assert.deepEqual(assignedPartitions(zombie), [zombiePartition], 'each member holds one partition');
    const { expected, send, sendTo } = await countedSender(kafka, serde, topology.input, 16, cleanups);
    await send(0, 2_000);
    await collector.waitForCount(2_000, 60_000);

    const zombiePid = zombie.pid as number;
    const survivorLinesBefore = survivor.lines.length;
    const zombieLinesBefore = zombie.lines.length;
    process.kill(zombiePid, 'SIGSTOP'); // idle: every batch it had is committed
    try {
      await survivor.waitForLine(/"partitions":\[0,1\]/, 60_000, survivorLinesBefore);
      await send(2_000, 4_000); // the survivor counts both partitions on
      await collector.waitForCount(4_000, 60_000);
    } finally {
      process.kill(zombiePid, 'SIGCONT');
    }
    // Thawed, it rejoins; the group settles with one partition each again.
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && assignedPartitions(zombie, zombieLinesBefore).length !== 1) await sleep(200);
    assert.deepEqual(assignedPartitions(zombie, zombieLinesBefore), [zombiePartition], 'the sticky assignment handed the zombie its partition back (the case under test)');
    await send(4_000, 6_000);
    await collector.waitForCount(6_000, 120_000);
    const records = await countedThroughSentinels(collector, sendTo, 2, 6_000);
    assert.equal(records.length, 6_000, 'each input counted once');
    assertExactCounts(records, expected);
    const reopened = zombie.lines.slice(zombieLinesBefore).filter((line) => line.includes('rejoined the group after missing a generation'));
    console.log(`thawed zombie (${transactions}): ${reopened.length} rejoin line(s); first: ${reopened[0]?.slice(0, 300) ?? 'none'}`);
  });
}
