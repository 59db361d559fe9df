import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, test } from 'node:test';
import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { decodeDelivery } from '../../../connectors/formats/partner-format.ts';
import { canonicalSourceRecord, headersFor } from '../../../connectors/partner-feed.ts';
import { planTraffic, type WebhookDelivery } from '../../../dev/demo/partner-traffic.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { LifelineError } from '../../../src/errors.ts';
import { DEAD_LETTER_HEADERS, sourceDeadLetterMessage } from '../../../src/runtime/dead-letter.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { runLifeline, writeTestOperators } from '../../../testing/cli-runner.ts';
import { writeGoldenTopology, type GoldenTopology } from '../../../testing/golden-path-fixture.ts';
import { testKafka } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { deliver } from '../../../testing/partner-feed-fixture.ts';
import { until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11: "a source dead letter replayed — it reaches Odoo". The repository's own topology
 * (webhooks → dedup → enrich → odoo_sink) against the Odoo simulator, for both kinds of source
 * dead letter:
 * - a lab charge the webhook source could not encode, dead-lettered as JSON with its origin topic
 *   and subject: `lifeline dlq replay` re-encodes it in the topic's Avro format;
 * - a lab charge larger than its topic accepted (the topic's max.message.bytes lowered while the
 *   intake ran), dead-lettered by the running source itself with its Avro bytes and answered 413:
 *   once the limit is raised again, `lifeline dlq replay` sends it back.
 * Either way it travels the whole pipeline to an Odoo vendor bill.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
let topology: GoldenTopology;
let lifeline: LifelineProcess;
let odoo: OdooClient;
let kafka: Kafka;
let admin: Admin;
let source = '';
let charges = '';
let webhookPort = 0;

after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
});

before(async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(() => odoo.close());
  topology = await writeGoldenTopology({ simulator, warnAfter: '1h', breachAfter: '2h' });
  cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));
  lifeline = new LifelineProcess(topology.file, [], topology.env).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  const listening = await lifeline.waitForLine(/"msg":"webhook source listening"/, 120_000);
  webhookPort = (JSON.parse(listening) as { port: number }).port;
  await lifeline.waitForLine(/"msg":"lifeline running"/, 120_000);
  kafka = await testKafka();
  admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  const products = await new TopicCollector<unknown>(kafka, topology.topic('odoo.product.changed.v1'), await registeredSerde()).start();
  cleanups.push(() => products.stop());
  await until('the Odoo products to reach their topic (enrich needs them)', () => products.records.length >= 19, 90_000);
  source = topology.label('partner_webhooks');
  charges = topology.topic('partner.service_charge.received.v1');
}, { timeout: 300_000 });

/** One real lab charge delivery, as the demo traffic plans it. */
function labCharge(): { delivery: WebhookDelivery; runId: string } {
  const runId = randomBytes(3).toString('hex').toUpperCase();
  const plan = planTraffic({ events: 4, duplicateRatio: 0, runId });
  const delivery = plan.deliveries.find((candidate): candidate is WebhookDelivery => candidate.kind === 'webhook' && candidate.partner === 'quest_lab')
    ?? plan.deliveries.find((candidate): candidate is WebhookDelivery => candidate.kind === 'webhook' && candidate.partner === 'labcorp') as WebhookDelivery;
  return { delivery, runId };
}

async function billed(runId: string): Promise<boolean> {
  const bills = await odoo.searchRead('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', runId]], { fields: ['ref'] });
  return bills.length > 0;
}

async function replayDeadLetters(reason: string, errorClass: string): Promise<string> {
  const operators = writeTestOperators();
  const replay = await runLifeline(['dlq', 'replay', source, '--execute', '--error-class', errorClass, '--reason', reason, '--topology', topology.file], { env: { ...topology.env, ...operators.as('otto') } });
  assert.equal(replay.code, 0, replay.stderr);
  return replay.stdout + replay.stderr;
}

/** Sets one config of a topic, keeping its other overrides (AlterConfigs replaces them all). */
async function setTopicConfig(topic: string, name: string, value: string | undefined): Promise<void> {
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }] });
  const kept = (described.resources[0]?.configEntries ?? []).filter((entry) => !entry.isDefault && !entry.readOnly && entry.configName !== name)
    .map((entry) => ({ name: entry.configName, value: entry.configValue }));
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic, configEntries: [...kept, ...(value === undefined ? [] : [{ name, value }])] }] });
}

test('a webhook source dead letter (JSON) replayed with lifeline dlq replay reaches Odoo as a vendor bill', { timeout: 300_000 }, async () => {
  const { delivery, runId } = labCharge();
  const canonical = decodeDelivery(Buffer.from(delivery.body), { name: delivery.partner, format: 'hl7v2', charset: 'utf-8', default_currency: 'USD' } as never,
    { partner: delivery.partner, channel: 'WEBHOOK', deliveryId: delivery.webhookId, receivedAt: Date.now(), defaultCurrency: 'USD' });
  assert.equal(canonical.length, 1);
  const record = canonicalSourceRecord(canonical[0] as never, headersFor({
    idempotencyKey: delivery.webhookId, correlationId: delivery.webhookId, ingestedAt: new Date().toISOString(), source,
  }));
  // The dead letter exactly as the source host writes one for a record that did not encode.
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await producer.send({ topic: deadLetterTopic(source), messages: [sourceDeadLetterMessage({
    component: source, error: new LifelineError('LL_SERIALIZE_INVALID', 'value did not match the schema registered then'), originTopic: charges,
    key: record.key, value: record.value, headers: record.headers as Record<string, string>,
  })] });

  assert.match(await replayDeadLetters('contract fixed', 'LL_SERIALIZE_INVALID'), /replayed 1/);
  await until('Odoo to hold the vendor bill of the replayed charge', () => billed(runId), 150_000);
});

test('a lab charge the running source dead-lettered as too large (413 to the partner) reaches Odoo once the limit is raised and the dead letter replayed', { timeout: 300_000 }, async () => {
  const LOWERED = 8192;
  const { delivery, runId } = labCharge();
  // A long service description (FT1-7.2) makes the charge record about 12 KB.
  const body = delivery.body.replace(/\^([^^|\r]+)\^CPT/, (_match, description: string) => `^${description} ${'x'.repeat(12_000)}^CPT`);
  assert.notEqual(body, delivery.body);
  await setTopicConfig(charges, 'max.message.bytes', String(LOWERED));
  const answer = await deliver(webhookPort, `/webhooks/${delivery.partner}`, body, { secret: topology.secrets[delivery.partner] as string, id: delivery.webhookId, contentType: delivery.contentType });
  assert.equal(answer.status, 413, JSON.stringify(answer.body));
  assert.equal(answer.body.error?.code, 'LL_RECORD_TOO_LARGE');
  assert.equal((answer.body as { limit_bytes?: number }).limit_bytes, LOWERED);

  // The dead letter the source wrote: the record's Avro bytes, the reason and where it was going.
  const deadLetters = await new TopicCollector(kafka, deadLetterTopic(source)).start();
  cleanups.push(() => deadLetters.stop());
  await until('the too-large charge in the source\'s dead letters', () => deadLetters.records.some((letter) => letter.headers[DEAD_LETTER_HEADERS.errorClass] === 'LL_RECORD_TOO_LARGE'), 30_000);
  const letter = deadLetters.records.find((one) => one.headers[DEAD_LETTER_HEADERS.errorClass] === 'LL_RECORD_TOO_LARGE') as { headers: Record<string, string> };
  assert.equal(letter.headers[DEAD_LETTER_HEADERS.originTopic], charges);
  assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', new RegExp(`max\\.message\\.bytes ${LOWERED}`));
  assert.equal(await billed(runId), false, 'nothing of it reached Odoo yet');

  await setTopicConfig(charges, 'max.message.bytes', undefined); // back to the broker's default
  assert.match(await replayDeadLetters('charges topic limit raised', 'LL_RECORD_TOO_LARGE'), /replayed 1/);
  await until('Odoo to hold the vendor bill of the replayed charge', () => billed(runId), 150_000);
});
