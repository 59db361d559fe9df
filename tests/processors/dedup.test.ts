import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { LifelineRuntime } from '../../src/runtime/lifeline-runtime.ts';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { DEDUP_RESULT_HEADER, contentHash } from '../../processors/dedup.ts';
import { uniqueTopic } from '../../testing/harness.ts';
import { keyPerPartition } from '../../testing/sentinel.ts';
import { TEST_EVENT_SCHEMA, TopicCollector, testEvent, testEventTopic, type TestEvent } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('content hashes ignore field order', () => {
  assert.equal(contentHash({ a: 1, b: { c: 2, d: [1, 2] } }), contentHash({ b: { d: [1, 2], c: 2 }, a: 1 }));
  assert.notEqual(contentHash({ a: 1 }), contentHash({ a: 2 }));
});

test('dedup passes each idempotency key once, routes repeats, passes amended content as an update, and keeps that across a restart', { timeout: 180_000 }, async () => {
  const input = uniqueTopic('partner', 'charge', 'received');
  const unique = input.replace('.received.v1', '.deduplicated.v1');
  const duplicates = input.replace('.received.v1', '.duplicate.v1');
  const label = uniqueLabel('charge_dedup');
  const { file } = await writeTestTopology({
    topics: {
      [input]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
      [duplicates]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
    },
    processors: { [label]: { type: 'dedup', inputs: [input], outputs: { unique, duplicates }, config: { ttl: '1d', pass_updates: true } } },
  });
  const source = await testEventTopic(input, 3);
  cleanups.push(() => source.close());
  const producer = source.kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  // Keyed by account, deduplicated by the idempotency-key header: records must be repartitioned by it.
  const sentBytes = new Map<string, Buffer>();
  const send = async (events: TestEvent[]): Promise<void> => {
    const messages = await Promise.all(events.map(async (event) => ({
      key: event.account, value: await source.serde.encode(input, event), headers: { [LIFELINE_HEADERS.idempotencyKey]: event.id },
    })));
    for (const [index, message] of messages.entries()) sentBytes.set(`${(events[index] as TestEvent).id}/${(events[index] as TestEvent).amount_minor}`, message.value);
    await producer.send({ topic: input, messages, acks: -1 });
  };
  const firsts = Array.from({ length: 600 }, (_, index) => testEvent(index, 17));
  const retried = firsts.filter((_, index) => index % 5 === 0); // 120 redeliveries, identical
  const amended = firsts.filter((_, index) => index % 50 === 7).map((event) => ({ ...event, amount_minor: event.amount_minor + 1 })); // 12 updates

  const registry = buildComponentRegistry();
  const start = async (): Promise<LifelineRuntime> => {
    const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
    cleanups.push(() => runtime.stop());
    await runtime.start();
    return runtime;
  };
  let runtime = await start();
  const passed = await new TopicCollector<TestEvent>(source.kafka, unique, source.serde).start();
  cleanups.push(() => passed.stop());
  const routed = await new TopicCollector<TestEvent>(source.kafka, duplicates, source.serde).start();
  cleanups.push(() => routed.stop());

  await send(firsts.slice(0, 400));
  await send(retried.slice(0, 40));
  await passed.waitForCount(400, 60_000);
  await runtime.stop(); // the keys seen so far must survive this
  runtime = await start();
  await send([...firsts.slice(400), ...retried.slice(40), ...amended, ...retried.slice(0, 10)]);
  await passed.waitForCount(600 + amended.length, 90_000);
  await routed.waitForCount(retried.length + 10, 60_000);
  // Sentinels instead of a sleep: a new idempotency key through each input partition and each
  // partition of the repartition hop; once every one has passed, a late duplicate would have too.
  const sentinels = keyPerPartition('sentinel-account', 3).flatMap((account, index) => keyPerPartition(`sentinel-${index}`, 3).map((id) => ({ ...testEvent(0), id, account })));
  await send(sentinels);
  await passed.waitUntil((records) => records.filter(({ value }) => value.id.startsWith('sentinel-')).length >= sentinels.length, 'a sentinel through every partition', 60_000);
  const metrics = await runtime.metrics.metricsText();
  await runtime.stop();

  assert.equal(passed.records.length, 600 + amended.length + sentinels.length, 'each key once, plus the amendments and the sentinels');
  const firstsPassed = passed.records.filter((record) => record.headers[DEDUP_RESULT_HEADER] === 'first' && !record.value.id.startsWith('sentinel-'));
  assert.equal(new Set(firstsPassed.map((record) => record.value.id)).size, 600);
  const updates = passed.records.filter((record) => record.headers[DEDUP_RESULT_HEADER] === 'update');
  assert.deepEqual(updates.map((record) => record.value.id).sort(), amended.map((event) => event.id).sort());
  for (const update of updates) assert.equal(update.value.amount_minor, (firsts.find((event) => event.id === update.value.id) as TestEvent).amount_minor + 1);
  // Passed on as it arrived (the output has the input's schema): the bytes sent, through the repartition hop too.
  for (const record of passed.records) assert.ok(record.rawValue?.equals(sentBytes.get(`${record.value.id}/${record.value.amount_minor}`) as Buffer), `${record.value.id}: the bytes sent`);
  assert.equal(routed.records.length, retried.length + 10, 'every redelivery routed, including those after the restart');
  assert.ok(routed.records.every((record) => record.headers[DEDUP_RESULT_HEADER] === 'duplicate'));
  // This runtime saw the redeliveries sent after the restart, plus any of the first 40 the first runtime had not reached.
  const counted = Number(new RegExp(`lifeline_processor_events_total\\{component="${label}",event="duplicates"\\} (\\d+)`).exec(metrics)?.[1]);
  assert.ok(counted >= retried.length - 40 + 10 && counted <= retried.length + 10, `duplicates counted: ${counted}`);
});
