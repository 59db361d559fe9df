import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadContract } from '../../../src/kafka/avro-contract.ts';

test('an enriched schema extends the event it enriches: base fields first, its own appended, PHI marks kept', () => {
  const contract = loadContract('schemas/billing/service_charge_enriched.avsc');
  const base = loadContract('schemas/partner/service_charge.avsc');
  const json = contract.json as { name: string; fields: Array<{ name: string }> } & Record<string, unknown>;
  assert.equal(contract.fullName, 'lifeline.billing.EnrichedServiceCharge');
  assert.equal(json['lifeline.extends'], undefined, 'the attribute is not passed on to the registry');
  const baseNames = (base.json as { fields: Array<{ name: string }> }).fields.map((field) => field.name);
  assert.deepEqual(json.fields.slice(0, baseNames.length).map((field) => field.name), baseNames);
  assert.ok(json.fields.some((field) => field.name === 'odoo_product_id'));
  assert.deepEqual([...contract.phiPaths].sort(), [...base.phiPaths].sort());
  // A record written with the base schema's fields plus nothing else is a valid enriched record (added fields default).
  const event = base.type.fromBuffer(base.type.toBuffer(base.type.random()));
  const enriched = contract.type.fromBuffer(contract.type.toBuffer({ ...(event as object), odoo_product_id: 42 })) as Record<string, unknown>;
  assert.equal(enriched.odoo_product_id, 42);
  assert.equal(enriched.odoo_partner_id, null);
});

test('extends mistakes are named: a field defined twice, a missing base, a cycle', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-extends-'));
  const write = (name: string, schema: unknown): string => {
    writeFileSync(join(dir, name), JSON.stringify(schema));
    return join(dir, name);
  };
  write('base.avsc', { type: 'record', name: 'Base', fields: [{ name: 'id', type: 'string' }] });
  const twice = write('twice.avsc', { type: 'record', name: 'Twice', 'lifeline.extends': 'base.avsc', fields: [{ name: 'id', type: 'int' }] });
  assert.throws(() => loadContract(twice), /twice\.avsc: lifeline\.extends: field id is already a field of base\.avsc/);
  const missing = write('missing.avsc', { type: 'record', name: 'Missing', 'lifeline.extends': 'nowhere.avsc', fields: [] });
  assert.throws(() => loadContract(missing), (error: Error & { code?: string }) => error.code === 'LL_SCHEMA_INVALID' && /nowhere\.avsc cannot be read/.test(error.message));
  write('a.avsc', { type: 'record', name: 'A', 'lifeline.extends': 'b.avsc', fields: [] });
  const cycle = write('b.avsc', { type: 'record', name: 'B', 'lifeline.extends': 'a.avsc', fields: [] });
  assert.throws(() => loadContract(cycle), /extends itself/);
});
