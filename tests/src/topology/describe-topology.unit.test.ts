import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { describeTopology } from '../../../src/topology/describe-topology.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { VALID_TOPOLOGY, testComponentRegistry, topologyFixtureDir, withLine } from '../../../testing/topology-fixtures.ts';

let dir: string;
before(() => { dir = topologyFixtureDir(); });
after(() => rmSync(dir, { recursive: true, force: true }));

test('describe lists components with inputs → outputs, guarantee and stores, then the topic catalogue', () => {
  const file = join(dir, 'topology.yaml');
  const text = `${withLine(29, '      key_field: account\n      ttl: 30d')}connectors:\n  archive:\n    type: test_sink\n    inputs: [lab.charge_count.updated.v1]\n    config: { api_key: "\${ARCHIVE_KEY}" }\n`;
  writeFileSync(file, text);
  const registry = testComponentRegistry();
  const description = describeTopology(loadTopology(file, registry, { ARCHIVE_KEY: 'do-not-print-me' }), registry);

  assert.match(description, /^Topology .*topology\.yaml$/m);
  assert.match(description, /^ {2}2 topics, 2 components$/m);
  assert.match(description, /^ {2}counter \(processor count_by_key, .*topology\.yaml:23:3\)$/m);
  assert.match(description, /^ {4}inputs {9}lab\.charge\.received\.v1$/m);
  assert.match(description, /^ {4}outputs {8}counts → lab\.charge_count\.updated\.v1$/m);
  assert.match(description, /^ {4}guarantee {6}exactly_once$/m);
  assert.match(description, /^ {4}on error {7}dead-letter to ops\.dlq\.counter\.v1$/m);
  assert.match(description, /^ {4}stores {9}counts \(ttl 30d\) ← _lifeline\.lifeline\.counter\.counts\.changelog$/m);
  assert.match(description, /^ {2}archive \(sink test_sink, /m);
  assert.match(description, /^ {4}guarantee {6}at_least_once$/m);
  assert.match(description, /^ {4}config {9}api_key: \*\*\*, batch_size: 100$/m, 'secrets are masked');
  assert.doesNotMatch(description, /do-not-print-me/);

  const topic = description.slice(description.indexOf('  lab.charge.received.v1\n'));
  assert.match(topic, /^ {4}partitions {5}3$/m);
  assert.match(topic, /^ {4}cleanup {8}retention 7d$/m);
  assert.match(topic, /^ {4}owner {10}revenue-cycle$/m);
  assert.match(topic, /^ {4}classification phi$/m);
  assert.match(topic, /^ {4}schema {9}schemas\/charge\.avsc \(lifeline\.test\.LabCharge; phi fields: patient_mrn\)$/m);
  assert.match(topic, /^ {4}read by {8}counter$/m);
  assert.match(description, /^ {4}cleanup {8}compacted \(latest record per key\)$/m);
  assert.match(description, /^ {4}written by {5}counter$/m);
});
