import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { REPLAY_HEADERS } from '../../src/ops/dead-letter-replay.ts';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { deadLetterTopic } from '../../src/topology/model.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../testing/cli-runner.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, TopicCollector, registeredSerde, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';
import { metricValue } from '../../testing/intake-fixture.ts';
import { partitionOf } from '../../testing/sentinel.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

const PRODUCT_SCHEMA = 'tests/fixtures/schemas/test_product.avsc';
const ENRICHED_SCHEMA = 'tests/fixtures/schemas/test_event_enriched.avsc';

interface Enriched extends TestEvent { enrichment_status: string; odoo_product_id: number | null }
interface DeadLetterView { deadLetter: string; errorClass: string; idempotencyKey: string | null; origin: { topic: string }; value: { patient_mrn: string; account: string } }
interface AuditLine { who: string; action: string; target: string; result: string; detail: string }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('dead letters are browsed with PHI masked, and once the cause is fixed a replay delivers each of them once, keeping its idempotency key', { timeout: 600_000 }, async () => {
  const events = uniqueTopic('partner', 'charge', 'received');
  const products = uniqueTopic('odoo', 'product', 'changed');
  const enriched = events.replace('.received.v1', '.enriched.v1');
  const label = uniqueLabel('charge_enrich');
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
          joins: [{ table: 'products', key_path: 'account', fields: { odoo_product_id: 'id' } }],
          on_miss: 'dlq', status_field: 'enrichment_status',
        },
      },
    },
  });
  const topology = ['--topology', file];
  const operators = writeTestOperators();
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: events, partitions: 2 }, { name: products, partitions: 1, cleanupPolicy: 'compact' }]);
  const serde = await registeredSerde();
  await serde.register(events, loadContract(TEST_EVENT_SCHEMA));
  await serde.register(products, loadContract(PRODUCT_SCHEMA));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const publishProduct = async (id: number, code: string): Promise<void> => {
    await producer.send({ topic: products, acks: -1, messages: [{ key: `product.product:${id}`, value: await serde.encode(products, { id, default_code: code, name: code, list_price_minor: 100 }) }] });
  };
  const sendEvents = async (list: readonly TestEvent[]): Promise<void> => {
    await producer.send({ topic: events, acks: -1, messages: await Promise.all(list.map(async (event) => ({
      key: event.account, value: await serde.encode(events, event), headers: { [LIFELINE_HEADERS.idempotencyKey]: `charge-${event.id}` },
    }))) });
  };
  for (let id = 0; id < 3; id++) await publishProduct(100 + id, `ACC-${id}`); // ACC-3 is missing: its charges fail

  const lifeline = new LifelineProcess(file).start();
  cleanups.push(() => lifeline.kill());
  const metricsPort = (JSON.parse(await lifeline.waitForLine(/serving \/metrics/, 120_000)) as { port: number }).port;
  await lifeline.waitForLine(/lifeline running/, 120_000);
  const output = await new TopicCollector<Enriched>(kafka, enriched, serde).start();
  cleanups.push(() => output.stop());
  const charges = Array.from({ length: 12 }, (_, index) => testEvent(index, 4));
  await sendEvents(charges);
  await output.waitForCount(9, 120_000);
  const dlqTopic = deadLetterTopic(label);
  const countDeadLetters = async (): Promise<number> => (await admin.fetchTopicOffsets(dlqTopic)).reduce((sum, entry) => sum + Number(entry.high), 0);
  const deadline = Date.now() + 60_000;
  while ((await countDeadLetters()) < 3 && Date.now() < deadline) await sleep(300);

  // Browsing: PHI masked, the idempotency key and origin shown.
  const listed = await runLifeline(['dlq', 'list', '--json', ...topology]);
  assert.equal(listed.code, 0, listed.stderr);
  const summary = (JSON.parse(listed.stdout) as Array<{ topic: string; deadLetters: number; byErrorClass: Record<string, number> }>).find((row) => row.topic === dlqTopic);
  assert.deepEqual(summary?.byErrorClass, { EnrichmentMiss: 3 });
  const shown = await runLifeline(['dlq', 'show', label, '--json', ...topology]);
  assert.equal(shown.code, 0, shown.stderr);
  const letters = shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as DeadLetterView);
  assert.equal(letters.length, 3);
  for (const letter of letters) {
    assert.equal(letter.value.patient_mrn, '[PHI]');
    assert.equal(letter.value.account, 'ACC-3');
    assert.equal(letter.origin.topic, events);
    assert.match(letter.idempotencyKey ?? '', /^charge-evt-\d+$/);
  }
  assert.ok(!shown.stdout.includes('MRN-'), 'no patient identifier anywhere in the output');

  // A filter that matches nothing replays nothing; a viewer may not replay.
  const filtered = await runLifeline(['dlq', 'replay', label, '--error-class', 'LL_ODOO_USER_ERROR', '--dry-run', '--json', ...topology]);
  assert.equal((JSON.parse(filtered.stdout) as { toReplay: number }).toReplay, 0);
  const byViewer = await runLifeline(['dlq', 'replay', label, '--execute', '--reason', 'try', ...topology], { env: operators.as('viola') });
  assert.equal(byViewer.code, 3, byViewer.stderr);

  // Fix the cause: the product appears in Odoo (its topic). Once the running table holds it (its
  // reference table is read by a consumer of its own, so the charge must not overtake it), a fresh
  // charge proves the enrichment has it.
  await publishProduct(103, 'ACC-3');
  const tableRecords = (): Promise<number> => metricValue(metricsPort, 'lifeline_reference_table_records', { component: label, table: 'products' });
  const tableDeadline = Date.now() + 60_000;
  while ((await tableRecords()) < 4 && Date.now() < tableDeadline) await sleep(200);
  assert.equal(await tableRecords(), 4, 'the reference table holds the 4 products');
  await sendEvents([testEvent(103, 4)]); // account ACC-3
  await output.waitForCount(10, 120_000);

  const dryRun = await runLifeline(['dlq', 'replay', label, '--error-class', 'EnrichmentMiss', '--dry-run', '--json', ...topology]);
  assert.equal(dryRun.code, 0, dryRun.stderr);
  const planned = JSON.parse(dryRun.stdout) as { toReplay: number; reaches: { components: string[] } };
  assert.equal(planned.toReplay, 3);
  assert.deepEqual(planned.reaches.components, [label]);
  const replayed = await runLifeline(['dlq', 'replay', label, '--error-class', 'EnrichmentMiss', '--execute', '--reason', 'product ACC-3 now exists', ...topology], { env: operators.as('otto') });
  assert.equal(replayed.code, 0, replayed.stderr);
  assert.match(replayed.stdout, /replayed 3 \(3 to /);
  await output.waitForCount(13, 120_000);

  // Running it again replays nothing: the markers went with the records, in one transaction.
  const again = await runLifeline(['dlq', 'replay', label, '--execute', '--reason', 'again', ...topology], { env: operators.as('otto') });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /0 to replay, 3 replayed before \(skipped\); replayed 0/);
  // A sentinel instead of a sleep: a charge whose product exists, through the partition the replays
  // went to (ACC-3's); once it is enriched, a replayed charge delivered twice would have been too.
  const sentinelAccount = ['ACC-0', 'ACC-1', 'ACC-2'].find((account) => partitionOf(account, 2) === partitionOf('ACC-3', 2));
  assert.ok(sentinelAccount, 'an account with a product on the partition of ACC-3');
  await sendEvents([{ ...testEvent(900, 4), account: sentinelAccount }]);
  await output.waitUntil((records) => records.some((record) => record.value.id === 'evt-900'), 'the sentinel', 120_000);
  const records = output.records.filter((record) => record.value.id !== 'evt-900');

  const ids = records.map((record) => record.value.id);
  assert.equal(ids.length, 13, 'every charge enriched once: nothing lost, nothing twice');
  assert.deepEqual([...new Set(ids)].sort(), [...charges.map((charge) => charge.id), 'evt-103'].sort());
  for (const record of records) assert.equal(record.value.enrichment_status, 'enriched');
  const fromReplay = records.filter((record) => record.headers[REPLAY_HEADERS.id] !== undefined);
  assert.equal(fromReplay.length, 3);
  for (const record of fromReplay) {
    assert.equal(record.headers[LIFELINE_HEADERS.idempotencyKey], `charge-${record.value.id}`, 'the idempotency key travels with the replay');
    assert.equal(record.headers[REPLAY_HEADERS.count], '1');
    assert.equal(record.headers[REPLAY_HEADERS.by], 'otto');
    assert.equal(record.headers['lifeline.error.class'], undefined);
  }

  const audit = await runLifeline(['audit', 'list', '--json', '--target', dlqTopic, ...topology]);
  const entries = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditLine);
  assert.ok(entries.some((entry) => entry.who === 'viola' && entry.action === 'dlq.replay' && entry.result === 'refused'));
  assert.ok(entries.some((entry) => entry.who === 'otto' && entry.action === 'dlq.replay' && entry.result === 'succeeded' && /replayed 3/.test(entry.detail)));
  assert.ok(entries.some((entry) => entry.who === 'otto' && entry.action === 'dlq.replay' && entry.result === 'succeeded' && /replayed 0/.test(entry.detail)));
});
