import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import { requireReason } from '../ops/option-values.ts';
import { execute, proposePlan, requireState, type PlanRequest } from '../ops/replay-workflow.ts';
import { ReplayPlanStore, withState, type ReplayPlan } from '../ops/replay-plans.ts';
import { withDeadLetterFilters } from './dlq-commands.ts';
import { withResetTargetOptions } from './offsets-commands.ts';
import { EXIT_CODES, printJson, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

interface PlanOptions extends TopologyOptions, PlanRequest {
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
