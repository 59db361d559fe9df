import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { LifelineError, errorMessage } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { readTopicRanges, wholeTopicRanges } from '../kafka/topic-reader.ts';
import { AUDIT_TOPIC, prepareOpsTopic } from './ops-topics.ts';

export type AuditResult = 'started' | 'succeeded' | 'failed' | 'refused';

/** One entry of ops.audit.v1 (schemas/ops/audit_event.avsc). */
export interface AuditEvent {
  readonly id: string;
  readonly action_id: string;
  /** Epoch milliseconds. */
  readonly at: number;
  readonly who: string;
  readonly roles: readonly string[];
  readonly action: string;
  readonly target: string;
  readonly reason: string | null;
  /** JSON. */
  readonly parameters: string;
  readonly result: AuditResult;
  readonly detail: string;
  readonly client: string;
}

export interface AuditEntryInput {
  readonly actionId?: string;
  readonly who: string;
  readonly roles?: readonly string[];
  readonly action: string;
  readonly target: string;
  readonly reason?: string;
  readonly parameters?: unknown;
  readonly result: AuditResult;
  readonly detail?: string;
}

export interface AuditFilter {
  readonly action?: string;
  readonly who?: string;
  readonly target?: string;
  readonly result?: AuditResult;
  readonly since?: number;
  readonly until?: number;
}

/**
 * The audit trail: every control action, written to ops.audit.v1 and acknowledged by all in-sync
 * replicas before `record` returns, so a command never reports success without its entry.
 */
export class AuditTrail {
  private producer: Producer | undefined;
  private readonly client: string;

  constructor(private readonly kafka: Kafka, private readonly admin: Admin, private readonly serde: AvroSerde, command = 'lifeline') {
    this.client = `${hostname()} pid ${process.pid} ${command}`.slice(0, 200);
  }

  newActionId(): string {
    return randomUUID();
  }

  async record(entry: AuditEntryInput): Promise<AuditEvent> {
    const event: AuditEvent = {
      id: randomUUID(),
      action_id: entry.actionId ?? randomUUID(),
      at: Date.now(),
      who: entry.who,
      roles: [...(entry.roles ?? [])],
      action: entry.action,
      target: entry.target,
      reason: entry.reason ?? null,
      parameters: JSON.stringify(entry.parameters ?? {}),
      result: entry.result,
      detail: (entry.detail ?? '').slice(0, 4000),
      client: this.client,
    };
    try {
      await prepareOpsTopic(this.admin, this.serde, AUDIT_TOPIC);
      if (!this.producer) {
        this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
        await this.producer.connect();
      }
      const value = await this.serde.encode(AUDIT_TOPIC, event);
      await this.producer.send({ topic: AUDIT_TOPIC, acks: -1, messages: [{ key: event.target, value, timestamp: String(event.at) }] });
    } catch (error) {
      throw new LifelineError('LL_AUDIT_FAILED', `could not write the audit entry for ${entry.action} on ${entry.target}: ${errorMessage(error)}`, { cause: error });
    }
    return event;
  }

  /** Entries as they stand now, oldest first, filtered. */
  async list(filter: AuditFilter = {}): Promise<AuditEvent[]> {
    const topics = await this.admin.listTopics();
    if (!topics.includes(AUDIT_TOPIC)) return [];
    const events: AuditEvent[] = [];
    const since = filter.since;
    await readTopicRanges(this.kafka, AUDIT_TOPIC, await wholeTopicRanges(this.admin, AUDIT_TOPIC), async (message) => {
      if (since !== undefined && Number(message.timestamp) < since - 60_000) return; // cheap skip before decoding
      const event = (await this.serde.decode<AuditEvent>(message.value)).value;
      if (matches(event, filter)) events.push(event);
    });
    return events.sort((a, b) => a.at - b.at);
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
  }
}

function matches(event: AuditEvent, filter: AuditFilter): boolean {
  if (filter.action && event.action !== filter.action && !event.action.startsWith(`${filter.action}.`)) return false;
  if (filter.who && event.who !== filter.who) return false;
  if (filter.target && event.target !== filter.target) return false;
  if (filter.result && event.result !== filter.result) return false;
  if (filter.since !== undefined && event.at < filter.since) return false;
  if (filter.until !== undefined && event.at > filter.until) return false;
  return true;
}
