import { dirname, relative } from 'node:path';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type { StoreSpec } from '../component/component.ts';
import { isSecretKey } from './config-references.ts';
import { changelogTopic, deadLetterTopic, type ComponentDeclaration, type TopicDeclaration, type Topology } from './model.ts';
import { withoutCredentials } from '../component/http-url.ts';

/**
 * `lifeline topology describe`: what a topology runs, as text an operator reads top to bottom —
 * each component with its type, inputs → outputs, guarantee, error policy and stores, then each
 * topic with the catalogue facts other teams need (partitions, retention, owner, classification, schema).
 */
export function describeTopology(topology: Topology, registry: ComponentRegistry): string {
  const components = Object.values(topology.components);
  const topics = Object.values(topology.topics);
  const baseDir = dirname(topology.file);
  const lines: string[] = [
    `Topology ${topology.file}`,
    `  app id     ${topology.runtime.appId}`,
    `  kafka      ${topology.kafka.brokers.join(', ')}${topology.kafka.sasl ? ` (SASL ${topology.kafka.sasl.mechanism})` : ''}${topology.kafka.tls ? ' (TLS)' : ''}`,
    `  registry   ${withoutCredentials(topology.registry.url)}`,
    ...Object.entries(topology.connections).flatMap(([kind, named]) => Object.entries(named).map(([name, connection]) => {
      const summary = registry.connectionKinds().get(kind)?.summary?.(connection as never);
      return `  ${`${kind} ${name}`.padEnd(10)} ${summary ?? ''}`.trimEnd();
    })),
    `  ${count(topics.length, 'topic')}, ${count(components.length, 'component')}`,
    '',
    'Components',
  ];
  if (components.length === 0) lines.push('  (none)');
  for (const component of components) lines.push(...describeComponent(component, topology, registry), '');

  lines.push('Topics');
  if (topics.length === 0) lines.push('  (none)');
  for (const topic of topics) lines.push(...describeTopic(topic, topology, baseDir), '');
  return `${lines.join('\n').trimEnd()}\n`;
}

function describeComponent(component: ComponentDeclaration, topology: Topology, registry: ComponentRegistry): string[] {
  const lines = [`  ${component.label} (${component.kind} ${component.type}, ${component.position})`];
  if (component.description) lines.push(`    ${component.description}`);
  const outputs = Object.entries(component.outputs).map(([name, topic]) => `${name} → ${topic}`);
  lines.push(
    field('inputs', component.inputs.length > 0 ? component.inputs.join(', ') : '(outside Kafka)'),
    field('outputs', outputs.length > 0 ? outputs.join(', ') : '(outside Kafka)'),
    field('guarantee', component.guarantee),
    field('on error', component.onError === 'dlq' ? `dead-letter to ${deadLetterTopic(component.label)}` : component.onError),
  );
  const stores = storesOf(component, registry);
  if (stores.length > 0) {
    lines.push(field('stores', stores.map((store) =>
      `${store.name}${store.ttlMs === undefined ? '' : ` (ttl ${formatDuration(store.ttlMs)})`} ← ${changelogTopic(topology.runtime.appId, component.label, store.name)}`).join(', ')));
  }
  const config = Object.entries(component.config).map(([key, value]) => `${key}: ${isSecretKey(key) ? '***' : JSON.stringify(masked(value))}`);
  if (config.length > 0) lines.push(field('config', config.join(', ')));
  return lines;
}

function describeTopic(topic: TopicDeclaration, topology: Topology, baseDir: string): string[] {
  const components = Object.values(topology.components);
  const writers = components.filter((component) => Object.values(component.outputs).includes(topic.name)).map((component) => component.label);
  const readers = components.filter((component) => component.inputs.includes(topic.name)).map((component) => component.label);
  const phi = topic.contract.phiPaths.length > 0 ? `; phi fields: ${topic.contract.phiPaths.join(', ')}` : '';
  const lines = [`  ${topic.name}`];
  if (topic.description) lines.push(`    ${topic.description}`);
  lines.push(
    field('partitions', String(topic.partitions)),
    field('cleanup', topic.compact ? 'compacted (latest record per key)' : topic.retentionMs === undefined ? 'broker default retention' : `retention ${formatDuration(topic.retentionMs)}`),
    ...(topic.key ? [field('key', topic.key)] : []),
    field('owner', topic.owner),
    field('classification', topic.classification),
    field('schema', `${relative(baseDir, topic.valueSchemaFile)} (${topic.contract.fullName}${phi})`),
    field('written by', writers.length > 0 ? `${writers.join(', ')}${topic.sharedWriters ? ' (shared writers allowed)' : ''}` : '(outside this topology)'),
    field('read by', readers.length > 0 ? readers.join(', ') : '(outside this topology)'),
  );
  return lines;
}

function field(name: string, value: string): string {
  return `    ${name.padEnd(15)}${value}`;
}

function count(amount: number, noun: string): string {
  return `${amount} ${noun}${amount === 1 ? '' : 's'}`;
}

function storesOf(component: ComponentDeclaration, registry: ComponentRegistry): StoreSpec[] {
  if (!registry.has(component.type)) return [];
  const definition = registry.get(component.type);
  return definition.stores ? definition.stores(component.config as Parameters<NonNullable<typeof definition.stores>>[0]) : [];
}

/** Config values with every secret (at any depth) replaced: describe output ends up in tickets and chats. */
function masked(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(masked);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([key, child]) => [key, isSecretKey(key) ? '***' : masked(child)]));
}


const DURATION_UNITS: ReadonlyArray<[string, number]> = [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]];

/** 604800000 → "7d": the largest unit that divides the duration exactly, as topology.yaml writes it. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of DURATION_UNITS) if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
