import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { infra, uniqueName } from './harness.ts';

export interface TestTopicSpec {
  readonly schema: string;
  readonly partitions: number;
  readonly compact?: boolean;
  readonly key?: string;
  readonly classification?: 'phi' | 'personal' | 'internal' | 'public';
}

export interface TestComponentSpec {
  readonly type: string;
  readonly inputs?: readonly string[];
  readonly outputs?: Readonly<Record<string, string>>;
  readonly config?: Readonly<Record<string, unknown>>;
  readonly guarantee?: 'exactly_once' | 'at_least_once';
  readonly on_error?: 'dlq' | 'fail' | 'continue';
}

/** Writes a topology.yaml for the local test infrastructure into a temp dir; returns its path. */
export async function writeTestTopology(spec: {
  topics: Readonly<Record<string, TestTopicSpec>>;
  processors?: Readonly<Record<string, TestComponentSpec>>;
  connectors?: Readonly<Record<string, TestComponentSpec>>;
  runtime?: Readonly<Record<string, unknown>>;
}): Promise<{ file: string; dir: string; appId: string }> {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-topology-'));
  const appId = uniqueName('app').replace(/\./g, '_');
  const document = {
    version: 1,
    app_id: appId,
    connections: { kafka: { brokers, client_id: 'lifeline-test' }, registry: { url: registryUrl } },
    runtime: { http_port: 0, state_dir: join(dir, 'state'), store: 'memory', commit_max_records: 200, commit_interval: '200ms', ...(spec.runtime ?? {}) },
    topics: Object.fromEntries(Object.entries(spec.topics).map(([name, topic]) => [name, {
      key: topic.key ?? 'id', value_schema: resolve(topic.schema), partitions: topic.partitions,
      ...(topic.compact ? { compact: true } : { retention: '1d' }),
      owner: 'tests', description: 'test topic', classification: topic.classification ?? 'internal',
    }])),
    ...(spec.processors ? { processors: spec.processors } : {}),
    ...(spec.connectors ? { connectors: spec.connectors } : {}),
  };
  const file = join(dir, 'topology.yaml');
  writeFileSync(file, stringify(document));
  return { file, dir, appId };
}

/** A label no other test uses (dead-letter topics are named by label). */
export function uniqueLabel(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}
