import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../../testing/topology-writer.ts';
import { deliver, newWebhookSecret, webhookPort, type DeliveryAnswer } from '../../../testing/partner-feed-fixture.ts';
import { metricValue, readyStatus, runtimePort, until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11 on the real broker: every delivery gets its own outcome. Unrouted message types (HL7
 * ADT/ORM/ORU to a lab whose topology maps only charges, a FHIR Claim to a supplier) are 422 +
 * quarantined beside valid deliveries of other partners, which are all accepted and written once,
 * and beside bad input (malformed, wrong content type, bad signature); readiness never moves. A Bundle mixing a routed SupplyDelivery with Claims follows the partner's
 * `mixed` policy. A burst of large deliveries on a topic with a small max.message.bytes never
 * wedges the source, and a record larger than the topic accepts is answered 413 with the limit.
 */

const publicDir = 'tests/fixtures/partner/public';
const adt = readFileSync(`${publicDir}/hl7v2/simple-hl7-adt.hl7`, 'utf8');
const orm = readFileSync(`${publicDir}/hl7v2/simple-hl7-orm.hl7`, 'utf8');
const oru = readFileSync(`${publicDir}/hl7v2/simple-hl7-oru.hl7`, 'utf8');
const claim = readFileSync(`${publicDir}/fhir-r4/Claim-100150.json`, 'utf8');
const claim2 = readFileSync(`${publicDir}/fhir-r4/Claim-960150.json`, 'utf8');
const supplyDelivery = JSON.parse(readFileSync(`${publicDir}/fhir-r4/SupplyDelivery-simpledelivery.json`, 'utf8')) as Record<string, unknown>;
const dft = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');

/** The supply topic accepts 64 KiB at most, so size limits are met with small payloads. */
const SUPPLY_TOPIC_LIMIT = 65_536;

interface Problem { type: string; title: string; status: number; detail: string; code: string; quarantined?: boolean; unrouted_types?: Record<string, number>; accepted?: string[]; limit_bytes?: number; dropped?: number; records?: number; unrouted?: Record<string, number> }
interface Quarantined { partner: string; reason_code: string; message: string; delivery_id: string | null; raw: Buffer }
interface Delivered { delivery_id: string; item_code: string }

const topics = {
  service_charges: uniqueTopic('partner', 'lab_charge', 'received'),
  supply_deliveries: uniqueTopic('partner', 'supply_delivery', 'received'),
  quarantine: uniqueTopic('ops', 'quarantine', 'received'),
};
const secrets = { acme: newWebhookSecret(), beta: newWebhookSecret(), supplier: newWebhookSecret(), strict: newWebhookSecret(), firehose: newWebhookSecret() };
const cleanups: Array<() => Promise<void>> = [];
let port = 0;
let httpPort = 0;
let lifeline: LifelineProcess;
let sourceLabel = '';
let charges: TopicCollector<Delivered>;
let supplies: TopicCollector<Delivered>;
let quarantine: TopicCollector<Quarantined>;

function dftFrom(partnerTag: string, index: number): string {
  return dft.replaceAll('DFT000123', `DFT${partnerTag}${index}`).replaceAll('TX-900', `TX-${partnerTag}${index}-`);
}

function supplyJson(id: string, displayBytes = 0): string {
  const resource = structuredClone(supplyDelivery) as { identifier: Array<{ value: string }>; suppliedItem: { itemCodeableConcept: { coding: Array<{ display: string }> } } };
  resource.identifier = [{ value: id }];
  if (displayBytes > 0) (resource.suppliedItem.itemCodeableConcept.coding[0] as { display: string }).display = 'x'.repeat(displayBytes);
  return JSON.stringify(resource);
}

function bundle(...resources: string[]): string {
  return JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: resources.map((resource) => ({ resource: JSON.parse(resource) as unknown, request: { method: 'POST', url: (JSON.parse(resource) as { resourceType: string }).resourceType } })) });
}

const fhir = { contentType: 'application/fhir+json' };

before(async () => {
  const kafka = await testKafka();
  // Created here with a small max.message.bytes (and the retention the topology declares, so the runtime leaves it as it is).
  const admin = await createTestTopics(kafka, [{ name: topics.supply_deliveries, partitions: 3, retentionMs: 86_400_000, config: { 'max.message.bytes': String(SUPPLY_TOPIC_LIMIT) } }]);
  await admin.disconnect();
  const label = uniqueLabel('partner_webhooks');
  sourceLabel = label;
  const topology = await writeTestTopology({
    topics: {
      [topics.service_charges]: { schema: 'schemas/partner/service_charge.avsc', partitions: 3, key: 'entity_key', classification: 'phi' },
      [topics.supply_deliveries]: { schema: 'schemas/partner/supply_delivery.avsc', partitions: 3, key: 'entity_key', classification: 'internal' },
      [topics.quarantine]: { schema: 'schemas/ops/quarantine.avsc', partitions: 3, key: 'entity_key', classification: 'phi' },
    },
    connectors: {
      [label]: {
        type: 'webhook_source',
        outputs: topics,
        config: {
          // Generous: this file is about outcomes, not latency, and the test machine is shared.
          host: '127.0.0.1', port: 0, response_timeout: '60s',
          partners: [
            { name: 'acme_lab', path: '/w/acme_lab', format: 'hl7v2', secrets: ['${ACME}'] },
            { name: 'beta_lab', path: '/w/beta_lab', format: 'hl7v2', secrets: ['${BETA}'] },
            { name: 'supplier', path: '/w/supplier', format: 'fhir_r4', secrets: ['${SUPPLIER}'], max_body_bytes: 200_000 },
            { name: 'strict_supplier', path: '/w/strict', format: 'fhir_r4', secrets: ['${STRICT}'], mixed: 'reject' },
            { name: 'firehose_lab', path: '/w/firehose', format: 'hl7v2', secrets: ['${FIREHOSE}'], unrouted: 'accept_and_drop' },
          ],
        },
      },
    },
  });
  lifeline = new LifelineProcess(topology.file, [], { ACME: secrets.acme, BETA: secrets.beta, SUPPLIER: secrets.supplier, STRICT: secrets.strict, FIREHOSE: secrets.firehose }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  port = await webhookPort(lifeline);
  httpPort = await runtimePort(lifeline);
  await lifeline.waitForLine(/lifeline running/);
  const serde = await registeredSerde();
  charges = await new TopicCollector<Delivered>(kafka, topics.service_charges, serde).start();
  supplies = await new TopicCollector<Delivered>(kafka, topics.supply_deliveries, serde).start();
  quarantine = await new TopicCollector<Quarantined>(kafka, topics.quarantine, serde).start();
  cleanups.push(() => charges.stop(), () => supplies.stop(), () => quarantine.stop());
}, { timeout: 120_000 });

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The runtime's last warnings and errors, to explain a failed assertion. */
function recentProblems(): string {
  return lifeline.lines.filter((line) => /"level":"(warn|error)"/.test(line)).slice(-10).map((line) => line.slice(0, 400)).join('\n');
}

function problem(answer: DeliveryAnswer): Problem {
  return answer.body as unknown as Problem;
}

async function writtenOnce(collector: TopicCollector<Delivered>, answers: readonly DeliveryAnswer[], perDelivery: number): Promise<void> {
  await until(`${answers.length} deliveries written`, () => answers.every((answer) => collector.records.filter((record) => record.value.delivery_id === answer.id).length >= perDelivery));
  for (const answer of answers) {
    assert.equal(collector.records.filter((record) => record.value.delivery_id === answer.id).length, perDelivery, `delivery ${answer.id} written exactly once`);
  }
}

describe('intake: every delivery gets its own outcome', { timeout: 240_000 }, () => {
  test('ADT, ORM, ORU and a FHIR Claim beside valid deliveries of two other partners: the valid ones 200 and written once, the unrouted ones 422 + quarantined, readiness stays 200', async () => {
    assert.equal(await readyStatus(httpPort), 200);
    const unroutedSends = [
      deliver(port, '/w/acme_lab', adt, { secret: secrets.acme }),
      deliver(port, '/w/acme_lab', orm, { secret: secrets.acme }),
      deliver(port, '/w/acme_lab', oru, { secret: secrets.acme }),
      deliver(port, '/w/supplier', claim, { secret: secrets.supplier, ...fhir }),
    ];
    const validCharges = Array.from({ length: 6 }, (_, index) => index % 2 === 0
      ? deliver(port, '/w/acme_lab', dftFrom('A', index), { secret: secrets.acme })
      : deliver(port, '/w/beta_lab', dftFrom('B', index), { secret: secrets.beta }));
    const validSupplies = Array.from({ length: 3 }, (_, index) => deliver(port, '/w/supplier', supplyJson(`ORD-OK-${index}`), { secret: secrets.supplier, ...fhir }));
    // Bad input beside them: a truncated HL7 message, a wrong content type, a bad signature.
    const badSends = [
      deliver(port, '/w/beta_lab', 'MSH|^~\\&|LABSYS|BETA_LAB|ODOO', { secret: secrets.beta }),
      deliver(port, '/w/supplier', supplyJson('ORD-BAD-TYPE'), { secret: secrets.supplier, contentType: 'text/html' }),
      deliver(port, '/w/beta_lab', dftFrom('X', 9), { secret: secrets.beta, signature: 'v1,Zm9yZ2Vk' }),
    ];
    // Sent together, so they share source transactions.
    const [unrouted, charged, supplied, bad] = await Promise.all([Promise.all(unroutedSends), Promise.all(validCharges), Promise.all(validSupplies), Promise.all(badSends)]);
    assert.deepEqual(bad.map((answer) => [answer.status, answer.body.error?.code]), [[422, 'LL_FORMAT_HL7_INVALID'], [415, 'LL_WEBHOOK_CONTENT_TYPE'], [401, 'LL_WEBHOOK_SIGNATURE_INVALID']], JSON.stringify(bad.map((answer) => answer.body)));
    for (const answer of [...charged, ...supplied]) assert.equal(answer.status, 200, `${JSON.stringify(answer.body)}\n${recentProblems()}`);
    const [adtAnswer, ormAnswer, oruAnswer, claimAnswer] = unrouted as [DeliveryAnswer, DeliveryAnswer, DeliveryAnswer, DeliveryAnswer];
    for (const answer of unrouted) {
      assert.equal(answer.status, 422, `${JSON.stringify(answer.body)}\n${recentProblems()}`);
      assert.equal(answer.headers.get('content-type'), 'application/problem+json');
      const body = problem(answer);
      assert.equal(body.type, 'urn:lifeline:error:LL_PARTNER_TYPE_UNROUTED');
      assert.equal(body.status, 422);
      assert.equal(body.code, 'LL_PARTNER_TYPE_UNROUTED');
      assert.equal(body.quarantined, true);
      assert.ok(body.title.length > 0);
    }
    assert.deepEqual(problem(adtAnswer).unrouted_types, { 'ADT^A04': 1 });
    assert.deepEqual(problem(ormAnswer).unrouted_types, { 'ORM^O01': 1 });
    assert.deepEqual(problem(oruAnswer).unrouted_types, { 'ORU^R01': 1 });
    assert.deepEqual(problem(claimAnswer).unrouted_types, { Claim: 1 });
    assert.deepEqual(problem(adtAnswer).accepted, ['HL7 DFT^P03'], 'names what the topology accepts from this partner');
    assert.deepEqual(problem(claimAnswer).accepted, ['FHIR ChargeItem, Invoice', 'FHIR SupplyDelivery'], 'the topology maps charges and supply deliveries');
    assert.match(problem(adtAnswer).detail, /ADT\^A04 is not routed by this topology for partner acme_lab; it accepts HL7 DFT\^P03/);

    await writtenOnce(charges, charged, 2);
    await writtenOnce(supplies, supplied, 1);
    await until('the unrouted deliveries quarantined', () => unrouted.every((answer) => quarantine.records.some((record) => record.value.delivery_id === answer.id)));
    for (const answer of unrouted) {
      const record = quarantine.records.find((candidate) => candidate.value.delivery_id === answer.id)?.value as Quarantined;
      assert.equal(record.reason_code, 'LL_PARTNER_TYPE_UNROUTED');
      assert.ok(Buffer.from(record.raw).length > 0, 'the raw message is kept (the partner is authenticated)');
    }
    assert.equal(await readyStatus(httpPort), 200, 'bad input never changes readiness');
    assert.ok(!lifeline.lines.some((line) => line.includes('connector health changed') && line.includes('"health":"degraded"')), 'the source never reported itself degraded');
    assert.equal(await metricValue(httpPort, 'lifeline_partner_deliveries_rejected_total', { partner: 'acme_lab', reason: 'LL_PARTNER_TYPE_UNROUTED' }), 3);
    assert.equal(await metricValue(httpPort, 'lifeline_partner_deliveries_rejected_total', { partner: 'supplier', reason: 'LL_PARTNER_TYPE_UNROUTED' }), 1);
    for (const partner of ['acme_lab', 'beta_lab', 'supplier']) {
      assert.equal(await metricValue(httpPort, 'lifeline_partner_deliveries_rejected_total', { partner, reason: 'LL_SOURCE_UNAVAILABLE' }), 0, `no delivery of ${partner} was answered 503`);
    }
  });

  test('a Bundle mixing a routed SupplyDelivery with Claims: accept_routed commits the SupplyDelivery and reports the Claims; reject refuses the whole delivery with 422; never 503', async () => {
    const mixed = bundle(supplyJson('ORD-MIXED-1'), claim, claim2);
    const accepted = await deliver(port, '/w/supplier', mixed, { secret: secrets.supplier, ...fhir });
    assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
    assert.equal(problem(accepted).records, 1);
    assert.deepEqual(problem(accepted).unrouted, { Claim: 2 });
    assert.equal(problem(accepted).quarantined, true);
    await writtenOnce(supplies, [accepted], 1);
    await until('the mixed delivery quarantined for its claims', () => quarantine.records.some((record) => record.value.delivery_id === accepted.id));
    assert.equal(quarantine.records.find((record) => record.value.delivery_id === accepted.id)?.value.reason_code, 'LL_PARTNER_TYPE_UNROUTED');

    const refused = await deliver(port, '/w/strict', bundle(supplyJson('ORD-MIXED-2'), claim, claim2), { secret: secrets.strict, ...fhir });
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.deepEqual(problem(refused).unrouted_types, { Claim: 2 });
    assert.match(problem(refused).detail, /mixed policy is reject/);
    await until('the refused delivery quarantined', () => quarantine.records.some((record) => record.value.delivery_id === refused.id));
    assert.equal(supplies.records.filter((record) => record.value.delivery_id === refused.id).length, 0, 'nothing of a refused delivery is written');
  });

  test('an HL7 batch mixing DFT charges with an ADT: accept_routed commits the charges and reports the ADT, never 503', async () => {
    const batchText = readFileSync('tests/fixtures/partner/own/dft-batch.hl7', 'utf8').replaceAll('DFT0002', 'DFTMIX2').replaceAll('TX-91', 'TX-MIX-91');
    const adtMessage = adt.replace(/\r?\n/g, '\r').replace(/\r+$/, '') + '\r';
    const mixed = batchText.replace('BTS|3', `${adtMessage}BTS|4`);
    const answer = await deliver(port, '/w/acme_lab', mixed, { secret: secrets.acme });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(problem(answer).unrouted, { 'ADT^A04': 1 });
    assert.equal(problem(answer).records, 3);
    await writtenOnce(charges, [answer], 3);
    await until('the batch quarantined for its ADT', () => quarantine.records.some((record) => record.value.delivery_id === answer.id));
  });

  test('unrouted: accept_and_drop answers 200 with the count, writes nothing and counts the dropped records', async () => {
    const answer = await deliver(port, '/w/firehose', adt, { secret: secrets.firehose });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(problem(answer).dropped, 1);
    assert.equal(problem(answer).records, 0);
    const routed = await deliver(port, '/w/firehose', dftFrom('F', 1), { secret: secrets.firehose });
    assert.equal(routed.status, 200);
    await writtenOnce(charges, [routed], 2);
    assert.equal(await metricValue(httpPort, 'lifeline_partner_records_dropped_total', { partner: 'firehose_lab', kind: 'visit_reference' }), 1);
    assert.ok(!quarantine.records.some((record) => record.value.delivery_id === answer.id), 'a dropped delivery is not quarantined');
  });

  test('a burst of ten max-size deliveries with small ones from two other partners: all 200 at once and later, no restart; one record over the topic limit is 413 with the limit', async () => {
    // Each record is about 40 KB (under the 64 KiB topic limit); ten of them in one transaction are ~400 KB.
    const burst = Array.from({ length: 10 }, (_, index) => deliver(port, '/w/supplier', supplyJson(`ORD-BIG-${index}`, 40_000), { secret: secrets.supplier, ...fhir }));
    const small = Array.from({ length: 6 }, (_, index) => index % 2 === 0
      ? deliver(port, '/w/acme_lab', dftFrom('S', index), { secret: secrets.acme })
      : deliver(port, '/w/beta_lab', dftFrom('T', index), { secret: secrets.beta }));
    const abortedBefore = await metricValue(httpPort, 'lifeline_transactions_total', { component: sourceLabel, result: 'aborted' });
    const tooLarge = deliver(port, '/w/supplier', supplyJson('ORD-HUGE', 100_000), { secret: secrets.supplier, ...fhir });
    const [big, smallAnswers, huge] = await Promise.all([Promise.all(burst), Promise.all(small), tooLarge]);
    for (const answer of [...big, ...smallAnswers]) assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(huge.status, 413, JSON.stringify(huge.body));
    assert.equal(problem(huge).code, 'LL_RECORD_TOO_LARGE');
    assert.equal(problem(huge).limit_bytes, SUPPLY_TOPIC_LIMIT);
    await writtenOnce(supplies, big, 1);
    await writtenOnce(charges, smallAnswers, 2);
    assert.equal(await metricValue(httpPort, 'lifeline_transactions_total', { component: sourceLabel, result: 'aborted' }), abortedBefore,
      'no transaction failed: they were bounded by bytes, and the oversized record was dead-lettered before sending');
    // Later deliveries pass too: the source's producer was not left broken.
    const later = await Promise.all([
      deliver(port, '/w/acme_lab', dftFrom('L', 1), { secret: secrets.acme }),
      deliver(port, '/w/beta_lab', dftFrom('M', 2), { secret: secrets.beta }),
      deliver(port, '/w/supplier', supplyJson('ORD-LATER', 40_000), { secret: secrets.supplier, ...fhir }),
    ]);
    for (const answer of later) assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(await readyStatus(httpPort), 200);
    assert.equal(lifeline.exitCode, undefined, 'the same process, never restarted');
  });
});
