import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findJava } from '../dev/infra/java-process.ts';
import { kafkaBootstrap, localInfraSettings } from '../dev/infra/settings.ts';
import { kafkaClasspath } from '../dev/infra/kafka-broker.ts';

const run = promisify(execFile);

/** A row of `kafka-consumer-groups --describe` or `--reset-offsets --dry-run`, as Kafka's own tool prints it. */
export interface ConsumerGroupToolRow {
  readonly topic: string;
  readonly partition: number;
  /** CURRENT-OFFSET (describe) or NEW-OFFSET (reset). */
  readonly offset: string;
}

/** Runs Kafka's own kafka-consumer-groups (ConsumerGroupCommand from the local Kafka jars) and parses its table. */
export async function kafkaConsumerGroups(args: readonly string[]): Promise<{ stdout: string; rows: ConsumerGroupToolRow[] }> {
  const settings = localInfraSettings();
  const java = findJava(17) ?? 'java';
  const { stdout } = await run(java, ['-cp', kafkaClasspath(settings), 'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
    '--bootstrap-server', kafkaBootstrap(settings), ...args], { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 });
  const lines = stdout.split('\n').map((line) => line.trim()).filter(Boolean);
  const header = lines.find((line) => line.startsWith('GROUP'));
  if (!header) return { stdout, rows: [] };
  const columns = header.split(/\s+/);
  const offsetColumn = columns.includes('NEW-OFFSET') ? columns.indexOf('NEW-OFFSET') : columns.indexOf('CURRENT-OFFSET');
  const rows = lines.slice(lines.indexOf(header) + 1).filter((line) => !line.startsWith('GROUP')).map((line) => {
    const cells = line.split(/\s+/);
    return { topic: cells[1] as string, partition: Number(cells[2]), offset: cells[offsetColumn] as string };
  }).filter((row) => Number.isInteger(row.partition));
  return { stdout, rows: rows.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition) };
}
