import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { openOpsSession } from '../../src/cli/ops-session.ts';
import { DEFAULT_INCIDENT_SETTINGS } from '../../src/console/incident-watcher.ts';
import { startConsole } from '../../src/console/console-server.ts';
import { AlertWebhook } from '../../src/ops/alert-webhook.ts';
import { DEFAULT_INCIDENT_POLICY, type Incident } from '../../src/ops/incidents.ts';
import { PATIENT_IDS, startConsoleFixture, type ConsoleFixture } from './console-fixture.ts';

/**
 * Incidents on the real broker: a burst of dead letters and the SLA breaches that follow are one
 * incident, alerted once to a webhook when it opens and once when it resolves, PHI-free; a
 * restarted console knows it.
 */

const BURST_PATIENTS = ['MRN-PHI-88001', 'MRN-PHI-88002', 'MRN-PHI-88003', 'MRN-PHI-88004'];
const SECRET = 'incident-hook-secret';
const alerts: Array<{ event: string; signature: string; body: string }> = [];
let hookUrl: string;
const hook = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    alerts.push({ event: String(request.headers['x-lifeline-event']), signature: String(request.headers['x-lifeline-signature']), body: Buffer.concat(chunks).toString('utf8') });
    response.writeHead(204).end();
  });
});

let fixture: ConsoleFixture;
before(async () => {
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  hookUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts`;
  fixture = await startConsoleFixture({
    incidents: {
      ...DEFAULT_INCIDENT_SETTINGS, intervalMs: 500, lagThreshold: 1000,
      policy: { ...DEFAULT_INCIDENT_POLICY, quietMs: 6000 },
      webhook: new AlertWebhook({ url: hookUrl, secret: SECRET, consoleUrl: 'https://console.example' }),
    },
  });
}, { timeout: 300_000 });
after(async () => {
  await fixture?.close();
  await new Promise<void>((resolve) => hook.close(() => resolve()));
});

interface IncidentsBody { open: Incident[]; recent: Incident[]; sampledAt: number | null; alerting: { webhook: string | null; leader: boolean } }

async function incidents(url = fixture.console.url): Promise<IncidentsBody> {
  const response = await fetch(`${url}/api/incidents`, { headers: fixture.as('viola') });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  for (const mrn of [...PATIENT_IDS, ...BURST_PATIENTS]) assert.ok(!text.includes(mrn), `the incidents API shows the patient id ${mrn}`);
  return JSON.parse(text) as IncidentsBody;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(300);
  }
}

test('dead letters and the SLA breaches during them are one incident: one alert when it opens, one when it resolves, no PHI, however many consoles run; a restarted console shows it', { timeout: 240_000 }, async () => {
  // The first look is the baseline: the dead letter and the breach the fixture made before the console started are not new.
  await until('the first sample', async () => ((await incidents()).sampledAt !== null ? true : undefined));
  assert.equal((await incidents()).open.length, 0);
  assert.equal((await incidents()).alerting.webhook, `${new URL(hookUrl).origin}/…`);
  assert.equal((await incidents()).alerting.leader, true, 'the only console leads');

  // A second console of the same app, with the same webhook: it follows (the leader stays where it is) and alerts nothing itself.
  const followerSession = openOpsSession({ topology: fixture.file }, 'console');
  const follower = await startConsole({
    session: followerSession, logger: pino({ level: 'warn' }), port: 0,
    incidents: { ...DEFAULT_INCIDENT_SETTINGS, intervalMs: 500, policy: { ...DEFAULT_INCIDENT_POLICY, quietMs: 6000 }, webhook: new AlertWebhook({ url: hookUrl, secret: SECRET }) },
  });
  try {
    // startConsole returned once the second console had joined the alerting group. Had the partition
    // moved to it, the first console would have lost it in the same rebalance and stopped sampling:
    // two more samples by the first after the join show it kept the lead (no fixed wait).
    const joined = Date.now();
    await until('two samples by the first console after the second joined (it keeps the lead)', async () => (((await incidents()).sampledAt ?? 0) >= joined + 1_000 ? true : undefined), 30_000);
    assert.equal((await incidents(follower.url)).alerting.leader, false, 'the second console follows');
    assert.equal((await incidents()).alerting.leader, true, 'the first still leads');
    await burst();
    // The follower shows what the leader wrote.
    await until('the follower to show the resolved incident', async () => ((await incidents(follower.url)).recent.some((incident) => incident.status === 'resolved' && incident.count === 7) ? true : undefined), 60_000);
  } finally {
    await follower.close();
    await followerSession.close();
  }
});

async function burst(): Promise<void> {
  await fixture.sendUnkeyedCharges(BURST_PATIENTS.slice(0, 2));
  const opened = await until('the incident to open', async () => (await incidents()).open[0]);
  assert.equal(opened.cause, `component:${fixture.dedup}`);
  await fixture.sendUnkeyedCharges(BURST_PATIENTS.slice(2));

  // Breaches in the SLA flow while it is open join it.
  const producer = fixture.kafka.producer();
  await producer.connect();
  try {
    const now = Date.now();
    const breach = (key: string, type: string) => ({
      flow: 'charge_to_invoice', transaction_key: key, event_type: type, milestone: null, started_at: now - 1_000_000, occurred_at: now,
      latency_ms: type === 'started' ? null : 1_000_000, warn_after_ms: 600_000, breach_after_ms: 900_000, breach_at: now - 100_000, owner: 'billing-owner', correlation_id: null,
    });
    const events = ['CH-INC-1', 'CH-INC-2', 'CH-INC-3'].flatMap((key) => [breach(key, 'started'), breach(key, 'breached')]);
    await producer.send({ topic: fixture.slaTopic, acks: -1, messages: await Promise.all(events.map(async (event) => ({ key: `${event.flow}:${event.transaction_key}`, value: await fixture.serde.encode(fixture.slaTopic, event) }))) });
  } finally {
    await producer.disconnect();
  }

  const grown = await until('all four dead letters and three breaches in the incident', async () => {
    const open = (await incidents()).open;
    assert.ok(open.length <= 1, `one incident, not ${open.length}: ${open.map((incident) => incident.title).join(' | ')}`);
    const incident = open[0];
    const total = (kind: string): number => incident?.signals.filter((signal) => signal.kind === kind).reduce((sum, signal) => sum + signal.count, 0) ?? 0;
    return incident && total('dead_letters') >= 4 && total('sla_breach') >= 3 ? incident : undefined;
  });
  assert.equal(grown.id, opened.id);
  assert.deepEqual(grown.affects.components, [fixture.dedup]);
  assert.deepEqual(grown.affects.flows, ['charge_to_invoice']);
  assert.equal(grown.count, 4 + 3);
  assert.match(grown.title, new RegExp(`^${fixture.dedup} failing — affects ${fixture.dedup}; 4 dead letter\\(s\\); 3 SLA breach\\(es\\) \\(charge_to_invoice\\)$`));

  const resolved = await until('the incident to resolve', async () => (await incidents()).recent.find((incident) => incident.id === opened.id));
  assert.equal(resolved.status, 'resolved');
  assert.ok((resolved.resolvedAt ?? 0) - resolved.lastSignalAt >= 6000);
  await until('the resolve alert', async () => (alerts.some((alert) => alert.event === 'incident.resolved') ? true : undefined), 30_000);

  assert.deepEqual(alerts.map((alert) => alert.event), ['incident.opened', 'incident.resolved'], 'one alert per incident opening and one for its end, not per record');
  for (const alert of alerts) {
    assert.equal(alert.signature, `sha256=${createHmac('sha256', SECRET).update(alert.body).digest('hex')}`);
    for (const mrn of [...PATIENT_IDS, ...BURST_PATIENTS]) assert.ok(!alert.body.includes(mrn), `an alert carries the patient id ${mrn}`);
    assert.ok(!alert.body.includes('NOKEY'), 'an alert carries no record key');
    const payload = JSON.parse(alert.body) as { incident: { id: string; url: string } };
    assert.equal(payload.incident.id, opened.id);
    assert.equal(payload.incident.url, `https://console.example/incidents/${opened.id}`);
  }
  const finalAlert = JSON.parse(alerts[1]?.body ?? '{}') as { incident: { count: number; resolved_at: string } };
  assert.equal(finalAlert.incident.count, 7);
  assert.ok(finalAlert.incident.resolved_at);
  // No console sends anything twice: once the leader has looked again twice after the resolve alert, a repeat would be here.
  const alerted = Date.now();
  await until('two more samples after the resolve alert', async () => (((await incidents()).sampledAt ?? 0) >= alerted + 1_000 ? true : undefined), 30_000);
  assert.equal(alerts.length, 2);

  // Another console on the same topology reads it back from _lifeline.incidents.
  const session = openOpsSession({ topology: fixture.file }, 'console');
  const second = await startConsole({ session, logger: pino({ level: 'warn' }), port: 0, incidents: { intervalMs: 60_000 } });
  try {
    const response = await fetch(`${second.url}/api/incidents/${opened.id}`, { headers: fixture.as('viola') });
    assert.equal(response.status, 200);
    const restored = (await response.json() as { incident: Incident }).incident;
    assert.equal(restored.status, 'resolved');
    assert.equal(restored.count, 7);
    assert.ok(restored.alerts.some((alert) => alert.kind === 'resolved' && alert.delivered), 'the delivered alerts are part of what is kept');
  } finally {
    await second.close();
    await session.close();
  }
}
