// Soak with compressed time: `dedup` with `ttl: 10s` under `lifeline run` (LMDB, exactly-once) takes
// a steady stream of unique keys for several minutes — 10 s of TTL stands for days, so a few minutes
// stand for months of keys coming and expiring. Every sample reads the process's own metrics
// (`lifeline_store_entries`), its RSS and the LMDB folder's size. Flat means: entries level off at
// about rate × TTL and stay there, RSS and disk stop growing. The baseline is the run's own first
// sample after warm-up (two TTLs); the last sample is compared with it.
// `npm run bench -- soak`; BENCH_SOAK_MINUTES (default 4; the soak is 20) and BENCH_SOAK_RATE (default 300/s).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadContract } from '../src/kafka/avro-contract.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../testing/harness.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, registeredSerde, testEvent } from '../testing/runtime-fixture.ts';

const MINUTES = Number(process.env.BENCH_SOAK_MINUTES ?? 4);
const RATE = Number(process.env.BENCH_SOAK_RATE ?? 300);
const TTL_SECONDS = 10;
const SAMPLE_SECONDS = 15;
const PARTITIONS = 3;

const { brokers, registryUrl } = await infra();
const kafka = await testKafka(uniqueName('bench-soak'));
const admin = kafka.admin();
await admin.connect();
const serde = await registeredSerde();
const input = uniqueTopic('bench', 'soak', 'received');
const output = uniqueTopic('bench', 'soak', 'deduplicated');
await ensureTopics(admin, [{ name: input, partitions: PARTITIONS }, { name: output, partitions: PARTITIONS }]);
await serde.register(input, loadContract(TEST_EVENT_SCHEMA));

const dir = mkdtempSync(join(tmpdir(), 'lifeline-soak-'));
const stateDir = join(dir, 'state');
const label = `soak_dedup_${Date.now().toString(36)}`;
const schema = JSON.stringify(TEST_EVENT_SCHEMA);
writeFileSync(join(dir, 'topology.yaml'), [
  'version: 1',
  `app_id: ${uniqueName('soak').replace(/\./g, '_')}`,
  'connections:',
  `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-soak }`,
  `  registry: { url: ${JSON.stringify(registryUrl)} }`,
  'runtime:',
  '  http_port: 0',
  `  state_dir: ${JSON.stringify(stateDir)}`,
  '  store: lmdb',
  '  log_level: info',
  'topics:',
  `  ${input}: { key: id, value_schema: ${schema}, partitions: ${PARTITIONS}, retention: 1d, owner: bench, description: soak input, classification: phi }`,
  `  ${output}: { key: id, value_schema: ${schema}, partitions: ${PARTITIONS}, retention: 1d, owner: bench, description: soak output, classification: phi }`,
  'processors:',
  `  ${label}:`,
  '    type: dedup',
  `    inputs: [${input}]`,
  `    outputs: { unique: ${output} }`,
  `    config: { key_path: id, ttl: ${TTL_SECONDS}s }`,
  '',
].join('\n'));

const lifeline = new LifelineProcess(join(dir, 'topology.yaml'), []).start();
const pid = (JSON.parse(await lifeline.waitForLine(/"pid":\d+/)) as { pid: number }).pid;
const port = (JSON.parse(await lifeline.waitForLine(/serving \/metrics/)) as { port: number }).port;
await lifeline.waitForLine(/lifeline running/, 120_000);

async function storeEntries(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((line) => line.startsWith('lifeline_store_entries{') && line.includes(`component="${label}"`))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(' ') + 1)), 0);
}
const rssMiB = (): number => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
const diskMiB = (): number => Number(execFileSync('du', ['-sk', stateDir], { encoding: 'utf8' }).split('\t')[0]) / 1024;

interface Sample { seconds: number; sent: number; entries: number; rss: number; disk: number }
const samples: Sample[] = [];
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const started = performance.now();
let sent = 0;
let nextSample = SAMPLE_SECONDS;
const endAt = started + MINUTES * 60_000;
while (performance.now() < endAt) {
  // Steady rate: each 100 ms tick sends what is due by now.
  const due = Math.floor(((performance.now() - started) / 1000) * RATE);
  if (due > sent) {
    const messages = [];
    for (let index = sent; index < due; index++) {
      const event = testEvent(index);
      messages.push({ key: event.id, value: await serde.encode(input, event) });
    }
    await producer.send({ topic: input, messages, acks: -1 });
    sent = due;
  }
  const seconds = (performance.now() - started) / 1000;
  if (seconds >= nextSample) {
    samples.push({ seconds, sent, entries: await storeEntries(), rss: rssMiB(), disk: diskMiB() });
    nextSample += SAMPLE_SECONDS;
  }
  await sleep(100);
}
await producer.disconnect();
await lifeline.kill('SIGTERM');
await admin.disconnect();

const expected = RATE * TTL_SECONDS;
console.log(`dedup soak: ${RATE} unique keys/s for ${MINUTES} min, ttl ${TTL_SECONDS}s (expect about ${expected.toLocaleString('en')} live entries); ${sent.toLocaleString('en')} keys sent`);
console.log('| t (s) | keys sent | store entries | RSS MiB | LMDB MiB |');
console.log('| ---: | ---: | ---: | ---: | ---: |');
for (const sample of samples) console.log(`| ${sample.seconds.toFixed(0)} | ${sample.sent.toLocaleString('en')} | ${sample.entries.toLocaleString('en')} | ${sample.rss.toFixed(0)} | ${sample.disk.toFixed(1)} |`);
const warm = samples.find((sample) => sample.seconds >= 2 * TTL_SECONDS + SAMPLE_SECONDS) ?? samples[0];
const last = samples.at(-1);
if (warm && last) {
  console.log('\n| measure | baseline (first warm sample) | last sample | last / baseline |');
  console.log('| --- | ---: | ---: | ---: |');
  console.log(`| store entries | ${warm.entries.toLocaleString('en')} | ${last.entries.toLocaleString('en')} | ${(last.entries / Math.max(1, warm.entries)).toFixed(2)} |`);
  console.log(`| RSS MiB | ${warm.rss.toFixed(0)} | ${last.rss.toFixed(0)} | ${(last.rss / warm.rss).toFixed(2)} |`);
  console.log(`| LMDB MiB | ${warm.disk.toFixed(1)} | ${last.disk.toFixed(1)} | ${(last.disk / Math.max(0.1, warm.disk)).toFixed(2)} |`);
  console.log(`| keys sent | ${warm.sent.toLocaleString('en')} | ${last.sent.toLocaleString('en')} | ${(last.sent / Math.max(1, warm.sent)).toFixed(2)} |`);
}
process.exit(0);
