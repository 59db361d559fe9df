import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { enrich } from '../../processors/enrich.ts';
import { TopologyTestDriver } from '../../src/testing/topology-test-driver.ts';
import { TEST_EVENT_SCHEMA, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';

// enrich on the topology test driver: the reference table fed from its topic, a held event
// released by the timer once the table has its key, the timeout dead letter — all on the driver
// clock. enrich.test.ts proves the same against Kafka.

const PRODUCT_SCHEMA = resolve('tests/fixtures/schemas/test_product.avsc');
const ENRICHED_SCHEMA = resolve('tests/fixtures/schemas/test_event_enriched.avsc');
const EVENTS = 'partner.dispense.received.v1';
const PRODUCTS = 'odoo.product.changed.v1';
const ENRICHED = 'partner.dispense.enriched.v1';
const LABEL = 'dispense_enrich';

interface Enriched extends TestEvent { odoo_product_id: number | null; unit_price_minor: number | null; enrichment_status: string }

function enrichDriver(onMiss: 'emit' | 'wait' | 'dlq'): Promise<TopologyTestDriver> {
  return TopologyTestDriver.forProcessor(enrich, {
    label: LABEL,
    config: {
      tables: { products: { topic: PRODUCTS, key_field: 'default_code' } },
      joins: [{ table: 'products', key_path: 'account', fields: { odoo_product_id: 'id', unit_price_minor: 'list_price_minor' } }],
      on_miss: onMiss, wait_timeout: '3s', check_interval: '200ms', status_field: 'enrichment_status',
    },
    topics: {
      [EVENTS]: { schema: TEST_EVENT_SCHEMA, partitions: 2 },
      [PRODUCTS]: { schema: PRODUCT_SCHEMA },
      [ENRICHED]: { schema: ENRICHED_SCHEMA, partitions: 2 },
    },
    inputs: [EVENTS],
    outputs: { enriched: ENRICHED },
  });
}

const product = (id: number, code: string, price: number) => ({ key: `product.product:${id}`, value: { id, default_code: code, name: `Service ${code}`, list_price_minor: price } });
const keyed = (event: TestEvent) => ({ key: event.account, value: event });

test('enrich joins events with a reference table indexed by a field, and follows the table', async () => {
  const driver = await enrichDriver('emit');
  await driver.input(PRODUCTS).pipeAll([0, 1, 2, 3, 4].map((code) => product(100 + code, `ACC-${code}`, 1000 + code)));
  await driver.input<TestEvent>(EVENTS).pipeAll(Array.from({ length: 14 }, (_, index) => keyed(testEvent(index, 7))));
  const output = driver.output<Enriched>(ENRICHED);
  for (const value of output.readValues()) {
    const code = Number(value.account.slice(4));
    assert.deepEqual(
      [value.enrichment_status, value.odoo_product_id, value.unit_price_minor],
      code < 5 ? ['enriched', 100 + code, 1000 + code] : ['unenriched', null, null],
      value.account,
    );
  }
  await driver.input(PRODUCTS).pipe(product(100, 'ACC-0', 4242)); // a price change in Odoo
  await driver.input(PRODUCTS).pipe(product(101, 'ACC-1-renamed', 1001)); // a code change moves the index entry
  await driver.input<TestEvent>(EVENTS).pipeAll([keyed(testEvent(700, 7)), keyed(testEvent(701, 7))]); // ACC-0, ACC-1
  assert.deepEqual(output.readValues().map((value) => [value.account, value.unit_price_minor]), [['ACC-0', 4242], ['ACC-1', null]]);
  assert.deepEqual(await driver.processorEvents(LABEL), { enriched: 11, unenriched: 5 });
  await driver.close();
});

test('on_miss: wait holds an event until the table has its key, and dead-letters it after the timeout', async () => {
  const driver = await enrichDriver('wait');
  await driver.input(PRODUCTS).pipe(product(100, 'ACC-0', 1000));
  await driver.input<TestEvent>(EVENTS).pipeAll([keyed(testEvent(0, 7)), keyed(testEvent(5, 7)), keyed(testEvent(6, 7))]);
  const output = driver.output<Enriched>(ENRICHED);
  assert.deepEqual(output.readValues().map((value) => value.account), ['ACC-0']);
  assert.equal(driver.store(LABEL, 'held_events').size, 2, 'the two unknown ones are held');

  await driver.input(PRODUCTS).pipe(product(105, 'ACC-5', 1505));
  assert.equal(output.queueSize, 0, 'released by the timer, not by the table update');
  await driver.advanceWallClockTime(200);
  assert.deepEqual(output.readValues().map((value) => [value.account, value.unit_price_minor]), [['ACC-5', 1505]]);

  await driver.advanceWallClockTime(2600);
  assert.deepEqual(driver.deadLetters(), [], 'not before wait_timeout');
  await driver.advanceWallClockTime(200);
  const [letter, ...more] = driver.deadLetters(LABEL);
  assert.equal(more.length, 0);
  assert.equal(letter?.errorClass, 'EnrichmentMiss');
  assert.match(letter?.errorMessage ?? '', /still no products entry for account after 3s/);
  assert.equal(letter?.key, 'ACC-6');
  assert.deepEqual(letter?.value, testEvent(6, 7), 'the raw Avro bytes are kept');
  assert.equal(driver.store(LABEL, 'held_events').size, 0);
  assert.deepEqual(await driver.processorEvents(LABEL), { enriched: 1, held: 2, released: 1, timed_out: 1 });
  await driver.close();
});

test('on_miss: dlq dead-letters a miss at once, naming the table and field but not the value', async () => {
  const driver = await enrichDriver('dlq');
  await driver.input<TestEvent>(EVENTS).pipe(keyed(testEvent(5, 7)));
  const [letter] = driver.deadLetters(LABEL);
  assert.match(letter?.errorMessage ?? '', /no products entry for account in the reference tables/);
  assert.doesNotMatch(letter?.errorMessage ?? '', /ACC-5|MRN/);
  assert.equal(driver.output(ENRICHED).queueSize, 0);
  await driver.close();
});
