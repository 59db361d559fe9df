import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import type { Topology } from '../../../src/topology/model.ts';
import { toDot, toMermaid } from '../../../src/topology/topology-graph.ts';
import { VALID_TOPOLOGY, testComponentRegistry, topologyFixtureDir } from '../../../testing/topology-fixtures.ts';

let dir: string;
let topology: Topology;
before(() => {
  dir = topologyFixtureDir();
  // A sink reading the counter's dead letters, so the dashed dead-letter edge shows too.
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, `${VALID_TOPOLOGY}connectors:\n  dead_letter_archive:\n    type: test_sink\n    inputs: [ops.dlq.counter.v1]\n`);
  topology = loadTopology(file, testComponentRegistry(), {});
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('toMermaid draws topics and components with edges input → component → output', () => {
  assert.equal(toMermaid(topology), [
    'flowchart LR',
    '  topic_0[("lab.charge.received.v1")]',
    '  topic_1[("lab.charge_count.updated.v1")]',
    '  topic_2[("ops.dlq.counter.v1")]',
    '  component_counter["counter<br/><small>count_by_key</small>"]',
    '  component_dead_letter_archive(["dead_letter_archive<br/><small>test_sink</small>"])',
    '  topic_0 --> component_counter',
    '  component_counter -->|counts| topic_1',
    '  component_counter -.->|dead letters| topic_2',
    '  topic_2 --> component_dead_letter_archive',
    '',
  ].join('\n'));
});

test('toDot draws the same graph for Graphviz', () => {
  assert.equal(toDot(topology), [
    'digraph topology {',
    '  rankdir=LR;',
    '  node [fontname="Helvetica"];',
    '  edge [fontname="Helvetica", fontsize=10];',
    '  topic_0 [label="lab.charge.received.v1", shape=cylinder];',
    '  topic_1 [label="lab.charge_count.updated.v1", shape=cylinder];',
    '  topic_2 [label="ops.dlq.counter.v1", shape=cylinder];',
    '  component_counter [label="counter\\ncount_by_key", shape=box, style=rounded];',
    '  component_dead_letter_archive [label="dead_letter_archive\\ntest_sink", shape=box, style="rounded,bold"];',
    '  topic_0 -> component_counter;',
    '  component_counter -> topic_1 [label="counts"];',
    '  component_counter -> topic_2 [label="dead letters", style=dashed];',
    '  topic_2 -> component_dead_letter_archive;',
    '}',
    '',
  ].join('\n'));
});
