import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { testKafka, uniqueName, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../testing/cli-runner.ts';
import { kafkaConsumerGroups } from '../../testing/kafka-tools.ts';
import { KEY_COUNT_SCHEMA, LifelineProcess, TEST_EVENT_SCHEMA, TopicCollector, registeredSerde, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';
import { keyPerPartition } from '../../testing/sentinel.ts';

interface KeyCount { key: string; count: number; origin_partition: number; origin_offset: number }
interface AuditLine { who: string; action: string; target: string; result: string; parameters: Record<string, unknown>; detail: string }
interface ResetJson { partitions: Array<{ topic: string; partition: number; current: string | null; target: string; toReprocess: string; records?: string; recordsExact?: boolean }> }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const BATCH_A = 60;
const BATCH_B = 40;

/** What the runtime said about pausing and resuming, for failure messages. */
function runtimeLog(lifeline: LifelineProcess): string {
  return lifeline.lines.filter((line) => /paus|resum|control|stopped|assigned|crash|fail|error/i.test(line)).slice(-40).join('\n');
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

test('a running group is reset to a timestamp without stopping lifeline run; Kafka\'s kafka-consumer-groups sees the offsets the CLI set; replays add no duplicate behind dedup; every action is audited', { timeout: 900_000 }, async () => {
  const input = uniqueTopic('test', 'event', 'received');
  const counts = input.replace('.received.v1', '.counted.v1');
  const unique = input.replace('.received.v1', '.deduplicated.v1');
  const duplicates = input.replace('.received.v1', '.duplicate.v1');
  const counter = uniqueLabel('event_counter');
  const deduplicator = uniqueLabel('event_dedup');
  const { file, appId } = await writeTestTopology({
    topics: {
      [input]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'event id', classification: 'phi' },
      [counts]: { schema: KEY_COUNT_SCHEMA, partitions: 3, key: 'account' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'event id', classification: 'phi' },
      [duplicates]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'event id', classification: 'phi' },
    },
    processors: {
      [counter]: { type: 'count_by_key', inputs: [input], outputs: { counts }, config: { key_field: 'account' } },
      [deduplicator]: { type: 'dedup', inputs: [input], outputs: { unique, duplicates } },
    },
  });
  const counterGroup = `${appId}.${counter}`;
  const dedupGroup = `${appId}.${deduplicator}`;
  const operators = writeTestOperators();
  const topology = ['--topology', file];

  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: input, partitions: 3 }]);
  const serde = await registeredSerde();
  await serde.register(input, loadContract(TEST_EVENT_SCHEMA));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  // Keyed by the event id, which is also its idempotency key: every record is its own dedup key.
  const send = async (events: readonly TestEvent[]): Promise<void> => {
    await producer.send({ topic: input, acks: -1, messages: await Promise.all(events.map(async (event) => ({
      key: event.id, value: await serde.encode(input, event), headers: { [LIFELINE_HEADERS.idempotencyKey]: event.id },
    }))) });
  };

  /** One event per input partition (keyed by id), counted under an account of their own. */
  const SENTINEL_ACCOUNT = 'SENTINEL';
  const sentinels = (prefix: string): TestEvent[] => keyPerPartition(prefix, 3).map((id, index) => ({ ...testEvent(1000 + index), id, account: SENTINEL_ACCOUNT }));

  const lifeline = new LifelineProcess(file).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/, 120_000);
  const countCollector = await new TopicCollector<KeyCount>(kafka, counts, serde).start();
  const uniqueCollector = await new TopicCollector<TestEvent>(kafka, unique, serde).start();
  const duplicateCollector = await new TopicCollector<TestEvent>(kafka, duplicates, serde).start();
  cleanups.push(() => countCollector.stop(), () => uniqueCollector.stop(), () => duplicateCollector.stop());

  await send(Array.from({ length: BATCH_A }, (_, index) => testEvent(index)));
  await countCollector.waitForCount(BATCH_A, 120_000);
  await sleep(50);
  const resetTo = new Date().toISOString(); // every record of batch A is older, every record of batch B newer
  await sleep(50);
  await send(Array.from({ length: BATCH_B }, (_, index) => testEvent(BATCH_A + index)));
  await countCollector.waitForCount(BATCH_A + BATCH_B, 120_000);
  await uniqueCollector.waitForCount(BATCH_A + BATCH_B, 120_000);
  const batchA = new Set(countCollector.records.slice(0, BATCH_A).map((record) => `${record.value.origin_partition}@${record.value.origin_offset}`));
  assert.equal(batchA.size, BATCH_A);

  // A viewer may look but not reset.
  const byViewer = await runLifeline(['offsets', 'reset', '--group', counterGroup, '--to-datetime', resetTo, '--execute', '--reason', 'viewer tries', ...topology], { env: operators.as('viola') });
  assert.equal(byViewer.code, 3, byViewer.stderr);
  assert.match(byViewer.stderr, /refused: viola \(viewer\) may not offsets\.reset/);

  // The dry run says what the reset will do, and changes nothing.
  const dryRun = await runLifeline(['offsets', 'reset', '--group', counterGroup, '--to-datetime', resetTo, '--dry-run', '--json', ...topology]);
  assert.equal(dryRun.code, 0, dryRun.stderr);
  const planned = JSON.parse(dryRun.stdout) as ResetJson;
  assert.equal(planned.partitions.reduce((sum, row) => sum + Number(row.toReprocess), 0) >= BATCH_B, true, 'the window holds batch B (plus transaction markers)');
  assert.ok(planned.partitions.every((row) => row.recordsExact === true), 'the dry run counted records, not offsets');
  assert.equal(planned.partitions.reduce((sum, row) => sum + Number(row.records), 0), BATCH_B, 'the records to reprocess are exactly batch B');

  // 1. Pause the running group (the runtime leaves it), reset it, and compare with Kafka's own tool while it is empty.
  const paused = await runLifeline(['groups', 'pause', counterGroup, '--for', '5m', '--reason', 'inspect before replay', ...topology], { env: operators.as('otto') });
  assert.equal(paused.code, 0, `${paused.stderr}\nruntime:\n${runtimeLog(lifeline)}`);
  assert.match(paused.stdout, /is empty; paused by/);
  const reset = await runLifeline(['offsets', 'reset', '--group', counterGroup, '--to-datetime', resetTo, '--execute', '--json', '--reason', 'replay batch B', ...topology], { env: operators.as('otto') });
  assert.equal(reset.code, 0, reset.stderr);
  const applied = (JSON.parse(reset.stdout) as ResetJson).partitions.map((row) => ({ topic: row.topic, partition: row.partition, offset: row.target }));
  assert.deepEqual(applied.map((row) => row.offset), planned.partitions.map((row) => row.target), 'the reset set what the dry run announced');
  const described = await kafkaConsumerGroups(['--describe', '--group', counterGroup]);
  assert.deepEqual(described.rows, applied, `kafka-consumer-groups --describe:\n${described.stdout}`);
  const toolsOwnReset = await kafkaConsumerGroups(['--reset-offsets', '--group', counterGroup, '--topic', input, '--to-datetime', resetTo, '--dry-run']);
  assert.deepEqual(toolsOwnReset.rows, applied, `kafka-consumer-groups --reset-offsets --dry-run computes the same targets:\n${toolsOwnReset.stdout}`);
  const resumed = await runLifeline(['groups', 'resume', counterGroup, '--reason', 'replay', ...topology], { env: operators.as('otto') });
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /resumed by/);

  // count_by_key re-emits on replay by design: exactly the records at or after the reset point, exactly once more.
  await countCollector.waitForCount(BATCH_A + 2 * BATCH_B, 180_000);
  // Sentinels instead of a sleep: one new event through each partition; once all are counted, an input counted a third time would have been too.
  await send(sentinels('sentinel-a'));
  await countCollector.waitUntil((records) => records.filter((record) => record.value.key === SENTINEL_ACCOUNT).length === 3, 'a sentinel on each partition', 120_000);
  const counted = countCollector.records.filter((record) => record.value.key !== SENTINEL_ACCOUNT);
  const emitted = new Map<string, number>();
  for (const record of counted) {
    const origin = `${record.value.origin_partition}@${record.value.origin_offset}`;
    emitted.set(origin, (emitted.get(origin) ?? 0) + 1);
  }
  assert.equal(counted.length, BATCH_A + 2 * BATCH_B);
  for (const [origin, times] of emitted) assert.equal(times, batchA.has(origin) ? 1 : 2, `input ${origin} counted ${times} times`);

  // 2. The one-command hot reset: dedup runs, is paused through the control topic, reset and resumed.
  const hot = await runLifeline(['offsets', 'reset', '--group', dedupGroup, '--to-datetime', resetTo, '--execute', '--reason', 'reprocess batch B through dedup', ...topology], { env: operators.as('otto') });
  assert.equal(hot.code, 0, `${hot.stderr}\nruntime:\n${runtimeLog(lifeline)}`);
  assert.match(hot.stderr, /is empty \(paused by .+\)/);
  assert.match(hot.stderr, /resumed by 1 runtime/);
  await duplicateCollector.waitForCount(BATCH_B, 180_000);
  // Sentinels again: new events on every partition pass dedup after everything the reset replayed.
  const afterReplay = sentinels('sentinel-b');
  await send(afterReplay);
  await uniqueCollector.waitUntil((records) => afterReplay.every((event) => records.some((record) => record.value.id === event.id)), 'a sentinel on each partition', 120_000);
  const isSentinel = (id: string): boolean => id.startsWith('sentinel-');
  // The replay happened (every batch B record came back and was recognised, the first sentinels too) and nothing passed twice.
  assert.deepEqual(duplicateCollector.records.map((record) => record.value.id).filter((id) => !isSentinel(id)).sort(), Array.from({ length: BATCH_B }, (_, index) => `evt-${BATCH_A + index}`).sort());
  const uniqueIds = uniqueCollector.records.map((record) => record.value.id).filter((id) => !isSentinel(id));
  assert.equal(uniqueIds.length, BATCH_A + BATCH_B, 'no record passed dedup twice');
  assert.equal(new Set(uniqueIds).size, BATCH_A + BATCH_B);

  // A pause holds only for its lease: with nobody resuming, the runtime rejoins by itself.
  const leased = await runLifeline(['groups', 'pause', dedupGroup, '--for', '15s', '--reason', 'lease check', ...topology], { env: operators.as('otto') });
  assert.equal(leased.code, 0, `${leased.stderr}\nruntime:\n${runtimeLog(lifeline)}`);
  assert.equal((await admin.describeGroups([dedupGroup])).groups[0]?.members.length, 0, 'paused');
  await until('the dedup group to rejoin after its lease', async () => (await admin.describeGroups([dedupGroup])).groups[0]?.state === 'Stable', 90_000);

  // 3. A group of another application that is active is refused; nothing changes.
  const foreignGroup = uniqueName('foreign-app');
  const foreign = kafka.consumer({ groupId: foreignGroup });
  await foreign.connect();
  cleanups.push(() => foreign.disconnect());
  await foreign.subscribe({ topic: input, fromBeginning: true });
  await foreign.run({ eachMessage: async () => undefined });
  await until('the foreign group to be stable', async () => (await admin.describeGroups([foreignGroup])).groups[0]?.state === 'Stable');
  const refused = await runLifeline(['offsets', 'reset', '--group', foreignGroup, '--topic', input, '--to-earliest', '--execute', '--ack-timeout', '3s', '--reason', 'not ours', ...topology], { env: operators.as('otto') });
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /no lifeline runtime acknowledged the pause/);

  // Every action left its trail.
  const audit = await runLifeline(['audit', 'list', '--json', ...topology]);
  assert.equal(audit.code, 0, audit.stderr);
  const entries = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditLine);
  const has = (who: string, action: string, target: string, result: string): boolean =>
    entries.some((entry) => entry.who === who && entry.action === action && entry.target === target && entry.result === result);
  assert.ok(has('viola', 'offsets.reset', counterGroup, 'refused'), 'the viewer\'s attempt');
  assert.ok(has('otto', 'groups.pause', counterGroup, 'started') && has('otto', 'groups.pause', counterGroup, 'succeeded'));
  assert.ok(has('otto', 'offsets.reset', counterGroup, 'started') && has('otto', 'offsets.reset', counterGroup, 'succeeded'));
  assert.ok(has('otto', 'groups.resume', counterGroup, 'succeeded'));
  assert.ok(has('otto', 'offsets.reset', dedupGroup, 'succeeded'));
  assert.ok(has('otto', 'offsets.reset', foreignGroup, 'failed'), 'the refused foreign reset is in the trail');
  const resetEntry = entries.find((entry) => entry.action === 'offsets.reset' && entry.target === counterGroup && entry.result === 'succeeded');
  assert.deepEqual((resetEntry?.parameters.offsets as Array<{ to: string }>).map((row) => row.to), applied.map((row) => row.offset), 'the audit entry records the offsets set');
  assert.equal(lifeline.exitCode, undefined, 'lifeline run kept running throughout');
});
