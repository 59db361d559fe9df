import { Command, CommanderError } from 'commander';
import { registerApplyCommand } from './apply-command.ts';
import { registerAuditCommands } from './audit-commands.ts';
import { registerCatalogCommands } from './catalog-commands.ts';
import { registerConsoleCommand } from './console-command.ts';
import { registerConsumeCommand } from './consume-command.ts';
import { registerDemoCommand } from './demo-command.ts';
import { registerDevCommands } from './dev-commands.ts';
import { registerDlqCommands } from './dlq-commands.ts';
import { registerDocsCommands } from './docs-commands.ts';
import { registerGroupsCommands } from './groups-commands.ts';
import { registerNewCommands } from './new-commands.ts';
import { registerObserveCommands } from './observe-commands.ts';
import { registerOdooCommands } from './odoo-commands.ts';
import { registerOffsetsCommands } from './offsets-commands.ts';
import { registerProduceCommand } from './produce-command.ts';
import { registerReplayCommands } from './replay-commands.ts';
import { registerRunCommand } from './run-command.ts';
import { registerSchemasCommands } from './schemas-commands.ts';
import { registerTopicsCommands } from './topics-commands.ts';
import { registerTopologyCommands } from './topology-commands.ts';

/** The composition root: every `lifeline <noun> <verb>` command is registered here. */
export function buildProgram(): Command {
  const program = new Command('lifeline')
    .description('Lifeline: a Kafka integration backbone for Odoo in healthcare')
    .showHelpAfterError()
    .exitOverride();
  registerDevCommands(program);
  registerTopologyCommands(program);
  registerDocsCommands(program);
  registerNewCommands(program);
  registerRunCommand(program);
  registerApplyCommand(program);
  registerDemoCommand(program);
  registerTopicsCommands(program);
  registerConsumeCommand(program);
  registerProduceCommand(program);
  registerGroupsCommands(program);
  registerOffsetsCommands(program);
  registerDlqCommands(program);
  registerReplayCommands(program);
  registerSchemasCommands(program);
  registerAuditCommands(program);
  registerCatalogCommands(program);
  registerOdooCommands(program);
  registerConsoleCommand(program);
  registerObserveCommands(program);
  return program;
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    console.error(`lifeline: ${message}`);
    process.exitCode = 1;
  }
}

await main(process.argv);
