import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { AlertWebhook, alertPayload } from '../../src/ops/alert-webhook.ts';
import { IncidentTracker, LastingStates, type Signal } from '../../src/ops/incidents.ts';

const odooDown = (components = ['charge_bills', 'supply_receipts']): Signal => ({
  kind: 'odoo_unreachable', subject: 'main', cause: 'odoo:main', components, connections: ['main'], count: 1, code: 'LL_ODOO_UNAVAILABLE',
});
const lag = (component: string, level: number): Signal => ({ kind: 'lag', subject: component, cause: `component:${component}`, components: [component], count: 1, level });
const deadLetters = (component: string, count: number): Signal => ({ kind: 'dead_letters', subject: component, cause: `component:${component}`, components: [component], count });
const breaches = (flow: string, count: number): Signal => ({ kind: 'sla_breach', subject: flow, cause: `sla:${flow}`, components: [], flows: [flow], count });

let ids = 0;
const tracker = (quietMs = 60_000, limit = 500, ttlMs = 3600_000) => new IncidentTracker('app', { quietMs, ttlMs, limit }, () => `inc-${++ids}`);

test('an Odoo outage with its sinks\' lag, dead letters and the SLA breaches it causes is one incident, opened once and resolved once', () => {
  const incidents = tracker(60_000);
  const t0 = 1_000_000;
  const first = incidents.observe([odooDown()], t0);
  assert.equal(first.opened.length, 1);
  const opened = first.opened[0];
  assert.ok(opened);
  // Minutes of outage: every sample sees Odoo down, the sink's lag growing, a few dead letters, breaches in two flows.
  for (let minute = 1; minute <= 10; minute += 1) {
    const at = t0 + minute * 60_000;
    const changes = incidents.observe([
      odooDown(), lag('charge_bills', 200 * minute), deadLetters('charge_bills', 2), breaches('charge_to_invoice', 5), breaches('receipt_to_stock', 1),
    ], at);
    assert.equal(changes.opened.length, 0, `nothing new opens in minute ${minute}`);
    assert.equal(changes.resolved.length, 0);
  }
  assert.equal(incidents.open().length, 1);
  const incident = incidents.open()[0];
  assert.ok(incident);
  assert.equal(incident.cause, 'odoo:main');
  assert.deepEqual(incident.affects.components, ['charge_bills', 'supply_receipts']);
  assert.deepEqual(incident.affects.flows, ['charge_to_invoice', 'receipt_to_stock']);
  assert.deepEqual(incident.affects.connections, ['main']);
  // 20 dead letters + 60 breaches + one onset each of unreachable and lag.
  assert.equal(incident.count, 20 + 60 + 1 + 1);
  assert.equal(incident.signals.find((signal) => signal.kind === 'lag')?.peak, 2000);
  assert.match(incident.title, /^Odoo \(main\) unreachable — affects charge_bills, supply_receipts; 20 dead letter\(s\); lag up to 2000; 60 SLA breach\(es\) \(charge_to_invoice, receipt_to_stock\)$/);

  // Odoo is back; the lag drains over two samples, then nothing: quiet for a minute resolves it, once.
  const back = t0 + 11 * 60_000;
  assert.equal(incidents.observe([lag('charge_bills', 1500)], back).resolved.length, 0);
  assert.equal(incidents.observe([], back + 30_000).resolved.length, 0);
  const resolved = incidents.observe([], back + 60_000).resolved;
  assert.deepEqual(resolved.map((entry) => entry.id), [incident.id]);
  assert.equal(incident.status, 'resolved');
  assert.equal(incident.resolvedAt, back + 60_000);
  assert.match(incident.title, /^Resolved: Odoo \(main\) unreachable/);
  assert.equal(incidents.observe([], back + 120_000).resolved.length, 0, 'resolved only once');
  assert.ok(incident.timeline.some((entry) => entry.event.startsWith('opened: Odoo (main) unreachable (LL_ODOO_UNAVAILABLE)')));
  assert.ok(incident.timeline.some((entry) => entry.event.startsWith('joined: 5 new SLA breach(es) in flow charge_to_invoice')));
  assert.ok(incident.timeline.some((entry) => entry.event.startsWith('resolved:')));
  assert.ok(!incident.timeline.some((entry) => entry.event.startsWith('joined: Odoo')), 'the opening signal is not listed twice');
});

test('unrelated failures are separate incidents; a later failure of a resolved cause opens a new one', () => {
  const incidents = tracker(30_000);
  const t0 = 5_000_000;
  const changes = incidents.observe([deadLetters('charge_dedup', 3), { kind: 'component_down', subject: 'lab_files', cause: 'component:lab_files', components: ['lab_files'], count: 1 }], t0);
  assert.equal(changes.opened.length, 2);
  assert.deepEqual(changes.opened.map((incident) => incident.cause).sort(), ['component:charge_dedup', 'component:lab_files']);
  // Breaches with two incidents open join the oldest (an outage explains them), not a third.
  incidents.observe([breaches('charge_to_invoice', 4)], t0 + 1000);
  assert.equal(incidents.open().length, 2);
  incidents.observe([], t0 + 40_000);
  assert.equal(incidents.open().length, 0);
  const again = incidents.observe([deadLetters('charge_dedup', 1)], t0 + 50_000);
  assert.equal(again.opened.length, 1);
  assert.equal(incidents.list().length, 3);
  // SLA breaches with nothing open are their own incident, by flow.
  const alone = tracker(30_000);
  const opened = alone.observe([breaches('charge_to_invoice', 2), breaches('charge_to_invoice', 1)], t0).opened;
  assert.equal(opened.length, 1);
  assert.equal(opened[0]?.cause, 'sla:charge_to_invoice');
  assert.equal(opened[0]?.count, 3);
});

test('incidents are bounded: resolved ones go after their TTL, and past the limit the oldest resolved go first', () => {
  const incidents = tracker(1000, 3, 10_000);
  let at = 0;
  for (const component of ['a', 'b', 'c']) {
    at += 100;
    incidents.observe([deadLetters(component, 1)], at);
  }
  incidents.observe([], at + 2000);
  assert.equal(incidents.list().filter((incident) => incident.status === 'resolved').length, 3);
  const past = incidents.observe([deadLetters('d', 1)], at + 3000);
  assert.equal(past.forgotten.length, 1, 'the fourth pushes the oldest resolved out');
  assert.equal(incidents.list().length, 3);
  assert.ok(incidents.list().some((incident) => incident.status === 'open' && incident.cause === 'component:d'));
  const later = incidents.observe([], at + 3000 + 20_000);
  assert.equal(later.resolved.length, 1);
  const expired = incidents.observe([], at + 3000 + 20_000 + 10_001);
  assert.equal(expired.forgotten.length, 1, 'the last resolved is kept for its TTL only');
  assert.equal(incidents.list().length, 0);
});

test('a restored open incident is not opened (nor alerted) again', () => {
  const before = tracker();
  const incident = before.observe([odooDown()], 1000).opened[0];
  assert.ok(incident);
  const after = tracker();
  after.restore([JSON.parse(JSON.stringify(incident)) as typeof incident]);
  const changes = after.observe([odooDown()], 2000);
  assert.equal(changes.opened.length, 0);
  assert.equal(changes.updated[0]?.id, incident.id);
});

async function receiver(status: () => number): Promise<{ url: string; bodies: Array<{ headers: IncomingMessage['headers']; body: string }>; close(): Promise<void> }> {
  const bodies: Array<{ headers: IncomingMessage['headers']; body: string }> = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      bodies.push({ headers: request.headers, body: Buffer.concat(chunks).toString('utf8') });
      response.writeHead(status()).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/T0001/secret-path`, bodies, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

test('the alert webhook posts the documented payload, signed, retries a 5xx and gives up with LL_ALERT_DELIVERY_FAILED', async () => {
  const incidents = tracker();
  const incident = incidents.observe([odooDown(['charge_bills']), deadLetters('charge_bills', 3)], Date.parse('2026-12-02T03:00:00Z')).opened[0];
  assert.ok(incident);
  let answers = [503, 200];
  const hook = await receiver(() => answers.shift() ?? 500);
  try {
    const webhook = new AlertWebhook({ url: hook.url, secret: 's3cret', consoleUrl: 'https://lifeline.example/', retry: { initialDelayMs: 5, maxDelayMs: 10 } });
    assert.equal(webhook.target, `${new URL(hook.url).origin}/…`, 'the target shown and logged hides the path (chat webhooks keep their secret there)');
    const sent = await webhook.send(incident, 'incident.opened');
    assert.equal(hook.bodies.length, 2, 'one retry after the 503');
    const last = hook.bodies[1];
    assert.ok(last);
    assert.equal(last.headers['content-type'], 'application/json');
    assert.equal(last.headers['x-lifeline-event'], 'incident.opened');
    assert.equal(last.headers['x-lifeline-signature'], `sha256=${createHmac('sha256', 's3cret').update(last.body).digest('hex')}`);
    const body = JSON.parse(last.body) as ReturnType<typeof alertPayload>;
    assert.deepEqual(body, sent);
    assert.equal(body.version, 1);
    assert.equal(body.event, 'incident.opened');
    assert.equal(body.incident.url, `https://lifeline.example/incidents/${incident.id}`);
    assert.equal(body.incident.opened_at, '2026-12-02T03:00:00.000Z');
    assert.equal(body.incident.count, 4);
    assert.deepEqual(body.incident.affects, { components: ['charge_bills'], connections: ['main'], flows: [] });
    assert.match(body.text, /^\[Lifeline app\] Odoo \(main\) unreachable — affects charge_bills; 3 dead letter\(s\) https:\/\/lifeline\.example\/incidents\/inc-/);

    answers = [];
    await assert.rejects(webhook.send(incident, 'incident.resolved'), (error: Error & { code?: string }) => error.code === 'LL_ALERT_DELIVERY_FAILED' && !error.message.includes('secret-path'));
    answers = [400];
    const before = hook.bodies.length;
    await assert.rejects(webhook.send(incident, 'incident.resolved'), /HTTP 400/);
    assert.equal(hook.bodies.length, before + 1, 'a 4xx is not retried');
  } finally {
    await hook.close();
  }
  assert.throws(() => new AlertWebhook({ url: 'ftp://example' }), /http\(s\)/);
});

test('a state counts once it has lasted the grace period; a blip (a deploy\'s few seconds of starting) opens nothing', () => {
  const states = new LastingStates();
  const incidents = tracker(60_000);
  const down: Signal = { kind: 'component_down', subject: 'charge_dedup', cause: 'component:charge_dedup', components: ['charge_dedup'], count: 1 };
  const sample = (signals: Signal[], at: number) => incidents.observe(states.filter(signals, at, 30_000), at);
  assert.equal(sample([down], 0).opened.length, 0);
  assert.equal(sample([down], 10_000).opened.length, 0);
  assert.equal(sample([deadLetters('charge_enrich', 2)], 20_000).opened.length, 1, 'dead letters count at once');
  assert.equal(sample([], 25_000).opened.length, 0, 'the blip ended after 20 s: forgotten');
  assert.equal(sample([down], 30_000).opened.length, 0, 'a new blip starts from zero');
  assert.equal(sample([down], 59_999).opened.length, 0);
  assert.equal(sample([down], 60_000).opened[0]?.cause, 'component:charge_dedup', 'down for 30 s: an incident');
});
