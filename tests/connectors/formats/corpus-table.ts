import { readFileSync, readdirSync } from 'node:fs';
import { Value } from '@sinclair/typebox/value';
import { CsvMappingSchema, type CsvMapping } from '../../../connectors/formats/csv.ts';
import type { PartnerFormatConfig } from '../../../connectors/formats/partner-format.ts';

/** The corpus table of docs/formats.md and how its samples are read (shared by the corpus tests). */

export interface CorpusRow {
  readonly sample: string;
  /** A source output (`service_charges`) or `quarantine LL_…`. */
  readonly endsIn: string;
  readonly records: number;
  /**
   * What the golden path's sinks write to Odoo, one line per record: [name, price_unit] of a vendor
   * bill's line (service charges, pharmacy dispenses), [name, quantity] of a receipt's stock move
   * (supply deliveries). Undefined when nothing is written (no sink for the output, or quarantined).
   */
  readonly odooLines: ReadonlyArray<readonly [string, number]> | undefined;
  /** The code the sink dead-letters the sample's records with, instead of writing them. */
  readonly odooDeadLetter: string | undefined;
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
    const json = /^`(\[.*\])`$/.exec(lines.trim())?.[1];
    const deadLetter = /^dead letter `(LL_[A-Z_]+)`/.exec(lines.trim())?.[1];
    rows.push({
      sample,
      endsIn: endsIn.replace(/`/g, '').trim(),
      records: Number(records),
      odooLines: json === undefined ? undefined : JSON.parse(json) as Array<[string, number]>,
      odooDeadLetter: deadLetter,
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
  // csv-spectrum's parser test files (headers a,b[,c]): column a a supply line's item and quantity,
  // b its description — so quoting, escaped quotes, line breaks in fields and CRLF reach Odoo's text.
  spectrum: mapping({
    record_type: 'supply_delivery',
    columns: { item_code: 'a', quantity: 'a', item_description: 'b' },
    key_columns: ['a'],
  }),
};

/** Which corpus CSV mapping a sample is read with, from its file name. */
export function csvMappingName(file: string): 'pharmacy' | 'supply' | 'spectrum' {
  if (file.startsWith('csv-spectrum-')) return 'spectrum';
  return file.startsWith('supply') ? 'supply' : 'pharmacy';
}

/** The partner config a sample is read with: its format from the extension, CSV mapping from the name. */
export function corpusPartner(sample: string, name = 'corpus_partner'): PartnerFormatConfig {
  const file = sample.split('/').at(-1) as string;
  if (file.endsWith('.hl7')) return { name, format: 'hl7v2', charset: 'utf-8', default_currency: 'USD' };
  if (file.endsWith('.json') || file.endsWith('.ndjson')) return { name, format: 'fhir_r4', charset: 'utf-8', default_currency: 'USD' };
  const csv = CORPUS_CSV_MAPPINGS[csvMappingName(file)] as CsvMapping;
  return { name, format: 'csv', charset: 'utf-8', default_currency: 'USD', csv };
}
