import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Admin, Producer } from 'kafkajs';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { peakConcurrency, startOdooSimulator, type CallSpan, type OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import type { AvroSerde } from '../../../src/kafka/avro-serde.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { invoiceSinkConfig, testClaim, TEST_CLAIM_SCHEMA, type TestClaim, type WritebackResult } from './odoo-sink-fixture.ts';
import { writeOdooTopology, type OdooTestTopology } from './odoo-topology.ts';

/**
 * odoo_sink under `lifeline run` writes its partitions concurrently, up to max_in_flight: each
 * partition is a lane written in order and committed after its own writes; a lane Odoo refuses
 * for now waits (never dead-lettered) while the others go on.
 */
const PARTITIONS = 3;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface Run {
  readonly simulator: OdooSimulator;
  readonly odoo: OdooClient;
  readonly admin: Admin;
  readonly serde: AvroSerde;
  readonly topology: OdooTestTopology;
  readonly input: string;
  readonly groupId: string;
  readonly results: TopicCollector<WritebackResult>;
  readonly deadLetters: TopicCollector<Buffer>;
  /** Sends claims to one partition, in order. */
  send(partition: number, claims: readonly TestClaim[]): Promise<void>;
}

async function sinkRun(simulator: OdooSimulator, maxInFlight: number): Promise<Run> {
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  const input = uniqueTopic('billing', 'claim', 'ready');
  const resultsTopic = uniqueTopic('odoo', 'writeback', 'result');
  const topology = await writeOdooTopology({
    simulator, labelPrefix: 'invoice_sink',
    topics: {
      claims: { name: input, schema: TEST_CLAIM_SCHEMA, partitions: PARTITIONS, classification: 'phi' },
      results: { name: resultsTopic, schema: 'schemas/odoo/writeback_result.avsc', partitions: PARTITIONS },
    },
    connector: { type: 'odoo_sink', inputs: [input], outputs: { results: resultsTopic }, config: { ...invoiceSinkConfig('match_ref', 50), max_in_flight: maxInFlight } },
  });
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: input, partitions: PARTITIONS }, { name: resultsTopic, partitions: PARTITIONS }, { name: deadLetterTopic(topology.label), partitions: 1 }]);
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();
  await serde.register(input, loadContract(TEST_CLAIM_SCHEMA));
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const results = await new TopicCollector<WritebackResult>(kafka, resultsTopic, serde).start();
  cleanups.push(() => results.stop());
  const deadLetters = await new TopicCollector<Buffer>(kafka, deadLetterTopic(topology.label)).start();
  cleanups.push(() => deadLetters.stop());
  return {
    simulator, odoo, admin, serde, topology, input, results, deadLetters, groupId: `${topology.appId}.${topology.label}`,
    async send(partition, claims) {
      const messages = [];
      for (const claim of claims) {
        messages.push({ partition, key: claim.claim_id, value: await serde.encode(input, claim), headers: { 'lifeline.idempotency-key': claim.claim_id } });
      }
      await producer.send({ topic: input, messages, acks: -1 });
    },
  };
}

/** The claims of one partition: `count` new ones, then (optionally) an amendment of the first one. */
function partitionClaims(prefix: string, partition: number, count: number, from = 0): TestClaim[] {
  return Array.from({ length: count }, (_, index) => testClaim(from + index, `${prefix}-${partition}`));
}

function amended(claim: TestClaim): TestClaim {
  return { ...claim, lines: claim.lines.map((line, position) => (position === 0 ? { ...line, amount_minor: line.amount_minor + 100 } : line)) };
}

function expectedMinor(claim: TestClaim): number {
  return claim.lines.reduce((sum, line) => sum + line.quantity * line.amount_minor, 0);
}

/** Committed offset (0 when none) and end offset of each partition. */
async function partitionLag(admin: Admin, groupId: string, topic: string): Promise<number[]> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const latest = await admin.fetchTopicOffsets(topic);
  return latest.sort((a, b) => a.partition - b.partition).map((entry) => {
    const done = Number(committed?.partitions.find((partition) => partition.partition === entry.partition)?.offset ?? '-1');
    return Number(entry.high) - Math.max(0, done);
  });
}

function outcomesByKey(records: TopicCollector<WritebackResult>['records']): Map<string, string[]> {
  const byKey = new Map<string, string[]>();
  for (const { value } of records) byKey.set(value.key, [...(byKey.get(value.key) ?? []), value.outcome]);
  return byKey;
}

test(`${PARTITIONS} partitions, Odoo 400 ms per writing call: max_in_flight ${PARTITIONS} writes them at once (${PARTITIONS} calls in flight), max_in_flight 1 one after another; order per partition kept, each result once`, { timeout: 240_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  simulator.control.setSlow(400, 'writes');
  const measured: Record<number, { peak: number; wallMs: number; writes: number }> = {};
  for (const maxInFlight of [1, PARTITIONS]) {
    const run = await sinkRun(simulator, maxInFlight);
    const prefix = `CLM-P${maxInFlight}`;
    const sent = new Map<string, TestClaim>();
    // 100 claims per partition, then an amendment of the partition's first claim: it must land after the original.
    for (let partition = 0; partition < PARTITIONS; partition++) {
      const claims = partitionClaims(prefix, partition, 100);
      const first = claims[0] as TestClaim;
      claims.push(amended(first));
      for (const claim of claims) sent.set(claim.claim_id, claim);
      await run.send(partition, claims);
    }
    const startedAt = Date.now();
    const lifeline = new LifelineProcess(run.topology.file, [], run.topology.env).start();
    cleanups.push(() => lifeline.kill());
    await lifeline.waitForLine(/lifeline running/);
    await run.results.waitForCount(PARTITIONS * 101, 120_000);
    await lifeline.kill('SIGTERM');

    const spans: CallSpan[] = simulator.callLog().filter((span) => span.model === 'account.move' && span.rows > 0 && span.startedAt >= startedAt);
    const peak = peakConcurrency(spans);
    const wallMs = Math.max(...spans.map((span) => span.endedAt)) - Math.min(...spans.map((span) => span.startedAt));
    measured[maxInFlight] = { peak, wallMs, writes: spans.length };

    // Each write's results once: a created per claim, an updated per amendment, nothing else.
    const byKey = outcomesByKey(run.results.records);
    assert.equal(byKey.size, PARTITIONS * 100);
    for (const [key, outcomes] of byKey) {
      const isAmended = key.endsWith('-0') && key.startsWith(prefix);
      assert.deepEqual(outcomes, isAmended ? ['created', 'updated'] : ['created'], `${key}: ${outcomes.join(', ')}`);
    }
    assert.equal(run.results.records.length, PARTITIONS * 101, 'one result per record written, none twice');
    assert.equal(run.deadLetters.records.length, 0);
    const moves = await run.odoo.searchRead('account.move', [['ref', '=like', `${prefix}-%`]], { fields: ['ref', 'amount_total'] });
    assert.equal(moves.length, PARTITIONS * 100, 'one invoice per claim');
    assert.equal(new Set(moves.map((move) => move.ref)).size, PARTITIONS * 100, 'no claim twice');
    for (const move of moves) {
      // The amendment came after its original in the partition: the invoice holds the amended total.
      const claim = sent.get(String(move.ref)) as TestClaim;
      assert.equal(Math.round(Number(move.amount_total) * 100), expectedMinor(claim), `${String(move.ref)} total`);
    }
  }
  console.log(`writing calls to account.move at 400 ms each: ${JSON.stringify(measured)}`);
  const one = measured[1] as { peak: number; wallMs: number };
  const many = measured[PARTITIONS] as { peak: number; wallMs: number };
  assert.equal(one.peak, 1, 'max_in_flight 1: one partition at a time');
  assert.equal(many.peak, PARTITIONS, `max_in_flight ${PARTITIONS}: every partition written at once`);
  assert.ok(many.wallMs < one.wallMs * 0.6, `concurrent writes take well under the sequential time (${many.wallMs} ms vs ${one.wallMs} ms)`);
});

test('a row Odoo keeps locked holds only its own partition: the lane retries (no dead letter, offsets not committed past it) while the others keep flowing; after a kill and a restart everything is written once', { timeout: 240_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const run = await sinkRun(simulator, PARTITIONS);
  const prefix = 'CLM-H';
  const locked = `${prefix}-0-5`;
  // Someone holds the invoice row for claim CLM-H-0-5: every write of it is a serialization failure.
  simulator.control.rejectValue({ model: 'account.move', field: 'ref', value: locked, transient: true });
  for (let partition = 0; partition < PARTITIONS; partition++) await run.send(partition, partitionClaims(prefix, partition, 40));
  const lifeline = new LifelineProcess(run.topology.file, [], run.topology.env).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);

  const keysOf = (partition: number): string[] => run.results.records.map(({ value }) => value.key).filter((key) => key.startsWith(`${prefix}-${partition}-`));
  await run.results.waitUntil(() => keysOf(1).length === 40 && keysOf(2).length === 40, 'partitions 1 and 2 written', 60_000);
  // More for the free lanes while lane 0 is still held: they are written too (no lane waits for another).
  await run.send(1, partitionClaims(prefix, 1, 40, 40));
  await run.send(2, partitionClaims(prefix, 2, 40, 40));
  await run.results.waitUntil(() => keysOf(1).length === 80 && keysOf(2).length === 80, 'the later claims of partitions 1 and 2 written', 60_000);
  await lifeline.waitForLine(/sink write failed; retrying/);
  assert.deepEqual(keysOf(0), [], 'nothing of partition 0 is reported written while its batch cannot be');
  assert.deepEqual(await partitionLag(run.admin, run.groupId, run.input), [40, 0, 0], 'partition 0 commits nothing past the held batch; the others are done');
  const retries = lifeline.lines.filter((line) => line.includes('sink write failed; retrying'));
  assert.ok(retries.every((line) => line.includes(`${run.input}|0`)), 'only lane 0 retries');
  assert.ok(lifeline.lines.some((line) => line.includes('connector health changed') && line.includes('"down"')), 'the sink says it is down while a lane is');
  assert.equal(run.deadLetters.records.length, 0, 'a lock is never a dead letter');

  // Kill it while lane 0 is held, restart, then the lock goes away.
  await lifeline.kill('SIGKILL');
  const restarted = new LifelineProcess(run.topology.file, [], run.topology.env).start();
  cleanups.push(() => restarted.kill());
  await restarted.waitForLine(/lifeline running/);
  await restarted.waitForLine(/sink write failed; retrying/);
  simulator.control.clearRejections();
  await run.results.waitUntil(() => keysOf(0).length >= 40, 'partition 0 written after the lock went away', 90_000);
  await restarted.waitForLine(/"health":"up".*connector health changed/);
  for (let attempt = 0; attempt < 50 && (await partitionLag(run.admin, run.groupId, run.input)).some((lag) => lag > 0); attempt++) await sleep(200);
  assert.deepEqual(await partitionLag(run.admin, run.groupId, run.input), [0, 0, 0], 'every partition committed');
  await restarted.kill('SIGTERM');

  const byKey = outcomesByKey(run.results.records);
  assert.equal(byKey.size, 200, 'every claim has a result');
  for (const [key, outcomes] of byKey) assert.equal(outcomes.filter((outcome) => outcome === 'created').length, 1, `${key} created once: ${outcomes.join(', ')}`);
  assert.equal(run.deadLetters.records.length, 0);
  const moves = await run.odoo.searchRead('account.move', [['ref', '=like', `${prefix}-%`]], { fields: ['ref'] });
  assert.equal(moves.length, 200, 'one invoice per claim, none lost');
  assert.equal(new Set(moves.map((move) => move.ref)).size, 200, 'none twice');
});
