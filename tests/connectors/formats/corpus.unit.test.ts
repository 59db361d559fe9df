import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { OUTPUT_OF_KIND, type CanonicalRecord, type DeliveryContext } from '../../../connectors/formats/canonical.ts';
import { CsvMappingSchema, type CsvMapping } from '../../../connectors/formats/csv.ts';
import { decodeDelivery, streamFileRecords, type PartnerFormatConfig } from '../../../connectors/formats/partner-format.ts';
import { LifelineError } from '../../../src/errors.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';

/**
 * The corpus: every sample under tests/fixtures/partner ends where the table in docs/formats.md
 * says — the same source output (or quarantine code) and record count — through the webhook path
 * (a whole delivery) and the file path (streamed); every record encodes with its Avro contract.
 * A sample without a row, or a row without a sample, fails the test: the table covers the corpus.
 * Odoo bill lines of the charge samples are checked on the broker in tests/faithful/faithful-pipeline.test.ts.
 */

export interface CorpusRow {
  readonly sample: string;
  /** A source output (`service_charges`) or `quarantine LL_…`. */
  readonly endsIn: string;
  readonly records: number;
  /** [name, price_unit] of each Odoo bill line, for samples that become service charges. */
  readonly billLines: ReadonlyArray<readonly [string, number]> | undefined;
}

/** The corpus table of docs/formats.md. */
export function corpusTable(): CorpusRow[] {
  const docs = readFileSync('docs/formats.md', 'utf8');
  const section = docs.slice(docs.indexOf('## The corpus'));
  const rows: CorpusRow[] = [];
  for (const line of section.split('\n')) {
    const match = /^\| `([^`]+)` \| (.+?) \| (\d+) \|(.*)\|$/.exec(line);
    if (!match) continue;
    const [, sample, endsIn, records, lines] = match as unknown as [string, string, string, string, string];
    const json = /^`(.*)`$/.exec(lines.trim())?.[1];
    rows.push({
      sample,
      endsIn: endsIn.replace(/`/g, '').trim(),
      records: Number(records),
      billLines: json === undefined ? undefined : JSON.parse(json) as Array<[string, number]>,
    });
  }
  return rows;
}

export function corpusFiles(): string[] {
  const files: string[] = [];
  for (const dir of ['own', 'public/hl7v2', 'public/fhir-r4', 'public/csv']) {
    let names: string[] = [];
    try {
      names = readdirSync(`tests/fixtures/partner/${dir}`);
    } catch {
      continue;
    }
    files.push(...names.filter((name) => /\.(hl7|json|ndjson|csv)$/.test(name)).map((name) => `${dir}/${name}`));
  }
  return files.sort();
}

const mapping = (raw: unknown): CsvMapping => Value.Default(CsvMappingSchema, raw) as CsvMapping;
export const CORPUS_CSV_MAPPINGS: Readonly<Record<string, CsvMapping>> = {
  pharmacy: mapping({
    record_type: 'pharmacy_dispense',
    columns: {
      pharmacy_id: 'NCPDP', rx_number: 'RxNumber', fill_number: 'Fill', occurred_at: 'DispenseDate', product_code: 'NDC', product_description: 'Drug',
      quantity: 'Qty', quantity_unit: 'Unit', days_supply: 'DaysSupply', patient_id: 'MemberID', ingredient_cost: 'IngredientCost',
      dispensing_fee: 'DispFee', patient_pay: 'PatientPay', total: 'Total', status: 'Status',
    },
    key_columns: ['NCPDP', 'RxNumber', 'Fill', 'DispenseDate'],
    status_values: { B2: 'REVERSED' },
  }),
  supply: mapping({
    record_type: 'supply_delivery',
    delimiter: ';',
    columns: { item_code: 'item', item_description: 'description', quantity: 'qty', quantity_unit: 'uom', order_ref: 'po', occurred_at: 'delivered', lot_number: 'lot', expires_on: 'expiry', unit_cost: 'unit_cost', currency: 'currency' },
    key_columns: ['delivery_id', 'line'],
  }),
};

/** The partner config a sample is read with: its format from the extension, CSV mapping from the name. */
export function corpusPartner(sample: string, name = 'corpus_partner'): PartnerFormatConfig {
  const file = sample.split('/').at(-1) as string;
  if (file.endsWith('.hl7')) return { name, format: 'hl7v2', charset: 'utf-8', default_currency: 'USD' };
  if (file.endsWith('.json') || file.endsWith('.ndjson')) return { name, format: 'fhir_r4', charset: 'utf-8', default_currency: 'USD' };
  const csv = CORPUS_CSV_MAPPINGS[file.startsWith('supply') ? 'supply' : 'pharmacy'] as CsvMapping;
  return { name, format: 'csv', charset: 'utf-8', default_currency: 'USD', csv };
}

const context: DeliveryContext = { partner: 'corpus_partner', channel: 'WEBHOOK', deliveryId: 'corpus', receivedAt: Date.UTC(2024, 10, 5), defaultCurrency: 'USD' };
const contracts = new Map<string, ReturnType<typeof loadContract>>();

function outcome(run: () => CanonicalRecord[]): { endsIn: string; records: CanonicalRecord[] } {
  try {
    const records = run();
    const outputs = [...new Set(records.map((record) => OUTPUT_OF_KIND[record.kind]))];
    return { endsIn: outputs.join(', '), records };
  } catch (error) {
    if (!(error instanceof LifelineError)) throw error;
    return { endsIn: `quarantine ${error.code}`, records: [] };
  }
}

async function streamed(bytes: Buffer, sample: string): Promise<{ endsIn: string; records: CanonicalRecord[] }> {
  const records: CanonicalRecord[] = [];
  try {
    for await (const item of streamFileRecords(Readable.from([bytes.subarray(0, 7), bytes.subarray(7)]), sample, corpusPartner(sample), { ...context, channel: 'FILE' }, 8 * 1024 * 1024)) {
      if ('error' in item) return { endsIn: `quarantine ${item.error.code}`, records: [] }; // the file source rejects the whole file
      records.push(item.record);
    }
  } catch (error) {
    if (!(error instanceof LifelineError)) throw error;
    return { endsIn: `quarantine ${error.code}`, records: [] };
  }
  return { endsIn: [...new Set(records.map((record) => OUTPUT_OF_KIND[record.kind]))].join(', '), records };
}

describe('the corpus ends where docs/formats.md says', () => {
  const table = corpusTable();

  test('the table covers every sample, and every row names a sample', () => {
    assert.deepEqual(table.map((row) => row.sample).sort(), corpusFiles());
  });

  for (const row of table) {
    test(`${row.sample} → ${row.endsIn} (${row.records})`, async () => {
      const bytes = readFileSync(`tests/fixtures/partner/${row.sample}`);
      const whole = outcome(() => decodeDelivery(bytes, corpusPartner(row.sample), context));
      assert.equal(whole.endsIn, row.endsIn, 'webhook path');
      assert.equal(whole.records.length, row.records, 'webhook path records');
      const file = await streamed(bytes, row.sample);
      assert.equal(file.endsIn, row.endsIn, 'file path');
      assert.equal(file.records.length, row.records, 'file path records');
      for (const record of whole.records) {
        let contract = contracts.get(record.kind);
        if (!contract) contracts.set(record.kind, contract = loadContract(`schemas/partner/${record.kind}.avsc`));
        assert.ok(contract.type.isValid(record.value), `${record.kind} matches its Avro contract`);
        assert.equal(record.value.idempotency_key.split('|')[0], 'corpus_partner', 'partner-scoped key');
      }
      if (row.billLines) {
        // What the golden path's charge_bills writes: one line, the service description (or its default), the total.
        const lines = whole.records.map((record) => {
          const value = record.value as { service_description: string | null; total: { amount_minor: number } | null };
          return [value.service_description ?? 'Laboratory service', (value.total?.amount_minor ?? 0) / 100];
        });
        assert.deepEqual(lines, row.billLines);
      }
    });
  }
});
