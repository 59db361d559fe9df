import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { errorMessage } from '../errors.ts';
import type { KafkaConnectionConfig } from '../kafka/client.ts';
import type { ComponentRegistry } from '../component/component-registry.ts';
import { parseDuration } from '../component/duration.ts';
import { isSecretKey, literalSecretProblem, resolveReferences, type ReferenceContext } from './config-references.ts';
import type { ComponentDeclaration, ProcessingGuarantee, TopicDeclaration, Topology } from './model.ts';
import { PositionedYaml, type PathSegment } from './positioned-yaml.ts';
import { schemaProblems } from './schema-problems.ts';
import { brokerEntries, checkTopology, isRecord, resolvePath, type CheckedParts } from './topology-checks.ts';
import {
  CORE_CONNECTION_KINDS, DEFAULT_APP_ID, DEFAULT_CLIENT_ID, OPTIONAL_SECTIONS, RUNTIME_DEFAULTS, TopologyFileSchema,
  type ConnectorEntry, type ProcessorEntry, type TopologyFile,
} from './topology-file-schema.ts';
import { sortTopologyProblems, topologyInvalid, type TopologyProblem } from './topology-problem.ts';

export interface LoadOptions {
  /**
   * What an unset secret is: an error (the default: `lifeline run` needs them), or a warning
   * collected in `warnings` (commands that only read Kafka use no secret and need none set).
   */
  readonly unsetSecrets?: 'error' | 'warn';
  /**
   * The caller only reads Kafka (topics, consume, groups, dlq, audit, catalog, describe, graph):
   * with `unsetSecrets: 'warn'`, any unset value only `lifeline run` uses (the Odoo connections,
   * component config) is a warning too.
   */
  readonly readsKafkaOnly?: boolean;
  readonly warnings?: TopologyProblem[];
}

/**
 * Reads and validates topology.yaml. Every problem in the file is collected (not just the first)
 * and thrown together as LL_TOPOLOGY_INVALID, each naming file, line, column and path. Nothing
 * here touches the network: validation happens before anything connects.
 *
 * @param file the path as the caller wrote it; problems name the file this way.
 * @param env where `${VAR}` references are looked up.
 */
export function loadTopology(file: string, registry: ComponentRegistry, env: NodeJS.ProcessEnv = process.env, options: LoadOptions = {}): Topology {
  const absoluteFile = resolve(file);
  const baseDir = dirname(absoluteFile);
  let text: string;
  try {
    text = readFileSync(absoluteFile, 'utf8');
  } catch (error) {
    throw topologyInvalid([{ file, line: 1, column: 1, path: '', message: `cannot read the topology file: ${errorMessage(error)}` }]);
  }
  const parsed = PositionedYaml.parse(text, file);
  if (!parsed.yaml) throw topologyInvalid(parsed.problems);
  const yaml = parsed.yaml;

  const references: ReferenceContext = { env, baseDir };
  const resolutionProblems: TopologyProblem[] = [];
  const secretProblems: TopologyProblem[] = options.unsetSecrets === 'warn' ? [] : resolutionProblems;
  const plain = yaml.toPlainValue((value, path) => resolveScalar(value, path, references, yaml, resolutionProblems, secretProblems, options.readsKafkaOnly === true), resolutionProblems);
  if (!isRecord(plain)) {
    resolutionProblems.push(yaml.problem([], 'the file must be a mapping with version, connections, topics, processors and connectors'));
    throw topologyInvalid(resolutionProblems);
  }
  dropEmptySections(plain);
  const checkProblems = schemaProblems(TopologyFileSchema, plain, [], yaml);
  const warnings: TopologyProblem[] = [];
  const checked = checkTopology(plain, { yaml, registry, baseDir, problems: checkProblems, warnings });
  // A value whose reference did not resolve is reported once, for the reference; that its
  // empty stand-in then "must not be empty" would only echo it.
  const unresolved = new Set([...resolutionProblems, ...secretProblems].map((problem) => problem.path));
  if (secretProblems !== resolutionProblems) options.warnings?.push(...secretProblems);
  const problems = [...resolutionProblems, ...checkProblems.filter((problem) => !unresolved.has(problem.path))];
  if (problems.length > 0) throw topologyInvalid(problems);

  const topologyFile = Value.Default(TopologyFileSchema, plain) as TopologyFile;
  return deepFreeze({ ...buildTopology(topologyFile, checked, absoluteFile, baseDir, yaml), warnings: sortTopologyProblems(warnings) });
}

/** Resolves `${…}` in one scalar and enforces that secrets are references, reporting at the scalar. */
function resolveScalar(value: unknown, path: readonly PathSegment[], references: ReferenceContext, yaml: PositionedYaml, problems: TopologyProblem[], secretProblems: TopologyProblem[], readsKafkaOnly: boolean): unknown {
  const secret = carriesSecret(path);
  if (secret) {
    const literal = literalSecretProblem(value);
    if (literal) problems.push(yaml.problem(path, literal));
  }
  if (typeof value !== 'string') return value;
  const resolved = resolveReferences(value, references);
  // What only `lifeline run` uses (secrets, the Odoo connections, component config) may wait for it.
  const deferrable = secret || (readsKafkaOnly && usedOnlyByRun(path));
  for (const message of resolved.problems) (deferrable ? secretProblems : problems).push(yaml.problem(path, message));
  // A value that is one reference and resolves to a whole number is a number, so ports and sizes
  // can come from the environment (`port: "${LIFELINE_WEBHOOK_PORT:-8088}"`).
  if (!secret && WHOLE_REFERENCE.test(value) && /^(0|[1-9][0-9]{0,14})$/.test(resolved.value)) return Number(resolved.value);
  return resolved.value;
}

const WHOLE_REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Values the commands that only read Kafka never use: connections other than Kafka and the registry, component config. */
function usedOnlyByRun(path: readonly PathSegment[]): boolean {
  if (path[0] === 'connections') return path[1] !== 'kafka' && path[1] !== 'registry';
  return (path[0] === 'connectors' || path[0] === 'processors') && path[2] === 'config';
}

/**
 * Whether a value sits under a secret-bearing key. Names chosen by the author (topic names,
 * component labels, connection names, output names) are not keys in this sense: a processor
 * labelled `token_refresh` holds no secret.
 */
function carriesSecret(path: readonly PathSegment[]): boolean {
  return path.some((segment, index) => typeof segment === 'string' && !isAuthorChosenName(path, index) && isSecretKey(segment));
}

function isAuthorChosenName(path: readonly PathSegment[], index: number): boolean {
  const section = path[0];
  if (index === 1) return section === 'topics' || section === 'processors' || section === 'connectors';
  if (index === 2) return section === 'connections' && typeof path[1] === 'string' && !(CORE_CONNECTION_KINDS as readonly string[]).includes(path[1]);
  if (index === 3) return (section === 'processors' || section === 'connectors') && path[2] === 'outputs';
  return false;
}

/** `processors:` with every entry commented out means "none", not "a mapping is required". */
function dropEmptySections(file: Record<string, unknown>): void {
  for (const section of OPTIONAL_SECTIONS) if (file[section] === null) delete file[section];
  for (const section of ['processors', 'connectors'] as const) {
    const entries = file[section];
    if (!isRecord(entries)) continue;
    for (const entry of Object.values(entries)) {
      if (!isRecord(entry)) continue;
      for (const key of ['config', 'outputs']) if (entry[key] === null) delete entry[key];
    }
  }
  const connections = file.connections;
  if (!isRecord(connections)) return;
  for (const [kind, named] of Object.entries(connections)) if (named === null && !(CORE_CONNECTION_KINDS as readonly string[]).includes(kind)) delete connections[kind];
}

function buildTopology(file: TopologyFile, checked: CheckedParts, absoluteFile: string, baseDir: string, yaml: PositionedYaml): Topology {
  const { kafka, registry } = file.connections;
  const runtime = file.runtime ?? {};
  const appId = file.app_id ?? DEFAULT_APP_ID;

  const topics: Record<string, TopicDeclaration> = {};
  for (const [name, topic] of Object.entries(file.topics ?? {})) {
    const retentionMs = topic.retention === undefined ? undefined : parseDuration(topic.retention);
    topics[name] = {
      name,
      key: topic.key ?? '',
      valueSchemaFile: resolvePath(baseDir, topic.value_schema),
      contract: checked.contracts.get(name) as TopicDeclaration['contract'],
      partitions: topic.partitions,
      ...(retentionMs === undefined ? {} : { retentionMs }),
      compact: topic.compact ?? false,
      owner: topic.owner,
      description: topic.description ?? '',
      classification: topic.classification,
      sharedWriters: topic.shared_writers ?? false,
    };
  }

  const components: Record<string, ComponentDeclaration> = {};
  const declare = (section: 'processors' | 'connectors', label: string, entry: ProcessorEntry | ConnectorEntry, declared?: ProcessingGuarantee): void => {
    const kind = checked.kinds.get(label) ?? 'processor';
    components[label] = {
      label,
      kind,
      type: entry.type,
      ...(entry.description === undefined ? {} : { description: entry.description }),
      inputs: entry.inputs ?? [],
      outputs: entry.outputs ?? {},
      config: checked.configs.get(label) ?? {},
      onError: entry.on_error ?? 'dlq',
      // Only processors choose; a source commits its cursor with its records, a sink relies on idempotent writes.
      guarantee: declared ?? (kind === 'sink' ? 'at_least_once' : 'exactly_once'),
      position: yaml.location([section, label], 'key'),
    };
  };
  for (const [label, entry] of Object.entries(file.processors ?? {})) declare('processors', label, entry, entry.guarantee);
  for (const [label, entry] of Object.entries(file.connectors ?? {})) declare('connectors', label, entry);

  return {
    file: absoluteFile,
    kafka: kafkaConnection(kafka, baseDir),
    registry: {
      url: registry.url,
      ...(registry.username ? { username: registry.username } : {}),
      ...(registry.password ? { password: registry.password } : {}),
      ...(registry.ca_file ? { caFile: resolvePath(baseDir, registry.ca_file) } : {}),
    },
    connections: checked.connections,
    runtime: {
      appId,
      httpPort: runtime.http_port ?? RUNTIME_DEFAULTS.http_port,
      stateDir: resolvePath(baseDir, runtime.state_dir ?? RUNTIME_DEFAULTS.state_dir),
      storeKind: runtime.store ?? RUNTIME_DEFAULTS.store,
      commitMaxRecords: runtime.commit_max_records ?? RUNTIME_DEFAULTS.commit_max_records,
      transactions: runtime.transactions ?? RUNTIME_DEFAULTS.transactions,
      commitIntervalMs: parseDuration(runtime.commit_interval ?? RUNTIME_DEFAULTS.commit_interval) as number,
      restoreTimeoutMs: parseDuration(runtime.restore_timeout ?? RUNTIME_DEFAULTS.restore_timeout) as number,
      logLevel: (runtime.log_level ?? RUNTIME_DEFAULTS.log_level) as Topology['runtime']['logLevel'],
    },
    topics,
    components,
  };
}

function kafkaConnection(kafka: TopologyFile['connections']['kafka'], baseDir: string): KafkaConnectionConfig {
  const tls = kafka.tls;
  return {
    brokers: brokerEntries(kafka.brokers).map((entry) => entry.broker),
    clientId: kafka.client_id ?? DEFAULT_CLIENT_ID,
    ...(tls === undefined ? {} : {
      tls: typeof tls === 'boolean' ? tls : {
        ...(tls.ca_file ? { caFile: resolvePath(baseDir, tls.ca_file) } : {}),
        ...(tls.cert_file ? { certFile: resolvePath(baseDir, tls.cert_file) } : {}),
        ...(tls.key_file ? { keyFile: resolvePath(baseDir, tls.key_file) } : {}),
        ...(tls.reject_unauthorized === undefined ? {} : { rejectUnauthorized: tls.reject_unauthorized }),
      },
    }),
    ...(kafka.sasl ? { sasl: { ...kafka.sasl } } : {}),
  };
}

/**
 * Freezes plain objects and arrays all the way down. Class instances and values frozen already
 * (each Avro contract, whose compiled type keeps internal caches) are left as their owner made them.
 */
function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  const prototype: unknown = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && prototype !== Object.prototype && prototype !== null) return value;
  for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  return Object.freeze(value);
}
