import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { tracebackSummary } from '../../../connectors/odoo/odoo-faults.ts';
import { assertSendable, parseOdooDatetime, shiftOdooDatetime, toOdooDatetime } from '../../../connectors/odoo/odoo-values.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { LifelineError, isRetriable } from '../../../src/errors.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

function client(overrides: Partial<ConstructorParameters<typeof OdooClient>[0]> = {}): OdooClient {
  return new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials, ...overrides });
}

async function failure(call: Promise<unknown>): Promise<LifelineError> {
  try {
    await call;
  } catch (error) {
    assert.ok(error instanceof LifelineError, `a LifelineError, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

test('version and authenticate with an API key; a wrong key is false → LL_ODOO_AUTH_FAILED, permanent', async () => {
  assert.equal((await odoo.version()).server_serie, '17.0');
  assert.equal(await odoo.authenticate(), 6);
  const wrong = client({ password: 'not-the-key' });
  const error = await failure(wrong.authenticate());
  assert.equal(error.code, 'LL_ODOO_AUTH_FAILED');
  assert.equal(isRetriable(error), false);
  assert.doesNotMatch(error.message, /not-the-key/, 'the key is never in the message');
  wrong.close();
});

test('Odoo\'s faults become error codes with the right retriable flag', async () => {
  const admin = client({ username: 'admin', password: 'admin' });
  const cases: Array<[string, () => Promise<unknown>, string, boolean, RegExp]> = [
    ['unknown model', () => odoo.searchRead('no.such.model', []), 'LL_ODOO_USER_ERROR', false, /Object no\.such\.model doesn't exist/],
    ['deleted record', () => odoo.write('res.partner', [987_654], { name: 'x' }), 'LL_ODOO_RECORD_MISSING', false, /Record does not exist or has been deleted/],
    ['unknown field', () => odoo.searchRead('res.partner', [['x_nope', '=', 1]]), 'LL_ODOO_FAULT', false, /ValueError: Invalid field 'x_nope'/],
    ['unknown method', () => odoo.callMethod('res.partner', 'frobnicate'), 'LL_ODOO_FAULT', false, /AttributeError/],
    ['private method', () => odoo.callMethod('res.partner', '_compute_display_name'), 'LL_ODOO_ACCESS_ERROR', false, /Private methods/],
    ['activity_schedule', () => odoo.callMethod('res.partner', 'activity_schedule', [[7]]), 'LL_ODOO_FAULT', false, /cannot marshal/],
    ['duplicate external id', () => admin.create('ir.model.data', { module: 'base', name: 'main_partner', model: 'res.partner', res_id: 1 }), 'LL_ODOO_USER_ERROR', false, /duplicate key value violates unique constraint/],
  ];
  for (const [name, call, code, retriable, text] of cases) {
    const error = await failure(call());
    assert.equal(error.code, code, name);
    assert.equal(isRetriable(error), retriable, `${name}: retriable`);
    assert.match(error.message, text, name);
  }
  admin.close();
  const auditor = client({ username: 'auditor', password: 'auditor' });
  const denied = await failure(auditor.write('res.partner', [7], { name: 'x' }));
  assert.equal(denied.code, 'LL_ODOO_ACCESS_ERROR');
  assert.match(denied.message, /You are not allowed to modify 'Contact' \(res\.partner\) records\.[\s\S]*\t- Extra Rights \/ Contact Creation/);
  auditor.close();
  // The integration user may not touch external ids directly (only through load).
  const direct = await failure(odoo.create('ir.model.data', { module: 'lifeline', name: 'direct', model: 'res.partner', res_id: 7 }));
  assert.equal(direct.code, 'LL_ODOO_ACCESS_ERROR');
  assert.match(direct.message, /You are not allowed to create 'Model Data' \(ir\.model\.data\) records\.\n\nNo group currently allows this operation\./);
  const revoked = client();
  await revoked.authenticate();
  (revoked as unknown as { options: { password: string } }).options.password = 'revoked-key';
  assert.equal((await failure(revoked.searchCount('res.partner', []))).code, 'LL_ODOO_ACCESS_DENIED');
  revoked.close();
});

test('network trouble, HTTP 5xx, conflicts and timeouts are retriable; a wrong URL is not', async () => {
  simulator.control.failNext(1, 'serialization');
  const conflict = await failure(odoo.searchCount('res.partner', []));
  assert.equal(conflict.code, 'LL_ODOO_CONFLICT');
  assert.ok(isRetriable(conflict));
  simulator.control.failNext(1, 'http_503');
  assert.equal((await failure(odoo.searchCount('res.partner', []))).code, 'LL_ODOO_UNAVAILABLE');
  simulator.control.failNext(1, 'reset');
  const reset = await failure(odoo.searchCount('res.partner', []));
  assert.equal(reset.code, 'LL_ODOO_UNAVAILABLE');
  assert.ok(isRetriable(reset));
  simulator.control.setSlow(500);
  const impatient = client({ timeoutMs: 100 });
  try {
    const timeout = await failure(impatient.searchCount('res.partner', []));
    assert.equal(timeout.code, 'LL_ODOO_UNAVAILABLE');
    assert.match(timeout.message, /no answer within 100 ms/);
  } finally {
    simulator.control.setSlow(0);
    impatient.close();
  }
  const lost = client({ url: `${simulator.url}/odoo` });
  const notFound = await failure(lost.version());
  assert.equal(notFound.code, 'LL_ODOO_PROTOCOL');
  assert.equal(isRetriable(notFound), false);
  lost.close();
  const closed = client({ url: 'http://127.0.0.1:1' });
  assert.equal((await failure(closed.version())).code, 'LL_ODOO_UNAVAILABLE');
  closed.close();
});

test('values: UTC datetime strings round-trip, JS Dates and 64-bit integers are refused before sending', async () => {
  const id = await odoo.create('sale.order', { partner_id: 7, date_order: '2026-03-01 23:30:05' });
  const [order] = await odoo.read('sale.order', [id], ['date_order', 'partner_id', 'client_order_ref', 'create_date', 'write_date']);
  assert.equal(order?.date_order, '2026-03-01 23:30:05');
  assert.deepEqual(order?.partner_id, [7, 'Medicare Part B (Novitas Solutions)']);
  assert.equal(order?.client_order_ref, false, 'empty is false');
  assert.equal(order?.create_date, order?.write_date, 'on create, create_date == write_date');
  const dateError = await failure(odoo.write('sale.order', [id], { date_order: new Date() as never }));
  assert.equal(dateError.code, 'LL_ODOO_VALUE_INVALID');
  assert.match(dateError.message, /JS Date/);
  assert.equal((await failure(odoo.write('sale.order', [id], { note: 2 ** 31 }))).code, 'LL_ODOO_VALUE_INVALID');
  assert.doesNotThrow(() => assertSendable({ amount: 2 ** 31 - 1, price: 1e12 + 0.5, when: toOdooDatetime(Date.UTC(2026, 0, 2, 3, 4, 5)) }));
  assert.equal(toOdooDatetime(Date.UTC(2026, 0, 2, 3, 4, 5)), '2026-01-02 03:04:05');
  assert.equal(parseOdooDatetime('2026-01-02 03:04:05'), Date.UTC(2026, 0, 2, 3, 4, 5));
  assert.equal(shiftOdooDatetime('2026-01-01 00:00:30', -60), '2025-12-31 23:59:30');
  assert.deepEqual(await odoo.read('sale.order', [987_654]), [], 'read of a deleted id: nothing, no fault');
  const ids = await odoo.create('res.partner', [{ name: 'Batch A' }, { name: 'Batch B' }, { name: 'Batch C' }]);
  const stamped = await odoo.read('res.partner', ids, ['write_date']);
  assert.equal(new Set(stamped.map((row) => row.write_date)).size, 1, 'a list create stamps one write_date');
  assert.equal(tracebackSummary('Traceback (most recent call last):\n  File "x", line 1\nValueError: boom\n'), 'ValueError: boom');
});
