import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Admin, Kafka } from 'kafkajs';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { startOdooSimulator, type OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import type { AvroSerde } from '../../../src/kafka/avro-serde.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { invoiceSinkConfig, testClaim, TEST_CLAIM_SCHEMA, type WritebackResult } from './odoo-sink-fixture.ts';
import { writeOdooTopology, type OdooTestTopology } from './odoo-topology.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

interface SinkRun {
  readonly simulator: OdooSimulator;
  readonly odoo: OdooClient;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly serde: AvroSerde;
  readonly topology: OdooTestTopology;
  readonly input: string;
  readonly results: TopicCollector<WritebackResult>;
  readonly deadLetters: TopicCollector<Buffer>;
  send(from: number, to: number, prefix: string): Promise<void>;
}

async function sinkRun(match: string): Promise<SinkRun> {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  const input = uniqueTopic('billing', 'claim', 'ready');
  const resultsTopic = uniqueTopic('odoo', 'writeback', 'result');
  const topology = await writeOdooTopology({
    simulator, labelPrefix: 'invoice_sink',
    topics: {
      claims: { name: input, schema: TEST_CLAIM_SCHEMA, partitions: 3, classification: 'phi' },
      results: { name: resultsTopic, schema: 'schemas/odoo/writeback_result.avsc', partitions: 3 },
    },
    connector: { type: 'odoo_sink', inputs: [input], outputs: { results: resultsTopic }, config: invoiceSinkConfig(match, 50) },
  });
  const kafka = await testKafka();
  const dlq = deadLetterTopic(topology.label);
  const admin = await createTestTopics(kafka, [{ name: input, partitions: 3 }, { name: resultsTopic, partitions: 3 }, { name: dlq, partitions: 1 }]);
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();
  await serde.register(input, loadContract(TEST_CLAIM_SCHEMA));
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const results = await new TopicCollector<WritebackResult>(kafka, resultsTopic, serde).start();
  cleanups.push(() => results.stop());
  const deadLetters = await new TopicCollector<Buffer>(kafka, dlq).start();
  cleanups.push(() => deadLetters.stop());
  return {
    simulator, odoo, kafka, admin, serde, topology, input, results, deadLetters,
    async send(from, to, prefix) {
      const messages = [];
      for (let index = from; index < to; index++) {
        const key = `${prefix}:${index}`;
        messages.push({ key, value: await serde.encode(input, testClaim(index, prefix)), headers: { 'lifeline.idempotency-key': key } });
      }
      await producer.send({ topic: input, messages, acks: -1 });
    },
  };
}

async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  const latest = await admin.fetchTopicOffsets(topic);
  let lag = 0;
  for (const partition of latest) {
    const done = committed?.partitions.find((entry) => entry.partition === partition.partition)?.offset ?? '-1';
    lag += Number(partition.high) - Math.max(0, Number(done));
  }
  return lag;
}

test('Odoo down during a sink run: no dead letters, the lag rises and drains, every claim written once', { timeout: 180_000 }, async () => {
  const run = await sinkRun('match_ref');
  const groupId = `${run.topology.appId}.${run.topology.label}`;
  const lifeline = new LifelineProcess(run.topology.file, [], run.topology.env).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);
  await run.send(0, 300, 'CLM-D');
  await run.results.waitForCount(300, 60_000);

  run.simulator.control.setDown(true);
  const downAt = Date.now();
  await run.send(300, 600, 'CLM-D');
  let peakLag = 0;
  // A bounded poll until the whole backlog shows as lag (none of it can be written while Odoo is down)
  // and the sink has found Odoo down.
  const saysDown = (): boolean => lifeline.lines.some((line) => line.includes('connector health changed') && line.includes('"down"'));
  while ((peakLag < 300 || !saysDown()) && Date.now() - downAt < 60_000) {
    peakLag = Math.max(peakLag, await groupLag(run.admin, groupId, run.input));
    await sleep(500);
  }
  assert.equal(peakLag, 300, 'the backlog waits in Kafka as lag');
  assert.ok(lifeline.lines.some((line) => line.includes('connector health changed') && line.includes('"down"')), 'the sink says it is down');
  run.simulator.control.setDown(false);
  const upAt = Date.now();
  await run.results.waitForCount(600, 60_000);
  const drainedMs = Date.now() - upAt;
  for (let attempt = 0; attempt < 30 && await groupLag(run.admin, groupId, run.input) > 0; attempt++) await sleep(200);
  assert.equal(await groupLag(run.admin, groupId, run.input), 0, 'the lag drains');
  await lifeline.kill('SIGTERM');

  assert.equal(run.deadLetters.records.length, 0, 'nothing dead-lettered while Odoo was down');
  const moves = await run.odoo.searchRead('account.move', [['ref', '=like', 'CLM-D-%']], { fields: ['ref'] });
  assert.equal(moves.length, 600);
  assert.equal(new Set(moves.map((move) => move.ref)).size, 600, 'each claim once');
  assert.deepEqual(new Set(run.results.records.map(({ value }) => value.outcome)), new Set(['created']));
  assert.ok(run.results.records.every(({ value }) => value.key.startsWith('CLM-D-')), 'keyed by the claim id (match.key_path)');
  console.log(`lag peaked at ${peakLag} while Odoo was down 30 s; drained ${drainedMs} ms after it came back`);
});

test('a claim Odoo rejects is dead-lettered with Odoo\'s text while the later ones are written', { timeout: 120_000 }, async () => {
  const run = await sinkRun('lifeline_reject_run');
  const message = 'The claim CLM-R-17 was already billed on invoice INV/2026/00012.';
  run.simulator.control.rejectValue({ model: 'account.move', field: 'ref', value: 'CLM-R-17', message });
  const lifeline = new LifelineProcess(run.topology.file, [], run.topology.env).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);
  await run.send(0, 40, 'CLM-R');
  await run.results.waitForCount(39, 60_000);
  await run.deadLetters.waitForCount(1, 30_000);
  await run.send(40, 60, 'CLM-R');
  await run.results.waitForCount(59, 60_000);
  await lifeline.kill('SIGTERM');

  const [deadLetter] = run.deadLetters.records;
  assert.equal(run.deadLetters.records.length, 1);
  assert.equal(deadLetter?.key, 'CLM-R:17');
  assert.equal(deadLetter?.headers['lifeline.error.class'], 'LL_ODOO_USER_ERROR');
  assert.ok(deadLetter?.headers['lifeline.error.message']?.includes(message), `Odoo's text in the dead letter: ${deadLetter?.headers['lifeline.error.message']}`);
  const decoded = await run.serde.decode(deadLetter?.value as unknown as Buffer);
  assert.equal((decoded.value as { claim_id: string }).claim_id, 'CLM-R-17', 'the raw record is kept');
  assert.equal(await run.odoo.searchCount('account.move', [['ref', '=like', 'CLM-R-%']]), 59);
  assert.ok(!run.results.records.some(({ value }) => value.key === 'CLM-R:17'));
});
