// Sizing, measured (`npm run bench -- sizing`): the golden path (topology.yaml as the repository
// declares it: intake in one `lifeline run`, dedup → enrich → odoo_sink and the SLA in another) at
// steady partner rates, each for a fixed time. Per rate it records the CPU (share of one core) and
// resident memory of both `lifeline run` processes and of the broker, how long after the last
// request Odoo held every record (0-2 s: the pipeline kept up), and the broker's disk growth per
// 10,000 partner events. The broker is the benchmark's own (its own LIFELINE_HOME and ports, so its
// disk holds only this run); the registry is the shared one, the Odoo simulator runs in this process.
//   BENCH_SIZING_RATES    partner events per second, comma-separated (default 0,25,50,100; 0 = idle:
//                         what the settled processes cost with no traffic — timers, commits, status, polling)
//   BENCH_SIZING_SECONDS  seconds of traffic per rate (default 30)
import { readFileSync, readdirSync, rmSync, statSync, mkdtempSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OdooClient } from '../connectors/odoo/odoo-client.ts';
import { planTraffic, type TrafficPlan } from '../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../dev/demo/traffic-sender.ts';
import { kafkaProcess, startKafka, stopKafka } from '../dev/infra/kafka-broker.ts';
import { runningPid } from '../dev/infra/java-process.ts';
import { localInfraSettings, type LocalInfraSettings } from '../dev/infra/settings.ts';
import { startOdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import { writeGoldenTopology } from '../testing/golden-path-fixture.ts';
import { createKafka } from '../src/kafka/client.ts';
import { cpuSeconds } from '../testing/process-cpu.ts';
import { waitForQuiescence } from '../testing/quiescence.ts';
import { LifelineProcess } from '../testing/runtime-fixture.ts';

const RATES = (process.env.BENCH_SIZING_RATES ?? '0,25,50,100').split(',').map(Number);
const STEP_SECONDS = Number(process.env.BENCH_SIZING_SECONDS ?? 30);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** Bytes of the broker's log segments (*.log, what records take) and bytes allocated on disk by all its files. */
function brokerDisk(dir: string): { logBytes: number; allocated: number } {
  let logBytes = 0;
  let allocated = 0;
  const walk = (path: string): void => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = join(path, entry.name);
      if (entry.isDirectory()) { walk(full); continue; }
      const stat = statSync(full);
      allocated += stat.blocks * 512;
      if (entry.name.endsWith('.log')) logBytes += stat.size;
    }
  };
  walk(dir);
  return { logBytes, allocated };
}

interface Watched { readonly name: string; readonly pid: () => number | undefined }

/** Samples CPU and RSS of the watched processes once a second until stopped. */
function watch(processes: readonly Watched[]) {
  const started = Date.now();
  const cpuStart = new Map(processes.map((process) => [process.name, cpuSeconds(process.pid() as number)]));
  const rss = new Map<string, number[]>(processes.map((process) => [process.name, []]));
  const sample = (): void => {
    for (const process of processes) {
      const pid = process.pid();
      if (pid !== undefined) rss.get(process.name)?.push(rssMiB(pid));
    }
  };
  sample();
  const timer = setInterval(sample, 1_000);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const seconds = (Date.now() - started) / 1000;
      return new Map(processes.map((process) => {
        const samples = rss.get(process.name) ?? [];
        const cpu = (cpuSeconds(process.pid() as number) - (cpuStart.get(process.name) ?? 0)) / seconds;
        return [process.name, { cpu, rssMean: samples.reduce((sum, value) => sum + value, 0) / Math.max(1, samples.length), rssMax: Math.max(...samples) }];
      }));
    },
  };
}

const shared = localInfraSettings();
const settings: LocalInfraSettings = { ...shared, root: mkdtempSync(join(tmpdir(), 'lifeline-sizing-')), cacheDir: shared.cacheDir, kafkaPort: await freePort(), controllerPort: await freePort(), secure: false };
const fromDist = existsSync('dist/BUILD.json');
if (!fromDist) console.log('note: no dist/ (run `npm run build`): the processes run the TypeScript sources through tsx, which costs memory');
await startKafka(settings);
const brokerPid = runningPid(kafkaProcess(settings));
const dataDir = join(settings.root, 'kafka', 'data');
const simulator = await startOdooSimulator({ port: 0 });
const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
const topology = await writeGoldenTopology({ simulator, warnAfter: '10m', breachAfter: '15m', brokers: [`127.0.0.1:${settings.kafkaPort}`] });
const env = { ...topology.env, ...(fromDist ? { LIFELINE_FROM_DIST: '1' } : {}) };
const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], env).start();
const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(',')], env).start();

async function odooHolds(plan: TrafficPlan): Promise<boolean> {
  const bills = await odoo.searchCount('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]]);
  const receipts = await odoo.searchCount('stock.picking', [['origin', 'like', plan.runId]]);
  return bills === plan.expected.charges.size + plan.expected.dispenses.size && receipts === plan.expected.deliveries.size;
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await sleep(250);
  }
}

const rows: string[] = [];
try {
  const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
  const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
  await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
  await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);
  const send = (plan: TrafficPlan, rate: number) => sendTraffic(plan.deliveries, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: rate });
  const idle = { intake: rssMiB(intake.pid as number), pipeline: rssMiB(pipeline.pid as number), broker: rssMiB(brokerPid as number) };

  // Warm-up: reference tables loaded, code paths compiled, Odoo's partners and products cached.
  // (The broker's JIT is warmed too: without this the first measured rate shows the broker's CPU inflated.)
  const warmUp = planTraffic({ events: 1_000, duplicateRatio: 0.2 });
  await send(warmUp, 100);
  await until('the warm-up to reach Odoo', () => odooHolds(warmUp), 180_000);

  const watched: Watched[] = [
    { name: 'intake', pid: () => intake.pid },
    { name: 'pipeline', pid: () => pipeline.pid },
    { name: 'broker', pid: () => brokerPid },
  ];
  const kafka = createKafka({ brokers: [`127.0.0.1:${settings.kafkaPort}`], clientId: 'sizing-bench' });
  for (const rate of RATES) {
    const diskBefore = brokerDisk(dataDir);
    const watcher = watch(watched);
    const cell = (measured: ReturnType<ReturnType<typeof watch>['stop']>, name: string) => {
      const value = measured.get(name) as { cpu: number; rssMean: number; rssMax: number };
      return `${(value.cpu * 100).toFixed(0)}% | ${value.rssMean.toFixed(0)} / ${value.rssMax.toFixed(0)}`;
    };
    const started = Date.now();
    if (rate === 0) {
      // Idle means settled: every processor and sink group has committed all of its input first.
      await waitForQuiescence(kafka, topology.pipelineLabels.map((label) => `${topology.appId}.${label}`), 120_000);
      watcher.stop();
      const settled = watch(watched);
      const idleDisk = brokerDisk(dataDir);
      await sleep(STEP_SECONDS * 1000);
      const measured = settled.stop();
      const grown = brokerDisk(dataDir).logBytes - idleDisk.logBytes;
      rows.push(`| idle | 0 | 0 | – | ${cell(measured, 'intake')} | ${cell(measured, 'pipeline')} | ${cell(measured, 'broker')} | ${(grown / 1024 / 1024 / STEP_SECONDS * 3600).toFixed(1)} per hour | – |`);
      continue;
    }
    const plan = planTraffic({ events: Math.round(rate * STEP_SECONDS), duplicateRatio: 0.2 });
    const stats = await send(plan, rate);
    const sentSeconds = (Date.now() - started) / 1000;
    const measured = watcher.stop(); // the steady window: while partners send at the rate
    await until(`the ${rate}/s step to reach Odoo`, () => odooHolds(plan), 300_000);
    const lagSeconds = (Date.now() - started) / 1000 - sentSeconds;
    const diskAfter = brokerDisk(dataDir);
    const per10k = (bytes: number) => ((bytes / stats.events) * 10_000) / 1024 / 1024;
    rows.push(`| ${rate} | ${stats.events} | ${(stats.events / sentSeconds).toFixed(1)} | ${lagSeconds.toFixed(1)} | ${cell(measured, 'intake')} | ${cell(measured, 'pipeline')} | ${cell(measured, 'broker')} | ${per10k(diskAfter.logBytes - diskBefore.logBytes).toFixed(1)} | ${per10k(diskAfter.allocated - diskBefore.allocated).toFixed(1)} |`);
    if (stats.failed.length > 0) console.log(`${rate}/s: ${stats.failed.length} deliveries failed, e.g. ${JSON.stringify(stats.failed[0])}`);
  }

  console.log(`\nGolden path at steady partner rates, ${STEP_SECONDS} s each (20% duplicates; ${fromDist ? 'built dist/' : 'TypeScript sources'}, Node ${process.version}); load average at the end ${loadavg().map((load) => load.toFixed(1)).join(' ')}`);
  console.log(`RSS when idle after start: intake ${idle.intake.toFixed(0)} MiB, pipeline ${idle.pipeline.toFixed(0)} MiB, broker ${idle.broker.toFixed(0)} MiB (heap 512m)`);
  console.log('| events/s asked | events | events/s sent | Odoo complete +s | intake CPU | intake RSS MiB mean / max | pipeline CPU | pipeline RSS MiB mean / max | broker CPU | broker RSS MiB mean / max | broker log MiB per 10k events | broker disk MiB per 10k events |');
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const row of rows) console.log(row);
  // Where the bytes are: log segments per topic (partitions added up), largest first.
  const byTopic = new Map<string, number>();
  for (const entry of readdirSync(dataDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const topic = entry.name.replace(/-\d+$/, '').replace(new RegExp(`_${topology.appId.replace(/^golden-/, '')}`, 'g'), '');
    byTopic.set(topic, (byTopic.get(topic) ?? 0) + brokerDisk(join(dataDir, entry.name)).logBytes);
  }
  const largest = [...byTopic].sort((a, b) => b[1] - a[1]).slice(0, 8);
  console.log(`largest topics (all steps and the warm-up): ${largest.map(([topic, bytes]) => `${topic} ${(bytes / 1024 / 1024).toFixed(1)} MiB`).join(', ')}`);
  const total = brokerDisk(dataDir);
  console.log(`broker data after the run: ${(total.logBytes / 1024 / 1024).toFixed(1)} MiB of log segments, ${(total.allocated / 1024 / 1024).toFixed(1)} MiB allocated (${readdirSync(dataDir).length} partition folders and metadata)`);
} finally {
  await pipeline.kill('SIGTERM');
  await intake.kill('SIGTERM');
  odoo.close();
  await simulator.close();
  await stopKafka(settings, { kill: true });
  rmSync(settings.root, { recursive: true, force: true });
  rmSync(topology.dir, { recursive: true, force: true });
}
