import { resolve } from 'node:path';

/** Claims the odoo_sink tests write back as customer invoices, and the sink config that maps them. */
export const TEST_CLAIM_SCHEMA = resolve('tests/fixtures/schemas/odoo_test_claim.avsc');

export interface TestClaim {
  claim_id: string;
  payer: string;
  service_date: number;
  patient_mrn: string;
  lines: Array<{ description: string; quantity: number; amount_minor: number; code: string }>;
}

export interface WritebackResult {
  key: string;
  model: string;
  odoo_id: number | null;
  outcome: 'created' | 'updated' | 'unchanged' | 'skipped_older';
  latency_ms: number;
  write_ms: number;
}

const PAYERS = ['PAYER-MCR-B', 'PAYER-BCBS-IL', 'PAYER-AETNA', 'PAYER-UHC-CP', 'PAYER-HUMANA'];
const SERVICES = [
  { code: 'CPT-80053', description: 'Comprehensive metabolic panel', amount_minor: 1449 },
  { code: 'CPT-85025', description: 'CBC with automated differential', amount_minor: 1066 },
  { code: 'CPT-83036', description: 'Hemoglobin A1c', amount_minor: 1332 },
  { code: 'CPT-36415', description: 'Venipuncture', amount_minor: 300 },
];

export function testClaim(index: number, prefix = 'CLM-K'): TestClaim {
  const first = SERVICES[index % SERVICES.length] as (typeof SERVICES)[number];
  return {
    claim_id: `${prefix}-${index}`,
    payer: PAYERS[index % PAYERS.length] as string,
    service_date: Date.UTC(2026, 0, 1 + (index % 28)),
    patient_mrn: `MRN-${(7_000_000 + index * 7919) % 9_999_991}`,
    lines: [
      { ...first, quantity: 1 + (index % 3) },
      { code: 'CPT-36415', description: 'Venipuncture', amount_minor: 300, quantity: 1 },
    ],
  };
}

/** External ids in `module`, or matching by `ref`, which then holds the claim id (the key). */
export function invoiceSinkConfig(module: string | 'match_ref', batchSize: number): Record<string, unknown> {
  const byRef = module === 'match_ref';
  return {
    connection: 'main', model: 'account.move', batch_size: batchSize,
    match: byRef ? { by: 'field', field: 'ref', key_path: 'claim_id' } : { by: 'external_id', module },
    fields: {
      move_type: { constant: 'out_invoice' },
      ...(byRef ? {} : { ref: { path: 'claim_id' } }),
      partner_id: { lookup: { model: 'res.partner', field: 'ref', path: 'payer' } },
      invoice_date: { path: 'service_date', as: 'date' },
      invoice_line_ids: {
        lines: {
          path: 'lines',
          fields: {
            name: { path: 'description' },
            quantity: { path: 'quantity' },
            price_unit: { path: 'amount_minor', as: 'amount' },
            product_id: { lookup: { model: 'product.product', field: 'default_code', path: 'code' } },
          },
        },
      },
    },
  };
}
