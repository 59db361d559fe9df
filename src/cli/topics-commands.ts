import type { Command } from 'commander';
import { LifelineError } from '../errors.ts';
import { topicCatalogue, type CatalogueEntry } from '../ops/topic-catalogue.ts';
import { printJson, printTable, runOpsCommand, topologyOption, type TopologyOptions } from './ops-session.ts';

interface TopicsOptions extends TopologyOptions {
  json?: boolean;
  offline?: boolean;
}

/** `lifeline topics list|describe`: the topic catalogue from topology.yaml, with message counts from the broker. */
export function registerTopicsCommands(program: Command): void {
  const topics = program.command('topics').description('the topic catalogue: owner, schema, classification, partitions, retention, message counts');

  topics.command('list')
    .description('every declared topic with its owner, classification, partitions, retention and message count')
    .option('--offline', 'do not ask the broker (no message counts)')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (options: TopicsOptions) => {
      await runOpsCommand(options, 'topics list', async (session) => {
        const entries = await topicCatalogue(session.topology, options.offline ? undefined : await session.admin(), options.offline ? undefined : session.kafka);
        if (options.json) {
          printJson(entries);
          return;
        }
        printTable(['TOPIC', 'OWNER', 'CLASSIFICATION', 'PARTITIONS', 'RETENTION', 'MESSAGES', 'SCHEMA'], entries.map((entry) => [
          entry.name, entry.owner, entry.classification, String(entry.partitions), entry.retention, messageCount(entry, options.offline), entry.schema,
        ]));
      });
    });

  topics.command('describe')
    .description('one topic in full: description, key, schema and PHI fields, who writes and reads it, the sinks it reaches, offsets per partition')
    .argument('<topic>', 'a topic declared in topology.yaml')
    .option('--offline', 'do not ask the broker (no offsets)')
    .option('--json', 'print JSON')
    .addOption(topologyOption())
    .action(async (name: string, options: TopicsOptions) => {
      await runOpsCommand(options, 'topics describe', async (session) => {
        if (!session.topology.topics[name]) {
          throw new LifelineError('LL_CONFIG_INVALID', `${name} is not declared in ${options.topology}; declared: ${Object.keys(session.topology.topics).join(', ')}`);
        }
        const entry = (await topicCatalogue(session.topology, options.offline ? undefined : await session.admin(), options.offline ? undefined : session.kafka)).find((candidate) => candidate.name === name) as CatalogueEntry;
        if (options.json) {
          printJson(entry);
          return;
        }
        const field = (label: string, value: string): string => `  ${label.padEnd(16)}${value}\n`;
        process.stdout.write(`${entry.name}\n${entry.description ? `  ${entry.description}\n` : ''}`
          + field('owner', entry.owner)
          + field('classification', entry.classification)
          + field('key', entry.key || '-')
          + field('schema', `${entry.schema} (${entry.schemaFile}), registered as ${entry.name}-value`)
          + field('phi fields', entry.phiFields.join(', ') || 'none')
          + field('partitions', String(entry.partitions))
          + field('retention', entry.retention)
          + field('written by', entry.writtenBy.join(', ') || '(outside this topology)')
          + field('read by', entry.readBy.join(', ') || '(outside this topology)')
          + field('reaches sinks', entry.reachesSinks.join(', ') || 'none')
          + field('messages', messageCount(entry, options.offline)));
        for (const partition of entry.partitionOffsets) process.stdout.write(field(`  partition ${partition.partition}`, `offsets ${partition.low}..${partition.high}`));
      });
    });
}

function messageCount(entry: CatalogueEntry, offline: boolean | undefined): string {
  if (entry.messages !== null) return entry.messagesExact === false ? `~${entry.messages}` : entry.messages;
  if (offline) return '-';
  return entry.exists ? '-' : 'not created';
}
