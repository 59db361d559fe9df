import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test, type TestContext } from 'node:test';
import { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { externalName } from '../../connectors/odoo/odoo-sink.ts';
import { planTraffic, type Delivery, type TrafficPlan } from '../../dev/demo/partner-traffic.ts';
import { sendTraffic, type SendStats } from '../../dev/demo/traffic-sender.ts';
import { startOdooSimulator, type OdooSimulator } from '../../dev/odoo-simulator/odoo-simulator.ts';
import type { SlaEvent } from '../../processors/sla-tracker.ts';
import { testKafka } from '../../testing/harness.ts';
import { waitForQuiescence } from '../../testing/quiescence.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';
import { writeGoldenTopology, type GoldenTopology } from '../../testing/golden-path-fixture.ts';

/**
 * The golden path end to end, as topology.yaml declares it, on the real broker and registry and the
 * Odoo simulator: partner traffic from the demo generator (HL7 lab charges and FHIR supply
 * deliveries as signed webhooks, pharmacy CSV files) with 20% duplicates, through dedup → enrich →
 * odoo_sink, and the charge SLA. Sources run in one `lifeline run` process, processors and sinks in
 * another (the one the second test kills).
 *
 * Phases: A (Odoo fast) — S (Odoo made slow: every write call holds 25 s, longer than the 20 s
 * breach threshold) — B (fast again, amended charges at the end). Each phase starts once the charges
 * of the one before are written, so a charge breaches exactly when it was sent while Odoo was slow —
 * or, in the kill test, while the pipeline was dead.
 */
const EVENTS = Number(process.env.LIFELINE_GOLDEN_EVENTS ?? 10_000); // smaller only to debug locally
const DUPLICATE_RATIO = 0.2;
const CORRECTIONS = 50;
const SLOW_DELIVERIES = 220;
const WARN_AFTER_MS = 10_000;
const BREACH_AFTER_MS = 20_000;
const SLOW_WRITE_MS = 25_000;
const SEND_RATE = 200;
/**
 * Outside the slow phase, partners send at most this many charges ahead of what Odoo has written —
 * and no more than Odoo wrote in the last AHEAD_SECONDS (at least MIN_CHARGES_AHEAD): the sender
 * follows the pipeline's pace, so on a slower or busier machine a charge still waits seconds, not
 * the breach threshold (the throughput is measured by `npm run bench -- golden`, not here).
 */
const MAX_CHARGES_AHEAD = 250;
const MIN_CHARGES_AHEAD = 20;
const AHEAD_SECONDS = 5;

interface WriteResult { key: string; odoo_id: number | null; outcome: string; written_at: number }

describe('golden path: partner feeds → dedup → enrich → Odoo, with the charge SLA', () => {
  test('10,000 partner events with 20% duplicates leave Odoo holding exactly the unique records, enriched; every charge completes its SLA and only those sent while Odoo was slow breach', { timeout: 1_500_000 }, async (t) => {
    await runGoldenPath(t, { kills: false });
  });

  test('the same run with the processors and sinks SIGKILLed at random points gives the same Odoo, and every SLA event once', { timeout: 1_500_000 }, async (t) => {
    await runGoldenPath(t, { kills: true });
  });
});

async function runGoldenPath(t: TestContext, options: { kills: boolean }): Promise<void> {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  try {
    const simulator = await startOdooSimulator({ port: 0 });
    cleanups.push(() => simulator.close());
    const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
    cleanups.push(() => odoo.close());
    const topology = await writeGoldenTopology({ simulator, warnAfter: `${WARN_AFTER_MS / 1000}s`, breachAfter: `${BREACH_AFTER_MS / 1000}s` });
    cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));

    const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], topology.env).start();
    cleanups.push(() => intake.kill('SIGTERM'));
    const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(',')], topology.env).start();
    cleanups.push(() => pipeline.kill('SIGTERM'));
    const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
    const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
    await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
    await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);

    const kafka = await testKafka();
    const serde = await registeredSerde();
    const collect = async <V>(topic: string): Promise<TopicCollector<V>> => {
      const collector = await new TopicCollector<V>(kafka, topology.topic(topic), serde).start();
      cleanups.push(() => collector.stop());
      return collector;
    };
    const chargeResults = await collect<WriteResult>('billing.vendor_bill.written.v1');
    const slaEvents = await collect<SlaEvent>('ops.sla_charge_to_invoice.v1');
    const receivedCharges = await collect<{ entity_key: string; received_at: number }>('partner.service_charge.received.v1');
    const products = await collect<{ default_code: string | null }>('odoo.product.changed.v1');
    await waitFor('the Odoo products to reach their topic', 60_000, () => products.records.length >= 19);

    const plan = planTraffic({ events: EVENTS, duplicateRatio: DUPLICATE_RATIO, corrections: CORRECTIONS, runId: randomBytes(3).toString('hex').toUpperCase() });
    const phases = splitPhases(plan);
    // Kills fall in the fast phases: during the slow one every Odoo write takes 25 s, and a kill more
    // often than that would stop the sink from ever finishing one.
    let kills = options.kills ? startKilling(pipeline) : undefined;
    const killTimes: Array<{ killed: number; restarted: number }> = [];
    cleanups.push(() => kills?.stop());
    const sentCharges = new Set<string>();
    const writtenCharges = new Set<string>();
    let resultsSeen = 0;
    /** What Odoo wrote in the last 10 s, scaled to AHEAD_SECONDS, between the bounds. */
    const aheadLimit = (): number => {
      const since = Date.now() - 10_000;
      let recent = 0;
      for (let index = chargeResults.records.length - 1; index >= 0 && (chargeResults.records[index] as { value: WriteResult }).value.written_at >= since; index--) recent++;
      return Math.min(MAX_CHARGES_AHEAD, Math.max(MIN_CHARGES_AHEAD, Math.round((recent / 10) * AHEAD_SECONDS)));
    };
    const chargesAhead = (): number => {
      for (; resultsSeen < chargeResults.records.length; resultsSeen++) writtenCharges.add((chargeResults.records[resultsSeen] as { value: WriteResult }).value.key);
      let ahead = 0;
      for (const key of sentCharges) if (!writtenCharges.has(key)) ahead++;
      return ahead;
    };
    const send = async (deliveries: readonly Delivery[], paced = true): Promise<SendStats> => {
      const stats = await sendTraffic(deliveries, {
        webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: SEND_RATE,
        beforeDelivery: async (_index, delivery) => {
          if (delivery.kind !== 'webhook' || delivery.role !== 'original' || !plan.expected.charges.has(delivery.entityKey)) return;
          while (paced && chargesAhead() >= aheadLimit()) await sleep(50);
          sentCharges.add(delivery.entityKey);
        },
      });
      assert.deepEqual(stats.failed, [], 'every delivery is answered 2xx in the end');
      return stats;
    };
    const written = (keys: ReadonlySet<string>) => () => {
      const done = new Set(chargeResults.records.map((record) => record.value.key));
      const missing = [...keys].filter((key) => !done.has(key));
      progress = missing.length === 0 ? '' : `${missing.length} of ${keys.size} charges not written yet, e.g. ${missing.slice(0, 3).join(', ')}; ${chargeResults.records.length} results so far`;
      return missing.length === 0;
    };
    let progress = '';
    // LIFELINE_TEST_LOG_DIR keeps both processes' logs for a look after the run.
    const logDir = process.env.LIFELINE_TEST_LOG_DIR;
    if (logDir) cleanups.push(() => {
      writeFileSync(join(logDir, `golden-${plan.runId}-intake.log`), intake.lines.join('\n'));
      writeFileSync(join(logDir, `golden-${plan.runId}-pipeline.log`), pipeline.lines.join('\n'));
    });
    cleanups.push(() => {
      if (!progress) return;
      const problems = (process: LifelineProcess, name: string) => process.lines.filter((line) => /"level":"(warn|error|fatal)"/.test(line) && !/"component":"kafkajs"/.test(line)).slice(-15).map((line) => `${name}: ${line.slice(0, 600)}`);
      t.diagnostic(`last progress: ${progress}\n${[...problems(intake, 'intake'), ...problems(pipeline, 'pipeline')].join('\n')}`);
    });

    const started = Date.now();
    const statsA = await send(phases.a);
    await waitFor('the phase A charges to be written', 300_000, written(phases.chargesA));
    if (kills) {
      await kills.stop();
      killTimes.push(...kills.times);
    }
    simulator.control.setSlow(SLOW_WRITE_MS, 'writes');
    const statsS = await send(phases.slow, false);
    await waitFor('the charges sent while Odoo was slow to be written', 300_000, written(phases.chargesSlow));
    simulator.control.setSlow(0);
    if (options.kills) kills = startKilling(pipeline);
    const phaseBStarted = Date.now();
    const statsB = await send(phases.b);
    await waitFor('every charge to complete its SLA', 400_000, () => {
      const completed = new Set(slaEvents.records.filter((record) => record.value.event_type.startsWith('completed')).map((record) => record.value.transaction_key));
      const open = [...plan.expected.charges.keys()].filter((key) => !completed.has(key));
      progress = open.length === 0 ? '' : `${open.length} charges without a completed SLA event, e.g. ${open.slice(0, 3).join(', ')}`;
      return open.length === 0;
    });
    await waitFor('Odoo to hold every bill and receipt', 300_000, async () => {
      const bills = await odoo.searchCount('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]]);
      const receipts = await odoo.searchCount('ir.model.data', [['module', '=', 'lifeline'], ['model', '=', 'stock.picking']]);
      return bills >= plan.expected.charges.size + plan.expected.dispenses.size && receipts >= plan.expected.deliveries.size;
    });
    if (kills) {
      await kills.stop();
      killTimes.push(...kills.times);
    }
    const lastWrite = Math.max(...chargeResults.records.map((record) => record.value.written_at));
    const sent = [statsA, statsS, statsB].reduce((sum, stats) => sum + stats.events, 0);
    t.diagnostic(`run ${plan.runId}: ${sent} events sent in ${((Date.now() - started) / 1000).toFixed(0)} s; phase B ${statsB.events} events, last charge written ${((lastWrite - phaseBStarted) / 1000).toFixed(1)} s after it began`);
    t.diagnostic(`webhooks accepted ${statsA.accepted + statsS.accepted + statsB.accepted}, answered "duplicate" ${statsA.duplicateAnswers + statsS.duplicateAnswers + statsB.duplicateAnswers}, retried attempts ${statsA.retriedAttempts + statsS.retriedAttempts + statsB.retriedAttempts}; kills ${killTimes.length}`);
    if (options.kills) assert.ok(killTimes.length >= 2, `the pipeline was killed in both fast phases (${killTimes.length} kills)`);
    // Nothing is still in flight: every processor and sink group has committed all of its input
    // (a late duplicate would have been written by now), then Odoo is read once more.
    await waitForQuiescence(kafka, topology.pipelineLabels.map((label) => `${topology.appId}.${label}`), 120_000);

    await assertOdooHoldsTheUniqueRecords(odoo, plan);
    const breachedCount = new Set(slaEvents.records.filter((record) => record.value.event_type === 'breached').map((record) => record.value.transaction_key)).size;
    t.diagnostic(`Odoo: ${plan.expected.charges.size + plan.expected.dispenses.size} bills, ${plan.expected.deliveries.size} receipts expected; ${phases.chargesSlow.size} charges sent while Odoo was slow, ${breachedCount} breached`);
    assertSlaEvents(slaEvents, plan, phases.chargesSlow, killTimes, receivedCharges);
    await assertBreachActivities(odoo, slaEvents);
  } finally {
    for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
  }
}

interface Phases {
  readonly a: readonly Delivery[];
  readonly slow: readonly Delivery[];
  readonly b: readonly Delivery[];
  readonly chargesA: ReadonlySet<string>;
  readonly chargesSlow: ReadonlySet<string>;
}

/** A: the first 40% of deliveries; S: the next SLOW_DELIVERIES; B: the rest (corrections last). */
function splitPhases(plan: TrafficPlan): Phases {
  const cut = Math.floor(plan.deliveries.length * 0.4);
  const a = plan.deliveries.slice(0, cut);
  const slow = plan.deliveries.slice(cut, cut + SLOW_DELIVERIES);
  const b = plan.deliveries.slice(cut + SLOW_DELIVERIES);
  const originals = (deliveries: readonly Delivery[]): Set<string> => new Set(deliveries.flatMap((delivery) =>
    delivery.kind === 'webhook' && delivery.role === 'original' && plan.expected.charges.has(delivery.entityKey) ? [delivery.entityKey] : []));
  return { a, slow, b, chargesA: originals(a), chargesSlow: originals(slow) };
}

/**
 * SIGKILLs the pipeline first 5-12 s after the start (a fast phase sends for at least 24 s: 200
 * deliveries a second, so each gets a kill even on a quick machine), then every 15-35 s (random),
 * restarting it after 0.5-2 s, until stopped.
 */
function startKilling(pipeline: LifelineProcess): { readonly times: Array<{ killed: number; restarted: number }>; stop(): Promise<void> } {
  const times: Array<{ killed: number; restarted: number }> = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      await sleep(times.length === 0 ? 5_000 + Math.random() * 7_000 : 15_000 + Math.random() * 20_000);
      if (!running) break;
      const killed = Date.now();
      await pipeline.kill('SIGKILL');
      await sleep(500 + Math.random() * 1_500);
      pipeline.start();
      times.push({ killed, restarted: Date.now() });
    }
  })();
  return {
    times,
    async stop() {
      running = false;
      await loop;
    },
  };
}

async function assertOdooHoldsTheUniqueRecords(odoo: OdooClient, plan: TrafficPlan): Promise<void> {
  const partnerIds = new Map((await odoo.searchRead('res.partner', [['ref', '!=', false]], { fields: ['ref'] })).map((row) => [String(row.ref), row.id]));
  const productIds = new Map((await odoo.searchRead('product.product', [], { fields: ['default_code'] })).map((row) => [String(row.default_code), row.id]));
  const idOf = (value: unknown): unknown => (Array.isArray(value) ? value[0] : value);

  // Bills: exactly one per unique charge and dispense, found by the external id the sink gave it.
  const bills = await odoo.searchRead('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]], { fields: ['ref', 'partner_id', 'invoice_line_ids', 'state'] });
  const billRefs = bills.map((bill) => String(bill.ref));
  assert.equal(new Set(billRefs).size, billRefs.length, 'no charge or dispense was billed twice');
  assert.deepEqual(new Set(billRefs), new Set([...plan.expected.charges.keys(), ...plan.expected.dispenses.keys()]), 'Odoo holds a bill for exactly the unique charges and dispenses');
  const lines = new Map((await odoo.read('account.move.line', bills.flatMap((bill) => bill.invoice_line_ids as number[]), ['move_id', 'product_id', 'quantity', 'price_unit']))
    .map((line) => [idOf(line.move_id) as number, line]));
  let corrected = 0;
  for (const bill of bills) {
    const ref = String(bill.ref);
    const line = lines.get(bill.id);
    assert.ok(line, `bill ${ref} has its line`);
    assert.equal((bill.invoice_line_ids as number[]).length, 1, `bill ${ref} has one line`);
    assert.equal(bill.state, 'draft');
    const charge = plan.expected.charges.get(ref);
    if (charge) {
      assert.equal(idOf(bill.partner_id), partnerIds.get(charge.labRef), `bill ${ref} is from ${charge.labRef}`);
      assert.equal(idOf(line.product_id), productIds.get(`CPT-${charge.productCode}`), `bill ${ref} bills CPT ${charge.productCode}`);
      assert.equal(line.quantity, 1, 'one line for the charge');
      assert.equal(line.price_unit, (charge.unitPriceMinor * charge.quantity) / 100, `bill ${ref} has the ${charge.corrected ? 'amended' : 'charged'} total`);
      if (charge.corrected) corrected++;
      continue;
    }
    const dispense = plan.expected.dispenses.get(ref);
    assert.ok(dispense);
    assert.equal(idOf(bill.partner_id), partnerIds.get(dispense.pharmacyRef), `bill ${ref} is from ${dispense.pharmacyRef}`);
    assert.equal(idOf(line.product_id), productIds.get(`NDC-${dispense.productCode}`), `bill ${ref} bills NDC ${dispense.productCode}`);
    assert.equal(line.price_unit, dispense.totalMinor / 100);
  }
  assert.equal(corrected, plan.counts.corrections, 'every amended charge updated its bill');

  // Receipts: one incoming transfer per unique delivery, with its stock move.
  const receiptIds = await odoo.searchRead('ir.model.data', [['module', '=', 'lifeline'], ['model', '=', 'stock.picking']], { fields: ['name', 'res_id'] });
  assert.equal(receiptIds.length, plan.expected.deliveries.size, 'one receipt per unique supply delivery');
  const pickingByName = new Map(receiptIds.map((row) => [String(row.name), row.res_id as number]));
  const pickings = new Map((await odoo.read('stock.picking', [...pickingByName.values()], ['partner_id', 'origin', 'picking_type_code', 'move_ids'])).map((row) => [row.id, row]));
  const moves = new Map((await odoo.searchRead('stock.move', [['picking_id', 'in', [...pickingByName.values()]]], { fields: ['picking_id', 'product_id', 'product_uom_qty'] }))
    .map((move) => [idOf(move.picking_id) as number, move]));
  for (const delivery of plan.expected.deliveries.values()) {
    const pickingId = pickingByName.get(externalName(delivery.entityKey));
    assert.ok(pickingId, `delivery ${delivery.entityKey} has a receipt`);
    const picking = pickings.get(pickingId);
    const move = moves.get(pickingId);
    assert.ok(picking && move);
    assert.equal(picking.picking_type_code, 'incoming');
    assert.equal(picking.origin, delivery.orderRef);
    assert.equal(idOf(picking.partner_id), partnerIds.get(delivery.supplierRef));
    assert.equal(idOf(move.product_id), productIds.get(delivery.productCode));
    assert.equal(move.product_uom_qty, delivery.quantity);
  }
}

function assertSlaEvents(events: TopicCollector<SlaEvent>, plan: TrafficPlan, slowCharges: ReadonlySet<string>, kills: ReadonlyArray<{ killed: number; restarted: number }>, received: TopicCollector<{ entity_key: string; received_at: number }>): void {
  // Where each step of a transaction sits, and where its start records sit, to explain a step seen twice.
  const whereabouts = (key: string): string => {
    const steps = events.records.filter((record) => record.value.transaction_key === key)
      .map((record) => `${record.value.event_type}@${record.partition}/${record.offset} occurred ${new Date(record.value.occurred_at).toISOString()}`);
    const starts = received.records.filter((record) => record.value.entity_key === key)
      .map((record) => `received@${record.partition}/${record.offset} key ${record.key} at ${new Date(record.value.received_at).toISOString()}`);
    const killed = kills.map((kill) => `${new Date(kill.killed).toISOString()}..${new Date(kill.restarted).toISOString()}`);
    return `steps: ${steps.join('; ')}\nstarts: ${starts.join('; ')}\nkills: ${killed.join(', ')}`;
  };
  const byKey = new Map<string, SlaEvent[]>();
  for (const { value } of events.records) byKey.set(value.transaction_key, [...(byKey.get(value.transaction_key) ?? []), value]);
  assert.deepEqual(new Set(byKey.keys()), new Set(plan.expected.charges.keys()), 'one SLA transaction per unique charge, none for duplicates');
  const breached = new Set<string>();
  for (const [key, steps] of byKey) {
    const count = (type: string): number => steps.filter((step) => step.event_type === type).length;
    assert.equal(count('started'), 1, `${key} started once\n${count('started') === 1 ? '' : whereabouts(key)}`);
    assert.equal(count('completed') + count('completed_late'), 1, `${key} completed once\n${count('completed') + count('completed_late') === 1 ? '' : whereabouts(key)}`);
    assert.ok(count('breached') <= 1 && count('warning') <= 1, `${key} warned and breached at most once`);
    // The enriched milestone and the end arrive on different topics: a milestone read after the end is moot and dropped.
    assert.ok(count('milestone') <= 1, `${key} reached its enriched milestone at most once`);
    if (count('breached') === 1) breached.add(key);
  }
  const missingBreaches = [...slowCharges].filter((key) => !breached.has(key));
  assert.deepEqual(missingBreaches, [], 'every charge sent while Odoo was slow breached');
  assert.ok(slowCharges.size >= 50, `the slow phase held ${slowCharges.size} charges`);
  // Outside the slow phase a breach is only allowed where the pipeline was dead for part of the window.
  const unexplained = [...breached].filter((key) => {
    if (slowCharges.has(key)) return false;
    const start = (byKey.get(key) as SlaEvent[])[0] as SlaEvent;
    return !kills.some((kill) => kill.killed <= start.started_at + BREACH_AFTER_MS && kill.restarted + 30_000 >= start.started_at);
  });
  const explain = (key: string): string => {
    const steps = byKey.get(key) as SlaEvent[];
    const at = (type: string): string => {
      const step = steps.find((candidate) => candidate.event_type.startsWith(type));
      return step ? `${type} +${((step.occurred_at - step.started_at) / 1000).toFixed(1)}s` : `no ${type}`;
    };
    return `${key}: started ${new Date((steps[0] as SlaEvent).started_at).toISOString()}, ${at('breached')}, ${at('completed')}`;
  };
  assert.deepEqual(unexplained.map(explain), [], 'no charge breached while Odoo was fast and the pipeline alive');
}

async function assertBreachActivities(odoo: OdooClient, events: TopicCollector<SlaEvent>): Promise<void> {
  const breaches = events.records.filter((record) => record.value.event_type === 'breached').map((record) => record.value);
  await waitFor('one Odoo activity per breach', 120_000, async () => (await odoo.searchCount('mail.activity', [['summary', 'like', 'Charge not invoiced within SLA']])) >= breaches.length);
  const activities = await odoo.searchRead('mail.activity', [['summary', 'like', 'Charge not invoiced within SLA']], { fields: ['summary', 'res_model', 'res_id', 'user_id'] });
  assert.equal(activities.length, breaches.length, 'exactly one activity per breach');
  const partners = new Map((await odoo.searchRead('res.partner', [['ref', '!=', false]], { fields: ['ref'] })).map((row) => [String(row.ref), row.id]));
  const bySummary = new Map(activities.map((activity) => [String(activity.summary), activity]));
  for (const breach of breaches) {
    const activity = bySummary.get(`Charge not invoiced within SLA: ${breach.transaction_key}`);
    assert.ok(activity, `an activity tells the owner about ${breach.transaction_key}`);
    assert.equal(activity.res_model, 'res.partner');
    assert.equal(activity.res_id, partners.get(breach.owner as string), 'on the lab the charge came from');
    assert.equal((activity.user_id as [number, string])[0], 2, 'assigned to the billing owner (admin)');
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}
