import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import { DiagnosticSeverity, Parser } from '@asyncapi/parser';
import { parse as parseYaml } from 'yaml';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { asyncApiDocument } from '../../src/ops/asyncapi-document.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { repositoryTopologySecrets } from '../../testing/golden-path-fixture.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../testing/cli-runner.ts';
import { KEY_COUNT_SCHEMA, TEST_EVENT_SCHEMA, registeredSerde, testEvent } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The official AsyncAPI parser, with its Avro schema parser so payloads are validated as Avro. */
async function validateAsyncApi(text: string): Promise<{ errors: string[]; addresses: string[] }> {
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  const { document, diagnostics } = await parser.parse(text);
  const errors = diagnostics.filter((diagnostic) => diagnostic.severity === DiagnosticSeverity.Error).map((diagnostic) => `${diagnostic.path.join('.')}: ${diagnostic.message}`);
  return { errors, addresses: document ? document.channels().all().map((channel) => channel.address() ?? '').sort() : [] };
}

test('catalog asyncapi writes an AsyncAPI 3.0 document of topology.yaml that the official parser validates, Avro payloads included', { timeout: 120_000 }, async () => {
  const secrets = repositoryTopologySecrets();
  const result = await runLifeline(['catalog', 'asyncapi', '--topology', 'topology.yaml'], { env: secrets });
  assert.equal(result.code, 0, result.stderr);
  Object.assign(process.env, secrets);
  const topology = loadTopology('topology.yaml', buildComponentRegistry());
  for (const name of Object.keys(secrets)) delete process.env[name];
  const validation = await validateAsyncApi(result.stdout);
  assert.deepEqual(validation.errors, []);
  assert.deepEqual(validation.addresses, Object.keys(topology.topics).sort());
  const document = parseYaml(result.stdout) as { asyncapi: string; channels: Record<string, Record<string, unknown>>; components: { messages: Record<string, { payload: { schemaFormat: string } }> } };
  assert.equal(document.asyncapi, '3.0.0');
  const phiTopic = Object.values(topology.topics).find((topic) => topic.contract.phiPaths.length > 0);
  if (phiTopic) assert.deepEqual(document.channels[phiTopic.name]?.['x-lifeline-phi-fields'], [...phiTopic.contract.phiPaths]);
  for (const message of Object.values(document.components.messages)) assert.match(message.payload.schemaFormat, /^application\/vnd\.apache\.avro\+json/);

  // The validation has teeth: a payload that is not Avro, or a channel reference to nowhere, fails it.
  const broken = asyncApiDocument(topology) as { components: { messages: Record<string, { payload: { schema: unknown } }> }; operations: Record<string, { channel: { $ref: string } }> };
  const firstMessage = Object.values(broken.components.messages)[0];
  if (firstMessage) firstMessage.payload.schema = { type: 'record', name: 'Broken', fields: [{ name: 'x', type: 'no-such-type' }] };
  assert.ok((await validateAsyncApi(JSON.stringify(broken))).errors.length > 0, 'an invalid Avro payload is reported');
  const dangling = asyncApiDocument(topology) as { operations: Record<string, { channel: { $ref: string } }> };
  const firstOperation = Object.values(dangling.operations)[0];
  if (firstOperation) firstOperation.channel.$ref = '#/channels/nowhere';
  assert.ok((await validateAsyncApi(JSON.stringify(dangling))).errors.length > 0, 'a dangling reference is reported');
});

test('topics list|describe show the catalogue with message counts; schemas check|register compare with the registry; groups describe shows lag', { timeout: 300_000 }, async () => {
  const topic = uniqueTopic('test', 'event', 'received');
  const counts = topic.replace('.received.v1', '.counted.v1');
  const counter = uniqueLabel('event_counter');
  const { file, appId, dir } = await writeTestTopology({
    topics: {
      [topic]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [counts]: { schema: KEY_COUNT_SCHEMA, partitions: 2, key: 'account' },
    },
    processors: { [counter]: { type: 'count_by_key', inputs: [topic], outputs: { counts } } },
  });
  const topology = ['--topology', file];
  const operators = writeTestOperators();

  const unregistered = JSON.parse((await runLifeline(['schemas', 'check', '--json', ...topology])).stdout) as Array<{ subject: string; status: string }>;
  assert.deepEqual(unregistered.map((check) => check.status), ['unregistered', 'unregistered']);
  assert.equal((await runLifeline(['schemas', 'register', ...topology], { env: operators.as('viola') })).code, 3);
  const registered = await runLifeline(['schemas', 'register', ...topology], { env: operators.as('otto') });
  assert.equal(registered.code, 0, registered.stderr);
  const identical = JSON.parse((await runLifeline(['schemas', 'check', '--json', ...topology])).stdout) as Array<{ status: string }>;
  assert.deepEqual(identical.map((check) => check.status), ['identical', 'identical']);

  // A schema change that breaks BACKWARD compatibility is caught before anything is registered.
  const changed = JSON.parse(readFileSync(TEST_EVENT_SCHEMA, 'utf8')) as { fields: unknown[] };
  changed.fields.push({ name: 'payer_id', type: 'string' });
  const changedSchema = join(dir, 'test_event_v2.avsc');
  writeFileSync(changedSchema, JSON.stringify(changed));
  const changedTopology = join(dir, 'topology-v2.yaml');
  writeFileSync(changedTopology, readFileSync(file, 'utf8').replace(TEST_EVENT_SCHEMA, changedSchema));
  const incompatible = await runLifeline(['schemas', 'check', '--topology', changedTopology]);
  assert.equal(incompatible.code, 1);
  assert.match(incompatible.stdout, /INCOMPATIBLE/);
  assert.match(incompatible.stdout, /field lifeline\.test\.TestEvent\.payer_id was added without a default/);

  // Message counts and lag.
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: topic, partitions: 2 }]);
  const serde = await registeredSerde();
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await producer.send({ topic, acks: -1, messages: await Promise.all(Array.from({ length: 25 }, async (_, index) => ({ key: `ACC-${index % 5}`, value: await serde.encode(topic, testEvent(index)) }))) });
  const listed = JSON.parse((await runLifeline(['topics', 'list', '--json', ...topology])).stdout) as Array<{ name: string; messages: string | null; exists: boolean; owner: string; classification: string; phiFields: string[] }>;
  const entry = listed.find((candidate) => candidate.name === topic);
  assert.deepEqual([entry?.messages, entry?.owner, entry?.classification, entry?.phiFields], ['25', 'tests', 'phi', ['patient_mrn']]);
  assert.equal(listed.find((candidate) => candidate.name === counts)?.exists, false);
  const described = await runLifeline(['topics', 'describe', topic, ...topology]);
  assert.match(described.stdout, /read by\s+event_counter_/);
  assert.match(described.stdout, /messages\s+25/);

  const group = `${appId}.${counter}`;
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.setOffsets({ groupId: group, topic, partitions: ends.map((end) => ({ partition: end.partition, offset: String(Math.max(0, Number(end.high) - 2)) })) });
  const groupJson = JSON.parse((await runLifeline(['groups', 'describe', group, '--json', ...topology])).stdout) as { state: string; component: string; totalLag: string; partitions: Array<{ lag: string }> };
  assert.equal(groupJson.component, counter);
  assert.equal(groupJson.totalLag, String(ends.filter((end) => Number(end.high) >= 2).length * 2));
  const groups = JSON.parse((await runLifeline(['groups', 'list', '--json', ...topology])).stdout) as Array<{ group: string }>;
  assert.ok(groups.some((candidate) => candidate.group === group));
});
