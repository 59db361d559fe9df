import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { OUTPUT_OF_KIND, type CanonicalRecord, type DeliveryContext } from '../../../connectors/formats/canonical.ts';
import { decodeDelivery, streamFileRecords } from '../../../connectors/formats/partner-format.ts';
import { LifelineError } from '../../../src/errors.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import { corpusFiles, corpusPartner, corpusTable } from './corpus-table.ts';

/**
 * The corpus: every sample under tests/fixtures/partner ends where the table in docs/formats.md
 * says — the same source output (or quarantine code) and record count — through the webhook path
 * (a whole delivery) and the file path (streamed); every record encodes with its Avro contract.
 * A sample without a row, or a row without a sample, fails the test: the table covers the corpus.
 * The Odoo lines are checked here against the canonical records, and in the Odoo simulator through real
 * sources, dedup and the golden path's sinks in tests/faithful/corpus-pipeline.test.ts.
 */

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

/** The Odoo line the golden path's sink writes for a record (docs/formats.md, "The corpus"). */
function odooLine(record: CanonicalRecord): [string, number] {
  const value = record.value as { service_description?: string | null; product_description?: string | null; item_description?: string | null; total?: { amount_minor: number } | null; quantity?: number };
  switch (record.kind) {
    case 'service_charge': return [value.service_description ?? 'Laboratory service', (value.total?.amount_minor ?? Number.NaN) / 100];
    case 'pharmacy_dispense': return [value.product_description ?? 'Prescription fill', (value.total?.amount_minor ?? Number.NaN) / 100];
    case 'supply_delivery': return [value.item_description ?? 'Supply delivery', value.quantity ?? Number.NaN];
    default: throw new Error(`no golden path sink writes ${record.kind}`);
  }
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
      const written = ['service_charges', 'pharmacy_dispenses', 'supply_deliveries'].includes(row.endsIn);
      assert.equal(row.odooLines !== undefined || row.odooDeadLetter !== undefined, written, written ? 'a sample a golden path sink writes lists its Odoo lines or dead letter' : 'no golden path sink writes it: no Odoo column');
      if (row.odooLines) {
        // What the golden path's sinks write: a bill line (name or its default, the total) or a receipt's move (name, quantity).
        assert.deepEqual(whole.records.map(odooLine), row.odooLines);
      }
      if (row.odooDeadLetter) {
        assert.ok(whole.records.length > 0 && whole.records.every((record) => (record.value as { total?: unknown }).total === null), 'dead-lettered by the sink because the format gives no total');
      }
    });
  }
});
