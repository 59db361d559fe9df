import type { Admin, Kafka } from 'kafkajs';
import { LifelineError, errorMessage } from '../errors.ts';
import { AvroSerde } from '../kafka/avro-serde.ts';
import { createKafka } from '../kafka/client.ts';
import { createLogger, kafkaLogCreator } from '../observe/logger.ts';
import type { Topology } from '../topology/model.ts';
import { AuditTrail } from './audit-trail.ts';
import { DEFAULT_PAUSE_TIMING, GroupPauser, type PauseTiming } from './group-pause.ts';
import {
  authenticate, claimFromEnvironment, isAllowed, loadOperatorDirectory, rolesFor,
  type ControlAction, type Operator, type OperatorDirectory,
} from './operator-identity.ts';

/**
 * What an operator command works with: the topology (validated before anything connects), Kafka,
 * the registry, the caller's identity and the audit trail, each opened on first use and closed
 * at the end. Progress goes to stderr unless the caller says otherwise. The CLI and the console
 * both act through it, so an action leaves the same audit records whichever way it was taken.
 */
export class OpsSession {
  readonly topology: Topology;
  private kafkaClient: Kafka | undefined;
  private adminClient: Admin | undefined;
  private serdeInstance: AvroSerde | undefined;
  private auditTrail: AuditTrail | undefined;
  private pauserInstance: GroupPauser | undefined;
  private directory: OperatorDirectory | undefined | null = null;

  /** `topology` is loaded and validated by the caller (the CLI, with the component registry it composes). */
  constructor(topology: Topology, readonly command: string, private readonly progressSink: (line: string) => void = (line) => process.stderr.write(`lifeline: ${line}\n`)) {
    this.topology = topology;
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
    this.progressSink(line);
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
