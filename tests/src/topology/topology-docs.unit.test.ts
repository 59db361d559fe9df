import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { renderTopologyDocs, renderTopologyJsonSchema, topologyJsonSchema } from '../../../src/topology/topology-docs.ts';
import { testComponentRegistry } from '../../../testing/topology-fixtures.ts';

test('docs/topology.md and docs/topology.schema.json are what the topology schema and the components render to', () => {
  const registry = buildComponentRegistry();
  const stale = 'out of date: run `node bin/lifeline.mjs docs topology --write` and commit the result';
  assert.equal(readFileSync('docs/topology.md', 'utf8'), renderTopologyDocs(registry), `docs/topology.md is ${stale}`);
  assert.equal(readFileSync('docs/topology.schema.json', 'utf8'), renderTopologyJsonSchema(registry), `docs/topology.schema.json is ${stale}`);
});

test('the reference documents every key, nested and per connection kind; the JSON Schema knows each component type\'s config', () => {
  const rendered = renderTopologyDocs(testComponentRegistry());
  assert.match(rendered, /^\| `connections\.kafka\.sasl\.mechanism` \| "plain" or "scram-sha-256" or "scram-sha-512" \| {2}\| yes \| SASL mechanism\. \|$/m);
  assert.match(rendered, /^### connections\.test_link$/m);
  assert.match(rendered, /^\| `connections\.test_link\.<name>\.timeout` \| string \| `"5s"` \| no \| Per call\. \|$/m);
  assert.match(rendered, /^\| `topics\.<topic>\.partitions` \| integer ≥ 1 \| {2}\| yes \|/m);
  assert.match(rendered, /^\| `processors\.<label>\.on_error` \|/m);

  const schema = topologyJsonSchema(testComponentRegistry()) as { properties: Record<string, { properties?: Record<string, unknown>; additionalProperties?: unknown; patternProperties?: Record<string, { properties: { type: { enum: string[] } }; allOf: Array<{ if: unknown; then: { properties: { config: { properties: Record<string, unknown> } } } }> }> }> };
  assert.deepEqual(Object.keys(schema.properties.connections?.properties ?? {}), ['kafka', 'registry', 'test_link']);
  assert.equal(schema.properties.connections?.additionalProperties, false, 'an unknown connection kind is flagged in the editor too');
  const processor = Object.values(schema.properties.processors?.patternProperties ?? {})[0];
  assert.deepEqual(processor?.properties.type.enum, ['count_by_key']);
  assert.deepEqual(Object.keys(processor?.allOf[0]?.then.properties.config.properties ?? {}), ['key_field', 'ttl']);
  const connector = Object.values(schema.properties.connectors?.patternProperties ?? {})[0];
  assert.deepEqual(connector?.properties.type.enum, ['test_sink', 'test_source']);
});
