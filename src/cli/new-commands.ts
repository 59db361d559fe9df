import type { Command } from 'commander';
import { describeScaffold, scaffoldComponent, type ScaffoldKind } from './scaffold.ts';

/** `lifeline new processor NAME` / `lifeline new connector NAME --kind source|sink`. */
export function registerNewCommands(program: Command): void {
  const create = program.command('new').description('scaffold a component: its file from a template, its registration, a unit test on the topology test driver, regenerated docs');

  create.command('processor')
    .description('a processor in processors/NAME.ts (reads and writes topics only)')
    .argument('<name>', 'its type in topology.yaml, snake_case (e.g. claim_router)')
    .option('--root <dir>', 'the repository root', '.')
    .action((name: string, options: { root: string }) => {
      console.log(describeScaffold(options.root, 'processor', scaffoldComponent(options.root, 'processor', name)));
    });

  create.command('connector')
    .description('a source or sink in connectors/NAME/NAME.ts (talks to the outside world)')
    .argument('<name>', 'its type in topology.yaml, snake_case (e.g. sftp_source)')
    .requiredOption('--kind <kind>', 'source (brings records in) or sink (writes them out)')
    .option('--root <dir>', 'the repository root', '.')
    .action((name: string, options: { kind: string; root: string }) => {
      if (options.kind !== 'source' && options.kind !== 'sink') throw new Error(`--kind must be source or sink (got ${options.kind})`);
      const kind: ScaffoldKind = options.kind;
      console.log(describeScaffold(options.root, kind, scaffoldComponent(options.root, kind, name)));
    });
}
