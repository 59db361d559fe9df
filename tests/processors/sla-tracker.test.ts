import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { slaTracker, type SlaEvent, type SlaEventType } from '../../processors/sla-tracker.ts';
import type { AvroSerde } from '../../src/kafka/avro-serde.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { ComponentRegistry } from '../../src/component/component-registry.ts';
import type { InputRecord, KeyValueStore, OutputRecord, Processor, ProcessorContext, ReferenceTableView } from '../../src/component/component.ts';
import { LifelineRuntime } from '../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../../testing/harness.ts';
import { TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';

const CHARGE_SCHEMA = resolve('tests/fixtures/schemas/sla_charge_received.avsc');
const INVOICE_SCHEMA = resolve('tests/fixtures/schemas/sla_invoice_update.avsc');
const SLA_EVENT_SCHEMA = resolve('schemas/ops/sla_event.avsc');
const PARTITIONS = 3;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface SlaTopicNames {
  /** Charges, keyed by charge id: the start of charge_to_invoice. */
  readonly charges: string;
  /** Invoice drafts, keyed by invoice id (charge id in a field): a milestone. */
  readonly drafts: string;
  /** Invoice write results, keyed by invoice id: end of charge_to_invoice, start of invoice_to_payment. */
  readonly invoices: string;
  /** Payments, keyed by invoice id: end of invoice_to_payment. */
  readonly payments: string;
  readonly events: string;
}

interface SlaTopology {
  readonly file: string;
  readonly label: string;
  readonly topics: SlaTopicNames;
}

/**
 * In memory first: the tracker driven through a stand-in context (both hops of the repartition,
 * the timer called with a chosen clock), for the cases that are slow or racy on a broker.
 */
class InMemoryContext implements ProcessorContext {
  readonly label = 'sla_in_memory';
  readonly logger = createLogger({ level: 'error' });
  readonly events: SlaEvent[] = [];
  readonly breaches: SlaEvent[] = [];
  readonly repartitioned: string[] = [];
  readonly counts = new Map<string, number>();
  checkDeadlines: ((now: number) => Promise<void> | void) | undefined;
  private readonly state = new Map<string, unknown>();

  constructor(readonly partition = 0, readonly metricsRegistry?: Registry) {}

  store<V>(): KeyValueStore<V> {
    const state = this.state;
    return {
      get: (key) => state.get(key) as V | undefined,
      put: (key, value) => { state.set(key, value); },
      delete: (key) => { state.delete(key); },
      entries: () => [...state.entries()] as Array<[string, V]>,
    };
  }

  forward<V>(output: string, record: OutputRecord<V>): void {
    (output === 'breaches' ? this.breaches : this.events).push(record.value as SlaEvent);
  }

  schedule(_intervalMs: number, callback: (now: number) => Promise<void> | void): void {
    this.checkDeadlines = callback;
  }

  table<V>(): ReferenceTableView<V> {
    throw new Error('sla reads no tables');
  }

  repartition(_name: string, key: string): void {
    this.repartitioned.push(key);
  }

  deadLetter(): void {
    throw new Error('sla dead-letters by throwing from process()');
  }

  hasOutput(): boolean {
    return true;
  }

  count(event: string, n = 1): void {
    this.counts.set(event, (this.counts.get(event) ?? 0) + n);
  }

  /** Both hops: the record as read, then each repartitioned copy as it comes back keyed by transaction. */
  async deliver(tracker: Processor, record: InputRecord): Promise<SlaEvent[]> {
    const eventsBefore = this.events.length;
    const sentBefore = this.repartitioned.length;
    await tracker.process(record, this);
    for (const key of this.repartitioned.slice(sentBefore)) await tracker.process({ ...record, key, via: 'by_transaction' }, this);
    return this.events.slice(eventsBefore);
  }
}

const MINUTE = 60_000;
const T0 = Date.parse('2026-01-05T08:00:00Z');

function inMemoryConfig(overrides: Record<string, unknown> = {}): Parameters<typeof slaTracker.create>[0] {
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

function inputRecord(topic: string, value: Record<string, unknown> | null, timestamp = T0): InputRecord {
  return { topic, partition: 0, offset: '0', timestamp, key: 'as-produced', value, headers: { 'lifeline.correlation-id': 'corr-1' }, rawValue: null };
}

const chargeValue = (chargeId: string, receivedAt: number): Record<string, unknown> => ({ charge_id: chargeId, patient_mrn: 'MRN-4711', received_at: receivedAt, owner_login: OWNER });
const invoiceValue = (chargeId: string, status: string): Record<string, unknown> => ({ invoice_id: invoiceId(chargeId), charge_id: chargeId, status });
const kinds = (events: readonly SlaEvent[]): string[] => events.map((event) => `${event.flow}:${event.transaction_key}:${event.event_type}`);

test('sla config: flows the tracker cannot run are refused, naming the flow and the key', () => {
  const refused = (flows: Record<string, unknown>, pattern: RegExp): void => {
    assert.throws(() => slaTracker.repartitions?.(inMemoryConfig(flows)), (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'LL_CONFIG_INVALID');
      assert.match((error as Error).message, pattern);
      return true;
    });
  };
  const flow = { start: { topic: 'a', key_path: 'id' }, end: { topic: 'b', key_path: 'id' }, warn_after: '20m', breach_after: '15m' };
  refused({ slow: flow }, /flows\.slow\.warn_after \(20m\) must be shorter than breach_after \(15m\)/);
  refused({ 'Charge-Flow': { ...flow, warn_after: '5m' } }, /flow name "Charge-Flow" must be snake_case/);
  refused({ half: { ...flow, warn_after: '5m', end: { topic: 'b', key_path: 'id', status_path: 'status' } } }, /flows\.half\.end: status_path and success_values go together/);
  refused({ same: { ...flow, warn_after: '5m', end: { topic: 'a', key_path: 'id' } } }, /flows\.same: start and end read the same topic a/);
  assert.deepEqual(slaTracker.repartitions?.(inMemoryConfig()), ['by_transaction']);
});

test('sla in memory: an early end and milestone wait for their start; repeats are ignored; one record, two flows', async () => {
  const context = new InMemoryContext();
  const tracker = slaTracker.create(inMemoryConfig());
  await tracker.init?.(context);

  // The invoice is written before the charge is seen: it ends one flow (by charge id) and starts another (by invoice id).
  assert.deepEqual(kinds(await context.deliver(tracker, inputRecord('invoices', invoiceValue('C1', 'posted'), T0 + 5 * MINUTE))), ['invoice_to_payment:INV-C1:started']);
  assert.deepEqual(context.repartitioned, ['C1', 'INV-C1'], 'one copy per transaction key the record names');
  assert.deepEqual(await context.deliver(tracker, inputRecord('drafts', invoiceValue('C1', 'draft'), T0 + 2 * MINUTE)), []);
  const completed = await context.deliver(tracker, inputRecord('charges', chargeValue('C1', T0)));
  assert.deepEqual(kinds(completed), ['charge_to_invoice:C1:started', 'charge_to_invoice:C1:milestone', 'charge_to_invoice:C1:completed']);
  assert.equal(completed[1]?.latency_ms, 2 * MINUTE);
  assert.equal(completed[2]?.latency_ms, 5 * MINUTE);
  assert.equal(completed[2]?.owner, OWNER);
  assert.equal(completed[2]?.correlation_id, 'corr-1');

  // A replayed charge, a repeated invoice, a late milestone: the finished transaction does not reopen.
  assert.deepEqual(await context.deliver(tracker, inputRecord('charges', chargeValue('C1', T0 + 30 * MINUTE))), []);
  assert.deepEqual(await context.deliver(tracker, inputRecord('invoices', invoiceValue('C1', 'posted'), T0 + 31 * MINUTE)), []);
  assert.deepEqual(await context.deliver(tracker, inputRecord('drafts', invoiceValue('C1', 'draft'), T0 + 32 * MINUTE)), []);
  assert.equal(context.counts.get('sla_repeat_ignored'), 4);

  // A failed write is not an end; a tombstone starts nothing; neither is sent on.
  const sent = context.repartitioned.length;
  assert.deepEqual(kinds(await context.deliver(tracker, inputRecord('invoices', invoiceValue('C2', 'failed')))), ['invoice_to_payment:INV-C2:started']);
  assert.deepEqual(context.repartitioned.slice(sent), ['INV-C2']);
  assert.deepEqual(await context.deliver(tracker, inputRecord('charges', null)), []);
  assert.equal(context.counts.get('sla_end_not_successful'), 1);
  assert.equal(context.counts.get('sla_tombstone_ignored'), 1);
});

test('sla in memory: the timer warns and breaches once each; a late end completes late; bad records are refused without their values', async () => {
  const registry = new Registry();
  const partitions = [new InMemoryContext(0, registry), new InMemoryContext(1, registry)];
  const trackers = partitions.map(() => slaTracker.create(inMemoryConfig()));
  for (const [index, tracker] of trackers.entries()) await tracker.init?.(partitions[index] as InMemoryContext); // shared registry: registered once
  const [context, other] = partitions as [InMemoryContext, InMemoryContext];
  const [tracker, otherTracker] = trackers as [Processor, Processor];
  await context.deliver(tracker, inputRecord('charges', chargeValue('C3', T0)));
  await other.deliver(otherTracker, inputRecord('charges', chargeValue('C4', T0 + MINUTE)));

  const check = async (now: number): Promise<string[]> => {
    const before = context.events.length;
    await context.checkDeadlines?.(now);
    await other.checkDeadlines?.(now);
    return kinds(context.events.slice(before));
  };
  assert.deepEqual(await check(T0 + 9 * MINUTE), []);
  assert.deepEqual(await check(T0 + 10 * MINUTE), ['charge_to_invoice:C3:warning']);
  assert.deepEqual(await check(T0 + 12 * MINUTE), []);
  assert.deepEqual(await check(T0 + 15 * MINUTE), ['charge_to_invoice:C3:breached']);
  assert.deepEqual(kinds([...context.breaches, ...other.breaches]), ['charge_to_invoice:C3:breached'], 'the breaches output gets the breach alone');
  assert.deepEqual(await check(T0 + 40 * MINUTE), []);
  const metrics = await registry.metrics();
  assert.match(metrics, /lifeline_sla_open_transactions\{component="sla_in_memory",flow="charge_to_invoice"\} 2/, 'summed over the partitions');
  assert.match(metrics, /lifeline_sla_oldest_open_age_seconds\{component="sla_in_memory",flow="charge_to_invoice"\} 2400/);
  assert.match(metrics, /lifeline_sla_breaches_total\{component="sla_in_memory",flow="charge_to_invoice"\} 2/);

  const late = await context.deliver(tracker, inputRecord('invoices', invoiceValue('C3', 'posted'), T0 + 16 * MINUTE));
  assert.deepEqual(kinds(late).filter((kind) => kind.startsWith('charge_to_invoice')), ['charge_to_invoice:C3:completed_late']);
  assert.equal(late[0]?.latency_ms, 16 * MINUTE);
  await tracker.close?.();
  assert.match(await registry.metrics(), /lifeline_sla_open_transactions\{component="sla_in_memory",flow="charge_to_invoice"\} 1/, 'a closed partition no longer counts');

  await assert.rejects(async () => context.deliver(tracker, inputRecord('charges', { patient_mrn: 'MRN-4711' })), /no transaction key \(charge_to_invoice\.start: charge_id\)/);
  await assert.rejects(async () => context.deliver(tracker, inputRecord('charges', chargeValue('C5', Number.NaN))), (error: unknown) => {
    assert.match((error as Error).message, /received_at of the charge_to_invoice start event on charges is not a time/);
    assert.doesNotMatch((error as Error).message, /MRN|C5/);
    return true;
  });
});

/** A topology.yaml in a temp dir with the sla processor reading `inputs` under `config`. */
async function writeSlaTopology(options: {
  store: 'memory' | 'lmdb';
  inputs: (topics: SlaTopicNames) => string[];
  config: (topics: SlaTopicNames) => Record<string, unknown>;
}): Promise<SlaTopology> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-sla-'));
  const topics: SlaTopicNames = {
    charges: uniqueTopic('test', 'sla_charge', 'received'),
    drafts: uniqueTopic('test', 'sla_invoice', 'drafted'),
    invoices: uniqueTopic('test', 'sla_invoice', 'written'),
    payments: uniqueTopic('test', 'sla_payment', 'received'),
    events: uniqueTopic('ops', 'sla', 'tracked'),
  };
  const topic = (name: string, schema: string, key: string, classification: string): string =>
    `  ${name}: { key: ${key}, value_schema: ${JSON.stringify(schema)}, partitions: ${PARTITIONS}, retention: 1d, owner: tests, description: sla test topic, classification: ${classification} }`;
  // Dead-letter topics are named by label alone, so each test has its own.
  const label = `sla_tracker_${randomBytes(4).toString('hex')}`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, [
    'version: 1',
    `app_id: ${uniqueName('app').replace(/\./g, '_')}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-test }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    'runtime:',
    '  http_port: 0',
    `  state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    `  store: ${options.store}`,
    '  commit_max_records: 200',
    '  commit_interval: 100ms',
    '  log_level: warn',
    'topics:',
    topic(topics.charges, CHARGE_SCHEMA, 'charge id', 'phi'),
    topic(topics.drafts, INVOICE_SCHEMA, 'invoice id', 'internal'),
    topic(topics.invoices, INVOICE_SCHEMA, 'invoice id', 'internal'),
    topic(topics.payments, INVOICE_SCHEMA, 'invoice id', 'internal'),
    topic(topics.events, SLA_EVENT_SCHEMA, '<flow>:<transaction key>', 'internal'),
    'processors:',
    `  ${label}:`,
    '    type: sla',
    `    inputs: [${options.inputs(topics).join(', ')}]`,
    `    outputs: { events: ${topics.events} }`,
    // YAML is a superset of JSON: the config is written as one JSON mapping.
    `    config: ${JSON.stringify(options.config(topics))}`,
    '',
  ].join('\n'));
  return { file, label, topics };
}

async function startRuntime(topology: SlaTopology): Promise<LifelineRuntime> {
  const registry = new ComponentRegistry([slaTracker]);
  const runtime = new LifelineRuntime({
    topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000,
  });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  return runtime;
}

interface TestRecord {
  readonly key: string;
  readonly value: Record<string, unknown>;
  readonly headers?: Record<string, string>;
}

/** Sends Avro records (the schemas are registered by the runtime's start). */
function sender(producer: Producer, serde: AvroSerde): (topic: string, records: readonly TestRecord[]) => Promise<void> {
  return async (topic, records) => {
    const messages = await Promise.all(records.map(async (record) => ({
      key: record.key, value: await serde.encode(topic, record.value), ...(record.headers ? { headers: record.headers } : {}),
    })));
    await producer.send({ topic, messages, acks: -1 });
  };
}

const OWNER = 'billing.clerk';
const charge = (chargeId: string, receivedAt: number = Date.now()): TestRecord => ({
  key: chargeId,
  value: { charge_id: chargeId, patient_mrn: `MRN-${chargeId.length * 7919}`, received_at: receivedAt, owner_login: OWNER },
  headers: { 'lifeline.correlation-id': `corr-${chargeId}` },
});
const invoiceId = (chargeId: string): string => `INV-${chargeId}`;
const invoiceStep = (chargeId: string, status: string): TestRecord => ({
  key: invoiceId(chargeId), value: { invoice_id: invoiceId(chargeId), charge_id: chargeId, status },
});
const ids = (kind: string, count: number): string[] => Array.from({ length: count }, (_, index) => `CHG-${kind}-${index}`);

/** The event types of one transaction, in the order they were emitted (one partition per transaction). */
function typesOf(events: readonly SlaEvent[], flow: string, key: string): SlaEventType[] {
  return events.filter((event) => event.flow === flow && event.transaction_key === key).map((event) => event.event_type);
}

function eventOf(events: readonly SlaEvent[], flow: string, key: string, type: SlaEventType): SlaEvent {
  const found = events.find((event) => event.flow === flow && event.transaction_key === key && event.event_type === type);
  assert.ok(found, `${flow} ${key}: no ${type} event`);
  return found;
}

/** The value of one series in Prometheus text, found by its labels in any order. */
function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  const pairs = Object.entries(labels).map(([label, value]) => `${label}="${value}"`);
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${name}{`) && pairs.every((pair) => candidate.includes(pair)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

function assertNoRepeats(events: readonly SlaEvent[]): void {
  const seen = new Map<string, number>();
  for (const event of events) {
    const identity = `${event.flow}|${event.transaction_key}|${event.event_type}|${event.milestone ?? ''}`;
    seen.set(identity, (seen.get(identity) ?? 0) + 1);
  }
  const repeated = [...seen].filter(([, count]) => count > 1).map(([identity]) => identity);
  assert.deepEqual(repeated, [], 'every event kind at most once per transaction');
}

async function waitUntil(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

test('sla: start and end keyed differently meet by transaction; completed, late, breached, milestones, early ends; once each; metrics', { timeout: 90_000 }, async () => {
  const WARN_MS = 2000;
  const BREACH_MS = 3000;
  const topology = await writeSlaTopology({
    store: 'memory',
    inputs: (topics) => [topics.charges, topics.drafts, topics.invoices, topics.payments],
    config: (topics) => ({
      check_interval: '200ms',
      flows: {
        charge_to_invoice: {
          start: { topic: topics.charges, key_path: 'charge_id', time_path: 'received_at' },
          milestones: [{ name: 'drafted', topic: topics.drafts, key_path: 'charge_id' }],
          end: { topic: topics.invoices, key_path: 'charge_id', status_path: 'status', success_values: ['posted'] },
          warn_after: `${WARN_MS}ms`, breach_after: `${BREACH_MS}ms`, owner_path: 'owner_login',
        },
        // The invoice topic ends the first flow and starts this one, keyed differently (by invoice id).
        invoice_to_payment: {
          start: { topic: topics.invoices, key_path: 'invoice_id' },
          end: { topic: topics.payments, key_path: 'invoice_id' },
          warn_after: '30s', breach_after: '60s',
        },
      },
    }),
  });
  const runtime = await startRuntime(topology);
  const { topics } = topology;
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const collector = await new TopicCollector<SlaEvent>(kafka, topics.events, serde).start();
  cleanups.push(() => collector.stop());
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const send = sender(producer, serde);

  const fast = ids('fast', 10);     // drafted, then posted well within warn_after
  const early = ids('early', 3);    // the posted invoice arrives a second before its charge
  const slow = ids('slow', 4);      // posted after breach_after
  const never = ids('never', 3);    // never invoiced
  const failed = ids('failed', 2);  // the invoice write failed: not an end, so it breaches

  const t0 = Date.now();
  await send(topics.invoices, early.map((id) => invoiceStep(id, 'posted')));
  await send(topics.charges, [...fast, ...slow, ...never, ...failed].map((id) => charge(id)));
  await sleep(400);
  await send(topics.drafts, fast.map((id) => invoiceStep(id, 'draft')));
  await sleep(400);
  await send(topics.invoices, [...fast.map((id) => invoiceStep(id, 'posted')), ...failed.map((id) => invoiceStep(id, 'failed'))]);
  await sleep(Math.max(0, t0 + 1000 - Date.now()));
  // The charge happened (business time) before the invoice that arrived first was written.
  await send(topics.charges, early.map((id) => charge(id, t0 - 200)));
  await sleep(200);
  await send(topics.payments, fast.map((id) => invoiceStep(id, 'paid')));
  await sleep(Math.max(0, t0 + BREACH_MS + 1500 - Date.now()));
  await send(topics.invoices, slow.map((id) => invoiceStep(id, 'posted')));

  const firstFlowEvents = fast.length * 3 + early.length * 2 + slow.length * 4 + (never.length + failed.length) * 3;
  const invoicesWritten = early.length + fast.length + failed.length + slow.length;
  const expected = firstFlowEvents + invoicesWritten + fast.length;
  await collector.waitForCount(expected, 30_000);
  await sleep(1500); // a repeated event would arrive now
  const events = collector.records.map((record) => record.value);
  assertNoRepeats(events);
  assert.equal(events.length, expected);

  const flow = 'charge_to_invoice';
  for (const id of fast) {
    assert.deepEqual(typesOf(events, flow, id), ['started', 'milestone', 'completed'], `fast ${id}`);
    const completed = eventOf(events, flow, id, 'completed');
    assert.ok((completed.latency_ms ?? -1) >= 0 && (completed.latency_ms ?? Infinity) < WARN_MS, `fast ${id}: latency ${completed.latency_ms}`);
    assert.equal(eventOf(events, flow, id, 'milestone').milestone, 'drafted');
  }
  for (const id of early) {
    assert.deepEqual(typesOf(events, flow, id), ['started', 'completed'], `early ${id}`);
    assert.ok((eventOf(events, flow, id, 'completed').latency_ms ?? Infinity) < WARN_MS);
  }
  for (const id of slow) {
    assert.deepEqual(typesOf(events, flow, id), ['started', 'warning', 'breached', 'completed_late'], `slow ${id}`);
    assert.ok((eventOf(events, flow, id, 'completed_late').latency_ms ?? 0) >= BREACH_MS + 1000);
    assert.ok((eventOf(events, flow, id, 'warning').latency_ms ?? 0) >= WARN_MS);
  }
  for (const id of [...never, ...failed]) assert.deepEqual(typesOf(events, flow, id), ['started', 'warning', 'breached'], `open ${id}`);
  for (const id of [...early, ...fast, ...failed, ...slow]) {
    assert.deepEqual(typesOf(events, 'invoice_to_payment', invoiceId(id)), fast.includes(id) ? ['started', 'completed'] : ['started'], `payment ${id}`);
  }

  // What a sink needs to act: owner, correlation id, the deadline, an idempotency key, the key.
  const started = eventOf(events, flow, slow[0] as string, 'started');
  assert.equal(started.owner, OWNER);
  assert.equal(started.correlation_id, `corr-${slow[0]}`);
  assert.equal(started.breach_at, started.started_at + BREACH_MS);
  assert.equal(started.latency_ms, null);
  assert.equal(started.warn_after_ms, WARN_MS);
  const breachRecord = collector.records.find(({ value }) => value.transaction_key === never[0] && value.event_type === 'breached');
  assert.equal(breachRecord?.key, `${flow}:${never[0]}`);
  assert.equal(breachRecord?.headers['lifeline.idempotency-key'], `${flow}:${never[0]}:breached`);
  assert.equal(breachRecord?.headers['lifeline.correlation-id'], `corr-${never[0]}`);

  // Gauges are published by the 200 ms timer; give it a tick after the last event.
  await sleep(500);
  const metrics = await runtime.metrics.metricsText();
  const labels = { component: topology.label, flow };
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', labels), never.length + failed.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_breaches_total', labels), slow.length + never.length + failed.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_latency_seconds_count', labels), fast.length + early.length + slow.length);
  assert.ok((metricValue(metrics, 'lifeline_sla_oldest_open_age_seconds', labels) ?? 0) >= BREACH_MS / 1000);
  const paymentLabels = { component: topology.label, flow: 'invoice_to_payment' };
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', paymentLabels), invoicesWritten - fast.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_breaches_total', paymentLabels), 0);
  const decisions = (event: string): number => metricValue(metrics, 'lifeline_processor_events_total', { component: topology.label, event }) ?? 0;
  assert.ok(decisions('sla_early_step_held') >= early.length, 'the early ends waited for their starts');
  assert.ok(decisions('sla_end_not_successful') >= failed.length, 'failed invoice writes are not ends');
  assert.doesNotMatch(metrics, /CHG-|INV-|MRN-/, 'no record content in metrics');
  await runtime.stop();
});

test('sla: a runtime stopped with transactions open hands them to the next one through the changelog; breach fires once', { timeout: 60_000 }, async () => {
  const WARN_MS = 1000;
  // Room for a graceful stop (kafkajs's consumer.stop() waits out a fetch, ~4 s) before the deadline.
  const BREACH_MS = 8000;
  const topology = await writeSlaTopology({
    store: 'lmdb',
    inputs: (topics) => [topics.charges, topics.invoices],
    config: (topics) => ({
      check_interval: '200ms',
      flows: {
        charge_to_invoice: {
          start: { topic: topics.charges, key_path: 'charge_id', time_path: 'received_at' },
          end: { topic: topics.invoices, key_path: 'charge_id' },
          warn_after: `${WARN_MS}ms`, breach_after: `${BREACH_MS}ms`,
        },
      },
    }),
  });
  const flow = 'charge_to_invoice';
  const first = await startRuntime(topology);
  const { topics } = topology;
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const collector = await new TopicCollector<SlaEvent>(kafka, topics.events, serde).start();
  cleanups.push(() => collector.stop());
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const send = sender(producer, serde);

  const open = ids('restart', 4);
  const startedAt = Date.now();
  await send(topics.charges, open.map((id) => charge(id, startedAt)));
  const countOf = (type: SlaEventType): number => collector.records.filter(({ value }) => value.event_type === type).length;
  await waitUntil(() => countOf('warning') === open.length, 15_000, 'the warnings');
  const stopping = Date.now();
  await first.stop();
  const stoppedAfterMs = Date.now() - stopping;
  assert.equal(countOf('breached'), 0, `the first runtime stopped before the deadline (${Date.now() - startedAt} ms after the starts; stop took ${stoppedAfterMs} ms)`);

  const second = await startRuntime(topology);
  await waitUntil(() => countOf('breached') === open.length, 20_000, 'the breaches after the restart');
  const ended = open.slice(0, 2);
  await send(topics.invoices, ended.map((id) => invoiceStep(id, 'posted')));
  await waitUntil(() => countOf('completed_late') === ended.length, 15_000, 'the late completions');
  await sleep(1500); // a repeated event would arrive now

  const events = collector.records.map((record) => record.value);
  assertNoRepeats(events);
  for (const id of open) {
    assert.deepEqual(typesOf(events, flow, id), ended.includes(id) ? ['started', 'warning', 'breached', 'completed_late'] : ['started', 'warning', 'breached'], id);
  }
  // The second runtime's own counter: it, not the first, saw the deadlines pass, from restored state.
  await sleep(400);
  const metrics = await second.metrics.metricsText();
  const labels = { component: topology.label, flow };
  assert.equal(metricValue(metrics, 'lifeline_sla_breaches_total', labels), open.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', labels), open.length - ended.length);
  await second.stop();
});
