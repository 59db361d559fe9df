import type { Admin, Kafka } from 'kafkajs';
import { describeSelection, replayDeadLetters, selectDeadLetters, type ReplayEncoder } from './dead-letter-replay.ts';
import type { GroupPauser } from './group-pause.ts';
import { applyReset } from './offset-reset.ts';
import type { DeadLettersPlanSpec, OffsetsPlanSpec, ReplayPlan } from './replay-plans.ts';

export interface PlanExecutionContext {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly pauser: GroupPauser;
  readonly progress: (line: string) => void;
  /** Who executes: the approver, or the planner when the plan needed no approval. */
  readonly executedBy: string;
  /** Re-encodes source dead letters (JSON) in their origin topic's Avro format. */
  readonly encode?: ReplayEncoder;
}

/**
 * Carries out a plan exactly as it was recorded: an offsets plan sets the concrete per-partition
 * targets it holds (pausing a running Lifeline group through the control topic); a dead-letter
 * plan replays what matched its filter up to the end offsets of when it was made, skipping what
 * was replayed meanwhile. Returns a line for the plan's result and the audit trail.
 */
export async function executePlan(plan: ReplayPlan, context: PlanExecutionContext): Promise<string> {
  if (plan.kind === 'offsets') {
    const spec = JSON.parse(plan.spec) as OffsetsPlanSpec;
    const rows = spec.partitions.map((entry) => ({ topic: entry.topic, partition: entry.partition, target: BigInt(entry.target) }));
    const pausedBy = await context.pauser.withGroupEmpty(spec.group, context.executedBy, async (paused) => {
      await applyReset(context.admin, spec.group, rows);
      return paused?.pausedBy.map((ack) => ack.instance) ?? [];
    });
    return `offsets of ${spec.group} set on ${rows.length} partition(s) (${rows.map((row) => `${row.topic}/${row.partition}→${row.target}`).join(', ')}); `
      + (pausedBy.length > 0 ? `paused and resumed ${pausedBy.join(', ')}` : 'the group was empty');
  }
  const spec = JSON.parse(plan.spec) as DeadLettersPlanSpec;
  const bounds = new Map(Object.entries(spec.bounds).map(([partition, end]) => [Number(partition), BigInt(end)]));
  const selection = await selectDeadLetters(context.kafka, context.admin, spec.dlqTopic, spec.filter,
    { maxAttempts: spec.maxAttempts, ...(spec.max !== undefined ? { max: spec.max } : {}) }, bounds);
  const outcome = await replayDeadLetters(context.kafka, context.admin, spec.dlqTopic, selection.selected, { id: plan.id, by: context.executedBy }, context.progress, undefined, context.encode);
  return `${describeSelection(selection)}; replayed ${outcome.replayed}${Object.keys(outcome.byOriginTopic).length > 0 ? ` (${Object.entries(outcome.byOriginTopic).map(([topic, count]) => `${count} to ${topic}`).join(', ')})` : ''}`;
}
