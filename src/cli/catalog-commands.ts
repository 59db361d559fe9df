import { writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { asyncApiDocument } from '../ops/asyncapi-document.ts';
import { runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

/** `lifeline catalog asyncapi`: the topic catalogue for subscribers, as an AsyncAPI 3.0 document. Nothing connects. */
export function registerCatalogCommands(program: Command): void {
  const catalog = program.command('catalog').description('the topic catalogue for other teams');

  catalog.command('asyncapi')
    .description('write an AsyncAPI 3.0 document of the declared topics: channels with Kafka bindings, Avro payloads from the schema files (PHI fields marked), owners and classification. Nothing connects')
    .addOption(new Option('--format <format>', 'document format').choices(['yaml', 'json']).default('yaml'))
    .option('--output <file>', 'write to this file instead of stdout')
    .option('--doc-version <version>', 'the document\'s info.version', '1.0.0')
    .addOption(topologyOption())
    .action(async (options: TopologyOptions & { format: 'yaml' | 'json'; output?: string; docVersion: string }) => {
      await runOpsCommand(options, 'catalog asyncapi', async (session) => {
        const document = asyncApiDocument(session.topology, { version: options.docVersion });
        const text = options.format === 'json' ? `${JSON.stringify(document, null, 2)}\n` : stringify(document, { aliasDuplicateObjects: false, lineWidth: 0 });
        if (options.output) {
          writeFileSync(options.output, text);
          process.stderr.write(`lifeline: wrote ${options.output}\n`);
        } else {
          process.stdout.write(text);
        }
      });
    });
}
