import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Producer } from 'kafkajs';
import { slaTracker, type SlaEvent, type SlaEventType } from '../../processors/sla-tracker.ts';
import type { AvroSerde } from '../../src/kafka/avro-serde.ts';
import { createLogger } from '../../src/observe/logger.ts';
import { ComponentRegistry } from '../../src/component/component-registry.ts';
import { LifelineRuntime } from '../../src/runtime/lifeline-runtime.ts';
import { MemoryStoreBackend } from '../../src/runtime/memory-store-backend.ts';
import { TransactionalStore } from '../../src/runtime/transactional-store.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../../testing/harness.ts';
import { TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';
import { keyPerPartition } from '../../testing/sentinel.ts';

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

// The tracker's logic in memory (repartition hops, timer, metrics, refused configs and records) is in
// sla-tracker.unit.test.ts, on the topology test driver; this file proves it against Kafka.

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
  // Ready: every partition's task opened (fenced, restored): records sent now are read at once.
  const deadline = Date.now() + 60_000;
  while (!(runtime.health().ready && (runtime.health().components[topology.label]?.detail ?? '').startsWith(`${PARTITIONS} partition task(s)`))) {
    if (Date.now() > deadline) throw new Error(`the sla runtime did not become ready: ${JSON.stringify(runtime.health())}`);
    await sleep(100);
  }
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

/** The runtime's metrics once `settled` holds (gauges follow the 200 ms timer): a bounded poll, not a fixed wait. */
async function metricsWhen(runtime: LifelineRuntime, settled: (text: string) => boolean, what: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await runtime.metrics.metricsText();
    if (settled(text)) return text;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
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

const kindsOf = (events: readonly SlaEvent[]): string[] => events.map((event) => `${event.flow}:${event.event_type}`);
const isSentinel = (event: SlaEvent): boolean => event.transaction_key.includes('sentinel-');

/**
 * Sentinels instead of a sleep: a charge and its posted invoice for a transaction key on each
 * partition of the by-transaction repartition, so each task completes one after everything it did
 * before (its timer ticks included, committed earlier on the same output partition). Once every
 * sentinel's completion has arrived, a repeated event would have too. Returns how many were sent.
 */
async function sendSentinels(send: ReturnType<typeof sender>, topics: SlaTopicNames, collector: TopicCollector<SlaEvent>): Promise<number> {
  const keys = keyPerPartition('sentinel', PARTITIONS);
  await send(topics.charges, keys.map((id) => charge(id)));
  await send(topics.invoices, keys.map((id) => invoiceStep(id, 'posted')));
  await collector.waitUntil((records) => keys.every((id) => records.some(({ value }) => value.transaction_key === id && value.event_type.startsWith('completed'))), 'a sentinel completed on each partition', 30_000);
  return keys.length;
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
  const sentinels = await sendSentinels(send, topics, collector);
  const events = collector.records.map((record) => record.value).filter((event) => !isSentinel(event));
  assertNoRepeats(events);
  assert.equal(events.length, expected, `events by kind: ${JSON.stringify(Object.fromEntries([...new Set(kindsOf(events))].map((kind) => [kind, kindsOf(events).filter((other) => other === kind).length])))} keys ${[...new Set(events.map((event) => event.transaction_key.replace(/\d+$/, '')))].join(' ')}`);

  const flow = 'charge_to_invoice';
  for (const id of fast) {
    // Drafts and invoices are different topics read at different paces: a milestone may come after
    // the end, and is then recorded on the finished transaction (not dropped).
    const types = typesOf(events, flow, id);
    assert.equal(types[0], 'started', `fast ${id}`);
    assert.deepEqual([...types].sort(), ['completed', 'milestone', 'started'], `fast ${id}`);
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

  // Gauges are published by the 200 ms timer: wait until they show the last event (bounded).
  const labels = { component: topology.label, flow };
  const metrics = await metricsWhen(runtime, (text) => metricValue(text, 'lifeline_sla_open_transactions', labels) === never.length + failed.length
    && metricValue(text, 'lifeline_sla_open_transactions', { component: topology.label, flow: 'invoice_to_payment' }) === invoicesWritten - fast.length + sentinels, 'the open-transaction gauges');
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', labels), never.length + failed.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_breaches_total', labels), slow.length + never.length + failed.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_latency_seconds_count', labels), fast.length + early.length + slow.length + sentinels);
  assert.ok((metricValue(metrics, 'lifeline_sla_oldest_open_age_seconds', labels) ?? 0) >= BREACH_MS / 1000);
  const paymentLabels = { component: topology.label, flow: 'invoice_to_payment' };
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', paymentLabels), invoicesWritten - fast.length + sentinels, 'the sentinels\' invoices are not paid');
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
  await sendSentinels(send, topics, collector);

  const events = collector.records.map((record) => record.value).filter((event) => !isSentinel(event));
  assertNoRepeats(events);
  for (const id of open) {
    assert.deepEqual(typesOf(events, flow, id), ended.includes(id) ? ['started', 'warning', 'breached', 'completed_late'] : ['started', 'warning', 'breached'], id);
  }
  // The second runtime's own counter: it, not the first, saw the deadlines pass, from restored state.
  const labels = { component: topology.label, flow };
  const metrics = await metricsWhen(second, (text) => metricValue(text, 'lifeline_sla_open_transactions', labels) === open.length - ended.length, 'the open-transaction gauge');
  assert.equal(metricValue(metrics, 'lifeline_sla_breaches_total', labels), open.length);
  assert.equal(metricValue(metrics, 'lifeline_sla_open_transactions', labels), open.length - ended.length);
  await second.stop();
});

test('sla: a task fenced while only its timer runs is dropped and reopened from the changelog; each warning once', { timeout: 90_000 }, async () => {
  const WARN_MS = 5000;
  const topology = await writeSlaTopology({
    store: 'lmdb',
    inputs: (topics) => [topics.charges, topics.invoices],
    config: (topics) => ({
      check_interval: '200ms',
      flows: {
        charge_to_invoice: {
          start: { topic: topics.charges, key_path: 'charge_id', time_path: 'received_at' },
          end: { topic: topics.invoices, key_path: 'charge_id' },
          warn_after: `${WARN_MS}ms`, breach_after: '10m',
        },
      },
    }),
  });
  const flow = 'charge_to_invoice';
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
  const countOf = (type: SlaEventType): number => collector.records.filter(({ value }) => value.event_type === type).length;

  // One open transaction on each partition of the by-transaction repartition: every task has a warning due.
  const open = keyPerPartition('fenced', PARTITIONS);
  await send(topics.charges, open.map((id) => charge(id)));
  await waitUntil(() => countOf('started') === open.length, 20_000, 'the starts');
  // A newer owner appears for every partition (InitProducerId with the tasks' transactional ids): the
  // next transaction of each task, its timer's warning, is refused as fenced.
  const appId = /^app_id: (\S+)$/m.exec(readFileSync(topology.file, 'utf8'))?.[1] as string;
  const fencers = [];
  for (let partition = 0; partition < PARTITIONS; partition++) {
    const fencer = kafka.producer({ transactionalId: `${appId}.${topology.label}.${partition}`, idempotent: true, maxInFlightRequests: 1 });
    await fencer.connect();
    await (await fencer.transaction()).abort(); // kafkajs sends InitProducerId at the first transaction, not on connect
    fencers.push(fencer);
  }
  assert.equal(countOf('warning'), 0, 'fenced before any warning was due (the test needs the timer to meet the fence)');
  // A task that kept its fenced producer would fail every tick and never warn; dropped and reopened, it warns once.
  await waitUntil(() => countOf('warning') === open.length, 40_000, 'the warnings from the reopened tasks');
  for (const fencer of fencers) await fencer.disconnect();
  await send(topics.invoices, open.map((id) => invoiceStep(id, 'posted')));
  await waitUntil(() => countOf('completed') === open.length, 20_000, 'the completions');
  await sendSentinels(send, topics, collector);
  const events = collector.records.map((record) => record.value).filter((event) => !isSentinel(event));
  assertNoRepeats(events);
  for (const id of open) assert.deepEqual(typesOf(events, flow, id), ['started', 'warning', 'completed'], id);
  await runtime.stop();
});
