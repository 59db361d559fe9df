import { randomBytes } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import { LifelineError } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { readTopicRanges, wholeTopicRanges } from '../kafka/topic-reader.ts';
import type { DeadLetterFilter } from './dead-letter-replay.ts';
import { prepareOpsTopic, REPLAY_PLANS_TOPIC } from './ops-topics.ts';

export type ReplayPlanState = 'planned' | 'executing' | 'executed' | 'failed' | 'rejected';
export type ReplayPlanKind = 'offsets' | 'dead_letters';

/** A record of ops.replay-plans.v1 (schemas/ops/replay_plan.avsc); the latest per id is the plan's state. */
export interface ReplayPlan {
  readonly id: string;
  readonly state: ReplayPlanState;
  readonly kind: ReplayPlanKind;
  readonly target: string;
  /** JSON of OffsetsPlanSpec or DeadLettersPlanSpec. */
  readonly spec: string;
  readonly summary: string;
  readonly record_count: number;
  readonly affected_components: readonly string[];
  readonly sinks: readonly string[];
  readonly reason: string;
  readonly planned_by: string;
  readonly planned_at: number;
  readonly auto_approved: boolean;
  readonly approved_by: string | null;
  readonly updated_at: number;
  readonly result_detail: string;
}

/** An offsets plan holds concrete targets, so the approver executes exactly what was reviewed. */
export interface OffsetsPlanSpec {
  readonly group: string;
  readonly request: string;
  readonly partitions: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly current: string | null; readonly target: string }>;
}

/** A dead-letter plan replays what matched the filter when it was made: bounded by the end offsets of then. */
export interface DeadLettersPlanSpec {
  readonly component: string;
  readonly dlqTopic: string;
  readonly filter: DeadLetterFilter;
  readonly bounds: Readonly<Record<string, string>>;
  readonly maxAttempts: number;
  readonly max?: number;
}

/** Short enough to type, random enough never to collide: rp-20261124-3fa9c2. */
export function newPlanId(now = new Date()): string {
  return `rp-${now.toISOString().slice(0, 10).replace(/-/g, '')}-${randomBytes(3).toString('hex')}`;
}

export class ReplayPlanStore {
  private producer: Producer | undefined;

  constructor(private readonly kafka: Kafka, private readonly admin: Admin, private readonly serde: AvroSerde) {}

  /** Writes a state of a plan and waits for every in-sync replica. */
  async save(plan: ReplayPlan): Promise<void> {
    await prepareOpsTopic(this.admin, this.serde, REPLAY_PLANS_TOPIC);
    if (!this.producer) {
      this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
      await this.producer.connect();
    }
    await this.producer.send({ topic: REPLAY_PLANS_TOPIC, acks: -1, messages: [{ key: plan.id, value: await this.serde.encode(REPLAY_PLANS_TOPIC, plan) }] });
  }

  /** Every plan in its latest state, newest first. */
  async list(): Promise<ReplayPlan[]> {
    if (!(await this.admin.listTopics()).includes(REPLAY_PLANS_TOPIC)) return [];
    const latest = new Map<string, ReplayPlan>();
    await readTopicRanges(this.kafka, REPLAY_PLANS_TOPIC, await wholeTopicRanges(this.admin, REPLAY_PLANS_TOPIC), async (message) => {
      if (!message.value) return;
      const plan = (await this.serde.decode<ReplayPlan>(message.value)).value;
      latest.set(plan.id, plan);
    });
    return [...latest.values()].sort((a, b) => b.planned_at - a.planned_at);
  }

  async get(id: string): Promise<ReplayPlan> {
    const plan = (await this.list()).find((candidate) => candidate.id === id);
    if (!plan) throw new LifelineError('LL_PLAN_INVALID', `no replay plan ${id} in ${REPLAY_PLANS_TOPIC} (lifeline replay list shows the plans)`);
    return plan;
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
  }
}

export function withState(plan: ReplayPlan, state: ReplayPlanState, change: Partial<Pick<ReplayPlan, 'approved_by' | 'auto_approved' | 'result_detail'>> = {}): ReplayPlan {
  return { ...plan, ...change, state, updated_at: Date.now() };
}
