import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEDUP_RESULT_HEADER, dedup } from '../../processors/dedup.ts';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { TopologyTestDriver } from '../../src/testing/topology-test-driver.ts';
import { TEST_EVENT_SCHEMA, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';

// dedup on the topology test driver: the repartition by idempotency key, the store and its TTL on
// the driver clock, updates and versions, dead letters. dedup.test.ts proves exactly-once across a
// restart against Kafka.

const RECEIVED = 'partner.charge.received.v1';
const UNIQUE = 'partner.charge.deduplicated.v1';
const DUPLICATES = 'partner.charge.duplicate.v1';
const LABEL = 'charge_dedup';
const HOUR = 3_600_000;

function dedupDriver(config: Record<string, unknown>): Promise<TopologyTestDriver> {
  return TopologyTestDriver.forProcessor(dedup, {
    label: LABEL,
    config,
    topics: {
      [RECEIVED]: { schema: TEST_EVENT_SCHEMA, partitions: 3 },
      [UNIQUE]: { schema: TEST_EVENT_SCHEMA, partitions: 3 },
      [DUPLICATES]: { schema: TEST_EVENT_SCHEMA, partitions: 3 },
    },
    inputs: [RECEIVED],
    outputs: { unique: UNIQUE, duplicates: DUPLICATES },
  });
}

/** Keyed by account, deduplicated by the idempotency-key header (so repartitioned by it). */
const delivery = (event: TestEvent) => ({ key: event.account, value: event, headers: { [LIFELINE_HEADERS.idempotencyKey]: event.id } });

test('dedup passes each idempotency key once, routes repeats, and passes amended content as an update', async () => {
  const driver = await dedupDriver({ ttl: '1d', pass_updates: true });
  const firsts = Array.from({ length: 60 }, (_, index) => testEvent(index, 7));
  const retried = firsts.filter((_, index) => index % 5 === 0);
  const amended = firsts.filter((_, index) => index % 20 === 7).map((event) => ({ ...event, amount_minor: event.amount_minor + 1 }));
  await driver.input<TestEvent>(RECEIVED).pipeAll([...firsts, ...retried, ...amended, ...retried.slice(0, 2)].map(delivery));

  const passed = driver.output<TestEvent>(UNIQUE).readRecords();
  assert.equal(passed.length, firsts.length + amended.length, 'each key once, plus the amendments');
  assert.deepEqual(passed.filter((record) => record.headers[DEDUP_RESULT_HEADER] === 'first').map((record) => record.value.id), firsts.map((event) => event.id));
  assert.deepEqual(passed.filter((record) => record.headers[DEDUP_RESULT_HEADER] === 'update').map((record) => record.value), amended);
  const routed = driver.output<TestEvent>(DUPLICATES).readRecords();
  assert.equal(routed.length, retried.length + 2);
  assert.ok(routed.every((record) => record.headers[DEDUP_RESULT_HEADER] === 'duplicate'));
  assert.ok([...passed, ...routed].every((record) => record.key === record.value.id), 'after the hop, records are keyed by their idempotency key');
  assert.ok(passed.every((record) => record.headers[LIFELINE_HEADERS.idempotencyKey] === record.value.id), 'input headers travel on');
  assert.deepEqual(await driver.processorEvents(LABEL), { first: 60, duplicates: retried.length + 2, updates: amended.length });
  // Every record went through the repartition topic once, keyed by its idempotency key.
  const hops = driver.output(`_lifeline.lifeline.${LABEL}.by_idempotency_key.repartition`).readKeyValues();
  assert.equal(hops.length, firsts.length + retried.length + amended.length + 2);
  assert.equal(driver.store(LABEL, 'seen_keys').size, firsts.length);
  await driver.close();
});

test('dedup forgets a key ttl after it was last seen, on the driver clock; a repeat restarts the window', async () => {
  const driver = await dedupDriver({ ttl: '2h' });
  const input = driver.input<TestEvent>(RECEIVED);
  const passed = driver.output<TestEvent>(UNIQUE);
  await input.pipe(delivery(testEvent(1)));
  await driver.advanceWallClockTime(HOUR + 30 * 60_000);
  await input.pipe(delivery(testEvent(1))); // seen again at 1h30: remembered until 3h30
  await driver.advanceWallClockTime(HOUR);
  await input.pipe(delivery(testEvent(1))); // 2h30: still a duplicate
  assert.equal(passed.readRecords().length, 1);
  await driver.advanceWallClockTime(2 * HOUR);
  assert.equal(driver.store(LABEL, 'seen_keys').size, 0, 'the expired key left the store');
  await input.pipe(delivery(testEvent(1)));
  assert.deepEqual(passed.readRecords().map((record) => record.headers[DEDUP_RESULT_HEADER]), ['first'], 'a copy after the ttl passes again');
  await driver.close();
});

test('dedup with version_path passes a higher version only; repartition: false keeps the record key', async () => {
  const driver = await dedupDriver({ key_path: 'id', pass_updates: true, version_path: 'amount_minor', repartition: false });
  const event = { ...testEvent(3), account: 'ACC-3' };
  await driver.input<TestEvent>(RECEIVED).pipeAll([
    { key: event.id, value: event },
    { key: event.id, value: { ...event, amount_minor: event.amount_minor + 5 } },
    { key: event.id, value: { ...event, amount_minor: event.amount_minor + 2 } }, // older than the last: never overwrites it
  ]);
  assert.deepEqual(driver.output<TestEvent>(UNIQUE).readValues().map((value) => value.amount_minor), [event.amount_minor, event.amount_minor + 5]);
  assert.equal(driver.output(DUPLICATES).readValues().length, 1);
  assert.throws(() => driver.output(`_lifeline.lifeline.${LABEL}.by_idempotency_key.repartition`), /no topic/, 'no repartition hop');
  assert.ok(driver.output<TestEvent>(UNIQUE).allRecords().every((record) => record.key === event.id));
  await driver.close();
});

test('dedup dead-letters a record without an idempotency key, raw bytes and headers kept', async () => {
  const driver = await dedupDriver({});
  await driver.input<TestEvent>(RECEIVED).pipe({ key: 'ACC-1', value: testEvent(9), headers: { 'lifeline.correlation-id': 'c-9' } });
  const [letter, ...more] = driver.deadLetters(LABEL);
  assert.equal(more.length, 0);
  assert.match(letter?.errorMessage ?? '', /dedup: record has no idempotency key \(header lifeline\.idempotency-key is missing\)/);
  assert.deepEqual(letter?.value, testEvent(9));
  assert.equal(letter?.headers['lifeline.correlation-id'], 'c-9');
  assert.deepEqual(letter?.origin, { topic: RECEIVED, partition: letter?.origin.partition, offset: '0' });
  assert.equal(driver.output(UNIQUE).queueSize, 0);
  await driver.close();
});
