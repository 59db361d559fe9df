import { basename } from 'node:path';
import { stringify } from 'yaml';
import type { ComponentDeclaration, Topology } from '../topology/model.ts';

/**
 * Prometheus alerting rules and a Grafana dashboard for one topology, generated from it: each rule
 * is restricted to this topology's components (and its app id's consumer groups), and names the
 * runbook in docs/operations.md that says what to do. The alerts are the ones an operator needs —
 * a flow stopped with a backlog, lag growing, dead letters appearing, Odoo unreachable, SLA
 * breaches, a restore that does not finish, a component down — on the metrics Lifeline exports.
 * Labels come from component names, groups, flows and connections, never from records.
 */

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

export interface RuleFile {
  readonly groups: ReadonlyArray<{ readonly name: string; readonly interval?: string; readonly rules: readonly AlertRule[] }>;
}

export interface AlertingOptions {
  /** Records behind above which a growing lag alerts (default 1000). */
  readonly lagThreshold?: number;
  /** Where the runbooks are (default docs/operations.md). */
  readonly runbooks?: string;
  /** The Prometheus datasource uid the dashboard queries (default `prometheus`). */
  readonly datasourceUid?: string;
}

/** PromQL string literal (label values are names from topology.yaml, quoted and escaped all the same). */
function quote(value: string): string {
  return JSON.stringify(value);
}

function oneOf(values: readonly string[]): string {
  return quote(`^(${values.map((value) => value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})$`);
}

const byKind = (topology: Topology, ...kinds: ComponentDeclaration['kind'][]): ComponentDeclaration[] =>
  Object.values(topology.components).filter((component) => kinds.includes(component.kind)).sort((a, b) => a.label.localeCompare(b.label));

/**
 * Components talking to each Odoo connection: a component whose `config.connection` names one of
 * connections.odoo, or (when the topology was loaded without the Odoo connections, as the
 * operators' commands and the console do) an `odoo_*` connector naming a connection.
 */
export function odooComponents(topology: Topology): Map<string, string[]> {
  const connections = topology.connections.odoo ?? {};
  const result = new Map<string, string[]>();
  for (const component of Object.values(topology.components)) {
    const connection = component.config.connection;
    if (typeof connection !== 'string' || !(connections[connection] || component.type.startsWith('odoo_'))) continue;
    result.set(connection, [...(result.get(connection) ?? []), component.label].sort());
  }
  return result;
}

/** Processors running the SLA tracker (their breaches counter carries `flow`). */
function slaComponents(topology: Topology): string[] {
  return byKind(topology, 'processor').filter((component) => component.type === 'sla').map((component) => component.label);
}

/** The metric names a rule file or dashboard uses; a histogram's `_bucket`/`_sum`/`_count` series count as the histogram. */
export function metricsUsed(text: string): string[] {
  return [...new Set([...text.matchAll(/\b(lifeline_[a-z_]+)/g)].map((match) => (match[1] as string).replace(/_(bucket|sum|count)$/, '')))].sort();
}

export function alertRules(topology: Topology, options: AlertingOptions = {}): RuleFile {
  const app = topology.runtime.appId;
  const runbook = (anchor: string): string => `${options.runbooks ?? 'docs/operations.md'}#${anchor}`;
  const lagThreshold = options.lagThreshold ?? 1000;
  const all = byKind(topology, 'source', 'processor', 'sink').map((component) => component.label);
  const consumers = byKind(topology, 'processor', 'sink');
  const stateful = byKind(topology, 'processor');
  const base = { app_id: app };
  const rules: AlertRule[] = [];

  if (all.length > 0) {
    rules.push({
      alert: 'LifelineComponentDown',
      expr: `min by (component) (lifeline_component_up{component=~${oneOf(all)}}) == 0`,
      for: '2m', labels: { ...base, severity: 'page' },
      annotations: { summary: '{{ $labels.component }} is not running or not connected', runbook: runbook('a-component-is-down') },
    });
    rules.push({
      alert: 'LifelineDeadLetters',
      expr: `sum by (component, error_class) (increase(lifeline_records_dead_lettered_total{component=~${oneOf(all)}}[10m])) > 0`,
      labels: { ...base, severity: 'ticket' },
      annotations: { summary: '{{ $labels.component }} dead-lettered {{ $value }} record(s) with {{ $labels.error_class }} in 10 minutes', runbook: runbook('dead-letter-spike') },
    });
  }
  for (const component of consumers) {
    const group = quote(`${app}.${component.label}`);
    rules.push({
      alert: 'LifelineFlowStopped',
      expr: `sum(lifeline_consumer_lag{group=${group}}) > 0 and sum(rate(lifeline_records_in_total{component=${quote(component.label)}}[10m])) == 0`,
      for: '10m', labels: { ...base, severity: 'page', component: component.label },
      annotations: { summary: `${component.label} has a backlog and has read nothing for 10 minutes`, runbook: runbook(component.kind === 'sink' ? 'odoo-down' : 'a-component-is-down') },
    });
    rules.push({
      alert: 'LifelineLagGrowing',
      expr: `sum(lifeline_consumer_lag{group=${group}}) > ${lagThreshold} and sum(delta(lifeline_consumer_lag{group=${group}}[15m])) > 0`,
      for: '15m', labels: { ...base, severity: 'ticket', component: component.label },
      annotations: { summary: `${component.label} is {{ $value }} records behind and falling further`, runbook: runbook('odoo-down') },
    });
  }
  if (stateful.length > 0) {
    rules.push({
      alert: 'LifelineRestoreStuck',
      expr: `max by (component) (lifeline_component_up{component=~${oneOf(stateful.map((component) => component.label))}}) == 0 and on (component) sum by (component) (increase(lifeline_store_restored_records_total{component=~${oneOf(stateful.map((component) => component.label))}}[15m])) > 0`,
      for: '15m', labels: { ...base, severity: 'page' },
      annotations: { summary: '{{ $labels.component }} has been restoring its state for 15 minutes and is still not running', runbook: runbook('a-stuck-restore') },
    });
  }
  for (const [connection, components] of odooComponents(topology)) {
    rules.push({
      alert: 'LifelineOdooUnreachable',
      expr: `min by (component) (lifeline_odoo_reachable{component=~${oneOf(components)}}) == 0`,
      for: '2m', labels: { ...base, severity: 'page', connection },
      annotations: { summary: `Odoo (${connection}) is unreachable for {{ $labels.component }}`, runbook: runbook('odoo-down') },
    });
  }
  const sla = slaComponents(topology);
  if (sla.length > 0) {
    rules.push({
      alert: 'LifelineSlaBreaches',
      expr: `sum by (flow) (increase(lifeline_sla_breaches_total{component=~${oneOf(sla)}}[15m])) > 0`,
      labels: { ...base, severity: 'ticket' },
      annotations: { summary: 'flow {{ $labels.flow }}: {{ $value }} transaction(s) breached their deadline in 15 minutes', runbook: runbook('sla-breach-storm') },
    });
  }
  return { groups: [{ name: `lifeline-${app}`, interval: '30s', rules }] };
}

export function alertRulesYaml(topology: Topology, options: AlertingOptions = {}): string {
  return `# Generated by \`lifeline observe rules\` from ${basename(topology.file)}: do not edit, generate again.\n${stringify(alertRules(topology, options), { lineWidth: 0 })}`;
}

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: { type: 'prometheus'; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  fieldConfig: { defaults: { unit: string }; overrides: never[] };
  targets: Array<{ refId: string; expr: string; legendFormat: string }>;
}

/** A Grafana dashboard (schemaVersion 39) of the topology: rates, lag, dead letters, health, Odoo and SLA panels. */
export function dashboard(topology: Topology, options: AlertingOptions = {}): Record<string, unknown> {
  const app = topology.runtime.appId;
  const all = byKind(topology, 'source', 'processor', 'sink').map((component) => component.label);
  const groups = byKind(topology, 'processor', 'sink').map((component) => `${app}.${component.label}`);
  const datasource = { type: 'prometheus' as const, uid: options.datasourceUid ?? 'prometheus' };
  const components = all.length > 0 ? `component=~${oneOf(all)}` : 'component=""';
  const panels: Panel[] = [];
  const add = (title: string, unit: string, expr: string, legendFormat: string): void => {
    const index = panels.length;
    panels.push({
      id: index + 1, type: 'timeseries', title, datasource, gridPos: { h: 8, w: 12, x: (index % 2) * 12, y: Math.floor(index / 2) * 8 },
      fieldConfig: { defaults: { unit }, overrides: [] }, targets: [{ refId: 'A', expr, legendFormat }],
    });
  };
  add('Records in per second', 'ops', `sum by (component) (rate(lifeline_records_in_total{${components}}[5m]))`, '{{component}}');
  add('Records out per second', 'ops', `sum by (component) (rate(lifeline_records_out_total{${components}}[5m]))`, '{{component}}');
  add('Consumer lag (records behind)', 'short', `sum by (group) (lifeline_consumer_lag{group=~${oneOf(groups.length > 0 ? groups : [''])}})`, '{{group}}');
  add('Dead letters (10 min)', 'short', `sum by (component, error_class) (increase(lifeline_records_dead_lettered_total{${components}}[10m]))`, '{{component}} {{error_class}}');
  add('Components up', 'short', `min by (component) (lifeline_component_up{${components}})`, '{{component}}');
  add('Processing time p95', 's', `histogram_quantile(0.95, sum by (component, le) (rate(lifeline_processing_seconds_bucket{${components}}[5m])))`, '{{component}}');
  const odoo = [...odooComponents(topology).values()].flat();
  if (odoo.length > 0) {
    add('Odoo reachable', 'short', `min by (component) (lifeline_odoo_reachable{component=~${oneOf(odoo)}})`, '{{component}}');
    add('Odoo writes per second', 'ops', `sum by (component, outcome) (rate(lifeline_odoo_writes_total{component=~${oneOf(odoo)}}[5m]))`, '{{component}} {{outcome}}');
  }
  const sources = byKind(topology, 'source').map((component) => component.label);
  if (sources.length > 0) {
    add('Partner deliveries rejected (30 min)', 'short', `sum by (partner, reason) (increase(lifeline_partner_deliveries_rejected_total{source=~${oneOf(sources)}}[30m]))`, '{{partner}} {{reason}}');
  }
  const sla = slaComponents(topology);
  if (sla.length > 0) {
    add('SLA breaches (15 min)', 'short', `sum by (flow) (increase(lifeline_sla_breaches_total{component=~${oneOf(sla)}}[15m]))`, '{{flow}}');
    add('Open SLA transactions', 'short', `sum by (flow) (lifeline_sla_open_transactions{component=~${oneOf(sla)}})`, '{{flow}}');
    add('Oldest open SLA transaction', 's', `max by (flow) (lifeline_sla_oldest_open_age_seconds{component=~${oneOf(sla)}})`, '{{flow}}');
  }
  return {
    uid: `lifeline-${app}`.slice(0, 40),
    title: `Lifeline ${app}`,
    description: `Generated by \`lifeline observe dashboard\` from ${basename(topology.file)}.`,
    schemaVersion: 39,
    version: 1,
    editable: false,
    time: { from: 'now-6h', to: 'now' },
    refresh: '30s',
    tags: ['lifeline', app],
    panels,
    templating: { list: [] },
  };
}
