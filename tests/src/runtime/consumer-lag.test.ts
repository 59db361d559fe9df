import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { defineProcessor, type ComponentDefinition } from '../../../src/component/component.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { describeGroup } from '../../../src/ops/group-inspection.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { uniqueName } from '../../../testing/harness.ts';
import { TopicCollector, testEvent, testEventTopic, writeCounterTopology } from '../../../testing/runtime-fixture.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A gate the test closes to stall the processor on a record (a consumer that cannot move on). */
let gate: { promise: Promise<void>; open: () => void } | undefined;

const gatedCounter = defineProcessor({
  kind: 'processor', type: 'count_by_key', description: 'test double that can be stalled', stateful: false, outputs: ['counts'],
  config: Type.Object({}, { additionalProperties: false }),
  create: () => ({
    async process(record, context) {
      await gate?.promise;
      context.forward('counts', { key: record.key, value: { key: record.key ?? '', count: 1, origin_topic: record.topic, origin_partition: record.partition, origin_offset: Number(record.offset) } });
    },
  }),
});

test('lag reads 0 on an idle transactional partition and the true backlog while the consumer is stuck, in the metric and in groups describe', { timeout: 120_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 1 });
  const input = await testEventTopic(topology.input, 1);
  cleanups.push(() => input.close());
  const registry = new ComponentRegistry([gatedCounter as unknown as ComponentDefinition]);
  const runtime = new LifelineRuntime({ topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const group = `${topology.appId}.${topology.label}`;
  const producer = input.kafka.producer({ transactionalId: uniqueName('lag-test'), idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  let sent = 0;
  const sendInTransaction = async (count: number): Promise<void> => {
    const transaction = await producer.transaction();
    const messages = await Promise.all(Array.from({ length: count }, async (_, index) => ({ key: `k${sent + index}`, value: await input.serde.encode(topology.input, testEvent(sent + index)), partition: 0 })));
    await transaction.send({ topic: topology.input, messages });
    await transaction.commit();
    sent += count;
  };
  const lagMetric = async (): Promise<number | undefined> => {
    const text = await runtime.metrics.metricsText();
    const match = new RegExp(`lifeline_consumer_lag\\{group="${group}",topic="${topology.input.replace(/\./g, '\\.')}",partition="0"\\} (\\d+)`).exec(text);
    return match ? Number(match[1]) : undefined;
  };
  const until = async (what: string, condition: () => Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 40_000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (lag metric ${await lagMetric()})`);
      await sleep(250);
    }
  };

  const outputs = await new TopicCollector(input.kafka, topology.output, input.serde).start();
  cleanups.push(() => outputs.stop());
  await sendInTransaction(10);
  await outputs.waitForCount(10, 60_000);
  await until('lag 0 once caught up', async () => (await lagMetric()) === 0);
  const [end] = await input.admin.fetchTopicOffsets(topology.input);
  const [committed] = (await input.admin.fetchOffsets({ groupId: group, topics: [topology.input] }))[0]?.partitions ?? [];
  assert.equal(BigInt(end?.high ?? 0) - BigInt(committed?.offset ?? 0), 1n, 'the commit marker: end offset minus committed is 1, yet the lag is 0');
  assert.equal((await describeGroup(input.admin, loadTopology(topology.file, registry), group, input.kafka)).totalLag, '0');

  // Stall the consumer on the next record; 25 more arrive behind it, in 5 transactions (5 more markers).
  let open!: () => void;
  gate = { promise: new Promise<void>((resolve) => { open = resolve; }), open: () => open() };
  await sendInTransaction(1);
  for (let round = 0; round < 5; round++) await sendInTransaction(5);
  await until('the true backlog of 26 records', async () => (await lagMetric()) === 26);
  const described = await describeGroup(input.admin, loadTopology(topology.file, registry), group, input.kafka);
  assert.deepEqual([described.totalLag, described.partitions[0]?.lagExact], ['26', true], 'groups describe counts the same records');

  gate.open();
  gate = undefined;
  await outputs.waitForCount(sent, 60_000);
  await until('lag back to 0', async () => (await lagMetric()) === 0);
});
