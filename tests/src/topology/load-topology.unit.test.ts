import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { LifelineError } from '../../../src/errors.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { topologyProblemsOf } from '../../../src/topology/topology-problem.ts';
import { VALID_TOPOLOGY, testComponentRegistry, topologyFixtureDir, withLine, writeFixture } from '../../../testing/topology-fixtures.ts';

// Each test writes bad.yaml into a temp folder and loads it by that relative name, so problems
// read exactly as `lifeline topology validate` prints them when run next to the file.
let dir: string;
const startDir = process.cwd();
before(() => {
  dir = topologyFixtureDir();
  process.chdir(dir);
});
after(() => {
  process.chdir(startDir);
  rmSync(dir, { recursive: true, force: true });
});

/** Loads `text` as bad.yaml and returns the error message: every problem, one per line. */
function problemsIn(text: string, env: NodeJS.ProcessEnv = {}): string {
  writeFileSync('bad.yaml', text);
  try {
    loadTopology('bad.yaml', testComponentRegistry(), env);
  } catch (error) {
    assert.ok(error instanceof LifelineError, `expected a LifelineError, got ${String(error)}`);
    assert.equal(error.code, 'LL_TOPOLOGY_INVALID');
    return error.message;
  }
  return assert.fail('expected bad.yaml to be rejected');
}

test('the fixture itself is valid', () => {
  writeFileSync('good.yaml', VALID_TOPOLOGY);
  assert.doesNotThrow(() => loadTopology('good.yaml', testComponentRegistry(), {}));
});

test('YAML syntax errors are reported with their position', () => {
  assert.match(problemsIn(withLine(24, '    type: count_by_key: x')), /^bad\.yaml:24:11: invalid YAML: Nested mappings are not allowed/m);
  assert.match(problemsIn(withLine(24, '    type: count_by_key\n    type: test_sink')), /^bad\.yaml:25:5: invalid YAML: Map keys must be unique/m);
});

test('an unknown key is reported at the key, with the keys that are allowed', () => {
  assert.match(problemsIn(withLine(12, '    retention_ms: 7d')),
    /^bad\.yaml:12:5 topics\.lab\.charge\.received\.v1\.retention_ms: unknown key; expected one of: key, value_schema, partitions, retention, compact, /m);
});

test('an unknown key inside a component config is checked against the component schema', () => {
  assert.match(problemsIn(withLine(29, '      key_feild: account')),
    /^bad\.yaml:29:7 processors\.counter\.config\.key_feild: unknown key \(did you mean key_field\?\); expected one of: key_field, ttl$/m);
});

test('a config value that breaks its pattern names the expected form', () => {
  assert.match(problemsIn(withLine(29, '      ttl: 15 minutes')),
    /^bad\.yaml:29:12 processors\.counter\.config\.ttl: must match duration like 15m, 7d \(got "15 minutes"\)$/m);
});

test('a value outside an enum lists the allowed values', () => {
  assert.match(problemsIn(withLine(14, '    classification: secret')),
    /^bad\.yaml:14:21 topics\.lab\.charge\.received\.v1\.classification: must be one of: phi, personal, internal, public \(got "secret"\)$/m);
});

test('wrong types and partitions below 1 are reported at the value', () => {
  assert.match(problemsIn(withLine(11, '    partitions: three')), /^bad\.yaml:11:17 topics\.lab\.charge\.received\.v1\.partitions: must be a whole number \(got "three"\)$/m);
  assert.match(problemsIn(withLine(11, '    partitions: 0')), /^bad\.yaml:11:17 topics\.lab\.charge\.received\.v1\.partitions: must be at least 1 \(got 0\)$/m);
});

test('a missing key is reported at the mapping it is missing from', () => {
  assert.match(problemsIn(withLine(13, '    description: charges')), /^bad\.yaml:9:5 topics\.lab\.charge\.received\.v1\.owner: is required$/m);
});

test('an unknown component type lists the known types', () => {
  assert.match(problemsIn(withLine(24, '    type: count_by_keys')),
    /^bad\.yaml:24:11 processors\.counter\.type: unknown component type "count_by_keys"; known types: count_by_key, test_sink, test_source$/m);
});

test('a sink declared as a processor, or a processor as a connector, says where it belongs', () => {
  assert.match(problemsIn(withLine(24, '    type: test_sink')),
    /^bad\.yaml:24:11 processors\.counter\.type: test_sink is a sink, not a processor; declare it under connectors$/m);
  const processorAsConnector = `${VALID_TOPOLOGY}connectors:\n  recount:\n    type: count_by_key\n`;
  assert.match(problemsIn(processorAsConnector),
    /^bad\.yaml:32:11 connectors\.recount\.type: count_by_key is a processor, not a source or sink connector; declare it under processors$/m);
});

test('a topic that is read but not declared is reported at the reference', () => {
  assert.match(problemsIn(withLine(25, '    inputs: [lab.charge.recieved.v1]')),
    /^bad\.yaml:25:14 processors\.counter\.inputs\[0\]: topic lab\.charge\.recieved\.v1 is not declared under topics$/m);
});

test('an output the component does not have, and a required output left unmapped', () => {
  const message = problemsIn(withLine(27, '      totals: lab.charge_count.updated.v1'));
  assert.match(message, /^bad\.yaml:27:7 processors\.counter\.outputs\.totals: count_by_key has no output "totals"; its outputs are: counts$/m);
  assert.match(message, /^bad\.yaml:27:7 processors\.counter\.outputs\.counts: is required: count_by_key forwards records to its "counts" output/m);
});

test('a value schema that is missing or does not compile is reported at value_schema', () => {
  assert.match(problemsIn(withLine(10, '    value_schema: schemas/nope.avsc')),
    /^bad\.yaml:10:19 topics\.lab\.charge\.received\.v1\.value_schema: schema file schemas\/nope\.avsc cannot be read: ENOENT/m);
  writeFixture(dir, 'schemas/broken.avsc', JSON.stringify({ type: 'record', name: 'Broken', fields: [{ name: 'x', type: 'strin' }] }));
  assert.match(problemsIn(withLine(10, '    value_schema: schemas/broken.avsc')),
    /^bad\.yaml:10:19 topics\.lab\.charge\.received\.v1\.value_schema: schemas\/broken\.avsc: not a valid Avro schema: undefined type name: strin$/m);
});

test('topic names must follow <domain>.<entity>.<event>.v<major>', () => {
  const message = problemsIn(withLine(15, '  lab.charge-counts:', withLine(27, '      counts: lab.charge-counts')));
  assert.match(message, /^bad\.yaml:15:3 topics\.lab\.charge-counts: topic names must look like <domain>\.<entity>\.<event>\.v<major>/m);
});

test('a topic written by two components needs shared_writers: true', () => {
  const twoWriters = `${VALID_TOPOLOGY}  recounter:\n    type: count_by_key\n    inputs: [lab.charge.received.v1]\n    outputs: { counts: lab.charge_count.updated.v1 }\n`;
  assert.match(problemsIn(twoWriters),
    /^bad\.yaml:33:24 processors\.recounter\.outputs\.counts: topic lab\.charge_count\.updated\.v1 is already written by counter \(bad\.yaml:27:15\); .*shared_writers: true/m);
  writeFileSync('shared.yaml', withLine(21, '    classification: internal\n    shared_writers: true', twoWriters));
  assert.doesNotThrow(() => loadTopology('shared.yaml', testComponentRegistry(), {}));
});

test('a stateful processor whose inputs differ in partition count is not co-partitioned', () => {
  const text = withLine(25, '    inputs: [lab.charge.received.v1, lab.charge_count.updated.v1]', withLine(18, '    partitions: 6'));
  assert.match(problemsIn(text),
    /^bad\.yaml:25:13 processors\.counter\.inputs: count_by_key keeps per-key state, so its inputs must be co-partitioned \(same partition count\): lab\.charge\.received\.v1 has 3, lab\.charge_count\.updated\.v1 has 6$/m);
});

test('a missing environment variable or unreadable secret file is reported at the value', () => {
  assert.match(problemsIn(withLine(4, '    brokers: ["${NOPE_BROKERS}"]')),
    /^bad\.yaml:4:15 connections\.kafka\.brokers\[0\]: environment variable NOPE_BROKERS is not set/m);
  assert.match(problemsIn(withLine(6, '    url: http://127.0.0.1:8081/apis/ccompat/v7\n    password: "${file:secrets/none.txt}"')),
    /^bad\.yaml:7:15 connections\.registry\.password: cannot read file secrets\/none\.txt named by \$\{file:…\}: ENOENT/m);
});

test('a secret given as a literal value is refused, wherever its key is', () => {
  const literalSasl = withLine(4, '    brokers: ["127.0.0.1:9092"]\n    sasl: { mechanism: plain, username: lifeline, password: hunter2 }');
  assert.match(problemsIn(literalSasl), /^bad\.yaml:5:61 connections\.kafka\.sasl\.password: secrets must be \$\{ENV\} or \$\{file:…\} references, not literal values$/m);
  const literalInConfig = `${VALID_TOPOLOGY}connectors:\n  archive:\n    type: test_sink\n    inputs: [lab.charge_count.updated.v1]\n    config: { api_key: "${'${KEY:-abc123}'}" }\n`;
  assert.match(problemsIn(literalInConfig, { KEY: 'set' }), /^bad\.yaml:34:24 connectors\.archive\.config\.api_key: secrets must be .*a default would be a literal secret/m);
});

test('retention and compact together are refused', () => {
  assert.match(problemsIn(withLine(12, '    retention: 7d\n    compact: true')),
    /^bad\.yaml:13:14 topics\.lab\.charge\.received\.v1\.compact: compact and retention cannot both be set/m);
});

test('labels must be snake case and unique across processors and connectors', () => {
  assert.match(problemsIn(withLine(23, '  Counter:')), /^bad\.yaml:23:3 processors\.Counter: labels must match \^\[a-z\]\[a-z0-9_\]\*\$/m);
  const duplicate = `${VALID_TOPOLOGY}connectors:\n  counter:\n    type: test_sink\n    inputs: [lab.charge_count.updated.v1]\n`;
  assert.match(problemsIn(duplicate), /^bad\.yaml:31:3 connectors\.counter: label counter is already used by processors\.counter/m);
});

test('a source takes no inputs and must map its required outputs', () => {
  const source = `${VALID_TOPOLOGY}connectors:\n  intake:\n    type: test_source\n    inputs: [lab.charge.received.v1]\n    outputs: { rejected: lab.charge.received.v1 }\n`;
  const message = problemsIn(source);
  assert.match(message, /^bad\.yaml:33:13 connectors\.intake\.inputs: test_source is a source: it reads from outside Kafka and takes no inputs$/m);
  assert.match(message, /^bad\.yaml:34:14 connectors\.intake\.outputs\.records: is required/m);
});

test('dead-letter topics need no declaration but must belong to a component, and components do not write them', () => {
  const reader = `${VALID_TOPOLOGY}connectors:\n  dead_letter_archive:\n    type: test_sink\n    inputs: [ops.dlq.counter.v1, ops.dlq.ghost.v1]\n`;
  const message = problemsIn(reader);
  assert.match(message, /^bad\.yaml:33:34 connectors\.dead_letter_archive\.inputs\[1\]: ops\.dlq\.ghost\.v1 is the dead-letter topic of ghost, which is not declared$/m);
  assert.doesNotMatch(message, /ops\.dlq\.counter\.v1/);
  assert.match(problemsIn(withLine(27, '      counts: ops.dlq.counter.v1')), /^bad\.yaml:27:15 processors\.counter\.outputs\.counts: ops\.dlq\.counter\.v1 is a dead-letter topic/m);
});

test('every problem is collected, in file order, with structured details', () => {
  const text = withLine(29, '      ttl: soon', withLine(14, '    classification: secret', withLine(4, '    brokers: ["${NOPE_BROKERS}"]')));
  writeFileSync('bad.yaml', text);
  let caught: unknown;
  try {
    loadTopology('bad.yaml', testComponentRegistry(), {});
  } catch (error) {
    caught = error;
  }
  const problems = topologyProblemsOf(caught);
  assert.deepEqual(problems?.map((problem) => `${problem.line}:${problem.column} ${problem.path}`), [
    '4:15 connections.kafka.brokers[0]',
    '14:21 topics.lab.charge.received.v1.classification',
    '29:12 processors.counter.config.ttl',
  ]);
  assert.deepEqual(Object.keys(problems?.[0] ?? {}).sort(), ['column', 'file', 'line', 'message', 'path']);
  assert.equal(problems?.[0]?.file, 'bad.yaml');
  assert.equal((caught as Error).message.split('\n').length, 3);
});

test('a file that is not a mapping, or cannot be read, is one problem at 1:1', () => {
  assert.match(problemsIn('- just\n- a list\n'), /^bad\.yaml:1:1: the file must be a mapping/m);
  assert.throws(() => loadTopology('absent.yaml', testComponentRegistry(), {}),
    { code: 'LL_TOPOLOGY_INVALID', message: /^absent\.yaml:1:1: cannot read the topology file: ENOENT/ });
});

test('a valid file loads with every default applied, paths resolved, and the result frozen', () => {
  const withSink = `${VALID_TOPOLOGY}connectors:\n  archive:\n    type: test_sink\n    inputs: [lab.charge_count.updated.v1]\n`;
  writeFileSync('good.yaml', withSink);
  const topology = loadTopology('good.yaml', testComponentRegistry(), {});

  assert.equal(topology.file, join(dir, 'good.yaml'));
  assert.deepEqual(topology.kafka, { brokers: ['127.0.0.1:9092'], clientId: 'lifeline' });
  assert.deepEqual(topology.runtime, {
    appId: 'lifeline', httpPort: 9464, stateDir: join(dir, '.lifeline/state'), storeKind: 'lmdb',
    commitMaxRecords: 5000, transactions: 'per_process', commitIntervalMs: 1000, restoreTimeoutMs: 600_000, logLevel: 'info',
  });
  const charges = topology.topics['lab.charge.received.v1'];
  assert.equal(charges?.valueSchemaFile, join(dir, 'schemas/charge.avsc'));
  assert.equal(charges?.retentionMs, 7 * 86_400_000);
  assert.equal(charges?.compact, false);
  assert.equal(charges?.sharedWriters, false);
  assert.equal(charges?.contract.fullName, 'lifeline.test.LabCharge');
  assert.deepEqual(charges?.contract.phiPaths, ['patient_mrn']);
  assert.equal(topology.topics['lab.charge_count.updated.v1']?.compact, true);

  const counter = topology.components.counter;
  assert.equal(counter?.kind, 'processor');
  assert.equal(counter?.guarantee, 'exactly_once');
  assert.equal(counter?.onError, 'dlq');
  assert.equal(counter?.position, 'good.yaml:23:3');
  assert.deepEqual(counter?.outputs, { counts: 'lab.charge_count.updated.v1' });
  const archive = topology.components.archive;
  assert.equal(archive?.kind, 'sink');
  assert.equal(archive?.guarantee, 'at_least_once', 'sinks are at-least-once with idempotent writes');
  assert.deepEqual(archive?.config, { batch_size: 100 }, 'the component schema default is applied');

  assert.ok(Object.isFrozen(topology) && Object.isFrozen(topology.components) && Object.isFrozen(archive?.config));
  assert.ok(Object.isFrozen(topology.kafka.brokers));
  assert.throws(() => { (archive?.config as Record<string, unknown>).batch_size = 1; }, TypeError);
});

test('references resolve from the environment, defaults and files; secrets only as references', () => {
  writeFixture(dir, 'secrets/kafka-password', 's3cret-from-file\n');
  writeFixture(dir, 'secrets/sink-key', 'key-from-file');
  // Line 6 is replaced before line 4, whose replacement adds a line below it.
  const text = [
    withLine(4, [
      '    brokers: ["${BROKERS}"]',
      '    sasl: { mechanism: scram-sha-512, username: lifeline, password: "${file:secrets/kafka-password}" }',
    ].join('\n'), withLine(6, [
      '    url: "${REGISTRY_URL:-http://127.0.0.1:8081/apis/ccompat/v7}"',
      '    username: "${REGISTRY_USER}"',
      '    password: "${REGISTRY_PASSWORD}"',
    ].join('\n'))).trimEnd(),
    'connectors:',
    '  archive:',
    '    type: test_sink',
    '    inputs: [lab.charge_count.updated.v1]',
    '    description: "costs $$5 per $${unit}"',
    `    config: { api_key: "\${file:${join(dir, 'secrets/sink-key')}}" }`,
    '',
  ].join('\n');
  writeFileSync('good.yaml', text);
  const topology = loadTopology('good.yaml', testComponentRegistry(), {
    BROKERS: 'kafka-1:9092, kafka-2:9092', REGISTRY_USER: 'registry-user', REGISTRY_PASSWORD: 'registry-secret',
  });
  assert.deepEqual(topology.kafka.brokers, ['kafka-1:9092', 'kafka-2:9092'], 'one variable may hold a comma-separated broker list');
  assert.deepEqual(topology.kafka.sasl, { mechanism: 'scram-sha-512', username: 'lifeline', password: 's3cret-from-file' }, 'file contents are trimmed');
  assert.deepEqual(topology.registry, { url: 'http://127.0.0.1:8081/apis/ccompat/v7', username: 'registry-user', password: 'registry-secret' });
  assert.equal(topology.components.archive?.config.api_key, 'key-from-file', 'absolute file paths work too');
  assert.equal(topology.components.archive?.description, 'costs $5 per ${unit}', '$$ is a literal $');
});

test('loading never touches the network: it works with brokers and registry that do not exist', () => {
  const unreachable = withLine(6, '    url: http://registry.invalid:8081', withLine(4, '    brokers: ["kafka.invalid:9092"]'));
  writeFileSync('good.yaml', unreachable);
  assert.doesNotThrow(() => loadTopology('good.yaml', testComponentRegistry(), {}));
});
