import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { loadContract } from '../src/kafka/avro-contract.ts';
import { AvroSerde } from '../src/kafka/avro-serde.ts';
import { retry } from '../src/retry.ts';
import { createKafka } from '../src/kafka/client.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { infra, uniqueName, uniqueTopic } from './harness.ts';
import { keyPerPartition } from './sentinel.ts';

export const TEST_EVENT_SCHEMA = resolve('tests/fixtures/schemas/test_event.avsc');
export const KEY_COUNT_SCHEMA = resolve('schemas/ops/key_count.avsc');

export interface CounterTopology {
  readonly file: string;
  readonly dir: string;
  readonly appId: string;
  readonly input: string;
  readonly output: string;
  readonly label: string;
}

/** A topology.yaml in a temp dir: one input topic, count_by_key on it, one output topic. */
export async function writeCounterTopology(options: {
  partitions: number;
  store?: 'memory' | 'lmdb';
  commitMaxRecords?: number;
  onError?: 'dlq' | 'fail' | 'continue';
  guarantee?: 'exactly_once' | 'at_least_once';
  keyField?: string;
  transactions?: 'per_partition' | 'per_process';
}): Promise<CounterTopology> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-test-'));
  const appId = uniqueName('app').replace(/\./g, '_');
  const input = uniqueTopic('test', 'event', 'received');
  const output = input.replace(/\.received\.v1$/, '.counted.v1');
  // Dead-letter topics are named by label alone (ops.dlq.<label>.v1), so each test needs its own label.
  const label = `event_counter_${randomBytes(4).toString('hex')}`;
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, [
    'version: 1',
    `app_id: ${appId}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-test }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    'runtime:',
    '  http_port: 0',
    `  state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    `  store: ${options.store ?? 'memory'}`,
    `  commit_max_records: ${options.commitMaxRecords ?? 200}`,
    '  commit_interval: 200ms',
    ...(options.transactions ? [`  transactions: ${options.transactions}`] : []),
    '  log_level: info',
    'topics:',
    `  ${input}: { key: account, value_schema: ${JSON.stringify(TEST_EVENT_SCHEMA)}, partitions: ${options.partitions}, retention: 1d, owner: tests, description: test input, classification: phi }`,
    `  ${output}: { key: account, value_schema: ${JSON.stringify(KEY_COUNT_SCHEMA)}, partitions: ${options.partitions}, retention: 1d, owner: tests, description: running counts, classification: internal }`,
    'processors:',
    `  ${label}:`,
    '    type: count_by_key',
    `    inputs: [${input}]`,
    `    outputs: { counts: ${output} }`,
    `    on_error: ${options.onError ?? 'dlq'}`,
    `    guarantee: ${options.guarantee ?? 'exactly_once'}`,
    ...(options.keyField ? ['    config:', `      key_field: ${options.keyField}`] : []),
    '',
  ].join('\n'));
  return { file, dir, appId, input, output, label };
}

export interface TestEvent {
  id: string;
  account: string;
  patient_mrn: string;
  amount_minor: number;
}

export function testEvent(index: number, accounts = 40): TestEvent {
  return { id: `evt-${index}`, account: `ACC-${index % accounts}`, patient_mrn: `MRN-${(7_000_000 + index * 7919) % 9_999_991}`, amount_minor: 100 + index };
}

/** A `lifeline run` child process whose log lines are collected. */
export class LifelineProcess {
  readonly lines: string[] = [];
  private child: ChildProcess | undefined;
  exitCode: number | null | undefined;

  constructor(
    private readonly topologyFile: string,
    private readonly extraArgs: string[] = [],
    private readonly env: Record<string, string> = {},
  ) {}

  start(): this {
    this.exitCode = undefined;
    const child = spawn(process.execPath, ['bin/lifeline.mjs', 'run', '--topology', this.topologyFile, '--http-port', '0', '--session-timeout-ms', '6000', ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...this.env },
    });
    let partial = '';
    const collect = (chunk: Buffer): void => {
      partial += chunk.toString('utf8');
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      this.lines.push(...parts);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    child.on('exit', (code) => { this.exitCode = code; });
    this.child = child;
    return this;
  }

  async waitForLine(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.lines.slice(from).find((line) => pattern.test(line));
      if (found) return found;
      if (this.exitCode !== undefined) throw new Error(`lifeline run exited (${this.exitCode}) before logging ${pattern}:\n${this.lines.slice(-20).join('\n')}`);
      await sleep(100);
    }
    throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms:\n${this.lines.slice(-20).join('\n')}`);
  }

  /** The running process's id (undefined before start and after exit). */
  get pid(): number | undefined {
    return this.exitCode === undefined ? this.child?.pid : undefined;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || this.exitCode !== undefined) return Promise.resolve();
    return new Promise((resolveExit) => {
      child.once('exit', () => resolveExit());
      child.kill(signal);
    });
  }
}

/** Reads a topic (read committed) into memory as decoded values, continuously, until stopped. */
export class TopicCollector<V = unknown> {
  readonly records: Array<{ key: string | null; value: V; partition: number; offset: string; headers: Record<string, string>; timestamp: number; rawValue: Buffer | null }> = [];
  private readonly consumer;
  private readonly seen = new Set<string>();
  constructor(kafka: Kafka, private readonly topic: string, private readonly serde?: AvroSerde) {
    this.consumer = kafka.consumer({ groupId: uniqueName('test-collector'), readUncommitted: false, maxWaitTimeInMs: 100 });
  }

  async start(): Promise<this> {
    await this.consumer.connect();
    // A topic created a moment ago may not be in the broker's metadata yet (retriable).
    await retry(() => this.consumer.subscribe({ topic: this.topic, fromBeginning: true }), { retries: 10, initialDelayMs: 100, maxDelayMs: 2000 });
    await this.consumer.run({
      eachMessage: async ({ message, partition }) => {
        // A collector that restarts (e.g. it subscribed before the topic's metadata settled) reads
        // from the beginning again; the same partition and offset is the same record, not a duplicate.
        const position = `${partition}@${message.offset}`;
        if (this.seen.has(position)) return;
        this.seen.add(position);
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = value.toString();
        const value = (this.serde && message.value ? (await this.serde.decode(message.value)).value : message.value) as V;
        this.records.push({ key: message.key?.toString() ?? null, value, partition, offset: message.offset, headers, timestamp: Number(message.timestamp), rawValue: message.value });
      },
    });
    return this;
  }

  async waitForCount(count: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.records.length < count && Date.now() < deadline) await sleep(100);
    if (this.records.length < count) throw new Error(`${this.topic}: ${this.records.length} of ${count} records after ${timeoutMs} ms`);
  }

  /** Waits until `done(records)` holds (e.g. every sentinel arrived), polling what was collected. */
  async waitUntil(done: (records: TopicCollector<V>['records']) => boolean, what: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done(this.records) && Date.now() < deadline) await sleep(100);
    if (!done(this.records)) throw new Error(`${this.topic}: ${what} not seen after ${timeoutMs} ms (${this.records.length} records)`);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }
}

export async function registeredSerde(): Promise<AvroSerde> {
  const { registryUrl } = await infra();
  return new AvroSerde({ url: registryUrl });
}

export interface TestEventTopic {
  readonly kafka: Kafka;
  readonly admin: import('kafkajs').Admin;
  readonly serde: AvroSerde;
  /** Encodes and sends events, keyed by account. */
  send(events: readonly TestEvent[]): Promise<void>;
  close(): Promise<void>;
}

/** Creates a topic for TestEvent records, registers its schema, and connects a producer to it. */
export async function testEventTopic(topic: string, partitions: number): Promise<TestEventTopic> {
  const { brokers } = await infra();
  const kafka = createKafka({ brokers, clientId: uniqueName('test-client') });
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, [{ name: topic, partitions }]);
  const serde = await registeredSerde();
  await serde.register(topic, loadContract(TEST_EVENT_SCHEMA));
  const producer = kafka.producer();
  await producer.connect();
  return {
    kafka, admin, serde,
    async send(events) {
      const messages = await Promise.all(events.map(async (event) => ({ key: event.account, value: await serde.encode(topic, event) })));
      await producer.send({ topic, messages, acks: -1 });
    },
    async close() {
      await producer.disconnect();
      await admin.disconnect();
    },
  };
}

/** A count_by_key output record (schemas/ops/key_count.avsc). */
export interface KeyCount { key: string; count: number; origin_partition: number; origin_offset: number }

/** The partitions a `lifeline run` process last logged as assigned (reading its log from line `from` on). */
export function assignedPartitions(process: LifelineProcess, from = 0): number[] {
  const last = process.lines.slice(from).filter((line) => line.includes('partitions assigned')).at(-1);
  return last ? (JSON.parse(last) as { partitions: number[] }).partitions : [];
}

/**
 * Two `lifeline run` processes of one counter topology in one group, waited for until they split
 * its partitions evenly, and a collector of its output. What needs closing goes onto `cleanups`.
 */
export async function counterPair(options: Parameters<typeof writeCounterTopology>[0], cleanups: Array<() => Promise<void>>): Promise<{
  topology: CounterTopology; kafka: Kafka; serde: AvroSerde; collector: TopicCollector<KeyCount>; first: LifelineProcess; second: LifelineProcess;
}> {
  const topology = await writeCounterTopology(options);
  const kafka = createKafka({ brokers: (await infra()).brokers, clientId: uniqueName('test-client') });
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: topology.input, partitions: options.partitions }, { name: topology.output, partitions: options.partitions }]);
  const serde = await registeredSerde();
  await serde.register(topology.input, loadContract(TEST_EVENT_SCHEMA));
  const collector = await new TopicCollector<KeyCount>(kafka, topology.output, serde).start();
  cleanups.push(() => collector.stop());
  const first = new LifelineProcess(topology.file).start();
  const second = new LifelineProcess(topology.file).start();
  cleanups.push(() => first.kill(), () => second.kill());
  await first.waitForLine(/lifeline running/);
  await second.waitForLine(/lifeline running/);
  const share = options.partitions / 2;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && (assignedPartitions(first).length !== share || assignedPartitions(second).length !== share)) await sleep(200);
  return { topology, kafka, serde, collector, first, second };
}

/**
 * A sentinel through each of a counter topology's `partitions`, waited for until each is counted
 * (instead of a sleep: an input counted twice before a sentinel would have been too). Returns the
 * counted records without the sentinels.
 */
export async function countedThroughSentinels(
  collector: TopicCollector<KeyCount>, sendTo: (accounts: readonly string[], firstIndex: number) => Promise<void>, partitions: number, firstIndex: number,
): Promise<TopicCollector<KeyCount>['records']> {
  const sentinels = keyPerPartition('sentinel', partitions);
  await sendTo(sentinels, firstIndex);
  await collector.waitUntil((records) => records.filter(({ value }) => value.key.startsWith('sentinel-')).length >= sentinels.length, 'a sentinel on each partition', 60_000);
  return collector.records.filter(({ value }) => !value.key.startsWith('sentinel-'));
}

/** Each account's counts are exactly 1..n, n the events sent to it: none skipped, none repeated. */
export function assertExactCounts(records: TopicCollector<KeyCount>['records'], expected: ReadonlyMap<string, number>): void {
  for (const [account, count] of expected) {
    const counts = records.filter(({ value }) => value.key === account).map(({ value }) => value.count).sort((a, b) => a - b);
    assert.deepEqual(counts, Array.from({ length: count }, (_, index) => index + 1), `${account} counted 1..${count}`);
  }
}

/**
 * Sends test events (`testEvent(index, accounts)`, keyed by account) to a counter topology's input,
 * and keeps how many each account was sent: what exact counts must reach.
 */
export async function countedSender(kafka: Kafka, serde: AvroSerde, topic: string, accounts: number, cleanups: Array<() => Promise<void>>): Promise<{
  expected: Map<string, number>; send(from: number, to: number): Promise<void>;
  /** One event for each of `accounts` (e.g. a sentinel per partition), not counted in `expected`. */
  sendTo(accounts: readonly string[], firstIndex: number): Promise<void>;
}> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const expected = new Map<string, number>();
  return {
    expected,
    async send(from, to) {
      const messages = [];
      for (let index = from; index < to; index++) {
        const event = testEvent(index, accounts);
        expected.set(event.account, (expected.get(event.account) ?? 0) + 1);
        messages.push({ key: event.account, value: await serde.encode(topic, event) });
      }
      await producer.send({ topic, messages, acks: -1 });
    },
    async sendTo(accounts, firstIndex) {
      const messages = await Promise.all(accounts.map(async (account, index) => ({ key: account, value: await serde.encode(topic, { ...testEvent(firstIndex + index), account }) })));
      await producer.send({ topic, messages, acks: -1 });
    },
  };
}
