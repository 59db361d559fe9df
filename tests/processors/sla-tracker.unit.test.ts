import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { slaTracker, type SlaEvent } from '../../processors/sla-tracker.ts';
import { compileContract, type AvroContract } from '../../src/kafka/avro-contract.ts';
import { TopologyTestDriver } from '../../src/testing/topology-test-driver.ts';

// The sla tracker on the topology test driver: both hops of its repartition, its timer and its
// metrics, in memory and on a clock the test moves. The broker tests (sla-tracker.test.ts) prove
// the same against Kafka, where time cannot be chosen.

const CHARGE_SCHEMA = resolve('tests/fixtures/schemas/sla_charge_received.avsc');
const INVOICE_SCHEMA = resolve('tests/fixtures/schemas/sla_invoice_update.avsc');
const SLA_EVENT_SCHEMA = resolve('schemas/ops/sla_event.avsc');
const LABEL = 'sla_in_memory';
const MINUTE = 60_000;
const T0 = Date.parse('2026-01-05T08:00:00Z');
const OWNER = 'billing.clerk';
const REPARTITION = `_lifeline.lifeline.${LABEL}.by_transaction.repartition`;

function slaConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    check_interval: '1s',
    settle_window: '1h',
    flows: {
      charge_to_invoice: {
        start: { topic: 'charges', key_path: 'charge_id', time_path: 'received_at' },
        milestones: [{ name: 'drafted', topic: 'drafts', key_path: 'charge_id' }],
        end: { topic: 'invoices', key_path: 'charge_id', status_path: 'status', success_values: ['posted'] },
        warn_after: '10m', breach_after: '15m', owner_path: 'owner_login',
      },
      invoice_to_payment: {
        start: { topic: 'invoices', key_path: 'invoice_id' },
        end: { topic: 'payments', key_path: 'invoice_id' },
        warn_after: '1h', breach_after: '2h',
      },
      ...overrides,
    },
  };
}

function slaDriver(options: { partitions?: number; chargeSchema?: string | AvroContract } = {}): Promise<TopologyTestDriver> {
  const partitions = options.partitions ?? 1;
  return TopologyTestDriver.forProcessor(slaTracker, {
    label: LABEL,
    config: slaConfig(),
    topics: {
      charges: { schema: options.chargeSchema ?? CHARGE_SCHEMA, partitions },
      drafts: { schema: INVOICE_SCHEMA, partitions },
      invoices: { schema: INVOICE_SCHEMA, partitions },
      payments: { schema: INVOICE_SCHEMA, partitions },
      'ops.sla.v1': { schema: SLA_EVENT_SCHEMA, partitions },
      'ops.sla_breaches.v1': { schema: SLA_EVENT_SCHEMA, partitions },
    },
    inputs: ['charges', 'drafts', 'invoices', 'payments'],
    outputs: { events: 'ops.sla.v1', breaches: 'ops.sla_breaches.v1' },
    startTime: T0,
  });
}

const invoiceId = (chargeId: string): string => `INV-${chargeId}`;
const charge = (chargeId: string, receivedAt: number, timestamp = receivedAt) => ({
  key: chargeId, timestamp, headers: { 'lifeline.correlation-id': 'corr-1' },
  value: { charge_id: chargeId, patient_mrn: 'MRN-4711', received_at: receivedAt, owner_login: OWNER },
});
const invoice = (chargeId: string, status: string, timestamp: number) => ({
  key: invoiceId(chargeId), timestamp, headers: { 'lifeline.correlation-id': 'corr-1' },
  value: { invoice_id: invoiceId(chargeId), charge_id: chargeId, status },
});
const kinds = (events: readonly SlaEvent[]): string[] => events.map((event) => `${event.flow}:${event.transaction_key}:${event.event_type}`);

test('sla driver: an early end and milestone wait for their start; repeats are ignored; one record, two flows', async () => {
  const driver = await slaDriver();
  const events = driver.output<SlaEvent>('ops.sla.v1');
  const sent = driver.output(REPARTITION);

  // The invoice is written before the charge is seen: it ends one flow (by charge id) and starts another (by invoice id).
  await driver.input('invoices').pipe(invoice('C1', 'posted', T0 + 5 * MINUTE));
  assert.deepEqual(kinds(events.readValues()), ['invoice_to_payment:INV-C1:started']);
  assert.deepEqual(sent.readKeyValues().map(([key]) => key), ['C1', 'INV-C1'], 'one copy per transaction key the record names');
  await driver.input('drafts').pipe(invoice('C1', 'draft', T0 + 2 * MINUTE));
  assert.deepEqual(events.readValues(), []);
  await driver.input('charges').pipe(charge('C1', T0));
  const completed = events.readValues();
  assert.deepEqual(kinds(completed), ['charge_to_invoice:C1:started', 'charge_to_invoice:C1:milestone', 'charge_to_invoice:C1:completed']);
  assert.equal(completed[1]?.latency_ms, 2 * MINUTE);
  assert.equal(completed[2]?.latency_ms, 5 * MINUTE);
  assert.equal(completed[2]?.owner, OWNER);
  assert.equal(completed[2]?.correlation_id, 'corr-1');

  // A replayed charge, a repeated invoice, a late milestone: the finished transaction does not reopen.
  await driver.input('charges').pipe(charge('C1', T0 + 30 * MINUTE));
  await driver.input('invoices').pipe(invoice('C1', 'posted', T0 + 31 * MINUTE));
  await driver.input('drafts').pipe(invoice('C1', 'draft', T0 + 32 * MINUTE));
  assert.deepEqual(events.readValues(), []);
  assert.equal((await driver.processorEvents(LABEL)).sla_repeat_ignored, 4);

  // A failed write is not an end; neither is sent on by charge id.
  sent.readRecords();
  await driver.input('invoices').pipe(invoice('C2', 'failed', T0));
  assert.deepEqual(kinds(events.readValues()), ['invoice_to_payment:INV-C2:started']);
  assert.deepEqual(sent.readKeyValues().map(([key]) => key), ['INV-C2']);
  assert.equal((await driver.processorEvents(LABEL)).sla_end_not_successful, 1);
  assert.deepEqual(driver.deadLetters(), []);
  await driver.close();
});

test('sla driver: the timer warns and breaches once each; a late end completes late; gauges sum over partitions', async () => {
  const driver = await slaDriver({ partitions: 2 });
  const events = driver.output<SlaEvent>('ops.sla.v1');
  await driver.input('charges').pipeAll([charge('C3', T0), charge('C4', T0 + MINUTE)]);
  assert.deepEqual(kinds(events.readValues()), ['charge_to_invoice:C3:started', 'charge_to_invoice:C4:started']);
  assert.equal(driver.store(LABEL, 'transactions').size, 2);

  const advanceTo = async (time: number): Promise<string[]> => {
    await driver.advanceWallClockTime(time - driver.now());
    return kinds(events.readValues()).filter((kind) => kind.includes(':C3:'));
  };
  assert.deepEqual(await advanceTo(T0 + 9 * MINUTE), []);
  assert.deepEqual(await advanceTo(T0 + 10 * MINUTE), ['charge_to_invoice:C3:warning']);
  assert.deepEqual(await advanceTo(T0 + 12 * MINUTE), []);
  assert.deepEqual(await advanceTo(T0 + 15 * MINUTE), ['charge_to_invoice:C3:breached']);
  assert.deepEqual(kinds(driver.output<SlaEvent>('ops.sla_breaches.v1').readValues()), ['charge_to_invoice:C3:breached'], 'the breaches output gets the breach alone');
  assert.deepEqual(await advanceTo(T0 + 40 * MINUTE), []);
  const metrics = await driver.metricsText();
  assert.match(metrics, /lifeline_sla_open_transactions\{component="sla_in_memory",flow="charge_to_invoice"\} 2/, 'summed over the partitions');
  assert.match(metrics, /lifeline_sla_oldest_open_age_seconds\{component="sla_in_memory",flow="charge_to_invoice"\} 2400/);
  assert.match(metrics, /lifeline_sla_breaches_total\{component="sla_in_memory",flow="charge_to_invoice"\} 2/);

  await driver.input('invoices').pipe(invoice('C3', 'posted', T0 + 16 * MINUTE));
  const late = events.readValues().filter((event) => event.flow === 'charge_to_invoice');
  assert.deepEqual(kinds(late), ['charge_to_invoice:C3:completed_late']);
  assert.equal(late[0]?.latency_ms, 16 * MINUTE);

  await driver.advanceWallClockTime(1000); // the next check publishes the gauges
  assert.match(await driver.metricsText(), /lifeline_sla_open_transactions\{component="sla_in_memory",flow="charge_to_invoice"\} 1/, 'C4 alone is open');

  // A rebalance takes C4's partition away: its open transaction no longer counts here.
  const c4Partition = events.allRecords().find((record) => record.value.transaction_key === 'C4')?.partition as number;
  await driver.revokePartition(LABEL, c4Partition);
  assert.match(await driver.metricsText(), /lifeline_sla_open_transactions\{component="sla_in_memory",flow="charge_to_invoice"\} 0/, 'a closed partition no longer counts');
  await driver.close();
});

test('sla driver: records the tracker cannot read are dead-lettered with their bytes, the error naming no value', async () => {
  // A looser contract than production's, so that records without a key or with a bad time can reach the tracker.
  const loose = compileContract({
    type: 'record', name: 'LooseCharge', namespace: 'lifeline.test', fields: [
      { name: 'charge_id', type: ['null', 'string'], default: null },
      { name: 'patient_mrn', type: 'string', phi: true },
      { name: 'received_at', type: ['null', 'string'], default: null },
    ],
  });
  const driver = await slaDriver({ chargeSchema: loose });
  await driver.input('charges').pipeAll([
    { key: 'k1', value: { charge_id: null, patient_mrn: 'MRN-4711', received_at: null } },
    { key: 'C5', value: { charge_id: 'C5', patient_mrn: 'MRN-4711', received_at: 'MRN-4711 was here' } },
  ]);
  const [missingKey, badTime, ...rest] = driver.deadLetters(LABEL);
  assert.equal(rest.length, 0);
  assert.match(missingKey?.errorMessage ?? '', /no transaction key \(charge_to_invoice\.start: charge_id\)/);
  assert.deepEqual(missingKey?.value, { charge_id: null, patient_mrn: 'MRN-4711', received_at: null }, 'the raw bytes are kept');
  assert.match(badTime?.errorMessage ?? '', /received_at of the charge_to_invoice start event on charges is not a time/);
  assert.doesNotMatch(badTime?.errorMessage ?? '', /MRN|C5/);
  assert.equal(badTime?.origin.topic, 'charges');
  assert.equal(badTime?.headers['lifeline.error.component'], LABEL);
  assert.deepEqual(driver.output('ops.sla.v1').readValues(), []);
  await driver.close();
});

test('sla config: flows the tracker cannot run are refused, naming the flow and the key', async () => {
  const refused = async (flows: Record<string, unknown>, pattern: RegExp): Promise<void> => {
    const config = slaConfig(flows) as Parameters<typeof slaTracker.create>[0];
    assert.throws(() => slaTracker.repartitions?.(config), (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'LL_CONFIG_INVALID');
      assert.match((error as Error).message, pattern);
      return true;
    });
  };
  const flow = { start: { topic: 'a', key_path: 'id' }, end: { topic: 'b', key_path: 'id' }, warn_after: '20m', breach_after: '15m' };
  await refused({ slow: flow }, /flows\.slow\.warn_after \(20m\) must be shorter than breach_after \(15m\)/);
  await refused({ 'Charge-Flow': { ...flow, warn_after: '5m' } }, /flow name "Charge-Flow" must be snake_case/);
  await refused({ half: { ...flow, warn_after: '5m', end: { topic: 'b', key_path: 'id', status_path: 'status' } } }, /flows\.half\.end: status_path and success_values go together/);
  await refused({ same: { ...flow, warn_after: '5m', end: { topic: 'a', key_path: 'id' } } }, /flows\.same: start and end read the same topic a/);
  assert.deepEqual(slaTracker.repartitions?.(slaConfig() as Parameters<typeof slaTracker.create>[0]), ['by_transaction']);
});

test('sla driver: a milestone after its end is recorded on the finished transaction, once; the timer reads only what is due', async () => {
  const driver = await slaDriver();
  const events = driver.output<SlaEvent>('ops.sla.v1');
  await driver.input('charges').pipe(charge('C9', T0));
  await driver.input('invoices').pipe(invoice('C9', 'posted', T0 + MINUTE));
  assert.ok(kinds(events.readValues()).includes('charge_to_invoice:C9:completed'));
  // The drafts topic lags the invoices topic: its milestone arrives after the end.
  await driver.input('drafts').pipe(invoice('C9', 'draft', T0 + 30_000));
  const late = events.readValues();
  assert.deepEqual(kinds(late), ['charge_to_invoice:C9:milestone']);
  assert.equal(late[0]?.milestone, 'drafted');
  assert.equal(late[0]?.latency_ms, 30_000, 'measured from the start, at the milestone\'s own time');
  await driver.input('drafts').pipe(invoice('C9', 'draft', T0 + 40_000));
  assert.deepEqual(events.readValues(), [], 'a repeat is ignored');
  assert.equal(driver.store(LABEL, 'transactions').size, 1, 'only the second flow\'s transaction is open: the finished one lives in its own store');
  assert.equal(driver.store(LABEL, 'finished').size, 1);
  await driver.advanceWallClockTime(90 * MINUTE);
  assert.equal(driver.store(LABEL, 'finished').size, 0, 'finished markers expire after settle_window');
  assert.deepEqual(kinds(events.readValues()), ['invoice_to_payment:INV-C9:warning'], 'only the open transaction came due');
  await driver.close();
});

test('sla driver: while the tracker reads a backlog of old inputs, deadlines follow the inputs\' time, not the wall clock', async () => {
  const driver = await slaDriver();
  const events = driver.output<SlaEvent>('ops.sla.v1');
  // The tracker was down for 20 minutes: the charge and its invoice wait in the backlog.
  await driver.advanceWallClockTime(20 * MINUTE);
  await driver.input('charges').pipe(charge('C7', T0));
  await driver.advanceWallClockTime(1000); // a tick while catching up: 20 min after the charge on the wall clock
  assert.deepEqual(kinds(events.readValues()), ['charge_to_invoice:C7:started'], 'no warning, no breach caused by the tracker\'s own lag');
  await driver.input('invoices').pipe(invoice('C7', 'posted', T0 + 2 * MINUTE));
  assert.deepEqual(kinds(events.readValues()), ['charge_to_invoice:C7:completed', 'invoice_to_payment:INV-C7:started']);
  // Caught up and idle: the wall clock rules again, and the open invoice flow warns on it.
  await driver.advanceWallClockTime(60 * MINUTE);
  assert.deepEqual(kinds(events.readValues()), ['invoice_to_payment:INV-C7:warning']);
  await driver.close();
});
