// The console at the size issue 15 names: 100 topics, 50 consumer groups and 10,000 dead letters on
// the real broker. Measures each API view cold (first read) and warm, and in headless Chromium how
// long the Flows and Dead letters pages take to show their data after navigation; the page budget
// is 1 s. Everything it creates is deleted at the end.
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { openOpsSession } from '../src/cli/ops-session.ts';
import { startConsole } from '../src/console/console-server.ts';
import { loadContract } from '../src/kafka/avro-contract.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { deadLetterMessage } from '../src/runtime/dead-letter.ts';
import { deadLetterTopic } from '../src/topology/model.ts';
import { writeTestOperators } from '../testing/cli-runner.ts';
import { testKafka } from '../testing/harness.ts';
import { TEST_EVENT_SCHEMA, registeredSerde, testEvent } from '../testing/runtime-fixture.ts';
import { writeTestTopology } from '../testing/topology-writer.ts';

const GROUPS = Number(process.env.BENCH_GROUPS ?? 50);
const DEAD_LETTERS = Number(process.env.BENCH_DEAD_LETTERS ?? 10_000);
const PAGE_BUDGET_MS = 1000;
const CHROMIUM = process.env.LIFELINE_CHROMIUM ?? '/usr/bin/chromium';

const run = randomBytes(3).toString('hex');
const inputs = Array.from({ length: GROUPS }, (_, index) => `bench.console_${run}_${index}.received.v1`);
const outputs = inputs.map((topic) => topic.replace('.received.v1', '.deduplicated.v1'));
const labels = inputs.map((_, index) => `bench_dedup_${run}_${index}`);
const topicSpecs = Object.fromEntries([...inputs, ...outputs].map((topic) => [topic, { schema: TEST_EVENT_SCHEMA, partitions: 1, key: 'account', classification: 'phi' as const }]));
const processors = Object.fromEntries(labels.map((label, index) => [label, { type: 'dedup', inputs: [inputs[index] as string], outputs: { unique: outputs[index] as string }, config: { ttl: '1d', repartition: false } }]));
const written = await writeTestTopology({ topics: topicSpecs, processors });
const operators = writeTestOperators();

const kafka = await testKafka();
const admin = kafka.admin();
await admin.connect();
const serde = await registeredSerde();
const setupStarted = performance.now();
const allTopics = [...inputs, ...outputs, deadLetterTopic(labels[0] as string)];
await ensureTopics(admin, allTopics.map((name) => ({ name, partitions: 1 })));
const step = (what: string): void => console.log(`  ${what} at ${Math.round(performance.now() - setupStarted)} ms`);
step('topics created');
const contract = loadContract(TEST_EVENT_SCHEMA);
for (const topic of [...inputs, ...outputs]) await serde.register(topic, contract);
step('schemas registered');
const producer = kafka.producer();
await producer.connect();
for (const topic of inputs) {
  await producer.send({ topic, acks: -1, messages: await Promise.all(Array.from({ length: 20 }, async (_, index) => ({ key: `ACC-${index}`, value: await serde.encode(topic, testEvent(index)) }))) });
}
step('records produced');
// Each group has committed half of its input: 10 records behind.
await Promise.all(labels.map((label, index) => admin.setOffsets({ groupId: `${written.appId}.${label}`, topic: inputs[index] as string, partitions: [{ partition: 0, offset: '10' }] })));
step('offsets committed');
const value = await serde.encode(inputs[0] as string, testEvent(1));
for (let sent = 0; sent < DEAD_LETTERS; sent += 1000) {
  const batch = Array.from({ length: Math.min(1000, DEAD_LETTERS - sent) }, (_, index) => deadLetterMessage({
    component: labels[0] as string, error: new Error(`dedup: record ${sent + index} has no idempotency key`), attempts: 1,
    origin: { topic: inputs[0] as string, partition: 0, offset: String(sent + index) }, key: `ACC-${index % 40}`, value,
  }));
  await producer.send({ topic: deadLetterTopic(labels[0] as string), acks: -1, messages: batch });
}
await producer.disconnect();
console.log(`setup: ${allTopics.length} topics, ${GROUPS} groups, ${DEAD_LETTERS} dead letters in ${Math.round(performance.now() - setupStarted)} ms`);

process.env.LIFELINE_OPERATORS_FILE = operators.file;
const session = openOpsSession({ topology: written.file }, 'console bench');
const consoleServer = await startConsole({ session, logger: pino({ level: 'warn' }), port: 0 });
const headers = { 'x-lifeline-operator': 'viola', 'x-lifeline-token': operators.as('viola').LIFELINE_OPERATOR_TOKEN as string };

async function timed(path: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(`${consoleServer.url}${path}`, { headers });
  await response.text();
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return performance.now() - started;
}

const rows: Array<[string, string, string]> = [];
for (const path of ['/api/flows', `/api/flows/${labels[0]}`, '/api/groups', '/api/topics', '/api/dead-letters', `/api/dead-letters/${labels[0]}?limit=200`, `/api/topics/${inputs[0]}/messages`, '/api/sla']) {
  const cold = await timed(path);
  await new Promise((resolve) => setTimeout(resolve, 2100)); // past the views' 2 s cache
  const warm: number[] = [];
  for (let index = 0; index < 3; index++) warm.push(await timed(path));
  rows.push([path, `${Math.round(cold)}`, `${Math.round(Math.min(...warm))}-${Math.round(Math.max(...warm))}`]);
}
console.log('\n| API view | first read ms | later reads ms (served, refreshed behind) |\n| --- | --- | --- |');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);

let verdict = 0;
if (existsSync(CHROMIUM) && existsSync('console/dist/index.html')) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'] });
  const page = await browser.newPage();
  await page.goto(`${consoleServer.url}/flows`);
  await page.getByTestId('login-identity').fill('viola');
  await page.getByTestId('login-token').fill(headers['x-lifeline-token']);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('flow-graph').waitFor();
  const pages: Array<[string, string, number]> = [];
  for (const [path, ready] of [['/flows', `[data-testid="node-${labels[1]}"]`], ['/dead-letters', '[data-testid="dlq-groups"] tbody tr'], [`/dead-letters/${labels[0]}`, '[data-testid="dead-letter-value"]'], ['/consumers', '[data-testid^="group-"]'], ['/topics', '[data-testid="topics"] tbody tr']] as const) {
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const started = performance.now();
    await page.goto(`${consoleServer.url}${path}`);
    await page.locator(ready).first().waitFor({ timeout: 60_000 });
    pages.push([path, ready, performance.now() - started]);
  }
  await browser.close();
  console.log(`\n| page (full load, data shown) | ms | budget ${PAGE_BUDGET_MS} ms |\n| --- | --- | --- |`);
  for (const [path, , ms] of pages) {
    console.log(`| ${path} | ${Math.round(ms)} | ${ms <= PAGE_BUDGET_MS ? 'ok' : 'OVER'} |`);
    if (ms > PAGE_BUDGET_MS) verdict = 1;
  }
} else {
  console.log('no Chromium or no built page (npm run build:console): page timings skipped');
}

await consoleServer.close();
await session.close();
await admin.deleteTopics({ topics: allTopics }).catch(() => undefined);
await admin.deleteGroups(labels.map((label) => `${written.appId}.${label}`)).catch(() => undefined);
await admin.disconnect();
process.exit(verdict);
