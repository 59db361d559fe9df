import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { LifelineError } from '../../../src/errors.ts';
import type { CanonicalRecord, DeliveryContext, OrderAcknowledgement, PartnerOrder, ServiceCharge, VisitReference } from '../../../connectors/formats/canonical.ts';
import { hl7ToCanonical, splitHl7 } from '../../../connectors/formats/hl7v2.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';

const context: DeliveryContext = { partner: 'acme_lab', channel: 'WEBHOOK', deliveryId: 'msg_1', receivedAt: Date.UTC(2024, 10, 5, 12), defaultCurrency: 'USD' };
const publicSample = (name: string): string => readFileSync(`tests/fixtures/partner/public/hl7v2/${name}`, 'utf8');
const ownSample = (name: string): string => readFileSync(`tests/fixtures/partner/own/${name}`, 'utf8');

const contracts = {
  service_charge: loadContract('schemas/partner/service_charge.avsc'),
  order: loadContract('schemas/partner/order.avsc'),
  order_acknowledgement: loadContract('schemas/partner/order_acknowledgement.avsc'),
  visit_reference: loadContract('schemas/partner/visit_reference.avsc'),
} as const;

/** Every record must encode with its Avro contract: the adapter and the schema agree. */
function assertEncodes(records: readonly CanonicalRecord[]): void {
  for (const record of records) {
    const contract = contracts[record.kind as keyof typeof contracts];
    assert.ok(contract, `no contract for ${record.kind}`);
    const paths: string[] = [];
    const valid = contract.type.isValid(record.value, { errorHook: (path) => paths.push(path.join('.')) });
    assert.ok(valid, `${record.kind} does not match its schema at ${paths.join(', ')}`);
  }
}

function rejects(text: string, code: string, pattern: RegExp): LifelineError {
  let caught: unknown;
  try {
    hl7ToCanonical(text, context);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof LifelineError, `expected a LifelineError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
  return caught;
}

describe('HL7 v2 adapter on public samples (simple-hl7, hl7-standard)', () => {
  test('ADT^A04 (simple-hl7) becomes visit reference data, keyed without PHI', () => {
    const records = hl7ToCanonical(publicSample('simple-hl7-adt.hl7'), context);
    assert.equal(records.length, 1);
    const visit = records[0]?.value as VisitReference;
    assert.equal(records[0]?.kind, 'visit_reference');
    assert.equal(visit.event_type, 'A04');
    assert.equal(visit.idempotency_key, 'acme_lab|EPIC|EPICADT|1817457');
    assert.equal(visit.patient_id, '454721', 'PID-3 (PID-2 is the old external id)');
    assert.equal(visit.refs.visit_ref, '2688684');
    assert.ok(!visit.entity_key.includes('2688684'), 'the visit number (PHI) is hashed in the key');
    assert.equal(visit.occurred_at, Date.UTC(1999, 11, 27, 14, 8));
    assertEncodes(records);
  });

  test('ORM^O01 (simple-hl7) becomes a new order with its OBR item', () => {
    const records = hl7ToCanonical(publicSample('simple-hl7-orm.hl7'), context);
    const order = records[0]?.value as PartnerOrder;
    assert.equal(records[0]?.kind, 'order');
    assert.equal(order.status, 'NEW');
    assert.equal(order.placer_order_ref, '20060307110114');
    assert.deepEqual(order.items.map((item) => [item.service_code, item.service_description]), [['003038', 'Urinalysis']]);
    assert.equal(order.idempotency_key, 'acme_lab|HIS|MedCenter|MSGID20060307110114');
    assertEncodes(records);
  });

  test('ORU^R01 (simple-hl7, CR-separated) gives the order\'s result status: final, five observations', () => {
    const records = hl7ToCanonical(publicSample('simple-hl7-oru.hl7'), context);
    const status = records[0]?.value as OrderAcknowledgement;
    assert.equal(status.kind, 'RESULT_STATUS');
    assert.equal(status.status, 'RESULT_FINAL');
    assert.equal(status.result_count, 5);
    assert.equal(status.acknowledged_ref, '185L29839X64489JLPF');
    assert.equal(status.is_correction, false);
    assertEncodes(records);
  });

  test('ACK with MSA AR (hl7-standard) becomes a rejected message acknowledgement', () => {
    const records = hl7ToCanonical(publicSample('hl7-standard-message2.hl7'), context);
    const ack = records[0]?.value as OrderAcknowledgement;
    assert.equal(ack.kind, 'MESSAGE_ACK');
    assert.equal(ack.status, 'REJECTED');
    assert.equal(ack.acknowledged_ref, 'QS444437861000000042');
    assert.equal(ack.status_detail, 'Not logged in: User login failed');
    assertEncodes(records);
  });

  test('an FHS/BHS batch (hl7-standard) is split into its messages; its RSP^K11 is rejected whole, naming the message', () => {
    const messages = splitHl7(publicSample('hl7-standard-batch.hl7'));
    assert.deepEqual(messages.map((message) => [message.ordinal, message.segments[0]?.split('|')[8]]), [[1, 'ADT^A01'], [2, 'RSP^K11^RSP_K11']]);
    rejects(publicSample('hl7-standard-batch.hl7'), 'LL_FORMAT_UNSUPPORTED', /message 2 \(line 13\) MSH-9: RSP\^K11 is not a supported message type/);
  });
});

describe('HL7 v2 adapter on our own fixtures', () => {
  test('DFT^P03: one exact-money charge per FT1, keyed MSH-3|MSH-4|MSH-10#FT1-n, with business references', () => {
    const records = hl7ToCanonical(ownSample('dft-p03.hl7'), context);
    assert.equal(records.length, 2);
    const [first, second] = records.map((record) => record.value as ServiceCharge);
    assert.equal(first?.idempotency_key, 'acme_lab|LABSYS|ACME_LAB|DFT000123#FT1-1');
    assert.equal(second?.idempotency_key, 'acme_lab|LABSYS|ACME_LAB|DFT000123#FT1-2');
    assert.deepEqual(first?.total, { amount_minor: 4250, currency: 'USD' });
    assert.deepEqual(second?.unit_price, { amount_minor: 1550, currency: 'USD' });
    assert.equal(second?.quantity, 2);
    assert.equal(first?.service_code, '80048');
    assert.equal(first?.service_code_system, 'CPT');
    assert.deepEqual(first?.refs, { order_ref: 'ORD-777', account_ref: 'ACCT778899', visit_ref: 'VISIT5544', facility_ref: 'LAB', invoice_ref: null });
    assert.equal(first?.patient_id, 'MRN123456');
    assert.equal(first?.patient_id_system, 'GENERAL_HOSP');
    assert.equal(first?.sent_at, Date.UTC(2024, 10, 5, 13, 30), 'MSH-7 with its +0100 offset');
    assert.equal(first?.entity_key, 'acme_lab|charge|TX-9001');
    assertEncodes(records);
  });

  test('a batch file (FHS/BHS/BTS/FTS) yields every message; a credit (FT1-6 CD) is a negative exact amount', () => {
    const records = hl7ToCanonical(ownSample('dft-batch.hl7'), context);
    const charges = records.map((record) => record.value as ServiceCharge);
    assert.deepEqual(charges.map((charge) => [charge.idempotency_key, charge.charge_type, charge.total?.amount_minor]), [
      ['acme_lab|LABSYS|ACME_LAB|DFT000200#FT1-1', 'CHARGE', 6125],
      ['acme_lab|LABSYS|ACME_LAB|DFT000201#FT1-1', 'CREDIT', -6125],
      ['acme_lab|LABSYS|ACME_LAB|DFT000202#FT1-1', 'CHARGE', 2310],
    ]);
  });

  test('a corrected result (OBX-11 = C) updates the same entity with a distinct key and version, marked as a correction', () => {
    const [final] = hl7ToCanonical(ownSample('oru-final.hl7'), context).map((record) => record.value as OrderAcknowledgement);
    const [corrected] = hl7ToCanonical(ownSample('oru-corrected.hl7'), context).map((record) => record.value as OrderAcknowledgement);
    assert.equal(final?.status, 'RESULT_FINAL');
    assert.equal(corrected?.status, 'RESULT_CORRECTED');
    assert.equal(corrected?.is_correction, true);
    assert.equal(corrected?.entity_key, final?.entity_key, 'the correction updates the same result');
    assert.notEqual(corrected?.idempotency_key, final?.idempotency_key);
    assert.notEqual(corrected?.version, final?.version);
    assert.match(corrected?.version ?? '', /RESULT_CORRECTED/);
  });

  test('OML^O21 with two ORC groups gives two orders (new with two items, cancelled)', () => {
    const orders = hl7ToCanonical(ownSample('oml-o21.hl7'), context).map((record) => record.value as PartnerOrder);
    assert.deepEqual(orders.map((order) => [order.placer_order_ref, order.status, order.items.length, order.idempotency_key]), [
      ['ORD-901', 'NEW', 2, 'acme_lab|CLINIC_EMR|NORTH_CLINIC|OML000042#ORC-1'],
      ['ORD-850', 'CANCELLED', 1, 'acme_lab|CLINIC_EMR|NORTH_CLINIC|OML000042#ORC-2'],
    ]);
    assert.equal(orders[0]?.priority, 'R');
    assert.equal(orders[0]?.ordering_provider_ref, '4321');
  });
});

describe('HL7 v2 adapter on malformed input: a clear error naming message, segment and field', () => {
  test('a truncated message (MSH cut short)', () => {
    rejects('MSH|^~\\&|LABSYS|ACME_LAB|ODOO', 'LL_FORMAT_HL7_INVALID', /message 1 \(line 1\) MSH-12: MSH-12 \(version\) is empty: .*truncated/);
  });

  test('a batch cut before its trailer, and one whose BTS count disagrees', () => {
    const batch = ownSample('dft-batch.hl7');
    rejects(batch.slice(0, batch.indexOf('BTS')), 'LL_FORMAT_HL7_INVALID', /BHS header but no BTS trailer/);
    rejects(batch.replace('BTS|3', 'BTS|4'), 'LL_FORMAT_HL7_INVALID', /line 12 BTS-1: BTS-1 declares 4 messages but the batch holds 3/);
  });

  test('a charge without an amount-bearing transaction type, or with more decimals than the currency has', () => {
    const dft = ownSample('dft-p03.hl7');
    rejects(dft.replace('|CG|80048', '||80048'), 'LL_FORMAT_HL7_INVALID', /FT1\[1\]-6 is required but empty/);
    rejects(dft.replace('42.50&USD|42.50&USD', '42.505&USD|42.50&USD'), 'LL_FORMAT_HL7_INVALID', /FT1\[1\]-11: amount has 3 decimal places; USD has 2/);
  });

  test('a bad timestamp, a segment that is not HL7, empty content, an unsupported type', () => {
    rejects(ownSample('dft-p03.hl7').replace('20241105143000+0100', '2024-11-05'), 'LL_FORMAT_HL7_INVALID', /MSH-7: timestamp must be/);
    rejects(`${ownSample('oru-final.hl7')}\rhello world`, 'LL_FORMAT_HL7_INVALID', /line 7: not an HL7 segment/);
    rejects('', 'LL_FORMAT_EMPTY', /no HL7 message/);
    rejects('MSH|^~\\&|A|B|C|D|20240101||QRY^A19|Q1|P|2.5', 'LL_FORMAT_UNSUPPORTED', /QRY\^A19 is not a supported message type/);
  });
});
