import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { webhookSecretVariable } from '../dev/demo/traffic-sender.ts';
import type { OdooSimulator } from '../dev/odoo-simulator/odoo-simulator.ts';
import { infra } from './harness.ts';

/**
 * The repository's own topology.yaml, made runnable side by side with other tests: every topic
 * name and component label gets a random suffix, connections point at the test infrastructure and
 * an in-process Odoo simulator, the webhook port is any free one, the pharmacy inboxes live in a
 * temporary folder, and the charge SLA's thresholds are shortened. Everything else — the
 * processors, joins, field mappings, dedup and SLA settings — is exactly what `dev/start.sh` runs.
 */
export const GOLDEN_PARTNERS = ['quest_lab', 'labcorp', 'mckesson', 'medline'] as const;

export interface GoldenTopology {
  readonly file: string;
  /** The copy's app_id: consumer groups are `<appId>.<label>`. */
  readonly appId: string;
  readonly dir: string;
  readonly inboxDir: string;
  /** Original topic name → the name in this copy. */
  readonly topic: (name: string) => string;
  /** Original component label → the label in this copy. */
  readonly label: (name: string) => string;
  /** Labels of the sources (run in the intake process) and of the processors and sinks (the pipeline process). */
  readonly intakeLabels: readonly string[];
  readonly pipelineLabels: readonly string[];
  readonly env: Record<string, string>;
  readonly secrets: Record<string, string>;
}

interface TopologyDocument {
  app_id: string;
  connections: { kafka: { brokers: string[] } & Record<string, unknown>; registry: { url: string } & Record<string, unknown>; odoo: { main: { url: string; database: string; username: string; password: string } & Record<string, unknown> } };
  runtime: Record<string, unknown>;
  topics: Record<string, Record<string, unknown>>;
  connectors: Record<string, { type: string; config: Record<string, unknown> } & Record<string, unknown>>;
  processors: Record<string, { type: string; config: Record<string, unknown> } & Record<string, unknown>>;
}

/** Stand-in values for the secrets the repository's topology.yaml references (it holds none itself). */
export function repositoryTopologySecrets(): Record<string, string> {
  return {
    ODOO_USERNAME: 'lifeline',
    ODOO_API_KEY: 'not-a-real-key',
    ...Object.fromEntries(GOLDEN_PARTNERS.map((partner) => [webhookSecretVariable(partner), `whsec_${Buffer.from(`test secret of ${partner}`).toString('base64')}`])),
  };
}

/**
 * A broker reached over SASL_SSL as a least-privileged principal (e.g. `lifeline dev up --secure`):
 * the copy connects as `username`, its password read from LIFELINE_KAFKA_PASSWORD (in `env`).
 */
export interface GoldenSecureKafka {
  readonly brokers: readonly string[];
  readonly caFile: string;
  readonly username: string;
  readonly password: string;
}

/** TLS for the registry and Odoo: other URLs (e.g. https:// ones) and the CA file to trust for them. */
export interface GoldenHttpsConnections {
  readonly registryUrl?: string;
  readonly odooUrl?: string;
  readonly caFile: string;
}

export async function writeGoldenTopology(options: {
  /** The Odoo to write to: an in-process simulator, or one reached by URL (e.g. `lifeline dev odoo` in its own process). */
  simulator: Pick<OdooSimulator, 'url' | 'database' | 'credentials'>;
  warnAfter: string;
  breachAfter: string;
  /** Connect to this broker over SASL_SSL instead of the shared plaintext one. */
  secureKafka?: GoldenSecureKafka;
  /** Another plaintext broker than the shared one (e.g. a benchmark's own, to measure its disk). */
  brokers?: readonly string[];
  /** Reach the registry and/or Odoo over HTTPS, trusting this CA. */
  https?: GoldenHttpsConnections;
  /** Partitions for every topic topology.yaml gives more than one (sizing a run for its rate). */
  partitions?: number;
  /** runtime.transactions for the pipeline (topology.yaml's when absent). */
  transactions?: 'per_partition' | 'per_process';
}): Promise<GoldenTopology> {
  const { brokers, registryUrl } = await infra();
  const { secureKafka, https } = options;
  const suffix = randomBytes(3).toString('hex');
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-golden-'));
  const inboxDir = join(dir, 'inbox');
  const document = parse(readFileSync('topology.yaml', 'utf8')) as TopologyDocument;
  // LIFELINE_TEST_TRANSACTIONS runs the suite's golden path under the other mode (docs/testing.md).
  const transactions = options.transactions ?? process.env.LIFELINE_TEST_TRANSACTIONS;

  const topicNames = new Map<string, string>();
  for (const name of Object.keys(document.topics)) {
    const parts = name.split('.');
    // domain.entity.event.vN → domain.entity_<suffix>.event.vN; ops.name.vN → ops.name_<suffix>.vN
    parts[1] = `${parts[1]}_${suffix}`;
    topicNames.set(name, parts.join('.'));
  }
  const rename = (value: unknown): unknown => {
    if (typeof value === 'string') return topicNames.get(value) ?? value;
    if (Array.isArray(value)) return value.map(rename);
    if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, rename(item)]));
    return value;
  };
  const labels = new Map<string, string>();
  const relabel = <T>(section: Record<string, T>): Record<string, T> =>
    Object.fromEntries(Object.entries(section).map(([label, component]) => {
      labels.set(label, `${label}_${suffix}`);
      return [`${label}_${suffix}`, rename(component) as T];
    }));

  const copy: TopologyDocument = {
    ...document,
    app_id: `golden-${suffix}`,
    connections: {
      kafka: secureKafka
        ? { ...document.connections.kafka, brokers: [...secureKafka.brokers], tls: { ca_file: secureKafka.caFile }, sasl: { mechanism: 'scram-sha-512', username: secureKafka.username, password: '${LIFELINE_KAFKA_PASSWORD}' } }
        : { ...document.connections.kafka, brokers: options.brokers ? [...options.brokers] : [brokers[0] as string] },
      registry: https?.registryUrl ? { url: https.registryUrl, ca_file: https.caFile } : { url: registryUrl },
      odoo: { main: {
        url: https?.odooUrl ?? options.simulator.url, database: options.simulator.database, username: options.simulator.credentials.username, password: '${ODOO_API_KEY}',
        ...(https?.odooUrl ? { ca_file: https.caFile } : {}),
      } },
    },
    runtime: { ...document.runtime, http_port: 0, state_dir: join(dir, 'state'), ...(transactions ? { transactions } : {}) },
    topics: Object.fromEntries(Object.entries(document.topics).map(([name, topic]) => [topicNames.get(name) as string, {
      ...topic, value_schema: resolve(String(topic.value_schema)), ...(topic.compact ? {} : { retention: '1d' }),
      ...(options.partitions !== undefined && Number(topic.partitions ?? 1) > 1 ? { partitions: options.partitions } : {}),
    }])),
    connectors: relabel(document.connectors),
    processors: relabel(document.processors),
  };
  const webhooks = copy.connectors[`partner_webhooks_${suffix}`];
  if (!webhooks) throw new Error('topology.yaml has no partner_webhooks connector');
  webhooks.config.port = 0;
  const sla = copy.processors[`charge_sla_${suffix}`];
  const flow = (sla?.config.flows as Record<string, Record<string, unknown>> | undefined)?.charge_to_invoice;
  if (!flow) throw new Error('topology.yaml has no charge_sla processor with a charge_to_invoice flow');
  flow.warn_after = options.warnAfter;
  flow.breach_after = options.breachAfter;

  const file = join(dir, 'topology.yaml');
  writeFileSync(file, stringify(copy));
  const secrets = Object.fromEntries(GOLDEN_PARTNERS.map((partner) => [partner, `whsec_${randomBytes(32).toString('base64')}`]));
  const env: Record<string, string> = {
    ODOO_API_KEY: options.simulator.credentials.password,
    LIFELINE_INBOX_DIR: inboxDir,
    ...(secureKafka ? { LIFELINE_KAFKA_PASSWORD: secureKafka.password } : {}),
    ...Object.fromEntries(GOLDEN_PARTNERS.map((partner) => [webhookSecretVariable(partner), secrets[partner] as string])),
  };
  const sourceLabels = Object.keys(document.connectors).filter((label) => document.connectors[label]?.type.endsWith('_source'));
  return {
    file, dir, inboxDir, env, secrets, appId: copy.app_id,
    topic: (name) => {
      const renamed = topicNames.get(name);
      if (!renamed) throw new Error(`topology.yaml declares no topic ${name}`);
      return renamed;
    },
    label: (name) => {
      const renamed = labels.get(name);
      if (!renamed) throw new Error(`topology.yaml declares no component ${name}`);
      return renamed;
    },
    intakeLabels: sourceLabels.map((label) => labels.get(label) as string),
    pipelineLabels: [...labels.entries()].filter(([label]) => !sourceLabels.includes(label)).map(([, renamed]) => renamed),
  };
}
