import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { deleteOwnGroup, fetchTopicOffsetsSerially } from '../kafka/client.ts';
import {
  CONTROL_TOPIC, encodeControlMessage, parseControlMessage,
  type ControlAcknowledgement, type PauseCommand, type ResumeCommand,
} from './control-protocol.ts';

/** A host whose consumer group an operator may pause and resume (processor and sink hosts). */
export interface ControllableHost {
  readonly label: string;
  readonly groupId: string;
  /** Leaves the group: the batch in flight and open transactions finish first. */
  suspendConsumer(): Promise<void>;
  /** Joins the group again; partitions are assigned and state restored as after a start. */
  resumeConsumer(): Promise<void>;
}

interface PausedGroup {
  readonly commandId: string;
  readonly leaseTimer: NodeJS.Timeout;
}

/**
 * Listens on `_lifeline.control` for pause and resume commands naming a consumer group this
 * process hosts, suspends or resumes those hosts, and acknowledges on the same topic. Commands for
 * other groups are ignored: another process (or nobody) answers them. Work on one group is
 * serialised, so a resume never overtakes the pause before it.
 */
export class ControlListener {
  readonly instance = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private get groupId(): string {
    return `_lifeline.control.${this.options.appId}.${this.instance}`;
  }
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly paused = new Map<string, PausedGroup>();
  private readonly queues = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(private readonly options: {
    readonly kafka: Kafka;
    readonly admin: Admin;
    readonly logger: Logger;
    readonly appId: string;
    readonly hosts: () => readonly ControllableHost[];
  }) {}

  /** Starts reading at the current end of the control topic: earlier commands are history. */
  async start(): Promise<void> {
    const { kafka, admin } = this.options;
    const [end] = await fetchTopicOffsetsSerially(admin, CONTROL_TOPIC);
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    // A group of its own per process: every process must see every command.
    this.consumer = kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 250, readUncommitted: false });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: CONTROL_TOPIC, fromBeginning: false });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        const command = parseControlMessage(message.value);
        if (!command || command.type === 'ack') return;
        this.enqueue(command.group, () => (command.type === 'pause' ? this.pause(command) : this.resume(command)));
      },
    });
    if (end) this.consumer.seek({ topic: CONTROL_TOPIC, partition: end.partition, offset: end.offset });
    this.options.logger.info({ instance: this.instance }, 'listening for operator control commands');
  }

  private hostsOf(group: string): ControllableHost[] {
    return this.options.hosts().filter((host) => host.groupId === group);
  }

  private enqueue(group: string, work: () => Promise<void>): void {
    if (this.hostsOf(group).length === 0) return;
    const previous = this.queues.get(group) ?? Promise.resolve();
    const next = previous.then(work).catch((error: unknown) => {
      this.options.logger.error({ group, err: errorMessage(error) }, 'control command failed');
    });
    this.queues.set(group, next);
  }

  private async pause(command: PauseCommand): Promise<void> {
    const hosts = this.hostsOf(command.group);
    const leaseMs = Math.max(0, command.lease_until - Date.now());
    const existing = this.paused.get(command.group);
    if (existing) clearTimeout(existing.leaseTimer);
    // The lease runs from now: if the operator's command never resumes us, we resume ourselves.
    const leaseTimer = setTimeout(() => this.enqueue(command.group, () => this.resumeHosts(command.group, command.command_id, 'the pause lease expired')), leaseMs);
    leaseTimer.unref();
    this.paused.set(command.group, { commandId: command.command_id, leaseTimer });
    this.options.logger.warn({ group: command.group, by: command.requested_by, leaseMs }, 'pausing consumer group for an operator');
    try {
      for (const host of hosts) await host.suspendConsumer();
      await this.acknowledge(command, hosts, 'paused', `left the group; lease ${Math.round(leaseMs / 1000)}s`);
    } catch (error) {
      await this.acknowledge(command, hosts, 'failed', errorMessage(error));
      throw error;
    }
  }

  private async resume(command: ResumeCommand): Promise<void> {
    await this.resumeHosts(command.group, command.command_id, `resumed by ${command.requested_by}`);
  }

  private async resumeHosts(group: string, commandId: string, why: string): Promise<void> {
    if (this.stopped) return;
    const paused = this.paused.get(group);
    if (paused) clearTimeout(paused.leaseTimer);
    this.paused.delete(group);
    const hosts = this.hostsOf(group);
    try {
      for (const host of hosts) await host.resumeConsumer();
      this.options.logger.info({ group, why }, 'consumer group resumed');
      await this.acknowledge({ command_id: commandId, group }, hosts, 'resumed', why);
    } catch (error) {
      await this.acknowledge({ command_id: commandId, group }, hosts, 'failed', errorMessage(error));
      throw error;
    }
  }

  private async acknowledge(command: { command_id: string; group: string }, hosts: readonly ControllableHost[], state: ControlAcknowledgement['state'], detail: string): Promise<void> {
    const ack: ControlAcknowledgement = {
      type: 'ack', command_id: command.command_id, group: command.group, instance: this.instance,
      components: hosts.map((host) => host.label), state, detail, at: Date.now(),
    };
    await this.producer?.send({ topic: CONTROL_TOPIC, acks: -1, messages: [encodeControlMessage(ack)] });
  }

  /** Stops listening; paused hosts stay as they are (the runtime is stopping them anyway). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const paused of this.paused.values()) clearTimeout(paused.leaseTimer);
    this.paused.clear();
    await this.consumer?.disconnect().catch(() => undefined);
    await Promise.allSettled([...this.queues.values()]);
    await this.producer?.disconnect().catch(() => undefined);
    if (this.consumer) await deleteOwnGroup(this.options.kafka, this.groupId);
  }
}
