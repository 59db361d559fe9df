import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkImports, type ImportGraph } from '../../scripts/check-imports.mjs';

// DESIGN.md, "Layout and the direction of dependencies": arrows point down, no cycles.

test('the import graph has no cycle and every arrow points down', () => {
  const result = checkImports();
  assert.ok(result.files > 100, `read ${result.files} files`);
  assert.deepEqual(result.cycles, []);
  assert.deepEqual(result.arrows, []);
});

const graphOf = (edges: Record<string, Array<string | { to: string; dynamic: boolean }>>): ImportGraph =>
  new Map(Object.entries(edges).map(([from, targets]) => [from, targets.map((to) => (typeof to === 'string' ? { to, dynamic: false } : to))]));

test('the check finds a cycle, type imports included', () => {
  const result = checkImports(graphOf({ 'src/component/component.ts': ['src/topology/model.ts'], 'src/topology/model.ts': ['src/component/component.ts'] }));
  assert.deepEqual(result.cycles, [['src/component/component.ts', 'src/topology/model.ts']]);
});

test('the check finds arrows from the core into connectors, processors or dev, and dev loaded at startup', () => {
  const result = checkImports(graphOf({
    'src/runtime/processor-host.ts': ['processors/dedup.ts'],
    'src/kafka/client.ts': ['connectors/odoo/odoo-client.ts'],
    'src/topology/load-topology.ts': ['dev/infra/settings.ts'],
    'processors/dedup.ts': ['src/runtime/processor-task.ts'],
    'bench/run.ts': ['tests/helpers/harness.ts'],
    'src/cli/main.ts': ['src/cli/dev-commands.ts'],
    'src/cli/dev-commands.ts': ['dev/infra/local-infra.ts', { to: 'dev/odoo-simulator/odoo-simulator.ts', dynamic: true }],
    'connectors/odoo/odoo-client.ts': [], 'dev/infra/settings.ts': [], 'dev/infra/local-infra.ts': [], 'dev/odoo-simulator/odoo-simulator.ts': [],
    'src/runtime/processor-task.ts': [], 'tests/helpers/harness.ts': [],
  }));
  assert.deepEqual(result.cycles, []);
  assert.deepEqual(result.arrows.sort(), [
    'bench/run.ts imports tests/helpers/harness.ts',
    'processors/dedup.ts imports src/runtime/processor-task.ts',
    'src/cli/dev-commands.ts imports dev/infra/local-infra.ts statically (load it with import() when its command runs)',
    'src/cli/main.ts loads dev/infra/local-infra.ts at startup (import it with import() in the command that needs it)',
    'src/kafka/client.ts imports connectors/odoo/odoo-client.ts',
    'src/runtime/processor-host.ts imports processors/dedup.ts',
    'src/topology/load-topology.ts imports dev/infra/settings.ts',
  ]);
});

test('the console, src/ops and src/observe never import the CLI (the console acts through src/ops)', () => {
  const result = checkImports(graphOf({
    'src/console/console-server.ts': ['src/cli/replay-commands.ts', 'src/ops/replay-workflow.ts'],
    'src/ops/replay-workflow.ts': ['src/cli/ops-session.ts'],
    'src/cli/replay-commands.ts': ['src/ops/replay-workflow.ts'],
    'src/cli/ops-session.ts': [],
  }));
  assert.deepEqual(result.arrows.sort(), [
    'src/console/console-server.ts imports src/cli/replay-commands.ts',
    'src/ops/replay-workflow.ts imports src/cli/ops-session.ts',
  ]);
});
