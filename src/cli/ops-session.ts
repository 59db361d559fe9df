import { Option } from 'commander';
import type { Admin, Kafka } from 'kafkajs';
import { LifelineError, errorMessage } from '../errors.ts';
import { AvroSerde } from '../kafka/avro-serde.ts';
import { createKafka } from '../kafka/client.ts';
import { createLogger, kafkaLogCreator } from '../observe/logger.ts';
import { AuditTrail } from '../ops/audit-trail.ts';
import { DEFAULT_PAUSE_TIMING, GroupPauser, type PauseTiming } from '../ops/group-pause.ts';
import {
  authenticate, claimFromEnvironment, isAllowed, loadOperatorDirectory, rolesFor,
  type ControlAction, type Operator, type OperatorDirectory,
} from '../ops/operator-identity.ts';
import { loadTopology } from '../topology/load-topology.ts';
import type { Topology } from '../topology/model.ts';
import { formatTopologyProblem, topologyInvalid, topologyProblemsOf, type TopologyProblem } from '../topology/topology-problem.ts';
import { buildComponentRegistry } from './component-list.ts';

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
 * What an operator command works with: the topology (validated before anything connects), Kafka,
 * the registry, the caller's identity and the audit trail, each opened on first use and closed
 * at the end. Progress goes to stderr, results to stdout.
 */
export class OpsSession {
  readonly topology: Topology;
  private kafkaClient: Kafka | undefined;
  private adminClient: Admin | undefined;
  private serdeInstance: AvroSerde | undefined;
  private auditTrail: AuditTrail | undefined;
  private pauserInstance: GroupPauser | undefined;
  private directory: OperatorDirectory | undefined | null = null;

  constructor(options: TopologyOptions, readonly command: string) {
    // Operators' commands talk to Kafka and the registry only: an unset Odoo key or webhook secret is
    // no reason to refuse them, an unset Kafka or registry credential is.
    const warnings: TopologyProblem[] = [];
    this.topology = loadTopology(options.topology, buildComponentRegistry(), process.env, { unsetSecrets: 'warn', readsKafkaOnly: true, warnings });
    const needed = warnings.filter((warning) => /^connections\.(kafka|registry)\./.test(warning.path));
    if (needed.length > 0) throw topologyInvalid(needed);
  }

  get kafka(): Kafka {
    // kafkajs's own logging would interleave with the command's output; errors reach the caller as exceptions.
    this.kafkaClient ??= createKafka(this.topology.kafka, kafkaLogCreator(createLogger({ level: process.env.LIFELINE_CLI_LOG_LEVEL ?? 'silent', destination: process.stderr })));
    return this.kafkaClient;
  }

  async admin(): Promise<Admin> {
    if (!this.adminClient) {
      const admin = this.kafka.admin();
      await admin.connect();
      this.adminClient = admin;
    }
    return this.adminClient;
  }

  get serde(): AvroSerde {
    this.serdeInstance ??= new AvroSerde(this.topology.registry);
    return this.serdeInstance;
  }

  async audit(): Promise<AuditTrail> {
    this.auditTrail ??= new AuditTrail(this.kafka, await this.admin(), this.serde, this.command);
    return this.auditTrail;
  }

  async pauser(timing: Partial<PauseTiming> = {}): Promise<GroupPauser> {
    this.pauserInstance ??= new GroupPauser(this.kafka, await this.admin(), (line) => this.progress(line), { ...DEFAULT_PAUSE_TIMING, ...timing });
    return this.pauserInstance;
  }

  progress(line: string): void {
    process.stderr.write(`lifeline: ${line}\n`);
  }

  operatorDirectory(): OperatorDirectory | undefined {
    if (this.directory === null) this.directory = loadOperatorDirectory();
    return this.directory;
  }

  /**
   * The caller, if their identity and token check out and a role allows `action`. A refusal is
   * audited (with the claimed identity, never the token) and thrown as LL_NOT_AUTHORISED.
   */
  async authorise(action: ControlAction, target: string, context: { reason?: string; parameters?: unknown } = {}): Promise<Operator> {
    const authentication = authenticate(this.operatorDirectory(), claimFromEnvironment());
    if (!authentication.ok) return this.refuse(action, target, authentication.claimed, [], authentication.why, context);
    const { operator } = authentication;
    if (!isAllowed(operator, action)) {
      return this.refuse(action, target, operator.identity, operator.roles,
        `${operator.identity} (${operator.roles.join(', ')}) may not ${action}; it needs one of the roles ${rolesFor(action).join(', ')}`, context);
    }
    return operator;
  }

  /** Audits a refusal and throws it. */
  async refuse(action: string, target: string, who: string, roles: readonly string[], why: string, context: { reason?: string; parameters?: unknown } = {}): Promise<never> {
    const audit = await this.audit();
    await audit.record({
      who, roles, action, target, result: 'refused', detail: why,
      ...(context.reason !== undefined ? { reason: context.reason } : {}),
      ...(context.parameters !== undefined ? { parameters: context.parameters } : {}),
    });
    throw new LifelineError('LL_NOT_AUTHORISED', `refused: ${why}`);
  }

  /**
   * Runs a control action between two audit entries: `started` (acknowledged before anything is
   * done, so even a crash mid-way leaves a trace) and `succeeded` or `failed` (acknowledged before
   * the command reports).
   */
  async audited<T>(operator: Operator, action: string, target: string, context: { reason?: string; parameters?: unknown },
    run: (actionId: string) => Promise<{ value: T; detail: string; parameters?: unknown }>): Promise<T> {
    const audit = await this.audit();
    const actionId = audit.newActionId();
    const base = {
      actionId, who: operator.identity, roles: operator.roles, action, target,
      ...(context.reason !== undefined ? { reason: context.reason } : {}),
    };
    await audit.record({ ...base, parameters: context.parameters ?? {}, result: 'started' });
    let outcome: { value: T; detail: string; parameters?: unknown };
    try {
      outcome = await run(actionId);
    } catch (error) {
      await audit.record({ ...base, parameters: context.parameters ?? {}, result: 'failed', detail: errorMessage(error) });
      throw error;
    }
    await audit.record({ ...base, parameters: outcome.parameters ?? context.parameters ?? {}, result: 'succeeded', detail: outcome.detail });
    return outcome.value;
  }

  async close(): Promise<void> {
    await this.pauserInstance?.close();
    await this.auditTrail?.close();
    await this.adminClient?.disconnect().catch(() => undefined);
  }
}

/** Runs an operator command: opens a session, maps failures to exit codes and messages, always closes. */
export async function runOpsCommand(options: TopologyOptions, command: string, body: (session: OpsSession) => Promise<number | void>): Promise<void> {
  let session: OpsSession | undefined;
  try {
    session = new OpsSession(options, command);
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

/** `--since 2026-11-24T10:00:00Z`: an ISO 8601 time (without a zone, local time, as kafka-consumer-groups reads it). */
export function parseTime(text: string, option: string): number {
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new LifelineError('LL_CONFIG_INVALID', `${option} must be an ISO 8601 date-time like 2026-11-24T10:00:00Z (got "${text}")`);
  return at;
}

export function parseInteger(text: string, option: string, minimum = Number.MIN_SAFE_INTEGER): number {
  if (!/^-?\d+$/.test(text.trim()) || Number(text) < minimum) {
    throw new LifelineError('LL_CONFIG_INVALID', `${option} must be a whole number${minimum > Number.MIN_SAFE_INTEGER ? ` ≥ ${minimum}` : ''} (got "${text}")`);
  }
  return Number(text);
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
