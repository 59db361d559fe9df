import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import type { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { odooSource, type OdooSourceConfig } from '../../../connectors/odoo/odoo-source.ts';
import type { OdooCursor } from '../../../connectors/odoo/odoo-cursor.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import type { Source, SourceBatch, SourceRecord } from '../../../src/component/component.ts';
import { simulatorConnection, testConnectorContext } from './odoo-test-context.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

// odoo_source driven directly (connect / produce / acknowledge) against the simulator: no Kafka.

let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

const PARTNER_FIELDS = ['name', 'ref', 'is_company', 'parent_id', 'email', 'active'];

function partnerSource(overrides: Partial<OdooSourceConfig> = {}): Source {
  return odooSource.create({ connection: 'main', model: 'res.partner', fields: PARTNER_FIELDS, poll_interval: '20ms', page_size: 7, ...overrides });
}

/** Produces and acknowledges until a pass ends with nothing new; returns every record and the last cursor. */
async function drain(source: Source, cursor?: unknown): Promise<{ records: SourceRecord[]; cursor: unknown }> {
  const records: SourceRecord[] = [];
  let lastCursor = cursor;
  for (let quiet = 0; quiet < 3;) {
    const batch: SourceBatch | undefined = await source.produce();
    if (!batch || batch.records.length === 0) {
      quiet++;
      if (batch?.cursor !== undefined) lastCursor = batch.cursor;
      continue;
    }
    quiet = 0;
    records.push(...batch.records);
    lastCursor = batch.cursor;
    await source.acknowledge(batch);
  }
  return { records, cursor: lastCursor };
}

test('the first run pages through every active record once, keyed <model>:<id>, many2one as {id, name}', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = partnerSource();
  await source.connect(context.source());
  const { records } = await drain(source);
  const expected = await odoo.search('res.partner', []);
  assert.deepEqual(records.map((record) => record.key).sort(), expected.map((id) => `res.partner:${id}`).sort());
  assert.equal(new Set(records.map((record) => record.key)).size, records.length, 'no duplicates across pages');
  const contact = records.find((record) => (record.value as { name: string }).name === 'Dana Whitfield');
  assert.ok(contact);
  const value = contact.value as Record<string, unknown>;
  assert.deepEqual(Object.keys(value).sort(), ['active', 'email', 'id', 'is_company', 'name', 'parent_id', 'ref', 'write_date'].sort());
  assert.deepEqual(value.parent_id, { id: (value.parent_id as { id: number }).id, name: 'Blue Cross Blue Shield of Illinois' });
  assert.equal(value.ref, null, 'false (empty) becomes null');
  assert.match(String(value.write_date), /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/);
  assert.match(contact.headers?.['lifeline.idempotency-key'] ?? '', /^res\.partner:\d+@.+#/);
  await source.close();
});

test('a record changed twice within one second is emitted twice; a restart from the cursor repeats nothing', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = partnerSource();
  await source.connect(context.source());
  let { cursor } = await drain(source);
  const [id] = await odoo.search('res.partner', [['ref', '=', 'LAB-MAYO']]);
  assert.ok(id);

  // Two writes in the same second (retry until the clock cooperates), with a poll between them.
  let first: SourceRecord[] = [];
  let second: SourceRecord[] = [];
  for (let attempt = 0; attempt < 10; attempt++) {
    await waitForSecondStart();
    await odoo.write('res.partner', [id], { email: `first-${attempt}@mayo.example` });
    const firstDrain = await drain(source, cursor);
    first = firstDrain.records;
    await odoo.write('res.partner', [id], { email: `second-${attempt}@mayo.example` });
    const secondDrain = await drain(source, firstDrain.cursor);
    second = secondDrain.records;
    cursor = secondDrain.cursor;
    const [a, b] = [first[0]?.value, second[0]?.value] as Array<{ write_date: string } | undefined>;
    if (a && b && a.write_date === b.write_date) break;
  }
  assert.equal(first.length, 1);
  assert.equal(second.length, 1);
  const [a, b] = [first[0]?.value, second[0]?.value] as Array<{ write_date: string; email: string }>;
  assert.equal(a?.write_date, b?.write_date, 'both versions carry the same (truncated) write_date');
  assert.match(String(b?.email), /^second-/);

  const restarted = partnerSource();
  const afterRestart = testConnectorContext(simulatorConnection(simulator));
  await restarted.connect(afterRestart.source(cursor));
  assert.deepEqual((await drain(restarted)).records, [], 'the overlap re-reads rows, the cursor recognises them');
  await odoo.write('res.partner', [id], { email: 'third@mayo.example' });
  const third = (await drain(restarted)).records;
  assert.deepEqual(third.map((record) => (record.value as { email: string }).email), ['third@mayo.example']);
  await source.close();
  await restarted.close();
});

test('a long transaction that commits rows older than the cursor is still read (overlap)', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = partnerSource({ overlap: '1m' });
  await source.connect(context.source());
  await drain(source);
  const [slowId, fastId] = await odoo.search('res.partner', [['ref', 'in', ['RX-CVS-SP', 'RX-OPTUM-HD']]], { order: 'id asc' });
  assert.ok(slowId && fastId);

  // Held long enough that the quick write and a drain finish first even on a loaded machine.
  simulator.control.setSlow(10_000, 'writes');
  const slowWrite = odoo.write('res.partner', [slowId], { email: 'long-transaction@cvs.example' });
  await sleep(1200);
  simulator.control.setSlow(0);
  await odoo.write('res.partner', [fastId], { email: 'quick@optum.example' });
  const early = (await drain(source)).records;
  assert.deepEqual(early.map((record) => record.key), [`res.partner:${fastId}`], 'the long transaction is not visible yet');
  await slowWrite;
  const late = (await drain(source)).records;
  assert.deepEqual(late.map((record) => record.key), [`res.partner:${slowId}`]);
  const lateValue = late[0]?.value as { write_date: string };
  const earlyValue = early[0]?.value as { write_date: string };
  assert.ok(lateValue.write_date < earlyValue.write_date, 'its write_date is older than what was already emitted');
  await source.close();
});

test('reconciliation emits a tombstone for a deleted and an archived record', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = partnerSource({ reconcile_interval: '10ms' });
  await source.connect(context.source());
  const doomed = await odoo.create('res.partner', [{ name: 'Temp Lab A', ref: 'TMP-A' }, { name: 'Temp Lab B', ref: 'TMP-B' }]);
  await drain(source);
  const [deleted, archived] = doomed as [number, number];
  await odoo.callMethod('res.partner', 'unlink', [[deleted]]);
  await odoo.write('res.partner', [archived], { active: false });
  await sleep(20);
  const { records, cursor } = await drain(source);
  const tombstones = records.filter((record) => record.value === null).map((record) => record.key).sort();
  assert.deepEqual(tombstones, [`res.partner:${deleted}`, `res.partner:${archived}`].sort());
  assert.ok(Array.isArray((cursor as OdooCursor).known), 'known ids travel in the cursor');
  await source.close();
});

test('money fields are exact minor units', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = odooSource.create({ connection: 'main', model: 'product.product', fields: ['name', 'default_code', 'list_price', 'standard_price'], money_fields: ['list_price', 'standard_price'], poll_interval: '20ms' });
  await source.connect(context.source());
  const { records } = await drain(source);
  const cmp = records.find((record) => (record.value as { default_code: string }).default_code === 'CPT-80053')?.value as { list_price: number };
  assert.equal(cmp.list_price, 1449);
  const moves = odooSource.create({ connection: 'main', model: 'account.move', fields: ['name', 'amount_total', 'currency_id', 'invoice_line_ids'], poll_interval: '20ms' });
  await moves.connect(context.source());
  const totals = (await drain(moves)).records.map((record) => record.value as { amount_total: number; currency_id: { name: string } });
  assert.ok(totals.every((value) => Number.isInteger(value.amount_total) && value.currency_id.name === 'USD'));
  await source.close();
  await moves.close();
});

test('while Odoo is unreachable the source backs off and reports down, then catches up', async () => {
  const context = testConnectorContext(simulatorConnection(simulator));
  const source = partnerSource({ max_backoff: '200ms' });
  await source.connect(context.source());
  await drain(source);
  simulator.control.setDown(true);
  const [id] = await odoo.search('res.partner', [['ref', '=', 'SUP-MEDLINE']]).catch(() => [] as number[]);
  const waiting = source.produce();
  // A bounded poll, not a fixed wait: the source reports down after its first failed attempts.
  for (const deadline = Date.now() + 20_000; context.health.at(-1)?.state !== 'down' && Date.now() < deadline;) await sleep(50);
  assert.equal(context.health.at(-1)?.state, 'down');
  assert.match(await context.registry.metrics(), /lifeline_odoo_reachable\{component="odoo_under_test"\} 0/);
  simulator.control.setDown(false);
  await waiting;
  assert.equal(context.health.at(-1)?.state, 'up');
  assert.ok(id === undefined || typeof id === 'number');
  await source.close();
});

/** Waits until the wall clock is early in a second, so two quick writes land in the same one. */
async function waitForSecondStart(): Promise<void> {
  while (Date.now() % 1000 > 150) await sleep(10);
}
