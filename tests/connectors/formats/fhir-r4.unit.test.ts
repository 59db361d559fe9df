import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import { LifelineError } from '../../../src/errors.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import type { CanonicalRecord, ClaimEvent, DeliveryContext, ServiceCharge, SupplyDelivery } from '../../../connectors/formats/canonical.ts';
import { fhirToCanonical, loadFhirDefinitions } from '../../../connectors/formats/fhir-r4.ts';

const context: DeliveryContext = { partner: 'payer_x', channel: 'FILE', deliveryId: 'claims.json@abc', receivedAt: Date.UTC(2024, 10, 5), defaultCurrency: 'USD' };
const publicExample = (name: string): string => readFileSync(`tests/fixtures/partner/public/fhir-r4/${name}.json`, 'utf8');

const contracts = {
  service_charge: loadContract('schemas/partner/service_charge.avsc'),
  supply_delivery: loadContract('schemas/partner/supply_delivery.avsc'),
  claim: loadContract('schemas/partner/claim.avsc'),
} as const;

function mapped(text: string): CanonicalRecord[] {
  const records = fhirToCanonical(text, context);
  for (const record of records) {
    const contract = contracts[record.kind as keyof typeof contracts];
    const paths: string[] = [];
    assert.ok(contract.type.isValid(record.value, { errorHook: (path) => paths.push(path.join('.')) }), `${record.kind} does not match its schema at ${paths.join(', ')}`);
  }
  return records;
}

function rejects(text: string, code: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    fhirToCanonical(text, context);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof LifelineError, `expected a LifelineError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
}

before(() => loadFhirDefinitions());

describe('FHIR R4 adapter on the official R4 examples (hl7.fhir.r4.examples 4.0.1)', () => {
  test('ChargeItem/example: a billable charge with its exact price, keyed by identifier system|value', () => {
    const [record] = mapped(publicExample('ChargeItem-example'));
    const charge = record?.value as ServiceCharge;
    assert.equal(record?.kind, 'service_charge');
    assert.equal(charge.status, 'BILLABLE');
    assert.equal(charge.service_code, '01510');
    assert.deepEqual(charge.total, { amount_minor: 4000, currency: 'EUR' });
    assert.equal(charge.entity_key, 'payer_x|ChargeItem|http://myHospital.org/ChargeItems|654321');
    assert.match(charge.idempotency_key, /^payer_x\|http:\/\/myHospital\.org\/ChargeItems\|654321@[0-9a-f]{16}$/);
    assert.equal(charge.occurred_at, Date.parse('2017-01-25T08:00:00+01:00'));
    assert.equal(charge.refs.facility_ref, 'CARD_INTERMEDIATE_CARE');
    assert.equal(charge.patient_id, 'Patient/example');
  });

  test('Invoice/example: the invoice total (gross), scoped so it is not added to its charge items', () => {
    const charge = mapped(publicExample('Invoice-example'))[0]?.value as ServiceCharge;
    assert.equal(charge.scope, 'INVOICE_TOTAL');
    assert.equal(charge.status, 'BILLED');
    assert.deepEqual(charge.total, { amount_minor: 4800, currency: 'EUR' });
    assert.equal(charge.refs.invoice_ref, '654321');
  });

  test('SupplyDelivery examples: completed with item and quantity; in progress without an item is refused with its path', () => {
    const delivery = mapped(publicExample('SupplyDelivery-simpledelivery'))[0]?.value as SupplyDelivery;
    assert.equal(delivery.status, 'COMPLETED');
    assert.equal(delivery.item_code, 'BlueTubes');
    assert.equal(delivery.quantity, 10);
    assert.equal(delivery.supplier_ref, 'Vendor1');
    assert.equal(delivery.refs.order_ref, 'SupplyRequest/simpleorder');
    rejects(publicExample('SupplyDelivery-pumpdelivery'), 'LL_FORMAT_FHIR_INVALID', /SupplyDelivery\.suppliedItem\.item\[x\]: suppliedItem\.item\[x\] is required/);
  });

  test('Claim examples: claimed totals are exact, from total or summed from item.net', () => {
    for (const name of ['Claim-100150', 'Claim-960150', 'Claim-MED-00050']) {
      const claim = mapped(publicExample(name))[0]?.value as ClaimEvent;
      assert.equal(claim.kind, 'CLAIM', name);
      assert.ok(claim.claim_ref, name);
    }
    const claim = mapped(publicExample('Claim-100150'))[0]?.value as ClaimEvent;
    assert.deepEqual(claim.claimed_total, { amount_minor: 13557, currency: 'USD' });
    assert.equal(claim.claim_ref, '12345');
  });

  test('ClaimResponse examples: adjudication outcome, benefit and payment as exact money', () => {
    const response = mapped(publicExample('ClaimResponse-R3500'))[0]?.value as ClaimEvent;
    assert.equal(response.kind, 'REMITTANCE');
    assert.equal(response.outcome, 'COMPLETE');
    assert.equal(response.claim_ref, 'http://www.BenefitsInc.com/fhir/oralhealthclaim/15476332402');
    assert.deepEqual(response.benefit_total, { amount_minor: 9047, currency: 'USD' });
    assert.deepEqual(response.paid_amount, { amount_minor: 10047, currency: 'USD' });
    assert.equal(response.paid_on, '2014-08-31');
    assert.equal(mapped(publicExample('ClaimResponse-R3501'))[0]?.kind, 'claim');
  });

  test('the wrong resource (Patient/example) and a Bundle with nothing mappable are refused as unsupported', () => {
    rejects(publicExample('Patient-example'), 'LL_FORMAT_UNSUPPORTED', /Patient is not a supported resource/);
    rejects(publicExample('Bundle-bundle-transaction'), 'LL_FORMAT_UNSUPPORTED', /Bundle holds no supported resource \(it holds Patient/);
  });
});

describe('FHIR R4 adapter on our own fixtures and malformed input', () => {
  test('a Bundle: each ChargeItem a record, the patient identifier resolved from the Bundle, the Bundle identifier as correlation', () => {
    const charges = mapped(readFileSync('tests/fixtures/partner/own/bundle-charges.json', 'utf8')).map((record) => record.value as ServiceCharge);
    assert.deepEqual(charges.map((charge) => [charge.idempotency_key.split('@')[0], charge.patient_id, charge.correlation_id, charge.total?.amount_minor]), [
      ['payer_x|urn:acme-lab:charges|CI-1', 'MRN123456', 'urn:acme-lab:bundles|B-2024-11-05-01', 4250],
      ['payer_x|urn:acme-lab:charges|CI-2', 'MRN123456', 'urn:acme-lab:bundles|B-2024-11-05-01', 10],
    ]);
    assert.equal(charges[1]?.version, '3', 'meta.versionId is the version');
    assert.equal(charges[1]?.idempotency_key, 'payer_x|urn:acme-lab:charges|CI-2@3');
  });

  test('an update of a resource (new meta.versionId) keeps the entity key and changes the idempotency key', () => {
    const bundle = readFileSync('tests/fixtures/partner/own/bundle-charges.json', 'utf8');
    const before = mapped(bundle)[1]?.value as ServiceCharge;
    const after = mapped(bundle.replace('"versionId": "3"', '"versionId": "4"'))[1]?.value as ServiceCharge;
    assert.equal(after.entity_key, before.entity_key);
    assert.notEqual(after.idempotency_key, before.idempotency_key);
  });

  test('invalid against R4 (unknown property, wrong type) with the JSON path; bad status; not JSON; truncated; empty', () => {
    const chargeItem = JSON.parse(publicExample('ChargeItem-example')) as Record<string, unknown>;
    rejects(JSON.stringify({ ...chargeItem, bedNumber: 7 }), 'LL_FORMAT_FHIR_INVALID', /ChargeItem\.bedNumber: .*fails the R4 definitions .*Invalid additional property "bedNumber"/);
    rejects(JSON.stringify({ ...chargeItem, quantity: { value: 'one' } }), 'LL_FORMAT_FHIR_INVALID', /ChargeItem\.quantity\.value/);
    rejects(JSON.stringify({ ...chargeItem, status: 'paid' }), 'LL_FORMAT_FHIR_INVALID', /ChargeItem\.status: status must be one of planned, billable/);
    rejects('{"resourceType": "ChargeItem",\n "status": }', 'LL_FORMAT_FHIR_INVALID', /not valid JSON/);
    const text = publicExample('ChargeItem-example');
    rejects(text.slice(0, text.length / 2), 'LL_FORMAT_FHIR_INVALID', /^line \d+ column \d+: not valid JSON/);
    rejects('  ', 'LL_FORMAT_EMPTY', /empty/);
    rejects('[1, 2]', 'LL_FORMAT_FHIR_INVALID', /a FHIR resource is a JSON object with a resourceType/);
  });

  test('money with more decimals than the currency has is refused, never rounded', () => {
    const chargeItem = JSON.parse(publicExample('ChargeItem-example')) as Record<string, unknown>;
    rejects(JSON.stringify({ ...chargeItem, priceOverride: { value: 40.005, currency: 'EUR' } }), 'LL_FORMAT_FHIR_INVALID', /priceOverride\.value: amount has 3 decimal places; EUR has 2/);
  });
});
