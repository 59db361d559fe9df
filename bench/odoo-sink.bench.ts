// odoo_sink's batched upserts against one create per record, on the Odoo simulator, in the same
// run: claims with two invoice lines each, written as customer invoices. The simulator answers in
// well under a millisecond, so each case also runs with a fixed delay per Odoo call (a LAN Odoo
// answers a small call in roughly 5–20 ms), which is where batching pays.
// `npm run bench -- odoo` (BENCH_RECORDS, BENCH_ODOO_LATENCY_MS to change the defaults).
import pino from 'pino';
import { Registry } from 'prom-client';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { odooSink } from '../connectors/odoo/odoo-sink.ts';
import { startOdooSimulator, type OdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import type { InputRecord, Sink, SinkContext } from '../src/component/component.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000);
const LATENCIES = (process.env.BENCH_ODOO_LATENCY_MS ?? '0,10').split(',').map(Number);
const PAYERS = ['PAYER-MCR-B', 'PAYER-BCBS-IL', 'PAYER-AETNA', 'PAYER-UHC-CP', 'PAYER-HUMANA'];

interface Claim { claim_id: string; payer: string; service_date: number; lines: Array<{ description: string; quantity: number; amount_minor: number; code: string }> }

function claim(run: string, index: number): Claim {
  return {
    claim_id: `BENCH-${run}-${index}`, payer: PAYERS[index % PAYERS.length] as string, service_date: Date.UTC(2026, 0, 1 + (index % 28)),
    lines: [
      { description: 'Comprehensive metabolic panel', quantity: 1 + (index % 3), amount_minor: 1449, code: 'CPT-80053' },
      { description: 'Venipuncture', quantity: 1, amount_minor: 300, code: 'CPT-36415' },
    ],
  };
}

function records(run: string): InputRecord[] {
  return Array.from({ length: RECORDS }, (_, index) => ({
    topic: 'billing.claim.ready.v1', partition: 0, offset: String(index), timestamp: Date.now(), key: `${run}:${index}`,
    value: claim(run, index), headers: { 'lifeline.idempotency-key': `${run}:${index}` }, rawValue: null,
  }));
}

function sinkFor(simulator: OdooSimulator, match: 'external_id' | 'field', batchSize: number): { sink: Sink; context: SinkContext } {
  const sink = odooSink.create({
    connection: 'main', model: 'account.move', batch_size: batchSize,
    match: match === 'external_id' ? { by: 'external_id', module: 'bench' } : { by: 'field', field: 'ref', key_path: 'claim_id' },
    fields: {
      move_type: { constant: 'out_invoice' },
      ...(match === 'external_id' ? { ref: { path: 'claim_id' } } : {}),
      partner_id: { lookup: { model: 'res.partner', field: 'ref', path: 'payer' } },
      invoice_date: { path: 'service_date', as: 'date' },
      invoice_line_ids: { lines: { path: 'lines', fields: {
        name: { path: 'description' }, quantity: { path: 'quantity' }, price_unit: { path: 'amount_minor', as: 'amount' },
        product_id: { lookup: { model: 'product.product', field: 'default_code', path: 'code' } },
      } } },
    },
  });
  const context: SinkContext = {
    label: 'bench_sink', logger: pino({ level: 'warn' }), signal: new AbortController().signal,
    connections: { odoo: { main: { url: simulator.url, database: simulator.database, ...simulator.credentials } } },
    metricsRegistry: new Registry(), setHealth: () => undefined, forward: () => undefined,
  };
  return { sink, context };
}

/** The baseline: what a hand-written integration does — look the partner and products up, then create, one record per call. */
async function createOneByOne(client: OdooClient, run: string): Promise<void> {
  const partners = new Map((await client.searchRead('res.partner', [['ref', 'in', PAYERS]], { fields: ['ref'] })).map((row) => [row.ref, row.id]));
  const products = new Map((await client.searchRead('product.product', [['default_code', 'in', ['CPT-80053', 'CPT-36415']]], { fields: ['default_code'] })).map((row) => [row.default_code, row.id]));
  for (let index = 0; index < RECORDS; index++) {
    const value = claim(run, index);
    await client.create('account.move', {
      move_type: 'out_invoice', ref: value.claim_id, partner_id: partners.get(value.payer) as number,
      invoice_date: new Date(value.service_date).toISOString().slice(0, 10),
      invoice_line_ids: value.lines.map((line) => [0, 0, { name: line.description, quantity: line.quantity, price_unit: line.amount_minor / 100, product_id: products.get(line.code) as number }]),
    });
  }
}

interface Row { latency: number; case: string; seconds: number; perSecond: number; calls: number; callsPerRecord: number }

const rows: Row[] = [];
for (const latency of LATENCIES) {
  const simulator = await startOdooSimulator({ port: 0 });
  simulator.control.setSlow(latency, 'all');
  const client = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  const totalCalls = (): number => Object.values(simulator.stats()).reduce((sum, count) => sum + count, 0);
  const measure = async (name: string, work: () => Promise<void>): Promise<void> => {
    const callsBefore = totalCalls();
    const started = performance.now();
    await work();
    const seconds = (performance.now() - started) / 1000;
    const calls = totalCalls() - callsBefore;
    rows.push({ latency, case: name, seconds, perSecond: RECORDS / seconds, calls, callsPerRecord: calls / RECORDS });
  };
  const runSink = (match: 'external_id' | 'field', batchSize: number, run: string) => async () => {
    const { sink, context } = sinkFor(simulator, match, batchSize);
    await sink.connect(context);
    const input = records(run);
    for (let start = 0; start < input.length; start += 500) {
      const { failed } = await sink.write(input.slice(start, start + 500));
      if (failed.length > 0) throw new Error(`${failed.length} records failed: ${String((failed[0]?.error as Error).message)}`);
    }
    await sink.close();
  };
  await measure('one create per record (baseline)', () => createOneByOne(client, 'naive'));
  await measure('odoo_sink, batch_size 1 (external id)', runSink('external_id', 1, 'single'));
  await measure('odoo_sink, batch_size 200, external id (load)', runSink('external_id', 200, 'load'));
  await measure('odoo_sink, batch_size 200, match field (create list)', runSink('field', 200, 'create'));
  await measure('odoo_sink replay of the load run (all unchanged)', runSink('external_id', 200, 'load'));
  client.close();
  await simulator.close();
}

console.log(`\n${RECORDS} claims → customer invoices with 2 lines each, Odoo simulator on loopback\n`);
const header = ['added latency per call', 'case', 'seconds', 'records/s', 'Odoo calls', 'calls/record', 'vs baseline'];
const table = rows.map((row) => {
  const baseline = rows.find((candidate) => candidate.latency === row.latency && candidate.case.includes('baseline')) as Row;
  return [`${row.latency} ms`, row.case, row.seconds.toFixed(2), Math.round(row.perSecond).toLocaleString('en-US'), String(row.calls), row.callsPerRecord.toFixed(3), `${(row.perSecond / baseline.perSecond).toFixed(1)}×`];
});
const widths = header.map((title, column) => Math.max(title.length, ...table.map((row) => (row[column] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(' | ')} |`;
console.log(line(header));
console.log(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`);
for (const row of table) console.log(line(row));
