import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { formatTopologyProblem } from '../../../src/topology/topology-problem.ts';
import { topologyFixtureDir, writeFixture } from '../../../testing/topology-fixtures.ts';

/**
 * `topology validate` warns when a partner's format can produce a record kind that no output of
 * its source maps — for webhook and file sources alike — and the topology stays valid.
 */

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

function topologyText(): string {
  const schema = (name: string): string => JSON.stringify(resolve(`schemas/${name}`));
  return [
    'version: 1',
    'connections:',
    '  kafka: { brokers: ["127.0.0.1:9092"] }',
    '  registry: { url: http://127.0.0.1:8081/apis/ccompat/v7 }',
    'topics:',
    `  partner.lab_charge.received.v1: { key: entity_key, value_schema: ${schema('partner/service_charge.avsc')}, partitions: 3, retention: 7d, owner: rc, classification: phi, shared_writers: true }`,
    `  partner.supply_delivery.received.v1: { key: entity_key, value_schema: ${schema('partner/supply_delivery.avsc')}, partitions: 3, retention: 7d, owner: rc, classification: internal }`,
    `  ops.quarantine.v1: { key: entity_key, value_schema: ${schema('ops/quarantine.avsc')}, partitions: 1, retention: 7d, owner: rc, classification: phi, shared_writers: true }`,
    'connectors:',
    '  partner_webhooks:',
    '    type: webhook_source',
    '    outputs: { service_charges: partner.lab_charge.received.v1, supply_deliveries: partner.supply_delivery.received.v1, quarantine: ops.quarantine.v1 }',
    '    config:',
    '      partners:',
    `        - { name: acme_lab, path: /w/acme, format: hl7v2, secrets: ["\${SECRET}"] }`,
    `        - { name: busy_lab, path: /w/busy, format: hl7v2, secrets: ["\${SECRET}"], unrouted: accept_and_drop }`,
    `        - { name: medsupply, path: /w/med, format: fhir_r4, secrets: ["\${SECRET}"] }`,
    '  partner_files:',
    '    type: file_source',
    '    outputs: { service_charges: partner.lab_charge.received.v1, quarantine: ops.quarantine.v1 }',
    '    config:',
    '      partners:',
    '        - { name: ftp_lab, format: hl7v2, inbox: ./inbox }',
    '        - name: ftp_pharmacy',
    '          format: csv',
    '          inbox: ./pharmacy',
    '          csv: { record_type: pharmacy_dispense, key_columns: [pharmacy, rx], columns: { occurred_at: date, pharmacy_id: pharmacy, rx_number: rx, product_code: ndc, quantity: qty, total: amount } }',
    '        - name: ftp_charges',
    '          format: csv',
    '          inbox: ./charges',
    '          csv: { record_type: service_charge, key_columns: [charge_id], columns: { occurred_at: date, service_code: code, total: amount } }',
    '',
  ].join('\n');
}

test('a partner whose format can produce an unmapped kind is a warning naming the partner, the types and the output; the topology stays valid', () => {
  const dir = topologyFixtureDir();
  const file = writeFixture(dir, 'topology.yaml', topologyText());
  const registry = buildComponentRegistry();
  let topology;
  try {
    topology = loadTopology(file, registry, { SECRET });
  } catch (error) {
    // The file source's config shape belongs to another area: if it changed, say so plainly.
    assert.fail(`the fixture topology did not load: ${(error as Error).message}`);
  }
  const warnings = (topology.warnings ?? []).map(formatTopologyProblem);
  const acme = warnings.find((warning) => warning.includes('partners[0].format'));
  assert.ok(acme, warnings.join('\n'));
  assert.match(acme, /partner acme_lab can send HL7 ORM\^O01, OML\^O21 \(output orders\); HL7 ORU\^R01, ACK, ORR\^O02, ORL\^O22 \(output order_acknowledgements\); HL7 ADT\^A\* \(output visit_references\), which no output of this source maps/);
  assert.match(acme, /topology\.yaml:15:\d+ connectors\.partner_webhooks\.config\.partners\[0\]\.format/);
  assert.ok(!warnings.some((warning) => warning.includes('partner_webhooks.config.partners[1]')), 'accept_and_drop is a decision, not an oversight');
  const med = warnings.find((warning) => warning.includes('partner_webhooks.config.partners[2]'));
  assert.match(med ?? '', /partner medsupply can send FHIR Claim, ClaimResponse \(output claims\)/);
  assert.ok(!(med ?? '').includes('SupplyDelivery'), 'mapped kinds are not mentioned');
  const files = warnings.find((warning) => warning.includes('partner_files'));
  assert.match(files ?? '', /partner ftp_lab can send .*visit_references.*rejected at run time .*LL_PARTNER_TYPE_UNROUTED/);
  // A CSV partner whose record type no output maps: warned, naming the type and the output; a CSV partner whose type is mapped: not.
  const pharmacy = warnings.find((warning) => warning.includes('partner_files.config.partners[1]'));
  assert.match(pharmacy ?? '', /partner ftp_pharmacy can send CSV pharmacy_dispense rows \(output pharmacy_dispenses\), which no output of this source maps: a file holding such records is rejected at run time \(moved to failed\/, quarantined, LL_PARTNER_TYPE_UNROUTED\)/, warnings.join('\n'));
  assert.ok(!warnings.some((warning) => warning.includes('partner_files.config.partners[2]')), 'a CSV partner whose record type is mapped is not warned');

  const cli = spawnSync(process.execPath, [resolve('bin/lifeline.mjs'), 'topology', 'validate', '--topology', file], { env: { ...process.env, SECRET }, encoding: 'utf8' });
  assert.equal(cli.status, 0, cli.stderr);
  assert.match(cli.stdout, /is valid: 3 topics, 2 components \(4 warnings\)/);
  assert.match(cli.stderr, /^warning: .*partner ftp_pharmacy can send CSV pharmacy_dispense rows/m);
  assert.match(cli.stderr, /^warning: .*partner acme_lab can send/m);
});
