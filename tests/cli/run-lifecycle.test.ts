// `lifeline run` as an orchestrator sees it: started while the broker (then the registry) cannot be
// reached, it says it is starting and why (JSON logs, /readyz 503, /healthz live), and becomes ready
// by itself once they answer; a healthy start logs no error-level line; SIGTERM with records in
// flight stops it within 5 s. Outages are made with a TCP proxy this test opens and closes: the
// shared broker and registry keep running.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OdooSimulator } from '../../dev/odoo-simulator/odoo-simulator.ts';
import { writeGoldenTopology } from '../../testing/golden-path-fixture.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { infra } from '../../testing/harness.ts';
import { useOdooSimulator } from '../../testing/odoo-simulator-fixture.ts';
import { LifelineProcess, testEvent, testEventTopic, writeCounterTopology } from '../../testing/runtime-fixture.ts';

/** A TCP proxy to `target` on a port reserved now; it accepts connections only while open. */
class Outage {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private constructor(readonly port: number, private readonly target: { host: string; port: number }) {}

  static async reserve(target: string): Promise<Outage> {
    const url = new URL(target.includes('://') ? target : `tcp://${target}`);
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return new Outage(port, { host: url.hostname, port: Number(url.port) });
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => { client.destroy(); upstream.destroy(); });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
}

interface Health { live: boolean; ready: boolean; starting?: string; components: Record<string, { state: string; detail?: string }> }

async function health(port: number, path: '/healthz' | '/readyz'): Promise<{ status: number; body: Health }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, body: await response.json() as Health };
}

async function httpPort(process: LifelineProcess): Promise<number> {
  const line = await process.waitForLine(/serving \/metrics/, 60_000);
  return (JSON.parse(line) as { port: number }).port;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(250);
  }
}

/** Waits for /readyz to answer 200; on a timeout the error shows its last answer. */
async function untilReady(port: number, timeoutMs: number): Promise<void> {
  let last: unknown;
  await until('ready', async () => {
    const answer = await health(port, '/readyz');
    last = answer.body;
    return answer.status === 200 ? true : undefined;
  }, timeoutMs).catch((error: unknown) => {
    throw new Error(`${String(error)}; last /readyz: ${JSON.stringify(last)}`);
  });
}

function jsonLines(process: LifelineProcess): Array<Record<string, unknown>> {
  return process.lines.filter((line) => line.trim() !== '').map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`a log line is not JSON: ${line}`);
    }
  });
}

async function stopAndMeasure(process: LifelineProcess): Promise<number> {
  const started = Date.now();
  await process.kill('SIGTERM');
  return Date.now() - started;
}

for (const dependency of ['broker', 'registry'] as const) {
  test(`a run started while the ${dependency} is unreachable waits, says why, and becomes ready by itself`, { timeout: 240_000 }, async () => {
    const { brokers, registryUrl } = await infra();
    const topology = await writeCounterTopology({ partitions: 2 });
    const outage = await Outage.reserve(dependency === 'broker' ? brokers[0] as string : registryUrl);
    const text = readFileSync(topology.file, 'utf8');
    writeFileSync(topology.file, dependency === 'broker'
      ? text.replace(JSON.stringify(brokers[0]), JSON.stringify(`127.0.0.1:${outage.port}`))
      : text.replace(JSON.stringify(registryUrl), JSON.stringify(registryUrl.replace(/:\d+\//, `:${outage.port}/`))));
    const input = await testEventTopic(topology.input, 2);
    const lifeline = new LifelineProcess(topology.file).start();
    try {
      const port = await httpPort(lifeline);
      const waiting = await until('health says starting', async () => {
        const ready = await health(port, '/readyz');
        return ready.body.starting !== undefined && /ECONNREFUSED|connect|Connection/i.test(ready.body.starting) ? ready : undefined;
      }, 60_000);
      assert.equal(waiting.status, 503);
      assert.equal(waiting.body.ready, false);
      const live = await health(port, '/healthz');
      assert.equal(live.status, 200, 'waiting for a dependency is alive, not failed');
      await lifeline.waitForLine(/waiting to start/, 60_000);
      assert.equal(lifeline.exitCode, undefined, 'it keeps waiting rather than exiting');

      await outage.open();
      await untilReady(port, 120_000);
      const ready = await health(port, '/readyz');
      assert.equal(ready.body.starting, undefined);
      assert.deepEqual(Object.values(ready.body.components).map((component) => component.state), ['running']);
      await input.send([testEvent(1), testEvent(2)]); // it works, not just says so
      const waitingLines = jsonLines(lifeline).filter((line) => line.msg === 'waiting to start: preparing Kafka topics and registering schemas');
      assert.ok(waitingLines.length > 0 && waitingLines.every((line) => line.level === 'warn'), 'waiting is logged as JSON warnings');
    } finally {
      await lifeline.kill('SIGTERM');
      await outage.close();
      await input.close();
    }
    assert.equal(lifeline.exitCode, 0);
  });
}

test('a healthy start logs no error-level line, and SIGTERM with records in flight stops within 5 s', { timeout: 240_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 3, commitMaxRecords: 50 });
  const input = await testEventTopic(topology.input, 3);
  const lifeline = new LifelineProcess(topology.file).start();
  try {
    const port = await httpPort(lifeline);
    await untilReady(port, 120_000);
    await input.send(Array.from({ length: 3000 }, (_, index) => testEvent(index)));
    await lifeline.waitForLine(/"msg":"[^"]*(commit|partition)/i, 60_000).catch(() => undefined);
    const stopMs = await stopAndMeasure(lifeline);
    console.log(`stopped in ${stopMs} ms`);
    assert.equal(lifeline.exitCode, 0, lifeline.lines.slice(-10).join('\n'));
    assert.ok(stopMs < 5_000, `stopped in ${stopMs} ms`);
    const errors = jsonLines(lifeline).filter((line) => line.level === 'error' || line.level === 'fatal');
    assert.deepEqual(errors, [], 'no error-level line in a healthy run');
  } finally {
    await lifeline.kill('SIGKILL');
    await input.close();
  }
});

let simulator: OdooSimulator;
useOdooSimulator((started) => { simulator = started.simulator; });

test('the golden path split in two processes starts with no error-level line and each stops within 5 s', { timeout: 300_000 }, async () => {
  const topology = await writeGoldenTopology({ simulator, warnAfter: '1h', breachAfter: '2h' });
  const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], topology.env).start();
  const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(',')], topology.env).start();
  try {
    for (const process of [intake, pipeline]) {
      const port = await httpPort(process);
      await untilReady(port, 180_000);
    }
    const [intakeMs, pipelineMs] = await Promise.all([stopAndMeasure(intake), stopAndMeasure(pipeline)]);
    for (const line of pipeline.lines.filter((text) => /did not stop|"stopped"|stopped"/.test(text))) console.log(line.slice(0, 400));
    console.log(`intake stopped in ${intakeMs} ms, pipeline (${topology.pipelineLabels.length} components) in ${pipelineMs} ms`);
    for (const process of [intake, pipeline]) {
      assert.equal(process.exitCode, 0, process.lines.slice(-10).join('\n'));
      const errors = jsonLines(process).filter((line) => line.level === 'error' || line.level === 'fatal');
      assert.deepEqual(errors, [], 'no error-level line in a healthy start and stop');
    }
    assert.ok(intakeMs < 5_000 && pipelineMs < 5_000, `stopped in ${intakeMs} ms and ${pipelineMs} ms`);
  } finally {
    await Promise.all([intake.kill('SIGKILL'), pipeline.kill('SIGKILL')]);
  }
});

test('commands that only read need no Odoo key, Odoo user or webhook secret', { timeout: 180_000 }, async () => {
  const unset = ['ODOO_API_KEY', 'ODOO_USERNAME', 'LIFELINE_WEBHOOK_SECRET_QUEST_LAB', 'LIFELINE_WEBHOOK_SECRET_LABCORP', 'LIFELINE_WEBHOOK_SECRET_MCKESSON', 'LIFELINE_WEBHOOK_SECRET_MEDLINE'];
  const present = unset.filter((name) => process.env[name] !== undefined);
  if (present.length > 0) return; // a developer's shell that sets them proves nothing here
  // The repository's topology.yaml, pointed at the test broker and registry the way an operator would (its own defaults are the dev ports).
  const { brokers, registryUrl } = await infra();
  const env = { LIFELINE_KAFKA_BROKERS: brokers[0] as string, LIFELINE_REGISTRY_URL: registryUrl };
  for (const args of [['topics', 'list'], ['groups', 'list'], ['dlq', 'list'], ['audit', 'list', '--last', '1'], ['topology', 'describe'], ['topology', 'graph']]) {
    const result = await runLifeline([...args, '--topology', 'topology.yaml'], { timeoutMs: 60_000, env });
    assert.equal(result.code, 0, `lifeline ${args.join(' ')}: ${result.stderr}`);
    assert.doesNotMatch(result.stderr, /is not set/, `lifeline ${args.join(' ')} asked for a value it does not use`);
  }
});
