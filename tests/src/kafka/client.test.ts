import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CompressionTypes, type Admin, type Kafka } from 'kafkajs';
import { createTestTopics, testKafka, uniqueName } from '../../../testing/harness.ts';

let kafka: Kafka;
let admin: Admin;
before(async () => {
  kafka = await testKafka();
  admin = await createTestTopics(kafka, []);
});
after(async () => admin.disconnect());

test('a snappy-compressed batch round-trips through the real broker', async () => {
  const topic = uniqueName('test.snappy.batch.v1');
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  // Repetitive payloads, so the compressed batch is visibly smaller on the broker's disk.
  const messages = Array.from({ length: 500 }, (_, index) => ({
    key: `charge-${index}`,
    value: JSON.stringify({ index, text: 'Complete blood count with differential '.repeat(8) }),
    headers: { 'lifeline.idempotency-key': `LAB|ACME|${index}` },
  }));
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, compression: CompressionTypes.Snappy, messages });
  await producer.disconnect();

  const seen = new Map<string, string>();
  const consumer = kafka.consumer({ groupId: uniqueName('test-group') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        seen.set(String(message.key), String(message.value));
        assert.match(String(message.headers?.['lifeline.idempotency-key']), /^LAB\|ACME\|\d+$/);
        if (seen.size === messages.length) resolve();
      },
    });
  });
  await consumer.disconnect();
  for (const message of messages) assert.equal(seen.get(message.key), message.value);

  const sizes = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: topic, configNames: ['compression.type'] }] });
  assert.equal(sizes.resources[0]?.configEntries[0]?.configValue, 'producer', 'the broker keeps the producer\'s compression');
});
