import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { planTraffic, type WebhookDelivery } from '../../../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../../../dev/demo/traffic-sender.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { alertRulesYaml, type RuleFile } from '../../../src/observe/alerting.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { writeGoldenTopology } from '../../../testing/golden-path-fixture.ts';
import { LifelineProcess } from '../../../testing/runtime-fixture.ts';

/**
 * The generated rules in a real Prometheus (Debian's prometheus package) scraping a running golden
 * path: stopping the Odoo simulator fires LifelineOdooUnreachable, bringing it back resolves it.
 * The rules are `lifeline observe rules` output with the `for:` holds shortened (2m → 2s) so the
 * test does not wait minutes; expressions and labels are as generated.
 */

const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface PrometheusAlert { labels: Record<string, string>; state: 'pending' | 'firing' }

test('a real Prometheus with the generated rules fires LifelineOdooUnreachable while Odoo is down and resolves it when Odoo is back', { timeout: 600_000 }, async (t) => {
  if (spawnSync('prometheus', ['--version']).error) {
    t.skip('prometheus is not installed (apt-get install prometheus)');
    return;
  }
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const topology = await writeGoldenTopology({ simulator, warnAfter: '10s', breachAfter: '20s' });
  cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));
  const metricsPort = await freePort();
  const lifeline = new LifelineProcess(topology.file, ['--http-port', String(metricsPort)], { ...topology.env, LIFELINE_INCIDENTS: 'off' }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  const listening = await lifeline.waitForLine(/"msg":"webhook source listening"/, 120_000);
  const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
  await lifeline.waitForLine(/"msg":"lifeline running"/, 120_000);

  // The rules as `lifeline observe rules` writes them for this topology, holds shortened.
  const loaded = loadTopology(topology.file, buildComponentRegistry(), { ...process.env, ...topology.env }, { unsetSecrets: 'warn' });
  const rules = parse(alertRulesYaml(loaded)) as RuleFile;
  const shortened = { groups: rules.groups.map((group) => ({ ...group, interval: '1s', rules: group.rules.map((rule) => ({ ...rule, ...(rule.for ? { for: '2s' } : {}) })) })) };
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-prometheus-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'rules.yml'), stringify(shortened));
  writeFileSync(join(dir, 'prometheus.yml'), stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [join(dir, 'rules.yml')],
    scrape_configs: [{ job_name: 'lifeline', static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] }],
  }));
  const check = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
  assert.equal(check.status, 0, `${check.stdout}\n${check.stderr}`);
  const prometheusPort = await freePort();
  const prometheus: ChildProcess = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${prometheusPort}`, '--log.level=warn',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let prometheusLog = '';
  prometheus.stderr?.on('data', (chunk: Buffer) => { prometheusLog = (prometheusLog + chunk.toString('utf8')).slice(-4000); });
  cleanups.push(() => prometheus.kill('SIGTERM'));

  const api = `http://127.0.0.1:${prometheusPort}/api/v1`;
  const alerts = async (): Promise<PrometheusAlert[]> => {
    try {
      const response = await fetch(`${api}/alerts`);
      return response.ok ? ((await response.json()) as { data: { alerts: PrometheusAlert[] } }).data.alerts : [];
    } catch {
      return [];
    }
  };
  const until = async (what: string, condition: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!(await condition())) {
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; alerts: ${JSON.stringify(await alerts())}\n${prometheusLog}`);
      await sleep(500);
    }
  };
  const odooAlerts = async (state: 'firing'): Promise<PrometheusAlert[]> => (await alerts()).filter((alert) => alert.labels.alertname === 'LifelineOdooUnreachable' && alert.state === state);

  // Prometheus scrapes the runtime: the Odoo gauge is there and at 1 (reachable).
  await until('Prometheus to scrape lifeline_odoo_reachable', async () => {
    try {
      const response = await fetch(`${api}/query?query=${encodeURIComponent('min(lifeline_odoo_reachable)')}`);
      const body = await response.json() as { data?: { result?: Array<{ value: [number, string] }> } };
      return body.data?.result?.[0]?.value[1] === '1';
    } catch {
      return false;
    }
  }, 120_000);
  assert.deepEqual(await odooAlerts('firing'), [], 'nothing fires while Odoo answers');

  simulator.control.setDown(true);
  let restored = false;
  try {
    // Charges keep coming: the sinks call Odoo and find it down (the Odoo sources too, at their next poll).
    const during = planTraffic({ events: 8, duplicateRatio: 0, corrections: 0 });
    const charges = during.deliveries.filter((delivery): delivery is WebhookDelivery => delivery.kind === 'webhook' && delivery.role === 'original');
    const stats = await sendTraffic(charges, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: 50 });
    assert.deepEqual(stats.failed, []);
    await until('LifelineOdooUnreachable to fire', async () => (await odooAlerts('firing')).length > 0, 180_000);
    const firing = await odooAlerts('firing');
    assert.ok(firing.every((alert) => alert.labels.connection === 'main' && alert.labels.app_id === topology.appId && alert.labels.severity === 'page'), JSON.stringify(firing));
    assert.ok(firing.some((alert) => alert.labels.component === topology.label('charge_bills') || /odoo_/.test(alert.labels.component ?? '')), JSON.stringify(firing));

    simulator.control.setDown(false);
    restored = true;
    await until('LifelineOdooUnreachable to resolve', async () => (await alerts()).every((alert) => alert.labels.alertname !== 'LifelineOdooUnreachable'), 180_000);
  } finally {
    if (!restored) simulator.control.setDown(false);
  }
});
