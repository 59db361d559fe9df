import { Option } from 'commander';
import { LifelineError, errorMessage } from '../errors.ts';
import { OpsSession } from '../ops/ops-session.ts';
import { loadTopology } from '../topology/load-topology.ts';
import type { Topology } from '../topology/model.ts';
import { formatTopologyProblem, topologyInvalid, topologyProblemsOf, type TopologyProblem } from '../topology/topology-problem.ts';
import { buildComponentRegistry } from './component-list.ts';

export { OpsSession } from '../ops/ops-session.ts';
export { parseInteger, parseTime } from '../ops/option-values.ts';

/** Exit codes of the operator commands (also in the README). */
export const EXIT_CODES = {
  ok: 0,
  failed: 1,
  /** Bad input: options, topology, operators file, an impossible reset. */
  invalid: 2,
  /** Not authorised; the refusal is in the audit trail. */
  refused: 3,
  /** The cluster is not in a state that allows it: an active group owned elsewhere, a plan already executed. */
  conflict: 4,
} as const;

const EXIT_BY_CODE: Readonly<Record<string, number>> = {
  LL_NOT_AUTHORISED: EXIT_CODES.refused,
  LL_GROUP_ACTIVE: EXIT_CODES.conflict,
  LL_PLAN_INVALID: EXIT_CODES.conflict,
  LL_OFFSETS_INVALID: EXIT_CODES.invalid,
  LL_TOPOLOGY_INVALID: EXIT_CODES.invalid,
  LL_CONFIG_INVALID: EXIT_CODES.invalid,
  LL_OPERATORS_INVALID: EXIT_CODES.invalid,
};

export function topologyOption(): Option {
  return new Option('--topology <file>', 'the topology file (connections and the topic catalogue)').default('topology.yaml');
}

export interface TopologyOptions {
  readonly topology: string;
}

/**
 * Opens an operator session on a topology file, validated before anything connects. The console
 * asks for `connections` too (it links to Odoo records: it needs the Odoo URL, never calls Odoo).
 */
export function openOpsSession(options: TopologyOptions, command: string, load: { connections?: boolean } = {}): OpsSession {
  // Operators' commands talk to Kafka and the registry only: an unset Odoo key or webhook secret is
  // no reason to refuse them, an unset Kafka or registry credential is.
  const warnings: TopologyProblem[] = [];
  let topology: Topology;
  try {
    topology = loadTopology(options.topology, buildComponentRegistry(), process.env, { unsetSecrets: 'warn', readsKafkaOnly: !load.connections, warnings });
  } catch (error) {
    // Connections the caller only wanted for their addresses (e.g. an unset ODOO_USERNAME): go on without them.
    const problems = topologyProblemsOf(error);
    if (!load.connections || !problems || !problems.every((problem) => /^connections\./.test(problem.path) && !/^connections\.(kafka|registry)\./.test(problem.path))) throw error;
    warnings.length = 0;
    topology = loadTopology(options.topology, buildComponentRegistry(), process.env, { unsetSecrets: 'warn', readsKafkaOnly: true, warnings });
  }
  const needed = warnings.filter((warning) => /^connections\.(kafka|registry)\./.test(warning.path));
  if (needed.length > 0) throw topologyInvalid(needed);
  return new OpsSession(topology, command);
}

/** Runs an operator command: opens a session, maps failures to exit codes and messages, always closes. */
export async function runOpsCommand(options: TopologyOptions, command: string, body: (session: OpsSession) => Promise<number | void>): Promise<void> {
  let session: OpsSession | undefined;
  try {
    session = openOpsSession(options, command);
    const code = await body(session);
    if (typeof code === 'number') process.exitCode = code;
  } catch (error) {
    const problems = topologyProblemsOf(error);
    if (problems) {
      for (const problem of problems) console.error(formatTopologyProblem(problem));
      console.error(`lifeline: ${options.topology} is invalid`);
    } else {
      console.error(`lifeline: ${errorMessage(error)}`);
    }
    process.exitCode = error instanceof LifelineError ? (EXIT_BY_CODE[error.code] ?? EXIT_CODES.failed) : EXIT_CODES.failed;
  } finally {
    await session?.close();
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_key, field: unknown) => (typeof field === 'bigint' ? field.toString() : field), 2)}\n`);
}

/** A fixed-width table for people; --json gives the same data for machines. */
export function printTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(headers), ...rows.map(line)].join('\n')}\n`);
}
