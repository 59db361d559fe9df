import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { OdooMetrics } from '../../../connectors/odoo/odoo-metrics.ts';
import { PartnerFeedMetrics } from '../../../connectors/partner-feed.ts';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { alertRulesYaml, dashboard, metricsUsed, odooComponents, type RuleFile } from '../../../src/observe/alerting.ts';
import { TopologyTestDriver } from '../../../src/testing/topology-test-driver.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';

/**
 * `lifeline observe rules|dashboard` on the golden topology.yaml: valid YAML/JSON of the expected
 * shape, every rule checked by promtool when it is installed (Debian's prometheus package; .ci/run
 * installs it), and every metric named is one Lifeline registers — read from a real metrics
 * registry: the golden topology's processors run in the topology test driver (their metrics on
 * the runtime's registry) plus the metrics the topology's Odoo and partner connectors register.
 */

const registry = buildComponentRegistry();
const topology = loadTopology('topology.yaml', registry, {}, { unsetSecrets: 'warn', readsKafkaOnly: true });

async function registeredMetricNames(): Promise<Set<string>> {
  const driver = await TopologyTestDriver.fromTopology(topology, registry);
  try {
    for (const labels of odooComponents(topology).values()) for (const label of labels) new OdooMetrics(driver.metricsRegistry, label);
    for (const source of Object.values(topology.components).filter((component) => component.kind === 'source' && ['webhook_source', 'file_source'].includes(component.type))) {
      new PartnerFeedMetrics(driver.metricsRegistry, source.label, source.type === 'webhook_source' ? 'webhook' : 'file');
    }
    return new Set(driver.metricsRegistry.getMetricsAsArray().map((metric) => metric.name));
  } finally {
    await driver.close();
  }
}

const rulesText = alertRulesYaml(topology);
const rules = parse(rulesText) as RuleFile;
const board = JSON.parse(JSON.stringify(dashboard(topology))) as { uid: string; title: string; schemaVersion: number; panels: Array<{ id: number; type: string; title: string; gridPos: { h: number; w: number; x: number; y: number }; datasource: { type: string; uid: string }; targets: Array<{ refId: string; expr: string }> }> };

test('the generated rules are a Prometheus rule file with the alerts an operator needs, each with a runbook in docs/operations.md', () => {
  assert.equal(rules.groups.length, 1);
  const group = rules.groups[0];
  assert.ok(group);
  assert.equal(group.name, `lifeline-${topology.runtime.appId}`);
  const names = new Set(group.rules.map((rule) => rule.alert));
  for (const alert of ['LifelineComponentDown', 'LifelineFlowStopped', 'LifelineLagGrowing', 'LifelineDeadLetters', 'LifelineOdooUnreachable', 'LifelineSlaBreaches', 'LifelineRestoreStuck']) {
    assert.ok(names.has(alert), `${alert} is generated`);
  }
  const headings = [...readFileSync('docs/operations.md', 'utf8').matchAll(/^#+ (.+)$/gm)].map((match) => (match[1] as string).toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'));
  for (const rule of group.rules) {
    assert.deepEqual(Object.keys(rule).filter((key) => !['alert', 'expr', 'for', 'labels', 'annotations'].includes(key)), [], `${rule.alert} has only rule fields`);
    assert.match(rule.alert, /^[A-Za-z_][A-Za-z0-9_]*$/);
    assert.ok(rule.expr.length > 0);
    if (rule.for !== undefined) assert.match(rule.for, /^\d+[smhd]$/);
    assert.ok(['page', 'ticket'].includes(rule.labels.severity ?? ''), `${rule.alert} has a severity`);
    assert.equal(rule.labels.app_id, topology.runtime.appId);
    assert.ok(rule.annotations.summary);
    const anchor = (rule.annotations.runbook ?? '').split('#')[1] ?? '';
    assert.ok(headings.includes(anchor), `${rule.alert}: runbook ${rule.annotations.runbook} has no heading in docs/operations.md`);
  }
  // One flow-stopped and one lag rule per consuming component, on its consumer group.
  const consumers = Object.values(topology.components).filter((component) => component.kind !== 'source');
  assert.equal(group.rules.filter((rule) => rule.alert === 'LifelineFlowStopped').length, consumers.length);
  for (const component of consumers) {
    assert.ok(group.rules.some((rule) => rule.alert === 'LifelineLagGrowing' && rule.expr.includes(`group="${topology.runtime.appId}.${component.label}"`)));
  }
  // Odoo unreachable names every component that talks to Odoo.
  const odoo = group.rules.find((rule) => rule.alert === 'LifelineOdooUnreachable');
  for (const label of [...odooComponents(topology).values()].flat()) assert.ok(odoo?.expr.includes(label), `${label} is in the Odoo rule`);
});

test('promtool check rules accepts the generated rules (when Debian\'s prometheus package is installed)', (t) => {
  const found = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
  if (found.error) {
    t.skip('promtool is not installed (apt-get install prometheus); the structure is checked by the test above');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-rules-'));
  const file = join(dir, 'lifeline-rules.yml');
  writeFileSync(file, rulesText);
  const output = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
  const count = rules.groups.reduce((sum, group) => sum + group.rules.length, 0);
  assert.match(output, new RegExp(`SUCCESS: ${count} rules found`));
  // promtool fails on a rule file it cannot parse: the check can fail.
  writeFileSync(file, rulesText.replace('LifelineComponentDown\n        expr: min by', 'LifelineComponentDown\n        expr: min by by'));
  assert.notEqual(spawnSync('promtool', ['check', 'rules', file]).status, 0);
});

test('the generated dashboard is Grafana dashboard JSON: unique panel ids, grid positions, a Prometheus query per panel', () => {
  assert.equal(board.schemaVersion, 39);
  assert.ok(board.uid.length > 0 && board.uid.length <= 40, 'Grafana uids are at most 40 characters');
  assert.ok(board.title.includes(topology.runtime.appId));
  assert.ok(board.panels.length >= 8);
  assert.equal(new Set(board.panels.map((panel) => panel.id)).size, board.panels.length);
  for (const panel of board.panels) {
    assert.equal(panel.type, 'timeseries');
    assert.equal(panel.datasource.type, 'prometheus');
    assert.ok(panel.gridPos.w > 0 && panel.gridPos.h > 0 && panel.gridPos.x + panel.gridPos.w <= 24, `${panel.title} fits the 24-column grid`);
    assert.ok(panel.targets.length > 0 && panel.targets.every((target) => target.refId && target.expr.includes('lifeline_')), `${panel.title} queries a Lifeline metric`);
  }
  const titles = board.panels.map((panel) => panel.title);
  for (const title of ['Consumer lag (records behind)', 'Dead letters (10 min)', 'Odoo reachable', 'SLA breaches (15 min)']) assert.ok(titles.includes(title), title);
});

test('the rules and the dashboard name only metrics Lifeline registers (read from the metrics registry, not a list)', async () => {
  const registered = await registeredMetricNames();
  assert.ok(registered.has('lifeline_records_in_total') && registered.has('lifeline_odoo_reachable') && registered.has('lifeline_sla_open_transactions'), [...registered].join(', '));
  const used = metricsUsed(`${rulesText}\n${JSON.stringify(board)}`);
  assert.ok(used.length >= 10, used.join(', '));
  for (const metric of used) assert.ok(registered.has(metric), `${metric} is not a metric Lifeline registers (registered: ${[...registered].sort().join(', ')})`);
  // The check can fail: a made-up metric is caught.
  assert.ok(!metricsUsed('sum(lifeline_made_up_total)').every((metric) => registered.has(metric)));
});
