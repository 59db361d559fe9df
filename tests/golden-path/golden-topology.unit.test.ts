import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLifeline } from '../../testing/cli-runner.ts';
import { repositoryTopologySecrets } from '../../testing/golden-path-fixture.ts';

test('the repository\'s topology.yaml (the golden path) is valid once its secrets are in the environment, and names each one missing otherwise (a warning; a problem with --strict)', async () => {
  const valid = await runLifeline(['topology', 'validate', '--topology', 'topology.yaml'], { env: repositoryTopologySecrets() });
  assert.equal(valid.code, 0, valid.stderr);
  assert.match(valid.stdout, /topology\.yaml is valid: \d+ topics, \d+ components/);
  // Whatever of them this shell does not set is named (a developer may have some exported).
  // ODOO_USERNAME is configuration, not a secret (it has no default: docs/odoo.md): always needed.
  const settings = { ODOO_USERNAME: 'lifeline' };
  const absent = Object.keys(repositoryTopologySecrets()).filter((name) => !(name in settings) && process.env[name] === undefined);
  if (absent.length === 0) return;
  // Unset secrets are warnings (validation uses none of them), and problems with --strict.
  const warned = await runLifeline(['topology', 'validate', '--topology', 'topology.yaml'], { env: settings });
  assert.equal(warned.code, 0, warned.stderr);
  // The count also holds the partner-routing warnings (types a partner's format can produce that no output maps).
  const counted = Number(/is valid: .*\((\d+) warnings?\)/.exec(warned.stdout)?.[1]);
  assert.ok(counted >= absent.length, `at least one warning per unset secret: ${warned.stdout}`);
  for (const name of absent) assert.match(warned.stderr, new RegExp(`warning: .*environment variable ${name} is not set`));
  const missing = await runLifeline(['topology', 'validate', '--strict', '--topology', 'topology.yaml'], { env: settings });
  const noUser = await runLifeline(['topology', 'validate', '--topology', 'topology.yaml']);
  assert.equal(noUser.code, 1, 'no default Odoo user: the topology names the one it acts as');
  assert.match(noUser.stderr + noUser.stdout, /environment variable ODOO_USERNAME is not set/);
  assert.equal(missing.code, 1);
  for (const name of absent) assert.match(missing.stderr + missing.stdout, new RegExp(`environment variable ${name} is not set`));
});
