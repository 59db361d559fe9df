import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { LifelineError } from '../../src/errors.ts';
import { CsvError, parse as parseCsvStream, type Info, type Options as CsvOptions } from 'csv-parse';
import { parse as parseCsvSync } from 'csv-parse/sync';
import {
  EMPTY_REFS, blankToNull, formatError, partnerScopedKey, type CanonicalRecord, type DeliveryContext, type Envelope, type Money,
  type PharmacyDispense, type ServiceCharge, type SupplyDelivery,
} from './canonical.ts';
import { completeLineMoney, parseDateTime, parseInteger, parseIsoDate, parseMoney, parseQuantity, sumKnownMoney } from './field-values.ts';

/**
 * CSV → canonical records with csv-parse (RFC 4180 quoting, BOM, streaming). Each partner declares
 * in topology.yaml which record type its rows are, which CSV column feeds which canonical field,
 * and which columns make a row's key. Every error names the line (the physical line in the file,
 * counting the header as line 1) and the field. Values are never echoed in errors: they may be PHI.
 */

const CSV = 'LL_FORMAT_CSV_INVALID';

type FieldKind = 'text' | 'money' | 'quantity' | 'integer' | 'timestamp' | 'date';

/** Canonical fields a CSV column can feed, per record type, with how the cell is read. */
const COMMON_FIELDS = {
  occurred_at: 'timestamp', patient_id: 'text', patient_id_system: 'text', account_ref: 'text', visit_ref: 'text',
  order_ref: 'text', facility_ref: 'text', invoice_ref: 'text', correlation_id: 'text', currency: 'text',
} as const satisfies Record<string, FieldKind>;

const RECORD_FIELDS = {
  service_charge: {
    ...COMMON_FIELDS, service_code: 'text', service_code_system: 'text', service_description: 'text', quantity: 'quantity',
    unit_price: 'money', total: 'money', charge_type: 'text', performer_ref: 'text', ordering_provider_ref: 'text',
  },
  pharmacy_dispense: {
    ...COMMON_FIELDS, pharmacy_id: 'text', rx_number: 'text', fill_number: 'integer', product_code: 'text', product_code_system: 'text',
    product_description: 'text', quantity: 'quantity', quantity_unit: 'text', days_supply: 'integer', prescriber_ref: 'text', status: 'text',
    ingredient_cost: 'money', dispensing_fee: 'money', patient_pay: 'money', total: 'money',
  },
  supply_delivery: {
    ...COMMON_FIELDS, item_code: 'text', item_code_system: 'text', item_description: 'text', quantity: 'quantity', quantity_unit: 'text',
    supplier_ref: 'text', destination_ref: 'text', lot_number: 'text', expires_on: 'date', unit_cost: 'money', total_cost: 'money', status: 'text',
  },
} as const satisfies Record<string, Record<string, FieldKind>>;

export type CsvRecordType = keyof typeof RECORD_FIELDS;

const REQUIRED_FIELDS: Readonly<Record<CsvRecordType, readonly string[]>> = {
  service_charge: ['occurred_at', 'service_code'],
  pharmacy_dispense: ['occurred_at', 'pharmacy_id', 'rx_number', 'product_code', 'quantity'],
  supply_delivery: ['item_code', 'quantity'],
};

/** Fields holding patient identifiers: a row key built from them is hashed. */
const PHI_FIELDS = new Set(['patient_id', 'account_ref', 'visit_ref']);

function columnsSchema(recordType: CsvRecordType): TSchema {
  const properties: Record<string, TSchema> = {};
  for (const field of Object.keys(RECORD_FIELDS[recordType])) {
    const column = Type.String({ minLength: 1, description: `CSV header of the column that feeds ${field}.` });
    properties[field] = REQUIRED_FIELDS[recordType].includes(field) ? column : Type.Optional(column);
  }
  return Type.Object(properties, { additionalProperties: false, description: `Canonical ${recordType} field → CSV column header.` });
}

function mappingSchema<T extends CsvRecordType>(recordType: T) {
  return Type.Object({
    record_type: Type.Literal(recordType, { description: 'The canonical record each row becomes.' }),
    columns: columnsSchema(recordType),
    key_columns: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'CSV headers whose values, joined, identify a row (e.g. NCPDP provider, Rx number, fill number). Hashed when they include patient identifiers.' }),
    version_column: Type.Optional(Type.String({ minLength: 1, description: 'CSV header of a revision/version column; when absent, a row\'s version is a hash of its content.' })),
    delimiter: Type.String({ minLength: 1, maxLength: 1, default: ',', description: 'Field delimiter.' }),
    quote: Type.String({ minLength: 1, maxLength: 1, default: '"', description: 'Quote character (RFC 4180: doubled inside a quoted field).' }),
    status_values: Type.Optional(Type.Record(Type.String(), Type.String(), { description: 'Raw status/charge_type cell values → canonical symbols (e.g. {"B2": "REVERSED", "CD": "CREDIT"}).' })),
  }, { additionalProperties: false });
}

export const CsvMappingSchema = Type.Union([
  mappingSchema('service_charge'), mappingSchema('pharmacy_dispense'), mappingSchema('supply_delivery'),
], { description: 'How this partner\'s CSV rows map to a canonical record.' });

export type CsvMapping = Static<typeof CsvMappingSchema>;

type Row = Record<string, string>;

/** Maps the rows of one partner's CSV; knows the header once it has seen it. */
export class CsvRowMapper {
  private readonly columns: Readonly<Record<string, string>>;
  private readonly fields: Readonly<Record<string, FieldKind>>;
  private readonly hashKey: boolean;

  constructor(private readonly mapping: CsvMapping, private readonly context: DeliveryContext) {
    this.columns = mapping.columns as Record<string, string>;
    this.fields = RECORD_FIELDS[mapping.record_type];
    const phiColumns = new Set(Object.entries(this.columns).filter(([field]) => PHI_FIELDS.has(field)).map(([, column]) => column));
    this.hashKey = mapping.key_columns.some((column) => phiColumns.has(column));
  }

  /** Every mapped, key and version column must be in the header. */
  checkHeader(header: readonly string[]): void {
    const present = new Set(header.map((name) => name.trim()));
    const wanted = new Map<string, string>();
    for (const [field, column] of Object.entries(this.columns)) wanted.set(column, field);
    for (const column of this.mapping.key_columns) if (!wanted.has(column)) wanted.set(column, 'row key');
    if (this.mapping.version_column && !wanted.has(this.mapping.version_column)) wanted.set(this.mapping.version_column, 'version');
    const missing = [...wanted].filter(([column]) => !present.has(column));
    if (missing.length > 0) {
      throw formatError(CSV, `header lacks column${missing.length > 1 ? 's' : ''} ${missing.map(([column, field]) => `"${column}" (for ${field})`).join(', ')}`, 'line 1');
    }
  }

  mapRow(row: Row, line: number): CanonicalRecord {
    // One reader per row with methods on its prototype: per-row closures cost a measurable share
    // of a 100,000-row file in allocation and garbage collection.
    const cells = new RowCells(row, line, this.columns, this.mapping.status_values, this.context.defaultCurrency);

    const keyValues = this.mapping.key_columns.map((column) => {
      const value = blankToNull(row[column]);
      if (value === null) throw formatError(CSV, 'is part of the row key but empty', `line ${line} column "${column}"`);
      return value;
    });
    const naturalKey = this.hashKey ? createHash('sha256').update(keyValues.join('\u0000')).digest('hex').slice(0, 32) : keyValues.join('|');
    const version = this.mapping.version_column
      ? blankToNull(row[this.mapping.version_column]) ?? (() => { throw formatError(CSV, 'version column is empty', `line ${line} column "${this.mapping.version_column}"`); })()
      : createHash('sha256').update(Object.values(row).join('\u0000')).digest('hex').slice(0, 16);
    const occurredText = cells.cell('occurred_at');
    const envelope: Envelope = {
      partner: this.context.partner,
      source_format: 'CSV',
      channel: this.context.channel,
      delivery_id: this.context.deliveryId,
      idempotency_key: partnerScopedKey(this.context, `${naturalKey}@${version}`),
      entity_key: `${this.context.partner}|${this.mapping.record_type}|${naturalKey}`,
      version,
      is_correction: false,
      correlation_id: cells.text('correlation_id'),
      refs: {
        ...EMPTY_REFS,
        order_ref: cells.text('order_ref'), account_ref: cells.text('account_ref'), visit_ref: cells.text('visit_ref'),
        facility_ref: cells.text('facility_ref'), invoice_ref: cells.text('invoice_ref'),
      },
      patient_id: cells.text('patient_id'),
      patient_id_system: cells.text('patient_id_system'),
      occurred_at: occurredText === null ? this.context.receivedAt : parseDateTime(occurredText, CSV, cells.where('occurred_at')),
      sent_at: null,
      received_at: this.context.receivedAt,
    };
    // Fields the record type requires are checked before anything else is read.
    for (const field of REQUIRED_FIELDS[this.mapping.record_type]) cells.required(field);

    switch (this.mapping.record_type) {
      case 'service_charge': {
        const quantity = cells.quantity('quantity', 1);
        const money = completeLineMoney(quantity, cells.money('unit_price'), cells.money('total'));
        const value: ServiceCharge = {
          ...envelope,
          charge_type: cells.symbol('charge_type', ['CHARGE', 'CREDIT', 'PAYMENT', 'ADJUSTMENT', 'OTHER'] as const, 'CHARGE'),
          status: 'BILLABLE',
          scope: 'ITEM',
          service_code: cells.required('service_code'),
          service_code_system: cells.text('service_code_system'),
          service_description: cells.text('service_description'),
          quantity,
          unit_price: money.unit,
          total: money.total,
          performer_ref: cells.text('performer_ref'),
          ordering_provider_ref: cells.text('ordering_provider_ref'),
        };
        return { kind: 'service_charge', value };
      }
      case 'pharmacy_dispense': {
        const ingredientCost = cells.money('ingredient_cost');
        const dispensingFee = cells.money('dispensing_fee');
        const value: PharmacyDispense = {
          ...envelope,
          pharmacy_id: cells.required('pharmacy_id'),
          rx_number: cells.required('rx_number'),
          fill_number: cells.integer('fill_number') ?? 0,
          product_code: cells.required('product_code'),
          product_code_system: cells.text('product_code_system'),
          product_description: cells.text('product_description'),
          quantity: cells.quantity('quantity', null),
          quantity_unit: cells.text('quantity_unit'),
          days_supply: cells.integer('days_supply'),
          prescriber_ref: cells.text('prescriber_ref'),
          status: cells.symbol('status', ['DISPENSED', 'REVERSED', 'UNKNOWN'] as const, 'DISPENSED'),
          ingredient_cost: ingredientCost,
          dispensing_fee: dispensingFee,
          patient_pay: cells.money('patient_pay'),
          // NCPDP gross amount due = ingredient cost + dispensing fee, when the file gives no total.
          total: cells.money('total') ?? sumKnownMoney([ingredientCost, dispensingFee]),
        };
        return { kind: 'pharmacy_dispense', value };
      }
      case 'supply_delivery': {
        const expires = cells.cell('expires_on');
        const deliveredQuantity = cells.quantity('quantity', null);
        const cost = completeLineMoney(deliveredQuantity, cells.money('unit_cost'), cells.money('total_cost'));
        const value: SupplyDelivery = {
          ...envelope,
          status: cells.symbol('status', ['IN_PROGRESS', 'COMPLETED', 'ABANDONED', 'ENTERED_IN_ERROR', 'UNKNOWN'] as const, 'COMPLETED'),
          item_code: cells.required('item_code'),
          item_code_system: cells.text('item_code_system'),
          item_description: cells.text('item_description'),
          quantity: deliveredQuantity,
          quantity_unit: cells.text('quantity_unit'),
          supplier_ref: cells.text('supplier_ref'),
          destination_ref: cells.text('destination_ref'),
          lot_number: cells.text('lot_number'),
          expires_on: expires === null ? null : parseIsoDate(expires, CSV, cells.where('expires_on')),
          unit_cost: cost.unit,
          total_cost: cost.total,
        };
        return { kind: 'supply_delivery', value };
      }
    }
  }
}

/** The cells of one row, read as the canonical fields they feed; errors name line, field and column. */
class RowCells {
  constructor(
    private readonly row: Row,
    private readonly line: number,
    private readonly columns: Readonly<Record<string, string>>,
    private readonly statusValues: Readonly<Record<string, string>> | undefined,
    private readonly defaultCurrency: string,
  ) {}

  where(field: string): string {
    return `line ${this.line} field ${field} (column "${this.columns[field] ?? field}")`;
  }

  cell(field: string): string | null {
    const column = this.columns[field];
    return column === undefined ? null : blankToNull(this.row[column]);
  }

  text(field: string): string | null {
    return this.cell(field);
  }

  required(field: string): string {
    const value = this.cell(field);
    if (value === null) throw formatError(CSV, 'is required but empty', this.where(field));
    return value;
  }

  money(field: string): Money | null {
    const value = this.cell(field);
    return value === null ? null : parseMoney(value, this.cell('currency') ?? this.defaultCurrency, CSV, this.where(field));
  }

  quantity(field: string, fallback: number | null): number {
    const value = this.cell(field);
    if (value !== null) return parseQuantity(value, CSV, this.where(field));
    if (fallback === null) throw formatError(CSV, 'is required but empty', this.where(field));
    return fallback;
  }

  integer(field: string): number | null {
    const value = this.cell(field);
    return value === null ? null : parseInteger(value, CSV, this.where(field));
  }

  symbol<S extends string>(field: string, allowed: readonly S[], fallback: S): S {
    const value = this.cell(field);
    if (value === null) return fallback;
    const mapped = this.statusValues?.[value] ?? value.toUpperCase();
    if (!(allowed as readonly string[]).includes(mapped)) throw formatError(CSV, `must be one of ${allowed.join(', ')} (or mapped by status_values)`, this.where(field));
    return mapped as S;
  }
}

function parserOptions(mapping: CsvMapping, onHeader: (header: string[]) => void): CsvOptions {
  return {
    bom: true,
    delimiter: mapping.delimiter,
    quote: mapping.quote,
    info: true,
    skip_empty_lines: true,
    // Spreadsheet exports end with rows of only separators (",,,,"): rows with every cell empty carry nothing.
    skip_records_with_empty_values: true,
    columns: (header: string[]) => {
      onHeader(header);
      return header.map((name) => name.trim());
    },
  };
}

/** csv-parse's own errors (unclosed quote, wrong field count …) with the line they happened on. */
function csvParseError(error: unknown): Error {
  if (error instanceof CsvError) {
    const line = (error as CsvError & { lines?: number }).lines;
    const reason = error.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH' || error.code === 'CSV_RECORD_INCONSISTENT_COLUMNS'
      ? 'the row has a different number of fields than the header'
      : error.code === 'CSV_QUOTE_NOT_CLOSED' ? 'a quoted field is not closed (truncated file, or a stray quote)'
        : error.code === 'CSV_INVALID_CLOSING_QUOTE' ? 'a quote closes a field but is followed by more characters'
          : error.code.toLowerCase().replace(/^csv_/, '').replace(/_/g, ' ');
    return formatError(CSV, `${reason} (${error.code})`, line === undefined ? undefined : `line ${line}`, error);
  }
  return error instanceof Error ? error : new Error(String(error));
}

interface ParsedRow {
  readonly record: Row;
  readonly info: Info;
}

/**
 * The physical line a row ends on. csv-parse (6.1) counts a CRLF inside a quoted field as two
 * lines, so in a CRLF file every row after a quoted line break would be named one line too late per
 * break; the values keep each CRLF as written, so counting them (rows in order) gives it back.
 */
class PhysicalLines {
  private overCounted = 0;

  of(row: ParsedRow): number {
    for (const value of Object.values(row.record)) {
      if (typeof value === 'string' && value.includes('\r\n')) this.overCounted += value.split('\r\n').length - 1;
    }
    return row.info.lines - this.overCounted;
  }
}

/** A whole (small) CSV delivery, e.g. a webhook body. */
export function csvToCanonical(text: string, mapping: CsvMapping, context: DeliveryContext): CanonicalRecord[] {
  if (text.replace(/^\uFEFF/, '').trim() === '') throw formatError('LL_FORMAT_EMPTY', 'the CSV content is empty');
  const mapper = new CsvRowMapper(mapping, context);
  let rows: ParsedRow[];
  try {
    rows = parseCsvSync(text, parserOptions(mapping, (header) => mapper.checkHeader(header))) as unknown as ParsedRow[];
  } catch (error) {
    throw error instanceof CsvError ? csvParseError(error) : error;
  }
  if (rows.length === 0) throw formatError('LL_FORMAT_EMPTY', 'the CSV has a header but no rows', 'line 1');
  const lines = new PhysicalLines();
  return rows.map((row) => mapper.mapRow(row.record, lines.of(row)));
}

/** A streamed CSV (a file): rows come out one at a time, so memory stays flat whatever the size. */
/**
 * A row that parses but does not map (an empty required field, a bad amount) comes out as an
 * error and the stream goes on, so a file's error report lists every bad row, not just the first;
 * a file that does not parse (an unclosed quote, a wrong field count) ends the stream.
 */
export async function* csvRecordStream(text: AsyncIterable<string>, mapping: CsvMapping, context: DeliveryContext): AsyncGenerator<{ line: number; record: CanonicalRecord } | { line: number; error: LifelineError }> {
  const mapper = new CsvRowMapper(mapping, context);
  let headerError: unknown;
  const parser = parseCsvStream(parserOptions(mapping, (header) => {
    try {
      mapper.checkHeader(header);
    } catch (error) {
      headerError = error;
    }
  }));
  const input = Readable.from(text, { objectMode: false });
  // pipe() does not forward errors: an encoding error in the input must end the parse, not the process.
  input.once('error', (error) => parser.destroy(error));
  input.pipe(parser);
  let rows = 0;
  const lines = new PhysicalLines();
  try {
    for await (const row of parser as AsyncIterable<ParsedRow>) {
      if (headerError) throw headerError;
      rows++;
      const line = lines.of(row);
      let record: CanonicalRecord;
      try {
        record = mapper.mapRow(row.record, line);
      } catch (error) {
        if (!(error instanceof LifelineError)) throw error;
        yield { line, error };
        continue;
      }
      yield { line, record };
    }
  } catch (error) {
    input.destroy();
    parser.destroy();
    throw error instanceof CsvError ? csvParseError(error) : error;
  }
  if (headerError) throw headerError;
  if (rows === 0) throw formatError('LL_FORMAT_EMPTY', 'the CSV has no rows (empty, or a header only)', 'line 1');
}
