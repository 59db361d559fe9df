import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

/**
 * The simulator as a real Odoo 17 with sale, purchase, stock and account behaves for what the
 * golden path touches (reference/odoo-external-api.md): receipts need an operation type and
 * locations (one missing field reported at a time), the operation type is set on create only,
 * vendor bill lines get the product's default purchase taxes, tracked fields log chatter, and
 * access rights follow the user's groups.
 */
let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

const admin = (): OdooClient => new OdooClient({ url: simulator.url, database: simulator.database, username: 'admin', password: 'admin' });

async function xmlid(name: string): Promise<number> {
  const [module, xml] = name.split('.') as [string, string];
  const [row] = await odoo.searchRead('ir.model.data', [['module', '=', module], ['name', '=', xml]], { fields: ['res_id'] });
  assert.ok(row, `${name} exists`);
  return Number(row.res_id);
}

test('stock.picking: picking_type_code is ignored on create, the type and locations are required one at a time, the type is create-only', async () => {
  const product = (await odoo.searchRead('product.product', [['default_code', '=', 'SUP-GLV-NIT-M']], { fields: ['id'] }))[0]?.id as number;
  const fields = ['id', 'picking_type_code', 'partner_id/.id', 'move_ids/product_id/.id', 'move_ids/name', 'move_ids/product_uom_qty'];
  const first = await odoo.load('stock.picking', fields, [['lifeline.rcpt_1', 'incoming', '20', String(product), 'Gloves', '5']]);
  assert.equal(first.ids, false);
  assert.deepEqual(first.messages.map((message) => message.message), ["Missing required value for the field 'Source Location' (location_id)"]);

  const suppliers = await xmlid('stock.stock_location_suppliers');
  const stock = await xmlid('stock.stock_location_stock');
  const incoming = await xmlid('stock.picking_type_in');
  const withSource = await odoo.load('stock.picking', [...fields, 'location_id/.id'], [['lifeline.rcpt_1', 'incoming', '20', String(product), 'Gloves', '5', String(suppliers)]]);
  assert.deepEqual(withSource.messages.map((message) => message.message), ["Missing required value for the field 'Destination Location' (location_dest_id)"]);

  const full = ['id', 'picking_type_id/.id', 'location_id/.id', 'location_dest_id/.id', 'partner_id/.id', 'move_ids/product_id/.id', 'move_ids/name', 'move_ids/product_uom_qty'];
  const noMoveLocations = await odoo.load('stock.picking', full, [['lifeline.rcpt_1', String(incoming), String(suppliers), String(stock), '20', String(product), 'Gloves', '5']]);
  assert.deepEqual(noMoveLocations.messages.map((message) => message.message), ["Missing required value for the field 'Source Location' (location_id)"], 'each stock.move needs its locations too');

  const moveFields = [...full, 'move_ids/location_id/.id', 'move_ids/location_dest_id/.id'];
  const row = ['lifeline.rcpt_1', String(incoming), String(suppliers), String(stock), '20', String(product), 'Gloves', '5', String(suppliers), String(stock)];
  const created = await odoo.load('stock.picking', moveFields, [row]);
  assert.equal(created.messages.length, 0);
  const [picking] = await odoo.read('stock.picking', created.ids as number[], ['picking_type_code', 'picking_type_id', 'location_id']);
  assert.equal(picking?.picking_type_code, 'incoming', 'the related field follows the operation type');

  const again = await odoo.load('stock.picking', moveFields, [row]);
  assert.deepEqual(again.messages.map((message) => message.message), ['Changing the operation type of this record is forbidden at this point.']);
  await assert.rejects(odoo.write('stock.picking', created.ids as number[], { picking_type_id: incoming }), /Changing the operation type of this record is forbidden at this point\./);
  const withoutType = await odoo.load('stock.picking', ['id', 'origin'], [['lifeline.rcpt_1', 'PO-77']]);
  assert.deepEqual(withoutType.ids, created.ids, 'an update without the create-only field goes through');
});

test('vendor bill lines get the product\'s default purchase taxes unless tax_ids says which', async () => {
  const product = (await odoo.searchRead('product.product', [['default_code', '=', 'CPT-80053']], { fields: ['id'] }))[0]?.id as number;
  const line = (extra: Record<string, unknown>): unknown[] => [0, 0, { product_id: product, name: 'CMP', quantity: 1, price_unit: 100, ...extra }];
  const taxed = await odoo.create('account.move', { move_type: 'in_invoice', partner_id: 13, invoice_line_ids: [line({})] } as never) as number;
  const exempt = await odoo.create('account.move', { move_type: 'in_invoice', partner_id: 13, invoice_line_ids: [line({ tax_ids: [[6, 0, []]] })] } as never) as number;
  const customer = await odoo.create('account.move', { move_type: 'out_invoice', partner_id: 8, invoice_line_ids: [line({})] } as never) as number;
  const totals = await odoo.read('account.move', [taxed, exempt, customer], ['amount_total', 'amount_tax']);
  assert.deepEqual(totals.map((move) => move.amount_total), [115, 100, 100]);
  const loaded = await odoo.load('account.move', ['id', 'move_type', 'partner_id/.id', 'invoice_line_ids/product_id/.id', 'invoice_line_ids/name', 'invoice_line_ids/price_unit', 'invoice_line_ids/tax_ids/.id'],
    [['lifeline.bill_tax_1', 'in_invoice', '13', String(product), 'CMP', '100', ''], ['lifeline.bill_tax_2', 'in_invoice', '13', String(product), 'CMP', '100', String(await xmlid('account.1_purchase_tax_template'))]]);
  const loadedTotals = await odoo.read('account.move', loaded.ids as number[], ['amount_total']);
  assert.deepEqual(loadedTotals.map((move) => move.amount_total), [100, 115], 'an empty tax column means no taxes; a column with ids sets them');
});

test('tracked fields log a message with tracking values; a write that changes nothing logs none', async () => {
  const root = admin();
  try {
    const count = async (): Promise<[number, number]> => [await root.searchCount('mail.message', []), await root.searchCount('mail.tracking.value', [])];
    const moveId = await odoo.create('account.move', { move_type: 'in_invoice', partner_id: 13, ref: 'TRK-1', invoice_line_ids: [[0, 0, { name: 'x', quantity: 1, price_unit: 10, tax_ids: [[6, 0, []]] }]] }) as number;
    const afterCreate = await count();
    await odoo.write('account.move', [moveId], { ref: 'TRK-1', invoice_line_ids: [[5, 0, 0], [0, 0, { name: 'x', quantity: 1, price_unit: 10, tax_ids: [[6, 0, []]] }]] });
    assert.deepEqual(await count(), afterCreate, 'same values: no chatter');
    await odoo.write('account.move', [moveId], { ref: 'TRK-2', invoice_line_ids: [[5, 0, 0], [0, 0, { name: 'x', quantity: 1, price_unit: 12, tax_ids: [[6, 0, []]] }]] });
    const [messages, values] = await count();
    assert.equal(messages, afterCreate[0] + 1, 'one message for the write');
    assert.equal(values, afterCreate[1] + 2, 'ref and amount_total changed');
    const [message] = await root.searchRead('mail.message', [['model', '=', 'account.move'], ['res_id', '=', moveId]], { fields: ['tracking_value_ids', 'message_type'], limit: 1 });
    const tracking = await root.read('mail.tracking.value', message?.tracking_value_ids as number[], ['field_id', 'old_value_char', 'new_value_char', 'old_value_float', 'new_value_float']);
    assert.deepEqual(tracking.map((row) => (row.field_id as [number, string])[1]).sort(), ['amount_total', 'ref']);
    assert.ok(tracking.some((row) => row.old_value_char === 'TRK-1' && row.new_value_char === 'TRK-2'));
    assert.ok(tracking.some((row) => row.old_value_float === 10 && row.new_value_float === 12));
    await assert.rejects(odoo.searchCount('mail.tracking.value', []), /You are not allowed to access 'Mail Tracking Value'/, 'tracking values are for administrators');
  } finally {
    root.close();
  }
});

test('access rights follow groups: the integration user reads products but cannot create them; check_access_rights answers as Odoo', async () => {
  assert.ok(await odoo.searchCount('product.product', []) > 0);
  await assert.rejects(odoo.create('product.product', { name: 'Not mine' }),
    (error: Error) => /You are not allowed to create 'Product Variant' \(product\.product\) records\.\n\nThis operation is allowed for the following groups:\n\t- Sales \/ Administrator/.test(error.message));
  assert.equal(await odoo.callMethod('product.product', 'check_access_rights', ['create'], { raise_exception: false }), false);
  assert.equal(await odoo.callMethod('account.move', 'check_access_rights', ['write'], { raise_exception: false }), true);
  const auditor = new OdooClient({ url: simulator.url, database: simulator.database, username: 'auditor', password: 'auditor' });
  try {
    await assert.rejects(auditor.searchCount('stock.picking', []), /You are not allowed to access 'Transfer' \(stock\.picking\) records\.\n\nThis operation is allowed for the following groups:\n\t- Inventory \/ User/);
    const [model] = await odoo.searchRead('ir.model', [['model', '=', 'res.partner']], { fields: ['id'] });
    await assert.rejects(auditor.create('mail.activity', { res_model_id: model?.id as number, res_id: 7, summary: 'x' }), /You are not allowed to modify 'Contact' \(res\.partner\) records/,
      'an activity needs write access to its document');
  } finally {
    auditor.close();
  }
});

test('unique fields and external ids are index-backed: lookups cost the same at 0 and 20,000 records', async () => {
  const root = admin();
  try {
    const perRow = async (rows: number): Promise<number> => {
      const started = performance.now();
      const table = Array.from({ length: rows }, (_, index) => [`lifeline.scale_${simulator.store.table('res.partner').size}_${index}`, `Scale ${index}`, `SC-${simulator.store.table('res.partner').size}-${index}`]);
      await root.load('res.partner', ['id', 'name', 'ref'], table);
      return (performance.now() - started) / rows;
    };
    await perRow(200); // warm-up
    const empty = await perRow(500);
    for (let filled = 0; filled < 20_000; filled += 2_000) await perRow(2_000);
    const full = await perRow(500);
    assert.equal(await odoo.searchCount('res.partner', [['ref', 'in', ['SC-0-1', 'LAB-MAYO']]]), 1);
    // Generous: a scan per row would make this ~40x slower.
    assert.ok(full < empty * 4 + 1, `per-row ms: ${empty.toFixed(2)} empty, ${full.toFixed(2)} at 20,000 records`);
  } finally {
    root.close();
  }
});
