import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { errorMessage } from '../errors.ts';
import { loadContract, type AvroContract } from '../kafka/avro-contract.ts';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type { ComponentDefinition, ComponentKind } from '../component/component.ts';
import type { PathSegment, PositionedYaml } from './positioned-yaml.ts';
import { schemaProblems } from './schema-problems.ts';
import { CORE_CONNECTION_KINDS } from './topology-file-schema.ts';
import { httpUrlProblem } from '../component/http-url.ts';
import type { TopologyProblem } from './topology-problem.ts';

/**
 * The checks that look across topology.yaml, after each part has its expected shape: names,
 * component types and their config, which topics exist, who writes what, co-partitioning,
 * schema files. Every check tolerates parts that already failed the shape check (it skips them),
 * so one mistake yields one problem rather than a cascade.
 */
export interface CheckContext {
  readonly yaml: PositionedYaml;
  readonly registry: ComponentRegistry;
  /** The topology file's folder: relative paths in it resolve from here. */
  readonly baseDir: string;
  readonly problems: TopologyProblem[];
  /** Where warnings go (validate prints them; the topology stays valid). */
  readonly warnings?: TopologyProblem[];
}

/** What the checks computed that the loader needs to build the topology. */
export interface CheckedParts {
  readonly contracts: ReadonlyMap<string, AvroContract>;
  /** Component label -> its config, validated and with the component's defaults applied. */
  readonly configs: ReadonlyMap<string, Record<string, unknown>>;
  /** Component label -> the kind its type has. */
  readonly kinds: ReadonlyMap<string, ComponentKind>;
  /** `connections.<kind>.<name>` of the kinds components declare, validated, with defaults applied. */
  readonly connections: Record<string, Record<string, Record<string, unknown>>>;
}

export const TOPIC_NAME = /^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.v[1-9][0-9]*$/;
export const INTERNAL_TOPIC_NAME = /^_lifeline\.[A-Za-z0-9._-]+$/;
/** Operational topics the design names directly: ops.sla.v1, ops.audit.v1, ops.quarantine.v1, ops.replay-plans.v1. */
export const OPS_TOPIC_NAME = /^ops\.[a-z][a-z0-9_-]*\.v[1-9][0-9]*$/;
const DEAD_LETTER_TOPIC = /^ops\.dlq\.([a-z][a-z0-9_]*)\.v1$/;
const LABEL = /^[a-z][a-z0-9_]*$/;
const APP_ID = /^[A-Za-z0-9._-]+$/;
const BROKER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/;
/** Kafka refuses longer topic names. */
const MAX_TOPIC_NAME_LENGTH = 249;

const SECTION_KIND_WORDS: Record<'processors' | 'connectors', string> = {
  processors: 'a processor',
  connectors: 'a source or sink connector',
};

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringsOf(value: unknown): Array<{ value: string; index: number }> {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item, index) => (typeof item === 'string' ? [{ value: item, index }] : []));
}

/** Splits `brokers` (a list, or one comma-separated string) into host:port entries with where each came from. */
export function brokerEntries(brokers: unknown): Array<{ broker: string; path: PathSegment[] }> {
  const entries: Array<{ broker: string; path: PathSegment[] }> = [];
  const split = (text: string, path: PathSegment[]): void => {
    for (const part of text.split(',')) if (part.trim()) entries.push({ broker: part.trim(), path });
  };
  const base: PathSegment[] = ['connections', 'kafka', 'brokers'];
  if (typeof brokers === 'string') split(brokers, base);
  else for (const { value, index } of stringsOf(brokers)) split(value, [...base, index]);
  return entries;
}

export function resolvePath(baseDir: string, path: string): string {
  return isAbsolute(path) ? path : resolve(baseDir, path);
}

export function checkTopology(file: Record<string, unknown>, context: CheckContext): CheckedParts {
  const connections = checkConnections(file, context);
  if (typeof file.app_id === 'string' && !APP_ID.test(file.app_id)) {
    report(context, ['app_id'], 'must be letters, digits, ".", "_" or "-": it prefixes consumer group and transactional ids');
  }
  const topics = isRecord(file.topics) ? file.topics : {};
  const contracts = checkTopics(topics, context);
  const components = collectComponents(file, context);
  const kinds = new Map<string, ComponentKind>();
  const configs = new Map<string, Record<string, unknown>>();
  const writers = new Map<string, Array<{ label: string; path: PathSegment[] }>>();
  const labels = new Set(components.map((component) => component.label));
  for (const component of components) {
    const definition = checkComponentType(component, context);
    if (definition) {
      kinds.set(component.label, definition.kind);
      const config = checkComponentConfig(component, definition, context);
      if (config) configs.set(component.label, config);
      checkOutputNames(component, definition, context);
      if (config && definition.warnings && context.warnings) {
        const mapped = new Set(outputsOf(component).map((output) => output.name));
        for (const warning of definition.warnings(config as never, { has: (output) => mapped.has(output) })) {
          context.warnings.push(context.yaml.problem([component.section, component.label, 'config', ...warning.path], warning.message));
        }
      }
      checkInputPresence(component, definition, context);
      if (config) checkTables(component, definition, config, topics, context);
      // A processor that repartitions its inputs through an internal topic needs no co-partitioned inputs.
      const repartitions = config ? definition.repartitions?.(config as never) ?? [] : [];
      if (repartitions.length === 0) checkCoPartitioning(component, definition, topics, context);
      if (config && definition.kind === 'processor' && definition.preservesPartitioning?.(config as never)) checkPreservedPartitioning(component, topics, context);
    }
    checkInputTopics(component, topics, labels, context);
    // An output the component does not have was reported above; where it leads does not matter.
    const outputNames = definition?.outputs.map((output) => output.replace(/\?$/, ''));
    const outputs = outputsOf(component).filter((output) => !outputNames || outputNames.includes(output.name));
    for (const output of outputs) {
      if (DEAD_LETTER_TOPIC.test(output.topic)) {
        report(context, output.path, `${output.topic} is a dead-letter topic: the runtime writes it for on_error: dlq; components do not`);
      } else if (!(output.topic in topics)) {
        report(context, output.path, undeclared(output.topic));
      } else {
        const list = writers.get(output.topic) ?? [];
        list.push({ label: component.label, path: output.path });
        writers.set(output.topic, list);
      }
    }
  }
  checkSingleWriters(writers, topics, context);
  return { contracts, configs, kinds, connections };
}

function report(context: CheckContext, path: readonly PathSegment[], message: string, target: 'value' | 'key' = 'value'): void {
  context.problems.push(context.yaml.problem(path, message, target));
}

function undeclared(topic: string): string {
  return `topic ${topic} is not declared under topics`;
}

function checkConnections(file: Record<string, unknown>, context: CheckContext): CheckedParts['connections'] {
  const connections = isRecord(file.connections) ? file.connections : {};
  const kafka = isRecord(connections.kafka) ? connections.kafka : {};
  for (const { broker, path } of brokerEntries(kafka.brokers)) {
    const match = BROKER.exec(broker);
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) report(context, path, `"${broker}" must be host:port, e.g. 127.0.0.1:9092`);
  }
  if (isRecord(kafka.tls)) {
    for (const key of ['ca_file', 'cert_file', 'key_file']) {
      const value = kafka.tls[key];
      if (typeof value === 'string' && value && !existsSync(resolvePath(context.baseDir, value))) {
        report(context, ['connections', 'kafka', 'tls', key], `file ${value} does not exist`);
      }
    }
    if ((kafka.tls.cert_file === undefined) !== (kafka.tls.key_file === undefined)) {
      report(context, ['connections', 'kafka', 'tls'], 'cert_file and key_file go together: mutual TLS needs both');
    }
  }
  const registry = isRecord(connections.registry) ? connections.registry : {};
  checkHttpUrl(registry.url, ['connections', 'registry', 'url'], context);
  checkFileExists(registry.ca_file, ['connections', 'registry', 'ca_file'], context);
  return checkComponentConnections(connections, context);
}

/** `connections.<kind>` for every kind other than kafka and registry: the kind's connectors declare its schema. */
function checkComponentConnections(connections: Record<string, unknown>, context: CheckContext): CheckedParts['connections'] {
  const kinds = context.registry.connectionKinds();
  const checked: CheckedParts['connections'] = {};
  for (const [kindName, named] of Object.entries(connections)) {
    if ((CORE_CONNECTION_KINDS as readonly string[]).includes(kindName)) continue;
    const kind = kinds.get(kindName);
    if (!kind) {
      const known = [...CORE_CONNECTION_KINDS, ...[...kinds.keys()].sort()];
      report(context, ['connections', kindName], `unknown connection kind "${kindName}"; known kinds: ${known.join(', ')}`, 'key');
      continue;
    }
    if (!isRecord(named)) continue; // the file's shape check already reported it
    const entries: Record<string, Record<string, unknown>> = {};
    for (const [name, connection] of Object.entries(named)) {
      const path: PathSegment[] = ['connections', kindName, name];
      if (!LABEL.test(name)) report(context, path, 'connection names must match ^[a-z][a-z0-9_]*$', 'key');
      if (!isRecord(connection)) continue;
      const withDefaults = Value.Default(kind.schema, Value.Clone(connection)) as Record<string, unknown>;
      const problems = schemaProblems(kind.schema, withDefaults, path, context.yaml);
      context.problems.push(...problems);
      if (problems.length > 0) continue;
      for (const problem of kind.check?.(withDefaults as never) ?? []) report(context, [...path, problem.key], problem.message);
      // Every `*_file` of a connection (e.g. odoo's ca_file) is a path relative to topology.yaml; empty means none.
      for (const [key, value] of Object.entries(withDefaults)) {
        if (!key.endsWith('_file') || typeof value !== 'string') continue;
        if (!value) { delete withDefaults[key]; continue; }
        checkFileExists(value, [...path, key], context);
        withDefaults[key] = resolvePath(context.baseDir, value);
      }
      entries[name] = withDefaults;
    }
    checked[kindName] = entries;
  }
  return checked;
}

/** A `*_file` path of a connection (relative to topology.yaml; empty means none) must name an existing file. */
function checkFileExists(value: unknown, path: PathSegment[], context: CheckContext): void {
  if (typeof value === 'string' && value && !existsSync(resolvePath(context.baseDir, value))) report(context, path, `file ${value} does not exist`);
}

function checkHttpUrl(value: unknown, path: PathSegment[], context: CheckContext): void {
  const problem = httpUrlProblem(value);
  if (problem) report(context, path, problem);
}

function checkTopics(topics: Record<string, unknown>, context: CheckContext): Map<string, AvroContract> {
  const contracts = new Map<string, AvroContract>();
  const bySchemaFile = new Map<string, AvroContract | undefined>();
  for (const [name, entry] of Object.entries(topics)) {
    if (!(TOPIC_NAME.test(name) || OPS_TOPIC_NAME.test(name) || INTERNAL_TOPIC_NAME.test(name)) || name.length > MAX_TOPIC_NAME_LENGTH) {
      report(context, ['topics', name],
        'topic names must look like <domain>.<entity>.<event>.v<major> (lower case, e.g. partner.lab_charge.received.v1), ops.<name>.v<major>, or start with _lifeline.', 'key');
    }
    if (!isRecord(entry)) continue;
    if (entry.compact === true && entry.retention !== undefined) {
      report(context, ['topics', name, 'compact'], 'compact and retention cannot both be set: a compacted topic keeps the latest record per key for good; drop one');
    }
    if (typeof entry.value_schema === 'string' && entry.value_schema) {
      const schemaFile = resolvePath(context.baseDir, entry.value_schema);
      if (!bySchemaFile.has(schemaFile)) {
        try {
          bySchemaFile.set(schemaFile, loadContract(schemaFile));
        } catch (error) {
          bySchemaFile.set(schemaFile, undefined);
          // Name the file as the topology does, not by its absolute path.
          report(context, ['topics', name, 'value_schema'], errorMessage(error).split(schemaFile).join(entry.value_schema));
        }
      }
      const contract = bySchemaFile.get(schemaFile);
      if (contract) contracts.set(name, contract);
    }
  }
  return contracts;
}

interface ComponentEntry {
  readonly section: 'processors' | 'connectors';
  readonly label: string;
  readonly entry: Record<string, unknown>;
}

function collectComponents(file: Record<string, unknown>, context: CheckContext): ComponentEntry[] {
  const components: ComponentEntry[] = [];
  const firstSection = new Map<string, string>();
  for (const section of ['processors', 'connectors'] as const) {
    const entries = file[section];
    if (!isRecord(entries)) continue;
    for (const [label, entry] of Object.entries(entries)) {
      if (!LABEL.test(label)) {
        report(context, [section, label], 'labels must match ^[a-z][a-z0-9_]*$ (they name consumer groups, stores and dead-letter topics)', 'key');
      }
      const earlier = firstSection.get(label);
      if (earlier) {
        report(context, [section, label], `label ${label} is already used by ${earlier}.${label}; labels must be unique across processors and connectors`, 'key');
        continue;
      }
      firstSection.set(label, section);
      if (isRecord(entry)) components.push({ section, label, entry });
    }
  }
  return components;
}

function checkComponentType(component: ComponentEntry, context: CheckContext): ComponentDefinition | undefined {
  const type = component.entry.type;
  if (typeof type !== 'string' || !type) return undefined;
  const path = [component.section, component.label, 'type'];
  if (!context.registry.has(type)) {
    report(context, path, `unknown component type "${type}"; known types: ${context.registry.types().join(', ') || '(none registered)'}`);
    return undefined;
  }
  const definition = context.registry.get(type);
  const belongsIn = definition.kind === 'processor' ? 'processors' : 'connectors';
  if (belongsIn !== component.section) {
    report(context, path, `${type} is a ${definition.kind}, not ${SECTION_KIND_WORDS[component.section]}; declare it under ${belongsIn}`);
    return undefined;
  }
  return definition;
}

function checkComponentConfig(component: ComponentEntry, definition: ComponentDefinition, context: CheckContext): Record<string, unknown> | undefined {
  const config = component.entry.config ?? {};
  if (!isRecord(config)) return undefined; // the file's shape check already reported it
  const path = [component.section, component.label, 'config'];
  // Defaults first: a key with a default is not missing when the file leaves it out.
  const withDefaults = Value.Default(definition.config, Value.Clone(config)) as Record<string, unknown>;
  const problems = schemaProblems(definition.config, withDefaults, path, context.yaml);
  context.problems.push(...problems);
  if (problems.length > 0) return undefined;
  return withDefaults;
}

interface OutputDeclaration {
  readonly name: string;
  readonly topic: string;
  readonly path: PathSegment[];
}

function outputsOf(component: ComponentEntry): OutputDeclaration[] {
  const outputs = component.entry.outputs;
  if (!isRecord(outputs)) return [];
  return Object.entries(outputs).flatMap(([name, topic]) =>
    typeof topic === 'string' && topic ? [{ name, topic, path: [component.section, component.label, 'outputs', name] }] : []);
}

function checkOutputNames(component: ComponentEntry, definition: ComponentDefinition, context: CheckContext): void {
  const declared = definition.outputs.map((output) => ({ name: output.replace(/\?$/, ''), optional: output.endsWith('?') }));
  const mapped = isRecord(component.entry.outputs) ? Object.keys(component.entry.outputs) : [];
  const known = declared.map((output) => output.name);
  for (const name of mapped) {
    if (!known.includes(name)) {
      const has = known.length > 0 ? `its outputs are: ${known.join(', ')}` : 'it has no outputs';
      report(context, [component.section, component.label, 'outputs', name], `${definition.type} has no output "${name}"; ${has}`, 'key');
    }
  }
  for (const output of declared) {
    if (!output.optional && !mapped.includes(output.name)) {
      report(context, [component.section, component.label, 'outputs', output.name], `is required: ${definition.type} forwards records to its "${output.name}" output; map it to a topic`);
    }
  }
}

function checkInputPresence(component: ComponentEntry, definition: ComponentDefinition, context: CheckContext): void {
  const inputs = component.entry.inputs;
  const path = [component.section, component.label, 'inputs'];
  if (definition.kind === 'source' && Array.isArray(inputs) && inputs.length > 0) {
    report(context, path, `${definition.type} is a source: it reads from outside Kafka and takes no inputs`);
  }
  if (definition.kind === 'sink' && (inputs === undefined || (Array.isArray(inputs) && inputs.length === 0))) {
    report(context, path, `is required: ${definition.type} is a sink and writes the records of its input topics`);
  }
}

function checkInputTopics(component: ComponentEntry, topics: Record<string, unknown>, labels: ReadonlySet<string>, context: CheckContext): void {
  const seen = new Set<string>();
  for (const { value: topic, index } of stringsOf(component.entry.inputs)) {
    const path = [component.section, component.label, 'inputs', index];
    if (seen.has(topic)) report(context, path, `${topic} is listed twice`);
    seen.add(topic);
    const deadLetters = DEAD_LETTER_TOPIC.exec(topic);
    if (topic in topics) continue;
    if (deadLetters) {
      // The runtime creates dead-letter topics, so they need no declaration, but the component must exist.
      if (!labels.has(deadLetters[1] as string)) report(context, path, `${topic} is the dead-letter topic of ${deadLetters[1]}, which is not declared`);
      continue;
    }
    report(context, path, undeclared(topic));
  }
}

/** Reference tables must come from declared, compacted topics: a table is the latest value per key. */
function checkTables(
  component: ComponentEntry, definition: ComponentDefinition, config: Record<string, unknown>, topics: Record<string, unknown>, context: CheckContext,
): void {
  for (const table of definition.tables?.(config as never) ?? []) {
    const path = [component.section, component.label, 'config'];
    const entry = topics[table.topic];
    if (!isRecord(entry)) report(context, path, `table ${table.name} reads ${undeclared(table.topic)}`);
    else if (entry.compact !== true) report(context, path, `table ${table.name} reads ${table.topic}, which is not compacted (set compact: true): a table keeps the latest value per key`);
  }
}

function checkSingleWriters(
  writers: ReadonlyMap<string, ReadonlyArray<{ label: string; path: PathSegment[] }>>,
  topics: Record<string, unknown>,
  context: CheckContext,
): void {
  for (const [topic, list] of writers) {
    const entry = topics[topic];
    if (list.length < 2 || (isRecord(entry) && entry.shared_writers === true)) continue;
    const first = list[0] as { label: string; path: PathSegment[] };
    for (const writer of list.slice(1)) {
      report(context, writer.path,
        `topic ${topic} is already written by ${first.label} (${context.yaml.location(first.path)}); ` +
        `give each writer its own topic, or set shared_writers: true on topics.${topic}`);
    }
  }
}

/**
 * Outputs are placed by key (Kafka's default partitioner) unless the processor declares that it
 * preserves partitioning: then they keep the input's partition, which only means the same thing on
 * an output with as many partitions as the inputs.
 */
function checkPreservedPartitioning(component: ComponentEntry, topics: Record<string, unknown>, context: CheckContext): void {
  const partitionsOf = (topic: string): number | undefined => {
    const entry = topics[topic];
    return isRecord(entry) && typeof entry.partitions === 'number' ? entry.partitions : undefined;
  };
  const inputs = stringsOf(component.entry.inputs).map(({ value }) => partitionsOf(value)).filter((count): count is number => count !== undefined);
  const inputPartitions = Math.max(0, ...inputs);
  if (inputPartitions === 0) return;
  for (const output of outputsOf(component)) {
    const count = partitionsOf(output.topic);
    if (count !== undefined && count !== inputPartitions) {
      report(context, output.path, `${component.label} keeps each output on its input's partition (it preserves partitioning), so ${output.topic} needs ${inputPartitions} partitions like its inputs, not ${count}`);
    }
  }
}

function checkCoPartitioning(component: ComponentEntry, definition: ComponentDefinition, topics: Record<string, unknown>, context: CheckContext): void {
  if (!definition.stateful) return;
  const declared = stringsOf(component.entry.inputs).flatMap(({ value }) => {
    const entry = topics[value];
    return isRecord(entry) && typeof entry.partitions === 'number' ? [{ topic: value, partitions: entry.partitions, key: entry.key }] : [];
  });
  const counts = new Set(declared.map((input) => input.partitions));
  const path = [component.section, component.label, 'inputs'];
  if (counts.size > 1) {
    const listing = declared.map((input) => `${input.topic} has ${input.partitions}`).join(', ');
    report(context, path, `${definition.type} keeps per-key state, so its inputs must be co-partitioned (same partition count): ${listing}`);
  }
  const keys = new Set(declared.flatMap((input) => (typeof input.key === 'string' && input.key ? [input.key] : [])));
  if (keys.size > 1) {
    const listing = declared.filter((input) => typeof input.key === 'string' && input.key).map((input) => `${input.topic} by "${String(input.key)}"`).join(', ');
    report(context, path, `${definition.type} keeps per-key state, so its inputs must be keyed alike: ${listing}`);
  }
}
