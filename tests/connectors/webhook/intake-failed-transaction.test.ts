import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { AvroSerde, type DecodedRecord } from '../../../src/kafka/avro-serde.ts';
import { infra, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../../testing/topology-writer.ts';
import { deliver, newWebhookSecret, webhookPort, type DeliveryAnswer } from '../../../testing/partner-feed-fixture.ts';
import { metricValue, readyStatus, runtimePort, until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11, "a failed transaction never poisons the next", on the real broker. The source reads its
 * topics' size limits at start; the supply topic's max.message.bytes is then lowered under it, so
 * the broker refuses what the source believes fits (MESSAGE_TOO_LARGE) — the failure the issue saw
 * leave the source's producer broken (OUT_OF_ORDER_SEQUENCE_NUMBER on every later batch, about half
 * of all later deliveries 503 until a restart). Here: the deliveries too large for the topic now are
 * answered 413 with the limit (never 503), every other delivery of the same transactions is
 * accepted and written once, and later deliveries to the same partitions pass on the same process.
 */

const LOWERED_LIMIT = 65_536;
const dft = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');
const supplyDelivery = JSON.parse(readFileSync('tests/fixtures/partner/public/fhir-r4/SupplyDelivery-simpledelivery.json', 'utf8')) as Record<string, unknown>;
const fhir = { contentType: 'application/fhir+json' };
const secrets = { supplier: newWebhookSecret(), acme: newWebhookSecret(), beta: newWebhookSecret() };
const topics = {
  service_charges: uniqueTopic('partner', 'lab_charge', 'received'),
  supply_deliveries: uniqueTopic('partner', 'supply_delivery', 'received'),
  quarantine: uniqueTopic('ops', 'quarantine', 'received'),
};
const cleanups: Array<() => Promise<void>> = [];
let lifeline: LifelineProcess;
let port = 0;
let httpPort = 0;
let label = '';
let charges: TopicCollector<{ delivery_id: string }>;
let supplies: TopicCollector<{ delivery_id: string }>;

const PROBE_BYTE = 0x50;

/** Decodes Avro; a probe record (not Avro: it does not start with the magic byte 0) reads as a probe. */
class ProbeTolerantSerde extends AvroSerde {
  override async decode<T = unknown>(bytes: Buffer | null): Promise<DecodedRecord<T>> {
    if (bytes && bytes[0] === PROBE_BYTE) return { schemaId: -1, value: { delivery_id: 'probe' } as T };
    return super.decode<T>(bytes);
  }
}

function supply(id: string, displayBytes: number): string {
  const resource = structuredClone(supplyDelivery) as { identifier: Array<{ value: string }>; suppliedItem: { itemCodeableConcept: { coding: Array<{ display: string }> } } };
  resource.identifier = [{ value: id }];
  (resource.suppliedItem.itemCodeableConcept.coding[0] as { display: string }).display = 'x'.repeat(displayBytes);
  return JSON.stringify(resource);
}

/** A Bundle of six ChargeItems (spread over the charge partitions) and one SupplyDelivery of `displayBytes`. */
function chargesWithSupply(tag: string, displayBytes: number): string {
  const template = JSON.parse(readFileSync('tests/fixtures/partner/own/bundle-charges.json', 'utf8')) as { entry: Array<{ fullUrl: string; resource: { resourceType: string; identifier?: Array<{ value: string }> } }> };
  const patient = template.entry.find((entry) => entry.resource.resourceType === 'Patient');
  const charge = template.entry.find((entry) => entry.resource.resourceType === 'ChargeItem');
  const charges = Array.from({ length: 6 }, (_, index) => {
    const entry = structuredClone(charge) as { fullUrl: string; resource: { identifier: Array<{ value: string }> } };
    entry.fullUrl = `urn:uuid:00000000-0000-4000-8000-${String(index).padStart(12, '0')}`;
    entry.resource.identifier = [{ ...entry.resource.identifier[0] as { value: string }, value: `CI-${tag}-${index}` }];
    return entry;
  });
  return JSON.stringify({ resourceType: 'Bundle', type: 'collection', entry: [patient, ...charges, { fullUrl: 'urn:uuid:00000000-0000-4000-8000-999999999999', resource: JSON.parse(supply(`ORD-${tag}`, displayBytes)) }] });
}

function dftFrom(tag: string, index: number): string {
  return dft.replaceAll('DFT000123', `DFT${tag}${index}`).replaceAll('TX-900', `TX-${tag}${index}-`);
}

before(async () => {
  label = uniqueLabel('partner_webhooks');
  const topology = await writeTestTopology({
    topics: {
      [topics.service_charges]: { schema: 'schemas/partner/service_charge.avsc', partitions: 3, key: 'entity_key', classification: 'phi' },
      [topics.supply_deliveries]: { schema: 'schemas/partner/supply_delivery.avsc', partitions: 3, key: 'entity_key', classification: 'internal' },
      [topics.quarantine]: { schema: 'schemas/ops/quarantine.avsc', partitions: 1, key: 'entity_key', classification: 'phi' },
    },
    connectors: {
      [label]: {
        type: 'webhook_source',
        outputs: topics,
        config: {
          // One transactional producer: every transaction after the refused one runs on the producer
          // that saw it fail (with several lanes, later batches could miss it by landing elsewhere).
          host: '127.0.0.1', port: 0, response_timeout: '90s', transactions_in_flight: 1,
          partners: [
            { name: 'supplier', path: '/w/supplier', format: 'fhir_r4', secrets: ['${SUPPLIER}'] },
            { name: 'acme_lab', path: '/w/acme', format: 'hl7v2', secrets: ['${ACME}'] },
            { name: 'beta_lab', path: '/w/beta', format: 'hl7v2', secrets: ['${BETA}'] },
          ],
        },
      },
    },
  });
  lifeline = new LifelineProcess(topology.file, [], { SUPPLIER: secrets.supplier, ACME: secrets.acme, BETA: secrets.beta }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  port = await webhookPort(lifeline);
  httpPort = await runtimePort(lifeline);
  await lifeline.waitForLine(/lifeline running/);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  charges = await new TopicCollector<{ delivery_id: string }>(kafka, topics.service_charges, serde).start();
  // The probe below may land a record or two (not Avro) before the broker enforces the new limit: read as probes.
  const { registryUrl } = await infra();
  supplies = await new TopicCollector<{ delivery_id: string }>(kafka, topics.supply_deliveries, new ProbeTolerantSerde({ url: registryUrl })).start();
  cleanups.push(() => charges.stop(), () => supplies.stop());

  // The source read ~1 MiB for the supply topic at start; the topic now takes 64 KiB.
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topics.supply_deliveries, configEntries: [{ name: 'max.message.bytes', value: String(LOWERED_LIMIT) }] }] });
  // Until the broker enforces it: a plain 100 KB record is refused.
  const probe = kafka.producer();
  await probe.connect();
  cleanups.push(() => probe.disconnect());
  const probing = Date.now();
  let probes = 0;
  await until('the broker to refuse 100 KB records on the supply topic', async () => {
    probes++;
    try {
      await probe.send({ topic: topics.supply_deliveries, acks: -1, messages: [{ key: 'probe', value: Buffer.alloc(100_000, PROBE_BYTE) }] });
      return false;
    } catch (error) {
      return JSON.stringify({ type: (error as { type?: string }).type, cause: String((error as { cause?: unknown }).cause) }).includes('MESSAGE_TOO_LARGE') || /larger than the max message size/.test(String(error));
    }
  }, 30_000);
  console.log(`the lowered limit enforced after ${probes} probe(s), ${((Date.now() - probing) / 1000).toFixed(1)} s`);
}, { timeout: 120_000 });

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function writtenOnce(collector: TopicCollector<{ delivery_id: string }>, answers: readonly DeliveryAnswer[], perDelivery: number): Promise<void> {
  await until(`${answers.length} deliveries written`, () => answers.every((answer) => collector.records.filter((record) => record.value.delivery_id === answer.id).length >= perDelivery), 60_000);
  for (const answer of answers) assert.equal(collector.records.filter((record) => record.value.delivery_id === answer.id).length, perDelivery, `${answer.id} written once`);
}

function recentProblems(): string {
  return lifeline.lines.filter((line) => /"level":"(warn|error)"/.test(line)).slice(-8).map((line) => line.slice(0, 400)).join('\n');
}

test('the broker refuses a transaction (MESSAGE_TOO_LARGE): the deliveries at fault 413 with the limit, the others of the same transactions 200, later ones on the same partitions 200, no restart', { timeout: 240_000 }, async () => {
  const abortedBefore = await metricValue(httpPort, 'lifeline_transactions_total', { component: label, result: 'aborted' });
  const started = Date.now();
  const marks: string[] = [];
  const mark = (what: string): void => { marks.push(`${what} ${((Date.now() - started) / 1000).toFixed(1)} s`); };
  // First one delivery alone, so the refused transaction is known to hold records for other
  // partitions too (its six charges, which the broker takes while it refuses the supply record's
  // batch): after it, that producer's sequence numbers for those partitions are stale.
  const mixed = await deliver(port, '/w/supplier', chargesWithSupply('MIXED', 100_000), { secret: secrets.supplier, ...fhir });
  assert.equal(mixed.status, 413, `${JSON.stringify(mixed.body)}\n${recentProblems()}`);
  assert.equal((mixed.body as { limit_bytes?: number }).limit_bytes, LOWERED_LIMIT);
  assert.equal(await metricValue(httpPort, 'lifeline_transactions_total', { component: label, result: 'aborted' }) - abortedBefore, 1, 'the broker refused its first transaction');
  mark('mixed answered');
  await writtenOnce(charges, [mixed], 6); // its charges went on; the supply record is dead-lettered (413: send it smaller)
  mark('mixed written');

  const large = Array.from({ length: 4 }, (_, index) => deliver(port, '/w/supplier', supply(`ORD-NOW-TOO-BIG-${index}`, 100_000), { secret: secrets.supplier, ...fhir }));
  const smallSupplies = Array.from({ length: 3 }, (_, index) => deliver(port, '/w/supplier', supply(`ORD-SMALL-${index}`, 5_000), { secret: secrets.supplier, ...fhir }));
  const smallCharges = Array.from({ length: 6 }, (_, index) => index % 2 === 0
    ? deliver(port, '/w/acme', dftFrom('A', index), { secret: secrets.acme })
    : deliver(port, '/w/beta', dftFrom('B', index), { secret: secrets.beta }));
  const [largeAnswers, supplyAnswers, chargeAnswers] = await Promise.all([Promise.all(large), Promise.all(smallSupplies), Promise.all(smallCharges)]);
  for (const answer of largeAnswers) {
    assert.equal(answer.status, 413, `${JSON.stringify(answer.body)}\n${recentProblems()}`);
    assert.equal(answer.body.error?.code, 'LL_RECORD_TOO_LARGE');
    assert.equal((answer.body as { limit_bytes?: number }).limit_bytes, LOWERED_LIMIT, `the limit the topic has now\n${lifeline.lines.filter((line) => /size limits|too large|not committed/.test(line)).slice(-6).join('\n')}`);
  }
  for (const answer of [...supplyAnswers, ...chargeAnswers]) assert.equal(answer.status, 200, `${JSON.stringify(answer.body)}\n${recentProblems()}`);
  mark('burst answered');
  await writtenOnce(supplies, supplyAnswers, 1);
  await writtenOnce(charges, chargeAnswers, 2);
  mark('burst written');
  const aborted = await metricValue(httpPort, 'lifeline_transactions_total', { component: label, result: 'aborted' }) - abortedBefore;
  assert.ok(aborted >= 1, 'a transaction was refused by the broker (the case under test happened)');

  // Later deliveries, until both topics have one in every partition, on the same process.
  const later: DeliveryAnswer[] = [];
  const partitionsOf = (collector: TopicCollector<{ delivery_id: string }>): Set<number> => new Set(collector.records.filter((record) => later.some((answer) => answer.id === record.value.delivery_id)).map((record) => record.partition));
  for (let round = 0; round < 8 && (partitionsOf(supplies).size < 3 || partitionsOf(charges).size < 3); round++) {
    const answers = await Promise.all([
      ...Array.from({ length: 3 }, (_, index) => deliver(port, '/w/supplier', supply(`ORD-LATER-${round}-${index}`, 10_000), { secret: secrets.supplier, ...fhir })),
      deliver(port, '/w/acme', dftFrom(`L${round}A`, 0), { secret: secrets.acme }),
      deliver(port, '/w/beta', dftFrom(`L${round}B`, 1), { secret: secrets.beta }),
    ]);
    for (const answer of answers) assert.equal(answer.status, 200, `${JSON.stringify(answer.body)}\n${recentProblems()}`);
    later.push(...answers);
    await writtenOnce(supplies, answers.slice(0, 3), 1);
    await writtenOnce(charges, answers.slice(3), 2);
  }
  assert.equal(partitionsOf(supplies).size, 3, 'later supply deliveries reached every partition');
  assert.equal(partitionsOf(charges).size, 3, 'later charges reached every partition');
  for (const partner of ['supplier', 'acme_lab', 'beta_lab']) {
    assert.equal(await metricValue(httpPort, 'lifeline_partner_deliveries_rejected_total', { partner, reason: 'LL_SOURCE_UNAVAILABLE' }), 0, `no delivery of ${partner} was answered 503`);
  }
  assert.equal(await readyStatus(httpPort), 200);
  assert.equal(lifeline.exitCode, undefined, 'the same process, never restarted');
  mark('later written');
  console.log(`refused transactions: ${aborted}; ${1 + largeAnswers.length} × 413, ${supplyAnswers.length + chargeAnswers.length} + ${later.length} × 200; ${marks.join(', ')}`);
});
