import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import { defineProcessor, type ComponentDefinition } from '../../../src/component/component.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';

const passThrough = (preserves: boolean) => defineProcessor({
  kind: 'processor', type: 'pass_through', description: 'test double', stateful: false, outputs: ['out'],
  config: Type.Object({}, { additionalProperties: false }),
  preservesPartitioning: () => preserves,
  create: () => ({ process() {} }),
});

function topology(outputPartitions: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-placement-'));
  const schema = JSON.stringify(resolve('tests/fixtures/schemas/test_event.avsc'));
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, [
    'version: 1',
    'connections:',
    '  kafka: { brokers: ["127.0.0.1:9092"] }',
    '  registry: { url: "http://127.0.0.1:8081" }',
    'topics:',
    `  test.event.received.v1: { key: account, value_schema: ${schema}, partitions: 2, retention: 1d, owner: tests, description: in, classification: internal }`,
    `  test.event.passed.v1: { key: account, value_schema: ${schema}, partitions: ${outputPartitions}, retention: 1d, owner: tests, description: out, classification: internal }`,
    'processors:',
    '  passer:',
    '    type: pass_through',
    '    inputs: [test.event.received.v1]',
    '    outputs: { out: test.event.passed.v1 }',
    '',
  ].join('\n'));
  return file;
}

test('a processor that preserves partitioning needs outputs partitioned like its inputs; one placed by key does not', () => {
  const preserving = new ComponentRegistry([passThrough(true) as unknown as ComponentDefinition]);
  assert.throws(() => loadTopology(topology(3), preserving), /preserves partitioning\), so test\.event\.passed\.v1 needs 2 partitions like its inputs, not 3/);
  assert.doesNotThrow(() => loadTopology(topology(2), preserving));
  const byKey = new ComponentRegistry([passThrough(false) as unknown as ComponentDefinition]);
  assert.doesNotThrow(() => loadTopology(topology(3), byKey), 'outputs placed by key may have any partition count');
});
