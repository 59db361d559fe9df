import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { LifelineError } from '../../../src/errors.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { defineSink, defineSource, type ComponentDefinition, type InputRecord, type SourceBatch } from '../../../src/component/component.ts';
import { DEAD_LETTER_HEADERS } from '../../../src/runtime/dead-letter.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { LIFELINE_HEADERS } from '../../../src/component/record-headers.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { committedBacklog } from '../../../src/kafka/committed-backlog.ts';
import { testKafka } from '../../../testing/harness.ts';
import { writeConnectorTopology } from '../../../testing/connector-fixture.ts';
import { TopicCollector, registeredSerde, testEvent, testEventTopic, type TestEvent } from '../../../testing/runtime-fixture.ts';
import { keyPerPartition } from '../../../testing/sentinel.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const TOTAL = 1000;
/** The source emits only up to here: the first run stops at a known cursor, not wherever a loaded machine has got to. */
let releasedUpTo = 300;
/** Sent once every event is out, one per partition of the topic: when all have arrived, nothing committed before them is still on its way. */
let sentinels: TestEvent[] = [];
const acknowledged: number[] = [];
const connectedAt: number[] = [];

/** Emits events 0..TOTAL-1 in batches of 100; its cursor is the next index. Event 500 has an amount that does not encode. */
const numberSource = defineSource({
  kind: 'source', type: 'number_source', description: 'test source', stateful: false, outputs: ['events'],
  config: Type.Object({}, { additionalProperties: false }),
  create: () => {
    let next = 0;
    let signal: AbortSignal;
    return {
      async connect(context) {
        next = (context.cursor as { next?: number } | undefined)?.next ?? 0;
        connectedAt.push(next);
        signal = context.signal;
      },
      async produce(): Promise<SourceBatch | undefined> {
        if (next >= TOTAL && sentinels.length > 0) {
          const records = sentinels.map((event) => ({ output: 'events', key: event.account, value: event }));
          sentinels = [];
          return { records };
        }
        if (next >= Math.min(TOTAL, releasedUpTo)) {
          await sleep(50, undefined, { signal }).catch(() => undefined);
          return undefined;
        }
        const upTo = Math.min(TOTAL, next + 100);
        const records = [];
        for (let index = next; index < upTo; index++) {
          const event = testEvent(index);
          records.push({ output: 'events', key: event.account, value: index === 500 ? { ...event, amount_minor: 'twelve' } : event, headers: { [LIFELINE_HEADERS.idempotencyKey]: event.id } });
        }
        next = upTo;
        return { records, cursor: { next: upTo } };
      },
      async acknowledge(batch) { if (batch.cursor !== undefined) acknowledged.push((batch.cursor as { next: number }).next); },
      async fail(_batch, _error, committed) { next = (committed as { next?: number } | undefined)?.next ?? 0; },
      async close() {},
    };
  },
});

test('a source commits records and cursor together; a restart resumes from the cursor; a record that does not encode is dead-lettered', { timeout: 120_000 }, async () => {
  const topology = await writeConnectorTopology({ kind: 'source', type: 'number_source', partitions: 2 });
  const registry = new ComponentRegistry([numberSource as unknown as ComponentDefinition]);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const start = async (): Promise<LifelineRuntime> => {
    const runtime = new LifelineRuntime({ topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0 });
    cleanups.push(() => runtime.stop());
    await runtime.start();
    return runtime;
  };
  let runtime = await start();
  const events = await new TopicCollector<TestEvent>(kafka, topology.topic, serde).start();
  cleanups.push(() => events.stop());
  // The first run stops mid-stream, at a cursor it has committed (acknowledged means committed).
  while (!acknowledged.includes(releasedUpTo)) await sleep(20);
  await runtime.stop();
  releasedUpTo = TOTAL;
  runtime = await start();
  await events.waitForCount(TOTAL - 1, 60_000);
  const deadLetters = await new TopicCollector<Buffer>(kafka, deadLetterTopic(topology.label)).start();
  cleanups.push(() => deadLetters.stop());
  await deadLetters.waitForCount(1, 30_000);
  // Sentinels instead of a sleep: once one has arrived on every partition, a record sent twice would have too.
  sentinels = keyPerPartition('sentinel', 2).map((account, index) => ({ ...testEvent(TOTAL + index), id: `sentinel-${index}`, account }));
  await events.waitUntil((records) => records.filter(({ value }) => value.id.startsWith('sentinel-')).length === 2, 'a sentinel on each partition', 30_000);
  await runtime.stop();

  const ids = events.records.map(({ value }) => value.id).filter((id) => !id.startsWith('sentinel-'));
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  assert.equal(ids.length, TOTAL - 1);
  assert.deepEqual(connectedAt, [0, 300], 'the second run resumed from the cursor the first committed');
  assert.ok(acknowledged.every((cursor, index) => index === 0 || cursor > (acknowledged[index - 1] as number)), `cursors only move forward: ${acknowledged.join(', ')}`);
  const header = events.records[0]?.headers ?? {};
  for (const name of Object.values(LIFELINE_HEADERS)) assert.ok(header[name], `header ${name}`);
  const letter = deadLetters.records[0];
  assert.equal(letter?.headers[DEAD_LETTER_HEADERS.errorClass], 'LL_SERIALIZE_INVALID');
  assert.equal(JSON.parse(String(letter?.value)).id, 'evt-500', 'the raw record is kept');
  assert.equal(deadLetters.records.length, 1);
});

const written = new Map<string, number>();
let targetDown = false;
let writeAttempts = 0;

/** Writes to a map; fails retriably while `targetDown`, permanently for account ACC-3. */
const mapSink = defineSink({
  kind: 'sink', type: 'map_sink', description: 'test sink', stateful: false, outputs: ['results'],
  config: Type.Object({}, { additionalProperties: false }),
  create: () => {
    let forward: (output: string, record: { key: string; value: unknown }) => void;
    return {
      async connect(context) { forward = (output, record) => context.forward(output, record); },
      async write(records: readonly InputRecord[]) {
        writeAttempts++;
        if (targetDown) throw new LifelineError('LL_KAFKA_UNAVAILABLE', 'target down');
        const failed = [];
        for (const record of records) {
          const event = record.value as TestEvent;
          if (event.account === 'ACC-3') {
            failed.push({ record, error: new Error(`ValidationError: patient ${event.patient_mrn} unknown`) });
            continue;
          }
          written.set(event.id, (written.get(event.id) ?? 0) + 1);
          forward('results', { key: event.id, value: { ...event, amount_minor: 0 } });
        }
        return { failed };
      },
      async close() {},
    };
  },
});

test('a sink retries while its target is down (no dead letters, lag), dead-letters permanent failures, forwards results', { timeout: 120_000 }, async () => {
  const topology = await writeConnectorTopology({ kind: 'sink', type: 'map_sink', partitions: 2 });
  const registry = new ComponentRegistry([mapSink as unknown as ComponentDefinition]);
  const input = await testEventTopic(topology.topic, 2);
  cleanups.push(() => input.close());
  const { kafka, serde } = input;
  const events = Array.from({ length: 300 }, (_, index) => testEvent(index, 10));
  targetDown = true;
  await input.send(events);

  const runtime = new LifelineRuntime({ topology: loadTopology(topology.file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  while (writeAttempts < 2) await sleep(50);
  assert.equal(runtime.health().ready, false, 'not ready while the target is down');
  assert.equal(written.size, 0);
  targetDown = false;
  const results = await new TopicCollector<TestEvent>(kafka, topology.resultsTopic, serde).start();
  cleanups.push(() => results.stop());
  const refused = events.filter((event) => event.account === 'ACC-3');
  await results.waitForCount(events.length - refused.length, 60_000);
  const deadLetters = await new TopicCollector<Buffer>(kafka, deadLetterTopic(topology.label)).start();
  cleanups.push(() => deadLetters.stop());
  await deadLetters.waitForCount(refused.length, 30_000);
  // Sentinels instead of a sleep: one more event on each input partition, after the scenario. Once
  // both are written, every earlier record of their partitions has been written or dead-lettered.
  const sentinels = keyPerPartition('SENTINEL', 2).map((account, index) => ({ ...testEvent(TOTAL + index), id: `sentinel-${index}`, account }));
  await input.send(sentinels);
  await results.waitUntil((records) => sentinels.every((sentinel) => records.some((record) => record.value.id === sentinel.id)), 'a sentinel result from each partition', 30_000);
  const readyBy = Date.now() + 30_000;
  while (!runtime.health().ready && Date.now() < readyBy) await sleep(100);
  assert.equal(runtime.health().ready, true);
  await runtime.stop();

  const isSentinel = (id: string): boolean => id.startsWith('sentinel-');
  assert.equal([...written.keys()].filter((id) => !isSentinel(id)).length, events.length - refused.length);
  assert.ok([...written.values()].every((count) => count === 1), 'each written once');
  assert.equal(results.records.filter((record) => !isSentinel(record.value.id)).length, events.length - refused.length, 'one result each');
  // Counted at the broker, not by what the collector has read so far.
  const letterPartitions = await input.admin.fetchTopicOffsets(deadLetterTopic(topology.label));
  const lettersAtBroker = (await committedBacklog(kafka, letterPartitions.map(({ partition }) => ({ topic: deadLetterTopic(topology.label), partition, from: null }))))
    .reduce((sum, entry) => sum + entry.records, 0n);
  assert.equal(lettersAtBroker, BigInt(refused.length), 'only the permanent failures were dead-lettered');
  assert.equal(deadLetters.records.length, refused.length);
  for (const letter of deadLetters.records) assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', /^ValidationError: patient \[PHI\] unknown$/);
  const metrics = await runtime.metrics.metricsText();
  assert.match(metrics, /lifeline_retries_total\{component="[a-z0-9_]+",operation="write"\} [1-9]/);
});
