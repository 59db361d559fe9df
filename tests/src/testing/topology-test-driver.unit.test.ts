import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { countByKey } from '../../../processors/count-by-key.ts';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { defineProcessor, defineSink, defineSource, type ComponentDefinition, type InputRecord, type SinkContext } from '../../../src/component/component.ts';
import { LifelineError } from '../../../src/errors.ts';
import { ProcessingHaltedError } from '../../../src/runtime/processor-task.ts';
import { TopologyTestDriver } from '../../../src/testing/topology-test-driver.ts';
import { VALID_TOPOLOGY, topologyFixtureDir, writeFixture } from '../../../testing/topology-fixtures.ts';

// The topology test driver itself: a whole topology from its file, processors chained through
// topics, the Avro round trip at both ends, each record atomic, the error policies, the clock.

const dir = topologyFixtureDir();
after(() => rmSync(dir, { recursive: true, force: true }));
const CHARGES = 'lab.charge.received.v1';
const COUNTS = 'lab.charge_count.updated.v1';

interface Charge { id: string; account: string; patient_mrn: string; amount_minor: number; currency: string }
const charge = (index: number, account = `ACC-${index % 3}`): { key: string; value: Charge } => ({
  key: account, value: { id: `c-${index}`, account, patient_mrn: `MRN-${index}`, amount_minor: 100 + index, currency: 'USD' },
});

/** Counts charges per account, then counts each account's count updates (a second processor on the first's output). */
function chainedTopology(): string {
  const extraTopic = ['  lab.count_update.counted.v1:', '    key: account', '    value_schema: schemas/count.avsc', '    partitions: 3', '    compact: true', '    owner: revenue-cycle', '    classification: internal'].join('\n');
  const secondProcessor = ['  count_updates:', '    type: count_by_key', `    inputs: [${COUNTS}]`, '    outputs:', '      counts: lab.count_update.counted.v1', ''].join('\n');
  return writeFixture(dir, 'chained.yaml', VALID_TOPOLOGY.replace('processors:\n', `${extraTopic}\nprocessors:\n`) + secondProcessor);
}

const registry = (...extra: ComponentDefinition[]): ComponentRegistry => new ComponentRegistry([countByKey as unknown as ComponentDefinition, ...extra]);

test('a topology runs from its file: records reach every processor downstream, through the Avro types of each topic', async () => {
  const driver = await TopologyTestDriver.fromFile(chainedTopology(), registry(), { env: {} });
  await driver.input<Charge>(CHARGES).pipeAll(Array.from({ length: 7 }, (_, index) => charge(index)));
  const counts = driver.output<{ key: string; count: number }>(COUNTS).readValues();
  assert.deepEqual(counts.map((value) => `${value.key}=${value.count}`), ['ACC-0=1', 'ACC-1=1', 'ACC-2=1', 'ACC-0=2', 'ACC-1=2', 'ACC-2=2', 'ACC-0=3']);
  assert.deepEqual(counts[0], { key: 'ACC-0', count: 1 }, 'decoded with the output schema: fields it lacks are gone');
  assert.equal(driver.store('counter', 'counts').get('ACC-0'), 3);
  const updates = driver.output<{ key: string; count: number }>('lab.count_update.counted.v1').readValues();
  assert.deepEqual(updates.filter((value) => value.key === 'ACC-0').map((value) => value.count), [1, 2, 3], 'the second processor read the first one\'s output');
  assert.match(await driver.metricsText(), /lifeline_records_in_total\{component="counter",topic="lab\.charge\.received\.v1"\} 7/);
  await driver.close();
});

test('a run is deterministic: the same input gives the same records, offsets, partitions and timestamps', async () => {
  const run = async () => {
    const driver = await TopologyTestDriver.fromFile(chainedTopology(), registry(), { env: {} });
    await driver.input<Charge>(CHARGES).pipeAll(Array.from({ length: 20 }, (_, index) => charge(index, `ACC-${index % 5}`)));
    await driver.advanceWallClockTime(1000);
    const records = driver.output('lab.count_update.counted.v1').allRecords();
    await driver.close();
    return records;
  };
  const [first, second] = [await run(), await run()];
  assert.equal(first.length, 20);
  assert.deepEqual(first, second);
  assert.ok(new Set(first.map((record) => record.partition)).size > 1, 'keys spread over partitions as Kafka\'s partitioner spreads them');
});

/** Stores the charge, then forwards it: its value must fit the counts schema or the whole record fails. */
const keeper = defineProcessor({
  kind: 'processor', type: 'keeper', description: 'test', stateful: true, outputs: ['counts'],
  config: Type.Object({ valid: Type.Boolean({ default: true }) }),
  stores: () => [{ name: 'kept' }],
  create: (config) => ({
    process(record, context) {
      const value = record.value as Charge;
      if (value.amount_minor < 0) throw new Error(`negative amount for ${value.patient_mrn}`);
      context.store('kept').put(value.id, value.amount_minor);
      context.forward('counts', { key: record.key, value: config.valid ? { key: value.account, count: value.amount_minor } : { key: value.account } });
    },
  }),
});

function keeperTopology(onError: string, valid = true): string {
  return writeFixture(dir, `keeper-${onError}-${valid}.yaml`, VALID_TOPOLOGY.replace(
    /processors:[\s\S]*$/, `processors:\n  keeper:\n    type: keeper\n    inputs: [${CHARGES}]\n    outputs: { counts: ${COUNTS} }\n    on_error: ${onError}\n    config: { valid: ${valid} }\n`));
}

test('each record is atomic: an output its schema refuses dead-letters the record and drops its store writes', async () => {
  const driver = await TopologyTestDriver.fromFile(keeperTopology('dlq', false), registry(keeper as unknown as ComponentDefinition), { env: {} });
  await driver.input<Charge>(CHARGES).pipe(charge(1));
  const [letter] = driver.deadLetters('keeper');
  assert.equal(letter?.errorClass, 'LL_SERIALIZE_INVALID');
  assert.match(letter?.errorMessage ?? '', /value for lab\.charge_count\.updated\.v1 does not match schema lifeline\.test\.KeyCount: count: expected long/);
  assert.equal(driver.store('keeper', 'kept').size, 0);
  assert.equal(driver.output(COUNTS).queueSize, 0);
  await driver.close();
});

test('on_error: dlq keeps the raw record and scrubs PHI from the message; continue skips; fail halts', async () => {
  const bad = { key: 'ACC-9', value: { ...charge(9).value, amount_minor: -5 } };
  const dlq = await TopologyTestDriver.fromFile(keeperTopology('dlq'), registry(keeper as unknown as ComponentDefinition), { env: {} });
  await dlq.input<Charge>(CHARGES).pipeAll([bad, charge(2)]);
  const [letter, ...more] = dlq.deadLetters();
  assert.equal(more.length, 0);
  assert.equal(letter?.errorMessage, 'negative amount for [PHI]', 'the MRN (phi in the schema) is masked');
  assert.deepEqual(letter?.value, bad.value);
  assert.equal(dlq.output(COUNTS).readValues().length, 1, 'the next record is not held up');

  const skip = await TopologyTestDriver.fromFile(keeperTopology('continue'), registry(keeper as unknown as ComponentDefinition), { env: {} });
  await skip.input<Charge>(CHARGES).pipeAll([bad, charge(2)]);
  assert.deepEqual([skip.deadLetters().length, skip.output(COUNTS).readValues().length], [0, 1]);

  const halt = await TopologyTestDriver.fromFile(keeperTopology('fail'), registry(keeper as unknown as ComponentDefinition), { env: {} });
  await assert.rejects(halt.input<Charge>(CHARGES).pipe(bad), (error: unknown) => error instanceof ProcessingHaltedError && /on_error is fail/.test(error.message));
  await Promise.all([dlq.close(), skip.close(), halt.close()]);
});

test('a value its topic schema refuses is refused at the pipe, naming the field', async () => {
  const driver = await TopologyTestDriver.fromFile(keeperTopology('dlq'), registry(keeper as unknown as ComponentDefinition), { env: {} });
  await assert.rejects(driver.input(CHARGES).pipe({ key: 'x', value: { id: 'c-1', account: 'A' } }), /LL_SERIALIZE_INVALID|value for lab\.charge\.received\.v1 does not match schema lifeline\.test\.LabCharge: patient_mrn: expected string/);
  assert.throws(() => driver.input('no.such.topic.v1'), /the driver has no topic no\.such\.topic\.v1; known: /);
  await driver.close();
});

test('timers fire in due order on the driver clock, each with its own due time; the clock moves only when told', async () => {
  const calls: string[] = [];
  const ticker = defineProcessor({
    kind: 'processor', type: 'ticker', description: 'test', stateful: false, outputs: ['counts'], config: Type.Object({}),
    create: () => ({
      init(context) {
        context.schedule(1000, (now) => { calls.push(`a@${now - context.now() === 0 ? 'now' : 'wrong'}:${now}`); });
        context.schedule(1500, (now) => { calls.push(`b:${now}`); context.forward('counts', { key: 'tick', value: { key: 'tick', count: now } }); });
      },
      process() {},
    }),
  });
  const start = Date.parse('2026-03-01T00:00:00Z');
  const driver = await TopologyTestDriver.forProcessor(ticker, {
    topics: { [CHARGES]: { schema: join(dir, 'schemas/charge.avsc') }, [COUNTS]: { schema: join(dir, 'schemas/count.avsc') } },
    inputs: [CHARGES], outputs: { counts: COUNTS }, startTime: start,
  });
  assert.equal(driver.now(), start);
  await driver.advanceWallClockTime(999);
  assert.equal(calls.length, 0);
  await driver.advanceWallClockTime(2001);
  assert.deepEqual(calls.map((call) => call.replace(/\d{13}/, (ms: string) => String(Number(ms) - start))), ['a@now:1000', 'b:1500', 'a@now:2000', 'a@now:3000', 'b:3000']);
  assert.deepEqual(driver.output<{ count: number }>(COUNTS).readRecords().map((record) => [record.value.count - start, record.timestamp - start]), [[1500, 1500], [3000, 3000]]);
  assert.equal(driver.now(), start + 3000);
  await driver.close();
});


test('a source is turned by the test: batches land in their topics, the cursor survives a restart, a record its schema refuses is dead-lettered', async () => {
  const connected: unknown[] = [];
  const counter = defineSource({
    kind: 'source', type: 'counter_source', description: 'test', stateful: false, outputs: ['records'], config: Type.Object({}),
    create: () => {
      let next = 0;
      return {
        async connect(context) { next = (context.cursor as { next?: number } | undefined)?.next ?? 0; connected.push(context.cursor); },
        async produce() {
          const records = [0, 1].map((offset) => {
            const index = next + offset;
            return { output: 'records', key: `ACC-${index}`, value: index === 3 ? { id: 'bad' } : charge(index, `ACC-${index}`).value };
          });
          next += 2;
          return { records, cursor: { next } };
        },
        async acknowledge() {},
        async fail() {},
        async close() {},
      };
    },
  });
  const driver = await TopologyTestDriver.forComponent(counter as unknown as ComponentDefinition, {
    topics: { [CHARGES]: { schema: join(dir, 'schemas/charge.avsc'), partitions: 3 } }, outputs: { records: CHARGES },
  });
  assert.equal(await driver.pollSource('counter_source'), 2);
  await driver.restartSource('counter_source');
  await driver.pollSource('counter_source');
  assert.deepEqual(connected, [undefined, { next: 2 }]);
  assert.deepEqual(driver.sourceCursor('counter_source'), { next: 4 });
  const records = driver.output<Charge>(CHARGES).readRecords();
  assert.deepEqual(records.map((record) => record.value.id), ['c-0', 'c-1', 'c-2']);
  assert.equal(records[0]?.headers['lifeline.source'], 'counter_source');
  assert.equal(records[0]?.headers['lifeline.correlation-id'], 'counter_source-000000000000', 'numbered, not random: runs repeat');
  const [letter] = driver.deadLetters('counter_source');
  assert.equal(letter?.errorClass, 'LL_SERIALIZE_INVALID');
  assert.equal(JSON.parse(String(letter?.rawValue)).id, 'bad', 'kept as JSON');
  await driver.close();
});

test('a sink is turned by the test: it is offered what its inputs hold, permanent failures are dead-lettered, a retriable failure offers the batch again', async () => {
  let down = true;
  const written: string[] = [];
  const recorder = defineSink({
    kind: 'sink', type: 'recorder_sink', description: 'test', stateful: false, outputs: ['results'], config: Type.Object({}),
    create: () => {
      let context: SinkContext;
      return {
        async connect(sinkContext) { context = sinkContext; },
        async write(records: readonly InputRecord[]) {
          if (down) {
            context.setHealth('down', 'target unreachable');
            throw new LifelineError('LL_KAFKA_UNAVAILABLE', 'target down');
          }
          context.setHealth('up');
          const failed = [];
          for (const record of records) {
            const value = record.value as Charge;
            if (value.amount_minor > 104) failed.push({ record, error: new Error(`rejected charge of ${value.patient_mrn}`) });
            else {
              written.push(value.id);
              context.forward('results', { key: value.account, value: { key: value.id, count: value.amount_minor } });
            }
          }
          return { failed };
        },
        async close() {},
      };
    },
  });
  const driver = await TopologyTestDriver.forComponent(recorder as unknown as ComponentDefinition, {
    topics: { [CHARGES]: { schema: join(dir, 'schemas/charge.avsc'), partitions: 3 }, [COUNTS]: { schema: join(dir, 'schemas/count.avsc') } },
    inputs: [CHARGES], outputs: { results: COUNTS },
  });
  await driver.input<Charge>(CHARGES).pipeAll(Array.from({ length: 6 }, (_, index) => charge(index)));
  await assert.rejects(driver.runSink('recorder_sink'), /target down/);
  assert.deepEqual(driver.connectorHealth('recorder_sink'), { state: 'down', detail: 'target unreachable' });
  down = false;
  assert.equal(await driver.runSink('recorder_sink'), 6, 'the same records again');
  assert.equal(await driver.runSink('recorder_sink'), 0, 'nothing new');
  assert.deepEqual(written.sort(), ['c-0', 'c-1', 'c-2', 'c-3', 'c-4']);
  assert.equal(driver.output(COUNTS).readValues().length, 5);
  const [letter, ...more] = driver.deadLetters('recorder_sink');
  assert.equal(more.length, 0);
  assert.equal(letter?.errorMessage, 'rejected charge of [PHI]');
  assert.equal((letter?.value as Charge).id, 'c-5');
  await driver.close();
});
