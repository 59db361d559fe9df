// odoo_sink against a slow Odoo: the simulator costs what a real Odoo 17 costs (measured on one:
// ~2 s for a `load` of 200 one-line vendor bills, i.e. ~10 ms a record, plus a few ms a call) on 4
// workers, and golden-path vendor bills (as topology.yaml's charge_bills: one line, no taxes,
// monotonic versions) arrive on 4 partitions. In one run: one create per record (what a
// hand-written integration does), odoo_sink's batching as it was (partitions one after another),
// and odoo_sink with partitions written concurrently (max_in_flight 4), plus a replay — calling the sink's write()
// in this process with every partition's records at once; then the same under `lifeline run` (a topic with 4
// partitions on the real broker, the sink host handing each partition to write() on its own), max_in_flight 1 and 4,
// timed from Odoo's first bill write to its last.
// `npm run bench -- odoo-sink` (BENCH_RECORDS, BENCH_ROW_MS, BENCH_CALL_MS, BENCH_WORKERS to change the defaults).
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { Registry } from 'prom-client';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { odooSink, type OdooSinkConfig } from '../connectors/odoo/odoo-sink.ts';
import { peakConcurrency, startOdooSimulator, type OdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import type { InputRecord, SinkContext } from '../src/component/component.ts';
import { loadContract } from '../src/kafka/avro-contract.ts';
import { createTestTopics, infra, testKafka, uniqueName, uniqueTopic } from '../testing/harness.ts';
import { LifelineProcess, registeredSerde } from '../testing/runtime-fixture.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000);
const ROW_MS = Number(process.env.BENCH_ROW_MS ?? 10);
const CALL_MS = Number(process.env.BENCH_CALL_MS ?? 5);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const PARTITIONS = 4;
/** What the host hands write() per poll (runtime.commit_max_records in topology.yaml). */
const POLL = 500;
const LABS = ['LAB-QUEST-WD', 'LAB-LABCORP-BUR', 'LAB-MAYO', 'LAB-ARUP'];

const simulator = await startOdooSimulator({ port: 0 });
const client = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
const ids = async (model: string, field: string, values: string[]): Promise<Map<string, number>> =>
  new Map((await client.searchRead(model, [[field, 'in', values]], { fields: [field] })).map((row) => [String(row[field]), row.id]));
const labs = await ids('res.partner', 'ref', LABS);
const cmp = (await ids('product.product', 'default_code', ['CPT-80053'])).get('CPT-80053') as number;

function charge(run: string, index: number): Record<string, unknown> {
  return { entity_key: `BENCH-${run}-${index}`, odoo_partner_id: labs.get(LABS[index % LABS.length] as string), odoo_product_id: cmp, service_description: 'Comprehensive metabolic panel', quantity: 1, unit_price_minor: 1449 + (index % 7) };
}

function records(run: string): InputRecord[] {
  return Array.from({ length: RECORDS }, (_, index) => ({
    topic: 'billing.service_charge.enriched.v1', partition: index % PARTITIONS, offset: String(Math.floor(index / PARTITIONS)), timestamp: Date.now(), key: `BENCH-${run}-${index}`,
    value: charge(run, index), headers: { 'lifeline.idempotency-key': `BENCH-${run}-${index}`, 'lifeline.ingested-at': new Date(Date.UTC(2026, 11, 1) + index).toISOString() }, rawValue: null,
  }));
}

const CHARGE_BILLS: OdooSinkConfig = {
  connection: 'main', model: 'account.move',
  match: { by: 'external_id', module: 'bench', key_path: 'entity_key' },
  version: { field: 'x_lifeline_version' },
  fields: {
    move_type: { constant: 'in_invoice', create_only: true },
    partner_id: { path: 'odoo_partner_id', as: 'id' },
    ref: { path: 'entity_key' },
    invoice_line_ids: { lines: { path: '.', taxes: 'none', fields: {
      product_id: { path: 'odoo_product_id', as: 'id' }, name: { path: 'service_description' }, quantity: { path: 'quantity' }, price_unit: { path: 'unit_price_minor', as: 'amount' },
    } } },
  },
};

async function runSink(config: OdooSinkConfig, run: string): Promise<void> {
  const sink = odooSink.create(config);
  const context: SinkContext = {
    label: 'bench_sink', logger: pino({ level: 'warn' }), signal: new AbortController().signal,
    connections: { odoo: { main: { url: simulator.url, database: simulator.database, ...simulator.credentials } } },
    metricsRegistry: new Registry(), setHealth: () => undefined, forward: () => undefined,
  };
  await sink.connect(context);
  const input = records(run);
  for (let start = 0; start < input.length; start += POLL) {
    const { failed } = await sink.write(input.slice(start, start + POLL));
    if (failed.length > 0) throw new Error(`${failed.length} records failed: ${String((failed[0]?.error as Error).message)}`);
  }
  await sink.close();
}

/** The baseline: one create per bill, as a hand-written integration does. */
async function createOneByOne(run: string): Promise<void> {
  for (let index = 0; index < RECORDS; index++) {
    const value = charge(run, index) as { entity_key: string; odoo_partner_id: number; odoo_product_id: number; service_description: string; unit_price_minor: number };
    await client.create('account.move', {
      move_type: 'in_invoice', ref: value.entity_key, partner_id: value.odoo_partner_id,
      invoice_line_ids: [[0, 0, { product_id: value.odoo_product_id, name: value.service_description, quantity: 1, price_unit: value.unit_price_minor / 100, tax_ids: [[6, 0, []]] }]],
    });
  }
}

/** The charges as Avro records on a topic of PARTITIONS partitions, and odoo_sink under `lifeline run` writing them. */
const CHARGE_SCHEMA = {
  type: 'record', name: 'BenchCharge', namespace: 'lifeline.bench', doc: 'A lab charge with the Odoo ids its vendor bill needs (odoo-sink bench).',
  fields: [
    { name: 'entity_key', type: 'string', doc: 'Idempotency key.' },
    { name: 'odoo_partner_id', type: 'int', doc: 'res.partner id.' },
    { name: 'odoo_product_id', type: 'int', doc: 'product.product id.' },
    { name: 'service_description', type: 'string', doc: 'Line text.' },
    { name: 'quantity', type: 'int', doc: 'Quantity.' },
    { name: 'unit_price_minor', type: 'long', doc: 'Unit price, minor units.' },
  ],
};

async function runUnderLifeline(config: OdooSinkConfig, run: string): Promise<void> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-sink-bench-'));
  const schemaFile = join(dir, 'bench_charge.avsc');
  writeFileSync(schemaFile, JSON.stringify(CHARGE_SCHEMA, null, 2));
  const input = uniqueTopic('billing', 'bench_charge', 'enriched');
  const results = uniqueTopic('billing', 'bench_bill', 'written');
  const label = `bench_bills_${run}`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, [
    'version: 1',
    `app_id: ${uniqueName('bench').replace(/\./g, '_')}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-sink-bench }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    `  odoo: { main: { url: ${JSON.stringify(simulator.url)}, database: ${simulator.database}, username: ${simulator.credentials.username}, password: "\${BENCH_ODOO_KEY}" } }`,
    'runtime:',
    '  http_port: 0',
    `  state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    '  store: memory',
    `  commit_max_records: ${POLL}`,
    '  log_level: warn',
    'topics:',
    `  ${input}: { key: entity_key, value_schema: ${JSON.stringify(schemaFile)}, partitions: ${PARTITIONS}, retention: 1d, owner: bench, description: odoo-sink bench charges, classification: internal }`,
    `  ${results}: { key: entity_key, value_schema: ${JSON.stringify(resolve('schemas/odoo/writeback_result.avsc'))}, partitions: ${PARTITIONS}, retention: 1d, owner: bench, description: odoo-sink bench results, classification: internal }`,
    'connectors:',
    `  ${label}:`,
    '    type: odoo_sink',
    `    inputs: [${input}]`,
    `    outputs: { results: ${results} }`,
    `    config: ${JSON.stringify({ ...config, match: { by: 'external_id', module: `bench_${run}`, key_path: 'entity_key' } })}`,
    '',
  ].join('\n'));
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: input, partitions: PARTITIONS }, { name: results, partitions: PARTITIONS }, { name: `ops.dlq.${label}.v1`, partitions: 1 }]);
  const serde = await registeredSerde();
  await serde.register(input, loadContract(schemaFile));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const messages = [];
  for (const record of records(run)) {
    messages.push({ partition: record.partition, key: record.key, value: await serde.encode(input, record.value), headers: record.headers as Record<string, string> });
  }
  await producer.send({ topic: input, messages, acks: -1 });
  await producer.disconnect();
  await admin.disconnect();
  const lifeline = new LifelineProcess(file, [], { BENCH_ODOO_KEY: simulator.credentials.password }).start();
  try {
    const deadline = Date.now() + 600_000;
    while (await client.searchCount('account.move', [['ref', '=like', `BENCH-${run}-%`]]) < RECORDS) {
      if (Date.now() > deadline) throw new Error(`lifeline run wrote ${await client.searchCount('account.move', [['ref', '=like', `BENCH-${run}-%`]])} of ${RECORDS} bills in 10 minutes`);
      if (lifeline.exitCode !== undefined) throw new Error(`lifeline run exited (${lifeline.exitCode}):\n${lifeline.lines.slice(-20).join('\n')}`);
      await sleep(250);
    }
  } finally {
    await lifeline.kill('SIGTERM');
  }
}

interface Row { case: string; seconds: number; perSecond: number; calls: number }
const rows: Row[] = [];
const totalCalls = (): number => Object.values(simulator.stats()).reduce((sum, count) => sum + count, 0);
async function measure(name: string, work: () => Promise<void>): Promise<void> {
  const callsBefore = totalCalls();
  const started = performance.now();
  await work();
  const seconds = (performance.now() - started) / 1000;
  rows.push({ case: name, seconds, perSecond: RECORDS / seconds, calls: totalCalls() - callsBefore });
  console.error(`${name}: ${seconds.toFixed(1)} s`);
}

/** Under `lifeline run`: from the start of Odoo's first bill write to the end of its last (process start-up left out). */
async function measureRun(name: string, work: () => Promise<void>): Promise<void> {
  const since = Date.now();
  await work();
  const writes = simulator.callLog().filter((span) => span.model === 'account.move' && span.rows > 0 && span.startedAt >= since);
  const seconds = (Math.max(...writes.map((span) => span.endedAt)) - Math.min(...writes.map((span) => span.startedAt))) / 1000;
  // The calls the sink made (this process's own progress polls, search_count, left out).
  const calls = simulator.callLog().filter((span) => span.startedAt >= since && span.method !== 'search_count').length;
  rows.push({ case: name, seconds, perSecond: RECORDS / seconds, calls });
  console.error(`${name}: ${seconds.toFixed(1)} s, at most ${peakConcurrency(writes)} bill writes in flight`);
}

simulator.control.setCost({ callMs: CALL_MS, rowMs: ROW_MS, workers: WORKERS });
await measure('one create per bill (baseline)', () => createOneByOne('single'));
await measure('odoo_sink batching, partitions one after another (max_in_flight 1: as before)', () => runSink({ ...CHARGE_BILLS, max_in_flight: 1 }, 'sequential'));
await measure(`odoo_sink batching, partitions concurrently (max_in_flight ${PARTITIONS})`, () => runSink({ ...CHARGE_BILLS, max_in_flight: PARTITIONS }, 'concurrent'));
await measure(`replay of the concurrent run (all unchanged, max_in_flight ${PARTITIONS})`, () => runSink({ ...CHARGE_BILLS, max_in_flight: PARTITIONS }, 'concurrent'));
await measureRun('lifeline run, max_in_flight 1 (partitions one after another)', () => runUnderLifeline({ ...CHARGE_BILLS, max_in_flight: 1 }, 'run1'));
await measureRun(`lifeline run, max_in_flight ${PARTITIONS} (partitions concurrently)`, () => runUnderLifeline({ ...CHARGE_BILLS, max_in_flight: PARTITIONS }, `run${PARTITIONS}`));
client.close();
await simulator.close();

console.log(`\n${RECORDS} lab charges → draft vendor bills (1 line), ${PARTITIONS} partitions, ${POLL} records per write(); simulator costing ${CALL_MS} ms a call + ${ROW_MS} ms a record on ${WORKERS} workers (real Odoo 17: ~2 s per 200-bill load)\n`);
const header = ['case', 'seconds', 'bills/s', 'Odoo calls', 'vs baseline'];
const baseline = rows[0] as Row;
const table = rows.map((row) => [row.case, row.seconds.toFixed(1), row.perSecond.toFixed(1), String(row.calls), `${(row.perSecond / baseline.perSecond).toFixed(1)}×`]);
const widths = header.map((title, column) => Math.max(title.length, ...table.map((row) => (row[column] as string).length)));
const line = (cells: string[]): string => `| ${cells.map((cell, column) => cell.padEnd(widths[column] as number)).join(' | ')} |`;
console.log(line(header));
console.log(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |`);
for (const row of table) console.log(line(row));
