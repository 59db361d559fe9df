import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { defineProcessor, type ComponentDefinition } from '../../../src/component/component.ts';
import { DEAD_LETTER_HEADERS } from '../../../src/runtime/dead-letter.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { TopicCollector, testEvent, testEventTopic, writeCounterTopology, type TestEvent } from '../../../testing/runtime-fixture.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** count_by_key, except that it refuses accounts ending in 7, quoting the patient's MRN as careless code does. */
const pickyCounter = defineProcessor({
  kind: 'processor', type: 'count_by_key', description: 'test double', stateful: true, outputs: ['counts'],
  config: Type.Object({ key_field: Type.Optional(Type.String()) }, { additionalProperties: false }),
  stores: () => [{ name: 'counts' }],
  create: () => ({
    process(record, context) {
      const event = record.value as TestEvent;
      if (event.account.endsWith('7')) throw new Error(`cannot bill patient ${event.patient_mrn} on account ${event.account}`);
      const counts = context.store<number>('counts');
      const count = (counts.get(event.account) ?? 0) + 1;
      counts.put(event.account, count);
      context.forward('counts', { key: event.account, value: { key: event.account, count, origin_topic: record.topic, origin_partition: record.partition, origin_offset: Number(record.offset) } });
    },
  }),
});

test('poison pills and failing records are dead-lettered with raw bytes and error headers; processing goes on; no PHI reaches the logs', { timeout: 120_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 1 });
  const input = await testEventTopic(topology.input, 1);
  cleanups.push(() => input.close());
  const { kafka, serde } = input;

  const valid = Array.from({ length: 30 }, (_, index) => testEvent(index, 10));
  const randomBytes = Buffer.from([0x13, 0x37, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x42]);
  const unknownSchemaId = Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 0x02, 0x04]);
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const messages = [];
  for (const [index, event] of valid.entries()) {
    messages.push({ key: event.account, value: await serde.encode(topology.input, event) });
    if (index === 5) messages.push({ key: 'poison-random', value: randomBytes, headers: { 'lifeline.correlation-id': 'corr-random' } });
    if (index === 12) messages.push({ key: 'poison-unknown-schema', value: unknownSchemaId });
  }
  await producer.send({ topic: topology.input, messages });

  const testRegistry = new ComponentRegistry([pickyCounter as unknown as ComponentDefinition]);
  const logLines: string[] = [];
  const logSink = new Writable({ write(chunk: Buffer, _encoding, done) { logLines.push(...chunk.toString('utf8').split('\n').filter(Boolean)); done(); } });
  const runtime = new LifelineRuntime({
    topology: loadTopology(topology.file, testRegistry), registry: testRegistry,
    logger: createLogger({ level: 'debug', destination: logSink }), httpPort: 0, sessionTimeoutMs: 6000,
  });
  cleanups.push(() => runtime.stop());
  await runtime.start(); // creates the output and dead-letter topics
  const deadLetters = await new TopicCollector<Buffer>(kafka, deadLetterTopic(topology.label)).start();
  cleanups.push(() => deadLetters.stop());
  const outputs = await new TopicCollector(kafka, topology.output, serde).start();
  cleanups.push(() => outputs.stop());

  const refused = valid.filter((event) => event.account.endsWith('7'));
  await deadLetters.waitForCount(2 + refused.length, 60_000);
  await outputs.waitForCount(valid.length - refused.length, 60_000);

  const byKey = new Map(deadLetters.records.map((record) => [record.key, record]));
  const random = byKey.get('poison-random');
  assert.ok(random, 'random bytes dead-lettered');
  assert.deepEqual(random.value, randomBytes, 'raw value bytes kept');
  assert.equal(random.headers[DEAD_LETTER_HEADERS.errorClass], 'LL_DESERIALIZE_NOT_AVRO');
  assert.equal(random.headers[DEAD_LETTER_HEADERS.component], topology.label);
  assert.equal(random.headers[DEAD_LETTER_HEADERS.originTopic], topology.input);
  assert.equal(random.headers[DEAD_LETTER_HEADERS.originPartition], '0');
  assert.equal(random.headers[DEAD_LETTER_HEADERS.originOffset], '6');
  assert.equal(random.headers[DEAD_LETTER_HEADERS.attempts], '1');
  assert.equal(random.headers['lifeline.correlation-id'], 'corr-random', 'original headers kept');
  const unknown = byKey.get('poison-unknown-schema');
  assert.ok(unknown);
  assert.deepEqual(unknown.value, unknownSchemaId);
  assert.equal(unknown.headers[DEAD_LETTER_HEADERS.errorClass], 'LL_DESERIALIZE_UNKNOWN_SCHEMA');

  const failed = deadLetters.records.filter((record) => record.key?.startsWith('ACC-'));
  assert.equal(failed.length, refused.length);
  for (const letter of failed) {
    assert.equal(letter.headers[DEAD_LETTER_HEADERS.errorClass], 'Error');
    assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', /^cannot bill patient \[PHI\] on account ACC-7$/);
  }
  assert.equal(outputs.records.length, valid.length - refused.length, 'every good record was processed');

  const metrics = await runtime.metrics.metricsText();
  assert.match(metrics, /lifeline_records_dead_lettered_total\{component="event_counter_[0-9a-f]+",error_class="LL_DESERIALIZE_NOT_AVRO"\} 1/);

  // Privacy: no MRN of any record appears in any log line, at debug level.
  assert.ok(logLines.some((line) => line.includes('dead-lettered')), 'the failures were logged');
  for (const event of valid) {
    for (const line of logLines) assert.ok(!line.includes(event.patient_mrn), `log line leaks ${event.patient_mrn}: ${line}`);
  }
});
