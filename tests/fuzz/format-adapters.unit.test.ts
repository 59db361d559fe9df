import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import type { CanonicalRecord, DeliveryContext } from '../../connectors/formats/canonical.ts';
import { CsvMappingSchema, type CsvMapping } from '../../connectors/formats/csv.ts';
import { loadFhirDefinitions } from '../../connectors/formats/fhir-r4.ts';
import { decodeDelivery, streamFileRecords, type PartnerFormatConfig } from '../../connectors/formats/partner-format.ts';
import { LifelineError } from '../../src/errors.ts';
import { CORPUS_CSV_MAPPINGS } from '../connectors/formats/corpus-table.ts';
import { FORMAT_CODES, cleanOutcome, deepJson, fuzzParameters, fuzzTimeout, mutated, seedFiles } from './fuzz-kit.ts';

/**
 * Property-based tests (fast-check) of the HL7 v2, FHIR R4 and CSV adapters, on the corpus mutated
 * the ways partner content goes wrong (truncated segments, wrong encodings, escape sequences, huge
 * fields, deep JSON, BOMs): a whole delivery (webhooks) and a streamed file (file drops) each end as
 * canonical records valid against their Avro contracts, or a clean LL_FORMAT_* error — never an
 * exception a process would die of. LIFELINE_FUZZ_RUNS raises the case count (`npm run fuzz`);
 * LIFELINE_FUZZ_SEED replays a failure.
 */

const context: DeliveryContext = { partner: 'fuzz_partner', channel: 'WEBHOOK', deliveryId: 'fuzz', receivedAt: Date.UTC(2024, 10, 5), defaultCurrency: 'USD' };
const partner = (format: PartnerFormatConfig['format'], csv?: CsvMapping): PartnerFormatConfig => ({ name: 'fuzz_partner', format, charset: 'utf-8', default_currency: 'USD', ...(csv ? { csv } : {}) });

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

/** A streamed file: every item a valid record or a clean error; the stream itself may end in a clean error. */
async function streamOutcome(bytes: Buffer, fileName: string, config: PartnerFormatConfig): Promise<void> {
  const chunks = Readable.from(chunked(bytes));
  try {
    for await (const item of streamFileRecords(chunks, fileName, config, { ...context, channel: 'FILE' }, 8 * 1024 * 1024)) {
      if ('error' in item) {
        assert.ok(item.error instanceof LifelineError && (FORMAT_CODES as readonly string[]).includes(item.error.code), `item error ${String(item.error)}`);
      } else {
        cleanOutcome(() => [item.record as CanonicalRecord], FORMAT_CODES);
      }
    }
  } catch (error) {
    if (!(error instanceof LifelineError)) throw new Error(`streamed file: not a clean error: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, { cause: error });
    assert.ok((FORMAT_CODES as readonly string[]).includes(error.code), error.code);
  }
}

/** The bytes in uneven chunks, so multi-byte characters and CRLFs get cut across reads. */
function* chunked(bytes: Buffer): Generator<Buffer> {
  let offset = 0;
  let size = 1;
  while (offset < bytes.length) {
    yield bytes.subarray(offset, offset + size);
    offset += size;
    size = size * 7 % 4099 + 1;
  }
}

describe('fuzz: format adapters', () => {
  test('HL7 v2: mutated messages and batches end as valid records or LL_FORMAT_* errors, whole or streamed', { timeout: fuzzTimeout(60_000) }, async () => {
    const seeds = seedFiles((name) => name.endsWith('.hl7'));
    assert.ok(seeds.length >= 5);
    const outcomes = { records: 0, rejected: 0 };
    await fc.assert(fc.asyncProperty(mutated(seeds), async (bytes) => {
      outcomes[cleanOutcome(() => decodeDelivery(bytes, partner('hl7v2'), context), FORMAT_CODES)]++;
      await streamOutcome(bytes, 'fuzz.hl7', partner('hl7v2'));
    }), fuzzParameters(100));
    assert.ok(outcomes.records > 0 && outcomes.rejected > 0, `both outcomes seen: ${JSON.stringify(outcomes)}`);
  });

  test('FHIR R4: mutated resources and Bundles, JSON bombs and values swapped for random JSON end cleanly', { timeout: fuzzTimeout(120_000) }, async () => {
    loadFhirDefinitions();
    const seeds = seedFiles((name) => name.endsWith('.json'));
    assert.ok(seeds.length >= 5);
    const swapped = fc.tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom('constructor', '__proto__', 'toString', 'hasOwnProperty', '', ' ', [], {}, null, -0, 1e308))), { minLength: 1, maxLength: 4 })).map(([seed, swaps]) => {
      const json = JSON.parse(seed.toString('utf8')) as unknown;
      for (const [pick, replacement] of swaps) replaceSomewhere(json, pick, replacement);
      return Buffer.from(JSON.stringify(json));
    });
    await fc.assert(fc.asyncProperty(fc.oneof(mutated(seeds, 4), deepJson, swapped), async (bytes) => {
      cleanOutcome(() => decodeDelivery(bytes, partner('fhir_r4'), context), FORMAT_CODES);
      await streamOutcome(bytes, 'fuzz.json', partner('fhir_r4'));
    }), fuzzParameters(80));
  });

  test('CSV: mutated spreadsheet exports end as valid records or LL_FORMAT_* errors, whole or streamed', { timeout: fuzzTimeout(60_000) }, async () => {
    const pharmacy = seedFiles((name) => name.startsWith('pharmacy') && name.endsWith('.csv'));
    const supply = seedFiles((name) => name.startsWith('supply') && name.endsWith('.csv'));
    // csv-spectrum's parser test files: quoting, doubled quotes, line breaks in fields, CRLF, UTF-8.
    const spectrum = seedFiles((name) => name.startsWith('csv-spectrum-'));
    assert.ok(pharmacy.length > 0 && supply.length > 0 && spectrum.length > 0);
    const cases = fc.oneof(
      mutated(pharmacy).map((bytes) => ({ bytes, config: partner('csv', pharmacyMapping) })),
      mutated(supply).map((bytes) => ({ bytes, config: partner('csv', supplyMapping) })),
      mutated(spectrum).map((bytes) => ({ bytes, config: partner('csv', CORPUS_CSV_MAPPINGS.spectrum as CsvMapping) })),
    );
    await fc.assert(fc.asyncProperty(cases, async ({ bytes, config }) => {
      cleanOutcome(() => decodeDelivery(bytes, config, context), FORMAT_CODES);
      await streamOutcome(bytes, 'fuzz.csv', config);
    }), fuzzParameters(60));
  });
});

/** Replaces the `pick`-th value (in a walk of the document) by `replacement`. */
function replaceSomewhere(document: unknown, pick: number, replacement: unknown): void {
  const slots: Array<{ holder: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach((item, index) => { slots.push({ holder: value, key: index }); walk(item); });
    else if (value && typeof value === 'object') for (const [key, item] of Object.entries(value)) { slots.push({ holder: value as Record<string, unknown>, key }); walk(item); }
  };
  walk(document);
  const slot = slots[pick % Math.max(1, slots.length)];
  if (slot) (slot.holder as Record<string | number, unknown>)[slot.key] = replacement;
}
