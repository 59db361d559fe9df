// Lifeline's own short-lived consumer groups (CLI reads, restores, reference tables, the control
// listener) are deleted once their consumer has left, instead of piling up until the broker expires them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deleteOwnGroup } from '../../../src/kafka/client.ts';
import { readTopicRanges } from '../../../src/kafka/topic-reader.ts';
import { createTestTopics, testKafka, uniqueName, uniqueTopic } from '../../../testing/harness.ts';

test('deleteOwnGroup removes a group its consumer has left; a CLI read leaves no group of its own behind', { timeout: 120_000 }, async () => {
  const kafka = await testKafka();
  const topic = uniqueTopic('test', 'groups', 'received');
  const admin = await createTestTopics(kafka, [{ name: topic, partitions: 1 }]);
  try {
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ key: 'a', value: 'one' }, { key: 'b', value: 'two' }] });
    await producer.disconnect();

    const groupId = uniqueName('_lifeline.test');
    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    let seen = 0;
    await new Promise<void>((resolve) => {
      void consumer.run({ eachMessage: async () => { if (++seen === 2) resolve(); } });
    });
    await consumer.disconnect();
    assert.ok((await admin.listGroups()).groups.some((group) => group.groupId === groupId), 'the group exists after its consumer left');
    await deleteOwnGroup(kafka, groupId);
    assert.ok(!(await admin.listGroups()).groups.some((group) => group.groupId === groupId), 'and is gone after deleteOwnGroup');

    const values: string[] = [];
    const readerGroup = uniqueName('_lifeline.reader');
    await readTopicRanges(kafka, topic, [{ partition: 0, from: 0n, to: 2n }], async (message) => { values.push(String(message.value)); }, { groupId: readerGroup });
    assert.deepEqual(values, ['one', 'two']);
    assert.ok(!(await admin.listGroups()).groups.some((group) => group.groupId === readerGroup), 'the read\'s group is gone');
  } finally {
    await admin.disconnect();
  }
});
