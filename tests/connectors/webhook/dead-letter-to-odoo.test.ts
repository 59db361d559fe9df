import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, test } from 'node:test';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { decodeDelivery } from '../../../connectors/formats/partner-format.ts';
import { canonicalSourceRecord, headersFor } from '../../../connectors/partner-feed.ts';
import { planTraffic, type WebhookDelivery } from '../../../dev/demo/partner-traffic.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { LifelineError } from '../../../src/errors.ts';
import { sourceDeadLetterMessage } from '../../../src/runtime/dead-letter.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { runLifeline, writeTestOperators } from '../../../testing/cli-runner.ts';
import { writeGoldenTopology } from '../../../testing/golden-path-fixture.ts';
import { testKafka } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11: "a source dead letter replayed — it reaches Odoo". The repository's own topology
 * (webhooks → dedup → enrich → odoo_sink) against the Odoo simulator. A lab charge that the
 * webhook source could not encode was dead-lettered as JSON with its origin topic and subject;
 * once the cause is fixed, `lifeline dlq replay` re-encodes it in the topic's Avro format and it
 * travels the whole pipeline to an Odoo vendor bill.
 */

const cleanups: Array<() => Promise<unknown> | unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
});

test('a webhook source dead letter (JSON) replayed with lifeline dlq replay reaches Odoo as a vendor bill', { timeout: 300_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(() => odoo.close());
  const topology = await writeGoldenTopology({ simulator, warnAfter: '1h', breachAfter: '2h' });
  cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));
  const lifeline = new LifelineProcess(topology.file, [], topology.env).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  await lifeline.waitForLine(/"msg":"lifeline running"/, 120_000);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const products = await new TopicCollector<unknown>(kafka, topology.topic('odoo.product.changed.v1'), serde).start();
  cleanups.push(() => products.stop());
  await until('the Odoo products to reach their topic (enrich needs them)', () => products.records.length >= 19, 90_000);

  // One real lab charge delivery, as the demo traffic plans it.
  const runId = randomBytes(3).toString('hex').toUpperCase();
  const plan = planTraffic({ events: 4, duplicateRatio: 0, runId });
  const delivery = plan.deliveries.find((candidate): candidate is WebhookDelivery => candidate.kind === 'webhook' && candidate.partner === 'quest_lab')
    ?? plan.deliveries.find((candidate): candidate is WebhookDelivery => candidate.kind === 'webhook' && candidate.partner === 'labcorp') as WebhookDelivery;
  const source = topology.label('partner_webhooks');
  const charges = topology.topic('partner.service_charge.received.v1');
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

  const operators = writeTestOperators();
  const replay = await runLifeline(['dlq', 'replay', source, '--execute', '--reason', 'contract fixed', '--topology', topology.file], { env: { ...topology.env, ...operators.as('otto') } });
  assert.equal(replay.code, 0, replay.stderr);
  assert.match(replay.stdout + replay.stderr, /replayed 1/);

  await until('Odoo to hold the vendor bill of the replayed charge', async () => {
    const bills = await odoo.searchRead('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', runId]], { fields: ['ref'] });
    return bills.length > 0;
  }, 150_000);
});
