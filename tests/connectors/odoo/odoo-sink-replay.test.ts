import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Admin } from 'kafkajs';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { invoiceSinkConfig, testClaim, TEST_CLAIM_SCHEMA, type WritebackResult } from './odoo-sink-fixture.ts';
import { writeOdooTopology } from './odoo-topology.ts';

const TOTAL = 2_000;
/** Claims amended after the first pass (same key, another amount, a later ingest time). */
const CORRECTIONS = 100;

function corrected(index: number): ReturnType<typeof testClaim> {
  const claim = testClaim(index);
  return { ...claim, lines: claim.lines.map((line, position) => (position === 0 ? { ...line, amount_minor: line.amount_minor + 100 } : line)) };
}

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test(`odoo_sink: ${TOTAL} claims, killed mid-batch and restarted, ${CORRECTIONS} amended, then the group replayed from earliest: each invoice once, with the right values, and no new chatter`, { timeout: 480_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  const input = uniqueTopic('billing', 'claim', 'ready');
  const results = uniqueTopic('odoo', 'writeback', 'result');
  const topology = await writeOdooTopology({
    simulator, labelPrefix: 'invoice_sink',
    topics: {
      claims: { name: input, schema: TEST_CLAIM_SCHEMA, partitions: 3, classification: 'phi' },
      results: { name: results, schema: 'schemas/odoo/writeback_result.avsc', partitions: 3 },
    },
    connector: { type: 'odoo_sink', inputs: [input], outputs: { results }, config: { ...invoiceSinkConfig('lifeline_replay', 100), version: {} } },
  });
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: input, partitions: 3 }, { name: results, partitions: 3 }]);
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();
  await serde.register(input, loadContract(TEST_CLAIM_SCHEMA));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  for (let start = 0; start < TOTAL; start += 500) {
    const messages = [];
    for (let index = start; index < Math.min(TOTAL, start + 500); index++) {
      messages.push({ key: `claim:${index}`, value: await serde.encode(input, testClaim(index)), headers: { 'lifeline.idempotency-key': `claim:${index}`, 'lifeline.ingested-at': new Date(Date.UTC(2026, 11, 1, 8) + index).toISOString() } });
    }
    await producer.send({ topic: input, messages, acks: -1 });
  }
  const collector = await new TopicCollector<WritebackResult>(kafka, results, serde).start();
  cleanups.push(() => collector.stop());

  // Slow writes make each batch take a while, so the kill lands while batches are being written;
  // 5% of batches also crash after writing to Odoo and sending results, before the offsets commit.
  simulator.control.setSlow(250, 'writes');
  const lifeline = new LifelineProcess(topology.file, [], { ...topology.env, LIFELINE_FAULT_KILL_BEFORE_COMMIT: '0.05' }).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);
  const restart = async (): Promise<void> => {
    // With partitions written concurrently, an injected crash can come before the process says it
    // runs (it writes while the other components start): start it again then, as a supervisor would.
    for (let attempt = 1; ; attempt++) {
      const from = lifeline.lines.length;
      lifeline.start();
      try {
        await lifeline.waitForLine(/lifeline running/, 60_000, from);
        return;
      } catch (error) {
        const injected = lifeline.lines.slice(from).some((line) => line.includes('fault injection: SIGKILL before commit'));
        if (!injected || attempt >= 10) throw error;
        restarts++;
      }
    }
  };
  // An injected crash can come before the kill below too: restart it, as a supervisor would.
  // Liveness bounds, not speed: each restart costs a rebalance (~8 s on a loaded machine).
  let restarts = 0;
  const firstQuarter = Date.now() + 180_000;
  while (collector.records.length < TOTAL / 4 && Date.now() < firstQuarter) {
    if (lifeline.exitCode !== undefined) {
      restarts++;
      await restart();
    }
    await sleep(200);
  }
  await collector.waitForCount(TOTAL / 4, 1);
  // Kill the moment Odoo has committed a batch, before the sink hears back: Odoo is now ahead of
  // the group's offsets, and the restarted sink writes that batch again.
  await new Promise<void>((resolveKill, rejectKill) => {
    const timer = setTimeout(() => rejectKill(new Error(`no Odoo commit to kill at (${collector.records.length} results so far)`)), 30_000);
    simulator.events.once('commit', () => {
      clearTimeout(timer);
      void lifeline.kill('SIGKILL').then(resolveKill);
    });
  });
  const killedAt = collector.records.length;
  simulator.control.setSlow(0);
  await restart();
  restarts++;
  // Restart after every injected crash until every claim has a result.
  const deadline = Date.now() + 150_000;
  while (distinctKeys(collector.records) < TOTAL && Date.now() < deadline) {
    if (lifeline.exitCode !== undefined) {
      restarts++;
      await restart();
    }
    await sleep(200);
  }
  assert.equal(distinctKeys(collector.records), TOTAL, 'every claim written');
  // Amendments: the same keys, other amounts, ingested later (the partner corrected its charges).
  const amendments = [];
  for (let index = 0; index < CORRECTIONS; index++) {
    amendments.push({ key: `claim:${index}`, value: await serde.encode(input, corrected(index)), headers: { 'lifeline.idempotency-key': `claim:${index}`, 'lifeline.ingested-at': new Date(Date.UTC(2026, 11, 1, 9) + index).toISOString() } });
  }
  const beforeAmendments = collector.records.length;
  await producer.send({ topic: input, messages: amendments, acks: -1 });
  const amendedBy = Date.now() + 150_000;
  // Odoo is the judge: with partitions written concurrently, an injected crash in one lane can kill
  // the process after another lane's amendments reached Odoo and before their results were sent;
  // after the restart those are found `unchanged`. Every amended key has a result after the
  // amendments were sent, and every invoice holds its amended total.
  const amendedRefs = Array.from({ length: CORRECTIONS }, (_, index) => `CLM-K-${index}`);
  const amendedInOdoo = async (): Promise<number> => {
    const moves = await odoo.searchRead('account.move', [['ref', 'in', amendedRefs]], { fields: ['ref', 'amount_total'] });
    return moves.filter((move) => {
      const claim = corrected(Number(String(move.ref).slice('CLM-K-'.length)));
      return Math.round(Number(move.amount_total) * 100) === claim.lines.reduce((sum, line) => sum + line.quantity * line.amount_minor, 0);
    }).length;
  };
  const answeredKeys = (): number => new Set(collector.records.slice(beforeAmendments).filter(({ value }) => value.outcome === 'updated' || value.outcome === 'unchanged').map(({ value }) => value.key).filter((key) => Number(key.slice('claim:'.length)) < CORRECTIONS)).size;
  while ((answeredKeys() < CORRECTIONS || await amendedInOdoo() < CORRECTIONS) && Date.now() < amendedBy) {
    if (lifeline.exitCode !== undefined) {
      restarts++;
      await restart();
    }
    await sleep(200);
  }
  assert.equal(await amendedInOdoo(), CORRECTIONS, 'every amendment reached its invoice');
  assert.equal(answeredKeys(), CORRECTIONS, 'every amendment has a result');
  const updatedKeys = new Set(collector.records.slice(beforeAmendments).filter(({ value }) => value.outcome === 'updated').map(({ value }) => value.key)).size;
  assert.ok(updatedKeys > 0, 'amendments are reported updated');
  await lifeline.kill('SIGTERM');
  // Every result the first pass produced is collected before the replay's are counted.
  const resultsEnd = async (): Promise<number> => (await admin.fetchTopicOffsets(results)).reduce((sum, partition) => sum + Number(partition.high), 0);
  for (let attempt = 0; attempt < 100 && collector.records.length < await resultsEnd(); attempt++) await sleep(200);
  assert.equal(collector.records.length, await resultsEnd(), 'the first pass\'s results are all collected');
  const firstPass = collector.records.length;
  const firstOutcomes = countBy(collector.records.map(({ value }) => value.outcome));
  assert.ok((firstOutcomes.unchanged ?? 0) > 0, 'the batch Odoo committed before the kill was found already written after the restart');
  await assertInvoices(odoo);
  const root = new OdooClient({ url: simulator.url, database: simulator.database, username: 'admin', password: 'admin' });
  cleanups.push(async () => root.close());
  const history = async (): Promise<{ messages: number; trackingValues: number }> => ({
    messages: await root.searchCount('mail.message', [['model', '=', 'account.move']]),
    trackingValues: await root.searchCount('mail.tracking.value', []),
  });
  const beforeReplay = await history();
  assert.ok(beforeReplay.trackingValues >= CORRECTIONS, 'each amendment was tracked (its total changed)');

  // Replay everything: the group's offsets back to the start (the group is empty now).
  await waitForEmptyGroup(admin, `${topology.appId}.${topology.label}`);
  await admin.setOffsets({ groupId: `${topology.appId}.${topology.label}`, topic: input, partitions: [0, 1, 2].map((partition) => ({ partition, offset: '0' })) });
  const replay = new LifelineProcess(topology.file, [], topology.env).start();
  cleanups.push(() => replay.kill());
  await replay.waitForLine(/lifeline running/);
  await collector.waitForCount(firstPass + TOTAL + CORRECTIONS, 240_000);
  await replay.kill('SIGTERM');
  const replayed = collector.records.slice(firstPass);
  const outcomes = countBy(replayed.map(({ value }) => value.outcome));
  console.log(`killed after ${killedAt} results; ${restarts} restarts; first pass ${firstPass} results ${JSON.stringify(firstOutcomes)}; replay outcomes ${JSON.stringify(outcomes)}`);
  // The originals of amended claims are older than what their invoices hold: skipped, never written back over the amendment.
  assert.deepEqual(outcomes, { unchanged: TOTAL, skipped_older: CORRECTIONS }, 'a replay changes nothing');
  await assertInvoices(odoo);
  assert.deepEqual(await history(), beforeReplay, 'a replay from earliest adds no mail.message and no mail.tracking.value');
});

async function assertInvoices(odoo: OdooClient): Promise<void> {
  const moves = await odoo.searchRead('account.move', [['ref', '=like', 'CLM-K-%']], { fields: ['ref', 'amount_total', 'invoice_line_ids', 'partner_id', 'invoice_date'] });
  assert.equal(moves.length, TOTAL, 'one invoice per claim');
  assert.equal(new Set(moves.map((move) => move.ref)).size, TOTAL, 'no claim twice');
  for (const move of moves) {
    const index = Number(String(move.ref).slice('CLM-K-'.length));
    const claim = index < CORRECTIONS ? corrected(index) : testClaim(index);
    const expectedMinor = claim.lines.reduce((sum, line) => sum + line.quantity * line.amount_minor, 0);
    assert.equal(Math.round(Number(move.amount_total) * 100), expectedMinor, `${String(move.ref)} total`);
    assert.equal((move.invoice_line_ids as number[]).length, claim.lines.length, `${String(move.ref)} lines`);
  }
  const externalIds = await odoo.searchCount('ir.model.data', [['module', '=', 'lifeline_replay']]);
  assert.equal(externalIds, TOTAL, 'one external id per claim');
}

async function waitForEmptyGroup(admin: Admin, groupId: string): Promise<void> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const { groups } = await admin.describeGroups([groupId]);
    if (groups[0]?.state === 'Empty' || groups[0]?.state === 'Dead') return;
    await sleep(300);
  }
  throw new Error(`group ${groupId} did not become empty`);
}

function distinctKeys(records: ReadonlyArray<{ value: WritebackResult }>): number {
  return new Set(records.map(({ value }) => value.key)).size;
}

function countBy(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) counts[value] = (counts[value] ?? 0) + 1;
  return counts;
}
