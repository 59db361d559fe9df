import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { stringify } from 'yaml';
import type { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { DEDUP_CONFLICT_HEADERS, DEDUP_RESULT_HEADER } from '../../processors/dedup.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../../testing/harness.ts';
import { useOdooSimulator } from '../../testing/odoo-simulator-fixture.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { deliver, newWebhookSecret, webhookPort } from '../../testing/partner-feed-fixture.ts';

/**
 * Issue 12's "done when", on the real broker and registry with the Odoo simulator: partner
 * webhooks → dedup (fingerprints, conflicts output) → odoo_sink writing draft vendor bills the way
 * the golden path does (one line: the charge's total). Two labs whose senders, facilities and
 * control ids collide both get their bills; a lab reusing a control id for another charge gets a
 * visible conflict and the first charge's bill stays as it was; a retry is a duplicate; a FHIR
 * ChargeItem with only a priceOverride and an HL7 charge full of escape sequences land in Odoo with
 * the right amount and the decoded text. (Every corpus sample through both sources into Odoo:
 * corpus-pipeline.test.ts.)
 */

let odoo: OdooClient;
let simulatorUrl = '';
let simulatorDb = '';
let simulatorUser = '';
let simulatorKey = '';
useOdooSimulator(({ simulator, odoo: client }) => {
  odoo = client;
  simulatorUrl = simulator.url;
  simulatorDb = simulator.database;
  simulatorUser = simulator.credentials.username;
  simulatorKey = simulator.credentials.password;
});

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const secrets = { north: newWebhookSecret(), south: newWebhookSecret(), payer: newWebhookSecret() };
const run = randomBytes(3).toString('hex');
const received = uniqueTopic('partner', 'service_charge', 'received');
const unique = received.replace('.received.v1', '.deduplicated.v1');
const conflicts = received.replace('.received.v1', '.conflicts.v1');
const written = uniqueTopic('billing', 'vendor_bill', 'written');
const quarantine = uniqueTopic('ops', 'quarantine', 'received');
let port = 0;
let lifeline: LifelineProcess;

/** One DFT^P03 with one FT1; both labs' systems call themselves LIS at facility LAB (they collide). */
function dft(controlId: string, ft1: { code: string; description: string; quantity: number; total: string; unit?: string }, sentAt = '20241105101500-0500'): string {
  return [
    `MSH|^~\\&|LIS|LAB|LIFELINE|STMARYS|${sentAt}||DFT^P03|${controlId}|P|2.5`,
    'EVN|P03|20241105101500',
    'PID|1||MRN-1^^^HOSP^MR||DOE^JANE||19800101|F|||||||||||ACC-1',
    'PV1|1|O|LAB^^^NORTH||||1234^SMITH^JOHN|||||||||||||VISIT-1',
    `FT1|1|||20241105093000||CG|${ft1.code}^${ft1.description}^CPT|||${ft1.quantity}|${ft1.total}|${ft1.unit ?? ''}||||||||PERF-1||ORD-${controlId}`,
  ].join('\r');
}

const chargeItem = (identifier: string): string => JSON.stringify({
  resourceType: 'ChargeItem',
  identifier: [{ system: 'urn:payer:charges', value: identifier }],
  status: 'billable',
  code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '80053', display: 'Comprehensive metabolic panel' }] },
  subject: { identifier: { system: 'urn:mrn', value: 'MRN-9' } },
  occurrenceDateTime: '2024-11-05T09:30:00-05:00',
  quantity: { value: 2 },
  priceOverride: { value: 84.5, currency: 'USD' },
});

before(async () => {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-faithful-'));
  const topic = (schema: string, classification: string) => ({ key: 'entity_key', value_schema: resolve(schema), partitions: 3, retention: '1d', owner: 'tests', description: 'test topic', classification });
  const document = {
    version: 1,
    app_id: uniqueName('app').replace(/\./g, '_'),
    connections: {
      kafka: { brokers, client_id: 'lifeline-test' }, registry: { url: registryUrl },
      odoo: { main: { url: simulatorUrl, database: simulatorDb, username: simulatorUser, password: '${FAITHFUL_ODOO_KEY}' } },
    },
    runtime: { http_port: 0, state_dir: join(dir, 'state'), store: 'memory', commit_max_records: 200, commit_interval: '200ms' },
    topics: {
      [received]: topic('schemas/partner/service_charge.avsc', 'phi'),
      [unique]: topic('schemas/partner/service_charge.avsc', 'phi'),
      [conflicts]: topic('schemas/partner/service_charge.avsc', 'phi'),
      [written]: topic('schemas/odoo/writeback_result.avsc', 'internal'),
      [quarantine]: { ...topic('schemas/ops/quarantine.avsc', 'phi'), key: '<partner>|<delivery>', partitions: 1 },
    },
    connectors: {
      [`webhooks_${run}`]: {
        type: 'webhook_source',
        outputs: { service_charges: received, quarantine },
        config: {
          host: '127.0.0.1', port: 0,
          partners: [
            { name: 'north_lab', format: 'hl7v2', path: '/webhooks/north_lab', secrets: ['${FAITHFUL_NORTH}'] },
            { name: 'south_lab', format: 'hl7v2', path: '/webhooks/south_lab', secrets: ['${FAITHFUL_SOUTH}'] },
            { name: 'payer', format: 'fhir_r4', path: '/webhooks/payer', secrets: ['${FAITHFUL_PAYER}'] },
          ],
        },
      },
      [`bills_${run}`]: {
        type: 'odoo_sink',
        inputs: [unique],
        outputs: { results: written },
        config: {
          connection: 'main', model: 'account.move', match: { by: 'external_id', key_path: 'entity_key' },
          fields: {
            move_type: { constant: 'in_invoice' },
            ref: { path: 'entity_key' },
            invoice_date: { path: 'occurred_at', as: 'date' },
            // As in the golden path's charge_bills: the charge's total on one line.
            invoice_line_ids: { lines: { path: '.', fields: {
              name: { path: 'service_description', default: 'Laboratory service' },
              quantity: { constant: 1 },
              price_unit: { path: 'total.amount_minor', as: 'amount' },
            } } },
          },
        },
      },
    },
    processors: {
      [`dedup_${run}`]: { type: 'dedup', inputs: [received], outputs: { unique, conflicts }, config: { key_path: 'idempotency_key', ttl: '1d', repartition: false } },
    },
  };
  const file = join(dir, 'topology.yaml');
  topologyFile = file;
  writeFileSync(file, stringify(document));
  lifeline = new LifelineProcess(file, [], { FAITHFUL_ODOO_KEY: simulatorKey, FAITHFUL_NORTH: secrets.north, FAITHFUL_SOUTH: secrets.south, FAITHFUL_PAYER: secrets.payer }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  port = await webhookPort(lifeline);
  await lifeline.waitForLine(/lifeline running/);
}, { timeout: 120_000 });

let topologyFile = '';

interface Bill { ref: string; lines: Array<{ name: string; quantity: number; price_unit: number }> }

async function billsByRef(prefix: string, count: number): Promise<Map<string, Bill>> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const moves = await odoo.searchRead('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', prefix]], { fields: ['ref', 'invoice_line_ids'] });
    if (moves.length >= count || Date.now() > deadline) {
      const bills = new Map<string, Bill>();
      for (const move of moves) {
        const lines = await odoo.searchRead('account.move.line', [['move_id', '=', move.id]], { fields: ['name', 'quantity', 'price_unit'] });
        bills.set(String(move.ref), { ref: String(move.ref), lines: lines.map((line) => ({ name: String(line.name), quantity: Number(line.quantity), price_unit: Number(line.price_unit) })) });
      }
      return bills;
    }
    await sleep(250);
  }
}

test('colliding control ids across labs, a reused control id, a retry, a priceOverride-only ChargeItem and HL7 escapes: every charge in Odoo right, the reuse a visible conflict', { timeout: 240_000 }, async () => {
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const conflicted = await new TopicCollector<{ idempotency_key: string; total: { amount_minor: number } }>(kafka, conflicts, serde).start();
  cleanups.push(() => conflicted.stop());

  const controlId = `C${run}`;
  const send = async (lab: 'north' | 'south', body: string): Promise<void> => {
    const answer = await deliver(port, `/webhooks/${lab}_lab`, body, { secret: secrets[lab] });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  };
  // Two labs, the same MSH-3/MSH-4/MSH-10: two different charges.
  await send('north', dft(controlId, { code: '85025', description: 'CBC \\T\\ differential', quantity: 1, total: '42.50' }));
  await send('south', dft(controlId, { code: '80061', description: 'Lipid panel', quantity: 2, total: '', unit: '31.25' }));
  // The north lab retries the same message (a new webhook id): a duplicate.
  await send('north', dft(controlId, { code: '85025', description: 'CBC \\T\\ differential', quantity: 1, total: '42.50' }));
  // The north lab reuses the control id for another charge: a conflict, not a silent drop.
  await send('north', dft(controlId, { code: '87086', description: 'Urine culture', quantity: 1, total: '19.90' }));
  // Escapes in the message's own encoding characters, and a FHIR ChargeItem with only a priceOverride.
  await send('south', dft(`E${run}`, { code: '82947', description: 'Glucose\\F\\fasting \\S\\ \\E\\ 8\\X0D\\\\X0A\\h \\R\\ strip', quantity: 1, total: '12.00' }));
  const fhir = await deliver(port, '/webhooks/payer', chargeItem(`CI-${run}`), { secret: secrets.payer, contentType: 'application/json+fhir' });
  assert.equal(fhir.status, 200, `application/json+fhir is accepted: ${JSON.stringify(fhir.body)}`);

  await conflicted.waitForCount(1, 60_000);
  const bills = await billsByRef('|charge|', 3);
  const payerBills = await billsByRef(`CI-${run}`, 1);
  const north = [...bills.values()].filter((bill) => bill.ref.startsWith('north_lab|') && bill.ref.includes(controlId));
  const south = [...bills.values()].filter((bill) => bill.ref.startsWith('south_lab|') && bill.ref.includes(controlId));
  const escaped = [...bills.values()].filter((bill) => bill.ref.includes(`E${run}`));
  assert.equal(north.length, 1, 'the north lab\'s charge has one bill');
  assert.equal(south.length, 1, 'the south lab\'s charge, with the same sender, facility and control id, has its own bill');
  assert.deepEqual(north[0]?.lines, [{ name: 'CBC & differential', quantity: 1, price_unit: 42.5 }], 'the first content stays; the reuse did not overwrite it');
  assert.deepEqual(south[0]?.lines, [{ name: 'Lipid panel', quantity: 1, price_unit: 62.5 }], 'a unit price x quantity is billed as its total');
  assert.deepEqual(escaped[0]?.lines, [{ name: 'Glucose|fasting ^ \\ 8\r\nh ~ strip', quantity: 1, price_unit: 12 }], 'escape sequences decoded');
  const payerBill = [...payerBills.values()][0];
  assert.deepEqual(payerBill?.lines, [{ name: 'Comprehensive metabolic panel', quantity: 1, price_unit: 84.5 }], 'a priceOverride-only ChargeItem is not a 0.00 bill');

  assert.equal(conflicted.records.length, 1, 'exactly the reuse is a conflict (the retry is a duplicate)');
  const conflict = conflicted.records[0];
  assert.equal(conflict?.value.total.amount_minor, 1990, 'the conflicting charge is kept whole');
  assert.equal(conflict?.headers[DEDUP_RESULT_HEADER], 'conflict');
  assert.match(conflict?.headers[DEDUP_CONFLICT_HEADERS.previousFingerprint] ?? '', /^[0-9a-f]{16}$/);
  assert.match(conflict?.headers[DEDUP_CONFLICT_HEADERS.fingerprint] ?? '', /^[0-9a-f]{16}$/);
  assert.notEqual(conflict?.headers[DEDUP_CONFLICT_HEADERS.fingerprint], conflict?.headers[DEDUP_CONFLICT_HEADERS.previousFingerprint]);
  assert.match(conflict?.headers[DEDUP_CONFLICT_HEADERS.reason] ?? '', /different content/);

  const warning = lifeline.lines.find((line) => line.includes('"event":"dedup_conflict"'));
  assert.ok(warning, 'the conflict is logged');
  assert.doesNotMatch(warning, /MRN-1|DOE|Urine culture/, 'the log line carries no record content');
  const metricsLine = lifeline.lines.find((line) => line.includes('serving /metrics'));
  const metricsPort = (JSON.parse(metricsLine as string) as { port: number }).port;
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  assert.match(metrics, new RegExp(`lifeline_dedup_conflicts_total\\{component="dedup_${run}"\\} 1`));
  // Visible in `lifeline dlq list` beside the dead letters, though routed to the conflicts output.
  const listed = await runLifeline(['dlq', 'list', '--json', '--topology', topologyFile], { env: { FAITHFUL_ODOO_KEY: 'unused' } });
  assert.equal(listed.code, 0, listed.stderr);
  const rows = JSON.parse(listed.stdout) as Array<{ kind: string; topic: string; component: string; conflicts?: number }>;
  assert.deepEqual(rows.filter((row) => row.kind === 'conflicts').map((row) => [row.topic, row.component, row.conflicts]), [[conflicts, `dedup_${run}`, 1]]);
});
