import { once } from 'node:events';
import type { Command } from 'commander';
import type { Admin } from 'kafkajs';
import { LifelineError } from '../errors.ts';
import { readTopicRanges, type PartitionRange } from '../kafka/topic-reader.ts';
import { RecordViewer } from '../ops/record-view.ts';
import { EXIT_CODES, parseInteger, parseTime, runOpsCommand, topologyOption, type OpsSession, type TopologyOptions } from './ops-session.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';

interface ConsumeOptions extends TopologyOptions {
  fromBeginning?: boolean;
  offset?: string;
  fromDatetime?: string;
  limit?: string;
  partition?: string[];
  key?: string;
  follow?: boolean;
  reveal?: boolean;
  reason?: string;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, ...value.split(',').map((part) => part.trim()).filter(Boolean)];

/** `lifeline consume TOPIC`: decoded Avro records as JSON lines, PHI masked unless revealed by an authorised, audited identity. */
export function registerConsumeCommand(program: Command): void {
  program.command('consume')
    .description('print records of a topic as JSON lines (one object per record: topic, partition, offset, timestamp, key, headers, value), '
      + 'decoded with the registry. PHI fields are masked as "[PHI]"; --reveal shows them to an admin and is audited. '
      + 'Without a start option it follows new records from the end; with one it stops at the end unless --follow.')
    .summary('print a topic\'s records as JSON lines, PHI masked')
    .argument('<topic>', 'the topic')
    .option('--from-beginning', 'start at the first record each partition holds')
    .option('--offset <n>', 'start at this offset (in each selected partition)')
    .option('--from-datetime <iso>', 'start at the first record at or after this time, e.g. 2026-11-24T10:00:00Z')
    .option('--limit <n>', 'stop after this many records')
    .option('--partition <n>', 'only these partitions (repeatable or comma-separated)', collect)
    .option('--key <key>', 'only records with this key')
    .option('--follow', 'keep waiting for new records after reaching the end (Ctrl-C stops)')
    .option('--reveal', 'show PHI unmasked (admin role; audited)')
    .option('--reason <text>', 'why PHI is revealed (required with --reveal)')
    .addOption(topologyOption())
    .action(async (topic: string, options: ConsumeOptions) => {
      await runOpsCommand(options, 'consume', async (session) => {
        const admin = await session.admin();
        if (!(await admin.listTopics()).includes(topic)) throw new LifelineError('LL_CONFIG_INVALID', `topic ${topic} does not exist on the cluster`);
        const { ranges, description } = await startPositions(admin, topic, options);
        const parameters = { topic, start: description, limit: options.limit ?? null, partitions: options.partition ?? 'all', key: options.key ?? null };
        if (!options.reveal) {
          await printRecords(session, topic, ranges, options, false);
          return EXIT_CODES.ok;
        }
        if (!options.reason?.trim()) throw new LifelineError('LL_CONFIG_INVALID', '--reveal needs --reason "…": revealing PHI is audited with why');
        const reason = options.reason.trim();
        const operator = await session.authorise('consume.reveal', topic, { reason, parameters });
        await session.audited(operator, 'consume.reveal', topic, { reason, parameters }, async () => {
          const printed = await printRecords(session, topic, ranges, options, true);
          return { value: printed, detail: `${printed} record(s) shown with PHI revealed` };
        });
        return EXIT_CODES.ok;
      });
    });
}

async function startPositions(admin: Admin, topic: string, options: ConsumeOptions): Promise<{ ranges: PartitionRange[]; description: string }> {
  const starts = [options.fromBeginning, options.offset !== undefined, options.fromDatetime !== undefined].filter(Boolean).length;
  if (starts > 1) throw new LifelineError('LL_CONFIG_INVALID', 'give at most one of --from-beginning, --offset, --from-datetime');
  const offsets = (await fetchTopicOffsetsSerially(admin, topic)).sort((a, b) => a.partition - b.partition);
  const wanted = options.partition?.map((value) => parseInteger(value, '--partition', 0));
  for (const partition of wanted ?? []) {
    if (!offsets.some((entry) => entry.partition === partition)) throw new LifelineError('LL_CONFIG_INVALID', `${topic} has no partition ${partition} (it has ${offsets.length})`);
  }
  const chosen = offsets.filter((entry) => !wanted || wanted.includes(entry.partition));
  const follow = options.follow || starts === 0;
  const end = (high: string): { to?: bigint } => (follow ? {} : { to: BigInt(high) });
  if (options.fromDatetime !== undefined) {
    const at = parseTime(options.fromDatetime, '--from-datetime');
    const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, at);
    return {
      description: `from ${new Date(at).toISOString()}`,
      ranges: chosen.map((entry) => ({ partition: entry.partition, from: BigInt(byTime.find((candidate) => candidate.partition === entry.partition)?.offset ?? entry.high), ...end(entry.high) })),
    };
  }
  if (options.offset !== undefined) {
    const offset = BigInt(parseInteger(options.offset, '--offset', 0));
    return {
      description: `from offset ${offset}`,
      ranges: chosen.map((entry) => ({ partition: entry.partition, from: offset < BigInt(entry.low) ? BigInt(entry.low) : offset, ...end(entry.high) })),
    };
  }
  if (options.fromBeginning) {
    return { description: 'from the beginning', ranges: chosen.map((entry) => ({ partition: entry.partition, from: BigInt(entry.low), ...end(entry.high) })) };
  }
  return { description: 'from the end, following', ranges: chosen.map((entry) => ({ partition: entry.partition, from: BigInt(entry.high) })) };
}

async function printRecords(session: OpsSession, topic: string, ranges: readonly PartitionRange[], options: ConsumeOptions, reveal: boolean): Promise<number> {
  const limit = options.limit === undefined ? undefined : parseInteger(options.limit, '--limit', 1);
  const viewer = new RecordViewer(session.serde, (name) => session.topology.topics[name]?.contract.phiPaths ?? [], reveal);
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let printed = 0;
  try {
    await readTopicRanges(session.kafka, topic, ranges, async (message, partition) => {
      if (options.key !== undefined && message.key?.toString('utf8') !== options.key) return true;
      const line = `${JSON.stringify(await viewer.view(topic, partition, message))}\n`;
      if (!process.stdout.write(line)) await once(process.stdout, 'drain');
      printed++;
      return limit === undefined || printed < limit;
    }, { signal: stop.signal });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  session.progress(`${printed} record(s) from ${topic}`);
  return printed;
}
