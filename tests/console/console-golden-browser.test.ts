import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import pino from 'pino';
import { planTraffic, type Delivery, type WebhookDelivery } from '../../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../../dev/demo/traffic-sender.ts';
import { startOdooSimulator, type OdooSimulator } from '../../dev/odoo-simulator/odoo-simulator.ts';
import { openOpsSession } from '../../src/cli/ops-session.ts';
import { DEFAULT_INCIDENT_SETTINGS } from '../../src/console/incident-watcher.ts';
import { startConsole, type RunningConsole } from '../../src/console/console-server.ts';
import { DEFAULT_INCIDENT_POLICY } from '../../src/ops/incidents.ts';
import type { OpsSession } from '../../src/ops/ops-session.ts';
import { buildConsolePage } from '../../testing/console-page.ts';
import { writeTestOperators, type TestOperators } from '../../testing/cli-runner.ts';
import { writeGoldenTopology, type GoldenTopology } from '../../testing/golden-path-fixture.ts';
import { testKafka } from '../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';

/**
 * Operators' scenarios on the golden path (the repository's topology.yaml, one `lifeline run`, the
 * Odoo simulator, the real broker and registry) in headless Chromium: an operator follows a charge
 * by its business key to its Odoo bill on the Trace page; Odoo goes down and the Incidents page
 * shows one incident (not one per flow or record) that resolves by itself once Odoo is back.
 */

const CHROMIUM = process.env.LIFELINE_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];
const SCREENSHOTS = process.env.LIFELINE_SCREENSHOT_DIR ?? join(tmpdir(), 'lifeline-console-screenshots');

interface WriteResult { key: string; odoo_id: number | null; model: string; outcome: string }

let simulator: OdooSimulator;
let topology: GoldenTopology;
let lifeline: LifelineProcess;
let session: OpsSession;
let console_: RunningConsole;
let operators: TestOperators;
let browser: Browser;
let bills: TopicCollector<WriteResult>;
let webhookUrl: string;
const cleanups: Array<() => Promise<unknown> | unknown> = [];

const charges = (deliveries: readonly Delivery[]): WebhookDelivery[] => deliveries.filter((delivery): delivery is WebhookDelivery => delivery.kind === 'webhook' && delivery.role === 'original' && /\|charge\|/.test(delivery.entityKey));

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}:\n${lifeline.lines.filter((line) => /"level":(40|50)|"level":"(warn|error)"/.test(line)).slice(-10).join('\n')}`);
    await sleep(500);
  }
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: install Debian's chromium or set LIFELINE_CHROMIUM`);
  const assetsDir = await buildConsolePage();
  cleanups.push(() => rmSync(assetsDir, { recursive: true, force: true }));
  mkdirSync(SCREENSHOTS, { recursive: true });

  simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  topology = await writeGoldenTopology({ simulator, warnAfter: '10s', breachAfter: '20s' });
  cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));
  operators = writeTestOperators({ autoApproveBelow: 0 });
  lifeline = new LifelineProcess(topology.file, [], { ...topology.env, LIFELINE_INCIDENTS: 'off' }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  const listening = await lifeline.waitForLine(/"msg":"webhook source listening"/, 120_000);
  webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
  await lifeline.waitForLine(/"msg":"lifeline running"/, 120_000);

  const kafka = await testKafka();
  bills = await new TopicCollector<WriteResult>(kafka, topology.topic('billing.vendor_bill.written.v1'), await registeredSerde()).start();
  cleanups.push(() => bills.stop());

  // The console in this process, as `lifeline console` runs it: incidents looked at every second, a state counting after 2 s, resolved after 15 s without failure.
  Object.assign(process.env, topology.env, { LIFELINE_OPERATORS_FILE: operators.file });
  session = openOpsSession({ topology: topology.file }, 'console', { connections: true });
  cleanups.push(() => session.close());
  console_ = await startConsole({
    session, logger: pino({ level: 'warn' }), port: 0, assetsDir,
    incidents: { ...DEFAULT_INCIDENT_SETTINGS, intervalMs: 1000, graceMs: 2000, policy: { ...DEFAULT_INCIDENT_POLICY, quietMs: 15_000 } },
  });
  cleanups.push(() => console_.close());
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  cleanups.push(() => browser.close());
}, { timeout: 400_000 });

after(async () => {
  for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
});

async function logIn(page: Page, identity: 'otto' | 'viola', path: string): Promise<void> {
  await page.goto(`${console_.url}${path}`);
  await page.getByTestId('login-identity').fill(identity);
  await page.getByTestId('login-token').fill(operators.as(identity).LIFELINE_OPERATOR_TOKEN as string);
  await page.getByTestId('login-submit').click();
  await page.getByTestId('who').waitFor();
}

async function send(deliveries: readonly Delivery[]): Promise<void> {
  const stats = await sendTraffic(deliveries, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: 50 });
  assert.deepEqual(stats.failed, [], 'every delivery is answered 2xx');
}

test('an operator follows a charge by its business key to its Odoo bill on the Trace page', { timeout: 300_000 }, async () => {
  const plan = planTraffic({ events: 12, duplicateRatio: 0, corrections: 0 });
  const sent = charges(plan.deliveries);
  assert.ok(sent.length >= 3, `the plan has charges: ${sent.length}`);
  await send(plan.deliveries);
  const key = sent[0]?.entityKey as string;
  const bill = await until('the charge\'s bill in Odoo', () => bills.records.find((record) => record.value.key === key && record.value.odoo_id !== null)?.value, 180_000);

  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, 'otto', '/trace');
  await page.getByTestId('trace-key').fill(key);
  await page.getByTestId('trace-key').press('Enter');
  await page.waitForURL(`**/trace?key=${encodeURIComponent(key)}`);
  // Every hop up to the bill (the SLA's completion may follow it by a moment): wait for the Odoo hop.
  const odooHop = page.getByTestId('trace-odoo');
  await odooHop.first().waitFor({ timeout: 60_000 });
  const hops = page.getByTestId('trace-hops').locator('li');
  const stages = await page.getByTestId('trace-stage').allTextContents();
  for (const stage of ['received', 'deduplicated', 'enriched', 'written to Odoo']) assert.ok(stages.includes(stage), `the trace shows "${stage}": ${stages.join(', ')}`);
  assert.ok(stages.indexOf('received') < stages.indexOf('written to Odoo'), 'in time order');
  assert.ok(await hops.count() >= 4);
  const odooText = await odooHop.first().textContent() ?? '';
  assert.match(odooText, new RegExp(`Odoo ${bill.model.replace('.', '\\.')} #${bill.odoo_id}`));
  const href = await odooHop.first().locator('a').getAttribute('href');
  assert.equal(href, `${simulator.url}/web#id=${bill.odoo_id}&model=${bill.model}&view_type=form`, 'a link to the bill in Odoo');
  // The bill is really there, under the charge's key.
  assert.ok(simulator.store.table(bill.model).has(bill.odoo_id as number), `${bill.model} #${bill.odoo_id} is in Odoo`);
  await page.screenshot({ path: join(SCREENSHOTS, 'golden-trace.png'), fullPage: true });
  await context.close();
});

test('an Odoo outage is one incident on the Incidents page, which resolves by itself once Odoo is back', { timeout: 400_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await logIn(page, 'viola', '/incidents');
  await page.getByTestId('incidents-open-empty').waitFor({ timeout: 60_000 });
  const api = async (): Promise<{ open: Array<{ id: string; title: string; signals: Array<{ kind: string }>; affects: { components: string[] } }>; recent: Array<{ id: string }> }> => {
    const response = await fetch(`${console_.url}/api/incidents`, { headers: { 'x-lifeline-operator': 'viola', 'x-lifeline-token': operators.as('viola').LIFELINE_OPERATOR_TOKEN as string } });
    return await response.json() as never;
  };
  // Incidents already resolved before the outage (e.g. the stack starting up, or the test before) are not this one's.
  const earlier = new Set((await api()).recent.map((incident) => incident.id));

  simulator.control.setDown(true);
  let restored = false;
  try {
    // Charges keep arriving: the bill sink and the SLA breach sink try Odoo and find it down; the Odoo sources too.
    const during = planTraffic({ events: 12, duplicateRatio: 0, corrections: 0 });
    await send(charges(during.deliveries));
    const openRow = page.getByTestId('incidents-open').locator('tr[data-status="open"]');
    await openRow.first().waitFor({ timeout: 120_000 });
    const title = await openRow.first().getByTestId('incident-title').textContent() ?? '';
    assert.match(title, /^Odoo \(main\) unreachable — affects /, title);
    assert.ok(title.includes(topology.label('charge_bills')), `the bill sink is affected: ${title}`);

    // While it lasts, more failures join it and nothing else opens: one incident, not one per flow or record.
    const during1 = await api();
    assert.equal(during1.open.length, 1, `one open incident: ${during1.open.map((incident) => incident.title).join(' | ')}`);
    const incidentId = during1.open[0]?.id as string;
    await page.screenshot({ path: join(SCREENSHOTS, 'golden-incident-open.png'), fullPage: true });
    // Its detail: signals and timeline.
    await openRow.first().getByTestId('incident-title').click();
    await page.getByTestId('incident-detail').waitFor();
    assert.match(await page.getByTestId('incident-signals').textContent() ?? '', /Odoo unreachable/);
    assert.match(await page.getByTestId('incident-timeline').textContent() ?? '', /opened: Odoo \(main\) unreachable/);
    await page.screenshot({ path: join(SCREENSHOTS, 'golden-incident-detail.png'), fullPage: true });

    // Long enough for the charges sent during the outage to breach their 20 s SLA: the breaches join the same incident.
    await until('the SLA breaches to join the incident', async () => {
      const now = await api();
      assert.equal(now.open.length, 1, `still one open incident: ${now.open.map((incident) => incident.title).join(' | ')}`);
      return now.open[0]?.signals.some((signal) => signal.kind === 'sla_breach') ? true : undefined;
    }, 120_000);

    simulator.control.setDown(false);
    restored = true;
    await page.goto(`${console_.url}/incidents`);
    const resolvedRow = page.getByTestId(`incident-${incidentId}`);
    await page.waitForFunction((id) => document.querySelector(`[data-testid="incident-${id}"]`)?.getAttribute('data-status') === 'resolved', incidentId, { timeout: 240_000 });
    assert.match(await resolvedRow.getByTestId('incident-title').textContent() ?? '', /^Resolved: Odoo \(main\) unreachable/);
    const final = await api();
    assert.deepEqual(final.open, [], 'nothing else opened');
    assert.deepEqual(final.recent.map((incident) => incident.id).filter((id) => !earlier.has(id)), [incidentId], 'the outage was one incident');
    await page.screenshot({ path: join(SCREENSHOTS, 'golden-incident-resolved.png'), fullPage: true });
    // The charges sent during the outage are billed once Odoo is back.
    const keys = charges(during.deliveries).map((delivery) => delivery.entityKey);
    await until('the outage\'s charges to be billed', () => (keys.every((key) => bills.records.some((record) => record.value.key === key)) ? true : undefined), 180_000);
  } finally {
    if (!restored) simulator.control.setDown(false);
    await context.close();
  }
});
