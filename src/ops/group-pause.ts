import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { LifelineError } from '../errors.ts';
import { ensureTopics } from '../kafka/topic-admin.ts';
import { readTopicRanges } from '../kafka/topic-reader.ts';
import {
  CONTROL_TOPIC, CONTROL_TOPIC_RETENTION_MS, encodeControlMessage, parseControlMessage,
  type ControlAcknowledgement, type ControlMessage,
} from '../runtime/control-protocol.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';

export interface PauseTiming {
  /** How long to wait for any Lifeline runtime to acknowledge; silence means nobody of ours owns the group. */
  readonly ackTimeoutMs: number;
  /** How long the group may take to become empty once paused. */
  readonly emptyTimeoutMs: number;
  /** How long the hosts stay paused if no resume comes (the CLI died, or `groups pause --for`). */
  readonly leaseMs: number;
  /** How long to wait for the hosts to confirm a resume. */
  readonly resumeTimeoutMs: number;
}

export const DEFAULT_PAUSE_TIMING: PauseTiming = Object.freeze({ ackTimeoutMs: 10_000, emptyTimeoutMs: 120_000, leaseMs: 300_000, resumeTimeoutMs: 60_000 });

/** How long an empty group waits for the pause acknowledgement that names who paused it. */
const ACK_AFTER_EMPTY_GRACE_MS = 3000;
const EMPTY_STATES = new Set(['Empty', 'Dead']);

export interface GroupMembership {
  readonly state: string;
  readonly members: number;
}

export interface PausedGroup {
  readonly group: string;
  readonly commandId: string;
  readonly leaseUntil: number;
  /** The `lifeline run` processes that paused, with the components they host. */
  readonly pausedBy: readonly ControlAcknowledgement[];
}

/**
 * The operator's side of the control topic: asks the `lifeline run` processes owning a group to
 * leave it, waits until Kafka reports the group empty, and lets them rejoin afterwards. A group
 * that stays active with nobody of ours answering belongs to another application and is refused.
 */
export class GroupPauser {
  private producer: Producer | undefined;
  private readonly acks: ControlAcknowledgement[] = [];
  private listening: { abort: AbortController; done: Promise<void> } | undefined;

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly progress: (line: string) => void,
    private readonly timing: PauseTiming = DEFAULT_PAUSE_TIMING,
  ) {}

  async membership(group: string): Promise<GroupMembership> {
    const { groups } = await this.admin.describeGroups([group]);
    const described = groups[0];
    return { state: described?.state ?? 'Dead', members: described?.members.length ?? 0 };
  }

  /** Pauses the group's Lifeline hosts and waits until the group is empty; throws LL_GROUP_ACTIVE (after resuming) otherwise. */
  async pause(group: string, requestedBy: string, leaseMs = this.timing.leaseMs): Promise<PausedGroup> {
    await this.listen();
    const commandId = randomUUID();
    const leaseUntil = Date.now() + leaseMs;
    await this.send({ type: 'pause', command_id: commandId, group, requested_by: requestedBy, lease_until: leaseUntil, at: Date.now() });
    this.progress(`asked the lifeline runtimes owning ${group} to pause (command ${commandId})`);
    const started = Date.now();
    let lastReport = 0;
    let emptySince: number | undefined;
    for (;;) {
      const acks = this.acksFor(commandId);
      const failed = acks.find((ack) => ack.state === 'failed');
      // A runtime that resumed already saw the lease run out: the group will not become empty for us.
      const resumedEarly = acks.find((ack) => ack.state === 'resumed');
      const membership = await this.membership(group);
      if (failed || resumedEarly) {
        await this.resume({ group, commandId, leaseUntil, pausedBy: acks }, requestedBy).catch(() => undefined);
        throw new LifelineError('LL_GROUP_ACTIVE', failed
          ? `${failed.instance} could not pause ${group}: ${failed.detail}`
          : `the pause lease of ${group} ran out before the group was empty (${resumedEarly?.instance}: ${resumedEarly?.detail})`);
      }
      if (EMPTY_STATES.has(membership.state)) {
        const pausedBy = acks.filter((ack) => ack.state === 'paused');
        // A runtime acknowledges after its consumer has left, so the group can look empty a moment
        // before the acknowledgement arrives: give it a few seconds, to report who paused.
        emptySince ??= Date.now();
        if (pausedBy.length === 0 && Date.now() - emptySince < ACK_AFTER_EMPTY_GRACE_MS) {
          await sleep(200);
          continue;
        }
        this.progress(`${group} is empty${pausedBy.length > 0 ? ` (paused by ${pausedBy.map((ack) => ack.instance).join(', ')})` : ''}`);
        return { group, commandId, leaseUntil, pausedBy };
      }
      const waited = Date.now() - started;
      const noLifelineOwner = acks.length === 0 && waited > this.timing.ackTimeoutMs;
      if (noLifelineOwner || waited > this.timing.emptyTimeoutMs) {
        await this.resume({ group, commandId, leaseUntil, pausedBy: acks }, requestedBy).catch(() => undefined);
        throw new LifelineError('LL_GROUP_ACTIVE', noLifelineOwner
          ? `${group} has ${membership.members} active member(s) (state ${membership.state}) and no lifeline runtime acknowledged the pause within ${Math.round(this.timing.ackTimeoutMs / 1000)}s: it belongs to another application; stop its consumers first`
          : `${group} did not become empty within ${Math.round(this.timing.emptyTimeoutMs / 1000)}s (state ${membership.state}, ${membership.members} member(s)): some members are not lifeline runtimes; stop them first`,
        { details: { group, state: membership.state, members: membership.members } });
      }
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        this.progress(`waiting for ${group} to become empty: state ${membership.state}, ${membership.members} member(s), ${acks.length} acknowledgement(s)`);
      }
      await sleep(300);
    }
  }

  /** Lets the hosts rejoin; returns the processes that confirmed (any missing resume on their own when the lease ends). */
  async resume(paused: PausedGroup, requestedBy: string, waitForAnyMs?: number): Promise<ControlAcknowledgement[]> {
    await this.listen();
    await this.send({ type: 'resume', command_id: paused.commandId, group: paused.group, requested_by: requestedBy, at: Date.now() });
    const expected = new Set(paused.pausedBy.map((ack) => ack.instance));
    const deadline = Date.now() + (expected.size > 0 ? this.timing.resumeTimeoutMs : waitForAnyMs ?? 0);
    for (;;) {
      const resumed = this.acksFor(paused.commandId).filter((ack) => ack.state === 'resumed');
      const confirmed = new Set(resumed.map((ack) => ack.instance));
      const allBack = expected.size > 0 ? [...expected].every((instance) => confirmed.has(instance)) : resumed.length > 0;
      if (allBack || Date.now() > deadline) {
        if (!allBack && expected.size > 0) this.progress(`not every runtime confirmed the resume of ${paused.group}; the rest resume when the pause lease ends`);
        return resumed;
      }
      await sleep(200);
    }
  }

  /** Resumes a group paused earlier (e.g. by `groups pause`), whoever paused it. */
  async resumeGroup(group: string, requestedBy: string): Promise<ControlAcknowledgement[]> {
    return this.resume({ group, commandId: randomUUID(), leaseUntil: 0, pausedBy: [] }, requestedBy, this.timing.ackTimeoutMs);
  }

  /**
   * Runs `action` on an empty group: at once when the group is empty already, otherwise between a
   * pause and a resume of its Lifeline hosts.
   */
  async withGroupEmpty<T>(group: string, requestedBy: string, action: (paused: PausedGroup | undefined) => Promise<T>): Promise<T> {
    const membership = await this.membership(group);
    if (EMPTY_STATES.has(membership.state)) return action(undefined);
    const paused = await this.pause(group, requestedBy);
    try {
      if (Date.now() > paused.leaseUntil - 5000) throw new LifelineError('LL_GROUP_ACTIVE', `the pause lease of ${group} ran out before the action could run`);
      return await action(paused);
    } finally {
      const resumed = await this.resume(paused, requestedBy);
      this.progress(`${group} resumed by ${resumed.length} runtime(s)`);
    }
  }

  private acksFor(commandId: string): ControlAcknowledgement[] {
    return this.acks.filter((ack) => ack.command_id === commandId);
  }

  /** Reads acknowledgements from the current end of the control topic on, until close(). */
  private async listen(): Promise<void> {
    if (this.listening) return;
    await ensureTopics(this.admin, [{ name: CONTROL_TOPIC, partitions: 1, retentionMs: CONTROL_TOPIC_RETENTION_MS }]);
    const [end] = await fetchTopicOffsetsSerially(this.admin, CONTROL_TOPIC);
    const abort = new AbortController();
    const done = readTopicRanges(this.kafka, CONTROL_TOPIC, [{ partition: 0, from: BigInt(end?.offset ?? '0') }], (message) => {
      const parsed = parseControlMessage(message.value);
      if (parsed?.type === 'ack') this.acks.push(parsed);
    }, { signal: abort.signal });
    done.catch(() => undefined);
    this.listening = { abort, done };
  }

  private async send(message: ControlMessage): Promise<void> {
    if (!this.producer) {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
    }
    await this.producer.send({ topic: CONTROL_TOPIC, acks: -1, messages: [encodeControlMessage(message)] });
  }

  async close(): Promise<void> {
    this.listening?.abort.abort();
    await this.listening?.done.catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
  }
}
