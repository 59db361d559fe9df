// What an operator sets from the environment in the repository's topology.yaml: ports and paths
// (`"${LIFELINE_HTTP_PORT:-9464}"` is a number), secrets from files (`NAME_FILE`, as Docker's official
// images read them), and unset secrets as warnings for the commands that use none.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import type { TopologyProblem } from '../../../src/topology/topology-problem.ts';
import { topologyProblemsOf } from '../../../src/topology/topology-problem.ts';
import { repositoryTopologySecrets } from '../../../testing/golden-path-fixture.ts';

const registry = buildComponentRegistry();

test('ports and the state directory come from the environment, as numbers where numbers are meant', () => {
  const defaults = loadTopology('topology.yaml', registry, repositoryTopologySecrets());
  assert.equal(defaults.runtime.httpPort, 9464);
  assert.equal(defaults.components.partner_webhooks?.config.port, 8088);
  assert.equal(defaults.runtime.stateDir, resolve('.lifeline/state'));
  const moved = loadTopology('topology.yaml', registry, {
    ...repositoryTopologySecrets(), LIFELINE_HTTP_PORT: '19464', LIFELINE_WEBHOOK_PORT: '18088', LIFELINE_STATE_DIR: '/var/lib/lifeline/state',
  });
  assert.equal(moved.runtime.httpPort, 19464);
  assert.equal(moved.components.partner_webhooks?.config.port, 18088);
  assert.equal(moved.runtime.stateDir, '/var/lib/lifeline/state');
  const problems = topologyProblemsOf(catching(() => loadTopology('topology.yaml', registry, { ...repositoryTopologySecrets(), LIFELINE_HTTP_PORT: 'ninety' })));
  assert.ok(problems?.some((problem) => problem.path === 'runtime.http_port'), 'a port that is not a number is a problem at its path');
});

test('NAME_FILE sets ${NAME} from the file (trimmed); an unreadable one is named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-env-'));
  const secrets = repositoryTopologySecrets();
  writeFileSync(join(dir, 'odoo_api_key'), 'key-from-a-file\n');
  const { ODOO_API_KEY: _unused, ...rest } = secrets;
  const loaded = loadTopology('topology.yaml', registry, { ...rest, ODOO_API_KEY_FILE: join(dir, 'odoo_api_key') });
  assert.equal(loaded.connections.odoo?.main?.password, 'key-from-a-file');
  const problems = topologyProblemsOf(catching(() => loadTopology('topology.yaml', registry, { ...rest, ODOO_API_KEY_FILE: join(dir, 'missing') })));
  assert.match(problems?.map((problem) => problem.message).join('\n') ?? '', /cannot read file .*missing named by ODOO_API_KEY_FILE/);
});

test('unset secrets (and, for commands that only read Kafka, the Odoo connection\'s user) are problems by default and warnings on request', () => {
  const problems = topologyProblemsOf(catching(() => loadTopology('topology.yaml', registry, {})));
  assert.equal(problems?.length, Object.keys(repositoryTopologySecrets()).length);
  assert.ok(problems?.some((problem) => problem.path === 'connections.odoo.main.username'));
  const validation = topologyProblemsOf(catching(() => loadTopology('topology.yaml', registry, {}, { unsetSecrets: 'warn' })));
  assert.deepEqual(validation?.map((problem) => problem.path), ['connections.odoo.main.username'], 'validation still wants the user: it is configuration, not a secret');
  const warnings: TopologyProblem[] = [];
  const loaded = loadTopology('topology.yaml', registry, {}, { unsetSecrets: 'warn', readsKafkaOnly: true, warnings });
  assert.equal(Object.keys(loaded.components).length > 0, true);
  assert.deepEqual(warnings.map((warning) => warning.path).sort(), problems?.map((problem) => problem.path).sort());
});

function catching(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  assert.fail('expected an error');
}
