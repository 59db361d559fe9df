import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { alertRulesYaml, dashboard, type AlertingOptions } from '../observe/alerting.ts';
import { loadTopology } from '../topology/load-topology.ts';
import type { Topology } from '../topology/model.ts';
import { formatTopologyProblem, topologyProblemsOf } from '../topology/topology-problem.ts';
import { buildComponentRegistry } from './component-list.ts';
import { parseInteger } from './ops-session.ts';

interface ObserveOptions {
  readonly topology: string;
  readonly out?: string;
  readonly lagThreshold: string;
  readonly datasource: string;
}

/**
 * `lifeline observe rules|dashboard`: Prometheus alerting rules and a Grafana dashboard generated
 * from topology.yaml (nothing connects). Write them where Prometheus and Grafana provisioning read
 * them (deploy/prometheus, deploy/grafana/dashboards), and generate again when the topology changes.
 */
export function registerObserveCommands(program: Command): void {
  const observe = program.command('observe').description('monitoring generated from topology.yaml: Prometheus alerting rules and a Grafana dashboard (nothing connects)');
  const common = (command: Command): Command => command
    .addOption(new Option('--topology <file>', 'the topology file').default('topology.yaml'))
    .option('--out <file>', 'write to this file instead of stdout')
    .option('--lag-threshold <records>', 'records behind above which a growing lag alerts', '1000')
    .option('--datasource <uid>', 'the Grafana Prometheus datasource uid', 'prometheus');

  common(observe.command('rules')
    .description('Prometheus alerting rules for the topology: component down, flow stopped with a backlog, lag growing, dead letters, Odoo unreachable, SLA breaches, stuck restore (check them with `promtool check rules`)'))
    .action((options: ObserveOptions) => emit(options, (topology, settings) => alertRulesYaml(topology, settings)));

  common(observe.command('dashboard')
    .description('a Grafana dashboard (JSON, schemaVersion 39) for the topology: rates, lag, dead letters, health, Odoo, partner rejections, SLA'))
    .action((options: ObserveOptions) => emit(options, (topology, settings) => `${JSON.stringify(dashboard(topology, settings), null, 2)}\n`));
}

function emit(options: ObserveOptions, render: (topology: Topology, settings: AlertingOptions) => string): void {
  let topology: Topology;
  try {
    topology = loadTopology(options.topology, buildComponentRegistry(), process.env, { unsetSecrets: 'warn', readsKafkaOnly: true });
  } catch (error) {
    const problems = topologyProblemsOf(error);
    if (!problems) throw error;
    for (const problem of problems) console.error(formatTopologyProblem(problem));
    console.error(`lifeline: ${options.topology} is invalid`);
    process.exitCode = 2;
    return;
  }
  const text = render(topology, { lagThreshold: parseInteger(options.lagThreshold, '--lag-threshold', 1), datasourceUid: options.datasource });
  if (options.out) {
    writeFileSync(options.out, text);
    console.error(`lifeline: wrote ${options.out}`);
  } else {
    process.stdout.write(text);
  }
}
