// The golden path's events per second on this machine (`npm run bench -- golden`), three ways, in one run:
// 1. baseline: intake only — the sources (webhooks, file drops) accept partner traffic into Kafka, nothing downstream runs;
// 2. the pipeline alone — dedup → enrich → odoo_sink (and the SLA) drain the backlog that step 1 left into the Odoo simulator;
// 3. end to end — a new batch of traffic through everything at once, from the first request until Odoo holds every record.
// Real broker and registry, the Odoo simulator in this process, topology.yaml as the repository declares it.
// BENCH_GOLDEN_EVENTS sets the events per step (default 10,000, 20% duplicates).
import { setTimeout as sleep } from 'node:timers/promises';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { planTraffic, type TrafficPlan } from '../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../dev/demo/traffic-sender.ts';
import { startOdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import { writeGoldenTopology } from '../testing/golden-path-fixture.ts';
import { LifelineProcess } from '../testing/runtime-fixture.ts';

const EVENTS = Number(process.env.BENCH_GOLDEN_EVENTS ?? 10_000);

const simulator = await startOdooSimulator({ port: 0 });
const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
const topology = await writeGoldenTopology({ simulator, warnAfter: '10m', breachAfter: '15m' });
const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], topology.env).start();
const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(',')], topology.env);
const rows: Array<[string, number, number]> = [];

/** Odoo holds a bill or receipt for every unique record of the plan. */
async function odooHolds(plan: TrafficPlan): Promise<boolean> {
  const bills = await odoo.searchCount('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]]);
  const receipts = await odoo.searchCount('stock.picking', [['origin', 'like', plan.runId]]);
  return bills === plan.expected.charges.size + plan.expected.dispenses.size && receipts === plan.expected.deliveries.size;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(2_000);
  }
}

try {
  const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
  const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
  await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
  const send = (plan: TrafficPlan) => sendTraffic(plan.deliveries, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, concurrency: 64 });

  if (process.env.BENCH_GOLDEN_END_TO_END_ONLY === '1') {
    // Step 3 alone, on an empty Odoo and empty stores: tells whether step 3 is slower for the data steps 1-2 left.
    pipeline.start();
    await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);
    const live = planTraffic({ events: EVENTS, duplicateRatio: 0.2, seed: 7 });
    const liveStarted = Date.now();
    const liveStats = await send(live);
    await until('the end-to-end batch to reach Odoo', () => odooHolds(live));
    const seconds = (Date.now() - liveStarted) / 1000;
    console.log(`end to end only: ${liveStats.events} events in ${seconds.toFixed(1)} s = ${(liveStats.events / seconds).toFixed(0)} events/s`);
  } else {
    await threeSteps(send);
  }
} finally {
  await pipeline.kill('SIGTERM');
  await intake.kill('SIGTERM');
  odoo.close();
  await simulator.close();
}

/** Steps 1-3 of the table above. */
async function threeSteps(send: (plan: TrafficPlan) => ReturnType<typeof sendTraffic>): Promise<void> {
  const backlog = planTraffic({ events: EVENTS, duplicateRatio: 0.2 });
  const intakeStarted = Date.now();
  const intakeStats = await send(backlog);
  // Files are taken after they settle; the intake is done when the last file has left its inbox.
  await until('the pharmacy files to be ingested', async () => intake.lines.filter((line) => /"msg":"file (archived|ingested)/.test(line) || /already (ingested|rejected)/.test(line)).length >= backlog.deliveries.filter((delivery) => delivery.kind === 'file').length);
  const intakeSeconds = (Date.now() - intakeStarted) / 1000;
  rows.push(['1. intake only: sources accept into Kafka (baseline)', intakeStats.events, intakeSeconds]);

  const drainStarted = Date.now();
  pipeline.start();
  await until('the pipeline to drain the backlog into Odoo', () => odooHolds(backlog));
  rows.push(['2. pipeline alone: backlog → dedup → enrich → Odoo', intakeStats.events, (Date.now() - drainStarted) / 1000]);

  const live = planTraffic({ events: EVENTS, duplicateRatio: 0.2, seed: 7 });
  const liveStarted = Date.now();
  const liveStats = await send(live);
  await until('the end-to-end batch to reach Odoo', () => odooHolds(live));
  rows.push(['3. end to end: partner request → record in Odoo', liveStats.events, (Date.now() - liveStarted) / 1000]);

  const failed = intakeStats.failed.length + liveStats.failed.length;
  console.log(`\n${EVENTS} partner events per step (20% duplicates): ${backlog.counts.unique} unique → ${backlog.expected.charges.size} lab charges, ${backlog.expected.deliveries.size} supply deliveries, ${backlog.expected.dispenses.size} pharmacy dispenses; ${failed} failed deliveries`);
  console.log('| step | events | seconds | events/s | vs baseline |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  const baseline = (rows[0] as [string, number, number])[1] / (rows[0] as [string, number, number])[2];
  for (const [step, events, seconds] of rows) {
    const rate = events / seconds;
    console.log(`| ${step} | ${events} | ${seconds.toFixed(1)} | ${rate.toFixed(0)} | ${((rate / baseline) * 100).toFixed(0)}% |`);
  }
  // What the processes complained about (retries, rebalances), to explain a slow step.
  const complaints = new Map<string, number>();
  for (const line of [...intake.lines, ...pipeline.lines]) {
    const match = /"level":"(warn|error)".*"msg":"([^"]+)"/.exec(line);
    if (match && !line.includes('"component":"kafkajs"')) complaints.set(`${match[1]}: ${match[2]}`, (complaints.get(`${match[1]}: ${match[2]}`) ?? 0) + 1);
  }
  for (const [message, count] of complaints) console.log(`${count} × ${message}`);
}
