import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countByKey } from '../../processors/count-by-key.ts';
import { TopologyTestDriver } from '../../src/testing/topology-test-driver.ts';
import { KEY_COUNT_SCHEMA, TEST_EVENT_SCHEMA, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';

// count_by_key on the topology test driver: running counts per key in its store, the origin of each
// count, counting by a value field, and the ttl on the driver clock. The runtime's exactly-once tests
// (tests/src/runtime/) run it against Kafka.

const EVENTS = 'test.event.received.v1';
const COUNTS = 'test.key_count.updated.v1';
const LABEL = 'event_counter';
const DAY = 86_400_000;

interface KeyCount { key: string; count: number; origin_topic: string; origin_partition: number; origin_offset: number }

function counter(config: Record<string, unknown>, partitions = 3): Promise<TopologyTestDriver> {
  return TopologyTestDriver.forProcessor(countByKey, {
    label: LABEL,
    config,
    topics: { [EVENTS]: { schema: TEST_EVENT_SCHEMA, partitions }, [COUNTS]: { schema: KEY_COUNT_SCHEMA, partitions } },
    inputs: [EVENTS],
    outputs: { counts: COUNTS },
  });
}

const byAccount = (event: TestEvent) => ({ key: event.account, value: event });

test('count_by_key emits the running count per record key, with the topic, partition and offset of the record that moved it', async () => {
  const driver = await counter({});
  const events = Array.from({ length: 12 }, (_, index) => testEvent(index, 4));
  await driver.input<TestEvent>(EVENTS).pipeAll(events.map(byAccount));

  const counts = driver.output<KeyCount>(COUNTS).readRecords();
  assert.equal(counts.length, events.length, 'one count per record');
  assert.deepEqual(counts.filter((record) => record.key === 'ACC-1').map((record) => record.value.count), [1, 2, 3]);
  const inputs = driver.output<TestEvent>(EVENTS).allRecords();
  for (const { value } of counts) {
    const origin = inputs.find((record) => record.partition === value.origin_partition && Number(record.offset) === value.origin_offset);
    assert.equal(value.origin_topic, EVENTS);
    assert.equal(origin?.key, value.key, `${value.key}#${value.count} points at a record of its key`);
  }
  for (const account of ['ACC-0', 'ACC-1', 'ACC-2', 'ACC-3']) assert.equal(driver.store<number>(LABEL, 'counts').get(account), 3, `${account} in the store`);
  await driver.close();
});

test('key_field counts by a field of the value instead of the record key', async () => {
  // One partition: keyed by id, one account's records can land on several partitions, and each
  // partition's task keeps its own count (the counts are per task's store, like any stateful processor's).
  const driver = await counter({ key_field: 'account' }, 1);
  await driver.input<TestEvent>(EVENTS).pipeAll(Array.from({ length: 6 }, (_, index) => testEvent(index, 2)).map((event) => ({ key: event.id, value: event })));
  assert.deepEqual(driver.output<KeyCount>(COUNTS).readValues().map((value) => `${value.key}=${value.count}`), ['ACC-0=1', 'ACC-1=1', 'ACC-0=2', 'ACC-1=2', 'ACC-0=3', 'ACC-1=3']);
  await driver.close();
});

test('with a ttl a key is forgotten that long after its last record, on the driver clock; without one it is kept', async () => {
  const forgetting = await counter({ ttl: '2d' });
  const input = forgetting.input<TestEvent>(EVENTS);
  await input.pipe(byAccount(testEvent(1)));
  await forgetting.advanceWallClockTime(DAY);
  await input.pipe(byAccount(testEvent(1))); // seen again after a day: kept until day 3
  await forgetting.advanceWallClockTime(DAY + 3_600_000);
  assert.equal(forgetting.store(LABEL, 'counts').size, 1, 'still there a day later');
  await forgetting.advanceWallClockTime(DAY);
  assert.equal(forgetting.store(LABEL, 'counts').size, 0, 'gone two days after its last record');
  await input.pipe(byAccount(testEvent(1)));
  assert.deepEqual(forgetting.output<KeyCount>(COUNTS).readValues().map((value) => value.count), [1, 2, 1], 'counting starts over');
  await forgetting.close();

  const keeping = await counter({});
  await keeping.input<TestEvent>(EVENTS).pipe(byAccount(testEvent(1)));
  await keeping.advanceWallClockTime(365 * DAY);
  await keeping.input<TestEvent>(EVENTS).pipe(byAccount(testEvent(1)));
  assert.deepEqual(keeping.output<KeyCount>(COUNTS).readValues().map((value) => value.count), [1, 2]);
  await keeping.close();
});
