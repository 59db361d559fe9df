// Pipeline throughput against the raw kafkajs ceiling, on the same broker in the same run:
// raw kafkajs at-least-once (consume → produce → commit offsets) and exactly-once (one transaction per
// fetched batch and partition, offsets sent in it), then Lifeline's `dedup` under `lifeline run`
// (exactly-once, LMDB store, changelog) and a chain of three dedups (three hops, three groups, one
// process), each with runtime.transactions as shipped (per_process) and per_partition. Each run reads the same pre-produced input (Avro, keyed by idempotency key, 3 partitions)
// into fresh output topics and a fresh consumer group; the kinds are interleaved and repeated, and the
// table shows the median rate of each and its ratio to raw EOS (and raw ALO).
// `npm run bench -- pipeline`; BENCH_RECORDS (default 100,000) and BENCH_ROUNDS (default 3) change it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { loadContract } from '../src/kafka/avro-contract.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../testing/harness.ts';
import { processTreeCpuSeconds } from '../testing/process-cpu.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, registeredSerde, testEvent } from '../testing/runtime-fixture.ts';

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PARTITIONS = 3;
const RAW_SLICE = 5_000;

type Kind = 'raw kafkajs ALO' | 'raw kafkajs EOS' | 'lifeline dedup (EOS)' | 'lifeline dedup (EOS), transactions per_partition' | 'lifeline dedup (EOS), --workers 2' | 'lifeline chain: 3 × dedup (EOS)' | 'lifeline chain: 3 × dedup (EOS), transactions per_partition';
const ALL_KINDS: readonly Kind[] = ['raw kafkajs ALO', 'raw kafkajs EOS', 'lifeline dedup (EOS)', 'lifeline dedup (EOS), transactions per_partition', 'lifeline dedup (EOS), --workers 2', 'lifeline chain: 3 × dedup (EOS)', 'lifeline chain: 3 × dedup (EOS), transactions per_partition'];
/** BENCH_ONLY=dedup runs only the kinds it names in full or in part (e.g. to profile one). */
const ONLY = process.env.BENCH_ONLY;
const KINDS: readonly Kind[] = ALL_KINDS.filter((kind) => !ONLY || (ALL_KINDS.includes(ONLY as Kind) ? kind === ONLY : kind.includes(ONLY)));

const kafka = await testKafka(uniqueName('bench-pipeline'));
const admin = kafka.admin();
await admin.connect();
const serde = await registeredSerde();
const input = uniqueTopic('bench', 'event', 'received');
await ensureTopics(admin, [{ name: input, partitions: PARTITIONS }]);
await serde.register(input, loadContract(TEST_EVENT_SCHEMA));
{
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  for (let start = 0; start < RECORDS; start += 2_000) {
    const messages = [];
    for (let index = start; index < Math.min(RECORDS, start + 2_000); index++) {
      const event = testEvent(index);
      messages.push({ key: event.id, value: await serde.encode(input, event) });
    }
    await producer.send({ topic: input, messages, acks: -1 });
  }
  await producer.disconnect();
}

/**
 * Counts the records (read committed) reaching `topic`; `done` is the moment the last of RECORDS
 * arrived. The same measure for every kind: the pipeline's output as a downstream reader sees it.
 */
async function countOutputs(client: Kafka, topic: string): Promise<{ done: Promise<number>; stop(): Promise<void> }> {
  const consumer = client.consumer({ groupId: uniqueName('bench-counter'), readUncommitted: false, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let count = 0;
  let finish: (at: number) => void = () => undefined;
  const done = new Promise<number>((resolveDone) => { finish = resolveDone; });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      count += batch.messages.length;
      if (count >= RECORDS) finish(performance.now());
    },
  });
  return { done, stop: () => consumer.disconnect() };
}

/** A run's rate and the CPU it cost: microseconds of CPU (all of the pipeline's processes) per record. */
interface RunResult { rate: number; cpuMicrosPerRecord: number }

async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} not done within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

async function rawRun(client: Kafka, exactlyOnce: boolean): Promise<RunResult> {
  const output = uniqueTopic('bench', 'raw', 'out');
  await ensureTopics(admin, [{ name: output, partitions: PARTITIONS }]);
  const counter = await countOutputs(client, output);
  const groupId = uniqueName('bench-raw');
  const consumer = client.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 100 });
  const shared = client.producer({ idempotent: true, maxInFlightRequests: 1 });
  const transactional = new Map<number, ReturnType<Kafka['producer']>>();
  await consumer.connect();
  await shared.connect();
  if (exactlyOnce) {
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const producer = client.producer({ transactionalId: `${groupId}.${partition}`, idempotent: true, maxInFlightRequests: 1 });
      await producer.connect();
      transactional.set(partition, producer);
    }
  }
  let joinedAt = 0;
  let cpuAtJoin = process.cpuUsage();
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (joinedAt) return;
    joinedAt = performance.now();
    cpuAtJoin = process.cpuUsage();
  });
  await consumer.subscribe({ topic: input, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: PARTITIONS,
    eachBatch: async ({ batch }) => {
      if (batch.messages.length === 0) return;
      const messages = batch.messages.map((message) => ({ key: message.key, value: message.value, partition: batch.partition }));
      const next = (BigInt(batch.lastOffset()) + 1n).toString();
      // A fetch holds up to 1 MiB a partition; written back as one record batch it can pass the
      // topic's max.message.bytes, so the copy goes in slices of RAW_SLICE messages.
      const slices = [];
      for (let start = 0; start < messages.length; start += RAW_SLICE) slices.push(messages.slice(start, start + RAW_SLICE));
      if (exactlyOnce) {
        const transaction = await (transactional.get(batch.partition) as ReturnType<Kafka['producer']>).transaction();
        for (const slice of slices) await transaction.sendBatch({ topicMessages: [{ topic: output, messages: slice }] });
        await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: next }] }] });
        await transaction.commit();
      } else {
        for (const slice of slices) await shared.sendBatch({ topicMessages: [{ topic: output, messages: slice }], acks: -1 });
        await consumer.commitOffsets([{ topic: input, partition: batch.partition, offset: next }]);
      }
    },
  });
  const done = await withDeadline(counter.done, 300_000, 'raw run');
  // This process also runs the output counter: raw's CPU includes it, Lifeline's does not.
  const cpu = process.cpuUsage(cpuAtJoin);
  await counter.stop();
  await consumer.disconnect();
  await shared.disconnect();
  for (const producer of transactional.values()) await producer.disconnect();
  return { rate: RECORDS / ((done - joinedAt) / 1000), cpuMicrosPerRecord: (cpu.user + cpu.system) / RECORDS };
}

async function lifelineRun(hops: number, workers = 1, transactions?: 'per_partition' | 'per_process'): Promise<RunResult> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-bench-'));
  const appId = uniqueName('bench').replace(/\./g, '_');
  const topics = [input, ...Array.from({ length: hops }, () => uniqueTopic('bench', 'dedup', 'deduplicated'))];
  const labels = Array.from({ length: hops }, (_, hop) => `dedup_${hop}_${Date.now().toString(36)}`);
  const schema = JSON.stringify(TEST_EVENT_SCHEMA);
  writeFileSync(join(dir, 'topology.yaml'), [
    'version: 1',
    `app_id: ${appId}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-bench }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    'runtime:',
    '  http_port: 0',
    `  state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    '  store: lmdb',
    ...(transactions ? [`  transactions: ${transactions}`] : []),
    ...(process.env.BENCH_COMMIT_MAX_RECORDS ? [`  commit_max_records: ${process.env.BENCH_COMMIT_MAX_RECORDS}`] : []),
    '  log_level: info',
    'topics:',
    ...topics.map((topic) => `  ${topic}: { key: id, value_schema: ${schema}, partitions: ${PARTITIONS}, retention: 1d, owner: bench, description: bench events, classification: phi }`),
    'processors:',
    ...labels.flatMap((label, hop) => [
      `  ${label}:`,
      '    type: dedup',
      `    inputs: [${topics[hop]}]`,
      `    outputs: { unique: ${topics[hop + 1]} }`,
      '    config: { key_path: id, ttl: 1h }',
    ]),
    '',
  ].join('\n'));
  await ensureTopics(admin, topics.slice(1).map((name) => ({ name, partitions: PARTITIONS })));
  const counter = await countOutputs(kafka, topics[hops] as string);
  const lifeline = new LifelineProcess(join(dir, 'topology.yaml'), workers > 1 ? ['--workers', String(workers)] : []).start();
  try {
    const assigned = new RegExp(`"component":"${labels[0]}".*"msg":"partitions assigned"`);
    await lifeline.waitForLine(assigned, 120_000);
    const started = performance.now();
    const cpuAtStart = processTreeCpuSeconds(lifeline.pid as number);
    const done = await withDeadline(counter.done, 600_000, `lifeline run with ${hops} hop(s)`);
    const cpuSeconds = processTreeCpuSeconds(lifeline.pid as number) - cpuAtStart;
    return { rate: RECORDS / ((done - started) / 1000), cpuMicrosPerRecord: (cpuSeconds * 1e6) / RECORDS };
  } finally {
    await counter.stop();
    await lifeline.kill('SIGTERM');
  }
}

const rates = new Map<Kind, number[]>(KINDS.map((kind) => [kind, []]));
const cpuCosts = new Map<Kind, number[]>(KINDS.map((kind) => [kind, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, and the order turned each round, so drift on a shared machine hits every kind.
  const order = round % 2 === 0 ? KINDS : [...KINDS].reverse();
  for (const kind of order) {
    const { rate, cpuMicrosPerRecord } = kind === 'raw kafkajs ALO' ? await rawRun(kafka, false)
      : kind === 'raw kafkajs EOS' ? await rawRun(kafka, true)
        : kind === 'lifeline dedup (EOS)' ? await lifelineRun(1)
          : kind === 'lifeline dedup (EOS), transactions per_partition' ? await lifelineRun(1, 1, 'per_partition')
            : kind === 'lifeline dedup (EOS), --workers 2' ? await lifelineRun(1, 2)
              : kind === 'lifeline chain: 3 × dedup (EOS), transactions per_partition' ? await lifelineRun(3, 1, 'per_partition') : await lifelineRun(3);
    rates.get(kind)?.push(rate);
    cpuCosts.get(kind)?.push(cpuMicrosPerRecord);
    console.log(`round ${round + 1}: ${kind}: ${Math.round(rate).toLocaleString('en')} records/s, ${cpuMicrosPerRecord.toFixed(1)} µs CPU/record`);
  }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
};
const rawAlo = median(rates.get('raw kafkajs ALO') ?? [Number.NaN]);
const rawEos = median(rates.get('raw kafkajs EOS') ?? [Number.NaN]);
const goals: Partial<Record<Kind, string>> = {
  'lifeline dedup (EOS)': '≥ 0.60 of raw EOS', 'lifeline dedup (EOS), transactions per_partition': '≥ 0.60 of raw EOS', 'lifeline dedup (EOS), --workers 2': '≥ 0.60 of raw EOS',
  'lifeline chain: 3 × dedup (EOS)': '≥ 0.25 of raw EOS', 'lifeline chain: 3 × dedup (EOS), transactions per_partition': '≥ 0.25 of raw EOS',
};
console.log(`\n${RECORDS.toLocaleString('en')} records (Avro, ${PARTITIONS} partitions), median of ${ROUNDS} interleaved rounds; CPUs: ${(await import('node:os')).cpus().length}\n`);
// CPU per record is steadier than the rate on a shared machine (it does not count time spent waiting
// for the broker or for a CPU another tenant holds); raw's includes the output counter in its process.
const rawEosCpu = median(cpuCosts.get('raw kafkajs EOS') ?? [Number.NaN]);
console.log('| pipeline | records/s (median) | runs | vs raw EOS | vs raw ALO | CPU µs/record (median) | CPU vs raw EOS | goal |');
console.log('| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |');
for (const kind of KINDS) {
  const values = rates.get(kind) as number[];
  const rate = median(values);
  const cpu = median(cpuCosts.get(kind) as number[]);
  console.log(`| ${kind} | ${Math.round(rate).toLocaleString('en')} | ${values.map((value) => Math.round(value).toLocaleString('en')).join(', ')} | ${(rate / rawEos).toFixed(2)} | ${(rate / rawAlo).toFixed(2)} | ${cpu.toFixed(1)} | ${(cpu / rawEosCpu).toFixed(1)}× | ${goals[kind] ?? 'baseline'} |`);
}
await admin.disconnect();
process.exit(0);
