import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { odooSink } from '../../../connectors/odoo/odoo-sink.ts';
import { odooSource } from '../../../connectors/odoo/odoo-source.ts';
import { ComponentRegistry } from '../../../src/component/component-registry.ts';
import type { ComponentDefinition } from '../../../src/component/component.ts';
import { LifelineError } from '../../../src/errors.ts';
import { describeTopology } from '../../../src/topology/describe-topology.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { VALID_TOPOLOGY, testComponentRegistry, topologyFixtureDir, withLine } from '../../../testing/topology-fixtures.ts';

// Connections to outside systems belong to the connectors that use them: a connector declares a
// connection kind with its own schema; the core validates `connections.<kind>.<name>` against it
// before anything connects and hands the result over untyped, without knowing what the system is.

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

const withLink = (lines: string[]): string => withLine(6, ['    url: http://127.0.0.1:8081/apis/ccompat/v7', '  test_link:', ...lines].join('\n'));

function problemsIn(text: string, env: NodeJS.ProcessEnv = {}, registry = testComponentRegistry()): string {
  writeFileSync('bad.yaml', text);
  try {
    loadTopology('bad.yaml', registry, env);
  } catch (error) {
    assert.ok(error instanceof LifelineError);
    return error.message;
  }
  return assert.fail('expected bad.yaml to be rejected');
}

test('a declared connection kind is validated, defaulted, its secrets resolved, and handed over by kind and name', () => {
  writeFileSync('good.yaml', withLink(['    main:', '      url: https://partner.example', '      token: ${LINK_TOKEN}']));
  const topology = loadTopology('good.yaml', testComponentRegistry(), { LINK_TOKEN: 't0ken' });
  assert.deepEqual(topology.connections, { test_link: { main: { url: 'https://partner.example', token: 't0ken', timeout: '5s' } } });
  assert.ok(Object.isFrozen(topology.connections.test_link?.main));
  assert.match(describeTopology(topology, testComponentRegistry()), /^ {2}test_link main +https:\/\/partner\.example$/m);
});

test('an unknown connection kind names the kinds the registered components declare', () => {
  assert.match(problemsIn(withLine(6, '    url: http://127.0.0.1:8081/apis/ccompat/v7\n  salesforce:\n    main: {url: x}')),
    /^bad\.yaml:7:3 connections\.salesforce: unknown connection kind "salesforce"; known kinds: kafka, registry, test_link$/m);
});

test('a connection is checked against its kind\'s schema and checks, with positions', () => {
  const message = problemsIn(withLink(['    main:', '      url: ftp://partner.example', '      token: ${LINK_TOKEN}', '    Bad-Name:', '      url: https://x', '      token: ${LINK_TOKEN}', '      tiemout: 5s']), { LINK_TOKEN: 't' });
  assert.match(message, /^bad\.yaml:9:12 connections\.test_link\.main\.url: "ftp:\/\/partner\.example" must be an http:\/\/ or https:\/\/ URL$/m);
  assert.match(message, /^bad\.yaml:11:5 connections\.test_link\.Bad-Name: connection names must match/m);
  assert.match(message, /connections\.test_link\.Bad-Name\.tiemout: unknown key \(did you mean timeout\?\)/m);
});

test('a secret in a connection must be a reference, whatever the connection is called', () => {
  assert.match(problemsIn(withLink(['    token_store:', '      url: https://partner.example', '      token: literal'])),
    /connections\.test_link\.token_store\.token: secrets must be \$\{ENV\} or \$\{file:…\} references, not literal values$/m);
});

test('the Odoo connectors declare the odoo kind: topology.yaml\'s connections.odoo keeps its syntax', () => {
  const registry = new ComponentRegistry([odooSource, odooSink] as unknown as ComponentDefinition[]);
  assert.deepEqual([...registry.connectionKinds().keys()], ['odoo']);
  const odoo = ['  odoo:', '    main:', '      url: http://127.0.0.1:8069', '      database: stmarys', '      username: lifeline', '      password: ${ODOO_API_KEY}'];
  writeFileSync('odoo.yaml', withLine(6, ['    url: http://127.0.0.1:8081/apis/ccompat/v7', ...odoo].join('\n'), VALID_TOPOLOGY.split('\n').slice(0, 7).join('\n') + '\n'));
  const topology = loadTopology('odoo.yaml', registry, { ODOO_API_KEY: 'k' });
  assert.deepEqual(topology.connections.odoo, { main: { url: 'http://127.0.0.1:8069', database: 'stmarys', username: 'lifeline', password: 'k' } });
  assert.match(describeTopology(topology, registry), /^ {2}odoo main +http:\/\/127\.0\.0\.1:8069 database stmarys$/m);
  assert.match(problemsIn(withLine(6, ['    url: http://127.0.0.1:8081/apis/ccompat/v7', ...odoo.slice(0, 3), '      database: stmarys'].join('\n'), VALID_TOPOLOGY.split('\n').slice(0, 7).join('\n') + '\n'), {}, registry),
    /^bad\.yaml:9:7 connections\.odoo\.main\.username: is required$/m);
});
