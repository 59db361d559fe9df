import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { LifelineError } from '../../../src/errors.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import type { DeliveryContext, PharmacyDispense, SupplyDelivery } from '../../../connectors/formats/canonical.ts';
import { CsvMappingSchema, csvRecordStream, csvToCanonical, type CsvMapping } from '../../../connectors/formats/csv.ts';
import { decodeDelivery, type PartnerFormatConfig } from '../../../connectors/formats/partner-format.ts';
import { decodeText } from '../../../connectors/formats/text-encoding.ts';

const context: DeliveryContext = { partner: 'corner_pharmacy', channel: 'FILE', deliveryId: 'dispenses.csv@abc', receivedAt: Date.UTC(2024, 10, 5), defaultCurrency: 'USD' };

const pharmacyMapping = Value.Default(CsvMappingSchema, {
  record_type: 'pharmacy_dispense',
  columns: {
    pharmacy_id: 'NCPDP', rx_number: 'RxNumber', fill_number: 'Fill', occurred_at: 'DispenseDate', product_code: 'NDC', product_description: 'Drug',
    quantity: 'Qty', quantity_unit: 'Unit', days_supply: 'DaysSupply', patient_id: 'MemberID', ingredient_cost: 'IngredientCost',
    dispensing_fee: 'DispFee', patient_pay: 'PatientPay', total: 'Total', status: 'Status',
  },
  key_columns: ['NCPDP', 'RxNumber', 'Fill', 'DispenseDate'],
  status_values: { B2: 'REVERSED' },
}) as CsvMapping;

const supplyMapping = Value.Default(CsvMappingSchema, {
  record_type: 'supply_delivery',
  delimiter: ';',
  columns: { item_code: 'item', item_description: 'description', quantity: 'qty', quantity_unit: 'uom', order_ref: 'po', occurred_at: 'delivered', lot_number: 'lot', expires_on: 'expiry', unit_cost: 'unit_cost', currency: 'currency' },
  key_columns: ['delivery_id', 'line'],
}) as CsvMapping;

const pharmacyCsv = readFileSync('tests/fixtures/partner/own/pharmacy-dispenses.csv', 'utf8');

function rejects(run: () => unknown, code: string, pattern: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof LifelineError, `expected a LifelineError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, pattern);
}

describe('CSV adapter', () => {
  test('the mapping schema is strict: unknown canonical fields and missing required ones are configuration errors', () => {
    assert.ok(Value.Check(CsvMappingSchema, pharmacyMapping));
    assert.ok(!Value.Check(CsvMappingSchema, { ...pharmacyMapping, columns: { ...(pharmacyMapping.columns as Record<string, string>), price_in_floats: 'X' } }));
    const { rx_number: _dropped, ...withoutRx } = pharmacyMapping.columns as Record<string, string>;
    assert.ok(!Value.Check(CsvMappingSchema, { ...pharmacyMapping, columns: withoutRx }));
  });

  test('pharmacy dispenses: quoting (embedded commas and doubled quotes), exact money, NCPDP dates, a reversal', () => {
    const records = csvToCanonical(pharmacyCsv, pharmacyMapping, context);
    const contract = loadContract('schemas/partner/pharmacy_dispense.avsc');
    const dispenses = records.map((record) => record.value as PharmacyDispense);
    for (const dispense of dispenses) assert.ok(contract.type.isValid(dispense), 'matches the Avro contract');
    assert.equal(dispenses.length, 3);
    assert.equal(dispenses[0]?.product_description, 'Atorvastatin 20 mg, tablet');
    assert.equal(dispenses[1]?.product_description, 'Metformin "ER" 500 mg');
    assert.deepEqual(dispenses[1]?.total, { amount_minor: 785, currency: 'USD' });
    assert.equal(dispenses[0]?.occurred_at, Date.UTC(2024, 10, 1));
    assert.equal(dispenses[2]?.status, 'REVERSED');
    assert.deepEqual(dispenses[2]?.total, { amount_minor: -595, currency: 'USD' });
    assert.equal(dispenses[0]?.idempotency_key.split('@')[0], 'corner_pharmacy|1234567|RX100001|0|20241101');
    assert.equal(dispenses[0]?.entity_key, 'corner_pharmacy|pharmacy_dispense|1234567|RX100001|0|20241101');
    assert.equal(dispenses[0]?.patient_id, 'M000111');
  });

  test('a row key built from a patient identifier column is hashed (keys are not masked like values)', () => {
    const mapping = { ...pharmacyMapping, key_columns: ['MemberID', 'RxNumber'] } as CsvMapping;
    const [record] = csvToCanonical(pharmacyCsv, mapping, context);
    assert.ok(!record?.value.entity_key.includes('M000111'));
    assert.match(record?.value.entity_key ?? '', /^corner_pharmacy\|pharmacy_dispense\|[0-9a-f]{32}$/);
  });

  test('supply deliveries: a BOM, another delimiter, a currency column, ISO date-times and expiry dates', () => {
    const bytes = readFileSync('tests/fixtures/partner/own/supply-deliveries.csv');
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
    const partner: PartnerFormatConfig = { name: 'medsupply', format: 'csv', charset: 'utf-8', default_currency: 'USD', csv: supplyMapping };
    const deliveries = decodeDelivery(bytes, partner, context).map((record) => record.value as SupplyDelivery);
    assert.equal(deliveries.length, 2);
    assert.equal(deliveries[0]?.item_code, 'GTIN-0884521');
    assert.deepEqual(deliveries[0]?.unit_cost, { amount_minor: 750, currency: 'EUR' });
    assert.equal(deliveries[0]?.expires_on, '2026-05-31');
    assert.equal(deliveries[0]?.occurred_at, Date.UTC(2024, 10, 4, 9, 30));
    assert.equal(deliveries[1]?.refs.order_ref, 'PO-4410');
  });

  test('errors name the line and the field: missing columns, empty required fields, bad amounts and dates', () => {
    rejects(() => csvToCanonical(pharmacyCsv.replace('NDC,', 'Product,'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 1: header lacks column "NDC" \(for product_code\)/);
    rejects(() => csvToCanonical(pharmacyCsv.replace('RX100002,1,20241101,00378-1800-10', 'RX100002,1,20241101,'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 3 field product_code \(column "NDC"\): is required but empty/);
    rejects(() => csvToCanonical(pharmacyCsv.replace('6.10', '6.1O'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 3 field ingredient_cost \(column "IngredientCost"\): amount must be a decimal/);
    rejects(() => csvToCanonical(pharmacyCsv.replace('20241102', '20241302'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 4 field occurred_at .*not a real calendar date/);
    rejects(() => csvToCanonical(pharmacyCsv.replace(',B2', ',XX'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 4 field status .*must be one of DISPENSED, REVERSED, UNKNOWN/);
  });

  test('broken structure: a row with a field too many, an unclosed quote (truncated file), a header only, nothing at all', () => {
    rejects(() => csvToCanonical(`${pharmacyCsv}1,2,3\n`, pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /^line 5: the row has a different number of fields than the header/);
    rejects(() => csvToCanonical(pharmacyCsv.replace('"Metformin ""ER"" 500 mg",60', '"Metformin ""ER"" 500 mg,60'), pharmacyMapping, context), 'LL_FORMAT_CSV_INVALID', /a quoted field is not closed|quote/);
    rejects(() => csvToCanonical(pharmacyCsv.split('\n')[0] as string, pharmacyMapping, context), 'LL_FORMAT_EMPTY', /header but no rows/);
    rejects(() => csvToCanonical('', pharmacyMapping, context), 'LL_FORMAT_EMPTY', /empty/);
  });

  test('streamed: a bad row is reported with its line and the stream goes on, so a report lists every bad row', async () => {
    const text = pharmacyCsv.replace('RX100002,1,20241101,00378-1800-10', 'RX100002,1,20241101,').replace('-5.95,B2', '-5.9x,B2');
    async function* chunks(): AsyncGenerator<string> {
      for (let index = 0; index < text.length; index += 7) yield text.slice(index, index + 7); // boundaries inside fields and quotes
    }
    const items = [];
    for await (const item of csvRecordStream(chunks(), pharmacyMapping, context)) items.push(item);
    assert.deepEqual(items.map((item) => ('error' in item ? `error@${item.line}` : `ok@${item.line}`)), ['ok@2', 'error@3', 'error@4']);
  });
});

test('a line break inside a quoted field counts as one line, LF or CRLF (csv-spectrum newlines files)', async () => {
  const mapping = Value.Default(CsvMappingSchema, { record_type: 'supply_delivery', columns: { item_code: 'b', quantity: 'a' }, key_columns: ['b'] }) as CsvMapping;
  for (const name of ['csv-spectrum-newlines.csv', 'csv-spectrum-newlines_crlf.csv']) {
    const text = readFileSync(`tests/fixtures/partner/public/csv/${name}`, 'utf8');
    // Rows: 1,2,3 (line 2); "Once upon <break>a time",5,6 (lines 3-4: quantity not a number); 7,8,9 (line 5).
    rejects(() => csvToCanonical(text, mapping, context), 'LL_FORMAT_CSV_INVALID', /^line 4 field quantity/);
    const items = [];
    for await (const item of csvRecordStream((async function* () { yield text; })(), mapping, context)) items.push('error' in item ? `error@${item.line}` : `ok@${item.line}`);
    assert.deepEqual(items, ['ok@2', 'error@4', 'ok@5'], name);
  }
});

describe('strict text decoding', () => {
  test('non-UTF-8 bytes are an error with line, column and byte offset, never a replacement character', () => {
    const bytes = Buffer.concat([Buffer.from('a,b\n1,2\n3,caf'), Buffer.from([0xe9]), Buffer.from(',x\n')]);
    rejects(() => decodeText(bytes, 'utf-8'), 'LL_FORMAT_ENCODING', /^line 3 column 6 \(byte 13\): not valid utf-8/);
    assert.equal(decodeText(bytes, 'windows-1252'), 'a,b\n1,2\n3,café,x\n');
  });

  test('a UTF-8 character split across chunks is fine; content ending inside one is not', () => {
    const partner: PartnerFormatConfig = { name: 'p', format: 'csv', charset: 'utf-8', default_currency: 'USD', csv: pharmacyMapping };
    rejects(() => decodeDelivery(Buffer.from([0x61, 0xc3]), partner, context), 'LL_FORMAT_ENCODING', /ends inside a multi-byte/);
    rejects(() => decodeDelivery(Buffer.alloc(0), partner, context), 'LL_FORMAT_EMPTY', /empty/);
    assert.equal(decodeText(Buffer.from('\uFEFFcafé'), 'utf-8'), 'café', 'the BOM is dropped');
  });
});
