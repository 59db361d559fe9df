import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { renderComponentDocs } from '../../../src/topology/component-docs.ts';
import { testComponentRegistry } from '../../../testing/topology-fixtures.ts';

test('docs/components.md is what the component definitions render to', () => {
  const committed = readFileSync('docs/components.md', 'utf8');
  assert.equal(committed, renderComponentDocs(buildComponentRegistry()),
    'docs/components.md is out of date: run `node bin/lifeline.mjs docs components --write` and commit the result');
});

test('each component gets its kind, outputs, stores and a config table from its schema', () => {
  const rendered = renderComponentDocs(testComponentRegistry());
  assert.match(rendered, /^\| \[`test_sink`\]\(#test_sink\) \| sink \| Writes records nowhere; stands in for a real sink in topology tests\. \|$/m);
  assert.match(rendered, /^## count_by_key$/m);
  assert.match(rendered, /^- stores: `counts`$/m);
  assert.match(rendered, /^\| `ttl` \| duration \(e\.g\. 15m, 7d\) \| {2}\| no \| Forget a key this long/m);
  assert.match(rendered, /^\| `key_field` \| string \| {2}\| no \| .* Example: `account\.id`\. \|$/m);
  assert.match(rendered, /^\| `batch_size` \| integer ≥ 1 \| `100` \| no \| Records per write\. \|$/m);
  assert.match(rendered, /^- outputs: `records`, `rejected` \(optional\)$/m);
  assert.match(rendered, /^- outputs: none$/m);
});
