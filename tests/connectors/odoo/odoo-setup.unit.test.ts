import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { parse, stringify } from 'yaml';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { checkOdooSetup, checkProblems, parseSeedFile, seedOdoo, type OdooComponent } from '../../../connectors/odoo/odoo-setup.ts';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { PARTNERS, PRODUCTS } from '../../../dev/odoo-simulator/seed-data.ts';
import { runLifeline } from '../../../testing/cli-runner.ts';
import { useOdooSimulator } from '../../../testing/odoo-simulator-fixture.ts';

/**
 * `lifeline odoo check` and `lifeline odoo seed` against the simulator: the golden path's Odoo
 * sinks and sources pass on a seeded database as the least-privileged user; a missing product, a
 * missing location and a missing right each fail with the fix; seeding is idempotent.
 */
let simulator: OdooSimulator;
let odoo: OdooClient;
useOdooSimulator((started) => ({ simulator, odoo } = started));

const SEED_FILE = 'dev/odoo-simulator/golden-path-seed.yaml';
const seed = parseSeedFile(readFileSync(SEED_FILE, 'utf8'), SEED_FILE);
const document = parse(readFileSync('topology.yaml', 'utf8')) as {
  connections: Record<string, unknown>; topics: Record<string, Record<string, unknown>>; connectors: Record<string, { type: string; config: Record<string, unknown> } & Record<string, unknown>>;
} & Record<string, unknown>;
const goldenComponents: OdooComponent[] = Object.entries(document.connectors)
  .filter(([, component]) => component.type === 'odoo_sink' || component.type === 'odoo_source')
  .map(([label, component]) => ({ label, type: component.type as OdooComponent['type'], config: component.config }));

const as = (username: string, password: string): OdooClient => new OdooClient({ url: simulator.url, database: simulator.database, username, password });

test('the seed file holds exactly the simulator\'s reference partners and products', () => {
  assert.deepEqual(seed.partners.map(({ id, ...rest }) => (void id, rest)), PARTNERS);
  assert.deepEqual(seed.products.map(({ id, ...rest }) => (void id, rest)), PRODUCTS);
  assert.ok(goldenComponents.length >= 6, 'the golden path has Odoo sinks and sources');
});

test('check passes on a seeded database as the least-privileged integration user', async () => {
  const sections = await checkOdooSetup(odoo, 'lifeline', goldenComponents, seed);
  assert.deepEqual(checkProblems(sections), []);
  const text = sections.flatMap((section) => section.lines.map((line) => line.what)).join('\n');
  assert.match(text, /picking_type_id → external id stock\.picking_type_in \(stock\.picking\.type id \d+\)/);
  assert.match(text, /version field account\.move\.x_lifeline_version/);
});

test('check names a missing product, a missing location and a missing right, each with its fix', async () => {
  const admin = as('admin', 'admin');
  try {
    const [product] = await admin.searchRead('product.product', [['default_code', '=', 'CPT-87635']], { fields: ['id'] });
    await admin.write('product.product', [product?.id as number], { default_code: 'CPT-87635-OLD' });
    const [location] = await admin.searchRead('ir.model.data', [['module', '=', 'stock'], ['name', '=', 'stock_location_suppliers']], { fields: ['id'] });
    await admin.callMethod('ir.model.data', 'unlink', [[location?.id]]);
    const auditor = as('auditor', 'auditor');
    try {
      const problems = checkProblems(await checkOdooSetup(auditor, 'auditor', goldenComponents, seed));
      const find = (pattern: RegExp) => problems.find((problem) => pattern.test(problem.what));
      assert.match(find(/product\.product records missing: CPT-87635/)?.fix ?? '', /lifeline odoo seed --from FILE/);
      assert.match(find(/location_id: no record has the external id stock\.stock_location_suppliers/)?.fix ?? '', /install the Inventory app/);
      assert.match(find(/auditor may not create account\.move/)?.fix ?? '', /Settings → Users & Companies → Users → auditor\) one of: Accounting \/ Billing/);
      assert.match(find(/auditor may not read stock\.picking/)?.fix ?? '', /Inventory \/ User/);
    } finally {
      auditor.close();
    }
    // Put the location back for the tests below (as the stock app's data would be).
    const [suppliers] = await admin.searchRead('stock.location', [['usage', '=', 'supplier']], { fields: ['id'] });
    await admin.create('ir.model.data', { module: 'stock', name: 'stock_location_suppliers', model: 'stock.location', res_id: suppliers?.id as number, noupdate: true });
  } finally {
    admin.close();
  }
});

test('seed is idempotent by external id: it adopts existing records, recreates a missing one, and a second run changes nothing', async () => {
  const admin = as('admin', 'admin');
  try {
    const first = await seedOdoo(admin, seed);
    assert.equal(first.created, 1, 'the product whose code was changed is created again');
    assert.equal(first.adopted, seed.partners.length + seed.products.length - 1, 'the rest existed: given external ids, not duplicated');
    const messages = await admin.searchCount('mail.message', []);
    const partners = await admin.searchCount('res.partner', [], { active_test: false });
    const second = await seedOdoo(admin, seed);
    assert.deepEqual(second, { created: 0, adopted: 0, updated: 0, unchanged: seed.partners.length + seed.products.length, fieldsCreated: 0 });
    assert.equal(await admin.searchCount('mail.message', []), messages, 'no chatter from a second run');
    assert.equal(await admin.searchCount('res.partner', [], { active_test: false }), partners);
    assert.deepEqual(checkProblems(await checkOdooSetup(odoo, 'lifeline', goldenComponents, seed)), [], 'check passes again');
  } finally {
    admin.close();
  }
});

test('lifeline odoo check / seed from the command line: exit 1 with the fix, exit 0 once ready', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-odoo-check-'));
  const file = join(dir, 'topology.yaml');
  const odooOnly = {
    ...document,
    connections: {
      kafka: { brokers: ['127.0.0.1:1'] },
      registry: { url: 'http://127.0.0.1:1' },
      odoo: { main: { url: simulator.url, database: simulator.database, username: '${ODOO_USERNAME}', password: '${ODOO_API_KEY}' } },
    },
    topics: Object.fromEntries(Object.entries(document.topics).map(([name, topic]) => [name, { ...topic, value_schema: resolve(String(topic.value_schema)) }])),
    connectors: Object.fromEntries(Object.entries(document.connectors).filter(([, component]) => component.type.startsWith('odoo_'))),
    processors: {},
  };
  writeFileSync(file, stringify(odooOnly));
  const env = { ODOO_USERNAME: 'lifeline', ODOO_API_KEY: simulator.credentials.password };
  const admin = as('admin', 'admin');
  try {
    const [product] = await admin.searchRead('product.product', [['default_code', '=', 'SUP-SHARPS-2G']], { fields: ['id'] });
    await admin.callMethod('product.product', 'unlink', [[product?.id]]);
    const failing = await runLifeline(['odoo', 'check', '--topology', file, '--seed', SEED_FILE], { env, timeoutMs: 60_000 });
    assert.equal(failing.code, 1, failing.stderr);
    assert.match(failing.stdout, /FAIL 1 product\.product records missing: SUP-SHARPS-2G\n\s+fix: run `lifeline odoo seed --from FILE`/);
    assert.match(failing.stdout, /LL_ODOO_SETUP_MISSING: 1 problem/);
    const seeded = await runLifeline(['odoo', 'seed', '--from', SEED_FILE, '--topology', file], { env: { ...env, ODOO_SEED_USERNAME: 'admin', ODOO_SEED_API_KEY: 'admin' }, timeoutMs: 60_000 });
    assert.equal(seeded.code, 0, seeded.stderr);
    assert.match(seeded.stdout, /1 created/);
    const passing = await runLifeline(['odoo', 'check', '--topology', file, '--seed', SEED_FILE], { env, timeoutMs: 60_000 });
    assert.equal(passing.code, 0, passing.stdout + passing.stderr);
    assert.match(passing.stdout, /Odoo is ready for this topology\./);
  } finally {
    admin.close();
  }
});
