import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { OdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { infra, uniqueName } from '../../../testing/harness.ts';

/**
 * topology.yaml files for the Odoo connector tests under `lifeline run`: the local Kafka and
 * registry, one Odoo connection to an in-process simulator (its API key comes from the
 * environment, as secrets must), random topic names and labels.
 */
export const ODOO_KEY_ENV = 'LIFELINE_TEST_ODOO_KEY';

export interface OdooTestTopology {
  readonly file: string;
  readonly appId: string;
  readonly label: string;
  readonly topics: Readonly<Record<string, string>>;
  readonly env: Record<string, string>;
}

export interface TopicSpecForTest {
  readonly name: string;
  readonly schema: string;
  readonly partitions?: number;
  readonly classification?: 'phi' | 'personal' | 'internal' | 'public';
}

export async function writeOdooTopology(options: {
  simulator: OdooSimulator;
  labelPrefix: string;
  topics: Record<string, TopicSpecForTest>;
  connector: { type: 'odoo_source' | 'odoo_sink'; inputs?: string[]; outputs?: Record<string, string>; config: Record<string, unknown> };
  commitMaxRecords?: number;
}): Promise<OdooTestTopology> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-odoo-test-'));
  const appId = uniqueName('app').replace(/\./g, '_');
  const label = `${options.labelPrefix}_${randomBytes(4).toString('hex')}`;
  const file = join(dir, 'topology.yaml');
  const { simulator, connector } = options;
  const topicLines = Object.values(options.topics).map((topic) =>
    `  ${topic.name}: { key: "<model>:<id>", value_schema: ${JSON.stringify(resolve(topic.schema))}, partitions: ${topic.partitions ?? 3}, retention: 1d, owner: tests, description: odoo connector test, classification: ${topic.classification ?? 'internal'} }`);
  const yaml = [
    'version: 1',
    `app_id: ${appId}`,
    'connections:',
    `  kafka: { brokers: [${JSON.stringify(brokers[0])}], client_id: lifeline-odoo-test }`,
    `  registry: { url: ${JSON.stringify(registryUrl)} }`,
    '  odoo:',
    `    main: { url: ${JSON.stringify(simulator.url)}, database: ${simulator.database}, username: ${simulator.credentials.username}, password: "\${${ODOO_KEY_ENV}}" }`,
    'runtime:',
    '  http_port: 0',
    `  state_dir: ${JSON.stringify(join(dir, 'state'))}`,
    '  store: memory',
    `  commit_max_records: ${options.commitMaxRecords ?? 200}`,
    '  commit_interval: 200ms',
    '  log_level: info',
    'topics:',
    ...topicLines,
    'connectors:',
    `  ${label}:`,
    `    type: ${connector.type}`,
    ...(connector.inputs ? [`    inputs: [${connector.inputs.join(', ')}]`] : []),
    ...(connector.outputs ? [`    outputs: ${JSON.stringify(connector.outputs)}`] : []),
    `    config: ${JSON.stringify(connector.config)}`,
    '',
  ].join('\n');
  writeFileSync(file, yaml);
  return {
    file, appId, label,
    topics: Object.fromEntries(Object.entries(options.topics).map(([name, topic]) => [name, topic.name])),
    env: { [ODOO_KEY_ENV]: simulator.credentials.password },
  };
}
