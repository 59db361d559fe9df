import type { Command } from 'commander';
import { LifelineError, errorMessage } from '../errors.ts';
import { deadLetterBounds, describeSelection, selectDeadLetters } from '../ops/dead-letter-replay.ts';
import { describeTarget, planReset, totalToReprocess, withRecordCounts } from '../ops/offset-reset.ts';
import type { Operator } from '../ops/operator-identity.ts';
import { executePlan } from '../ops/replay-execution.ts';
import {
  newPlanId, ReplayPlanStore, withState,
  type DeadLettersPlanSpec, type OffsetsPlanSpec, type ReplayPlan, type ReplayPlanState,
} from '../ops/replay-plans.ts';
import { componentOfGroup, downstreamReach, type ReplayReach } from '../ops/topology-lineage.ts';
import { deadLetterFilter, replayLimits, resolveDeadLetterTopic, withDeadLetterFilters, type DeadLetterFilterOptions } from './dlq-commands.ts';
import { durationMs, requireReason, resetScope, resetTarget, withResetTargetOptions, type ResetTargetOptions } from './offsets-commands.ts';
import { EXIT_CODES, parseInteger, printJson, printTable, runOpsCommand, topologyOption, type OpsSession, type TopologyOptions } from './ops-session.ts';

export interface PlanOptions extends TopologyOptions, ResetTargetOptions, DeadLetterFilterOptions {
  group?: string;
  topic?: string[];
  partition?: string[];
  dlq?: string;
  max?: string;
  maxAttempts: string;
  reason?: string;
  autoApproveBelow?: string;
  ackTimeout: string;
  json?: boolean;
}

/**
 * `lifeline replay plan|approve|reject|list`: replays that someone else approves. A plan records
 * what it will do, how many records and which sinks it reaches (ops.replay-plans.v1, compacted:
 * the latest record per id is the plan's state); an approver who is not the planner executes it.
 * Plans under the approval threshold run at once.
 */
export function registerReplayCommands(program: Command): void {
  const replay = program.command('replay').description('replay plans: plan a reset or a dead-letter replay, have it approved by someone else, execute it');

  withDeadLetterFilters(withResetTargetOptions(replay.command('plan')
    .description('record a replay plan: an offset reset of a group (--group with a target such as --to-datetime) or a dead-letter replay (--dlq COMPONENT with filters). '
      + 'It says how many records it reprocesses and which components and sinks see them again. Under the approval threshold '
      + '(policy auto_approve_below in the operators file, default 100 records) it executes at once; otherwise it waits for `replay approve`. Operator role; audited')
    .option('--group <group>', 'plan an offset reset of this consumer group')))
    .option('--dlq <component>', 'plan a replay of this component\'s dead letters')
    .option('--max <n>', 'dead letters: replay at most this many')
    .option('--max-attempts <n>', 'dead letters: retry budget (records replayed this often that failed again are left)', '3')
    .option('--reason <text>', 'why (required; goes to the plan and the audit trail)')
    .option('--auto-approve-below <n>', 'execute at once only under this many records (may lower the policy threshold, not raise it unless admin)')
    .option('--ack-timeout <duration>', 'how long to wait for a lifeline runtime to acknowledge a pause', '10s')
    .option('--json', 'print the plan as JSON')
    .addOption(topologyOption())
    .action(async (options: PlanOptions) => {
      await runOpsCommand(options, 'replay plan', async (session) => {
        if (Boolean(options.group) === Boolean(options.dlq)) throw new LifelineError('LL_CONFIG_INVALID', 'give exactly one of --group (offset reset) and --dlq (dead-letter replay)');
        const reason = requireReason(options.reason);
        const operator = await session.authorise('replay.plan', options.group ?? options.dlq ?? '', { reason });
        const { plan: final } = await proposePlan(session, operator, options, reason, options.autoApproveBelow, (plan, threshold) => {
          session.progress(`${plan.id}: ${plan.record_count} record(s), under the approval threshold ${threshold}: executing without approval`);
        });
        showPlans([final], options.json, true);
        if (final.state === 'planned') {
          const next = `waiting for approval: lifeline replay approve ${final.id} (by an approver other than ${operator.identity})`;
          if (options.json) session.progress(next);
          else process.stdout.write(`${next}\n`);
        }
        return final.state === 'failed' ? EXIT_CODES.failed : EXIT_CODES.ok;
      });
    });

  replay.command('approve')
    .description('approve a plan and execute it; the approver must not be the planner. Approver role; audited')
    .argument('<id>', 'the plan id (rp-…)')
    .option('--reason <text>', 'why (goes to the audit trail)', 'approved')
    .option('--ack-timeout <duration>', 'how long to wait for a lifeline runtime to acknowledge a pause', '10s')
    .option('--json', 'print the plan as JSON')
    .addOption(topologyOption())
    .action(async (id: string, options: TopologyOptions & { reason: string; ackTimeout: string; json?: boolean }) => {
      await runOpsCommand(options, 'replay approve', async (session) => {
        const operator = await session.authorise('replay.approve', id, { reason: options.reason });
        const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
        try {
          const plan = await store.get(id);
          if (plan.planned_by === operator.identity) {
            await session.refuse('replay.approve', id, operator.identity, operator.roles, `${operator.identity} planned ${id} and may not approve it: a second person must`, { reason: options.reason });
          }
          await requireState(session, operator, plan, 'planned', 'replay.approve', options.reason);
          const final = await execute(session, store, withState(plan, 'executing', { approved_by: operator.identity }), operator, 'replay.approve', options.reason, options.ackTimeout);
          showPlans([final], options.json, true);
          return final.state === 'failed' ? EXIT_CODES.failed : EXIT_CODES.ok;
        } finally {
          await store.close();
        }
      });
    });

  replay.command('reject')
    .description('reject a plan: it will never execute. Approver role; audited')
    .argument('<id>', 'the plan id (rp-…)')
    .requiredOption('--reason <text>', 'why (goes to the plan and the audit trail)')
    .addOption(topologyOption())
    .action(async (id: string, options: TopologyOptions & { reason: string }) => {
      await runOpsCommand(options, 'replay reject', async (session) => {
        const operator = await session.authorise('replay.reject', id, { reason: options.reason });
        const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
        try {
          const plan = await store.get(id);
          await requireState(session, operator, plan, 'planned', 'replay.reject', options.reason);
          await session.audited(operator, 'replay.reject', id, { reason: options.reason }, async () => {
            await store.save(withState(plan, 'rejected', { approved_by: operator.identity, result_detail: `rejected by ${operator.identity}: ${options.reason}` }));
            return { value: undefined, detail: `rejected ${plan.summary}` };
          });
          process.stdout.write(`${id} rejected\n`);
        } finally {
          await store.close();
        }
      });
    });

  replay.command('list')
    .description('replay plans in their latest state, newest first')
    .option('--state <state>', 'only plans in this state: planned, executing, executed, failed, rejected')
    .option('--json', 'print JSON (the spec included)')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { state?: string; json?: boolean }) => {
      await runOpsCommand(options, 'replay list', async (session) => {
        const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
        try {
          const plans = (await store.list()).filter((plan) => !options.state || plan.state === options.state);
          showPlans(plans, options.json, false);
        } finally {
          await store.close();
        }
      });
    });
}

/** What the plan does, counted now: concrete offsets per partition, or the dead letters matching the filter up to today's end. */
/**
 * Drafts a plan, saves it (audited as replay.plan) and executes it at once when it is under the
 * operator's approval threshold; otherwise it waits, planned, for an approver. The CLI and the
 * console both propose plans this way.
 */
export async function proposePlan(
  session: OpsSession, operator: Operator, options: PlanOptions, reason: string, autoApproveBelow: string | undefined,
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

export async function draftPlan(session: OpsSession, operator: Operator, options: PlanOptions, reason: string): Promise<ReplayPlan> {
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

function showPlans(plans: readonly ReplayPlan[], json: boolean | undefined, detailed: boolean): void {
  if (json) {
    printJson(detailed && plans.length === 1 ? { ...plans[0], spec: JSON.parse((plans[0] as ReplayPlan).spec) as unknown } : plans.map((plan) => ({ ...plan, spec: JSON.parse(plan.spec) as unknown })));
    return;
  }
  if (detailed) {
    for (const plan of plans) {
      process.stdout.write(`plan ${plan.id}: ${plan.state}${plan.auto_approved ? ' (auto-approved)' : ''}\n`
        + `  what        ${plan.summary}\n`
        + `  records     ${plan.record_count}\n`
        + `  reaches     ${plan.affected_components.join(', ') || 'no component of this topology'}\n`
        + `  sinks       ${plan.sinks.join(', ') || 'none'}\n`
        + `  planned by  ${plan.planned_by} at ${new Date(plan.planned_at).toISOString()}: ${plan.reason}\n`
        + (plan.approved_by ? `  decided by  ${plan.approved_by}\n` : '')
        + (plan.result_detail ? `  result      ${plan.result_detail}\n` : ''));
    }
    return;
  }
  printTable(['PLAN', 'STATE', 'KIND', 'TARGET', 'RECORDS', 'SINKS', 'PLANNED BY', 'APPROVED BY', 'SUMMARY'], plans.map((plan) => [
    plan.id, plan.state + (plan.auto_approved ? ' (auto)' : ''), plan.kind, plan.target, String(plan.record_count), plan.sinks.join(',') || '-',
    plan.planned_by, plan.approved_by ?? '-', plan.summary,
  ]));
}
