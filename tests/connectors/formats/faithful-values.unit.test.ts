import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import type { DeliveryContext, PharmacyDispense, ServiceCharge } from '../../../connectors/formats/canonical.ts';
import { completeLineMoney, parseHl7Timestamp } from '../../../connectors/formats/field-values.ts';
import { fhirToCanonical } from '../../../connectors/formats/fhir-r4.ts';
import { declaredHl7Charset, delimitersOf, unescapeHl7 } from '../../../connectors/formats/hl7-text.ts';
import { hl7ToCanonical } from '../../../connectors/formats/hl7v2.ts';
import { decodeDelivery, type PartnerFormatConfig } from '../../../connectors/formats/partner-format.ts';

/** Issue 12, item 2: what arrives right lands right — escapes, character sets, offsets and money. */

const context: DeliveryContext = { partner: 'north_lab', channel: 'WEBHOOK', deliveryId: 'msg_1', receivedAt: Date.UTC(2024, 10, 5, 12), defaultCurrency: 'USD' };
const hl7Partner: PartnerFormatConfig = { name: 'north_lab', format: 'hl7v2', charset: 'utf-8', default_currency: 'USD' };
const standard = delimitersOf('MSH|^~\\&|A');

function dft(options: { encoding?: string; sentAt?: string; charset?: string; ft1Date?: string; description?: string; quantity?: string; total?: string; unit?: string } = {}): string {
  const encoding = options.encoding ?? '^~\\&';
  const component = encoding[0] as string;
  const msh = `MSH|${encoding}|LIS|LAB|LIFELINE|STMARYS|${options.sentAt ?? '20241105101500-0500'}||DFT${component}P03|C1|P|2.5||||||${options.charset ?? ''}`;
  return [
    msh,
    `FT1|1|||${options.ft1Date ?? '20241105093000'}||CG|85025${component}${options.description ?? 'Blood count'}${component}CPT|||${options.quantity ?? '1'}|${options.total ?? '42.50'}|${options.unit ?? ''}`,
  ].join('\r');
}

const chargeOf = (text: string, extra: Partial<DeliveryContext> = {}): ServiceCharge => hl7ToCanonical(text, { ...context, ...extra })[0]?.value as ServiceCharge;

describe('HL7 escape sequences', () => {
  test('separators, the escape character and hex data decode with the standard encoding characters', () => {
    assert.equal(unescapeHl7('A \\T\\ B \\F\\ C \\S\\ D \\R\\ E \\E\\ F', standard, 'utf-8', 'x'), 'A & B | C ^ D ~ E \\ F');
    assert.equal(unescapeHl7('line\\X0D0A\\next', standard, 'utf-8', 'x'), 'line\r\nnext');
    assert.equal(unescapeHl7('caf\\XC3A9\\', standard, 'utf-8', 'x'), 'café');
    assert.equal(unescapeHl7('caf\\XE9\\', standard, 'iso-8859-1', 'x'), 'café', 'hex bytes in the message\'s character set');
    assert.equal(unescapeHl7('one\\.br\\two\\.sp 2\\three', standard, 'utf-8', 'x'), 'one\ntwo\n\nthree');
    assert.equal(unescapeHl7('\\H\\bold\\N\\ \\.in+4\\text', standard, 'utf-8', 'x'), 'bold text');
  });

  test('what Lifeline does not interpret stays as it is: charset switches, local escapes, a lone escape character', () => {
    assert.equal(unescapeHl7('a \\C2842\\ b \\Zlocal\\ c', standard, 'utf-8', 'x'), 'a \\C2842\\ b \\Zlocal\\ c');
    assert.equal(unescapeHl7('trailing \\', standard, 'utf-8', 'x'), 'trailing \\');
  });

  test('a message with its own encoding characters is decoded with them (MSH-2 #!@$)', () => {
    const custom = delimitersOf('MSH|#!@$|A');
    assert.deepEqual([custom.component, custom.repetition, custom.escape, custom.subcomponent], ['#', '!', '@', '$']);
    assert.equal(unescapeHl7('X @T@ Y @F@ Z @S@', custom, 'utf-8', 'x'), 'X $ Y | Z #');
    const charge = chargeOf(dft({ encoding: '#!@$', description: 'Blood @T@ urine @E@' }));
    assert.equal(charge.service_description, 'Blood $ urine @');
    assert.equal(charge.service_code, '85025');
  });

  test('the canonical record carries decoded text', () => {
    assert.equal(chargeOf(dft({ description: 'CBC \\T\\ diff\\X0D\\\\F\\x' })).service_description, 'CBC & diff\r|x');
  });
});

describe('MSH-18 and MSH-7', () => {
  test('MSH-18 8859/1 is honoured for the whole delivery, whatever the partner\'s default', () => {
    const bytes = Buffer.from(dft({ charset: '8859/1', description: 'Hämoglobin' }), 'latin1');
    const undeclared = Buffer.from(dft({ description: 'Hämoglobin' }), 'latin1');
    assert.throws(() => decodeDelivery(undeclared, hl7Partner, context), { code: 'LL_FORMAT_ENCODING' }, 'without MSH-18 the partner\'s utf-8 applies, strictly');
    const [record] = decodeDelivery(bytes, hl7Partner, context);
    assert.equal((record?.value as ServiceCharge).service_description, 'Hämoglobin');
  });

  test('MSH-18 that Lifeline cannot decode is a clean encoding error; an empty one leaves the partner\'s charset', () => {
    assert.equal(declaredHl7Charset(Buffer.from(dft())), undefined);
    assert.equal(declaredHl7Charset(Buffer.from(dft({ charset: 'UNICODE UTF-8' }))), 'utf-8');
    assert.throws(() => declaredHl7Charset(Buffer.from(dft({ charset: 'ISO IR87' }))), { code: 'LL_FORMAT_ENCODING' });
  });

  test('timestamps without an offset are in the offset MSH-7 declares; their own offset wins; none at all is UTC', () => {
    const charge = chargeOf(dft({ sentAt: '20241105101500-0500', ft1Date: '20241105093000' }));
    assert.equal(charge.occurred_at, Date.UTC(2024, 10, 5, 14, 30), '09:30 at -05:00');
    assert.equal(charge.sent_at, Date.UTC(2024, 10, 5, 15, 15));
    assert.equal(chargeOf(dft({ sentAt: '20241105101500-0500', ft1Date: '20241105093000+0100' })).occurred_at, Date.UTC(2024, 10, 5, 8, 30));
    assert.equal(chargeOf(dft({ sentAt: '20241105101500', ft1Date: '20241105093000' })).occurred_at, Date.UTC(2024, 10, 5, 9, 30));
    assert.equal(parseHl7Timestamp('20240301', 'x', '+0530'), Date.UTC(2024, 1, 29, 18, 30));
  });
});

describe('money: quantity, unit price and total consistent', () => {
  test('derivation is exact or nothing', () => {
    const usd = (amount_minor: number) => ({ amount_minor, currency: 'USD' });
    assert.deepEqual(completeLineMoney(2, usd(3125), null), { unit: usd(3125), total: usd(6250) });
    assert.deepEqual(completeLineMoney(2, null, usd(8450)), { unit: usd(4225), total: usd(8450) });
    assert.deepEqual(completeLineMoney(3, null, usd(10000)), { unit: null, total: usd(10000) }, 'no rounded unit price');
    assert.deepEqual(completeLineMoney(1.5, usd(1001), null), { unit: usd(1001), total: null }, 'no rounded total');
    assert.deepEqual(completeLineMoney(2, usd(100), usd(150)), { unit: usd(100), total: usd(150) }, 'both given: kept as given');
  });

  test('an FT1 with only a unit price gets its total, and one with only a total its unit price', () => {
    const unitOnly = chargeOf(dft({ quantity: '2', total: '', unit: '31.25' }));
    assert.deepEqual([unitOnly.unit_price?.amount_minor, unitOnly.total?.amount_minor], [3125, 6250]);
    const totalOnly = chargeOf(dft({ quantity: '2', total: '85.00' }));
    assert.deepEqual([totalOnly.unit_price?.amount_minor, totalOnly.total?.amount_minor], [4250, 8500]);
  });

  test('a FHIR ChargeItem with only a priceOverride is a charge of that total (not 0.00), its unit price derived', () => {
    const item = {
      resourceType: 'ChargeItem', identifier: [{ system: 'urn:payer', value: 'CI-1' }], status: 'billable',
      code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '80053' }] }, subject: { reference: 'Patient/1' },
      occurrenceDateTime: '2024-11-05T09:30:00-05:00', quantity: { value: 2 }, priceOverride: { value: 84.5, currency: 'USD' },
    };
    const charge = fhirToCanonical(JSON.stringify(item), context)[0]?.value as ServiceCharge;
    assert.deepEqual([charge.quantity, charge.unit_price?.amount_minor, charge.total?.amount_minor], [2, 4225, 8450]);
    assert.equal(charge.idempotency_key.split('|')[0], 'north_lab', 'partner-scoped key');
  });
});

describe('FHIR MedicationDispense', () => {
  test('becomes a pharmacy dispense: pharmacy, prescription, the contained Medication\'s code, quantity and days supply; no prices in R4', () => {
    const text = readFileSync('tests/fixtures/partner/public/fhir-r4/MedicationDispense-meddisp0301.json', 'utf8');
    const [record] = fhirToCanonical(text, context);
    assert.equal(record?.kind, 'pharmacy_dispense');
    const dispense = record?.value as PharmacyDispense;
    assert.deepEqual(
      [dispense.pharmacy_id, dispense.rx_number, dispense.product_code, dispense.product_code_system, dispense.quantity, dispense.quantity_unit, dispense.days_supply, dispense.status, dispense.total],
      ['Location/ukp', 'MedicationRequest/medrx0318', '0069-2587-10', 'http://hl7.org/fhir/sid/ndc', 12, 'Vial', 3, 'UNKNOWN', null],
    );
    assert.equal(dispense.occurred_at, Date.UTC(2015, 0, 15, 10, 20));
  });

  test('without a dispensed quantity it is refused, naming the field', () => {
    const text = readFileSync('tests/fixtures/partner/public/fhir-r4/MedicationDispense-meddisp008.json', 'utf8');
    assert.throws(() => fhirToCanonical(text, context), (error: Error & { code?: string }) => error.code === 'LL_FORMAT_FHIR_INVALID' && /quantity is required/.test(error.message));
  });
});

describe('FHIR JSON shape', () => {
  test('an empty array or a null element is a clean LL_FORMAT_FHIR_INVALID naming the path (the R4 validator lets them through)', () => {
    const claim = JSON.parse(readFileSync('tests/fixtures/partner/public/fhir-r4/Claim-660150.json', 'utf8')) as Record<string, unknown>;
    assert.throws(() => fhirToCanonical(JSON.stringify({ ...claim, provider: { reference: [] } }), context), (error: Error & { code?: string }) => error.code === 'LL_FORMAT_FHIR_INVALID' && /Claim\.provider\.reference: an array is empty/.test(error.message));
    assert.throws(() => fhirToCanonical(JSON.stringify({ ...claim, insurer: null }), context), (error: Error & { code?: string }) => error.code === 'LL_FORMAT_FHIR_INVALID' && /Claim\.insurer: an element is null/.test(error.message));
  });
});
