import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import type { AuditResult } from '../ops/audit-trail.ts';
import { parseInteger, parseTime, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

interface AuditListOptions extends TopologyOptions {
  action?: string;
  who?: string;
  target?: string;
  result?: string;
  since?: string;
  until?: string;
  last?: string;
  json?: boolean;
}

const RESULTS: readonly AuditResult[] = ['started', 'succeeded', 'failed', 'refused'];

/** `lifeline audit list`: the audit trail (ops.audit.v1), filtered. */
export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('the audit trail of control actions (ops.audit.v1)');

  audit.command('list')
    .description('audit entries, oldest first: when, who, action, target, result, reason, detail')
    .option('--action <action>', 'only this action or family, e.g. offsets.reset, replay')
    .option('--who <identity>', 'only this identity')
    .option('--target <target>', 'only this target (group, topic, plan id)')
    .option('--result <result>', `only this result: ${RESULTS.join(', ')}`)
    .option('--since <iso>', 'only entries at or after this time')
    .option('--until <iso>', 'only entries at or before this time')
    .option('--last <n>', 'only the last n entries')
    .option('--json', 'print JSON lines (parameters included)')
    .addOption(topologyOption())
    .action(async (options: AuditListOptions) => {
      await runOpsCommand(options, 'audit list', async (session) => {
        if (options.result !== undefined && !RESULTS.includes(options.result as AuditResult)) {
          throw new LifelineError('LL_CONFIG_INVALID', `--result must be one of ${RESULTS.join(', ')}`);
        }
        const trail = await session.audit();
        let events = await trail.list({
          ...(options.action ? { action: options.action } : {}),
          ...(options.who ? { who: options.who } : {}),
          ...(options.target ? { target: options.target } : {}),
          ...(options.result ? { result: options.result as AuditResult } : {}),
          ...(options.since ? { since: parseTime(options.since, '--since') } : {}),
          ...(options.until ? { until: parseTime(options.until, '--until') } : {}),
        });
        if (options.last !== undefined) events = events.slice(-parseInteger(options.last, '--last', 1));
        if (options.json) {
          for (const event of events) process.stdout.write(`${JSON.stringify({ ...event, at: new Date(event.at).toISOString(), parameters: JSON.parse(event.parameters) as unknown })}\n`);
          return;
        }
        printTable(['WHEN', 'WHO', 'ACTION', 'TARGET', 'RESULT', 'REASON', 'DETAIL'], events.map((event) => [
          new Date(event.at).toISOString(), event.who, event.action, event.target, event.result, event.reason ?? '-', event.detail.slice(0, 120),
        ]));
      });
    });
}
