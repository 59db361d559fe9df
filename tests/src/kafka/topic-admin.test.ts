import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { ensureTopics } from '../../../src/kafka/topic-admin.ts';
import { createTestTopics, testKafka, uniqueName } from '../../../testing/harness.ts';

const { ConfigResourceTypes } = kafkajs;
let kafka: Kafka;
let admin: Admin;
before(async () => {
  kafka = await testKafka();
  admin = await createTestTopics(kafka, []);
});
after(async () => admin.disconnect());

async function topicConfig(name: string): Promise<Record<string, string>> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name }] });
  return Object.fromEntries((described.resources[0]?.configEntries ?? []).map((entry) => [entry.configName, entry.configValue]));
}

test('declared topics are created with partitions, retention and compaction, and re-applying is a no-op', async () => {
  const events = uniqueName('test.events.v1');
  const table = uniqueName('test.table.v1');
  const specs = [
    { name: events, partitions: 3, retentionMs: 7 * 24 * 3600 * 1000 },
    { name: table, partitions: 2, cleanupPolicy: 'compact' as const },
  ];
  const first = await ensureTopics(admin, specs);
  assert.deepEqual(first.created.sort(), [events, table].sort());
  const metadata = await admin.fetchTopicMetadata({ topics: [events, table] });
  assert.equal(metadata.topics.find((topic) => topic.name === events)?.partitions.length, 3);
  assert.equal(metadata.topics.find((topic) => topic.name === table)?.partitions.length, 2);
  assert.equal((await topicConfig(events))['retention.ms'], String(7 * 24 * 3600 * 1000));
  assert.equal((await topicConfig(table))['cleanup.policy'], 'compact');

  const second = await ensureTopics(admin, specs);
  assert.deepEqual(second, { created: [], updated: [], unchanged: specs.map((spec) => spec.name) });
});

test('a changed retention is applied to the existing topic', async () => {
  const name = uniqueName('test.retention.v1');
  await ensureTopics(admin, [{ name, partitions: 1, retentionMs: 3_600_000 }]);
  const result = await ensureTopics(admin, [{ name, partitions: 1, retentionMs: 7_200_000 }]);
  assert.deepEqual(result.updated, [name]);
  assert.equal((await topicConfig(name))['retention.ms'], '7200000');
});

test('a partition count that differs from the declaration is an error, not a silent repartition', async () => {
  const name = uniqueName('test.partitions.v1');
  await ensureTopics(admin, [{ name, partitions: 2 }]);
  await assert.rejects(ensureTopics(admin, [{ name, partitions: 4 }]), { code: 'LL_TOPIC_MISMATCH', message: /has 2 partitions but is declared with 4/ });
});
