import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { odooSink, externalName, type OdooSinkConfig } from '../../../connectors/odoo/odoo-sink.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { isRetriable } from '../../../src/errors.ts';
import type { InputRecord } from '../../../src/component/component.ts';
import { simulatorConnection, testConnectorContext } from './odoo-test-context.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

// odoo_sink driven directly (connect / write) against the simulator: no Kafka.

let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

let offset = 0;
function input(key: string, value: Record<string, unknown>): InputRecord {
  return { topic: 'billing.claim.ready.v1', partition: 0, offset: String(offset++), timestamp: Date.now() - 50, key, value, headers: { 'lifeline.idempotency-key': key }, rawValue: null };
}

const INVOICE_SINK: OdooSinkConfig = {
  connection: 'main',
  model: 'account.move',
  match: { by: 'external_id', module: 'lifeline_test' },
  fields: {
    move_type: { constant: 'out_invoice' },
    ref: { path: 'claim_id' },
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

function claim(index: number, amountMinor = 1449): Record<string, unknown> {
  return {
    claim_id: `CLM-T-${index}`, payer: index % 2 === 0 ? 'PAYER-BCBS-IL' : 'PAYER-AETNA', service_date: Date.UTC(2026, 0, 10 + (index % 5)),
    lines: [
      { description: 'Comprehensive metabolic panel', quantity: 1, amount_minor: amountMinor, code: 'CPT-80053' },
      { description: 'Venipuncture', quantity: 1, amount_minor: 300, code: 'CPT-36415' },
    ],
  };
}

test('external ids: one load creates a batch with lines; a replay writes nothing; a change rewrites the lines', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const sink = odooSink.create(INVOICE_SINK);
  await sink.connect(context.sink());
  const records = [0, 1, 2].map((index) => input(`claim:${index}`, claim(index)));
  const loadsBefore = simulator.stats()['account.move.load'] ?? 0;
  assert.deepEqual((await sink.write(records)).failed, []);
  assert.equal((simulator.stats()['account.move.load'] ?? 0) - loadsBefore, 1, 'one load for the batch');
  const results = context.forwarded.map((entry) => entry.record.value as { key: string; outcome: string; odoo_id: number; latency_ms: number });
  assert.deepEqual(results.map((result) => result.outcome), ['created', 'created', 'created']);
  const moves = await odoo.read('account.move', results.map((result) => result.odoo_id), ['ref', 'partner_id', 'invoice_date', 'amount_total', 'invoice_line_ids', 'write_date']);
  assert.deepEqual(moves.map((move) => move.ref), ['CLM-T-0', 'CLM-T-1', 'CLM-T-2']);
  assert.equal(moves[0]?.amount_total, 17.49);
  assert.equal((moves[0]?.partner_id as [number, string])[1], 'Blue Cross Blue Shield of Illinois');
  assert.equal(moves[0]?.invoice_date, '2026-01-10');
  const externalIds = await odoo.searchRead('ir.model.data', [['module', '=', 'lifeline_test']], { fields: ['name', 'res_id'] });
  assert.equal(externalIds.length, 3);
  assert.equal(externalIds[0]?.name, externalName('claim:0'));

  context.forwarded.length = 0;
  assert.deepEqual((await sink.write(records)).failed, []);
  assert.deepEqual(context.forwarded.map((entry) => (entry.record.value as { outcome: string }).outcome), ['unchanged', 'unchanged', 'unchanged']);
  const again = await odoo.read('account.move', results.map((result) => result.odoo_id), ['write_date', 'invoice_line_ids']);
  assert.deepEqual(again.map((move) => move.write_date), moves.map((move) => move.write_date), 'a replay moves no write_date');

  context.forwarded.length = 0;
  await sink.write([input('claim:1', claim(1, 2000))]);
  assert.equal((context.forwarded[0]?.record.value as { outcome: string }).outcome, 'updated');
  const [changed] = await odoo.read('account.move', [results[1]?.odoo_id as number], ['amount_total', 'invoice_line_ids']);
  assert.equal(changed?.amount_total, 23);
  assert.equal((changed?.invoice_line_ids as number[]).length, 2, 'lines replaced, not added');
  await sink.close();
});

test('match field: created once by ref, then unchanged, then updated; a missing reference fails only its record', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const sink = odooSink.create({
    connection: 'main', model: 'res.partner', match: { by: 'field', field: 'ref' },
    fields: { name: { path: 'name' }, email: { path: 'email' }, parent_id: { lookup: { model: 'res.partner', field: 'ref', path: 'parent' } } },
  });
  await sink.connect(context.sink());
  const first = [
    input('NPI-1003000126', { name: 'Dr. Alicia Moreno', email: 'amoreno@clinic.example', parent: 'LAB-QUEST-WD' }),
    input('NPI-1003000134', { name: 'Dr. Ben Okoro', email: 'bokoro@clinic.example', parent: 'NO-SUCH-REF' }),
  ];
  const { failed } = await sink.write(first);
  assert.equal(failed.length, 1);
  assert.match(String((failed[0]?.error as Error).message), /no res\.partner with ref = "NO-SUCH-REF"/);
  const [created] = await odoo.searchRead('res.partner', [['ref', '=', 'NPI-1003000126']], { fields: ['name', 'parent_id'] });
  assert.equal(created?.name, 'Dr. Alicia Moreno');
  await sink.write([first[0] as InputRecord]);
  await sink.write([input('NPI-1003000126', { name: 'Dr. Alicia Moreno-Diaz', email: 'amoreno@clinic.example', parent: 'LAB-QUEST-WD' })]);
  assert.deepEqual(context.forwarded.map((entry) => (entry.record.value as { outcome: string }).outcome), ['created', 'unchanged', 'updated']);
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'NPI-1003000126']]), 1);
  await sink.close();
});

test('a record Odoo rejects fails with Odoo\'s text and the rest of the batch is written', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const sink = odooSink.create({ ...INVOICE_SINK, match: { by: 'external_id', module: 'lifeline_reject' } });
  await sink.connect(context.sink());
  simulator.control.rejectValue({ model: 'account.move', field: 'ref', value: 'CLM-T-12', message: 'The claim number CLM-T-12 was already billed under another invoice.' });
  try {
    const { failed } = await sink.write([10, 11, 12, 13].map((index) => input(`reject:${index}`, claim(index))));
    assert.equal(failed.length, 1);
    assert.equal(failed[0]?.record.key, 'reject:12');
    assert.match((failed[0]?.error as Error).message, /already billed under another invoice/);
    assert.equal(isRetriable(failed[0]?.error), false);
    assert.equal(await odoo.searchCount('account.move', [['ref', 'in', ['CLM-T-10', 'CLM-T-11', 'CLM-T-13']]]), 3);
  } finally {
    simulator.control.clearRejections();
  }
  await sink.close();
});

test('while Odoo is down write throws a retriable error and the health says down', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const sink = odooSink.create({ ...INVOICE_SINK, match: { by: 'external_id', module: 'lifeline_down' } });
  await sink.connect(context.sink());
  simulator.control.setDown(true);
  try {
    await assert.rejects(sink.write([input('down:1', claim(1))]), (error: unknown) => isRetriable(error));
    assert.equal(context.health.at(-1)?.state, 'down');
  } finally {
    simulator.control.setDown(false);
  }
  assert.deepEqual((await sink.write([input('down:1', claim(1))])).failed, []);
  assert.equal(context.health.at(-1)?.state, 'up');
  await sink.close();
});

test('a chatter message and an activity are posted once per record, however often it is replayed', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const sink = odooSink.create({
    connection: 'main', model: 'account.move', match: { by: 'field', field: 'ref' }, on_missing: 'fail',
    fields: { narration: { path: 'note' } },
    message: { body: '<p>SLA breached for {flow}: {key}</p>', when: ['updated'] },
    activity: { summary: 'Follow up claim {key}', user_login_path: 'owner', deadline_days: 1, when: ['updated'] },
  });
  await sink.connect(context.sink());
  const record = input('CLM-2026-000184', { note: 'claim_to_invoice breached', flow: 'claim_to_invoice', owner: 'admin' });
  for (let replay = 0; replay < 3; replay++) assert.deepEqual((await sink.write([record])).failed, []);
  const [move] = await odoo.searchRead('account.move', [['ref', '=', 'CLM-2026-000184']], { fields: ['id'] });
  const messages = await odoo.searchRead('mail.message', [['model', '=', 'account.move'], ['res_id', '=', move?.id as number]], { fields: ['body'] });
  assert.equal(messages.length, 1);
  assert.match(String(messages[0]?.body), /SLA breached for claim_to_invoice/);
  const activities = await odoo.searchRead('mail.activity', [['res_id', '=', move?.id as number]], { fields: ['summary', 'user_id', 'res_model'] });
  assert.equal(activities.length, 1);
  assert.equal(activities[0]?.res_model, 'account.move');
  assert.equal((activities[0]?.user_id as [number, string])[0], 2);
  const missing = await sink.write([input('CLM-NOT-THERE', { note: 'x' })]);
  assert.match((missing.failed[0]?.error as Error).message, /no account\.move record matches CLM-NOT-THERE/);
  await sink.close();
});

test('a required amount that the record lacks fails only that record, with the field named; nothing is written as 0.00', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const lines = INVOICE_SINK.fields?.invoice_line_ids as { lines: { path: string; fields: Record<string, unknown> } };
  const sink = odooSink.create({
    ...INVOICE_SINK,
    match: { by: 'external_id', module: 'lifeline_required' },
    fields: { ...INVOICE_SINK.fields, invoice_line_ids: { lines: { ...lines.lines, fields: { ...lines.lines.fields, price_unit: { path: 'amount_minor', as: 'amount', required: true } } } } },
  } as OdooSinkConfig);
  await sink.connect(context.sink());
  const unpriced = claim(22);
  (unpriced.lines as Array<Record<string, unknown>>)[0] = { description: 'Comprehensive metabolic panel', quantity: 1, amount_minor: null, code: 'CPT-80053' };
  const { failed } = await sink.write([input('required:21', claim(21)), input('required:22', unpriced)]);
  assert.equal(failed.length, 1);
  assert.equal(failed[0]?.record.key, 'required:22');
  assert.match((failed[0]?.error as Error).message, /price_unit: the record has no amount_minor \(required/);
  assert.equal(isRetriable(failed[0]?.error), false);
  assert.equal(await odoo.searchCount('account.move', [['ref', '=', 'CLM-T-21']]), 1);
  assert.equal(await odoo.searchCount('account.move', [['ref', '=', 'CLM-T-22']]), 0);
  await sink.close();
});
