import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { defineProcessor, type ComponentDefinition } from '../../../src/component/component.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { testKafka } from '../../../testing/harness.ts';
import { TopicCollector, registeredSerde, testEvent, testEventTopic, writeCounterTopology } from '../../../testing/runtime-fixture.ts';

interface KeyCount { key: string; count: number; origin_topic: string; origin_partition: number; origin_offset: number }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Emits a heartbeat per partition every 100 ms from a timer, numbering them from its store. */
const tickingCounter = defineProcessor({
  kind: 'processor', type: 'count_by_key', description: 'test double with a timer', stateful: true, outputs: ['counts'],
  config: Type.Object({}, { additionalProperties: false }),
  stores: () => [{ name: 'ticks' }],
  create: () => ({
    init(context) {
      context.schedule(100, () => {
        const ticks = context.store<number>('ticks');
        const tick = (ticks.get('tick') ?? 0) + 1;
        ticks.put('tick', tick);
        context.forward('counts', { key: `tick-${context.partition}`, value: { key: `tick-${context.partition}`, count: tick, origin_topic: 'timer', origin_partition: context.partition, origin_offset: -1 } });
      });
    },
    process() {},
  }),
});

test('timer punctuation commits its outputs and store writes in transactions, per partition', { timeout: 120_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 2 });
  const registry = new ComponentRegistry([tickingCounter as unknown as ComponentDefinition]);
  const runtime = new LifelineRuntime({ topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const outputs = await new TopicCollector<KeyCount>(kafka, topology.output, serde).start();
  cleanups.push(() => outputs.stop());
  await outputs.waitForCount(10, 30_000);
  await runtime.stop();
  for (const partition of [0, 1]) {
    const ticks = outputs.records.filter(({ value }) => value.key === `tick-${partition}`).map(({ value }) => value.count);
    assert.ok(ticks.length >= 2, `partition ${partition} ticked`);
    assert.deepEqual(ticks, Array.from({ length: ticks.length }, (_, index) => index + 1), 'numbered from the store, committed in order');
  }
  const metrics = await runtime.metrics.metricsText();
  assert.match(metrics, /lifeline_transactions_total\{component="event_counter_[0-9a-f]+",result="committed"\} \d+/);
});

test('at_least_once is selectable: records flow with plain sends and consumer offset commits', { timeout: 120_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 2, guarantee: 'at_least_once' });
  const input = await testEventTopic(topology.input, 2);
  cleanups.push(() => input.close());
  const { kafka, admin, serde } = input;
  const events = Array.from({ length: 200 }, (_, index) => testEvent(index, 8));
  await input.send(events);

  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const outputs = await new TopicCollector<KeyCount>(kafka, topology.output, serde).start();
  cleanups.push(() => outputs.stop());
  await outputs.waitForCount(events.length, 60_000);
  await runtime.stop();
  const committed = await admin.fetchOffsets({ groupId: `${topology.appId}.${topology.label}`, topics: [topology.input] });
  const total = committed[0]?.partitions.reduce((sum, partition) => sum + Number(partition.offset), 0);
  assert.equal(total, events.length, 'consumer offsets committed for every input');
  assert.equal(outputs.records.length, events.length);
});
