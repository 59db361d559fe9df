// End-to-end latency at a steady partner rate (`npm run bench -- latency`): signed HL7 charge webhooks
// (with the golden path's supply deliveries and pharmacy files around them) at BENCH_LATENCY_RATE
// events/s (default 200) for BENCH_LATENCY_SECONDS (default 40) through topology.yaml's pipeline —
// webhook → received → dedup → enrich → odoo_sink → Odoo simulator, every hop exactly-once — timed
// from the moment a charge's request is sent to the moment the sink wrote its bill (`written_at`).
// Baselines in the same run: raw kafkajs passing records through the same number of Kafka hops
// (produce → 3 consume-and-produce hops → consume, no processing), at the same rate and on as many
// partitions as topology.yaml ships with: at-least-once; exactly-once with a transactional producer
// per partition (Lifeline's shape); exactly-once with one producer per hop (KIP-447's shape).
// BENCH_ONLY (any part of a row's name, e.g. "raw" or "sized") runs only the rows it names.
// The first 10 s of each are warm-up and not counted. The Odoo simulator runs in its own process.
// Lifeline runs three times: topology.yaml as shipped (3 partitions a topic, transactions per_process),
// the same with transactions per_partition, and sized for the rate (1 partition).
// BENCH_KEEP_LOGS=<folder> keeps both Lifeline processes' logs of each run there (to explain a slow tail).
// BENCH_PIPELINE_ARGS adds arguments to the pipeline process's `lifeline run` (e.g. "--workers 3"; the CPU table
// then counts only its supervisor).
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Producer } from 'kafkajs';
import { planTraffic } from '../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../dev/demo/traffic-sender.ts';
import { infraStatus } from '../dev/infra/local-infra.ts';
import { CONSUMER_MAX_WAIT_MS } from '../src/kafka/client.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { writeGoldenTopology } from '../testing/golden-path-fixture.ts';
import { testKafka, uniqueName, uniqueTopic } from '../testing/harness.ts';
import { OdooSimulatorProcess } from '../testing/odoo-simulator-process.ts';
import { cpuSeconds as processCpuSeconds } from '../testing/process-cpu.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../testing/runtime-fixture.ts';

const RATE = Number(process.env.BENCH_LATENCY_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_LATENCY_SECONDS ?? 40);
const WARM_UP_MS = 10_000;
const HOPS = 3;
/** Partitions of the raw baselines' topics: as many as topology.yaml ships with. */
const RAW_PARTITIONS = 3;
/** BENCH_ONLY=raw (or any part of a row's name) runs only the rows it names. */
const ONLY = process.env.BENCH_ONLY;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/**
 * How a raw kafkajs hop passes records on. 'alo': send, then let kafkajs commit offsets. 'eos per
 * partition': one transaction per fetched batch on a transactional producer per input partition
 * (kafkajs's documented pattern, and Lifeline's: fencing rests on the transactional id). 'eos per hop':
 * one producer per hop whose transaction takes in every batch that arrives while the previous one
 * commits — the shape KIP-447 makes safe (kafkajs cannot fence it: no group generation in its
 * TxnOffsetCommit), measured to show what the number of transactions costs at this rate.
 */
type RawMode = 'alo' | 'eos per partition' | 'eos per hop';

/** Batches of one hop waiting for the hop's next transaction, and the transaction being committed. */
class HopGroupCommit {
  private waiting: Array<{ messages: Array<{ key: Buffer | null; value: Buffer | null }>; partition: number; next: string; done: (error?: unknown) => void }> = [];
  private committing: Promise<void> | undefined;

  constructor(private readonly producer: Producer, private readonly groupId: string, private readonly input: string, private readonly output: string) {}

  add(messages: Array<{ key: Buffer | null; value: Buffer | null }>, partition: number, next: string): Promise<void> {
    const added = new Promise<void>((resolve, reject) => this.waiting.push({ messages, partition, next, done: (error) => (error ? reject(error) : resolve()) }));
    void this.drain();
    return added;
  }

  private async drain(): Promise<void> {
    if (this.committing) return;
    while (this.waiting.length > 0) {
      const batches = this.waiting;
      this.waiting = [];
      this.committing = (async () => {
        const transaction = await this.producer.transaction();
        await transaction.send({ topic: this.output, messages: batches.flatMap((batch) => batch.messages.map((message) => ({ ...message, partition: batch.partition }))) });
        await transaction.sendOffsets({ consumerGroupId: this.groupId, topics: [{ topic: this.input, partitions: batches.map((batch) => ({ partition: batch.partition, offset: batch.next })) }] });
        await transaction.commit();
      })();
      try {
        await this.committing;
        for (const batch of batches) batch.done();
      } catch (error) {
        for (const batch of batches) batch.done(error);
      } finally {
        this.committing = undefined;
      }
    }
  }
}

async function rawBaseline(mode: RawMode): Promise<number[]> {
  const kafka = await testKafka(uniqueName('bench-latency-raw'));
  const admin = kafka.admin();
  await admin.connect();
  const topics = Array.from({ length: HOPS + 1 }, () => uniqueTopic('bench', 'latency', 'hop'));
  await ensureTopics(admin, topics.map((name) => ({ name, partitions: RAW_PARTITIONS })));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const consumers = [];
  const transactional: Producer[] = [];
  const transactionalProducer = async (id: string): Promise<Producer> => {
    const created = kafka.producer({ transactionalId: id, idempotent: true, maxInFlightRequests: 1 });
    await created.connect();
    transactional.push(created);
    return created;
  };
  for (let hop = 0; hop < HOPS; hop++) {
    const groupId = uniqueName('bench-latency-hop');
    const input = topics[hop] as string;
    const output = topics[hop + 1] as string;
    const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: CONSUMER_MAX_WAIT_MS });
    await consumer.connect();
    await consumer.subscribe({ topic: input, fromBeginning: true });
    const perPartition = new Map<number, Producer>();
    if (mode === 'eos per partition') for (let partition = 0; partition < RAW_PARTITIONS; partition++) perPartition.set(partition, await transactionalProducer(`${groupId}.${partition}`));
    const perHop = mode === 'eos per hop' ? new HopGroupCommit(await transactionalProducer(groupId), groupId, input, output) : undefined;
    await consumer.run({
      autoCommit: mode === 'alo',
      partitionsConsumedConcurrently: RAW_PARTITIONS,
      eachBatch: async ({ batch }) => {
        if (batch.messages.length === 0) return;
        const messages = batch.messages.map((message) => ({ key: message.key, value: message.value }));
        const next = (BigInt(batch.lastOffset()) + 1n).toString();
        if (mode === 'alo') {
          await producer.send({ topic: output, messages, acks: -1 });
        } else if (perHop) {
          await perHop.add(messages, batch.partition, next);
        } else {
          const transaction = await (perPartition.get(batch.partition) as Producer).transaction();
          await transaction.send({ topic: output, messages: messages.map((message) => ({ ...message, partition: batch.partition })) });
          await transaction.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: input, partitions: [{ partition: batch.partition, offset: next }] }] });
          await transaction.commit();
        }
      },
    });
    consumers.push(consumer);
  }
  const latencies: number[] = [];
  const last = kafka.consumer({ groupId: uniqueName('bench-latency-end'), readUncommitted: false, maxWaitTimeInMs: CONSUMER_MAX_WAIT_MS });
  await last.connect();
  await last.subscribe({ topic: topics[HOPS] as string, fromBeginning: true });
  const started = Date.now();
  await last.run({
    eachMessage: async ({ message }) => {
      const sentAt = Number(message.value?.toString());
      if (sentAt - started >= WARM_UP_MS) latencies.push(Date.now() - sentAt);
    },
  });
  await sleep(3_000); // every group joined before the clock starts
  const begin = Date.now();
  for (let sent = 0; sent < RATE * SECONDS;) {
    const due = Math.min(RATE * SECONDS, Math.floor(((Date.now() - begin) / 1000) * RATE));
    if (due > sent) {
      const now = Date.now();
      await producer.send({ topic: topics[0] as string, messages: Array.from({ length: due - sent }, (_, index) => ({ key: `k${sent + index}`, value: String(now) })), acks: -1 });
      sent = due;
    }
    await sleep(5);
  }
  await sleep(5_000);
  for (const consumer of [...consumers, last]) await consumer.disconnect();
  for (const created of [producer, ...transactional]) await created.disconnect();
  await admin.disconnect();
  return latencies;
}

/** CPU seconds a process used so far (Linux /proc, clock ticks of 1/100 s), or undefined elsewhere. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return processCpuSeconds(pid);
  } catch {
    return undefined;
  }
}

/** Which process spends the machine's cores while the charges are timed: Lifeline's two, Kafka, the registry, the simulator and this bench. */
interface CpuShare { readonly name: string; readonly cores: number | undefined }

async function cpuSampler(pids: ReadonlyArray<readonly [string, number | undefined]>): Promise<() => CpuShare[]> {
  const own = (): number => { const usage = process.cpuUsage(); return (usage.user + usage.system) / 1e6; };
  const started = Date.now();
  const first = pids.map(([, pid]) => cpuSeconds(pid));
  const ownFirst = own();
  return () => {
    const seconds = (Date.now() - started) / 1000;
    return [
      ...pids.map(([name, pid], index) => {
        const now = cpuSeconds(pid);
        const before = first[index];
        return { name, cores: now === undefined || before === undefined ? undefined : (now - before) / seconds };
      }),
      { name: 'this bench (traffic sender, topic collectors)', cores: (own() - ownFirst) / seconds },
    ];
  };
}

/** The hops a charge passes, by the topic its record is written to (Kafka's record timestamp is when that hop produced it). */
const HOP_TOPICS = [
  ['webhook source', 'partner.service_charge.received.v1'],
  ['dedup', 'partner.service_charge.deduplicated.v1'],
  ['enrich', 'billing.service_charge.enriched.v1'],
  ['odoo_sink (result)', 'billing.vendor_bill.written.v1'],
] as const;

interface HopTimes { readonly name: string; readonly deltas: number[] }

/** One charge's time in each hop (as far as it got), to tell a slow tail's cause from its place. */
interface SlowCharge { readonly key: string; readonly sentAtMs: number; readonly hopMs: number[] }

/** How many of the slowest charges the bench prints, hop by hop. */
const SLOWEST_SHOWN = 3;

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

interface CommittedTransactions { readonly count: number; readonly meanMs: number | undefined }

/** Odoo XML-RPC calls of one component and operation that answered (`lifeline_odoo_call_seconds`). */
interface OdooCalls { readonly component: string; readonly operation: string; readonly count: number; readonly meanMs: number }

/** The /metrics text of a running `lifeline run`. */
async function metricsOf(process: LifelineProcess): Promise<string> {
  const line = await process.waitForLine(/"msg":"serving \/metrics/, 5_000);
  const port = (JSON.parse(line) as { port: number }).port;
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

/** A process's event-loop delay over the run (how long a socket's answer may wait to be read) and its garbage collection since start (prom-client's, never scraped before). */
interface LoopDelay { readonly p50Ms: number; readonly p99Ms: number; readonly maxMs: number; readonly gcPauses: number; readonly gcMs: number; readonly gcOver100Ms: number }

/** Reads a LoopDelay from a process's /metrics text; the collections of every kind (minor, major, incremental) are summed. */
function loopDelayOf(text: string): LoopDelay {
  const value = (name: string): number => Number(new RegExp(`^nodejs_eventloop_lag_${name}_seconds ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN) * 1000;
  const summed = (pattern: string): number => [...text.matchAll(new RegExp(`^nodejs_gc_duration_seconds_${pattern} ([0-9.e+-]+)$`, 'gm'))].reduce((total, match) => total + Number(match[1]), 0);
  const gcPauses = summed('count\\{[^}]*\\}');
  return {
    p50Ms: value('p50'), p99Ms: value('p99'), maxMs: value('max'),
    gcPauses, gcMs: summed('sum\\{[^}]*\\}') * 1000, gcOver100Ms: gcPauses - summed('bucket\\{le="0\\.1",[^}]*\\}'),
  };
}

/**
 * The sinks' Odoo calls by component and operation, from the pipeline's /metrics text: how much of
 * the odoo_sink hop is Odoo's answer (the simulator's here; a real Odoo's in production).
 */
function odooCalls(text: string): OdooCalls[] {
  const sums = new Map<string, number>();
  for (const match of text.matchAll(/^lifeline_odoo_call_seconds_sum\{component="([^"]+)",operation="([^"]+)"\} ([0-9.e+-]+)$/gm)) sums.set(`${match[1]}|${match[2]}`, Number(match[3]));
  const calls: OdooCalls[] = [];
  for (const match of text.matchAll(/^lifeline_odoo_call_seconds_count\{component="([^"]+)",operation="([^"]+)"\} (\d+)$/gm)) {
    const count = Number(match[3]);
    const sum = sums.get(`${match[1]}|${match[2]}`);
    if (count > 0 && sum !== undefined) calls.push({ component: match[1] as string, operation: match[2] as string, count, meanMs: (sum / count) * 1000 });
  }
  return calls.sort((a, b) => b.count - a.count);
}

/**
 * `lifeline_transactions_total{result="committed"}` by component, and the mean time one took
 * (`lifeline_transaction_seconds`), from a process's /metrics text.
 */
function committedTransactions(text: string): Map<string, CommittedTransactions> {
  const seconds = (kind: 'sum' | 'count', component: string): number | undefined => {
    const match = new RegExp(`^lifeline_transaction_seconds_${kind}\\{component="${component}"\\} ([0-9.e+-]+)$`, 'm').exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const counts = new Map<string, CommittedTransactions>();
  for (const match of text.matchAll(/^lifeline_transactions_total\{component="([^"]+)",result="committed"\} (\d+)/gm)) {
    const component = match[1] as string;
    const sum = seconds('sum', component);
    const timed = seconds('count', component);
    counts.set(component, { count: Number(match[2]), meanMs: sum !== undefined && timed ? (sum / timed) * 1000 : undefined });
  }
  return counts;
}

async function lifelineLatency(partitions?: number, transactions?: 'per_partition' | 'per_process'): Promise<{ latencies: number[]; accepted: number; retried: number; hops: HopTimes[]; slowest: SlowCharge[]; cpuShares: CpuShare[]; transactions: Map<string, CommittedTransactions>; loopDelays: Array<[string, LoopDelay]>; odooCalls: OdooCalls[] }> {
  // The Odoo simulator in a process of its own, as a real Odoo server is: in this one it would share
  // an event loop with the traffic sender and the topic collectors, and the sink's calls would wait on them.
  const odoo = await OdooSimulatorProcess.start();
  const simulator = { url: odoo.url, database: odoo.database, credentials: odoo.credentials };
  const topology = await writeGoldenTopology({ simulator, warnAfter: '10m', breachAfter: '15m', ...(partitions !== undefined ? { partitions } : {}), ...(transactions ? { transactions } : {}) });
  const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], topology.env).start();
  const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(','), ...(process.env.BENCH_PIPELINE_ARGS ?? '').split(' ').filter(Boolean)], topology.env).start();
  try {
    const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
    const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
    await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
    await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);
    const kafka = await testKafka();
    const serde = await registeredSerde();
    const results = await new TopicCollector<{ key: string; written_at: number }>(kafka, topology.topic('billing.vendor_bill.written.v1'), serde).start();
    const stages = await Promise.all(HOP_TOPICS.slice(0, -1).map(([, topic]) => new TopicCollector(kafka, topology.topic(topic)).start()));
    const products = await new TopicCollector(kafka, topology.topic('odoo.product.changed.v1'), serde).start();
    while (products.records.length < 19) await sleep(200); // enrich has its reference tables
    const plan = planTraffic({ events: RATE * SECONDS, duplicateRatio: 0, corrections: 0 });
    const sentAt = new Map<string, number>();
    const begin = Date.now();
    const infra = await infraStatus();
    let cpu: (() => CpuShare[]) | undefined;
    const sampling = sleep(WARM_UP_MS).then(async () => {
      cpu = await cpuSampler([
        ['lifeline intake (webhook, files, Odoo sources)', intake.pid], ['lifeline pipeline (processors, sinks)', pipeline.pid],
        ['Odoo simulator', odoo.pid], ...infra.map((component) => [component.name, component.pid] as const),
      ]);
    });
    const stats = await sendTraffic(plan.deliveries, {
      webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: RATE,
      // Timed from the request going out, not from the sender's queue: a pharmacy file of N rows holds
      // the next delivery back N / rate seconds (until 2026-12-03 that wait counted as the webhook hop's).
      onSend: (_index, delivery) => {
        if (delivery.kind === 'webhook' && plan.expected.charges.has(delivery.entityKey)) sentAt.set(delivery.entityKey, Date.now());
      },
    });
    await sampling;
    const cpuShares = cpu?.() ?? [];
    const deadline = Date.now() + 300_000;
    while (results.records.length < plan.expected.charges.size && Date.now() < deadline) await sleep(200);
    const latencies = results.records.flatMap(({ value }) => {
      const sent = sentAt.get(value.key);
      return sent === undefined || sent - begin < WARM_UP_MS ? [] : [value.written_at - sent];
    });
    // Where the time goes: from the request to each hop's record (its producer's timestamp), and between hops.
    const producedAt = [
      ...stages.map((collector) => new Map(collector.records.map((record) => [record.key, record.timestamp]))),
      new Map(results.records.map((record) => [record.value.key, record.timestamp])),
    ];
    const hops: HopTimes[] = HOP_TOPICS.map(([name], index) => ({ name, deltas: [] }));
    const slowest: SlowCharge[] = [];
    for (const [key, sent] of sentAt) {
      if (sent - begin < WARM_UP_MS) continue;
      let previous = sent;
      const charge: SlowCharge = { key, sentAtMs: sent - begin, hopMs: [] };
      for (let index = 0; index < hops.length; index++) {
        const at = producedAt[index]?.get(key);
        if (at === undefined) break;
        hops[index]?.deltas.push(at - previous);
        charge.hopMs.push(at - previous);
        previous = at;
      }
      slowest.push(charge);
    }
    slowest.sort((a, b) => sum(b.hopMs) - sum(a.hopMs)).splice(SLOWEST_SHOWN);
    await results.stop();
    await products.stop();
    for (const stage of stages) await stage.stop();
    const [intakeMetrics, pipelineMetrics] = [await metricsOf(intake), await metricsOf(pipeline)];
    const committed = new Map([...committedTransactions(intakeMetrics), ...committedTransactions(pipelineMetrics)]);
    const loopDelays: Array<[string, LoopDelay]> = [['lifeline intake', loopDelayOf(intakeMetrics)], ['lifeline pipeline', loopDelayOf(pipelineMetrics)]];
    return { latencies, accepted: stats.accepted, retried: stats.retriedAttempts, hops, slowest, cpuShares, transactions: committed, loopDelays, odooCalls: odooCalls(pipelineMetrics) };
  } finally {
    if (process.env.BENCH_KEEP_LOGS) {
      mkdirSync(process.env.BENCH_KEEP_LOGS, { recursive: true });
      const stamp = new Date().toISOString().replaceAll(':', '');
      writeFileSync(join(process.env.BENCH_KEEP_LOGS, `${stamp}-intake.log`), intake.lines.join('\n'));
      writeFileSync(join(process.env.BENCH_KEEP_LOGS, `${stamp}-pipeline.log`), pipeline.lines.join('\n'));
    }
    await pipeline.kill('SIGTERM');
    await intake.kill('SIGTERM');
    await odoo.stop();
  }
}

const rawModes: ReadonlyArray<{ mode: RawMode; name: string }> = [
  { mode: 'alo', name: `raw kafkajs, ${HOPS} pass-through hops, at-least-once (baseline)` },
  { mode: 'eos per partition', name: `raw kafkajs, ${HOPS} hops exactly-once, a transactional producer per partition (Lifeline's shape)` },
  { mode: 'eos per hop', name: `raw kafkajs, ${HOPS} hops exactly-once, one transactional producer per hop (KIP-447's shape)` },
];
const raws = [];
for (const { mode, name } of rawModes) {
  if (ONLY && !name.includes(ONLY)) continue;
  raws.push({ name, latencies: (await rawBaseline(mode)).sort((a, b) => a - b) });
}
/**
 * Two layouts of topology.yaml's pipeline: as shipped (3 partitions a topic, sized for scale-out),
 * and sized for this rate — one partition, which carries 200 events/s many times over. Every
 * partition of every processor is a task with transactions of its own, and kafkajs fetches again
 * only when every partition's batch is committed, so partitions a rate does not need cost latency.
 */
const layouts = [
  { name: 'topology.yaml as shipped (3 partitions a topic, transactions per_process: one producer a processor, KIP-447)', partitions: undefined, transactions: undefined },
  { name: 'as shipped but transactions per_partition (a producer per partition, the default before 2026-12-03 noon)', partitions: undefined, transactions: 'per_partition' },
  { name: `sized for ${RATE} events/s (1 partition a topic)`, partitions: 1, transactions: undefined },
] as const;
const runs = [];
for (const layout of layouts) {
  if (ONLY && !`lifeline ${layout.name}`.includes(ONLY)) continue;
  runs.push({ layout, result: await lifelineLatency(layout.partitions, layout.transactions) });
}
console.log(`\nend-to-end latency at ${RATE} events/s for ${SECONDS} s (first ${WARM_UP_MS / 1000} s not counted)\n`);
console.log('| pipeline | records timed | p50 ms | p99 ms | max ms | goal |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const { name, latencies } of raws) {
  console.log(`| ${name} | ${latencies.length.toLocaleString('en')} | ${percentile(latencies, 50)} | ${percentile(latencies, 99)} | ${latencies.at(-1)} | - |`);
}
for (const { layout, result } of runs) {
  const sorted = result.latencies.sort((a, b) => a - b);
  console.log(`| lifeline: webhook → dedup → enrich → odoo_sink → Odoo (EOS), ${layout.name} | ${sorted.length.toLocaleString('en')} | ${percentile(sorted, 50)} | ${percentile(sorted, 99)} | ${sorted.at(-1)} | p99 ≤ 300 ms |`);
}
for (const { layout, result } of runs) {
  console.log(`\n${layout.name}: where the time goes (each hop: from the previous hop's record, or the request, to the record this hop produced; the previous hop's commit and this hop's fetch included)\n`);
  console.log('| hop | records | p50 ms | p99 ms |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const hop of result.hops) {
    const deltas = hop.deltas.sort((a, b) => a - b);
    console.log(`| ${hop.name} | ${deltas.length.toLocaleString('en')} | ${deltas.length ? percentile(deltas, 50) : '-'} | ${deltas.length ? percentile(deltas, 99) : '-'} |`);
  }
  console.log(`\nthe ${SLOWEST_SHOWN} slowest charges, ms in each hop (${HOP_TOPICS.map(([name]) => name).join(', ')}), and when each was sent (s into the run):`);
  for (const charge of result.slowest) console.log(`- ${charge.key}: ${charge.hopMs.join(' + ')} = ${sum(charge.hopMs)} ms, sent at ${(charge.sentAtMs / 1000).toFixed(1)} s`);
  console.log(`\n${layout.name}: Kafka transactions committed during the run (${result.accepted.toLocaleString('en')} deliveries accepted; ${result.retried.toLocaleString('en')} attempts retried by the sender, a charge's time counting from its first), by component\n`);
  console.log('| component | transactions | mean ms each |');
  console.log('| --- | ---: | ---: |');
  for (const [component, { count, meanMs }] of [...result.transactions].sort()) console.log(`| ${component} | ${count.toLocaleString('en')} | ${meanMs === undefined ? '-' : meanMs.toFixed(1)} |`);
  console.log(`\n${layout.name}: the sinks' Odoo calls that answered, since start (one after another within a batch; the odoo_sink hop includes them)\n`);
  console.log('| component | operation | calls | mean ms each |');
  console.log('| --- | --- | ---: | ---: |');
  for (const call of result.odooCalls) console.log(`| ${call.component} | ${call.operation} | ${call.count.toLocaleString('en')} | ${call.meanMs.toFixed(1)} |`);
  console.log(`\n${layout.name}: event-loop delay over the run (a commit's every round trip waits this long to be read), and garbage collection since start\n`);
  console.log('| process | p50 ms | p99 ms | max ms | GC pauses | GC ms in all | GC pauses over 100 ms |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const [name, delay] of result.loopDelays) console.log(`| ${name} | ${delay.p50Ms.toFixed(1)} | ${delay.p99Ms.toFixed(1)} | ${delay.maxMs.toFixed(1)} | ${delay.gcPauses} | ${delay.gcMs.toFixed(0)} | ${delay.gcOver100Ms} |`);
  console.log(`\n${layout.name}: CPU while the charges were timed (cores busy, of ${cpus().length}; Linux only)\n`);
  console.log('| process | cores |');
  console.log('| --- | ---: |');
  for (const share of result.cpuShares) console.log(`| ${share.name} | ${share.cores === undefined ? '-' : share.cores.toFixed(2)} |`);
}
process.exit(0);
