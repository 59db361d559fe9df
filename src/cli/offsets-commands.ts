import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import { applyReset, describeTarget, planReset, totalToReprocess, withRecordCounts, type ResetRow, type ResetScope, type ResetTarget } from '../ops/offset-reset.ts';
import type { Operator } from '../ops/operator-identity.ts';
import { durationMs, requireReason } from '../ops/option-values.ts';
import { resetScope, resetTarget, type ResetTargetOptions } from '../ops/operator-requests.ts';
import { EXIT_CODES, printJson, printTable, runOpsCommand, topologyOption, type OpsSession, type TopologyOptions } from './ops-session.ts';

interface ResetOptions extends TopologyOptions, ResetTargetOptions {
  group: string;
  topic?: string[];
  partition?: string[];
  dryRun?: boolean;
  execute?: boolean;
  reason?: string;
  json?: boolean;
  ackTimeout: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((part) => part.trim()).filter(Boolean)];

/** `lifeline offsets reset`: kafka-consumer-groups --reset-offsets, on running Lifeline groups too. */
export function registerOffsetsCommands(program: Command): void {
  const offsets = program.command('offsets').description('consumer group offsets: reset to replay (or skip) a window of records');

  withResetTargetOptions(offsets.command('reset')
    .description('reset a consumer group\'s offsets with the semantics of Kafka\'s kafka-consumer-groups --reset-offsets. '
      + 'A group run by `lifeline run` is paused through the control topic, reset once empty, and resumed; '
      + 'an active group of another application is refused. --execute needs the operator role and is audited.')
    .requiredOption('--group <group>', 'the consumer group (a Lifeline component\'s is <app_id>.<label>)'))
    .option('--dry-run', 'print per partition the current offset, the target and the records to reprocess; change nothing')
    .option('--execute', 'apply the reset')
    .option('--reason <text>', 'why (required with --execute; goes to the audit trail)')
    .option('--ack-timeout <duration>', 'how long to wait for a lifeline runtime to acknowledge the pause', '10s')
    .option('--json', 'print the result as JSON')
    .addOption(topologyOption())
    .action(async (options: ResetOptions) => {
      await runOpsCommand(options, 'offsets reset', async (session) => {
        const target = resetTarget(options);
        if (Boolean(options.dryRun) === Boolean(options.execute)) throw new LifelineError('LL_CONFIG_INVALID', 'give exactly one of --dry-run and --execute');
        const admin = await session.admin();
        const scope = await resetScope(admin, session.topology, options);
        if (options.dryRun) {
          const rows = await withRecordCounts(session.kafka, await planReset(admin, scope, target));
          printReset(scope.group, target, rows, 'dry run: nothing was changed', options.json);
          return EXIT_CODES.ok;
        }
        const reason = requireReason(options.reason);
        const parameters = { group: scope.group, topics: scope.topics, partitions: scope.partitions ?? 'all', target: describeTarget(target) };
        const operator = await session.authorise('offsets.reset', scope.group, { reason, parameters });
        const rows = await executeReset(session, operator, scope, target, { ackTimeout: options.ackTimeout, reason, parameters });
        printReset(scope.group, target, rows, 'applied', options.json);
        return EXIT_CODES.ok;
      });
    });
}

async function executeReset(session: OpsSession, operator: Operator, scope: ResetScope, target: ResetTarget,
  { ackTimeout, reason, parameters }: { ackTimeout: string; reason: string; parameters: Record<string, unknown> }): Promise<ResetRow[]> {
  const admin = await session.admin();
  const pauser = await session.pauser({ ackTimeoutMs: durationMs(ackTimeout, '--ack-timeout') });
  const who = operator.identity;
  return session.audited(operator, 'offsets.reset', scope.group, { reason, parameters }, async () => {
    const applied = await pauser.withGroupEmpty(scope.group, who, async (paused) => {
      // Computed once the group is empty: committed offsets no longer move, so --shift-by shifts what is final.
      const rows = await planReset(admin, scope, target);
      await applyReset(admin, scope.group, rows);
      return { rows, paused };
    });
    const pausedBy = applied.paused ? applied.paused.pausedBy.map((ack) => ack.instance) : [];
    return {
      value: applied.rows,
      detail: `${applied.rows.length} partition(s) set, ${totalToReprocess(applied.rows)} offset(s) to reprocess; ${pausedBy.length > 0 ? `paused and resumed ${pausedBy.join(', ')}` : 'group was empty'}`,
      parameters: { ...parameters, offsets: applied.rows.map((row) => ({ topic: row.topic, partition: row.partition, from: row.current?.toString() ?? null, to: row.target.toString() })) },
    };
  });
}

/** --topic, --partition and the target options of kafka-consumer-groups --reset-offsets. */
export function withResetTargetOptions(command: Command): Command {
  return command
    .option('--topic <topic>', 'only this topic (repeatable or comma-separated); default: every topic the group has offsets for, and the component\'s inputs', collect)
    .option('--partition <n>', 'only these partitions of the topic(s) (repeatable or comma-separated)', collect)
    .option('--to-earliest', 'to the first offset each partition still holds')
    .option('--to-latest', 'to the end (skip everything not yet processed)')
    .option('--to-datetime <iso>', 'to the first record at or after this time, e.g. 2026-11-24T10:00:00Z (the end when there is none)')
    .option('--by-duration <duration>', 'to the first record at or after now minus this duration, e.g. 30m, 2h, 1d')
    .option('--to-offset <n>', 'to this offset (clamped to what the partition holds)')
    .option('--shift-by <n>', 'move the committed offset by n (negative = back, replay); clamped');
}

export function printReset(group: string, target: ResetTarget, rows: readonly ResetRow[], status: string, json: boolean | undefined): void {
  if (json) {
    printJson({
      group, target: describeTarget(target), status, totalToReprocess: totalToReprocess(rows),
      partitions: rows.map((row) => ({
        topic: row.topic, partition: row.partition, current: row.current ?? null, target: row.target, toReprocess: row.toReprocess,
        ...(row.records !== undefined ? { records: row.records, recordsExact: row.recordsExact ?? false } : {}),
        low: row.low, high: row.high, ...(row.note ? { note: row.note } : {}),
      })),
    });
    return;
  }
  process.stdout.write(`group ${group}: reset ${describeTarget(target)} (${status})\n`);
  const counted = rows.every((row) => row.records !== undefined && row.recordsExact === true);
  printTable(['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'TARGET-OFFSET', 'OFFSETS', 'RECORDS-TO-REPROCESS'], rows.map((row) => {
    const records = row.records ?? row.toReprocess;
    return [
      row.topic, String(row.partition), row.current?.toString() ?? '-', row.target.toString(), row.toReprocess.toString(),
      `${records >= 0n ? records.toString() : `${records} (skipped)`}${row.records !== undefined && row.recordsExact === false ? ' (offsets: too long to count)' : ''}`,
    ];
  }));
  for (const row of rows) if (row.note) process.stdout.write(`note: ${row.topic}/${row.partition}: ${row.note}\n`);
  process.stdout.write(`total: ${totalToReprocess(rows)} record(s) to reprocess${counted ? ' (counted read_committed: transaction markers and aborted records left out)' : ' (where not counted: offsets, transaction markers included)'}\n`);
}
