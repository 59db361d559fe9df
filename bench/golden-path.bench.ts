// The golden path's events per second on this machine (`npm run bench -- golden`), in one run of a few minutes.
// Two identical stacks, each its own Odoo simulator process (`lifeline dev odoo`, so the simulator's CPU is not
// charged to Lifeline), an intake `lifeline run` and a pipeline `lifeline run`, on the real broker and registry,
// topology.yaml as the repository declares it:
// 1. baseline: intake only — the "filled" stack's sources (webhooks, file drops) accept BENCH_GOLDEN_FILL (20,000)
//    partner events into Kafka, nothing downstream runs;
// 2. its pipeline — dedup → enrich → odoo_sink (and the SLA) — drains that backlog into its Odoo;
// 3. one end-to-end batch warms the "empty" stack;
// 4. end to end, from the first partner request until Odoo holds every record, in batches of BENCH_GOLDEN_BATCH events,
//    BENCH_GOLDEN_ROUNDS rounds interleaved between the stacks: "empty" (its Odoo emptied back to the seed data before
//    each batch) and "filled" (Odoo holding the 20,000 events and the batches since). The verdict compares the two
//    batches of each round (run back to back, under about the same machine load).
import { setTimeout as sleep } from 'node:timers/promises';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { planTraffic, type TrafficPlan } from '../dev/demo/partner-traffic.ts';
import { sendTraffic, type SendStats } from '../dev/demo/traffic-sender.ts';
import { writeGoldenTopology, type GoldenTopology } from '../testing/golden-path-fixture.ts';
import { OdooSimulatorProcess } from '../testing/odoo-simulator-process.ts';
import { LifelineProcess } from '../testing/runtime-fixture.ts';

const FILL = Number(process.env.BENCH_GOLDEN_FILL ?? 20_000);
const BATCH = Number(process.env.BENCH_GOLDEN_BATCH ?? 3_000);
const ROUNDS = Number(process.env.BENCH_GOLDEN_ROUNDS ?? 3);

interface Stack {
  readonly name: string;
  readonly simulator: OdooSimulatorProcess;
  readonly odoo: OdooClient;
  readonly topology: GoldenTopology;
  readonly intake: LifelineProcess;
  readonly pipeline: LifelineProcess;
  send(plan: TrafficPlan): Promise<SendStats>;
}

/** Stops what was started, last first, whatever failed. */
const cleanups: Array<() => Promise<void>> = [];

async function startStack(name: string, withPipeline: boolean): Promise<Stack> {
  const simulator = await OdooSimulatorProcess.start();
  cleanups.push(() => simulator.stop());
  const target = { url: simulator.url, database: simulator.database, credentials: simulator.credentials };
  const topology = await writeGoldenTopology({ simulator: target, warnAfter: '10m', breachAfter: '15m' });
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  // A loaded machine can miss a 6 s session's heartbeats (a rebalance in the middle of a batch): 30 s, as in production.
  const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(','), '--session-timeout-ms', '30000'], topology.env).start();
  cleanups.push(() => intake.kill('SIGTERM'));
  const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(','), '--session-timeout-ms', '30000'], topology.env);
  cleanups.push(() => pipeline.kill('SIGTERM'));
  const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
  const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
  await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
  if (withPipeline) {
    pipeline.start();
    await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);
  }
  return {
    name, simulator, odoo, topology, intake, pipeline,
    send: (plan) => sendTraffic(plan.deliveries, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, concurrency: 64 }),
  };
}

/** Odoo holds a bill or receipt for every unique record of the plan (checked record by record once it is timed). */
async function odooHolds(stack: Stack, plan: TrafficPlan): Promise<boolean> {
  const bills = await stack.odoo.searchCount('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]]);
  const receipts = await stack.odoo.searchCount('stock.picking', [['origin', 'like', plan.runId]]);
  return bills === plan.expected.charges.size + plan.expected.dispenses.size && receipts === plan.expected.deliveries.size;
}

/** The records a plan adds to Odoo (a bill per charge and dispense, a receipt per delivery). */
function recordsOf(plan: TrafficPlan): number {
  return plan.expected.charges.size + plan.expected.dispenses.size + plan.expected.deliveries.size;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(250);
  }
}

/** Bills and receipts in the stack's Odoo. */
async function odooRecords(stack: Stack): Promise<number> {
  const { records } = await stack.simulator.state();
  return (records['account.move'] ?? 0) + (records['stock.picking'] ?? 0);
}

/**
 * One end-to-end batch: from the first partner request until Odoo holds every record of it. While
 * timing, the table sizes (`/__simulator/state`, constant time) tell when enough records arrived, so
 * the poll costs the same in a full Odoo as in an empty one; then the records are checked by run id.
 */
async function endToEnd(stack: Stack): Promise<{ events: number; seconds: number; before: number; failed: number }> {
  const before = await odooRecords(stack);
  const plan = planTraffic({ events: BATCH, duplicateRatio: 0.2, seed: 7 });
  const started = Date.now();
  const stats = await stack.send(plan);
  await until(`the ${stack.name} batch to reach Odoo`, async () => (await odooRecords(stack)) >= before + recordsOf(plan));
  const seconds = (Date.now() - started) / 1000;
  if (!(await odooHolds(stack, plan))) throw new Error(`the ${stack.name} stack's Odoo gained ${(await odooRecords(stack)) - before} records, but not the batch's ${recordsOf(plan)}`);
  return { events: stats.events, seconds, before, failed: stats.failed.length };
}

const stacks: Stack[] = [];
try {
  const [filled, empty] = await Promise.all([startStack('filled', false), startStack('empty', true)]) as [Stack, Stack];
  stacks.push(filled, empty);

  // 1. Baseline: intake only, on the filled stack (its pipeline is not running yet).
  const backlog = planTraffic({ events: FILL, duplicateRatio: 0.2 });
  const intakeStarted = Date.now();
  const intakeStats = await filled.send(backlog);
  // Files are taken after they settle; the intake is done when the last file has left its inbox.
  await until('the pharmacy files to be ingested', async () => filled.intake.lines.filter((line) => /"msg":"file (archived|ingested)/.test(line) || /already (ingested|rejected)/.test(line)).length >= backlog.deliveries.filter((delivery) => delivery.kind === 'file').length);
  const intakeSeconds = (Date.now() - intakeStarted) / 1000;
  const baseline = intakeStats.events / intakeSeconds;

  // 2. Its pipeline drains that backlog into its Odoo: Odoo now holds the 20,000 events.
  const drainBefore = await odooRecords(filled);
  const drainStarted = Date.now();
  filled.pipeline.start();
  await until('the pipeline to drain the backlog into Odoo', () => odooHolds(filled, backlog));
  const drainSeconds = (Date.now() - drainStarted) / 1000;

  // 3. One batch warms the empty stack's processes as the filled stack's are warm; then its Odoo is emptied.
  const warmUp = await endToEnd(empty);

  // 4. Interleaved end-to-end batches; the empty stack's Odoo is emptied before each of its batches.
  const measured: Array<{ round: number; stack: string; events: number; seconds: number; before: number; failed: number }> = [];
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 === 1 ? [empty, filled] : [filled, empty];
    for (const stack of order) {
      if (stack === empty) await empty.simulator.resetData();
      measured.push({ round, stack: stack.name, ...(await endToEnd(stack)) });
    }
  }

  const rate = (events: number, seconds: number): number => events / seconds;
  const row = (step: string, held: string, events: number, seconds: number): string =>
    `| ${step} | ${held} | ${events} | ${seconds.toFixed(1)} | ${rate(events, seconds).toFixed(0)} | ${((rate(events, seconds) / baseline) * 100).toFixed(0)}% |`;
  console.log(`\n${FILL} partner events to fill Odoo, end-to-end batches of ${BATCH} (20% duplicates), ${ROUNDS} rounds; each Odoo simulator in its own process`);
  console.log('| step | Odoo held before (bills + receipts) | events | seconds | events/s | vs baseline |');
  console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
  console.log(row('1. intake only: sources accept into Kafka (baseline)', '–', intakeStats.events, intakeSeconds));
  console.log(row('2. pipeline alone: that backlog → dedup → enrich → Odoo', drainBefore.toLocaleString('en-US'), intakeStats.events, drainSeconds));
  console.log(row('3. end to end, warm-up of the empty stack', warmUp.before.toLocaleString('en-US'), warmUp.events, warmUp.seconds));
  for (const entry of measured) console.log(row(`4. end to end, round ${entry.round}, ${entry.stack}`, entry.before.toLocaleString('en-US'), entry.events, entry.seconds));
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  };
  const rateOf = (round: number, name: string): number => {
    const entry = measured.find((candidate) => candidate.round === round && candidate.stack === name) as (typeof measured)[number];
    return rate(entry.events, entry.seconds);
  };
  const rounds = Array.from({ length: ROUNDS }, (_, index) => index + 1);
  const emptyRate = median(rounds.map((round) => rateOf(round, 'empty')));
  const filledRate = median(rounds.map((round) => rateOf(round, 'filled')));
  // Each round's two batches ran back to back, under about the same machine load: their ratio is the fairer comparison.
  const ratios = rounds.map((round) => rateOf(round, 'filled') / rateOf(round, 'empty'));
  const ratio = median(ratios);
  console.log(`\nend to end, median of ${ROUNDS} rounds: empty Odoo ${emptyRate.toFixed(0)} events/s, after ${FILL} events ${filledRate.toFixed(0)} events/s; filled/empty per round ${ratios.map((value) => `${(value * 100).toFixed(0)}%`).join(', ')}, median ${(ratio * 100).toFixed(0)}% (${ratio >= 0.85 ? 'within' : 'NOT within'} 15%)`);
  const failed = intakeStats.failed.length + warmUp.failed + measured.reduce((sum, entry) => sum + entry.failed, 0);
  if (failed > 0) console.log(`${failed} deliveries failed`);
  // What the processes complained about (retries, rebalances), to explain a slow step.
  const complaints = new Map<string, number>();
  for (const stack of stacks) {
    for (const line of [...stack.intake.lines, ...stack.pipeline.lines]) {
      const match = /"level":"(warn|error)".*"msg":"([^"]+)"/.exec(line);
      if (!match || line.includes('"component":"kafkajs"')) continue;
      const code = /"code":"([^"]+)"/.exec(line)?.[1];
      const complaint = `${stack.name} ${match[1]}: ${match[2]}${code ? ` (${code})` : ''}`;
      complaints.set(complaint, (complaints.get(complaint) ?? 0) + 1);
    }
  }
  for (const [message, count] of complaints) console.log(`${count} × ${message}`);
} finally {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
}
