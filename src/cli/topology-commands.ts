import { Option, type Command } from 'commander';
import { describeTopology } from '../topology/describe-topology.ts';
import { loadTopology } from '../topology/load-topology.ts';
import { toDot, toMermaid } from '../topology/topology-graph.ts';
import { formatTopologyProblem, topologyProblemsOf, type TopologyProblem } from '../topology/topology-problem.ts';
import { buildComponentRegistry } from './component-list.ts';

const DEFAULT_TOPOLOGY = 'topology.yaml';

interface TopologyOptions {
  readonly topology: string;
}

/**
 * `lifeline topology validate|describe|graph`: check and show topology.yaml. None of these
 * connects to Kafka, the registry or Odoo — they read the file and the schema files it names.
 */
export function registerTopologyCommands(program: Command): void {
  const topology = program.command('topology').description('check and show topology.yaml; nothing connects');
  const fileOption = (): Option => new Option('--topology <file>', 'the topology file').default(DEFAULT_TOPOLOGY);

  topology.command('validate')
    .description('check topology.yaml: shape, component config, topics, writers, co-partitioning, schemas, secrets')
    .addOption(fileOption())
    .option('--json', 'print the result as JSON')
    .option('--strict', 'an unset secret is a problem (without it, a warning: `lifeline run` needs them, validation does not)')
    .action((options: TopologyOptions & { json?: boolean; strict?: boolean }) => {
      const registry = buildComponentRegistry();
      try {
        const secretWarnings: TopologyProblem[] = [];
        const loaded = loadTopology(options.topology, registry, process.env, { unsetSecrets: options.strict ? 'error' : 'warn', warnings: secretWarnings });
        const topics = Object.keys(loaded.topics).length;
        const components = Object.keys(loaded.components).length;
        const warnings = [...secretWarnings, ...(loaded.warnings ?? [])];
        if (options.json) {
          console.log(JSON.stringify({ valid: true, file: options.topology, topics, components, problems: [], warnings }, null, 2));
        } else {
          for (const warning of warnings) console.error(`warning: ${formatTopologyProblem(warning)}`);
          console.log(`${options.topology} is valid: ${count(topics, 'topic')}, ${count(components, 'component')}${warnings.length > 0 ? ` (${count(warnings.length, 'warning')})` : ''}`);
        }
      } catch (error) {
        const problems = topologyProblemsOf(error);
        if (!problems) throw error;
        if (options.json) {
          console.log(JSON.stringify({ valid: false, file: options.topology, problems }, null, 2));
        } else {
          for (const problem of problems) console.error(formatTopologyProblem(problem));
          console.error(`${options.topology} is invalid: ${count(problems.length, 'problem')}`);
        }
        process.exitCode = 1;
      }
    });

  topology.command('describe')
    .description('print the components (inputs → outputs, guarantee, stores) and the topic catalogue')
    .addOption(fileOption())
    .action((options: TopologyOptions) => {
      const registry = buildComponentRegistry();
      process.stdout.write(describeTopology(loadTopology(options.topology, registry, process.env, { unsetSecrets: 'warn', readsKafkaOnly: true }), registry));
    });

  topology.command('graph')
    .description('print the flow of topics and components as a Mermaid or Graphviz DOT graph')
    .addOption(fileOption())
    .addOption(new Option('--format <format>', 'graph language').choices(['mermaid', 'dot']).default('mermaid'))
    .action((options: TopologyOptions & { format: 'mermaid' | 'dot' }) => {
      const loaded = loadTopology(options.topology, buildComponentRegistry(), process.env, { unsetSecrets: 'warn', readsKafkaOnly: true });
      process.stdout.write(options.format === 'dot' ? toDot(loaded) : toMermaid(loaded));
    });
}

function count(amount: number, noun: string): string {
  return `${amount} ${noun}${amount === 1 ? '' : 's'}`;
}
