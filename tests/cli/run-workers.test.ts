// `lifeline run --workers 2`: two processes share the processor's partitions (Kafka's group spreads
// them), counts stay exact, and SIGTERM to the supervisor stops both workers and itself with exit 0.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { testKafka } from '../../testing/harness.ts';
import { keyPerPartition } from '../../testing/sentinel.ts';
import { LifelineProcess, TopicCollector, registeredSerde, testEvent, testEventTopic, writeCounterTopology } from '../../testing/runtime-fixture.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('run --workers 2: both workers take partitions of the group, every input is counted once, SIGTERM stops them all', { timeout: 180_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 4, store: 'lmdb' });
  const input = await testEventTopic(topology.input, 4);
  cleanups.push(() => input.close());
  const kafka = await testKafka();
  await ensureTopics(input.admin, [{ name: topology.output, partitions: 4 }]);
  const collector = await new TopicCollector<{ key: string; count: number }>(kafka, topology.output, await registeredSerde()).start();
  cleanups.push(() => collector.stop());
  const lifeline = new LifelineProcess(topology.file, ['--workers', '2']).start();
  cleanups.push(() => lifeline.kill('SIGKILL'));

  const workerPids = (): number[] => lifeline.lines.filter((line) => line.includes('"msg":"worker started"')).map((line) => (JSON.parse(line) as { pid: number }).pid);
  // Each worker logs the partitions it holds after every rebalance; wait until the latest of each covers all four, disjoint.
  const holdings = (): Map<number, number[]> => {
    const latest = new Map<number, number[]>();
    for (const line of lifeline.lines) {
      if (!line.includes('"msg":"partitions assigned"') || !line.includes(topology.label)) continue;
      const entry = JSON.parse(line) as { pid: number; partitions: number[] };
      latest.set(entry.pid, entry.partitions);
    }
    return latest;
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    const held = holdings();
    const all = [...held.values()].flat().sort();
    if (workerPids().length === 2 && held.size === 2 && [...held.values()].every((partitions) => partitions.length > 0) && all.join(',') === '0,1,2,3') break;
    if (Date.now() > deadline) throw new Error(`the two workers did not share the four partitions: ${JSON.stringify([...holdings()])}\n${lifeline.lines.slice(-10).join('\n')}`);
    await sleep(200);
  }
  assert.deepEqual(new Set(holdings().keys()), new Set(workerPids()), 'the partitions are held by the two workers');

  const total = 2_000;
  const events = Array.from({ length: total }, (_, index) => testEvent(index));
  await input.send(events);
  const sentinels = keyPerPartition('sentinel', 4).map((account, index) => ({ ...testEvent(total + index), account }));
  await input.send(sentinels);
  await collector.waitUntil((records) => sentinels.every((sentinel) => records.some(({ value }) => value.key === sentinel.account)), 'a sentinel counted on each partition', 90_000);
  const counts = new Map<string, number[]>();
  for (const { value } of collector.records) counts.set(value.key, [...(counts.get(value.key) ?? []), value.count]);
  const expected = new Map<string, number>();
  for (const event of [...events, ...sentinels]) expected.set(event.account, (expected.get(event.account) ?? 0) + 1);
  for (const [account, count] of expected) assert.deepEqual((counts.get(account) ?? []).sort((a, b) => a - b), Array.from({ length: count }, (_, index) => index + 1), account);

  const pids = workerPids();
  await lifeline.kill('SIGTERM');
  assert.equal(lifeline.exitCode, 0, 'the supervisor exits 0 after a requested stop');
  for (const pid of pids) {
    const gone = Date.now() + 10_000;
    while (alive(pid) && Date.now() < gone) await sleep(100);
    assert.equal(alive(pid), false, `worker ${pid} stopped with its supervisor`);
  }
});
