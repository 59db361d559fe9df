import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { committedBacklog } from '../../../src/kafka/committed-backlog.ts';
import { createTestTopics, testKafka, uniqueName, uniqueTopic } from '../../../testing/harness.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('the backlog counts committed records only: no transaction markers, no aborted records', { timeout: 60_000 }, async () => {
  const kafka = await testKafka();
  const topic = uniqueTopic('test', 'backlog', 'written');
  const admin = await createTestTopics(kafka, [{ name: topic, partitions: 1 }]);
  cleanups.push(() => admin.disconnect());
  const producer = kafka.producer({ transactionalId: uniqueName('backlog-test'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const write = async (count: number, commit: boolean): Promise<void> => {
    const transaction = await producer.transaction();
    await transaction.send({ topic, messages: Array.from({ length: count }, (_, index) => ({ key: `k${index}`, value: 'v', partition: 0 })) });
    if (commit) await transaction.commit();
    else await transaction.abort();
  };
  await write(5, true);   // offsets 0-4, commit marker at 5
  await write(3, false);  // 6-8 aborted, abort marker at 9
  await write(2, true);   // 10-11, commit marker at 12: LSO 13
  const [fromStart, afterFirst, caughtUp] = await committedBacklog(kafka, [
    { topic, partition: 0, from: null },
    { topic, partition: 0, from: 5n },
    { topic, partition: 0, from: 12n },
  ]);
  assert.equal(fromStart?.end, 13n);
  assert.deepEqual([fromStart?.records, fromStart?.exact], [7n, true], '5 + 2 committed records, markers and aborted ones not counted');
  assert.deepEqual([afterFirst?.records, afterFirst?.exact], [2n, true]);
  assert.deepEqual([caughtUp?.records, caughtUp?.exact], [0n, true], 'a caught-up reader of a transactional topic has no backlog (the marker is not one)');
});
