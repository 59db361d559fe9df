import { LifelineError } from '../errors.ts';

/** One thing wrong with a topology file, pointing at the YAML node that is wrong. */
export interface TopologyProblem {
  /** The file as the caller named it, so messages read like the command line that ran. */
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
  /** Dotted path of the offending value, e.g. `processors.charge_dedup.config.ttl`; empty for the whole file. */
  readonly path: string;
  readonly message: string;
}

/** `topology.yaml:42:7 processors.charge_dedup.config.ttl: must match duration like 15m, 7d` */
export function formatTopologyProblem(problem: TopologyProblem): string {
  const location = `${problem.file}:${problem.line}:${problem.column}`;
  return problem.path ? `${location} ${problem.path}: ${problem.message}` : `${location}: ${problem.message}`;
}

/** Problems are reported in file order, so the output reads top to bottom like the file. */
export function sortTopologyProblems(problems: readonly TopologyProblem[]): TopologyProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.column - b.column || a.path.localeCompare(b.path));
}

export function topologyInvalid(problems: readonly TopologyProblem[]): LifelineError {
  const sorted = sortTopologyProblems(problems);
  return new LifelineError('LL_TOPOLOGY_INVALID', sorted.map(formatTopologyProblem).join('\n'), { details: { problems: sorted } });
}

/** The problems carried by an LL_TOPOLOGY_INVALID error, or undefined for any other error. */
export function topologyProblemsOf(error: unknown): readonly TopologyProblem[] | undefined {
  if (!(error instanceof LifelineError) || error.code !== 'LL_TOPOLOGY_INVALID') return undefined;
  const problems = error.details.problems;
  return Array.isArray(problems) ? (problems as TopologyProblem[]) : undefined;
}
