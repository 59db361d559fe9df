import type { ComponentKind } from '../component/component.ts';
import type { KafkaConnectionConfig } from '../kafka/client.ts';
import type { SchemaRegistryConfig } from '../kafka/avro-serde.ts';
import type { AvroContract } from '../kafka/avro-contract.ts';
import type { TopologyProblem } from './topology-problem.ts';

/**
 * A validated topology: what `loadTopology` returns once topology.yaml passed every check.
 * Secrets are resolved, defaults applied, paths absolute, and the whole value frozen.
 */
export type Classification = 'phi' | 'personal' | 'internal' | 'public';

export interface TopicDeclaration {
  readonly name: string;
  /** What the record key is, e.g. "<model>:<id>" or "idempotency key". */
  readonly key: string;
  /** Absolute path of the value schema, and the compiled contract. */
  readonly valueSchemaFile: string;
  readonly contract: AvroContract;
  readonly partitions: number;
  readonly retentionMs?: number;
  readonly compact: boolean;
  readonly owner: string;
  readonly description: string;
  readonly classification: Classification;
  /** More than one component may write it only when declared. */
  readonly sharedWriters: boolean;
}

export type ErrorPolicy = 'dlq' | 'fail' | 'continue';
export type ProcessingGuarantee = 'exactly_once' | 'at_least_once';

export interface ComponentDeclaration {
  readonly label: string;
  readonly kind: ComponentKind;
  readonly type: string;
  readonly description?: string;
  readonly inputs: readonly string[];
  /** Output name (as the component forwards to it) -> topic name. */
  readonly outputs: Readonly<Record<string, string>>;
  /** Validated against the component's schema, with defaults applied. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly onError: ErrorPolicy;
  readonly guarantee: ProcessingGuarantee;
  /** Where the declaration starts, for messages: `topology.yaml:42:5`. */
  readonly position: string;
}

/** Connections of the kinds components declare: kind -> name -> config (validated, secrets resolved). */
export type ComponentConnections = Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;

export interface RuntimeSettings {
  /** Prefix of consumer groups and transactional ids (`<app_id>.<label>`). */
  readonly appId: string;
  /** Port of /metrics, /healthz, /readyz. */
  readonly httpPort: number;
  /** Where on-disk state stores live. */
  readonly stateDir: string;
  readonly storeKind: 'memory' | 'lmdb';
  /** A transaction commits after this many input records or this many ms, whichever first. */
  readonly commitMaxRecords: number;
  /** Exactly-once processors: a transactional producer per input partition, or one per processor and process (KIP-447). */
  readonly transactions: 'per_partition' | 'per_process';
  readonly commitIntervalMs: number;
  /** Longest a partition's store restore may take before the process reports not ready (LL_RESTORE_TIMEOUT). */
  readonly restoreTimeoutMs: number;
  readonly logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
}

export interface Topology {
  readonly file: string;
  readonly kafka: KafkaConnectionConfig;
  readonly registry: SchemaRegistryConfig;
  /** `connections.<kind>` beyond kafka and registry, e.g. `odoo`, each validated by the kind its connectors declare. */
  readonly connections: ComponentConnections;
  readonly runtime: RuntimeSettings;
  readonly topics: Readonly<Record<string, TopicDeclaration>>;
  readonly components: Readonly<Record<string, ComponentDeclaration>>;
  /** What `topology validate` warns about (e.g. a partner type no output routes); the topology is valid. */
  readonly warnings?: readonly TopologyProblem[];
}

/** PHI field paths of every declared topic's value schema, for scrubbing error text. */
export function phiPathsByTopic(topology: Topology): ReadonlyMap<string, readonly string[]> {
  return new Map(Object.values(topology.topics).map((topic) => [topic.name, topic.contract.phiPaths]));
}

/** The dead-letter topic of a component. */
export function deadLetterTopic(label: string): string {
  return `ops.dlq.${label}.v1`;
}

/** The internal topic through which a processor re-keys records (see ProcessorContext.repartition). */
export function repartitionTopic(appId: string, label: string, name: string): string {
  return `_lifeline.${appId}.${label}.${name}.repartition`;
}

/** The changelog topic backing one store of one processor. */
export function changelogTopic(appId: string, label: string, store: string): string {
  return `_lifeline.${appId}.${label}.${store}.changelog`;
}
