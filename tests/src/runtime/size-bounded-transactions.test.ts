import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import kafkajs from 'kafkajs';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../../src/kafka/topic-admin.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { DEAD_LETTER_HEADERS } from '../../../src/runtime/dead-letter.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { uniqueTopic } from '../../../testing/harness.ts';
import { TEST_EVENT_SCHEMA, TopicCollector, testEventTopic, type TestEvent } from '../../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../../testing/topology-writer.ts';
import { metricValue, until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11, "no livelock on size": 5 KiB, 200 KiB and (topic limit + 1) byte records through a
 * dedup → enrich chain with the default commit settings (500 records / 1 s). The chain's topics
 * accept 256 KiB, so one transaction of these records is several times what a record batch may
 * hold: without byte bounds the broker answers MESSAGE_TOO_LARGE and the batch is retried for ever.
 */

const PRODUCT_SCHEMA = 'tests/fixtures/schemas/test_product.avsc';
const ENRICHED_SCHEMA = 'tests/fixtures/schemas/test_event_enriched.avsc';
const CHAIN_TOPIC_LIMIT = 262_144;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('5 KiB, 200 KiB and topic-limit+1 records through dedup → enrich with default commit settings: progress, the oversized one dead-lettered', { timeout: 180_000 }, async () => {
  const events = uniqueTopic('partner', 'big_event', 'received');
  const unique = events.replace('.received.v1', '.deduplicated.v1');
  const enriched = events.replace('.received.v1', '.enriched.v1');
  const products = uniqueTopic('odoo', 'product', 'changed');
  const dedupLabel = uniqueLabel('big_dedup');
  const enrichLabel = uniqueLabel('big_enrich');
  const { file } = await writeTestTopology({
    runtime: { commit_max_records: 5000, commit_interval: '1s' }, // the defaults (RUNTIME_DEFAULTS)
    topics: {
      [events]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [enriched]: { schema: ENRICHED_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [products]: { schema: PRODUCT_SCHEMA, partitions: 1, compact: true, key: '<model>:<id>' },
    },
    processors: {
      [dedupLabel]: { type: 'dedup', inputs: [events], outputs: { unique }, config: { key_path: 'id', ttl: '1d', repartition: false } },
      [enrichLabel]: {
        type: 'enrich', inputs: [unique], outputs: { enriched },
        config: {
          tables: { products: { topic: products, key_field: 'default_code' } },
          joins: [{ table: 'products', key_path: 'account', fields: { odoo_product_id: 'id', unit_price_minor: 'list_price_minor' } }],
          on_miss: 'emit', status_field: 'enrichment_status',
        },
      },
    },
  });
  const input = await testEventTopic(events, 2);
  cleanups.push(() => input.close());
  // The chain's topics accept 256 KiB (created here, with the retention the topology declares, so the runtime keeps them).
  await ensureTopics(input.admin, [
    { name: unique, partitions: 2, retentionMs: 86_400_000, config: { 'max.message.bytes': String(CHAIN_TOPIC_LIMIT) } },
    { name: enriched, partitions: 2, retentionMs: 86_400_000, config: { 'max.message.bytes': String(CHAIN_TOPIC_LIMIT) } },
    { name: products, partitions: 1, cleanupPolicy: 'compact' },
  ]);
  await input.serde.register(products, loadContract(PRODUCT_SCHEMA));
  const producer = input.kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await producer.send({ topic: products, messages: [{ key: 'product.product:1', value: await input.serde.encode(products, { id: 1, default_code: 'ACC-0', name: 'Service', list_price_minor: 1000 }) }] });

  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const output = await new TopicCollector<TestEvent>(input.kafka, enriched, input.serde).start();
  cleanups.push(() => output.stop());
  const deadLetters = await new TopicCollector(input.kafka, deadLetterTopic(dedupLabel)).start();
  cleanups.push(() => deadLetters.stop());

  const event = (id: string, account: string, bytes: number): TestEvent => ({ id, account, patient_mrn: 'M'.repeat(bytes), amount_minor: 1 });
  const small = Array.from({ length: 120 }, (_, index) => event(`small-${index}`, `ACC-${index % 4}`, 5 * 1024));
  const medium = Array.from({ length: 3 }, (_, index) => event(`medium-${index}`, `ACC-${index % 4}`, 200 * 1024));
  const oversized = event('oversized', 'ACC-1', CHAIN_TOPIC_LIMIT + 1);
  // The input topic takes 1 MiB a batch: send in slices (all before the chain's first commit, so they share transactions).
  const all = [...small.slice(0, 60), medium[0] as TestEvent, oversized, ...small.slice(60), ...medium.slice(1)];
  for (let start = 0; start < all.length; start += 20) {
    const slice = all.slice(start, start + 20);
    let bytes = 0;
    const group: TestEvent[] = [];
    for (const one of slice) {
      if (bytes + one.patient_mrn.length > 700_000 && group.length > 0) {
        await input.send(group.splice(0));
        bytes = 0;
      }
      group.push(one);
      bytes += one.patient_mrn.length;
    }
    if (group.length > 0) await input.send(group);
  }

  await until('every record but the oversized one enriched', () => output.records.length >= small.length + medium.length, 90_000);
  const ids = output.records.map((record) => record.value.id).sort();
  assert.deepEqual(ids, [...small, ...medium].map((one) => one.id).sort(), 'each once, the oversized one not among them');
  await until('the oversized record dead-lettered', () => deadLetters.records.length >= 1, 30_000);
  assert.equal(deadLetters.records.length, 1);
  const letter = deadLetters.records[0] as { headers: Record<string, string> };
  assert.equal(letter.headers[DEAD_LETTER_HEADERS.errorClass], 'LL_RECORD_TOO_LARGE');
  assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', new RegExp(`max\\.message\\.bytes ${CHAIN_TOPIC_LIMIT}`));
  assert.equal(runtime.health().ready, true, 'no host reports a stall');
  for (const label of [dedupLabel, enrichLabel]) {
    assert.equal(await metricValue(runtime.port as number, 'lifeline_stalled_batches_total', { component: label }), 0, `${label} never failed a batch twice`);
    assert.equal(await metricValue(runtime.port as number, 'lifeline_transactions_total', { component: label, result: 'aborted' }), 0, `${label} aborted no transaction`);
  }
});

test('a topic limit lowered while the processor runs: the broker refuses a transaction once, the limits are read again, the records that no longer fit are dead-lettered and the rest go on', { timeout: 180_000 }, async () => {
  const LOWERED = 65_536;
  const events = uniqueTopic('partner', 'shrunk_event', 'received');
  const unique = events.replace('.received.v1', '.deduplicated.v1');
  const dedupLabel = uniqueLabel('shrunk_dedup');
  const { file } = await writeTestTopology({
    runtime: { commit_max_records: 5000, commit_interval: '1s' }, // the defaults (RUNTIME_DEFAULTS)
    topics: {
      [events]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
    },
    processors: { [dedupLabel]: { type: 'dedup', inputs: [events], outputs: { unique }, config: { key_path: 'id', ttl: '1d', repartition: false } } },
  });
  const input = await testEventTopic(events, 2);
  cleanups.push(() => input.close());
  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start(); // reads ~1 MiB for the output topic
  const output = await new TopicCollector<TestEvent>(input.kafka, unique, input.serde).start();
  cleanups.push(() => output.stop());
  const deadLetters = await new TopicCollector(input.kafka, deadLetterTopic(dedupLabel)).start();
  cleanups.push(() => deadLetters.stop());

  await input.admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: unique, configEntries: [{ name: 'max.message.bytes', value: String(LOWERED) }] }] });
  // Until the broker enforces it: a valid 100 KiB record (id "probe") is refused.
  const probe = input.kafka.producer();
  await probe.connect();
  cleanups.push(() => probe.disconnect());
  const probeValue = await input.serde.encode(unique, { id: 'probe', account: 'ACC-0', patient_mrn: 'P'.repeat(100 * 1024), amount_minor: 0 });
  await until('the broker to refuse 100 KiB records on the output topic', async () => {
    try {
      await probe.send({ topic: unique, acks: -1, messages: [{ key: 'probe', value: probeValue }] });
      return false;
    } catch {
      return true;
    }
  }, 30_000);

  const event = (id: string, account: string, bytes: number): TestEvent => ({ id, account, patient_mrn: 'M'.repeat(bytes), amount_minor: 1 });
  const small = Array.from({ length: 40 }, (_, index) => event(`small-${index}`, `ACC-${index % 4}`, 5 * 1024));
  const large = Array.from({ length: 3 }, (_, index) => event(`large-${index}`, `ACC-${index % 4}`, 100 * 1024));
  await input.send([...small.slice(0, 20), ...large, ...small.slice(20)]);

  await until('every small record deduplicated', () => small.every((one) => output.records.some((record) => record.value.id === one.id)), 90_000);
  await until('the large records dead-lettered', () => deadLetters.records.length >= large.length, 30_000);
  assert.deepEqual(output.records.map((record) => record.value.id).filter((id) => id !== 'probe').sort(), small.map((one) => one.id).sort(), 'each small one once, no large one');
  assert.equal(deadLetters.records.length, large.length);
  for (const letter of deadLetters.records as Array<{ headers: Record<string, string> }>) {
    assert.equal(letter.headers[DEAD_LETTER_HEADERS.errorClass], 'LL_RECORD_TOO_LARGE');
    assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', new RegExp(`max\\.message\\.bytes ${LOWERED}`), 'the limit the topic has now');
  }
  const port = runtime.port as number;
  assert.ok(await metricValue(port, 'lifeline_transactions_total', { component: dedupLabel, result: 'aborted' }) >= 1, 'the broker refused a transaction (the case under test happened)');
  assert.equal(runtime.health().ready, true);
});
