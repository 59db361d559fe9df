import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { DEAD_LETTER_HEADERS } from '../../src/runtime/dead-letter.ts';
import { LifelineRuntime } from '../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { deadLetterTopic } from '../../src/topology/model.ts';
import { uniqueTopic } from '../../testing/harness.ts';
import { TEST_EVENT_SCHEMA, TopicCollector, testEvent, testEventTopic, type TestEvent } from '../../testing/runtime-fixture.ts';
import { keyPerPartition } from '../../testing/sentinel.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

const PRODUCT_SCHEMA = 'tests/fixtures/schemas/test_product.avsc';
const ENRICHED_SCHEMA = 'tests/fixtures/schemas/test_event_enriched.avsc';

interface Enriched extends TestEvent { odoo_product_id: number | null; unit_price_minor: number | null; enrichment_status: string }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function scenario(onMiss: 'emit' | 'wait') {
  const events = uniqueTopic('partner', 'dispense', 'received');
  const products = uniqueTopic('odoo', 'product', 'changed');
  const enriched = events.replace('.received.v1', '.enriched.v1');
  const label = uniqueLabel('dispense_enrich');
  const { file } = await writeTestTopology({
    topics: {
      [events]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [products]: { schema: PRODUCT_SCHEMA, partitions: 1, compact: true, key: '<model>:<id>' },
      [enriched]: { schema: ENRICHED_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
    },
    processors: {
      [label]: {
        type: 'enrich', inputs: [events], outputs: { enriched },
        config: {
          tables: { products: { topic: products, key_field: 'default_code' } },
          joins: [{ table: 'products', key_path: 'account', fields: { odoo_product_id: 'id', unit_price_minor: 'list_price_minor' } }],
          // wait_timeout: long enough that ACC-5 is still held when the test publishes its product on a loaded machine.
          on_miss: onMiss, wait_timeout: '10s', check_interval: '200ms', status_field: 'enrichment_status',
        },
      },
    },
  });
  const input = await testEventTopic(events, 2);
  cleanups.push(() => input.close());
  await ensureTopics(input.admin, [{ name: products, partitions: 1, cleanupPolicy: 'compact' }]);
  await input.serde.register(products, loadContract(PRODUCT_SCHEMA));
  const producer = input.kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const publishProduct = async (id: number, code: string, price: number): Promise<void> => {
    await producer.send({ topic: products, messages: [{ key: `product.product:${id}`, value: await input.serde.encode(products, { id, default_code: code, name: `Service ${code}`, list_price_minor: price }) }] });
  };
  for (let id = 0; id < 5; id++) await publishProduct(100 + id, `ACC-${id}`, 1000 + id);

  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start(); // returns once the table has caught up
  const output = await new TopicCollector<Enriched>(input.kafka, enriched, input.serde).start();
  cleanups.push(() => output.stop());
  return { input, runtime, output, publishProduct, label };
}

test('enrich joins events with a reference table indexed by a field, and sees table updates', { timeout: 120_000 }, async () => {
  const { input, runtime, output, publishProduct } = await scenario('emit');
  await input.send(Array.from({ length: 14 }, (_, index) => testEvent(index, 7))); // ACC-0..ACC-6; 5 and 6 are unknown
  await output.waitForCount(14, 30_000);
  for (const { value } of output.records) {
    const code = Number(value.account.slice(4));
    if (code < 5) {
      assert.equal(value.enrichment_status, 'enriched');
      assert.equal(value.odoo_product_id, 100 + code);
      assert.equal(value.unit_price_minor, 1000 + code);
    } else {
      assert.equal(value.enrichment_status, 'unenriched');
      assert.equal(value.odoo_product_id, null);
    }
  }
  await publishProduct(100, 'ACC-0', 4242); // a price change in Odoo
  // The table follows its topic on a consumer of its own: charges for ACC-0 carry the new price
  // soon. Polled with a bound rather than a fixed sleep (too short on a loaded machine).
  const deadline = Date.now() + 30_000;
  for (let sent = 15, index = 700; ; sent++, index += 7) {
    await input.send([testEvent(index, 7)]); // account ACC-0
    await output.waitForCount(sent, 30_000);
    if (output.records[sent - 1]?.value.unit_price_minor === 4242) break;
    assert.equal(output.records[sent - 1]?.value.unit_price_minor, 1000, 'the old price until the change arrives');
    assert.ok(Date.now() < deadline, 'the table took the price change within 30 s');
    await sleep(200);
  }
  await runtime.stop();
});

test('on_miss: wait holds an event until the table has its key, and dead-letters it after the timeout', { timeout: 120_000 }, async () => {
  const { input, runtime, output, publishProduct, label } = await scenario('wait');
  // Sentinels instead of a sleep: an event with a known account on each input partition, sent after
  // the scenario. Records of a partition keep their order, so once both sentinels are out, ACC-5 and
  // ACC-6 would be out too had they not been held.
  const sentinels = keyPerPartition('SENTINEL', 2).map((account, partition) => ({ ...testEvent(700 + partition), id: `sentinel-${partition}`, account }));
  for (const [index, sentinel] of sentinels.entries()) await publishProduct(900 + index, sentinel.account, 1);
  await input.send([testEvent(0, 7), testEvent(5, 7), testEvent(6, 7)]); // ACC-0 known, ACC-5 and ACC-6 not yet
  await input.send(sentinels);
  await output.waitUntil((records) => sentinels.every((sentinel) => records.some((record) => record.value.id === sentinel.id)), 'a sentinel from each partition', 30_000);
  const isSentinel = (record: { value: TestEvent }): boolean => record.value.id.startsWith('sentinel-');
  assert.deepEqual(output.records.filter((record) => !isSentinel(record)).map((record) => record.value.account), ['ACC-0'], 'the two unknown ones are held');
  await publishProduct(105, 'ACC-5', 1505);
  await output.waitForCount(4, 30_000);
  const released = output.records.filter((record) => !isSentinel(record));
  assert.equal(released[1]?.value.account, 'ACC-5');
  assert.equal(released[1]?.value.unit_price_minor, 1505);
  const deadLetters = await new TopicCollector<Buffer>(input.kafka, deadLetterTopic(label)).start();
  cleanups.push(() => deadLetters.stop());
  await deadLetters.waitForCount(1, 30_000);
  const letter = deadLetters.records[0];
  assert.equal(letter?.headers[DEAD_LETTER_HEADERS.errorClass], 'EnrichmentMiss');
  assert.match(letter?.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', /still no products entry for account after 10s/);
  assert.equal((await input.serde.decode(letter?.value as Buffer)).value && 'ok', 'ok', 'the raw Avro bytes are kept');
  assert.equal(letter?.key, 'ACC-6');
  await runtime.stop();
});
