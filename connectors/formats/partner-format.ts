import { Type, type Static } from '@sinclair/typebox';
import { LifelineError } from '../../src/errors.ts';
import { formatError, type CanonicalRecord, type DeliveryContext } from './canonical.ts';
import { CsvMappingSchema, csvRecordStream, csvToCanonical, type CsvMapping } from './csv.ts';
import { fhirResourceToCanonical, fhirToCanonical } from './fhir-r4.ts';
import { Hl7MessageSplitter, hl7MessageToCanonical, hl7ToCanonical, type Hl7MessageText } from './hl7v2.ts';
import { declaredHl7Charset } from './hl7-text.ts';
import { CHARSETS, StrictTextDecoder, decodeText, type Charset } from './text-encoding.ts';

/**
 * One entry point over the format adapters, for the sources: a partner's declared format (and, for
 * CSV, its column mapping) turns raw bytes into canonical records — all of a delivery at once
 * (webhooks), or streamed one record at a time (files), always decoding the bytes strictly first.
 */
export const PARTNER_FORMATS = ['hl7v2', 'fhir_r4', 'csv'] as const;
export type PartnerFormat = (typeof PARTNER_FORMATS)[number];

/** The config keys every partner shares, in both sources. */
export const partnerFormatProperties = {
  name: Type.String({ pattern: '^[a-z][a-z0-9_]*$', description: 'Partner id (snake_case): in every record, metric label and quarantine entry.', examples: ['acme_lab'] }),
  format: Type.Union(PARTNER_FORMATS.map((format) => Type.Literal(format)), { description: 'What the partner sends: hl7v2 (messages or FHS/BHS batches), fhir_r4 (JSON resource or Bundle; .ndjson files one resource per line), csv (needs `csv`).' }),
  charset: Type.Union(CHARSETS.map((charset) => Type.Literal(charset)), { default: 'utf-8', description: 'Character encoding of the content; invalid bytes are an error, never replaced. An HL7 message that declares its own in MSH-18 (8859/1, UNICODE UTF-8, ASCII) is read in that one.' }),
  default_currency: Type.String({ pattern: '^[A-Z]{3}$', default: 'USD', description: 'ISO 4217 currency of amounts that name none (HL7 FT1 amounts, CSV without a currency column).' }),
  csv: Type.Optional(CsvMappingSchema),
};

const PartnerFormatSchema = Type.Object(partnerFormatProperties, { additionalProperties: false });
export type PartnerFormatConfig = Static<typeof PartnerFormatSchema>;

/** A CSV partner without a mapping is a configuration error, reported when the source is created. */
export function checkPartnerFormat(partner: PartnerFormatConfig, where: string): void {
  if (partner.format === 'csv' && !partner.csv) {
    throw new LifelineError('LL_CONFIG_INVALID', `${where}: partner ${partner.name} has format csv but no csv mapping (record_type, columns, key_columns)`);
  }
}

/** The canonical records of one whole delivery: all of them, or an error naming the first problem. */
export function decodeDelivery(bytes: Uint8Array, partner: PartnerFormatConfig, context: DeliveryContext): CanonicalRecord[] {
  if (bytes.length === 0) throw formatError('LL_FORMAT_EMPTY', 'the content is empty');
  // An HL7 message's own MSH-18 says how it is encoded; the partner's charset is the default.
  const charset = (partner.format === 'hl7v2' ? declaredHl7Charset(bytes) : undefined) ?? partner.charset as Charset;
  const text = decodeText(bytes, charset);
  switch (partner.format) {
    case 'hl7v2': return hl7ToCanonical(text, { ...context, charset });
    case 'fhir_r4': return fhirToCanonical(text, context);
    case 'csv': return csvToCanonical(text, partner.csv as CsvMapping, context);
  }
}

/**
 * A streamed record, or a part of the file that does not map (a CSV row, an HL7 message, an NDJSON
 * line), with where it came from: the file source lists every bad part in its error report.
 */
export type FileItem =
  | { readonly position: string; readonly record: CanonicalRecord }
  | { readonly position: string; readonly error: LifelineError };

/**
 * The canonical records of a file, streamed: memory stays bounded by one record (CSV, NDJSON) or
 * one message (HL7), not the file. A `.json` FHIR file is parsed whole (resources and Bundles are
 * single JSON documents), bounded by `maxJsonBytes`. Content that cannot be read on (bad encoding,
 * broken CSV quoting, an HL7 batch trailer that does not add up) throws.
 */
export async function* streamFileRecords(
  chunks: AsyncIterable<Buffer>, fileName: string, partner: PartnerFormatConfig, context: DeliveryContext, maxJsonBytes: number,
): AsyncGenerator<FileItem> {
  let decoder: StrictTextDecoder | undefined;
  let charset = partner.charset as Charset;
  let sawBytes = false;
  async function* text(): AsyncGenerator<string> {
    for await (const chunk of chunks) {
      if (chunk.length > 0) sawBytes = true;
      if (!decoder) {
        // The first chunk holds the first MSH: its MSH-18, when set, says how the file is encoded.
        if (partner.format === 'hl7v2') charset = declaredHl7Charset(chunk) ?? charset;
        decoder = new StrictTextDecoder(charset);
      }
      const decoded = decoder.write(chunk);
      if (decoded) yield decoded;
    }
    const rest = decoder?.end();
    if (rest) yield rest;
    if (!sawBytes) throw formatError('LL_FORMAT_EMPTY', 'the file is empty');
  }
  function* mapped(position: string, map: () => CanonicalRecord[]): Generator<FileItem> {
    let records: CanonicalRecord[];
    try {
      records = map();
    } catch (error) {
      if (!(error instanceof LifelineError)) throw error;
      yield { position, error };
      return;
    }
    for (const record of records) yield { position, record };
  }

  if (partner.format === 'csv') {
    for await (const item of csvRecordStream(text(), partner.csv as CsvMapping, context)) {
      yield 'error' in item ? { position: `line ${item.line}`, error: item.error } : { position: `line ${item.line}`, record: item.record };
    }
    return;
  }
  if (partner.format === 'hl7v2') {
    const splitter = new Hl7MessageSplitter();
    const messages = async function* (): AsyncGenerator<Hl7MessageText> {
      for await (const piece of text()) yield* splitter.push(piece);
      yield* splitter.end();
    };
    for await (const message of messages()) {
      yield* mapped(`message ${message.ordinal} (line ${message.line})`, () => hl7MessageToCanonical(message, { ...context, charset }));
    }
    return;
  }
  if (fileName.toLowerCase().endsWith('.ndjson')) {
    // FHIR bulk data: one resource per line.
    let lineNumber = 0;
    let resources = 0;
    for await (const line of splitLines(text())) {
      lineNumber++;
      if (line.trim() === '') continue;
      resources++;
      yield* mapped(`line ${lineNumber}`, () => {
        let json: unknown;
        try {
          json = JSON.parse(line);
        } catch (error) {
          throw formatError('LL_FORMAT_FHIR_INVALID', 'the line is not one JSON resource', `line ${lineNumber}`, error);
        }
        return fhirResourceToCanonical(json, context, `line ${lineNumber}`);
      });
    }
    if (resources === 0) throw formatError('LL_FORMAT_EMPTY', 'the NDJSON file has no resources');
    return;
  }
  let whole = '';
  for await (const piece of text()) {
    whole += piece;
    if (whole.length > maxJsonBytes) throw formatError('LL_FORMAT_FHIR_INVALID', `a FHIR JSON file is parsed whole and this one exceeds ${maxJsonBytes} bytes; send NDJSON (one resource per line) instead`);
  }
  let index = 0;
  for (const record of fhirToCanonical(whole, context)) yield { position: `resource ${++index}`, record };
}

/** Lines of a text stream (LF or CRLF), one at a time. */
async function* splitLines(text: AsyncIterable<string>): AsyncGenerator<string> {
  let pending = '';
  for await (const piece of text) {
    pending += piece;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) yield line.replace(/\r$/, '');
  }
  if (pending !== '') yield pending.replace(/\r$/, '');
}
