import { LifelineError, errorMessage } from '../errors.ts';
import { deadLetterBounds, describeSelection, selectDeadLetters } from './dead-letter-replay.ts';
import { describeTarget, planReset, totalToReprocess, withRecordCounts } from './offset-reset.ts';
import type { Operator } from './operator-identity.ts';
import {
  deadLetterFilter, replayLimits, resetScope, resetTarget, resolveDeadLetterTopic,
  type DeadLetterFilterOptions, type ResetTargetOptions,
} from './operator-requests.ts';
import type { OpsSession } from './ops-session.ts';
import { durationMs, parseInteger } from './option-values.ts';
import { executePlan } from './replay-execution.ts';
import {
  newPlanId, ReplayPlanStore, withState,
  type DeadLettersPlanSpec, type OffsetsPlanSpec, type ReplayPlan, type ReplayPlanState,
} from './replay-plans.ts';
import { componentOfGroup, downstreamReach, type ReplayReach } from './topology-lineage.ts';

// Replays that someone else approves, as the CLI (`lifeline replay plan|approve|reject`) and the
// console both run them: draft (counted now), save audited, execute under the threshold or wait for
// a second person, execute audited.

/** A plan as asked for (`lifeline replay plan` options, or the console's form). */
export interface PlanRequest extends ResetTargetOptions, DeadLetterFilterOptions {
  group?: string;
  topic?: string[];
  partition?: string[];
  dlq?: string;
  max?: string;
  maxAttempts: string;
  reason?: string;
  autoApproveBelow?: string;
  ackTimeout: string;
}

/**
 * Drafts a plan, saves it (audited as replay.plan) and executes it at once when it is under the
 * operator's approval threshold; otherwise it waits, planned, for an approver. The CLI and the
 * console both propose plans this way.
 */
export async function proposePlan(
  session: OpsSession, operator: Operator, options: PlanRequest, reason: string, autoApproveBelow: string | undefined,
  onAutoApprove: (plan: ReplayPlan, threshold: number) => void = () => undefined,
): Promise<{ plan: ReplayPlan; threshold: number }> {
  const plan = await draftPlan(session, operator, options, reason);
  const threshold = await approvalThreshold(session, operator, autoApproveBelow);
  const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
  try {
    await session.audited(operator, 'replay.plan', plan.id, { reason, parameters: planParameters(plan) }, async () => {
      await store.save(plan);
      return { value: plan, detail: `${plan.summary}; ${plan.record_count} record(s); ${plan.record_count < threshold ? 'under' : 'at or over'} the approval threshold ${threshold}` };
    });
    if (plan.record_count >= threshold) return { plan, threshold };
    onAutoApprove(plan, threshold);
    const final = await execute(session, store, withState(plan, 'executing', { auto_approved: true }), operator, 'replay.execute', `auto-approved (under ${threshold} records): ${reason}`, options.ackTimeout);
    return { plan: final, threshold };
  } finally {
    await store.close();
  }
}

export async function draftPlan(session: OpsSession, operator: Operator, options: PlanRequest, reason: string): Promise<ReplayPlan> {
  const admin = await session.admin();
  const now = Date.now();
  const common = { id: newPlanId(), state: 'planned' as const, reason, planned_by: operator.identity, planned_at: now, updated_at: now, auto_approved: false, approved_by: null, result_detail: '' };
  if (options.group) {
    const target = resetTarget(options);
    const scope = await resetScope(admin, session.topology, { group: options.group, ...(options.topic ? { topic: options.topic } : {}), ...(options.partition ? { partition: options.partition } : {}) });
    const rows = await withRecordCounts(session.kafka, await planReset(admin, scope, target));
    const component = componentOfGroup(session.topology, options.group);
    const reach: ReplayReach = component ? downstreamReach(session.topology, { components: [component.label] }) : { components: [], sinks: [], topics: [] };
    const spec: OffsetsPlanSpec = {
      group: options.group, request: describeTarget(target),
      partitions: rows.map((row) => ({ topic: row.topic, partition: row.partition, current: row.current?.toString() ?? null, target: row.target.toString() })),
    };
    return {
      ...common, kind: 'offsets', target: options.group, spec: JSON.stringify(spec),
      summary: `reset ${options.group} ${describeTarget(target)} on ${scope.topics.join(', ')}${component ? '' : ' (not a component of this topology)'}`,
      record_count: Number(totalToReprocess(rows)), affected_components: reach.components, sinks: reach.sinks,
    };
  }
  const { topic, component } = resolveDeadLetterTopic(session.topology, options.dlq as string);
  const filter = deadLetterFilter(options);
  const limits = replayLimits(options);
  const bounds = await deadLetterBounds(admin, topic);
  const selection = await selectDeadLetters(session.kafka, admin, topic, filter, limits, bounds);
  const reach = downstreamReach(session.topology, { topics: [...new Set(selection.selected.map((letter) => letter.origin.topic))] });
  const spec: DeadLettersPlanSpec = {
    component, dlqTopic: topic, filter, maxAttempts: limits.maxAttempts, ...(limits.max !== undefined ? { max: limits.max } : {}),
    bounds: Object.fromEntries([...bounds].map(([partition, end]) => [String(partition), end.toString()])),
  };
  return {
    ...common, kind: 'dead_letters', target: component, spec: JSON.stringify(spec),
    summary: `replay dead letters of ${component} (${describeSelection(selection)})`,
    record_count: selection.selected.length, affected_components: reach.components, sinks: reach.sinks,
  };
}

/** The policy threshold; --auto-approve-below may lower it, and only an admin may raise it. */
export async function approvalThreshold(session: OpsSession, operator: Operator, requested: string | undefined): Promise<number> {
  const policy = session.operatorDirectory()?.autoApproveBelow ?? 0;
  if (requested === undefined) return policy;
  const wanted = parseInteger(requested, '--auto-approve-below', 0);
  if (wanted > policy && !operator.roles.includes('admin')) {
    return session.refuse('replay.plan', 'auto-approve-below', operator.identity, operator.roles,
      `--auto-approve-below ${wanted} is above the policy threshold ${policy}; only an admin may raise it`);
  }
  return wanted;
}

export async function requireState(session: OpsSession, operator: Operator, plan: ReplayPlan, state: ReplayPlanState, action: string, reason: string): Promise<void> {
  if (plan.state === state) return;
  const why = `${plan.id} is ${plan.state}${plan.approved_by ? ` (by ${plan.approved_by})` : ''}, not ${state}`;
  const audit = await session.audit();
  await audit.record({ who: operator.identity, roles: operator.roles, action, target: plan.id, reason, result: 'failed', detail: why });
  throw new LifelineError('LL_PLAN_INVALID', why);
}

/** Marks the plan executing, runs it, and records the outcome in the plan and the audit trail. */
export async function execute(session: OpsSession, store: ReplayPlanStore, executing: ReplayPlan, operator: Operator, action: string, reason: string, ackTimeout: string): Promise<ReplayPlan> {
  const pauser = await session.pauser({ ackTimeoutMs: durationMs(ackTimeout, '--ack-timeout') });
  const admin = await session.admin();
  let final: ReplayPlan = executing;
  try {
    await session.audited(operator, action, executing.id, { reason, parameters: planParameters(executing) }, async () => {
      await store.save(executing);
      try {
        const detail = await executePlan(executing, { kafka: session.kafka, admin, pauser, progress: (line) => session.progress(line), executedBy: operator.identity, encode: (topic, value) => session.serde.encode(topic, value) });
        final = withState(executing, 'executed', { result_detail: detail });
      } catch (error) {
        final = withState(executing, 'failed', { result_detail: errorMessage(error) });
        await store.save(final);
        throw error;
      }
      await store.save(final);
      return { value: final, detail: `${executing.summary}: ${final.result_detail}` };
    });
  } catch (error) {
    if (final.state !== 'failed') throw error;
    session.progress(`${executing.id} failed: ${errorMessage(error)}`);
  }
  return final;
}

export function planParameters(plan: ReplayPlan): Record<string, unknown> {
  return {
    plan: plan.id, kind: plan.kind, target: plan.target, records: plan.record_count,
    affected_components: plan.affected_components, sinks: plan.sinks, spec: JSON.parse(plan.spec) as unknown,
  };
}

