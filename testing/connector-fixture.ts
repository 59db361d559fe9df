import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { infra, uniqueName, uniqueTopic } from './harness.ts';
import { TEST_EVENT_SCHEMA } from './runtime-fixture.ts';

export interface ConnectorTopology {
  readonly file: string;
  readonly label: string;
  /** The source's output, or the sink's input. */
  readonly topic: string;
  /** The sink's `results` output. */
  readonly resultsTopic: string;
}

/** A topology.yaml with one test source (output `events`) or one test sink (input, output `results`). */
export async function writeConnectorTopology(options: { kind: 'source' | 'sink'; type: string; partitions: number }): Promise<ConnectorTopology> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-connector-'));
  const label = `${options.kind}_${randomBytes(4).toString('hex')}`;
  const topic = uniqueTopic('test', 'event', 'received');
  const resultsTopic = topic.replace(/\.received\.v1$/, '.written.v1');
  const file = join(dir, 'topology.yaml');
  const topicLine = (name: string): string =>
    `  ${name}: { key: account, value_schema: ${JSON.stringify(TEST_EVENT_SCHEMA)}, partitions: ${options.partitions}, retention: 1d, owner: tests, description: test, classification: phi }`;
  writeFileSync(file, [
    'version: 1',
    `app_id: ${uniqueName('app').replace(/\./g, '_')}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-test }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    'runtime: { http_port: 0, store: memory, commit_max_records: 100, commit_interval: 200ms }',
    'topics:',
    topicLine(topic),
    ...(options.kind === 'sink' ? [topicLine(resultsTopic)] : []),
    'connectors:',
    `  ${label}:`,
    `    type: ${options.type}`,
    ...(options.kind === 'source'
      ? [`    outputs: { events: ${topic} }`]
      : [`    inputs: [${topic}]`, `    outputs: { results: ${resultsTopic} }`]),
    '',
  ].join('\n'));
  return { file, label, topic, resultsTopic };
}
