import assert from 'node:assert/strict';
import { test } from 'node:test';
import xmlrpc from 'xmlrpc';
import type { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

const refs = async (domain: unknown[], options: { order?: string; limit?: number; offset?: number } = {}): Promise<string[]> =>
  (await odoo.searchRead('res.partner', domain as never, { fields: ['ref'], ...options })).map((row) => String(row.ref));

test('domains: prefix & | !, comparison and like operators, as Odoo reads them', async () => {
  assert.deepEqual(await refs([['ref', '=like', 'LAB-%']], { order: 'ref asc' }), ['LAB-ARUP', 'LAB-LABCORP-BUR', 'LAB-MAYO', 'LAB-QUEST-WD']);
  assert.deepEqual(await refs(['|', ['ref', '=', 'RX-CVS-SP'], ['ref', '=', 'SUP-SCHEIN']], { order: 'ref asc' }), ['RX-CVS-SP', 'SUP-SCHEIN']);
  assert.deepEqual(await refs(['&', ['ref', 'ilike', 'rx-'], '!', ['city', '=', 'Naperville']], { order: 'ref asc' }), ['RX-CVS-SP', 'RX-OPTUM-HD']);
  assert.deepEqual(await refs([['ref', 'like', 'MAYO']]), ['LAB-MAYO'], 'like wraps the value in %…%');
  assert.deepEqual(await refs([['ref', '=like', 'MAYO']]), [], '=like takes the pattern literally');
  assert.deepEqual(await refs([['ref', '=ilike', 'lab-_ayo']]), ['LAB-MAYO'], '_ matches one character');
  assert.deepEqual(await refs([['ref', 'in', ['PAYER-AETNA', 'nope']]]), ['PAYER-AETNA']);
  assert.equal((await refs([['ref', 'not in', ['PAYER-AETNA']], ['supplier_rank', '>', 0]])).length, 11);
  assert.equal((await refs([['supplier_rank', '>=', 1], ['customer_rank', '<', 1], ['ref', '!=', false]])).length, 11);
  assert.deepEqual(await refs([['parent_id.ref', '=', 'PAYER-BCBS-IL']]), ['false'], 'paths through a many2one');
  assert.deepEqual(await refs([['ref', '=like', 'PAYER-%']], { order: 'ref desc', limit: 2, offset: 1 }), ['PAYER-MCR-B', 'PAYER-HUMANA']);
});

test('archived records are hidden unless the domain asks for active', async () => {
  const [id] = await odoo.create('res.partner', [{ name: 'Old Lab', ref: 'ARCHIVE-ME' }]);
  await odoo.write('res.partner', [id as number], { active: false });
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'ARCHIVE-ME']]), 0);
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'ARCHIVE-ME'], ['active', 'in', [true, false]]]), 1);
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'ARCHIVE-ME']], { active_test: false }), 1);
  assert.deepEqual(await odoo.read('res.partner', [id as number], ['active']), [{ id, active: false }], 'read still finds it');
});

test('write_date is the transaction start with microseconds: > a truncated second matches it, = does not', async () => {
  const id = await odoo.create('res.partner', { name: 'Clock Test', ref: 'CLOCK' });
  const [row] = await odoo.read('res.partner', [id], ['write_date']);
  const second = String(row?.write_date);
  assert.match(second, /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  const stored = simulator.store.table('res.partner').get(id)?.write_date as number;
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'CLOCK'], ['write_date', '>=', second]]), 1);
  const exactSecond = stored % 1_000_000 === 0;
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'CLOCK'], ['write_date', '>', second]]), exactSecond ? 0 : 1);
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'CLOCK'], ['write_date', '=', second]]), exactSecond ? 1 : 0);
  const ordered = await odoo.searchRead('res.partner', [['ref', 'in', ['CLOCK', 'LAB-MAYO']]], { fields: ['ref'], order: 'write_date asc, id asc' });
  assert.deepEqual(ordered.map((partner) => partner.ref), ['LAB-MAYO', 'CLOCK']);
});

test('load upserts by external id in one call, and a rejected row rolls the whole call back', async () => {
  const fields = ['id', 'name', 'ref', 'parent_id/id'];
  const first = await odoo.load('res.partner', fields, [['lifeline.npi_1', 'Dr. Ada Park', 'NPI-1', 'base.main_partner'], ['lifeline.npi_2', 'Dr. Ben Roy', 'NPI-2', '']]);
  assert.equal(first.messages.length, 0);
  const again = await odoo.load('res.partner', fields, [['lifeline.npi_1', 'Dr. Ada Park-Lee', 'NPI-1', 'base.main_partner']]);
  assert.deepEqual(again.ids, [(first.ids as number[])[0]], 'same external id, same record');
  simulator.control.rejectValue({ model: 'res.partner', field: 'ref', value: 'NPI-BAD', message: 'NPI-BAD fails the NPI check digit.' });
  try {
    const rejected = await odoo.load('res.partner', fields, [['lifeline.npi_3', 'Dr. Cy Ode', 'NPI-3', ''], ['lifeline.npi_4', 'Dr. Di Bad', 'NPI-BAD', '']]);
    assert.equal(rejected.ids, false);
    assert.deepEqual(rejected.messages.map((message) => [message.type, message.record, message.message]), [['error', 1, 'NPI-BAD fails the NPI check digit.']]);
    assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'NPI-3']]), 0, 'nothing of the call is kept');
  } finally {
    simulator.control.clearRejections();
  }
});

test('two loads racing to create one external id: the later commit fails as a serialization conflict, and its retry finds the record', async () => {
  const fields = ['id', 'name', 'ref'];
  simulator.control.setSlow(400, 'writes');
  let results: PromiseSettledResult<Awaited<ReturnType<OdooClient['load']>>>[];
  try {
    // Both start before either commits (each holds its transaction 400 ms), as a killed process's call and its successor's can.
    results = await Promise.allSettled([
      odoo.load('res.partner', fields, [['lifeline.race_1', 'Race Lab', 'RACE-1']]),
      (async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        return odoo.load('res.partner', fields, [['lifeline.race_1', 'Race Lab', 'RACE-1']]);
      })(),
    ]);
  } finally {
    simulator.control.setSlow(0);
  }
  assert.equal(results[0]?.status, 'fulfilled');
  assert.equal(results[1]?.status, 'rejected');
  assert.equal(((results[1] as PromiseRejectedResult).reason as { code?: string }).code, 'LL_ODOO_CONFLICT');
  assert.equal(await odoo.searchCount('res.partner', [['ref', '=', 'RACE-1']]), 1, 'one record, not two');
  const retried = await odoo.load('res.partner', fields, [['lifeline.race_1', 'Race Lab', 'RACE-1']]);
  assert.deepEqual(retried.ids, (results[0] as PromiseFulfilledResult<{ ids: readonly number[] | false }>).value.ids);
});

test('invoices with one2many commands; amounts come back as doubles; chatter and activities', async () => {
  const moveId = await odoo.create('account.move', {
    move_type: 'out_invoice', partner_id: 8, invoice_date: '2026-02-02',
    invoice_line_ids: [[0, 0, { name: 'Panel', quantity: 1, price_unit: 80.5, tax_ids: [[6, 0, []]] }], [0, 0, { name: 'Draw', quantity: 1, price_unit: 0.5 }]],
  });
  const [move] = await odoo.read('account.move', [moveId], ['amount_total', 'invoice_line_ids', 'state', 'name']);
  assert.equal(move?.amount_total, 81);
  assert.equal((move?.invoice_line_ids as number[]).length, 2);
  await odoo.write('account.move', [moveId], { invoice_line_ids: [[5, 0, 0], [0, 0, { name: 'Panel', quantity: 2, price_unit: 80.5 }]] });
  const [rewritten] = await odoo.read('account.move', [moveId], ['amount_total', 'invoice_line_ids']);
  assert.equal(rewritten?.amount_total, 161);
  assert.equal((rewritten?.invoice_line_ids as number[]).length, 1);
  assert.equal(await odoo.callMethod('account.move', 'action_post', [[moveId]]), false);
  const [posted] = await odoo.read('account.move', [moveId], ['state', 'name']);
  assert.equal(posted?.state, 'posted');
  assert.match(String(posted?.name), /^INV\/2026\/\d{5}$/);
  const messageId = await odoo.callMethod<number>('account.move', 'message_post', [[moveId]], { body: '<p>Posted by Lifeline</p>' });
  assert.equal(typeof messageId, 'number');
  const [model] = await odoo.searchRead('ir.model', [['model', '=', 'account.move']], { fields: ['id'] });
  const activityId = await odoo.create('mail.activity', { res_model_id: model?.id as number, res_id: moveId, summary: 'Check payer remittance', user_id: 2 });
  const [activity] = await odoo.read('mail.activity', [activityId], ['res_model', 'date_deadline', 'user_id']);
  assert.equal(activity?.res_model, 'account.move');
  assert.deepEqual(activity?.user_id, [2, 'Mitchell Admin']);
});

test('Odoo 17 rejects a JS Date in a datetime field with fault 1 (the client never sends one; a raw XML-RPC call can)', async () => {
  const raw = xmlrpc.createClient({ url: `${simulator.url}/xmlrpc/2/object` });
  const fault = await new Promise<{ faultCode: number; faultString: string }>((resolve) => {
    raw.methodCall('execute_kw', [simulator.database, 6, simulator.credentials.password, 'sale.order', 'create', [{ partner_id: 7, date_order: new Date() }]], (error) => {
      resolve(error as unknown as { faultCode: number; faultString: string });
    });
  });
  assert.equal(fault.faultCode, 1);
  assert.match(fault.faultString, /TypeError: object of type 'DateTime' has no len\(\)/);
});

test('the control endpoint switches failures over HTTP', async () => {
  const post = async (body: unknown): Promise<Record<string, unknown>> => {
    const response = await fetch(`${simulator.url}/__simulator/control`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return await response.json() as Record<string, unknown>;
  };
  await post({ down: true, down_mode: 'http_503' });
  await assert.rejects(odoo.searchCount('res.partner', []), /HTTP 503/);
  const state = await post({ reset: true });
  assert.deepEqual((state.switches as { down: unknown }).down, false);
  assert.ok(await odoo.searchCount('res.partner', []) > 0);
  const current = await (await fetch(`${simulator.url}/__simulator/state`)).json() as { records: Record<string, number> };
  assert.ok((current.records['res.partner'] ?? 0) > 20, 'healthcare seed data');
});
