import type { Command } from 'commander';
import { errorMessage } from '../errors.ts';
import { checkSchemas, type SchemaStatus } from '../ops/schema-check.ts';
import { EXIT_CODES, printJson, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

const STATUS_TEXT: Readonly<Record<SchemaStatus, string>> = {
  unregistered: 'not registered yet',
  identical: 'registered (identical)',
  compatible: 'compatible: a new version',
  incompatible: 'INCOMPATIBLE',
};

/** `lifeline schemas check|register`: the declared Avro contracts against the registry. */
export function registerSchemasCommands(program: Command): void {
  const schemas = program.command('schemas').description('the declared Avro contracts against the schema registry (subjects <topic>-value, BACKWARD)');

  schemas.command('check')
    .description('check every declared schema against the latest registered version of its subject (BACKWARD, locally, naming field and rule); exit 1 if any is incompatible')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { json?: boolean }) => {
      await runOpsCommand(options, 'schemas check', async (session) => {
        const checks = await checkSchemas(session.topology, session.serde);
        if (options.json) printJson(checks);
        else {
          printTable(['SUBJECT', 'SCHEMA', 'STATUS'], checks.map((check) => [check.subject, check.schema, STATUS_TEXT[check.status]]));
          for (const check of checks) for (const problem of check.problems) process.stdout.write(`${check.subject}: ${problem}\n`);
        }
        return checks.some((check) => check.status === 'incompatible') ? EXIT_CODES.failed : EXIT_CODES.ok;
      });
    });

  schemas.command('register')
    .description('register every declared schema under <topic>-value (as `lifeline run` does at start); incompatible ones are refused with the field and the rule. Operator role; audited')
    .option('--reason <text>', 'why (goes to the audit trail)', 'register the declared schemas')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { reason: string }) => {
      await runOpsCommand(options, 'schemas register', async (session) => {
        const target = session.topology.registry.url;
        const operator = await session.authorise('schemas.register', target, { reason: options.reason });
        const results = await session.audited(operator, 'schemas.register', target, { reason: options.reason }, async () => {
          const rows: Array<{ subject: string; id: number | null; error: string | null }> = [];
          for (const topic of Object.values(session.topology.topics)) {
            try {
              rows.push({ subject: `${topic.name}-value`, id: await session.serde.register(topic.name, topic.contract), error: null });
            } catch (error) {
              rows.push({ subject: `${topic.name}-value`, id: null, error: errorMessage(error) });
            }
          }
          const failed = rows.filter((row) => row.error !== null);
          if (failed.length > 0) throw new Error(failed.map((row) => `${row.subject}: ${row.error}`).join('; '));
          return { value: rows, detail: rows.map((row) => `${row.subject} → id ${row.id}`).join(', '), parameters: { subjects: rows.map((row) => row.subject) } };
        });
        printJson(results);
        return EXIT_CODES.ok;
      });
    });
}
