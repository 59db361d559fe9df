import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { deadLetterTopic } from '../../src/topology/model.ts';
import { DEDUP_CONFLICT_HEADERS } from '../../processors/dedup.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, TopicCollector, registeredSerde, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

/**
 * A dedup without a `conflicts` output: a key that comes again with other content is a dead letter
 * (LL_DEDUP_CONFLICT, raw bytes kept), visible with `lifeline dlq list/show` with PHI masked and
 * both fingerprints in its headers — while the duplicate of the first content is still dropped.
 */

interface DeadLetterView { errorClass: string; errorMessage?: string; message?: string; idempotencyKey: string | null; headers?: Record<string, string>; value: { patient_mrn: string; amount_minor: number } }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('without a conflicts output, a conflict is a dead letter that lifeline dlq shows, PHI masked, with both fingerprints', { timeout: 240_000 }, async () => {
  const input = uniqueTopic('partner', 'charge', 'received');
  const unique = input.replace('.received.v1', '.deduplicated.v1');
  const label = uniqueLabel('charge_dedup');
  const { file } = await writeTestTopology({
    topics: {
      [input]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
    },
    processors: { [label]: { type: 'dedup', inputs: [input], outputs: { unique }, config: { ttl: '1d' } } },
  });
  const lifeline = new LifelineProcess(file).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/, 120_000);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const passed = await new TopicCollector<TestEvent>(kafka, unique, serde).start();
  cleanups.push(() => passed.stop());
  const send = async (events: TestEvent[]): Promise<void> => {
    await producer.send({ topic: input, acks: -1, messages: await Promise.all(events.map(async (event) => ({
      key: event.account, value: await serde.encode(input, event), headers: { [LIFELINE_HEADERS.idempotencyKey]: `charge-${event.id}` },
    }))) });
  };
  const first = testEvent(1, 4);
  const other = testEvent(2, 4);
  await send([first, first, { ...first, amount_minor: first.amount_minor + 500 }, other]);
  await passed.waitForCount(2, 60_000);

  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  const dlqTopic = deadLetterTopic(label);
  const deadline = Date.now() + 60_000;
  const count = async (): Promise<number> => ((await admin.listTopics()).includes(dlqTopic) ? (await admin.fetchTopicOffsets(dlqTopic)).reduce((sum, entry) => sum + Number(entry.high), 0) : 0);
  while ((await count()) < 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 300));

  const listed = await runLifeline(['dlq', 'list', '--json', '--topology', file]);
  assert.equal(listed.code, 0, listed.stderr);
  const summary = (JSON.parse(listed.stdout) as Array<{ topic: string; byErrorClass: Record<string, number> }>).find((row) => row.topic === dlqTopic);
  assert.deepEqual(summary?.byErrorClass, { LL_DEDUP_CONFLICT: 1 });
  const shown = await runLifeline(['dlq', 'show', label, '--json', '--topology', file]);
  assert.equal(shown.code, 0, shown.stderr);
  const letters = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as DeadLetterView);
  assert.equal(letters.length, 1);
  const letter = letters[0] as DeadLetterView;
  assert.equal(letter.errorClass, 'LL_DEDUP_CONFLICT');
  assert.equal(letter.idempotencyKey, `charge-${first.id}`);
  assert.equal(letter.value.amount_minor, first.amount_minor + 500, 'the conflicting record is kept whole');
  assert.equal(letter.value.patient_mrn, '[PHI]');
  assert.ok(!shown.stdout.includes(first.patient_mrn), 'no patient identifier anywhere in the output');
  assert.match(shown.stdout, /fingerprint first seen [0-9a-f]{16}, this one [0-9a-f]{16}/);
  assert.match(shown.stdout, new RegExp(DEDUP_CONFLICT_HEADERS.previousFingerprint.replace(/\./g, '\\.')));
  assert.equal(passed.records.length, 2, 'the first content and the other key passed; the duplicate did not');
});
