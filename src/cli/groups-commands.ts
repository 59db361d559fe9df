import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import { describeGroup, listGroups } from '../ops/group-inspection.ts';
import { durationMs, requireReason } from '../ops/option-values.ts';
import { EXIT_CODES, printJson, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

/** `lifeline groups list|describe|pause|resume`: consumer groups, their members and lag; pausing a running Lifeline group. */
export function registerGroupsCommands(program: Command): void {
  const groups = program.command('groups').description('consumer groups: members, committed offsets, lag; pause and resume Lifeline groups');

  groups.command('list')
    .description('the consumer groups of this topology\'s components (<app_id>.<label>), or every group with --all')
    .option('--all', 'every consumer group on the cluster, Lifeline\'s internal ones included')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { all?: boolean; json?: boolean }) => {
      await runOpsCommand(options, 'groups list', async (session) => {
        const found = await listGroups(await session.admin(), session.topology, { all: options.all ?? false });
        if (options.json) printJson(found);
        else printTable(['GROUP', 'STATE', 'MEMBERS', 'COMPONENT'], found.map((group) => [group.group, group.state, String(group.members), group.component ?? '-']));
      });
    });

  groups.command('describe')
    .description('members (id, client, host, assigned partitions) and, per partition, the committed offset, the end offset and the lag')
    .argument('<group>', 'the consumer group')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (group: string, options: TopologyOptions & { json?: boolean }) => {
      await runOpsCommand(options, 'groups describe', async (session) => {
        const description = await describeGroup(await session.admin(), session.topology, group, session.kafka);
        if (options.json) {
          printJson(description);
          return;
        }
        process.stdout.write(`group ${description.group}: ${description.state}, ${description.members} member(s)${description.component ? `, component ${description.component}` : ''}, total lag ${description.totalLag}\n`);
        printTable(['TOPIC', 'PARTITION', 'CURRENT-OFFSET', 'STABLE-END-OFFSET', 'LAG', 'CONSUMER-ID'], description.partitions.map((row) => [
          row.topic, String(row.partition), row.committed ?? '-', row.end, row.lagExact ? row.lag : `~${row.lag}`, row.memberId ?? '-',
        ]));
        if (description.memberList.length > 0) {
          process.stdout.write('\n');
          printTable(['CONSUMER-ID', 'CLIENT-ID', 'HOST', 'ASSIGNMENT'], description.memberList.map((member) => [
            member.memberId, member.clientId, member.host,
            Object.entries(member.assignment).map(([topic, partitions]) => `${topic}:${partitions.join(',')}`).join(' ') || '-',
          ]));
        }
      });
    });

  groups.command('pause')
    .description('ask the `lifeline run` processes owning a group to leave it (for inspection or a manual reset); they resume by `groups resume` or when --for runs out. Operator role; audited')
    .argument('<group>', 'the consumer group')
    .requiredOption('--reason <text>', 'why (goes to the audit trail)')
    .option('--for <duration>', 'resume on their own after this long, whatever happens', '15m')
    .option('--ack-timeout <duration>', 'how long to wait for a lifeline runtime to acknowledge', '10s')
    .addOption(topologyOption())
    .action(async (group: string, options: TopologyOptions & { reason: string; for: string; ackTimeout: string }) => {
      await runOpsCommand(options, 'groups pause', async (session) => {
        const reason = requireReason(options.reason);
        const leaseMs = durationMs(options.for, '--for');
        // Leaving a group and confirming it takes seconds; a shorter lease would end before the group is empty.
        if (leaseMs < 10_000) throw new LifelineError('LL_CONFIG_INVALID', '--for must be at least 10s');
        const operator = await session.authorise('groups.pause', group, { reason, parameters: { for: options.for } });
        const pauser = await session.pauser({ ackTimeoutMs: durationMs(options.ackTimeout, '--ack-timeout') });
        const paused = await session.audited(operator, 'groups.pause', group, { reason, parameters: { for: options.for } }, async () => {
          const result = await pauser.pause(group, operator.identity, leaseMs);
          return { value: result, detail: `paused by ${result.pausedBy.map((ack) => ack.instance).join(', ') || 'nobody (the group was empty)'} until ${new Date(result.leaseUntil).toISOString()}` };
        });
        process.stdout.write(`${group} is empty; paused by ${paused.pausedBy.map((ack) => `${ack.instance} (${ack.components.join(', ')})`).join(', ') || 'nobody: it was empty'}; `
          + `resumes by itself at ${new Date(paused.leaseUntil).toISOString()} unless \`lifeline groups resume ${group}\` comes first\n`);
        return EXIT_CODES.ok;
      });
    });

  groups.command('resume')
    .description('let the `lifeline run` processes owning a paused group join it again. Operator role; audited')
    .argument('<group>', 'the consumer group')
    .requiredOption('--reason <text>', 'why (goes to the audit trail)')
    .option('--ack-timeout <duration>', 'how long to wait for the runtimes to confirm', '10s')
    .addOption(topologyOption())
    .action(async (group: string, options: TopologyOptions & { reason: string; ackTimeout: string }) => {
      await runOpsCommand(options, 'groups resume', async (session) => {
        const reason = requireReason(options.reason);
        const operator = await session.authorise('groups.resume', group, { reason });
        const pauser = await session.pauser({ ackTimeoutMs: durationMs(options.ackTimeout, '--ack-timeout') });
        const resumed = await session.audited(operator, 'groups.resume', group, { reason }, async () => {
          const acks = await pauser.resumeGroup(group, operator.identity);
          return { value: acks, detail: acks.length > 0 ? `resumed by ${acks.map((ack) => ack.instance).join(', ')}` : 'no lifeline runtime confirmed (none was paused?)' };
        });
        process.stdout.write(resumed.length > 0
          ? `${group} resumed by ${resumed.map((ack) => `${ack.instance} (${ack.components.join(', ')})`).join(', ')}\n`
          : `no lifeline runtime confirmed a resume of ${group} (none had it paused)\n`);
      });
    });
}
