import { Type, type Static } from '@sinclair/typebox';
import { DURATION_PATTERN } from '../component/duration.ts';

/**
 * The shape of topology.yaml, before references between its parts are checked. Names that carry
 * their own rules (topic names, labels, brokers) are checked by the loader, whose messages can
 * say what a good name looks like; component `config` is checked against each component's schema.
 */

export const RUNTIME_DEFAULTS = {
  http_port: 9464,
  state_dir: '.lifeline/state',
  store: 'lmdb',
  commit_max_records: 5000,
  transactions: 'per_process',
  commit_interval: '1s',
  restore_timeout: '10m',
  log_level: 'info',
} as const;

export const DEFAULT_APP_ID = 'lifeline';
export const DEFAULT_CLIENT_ID = 'lifeline';

const Duration = (description: string, defaultValue?: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, ...(defaultValue ? { default: defaultValue } : {}) });

const NonEmptyString = (description: string) => Type.String({ minLength: 1, description });

const TlsFiles = Type.Object({
  ca_file: Type.Optional(NonEmptyString('PEM file of the certificate authorities to trust; relative to topology.yaml.')),
  cert_file: Type.Optional(NonEmptyString('PEM client certificate, for mutual TLS.')),
  key_file: Type.Optional(NonEmptyString('PEM private key of the client certificate.')),
  reject_unauthorized: Type.Optional(Type.Boolean({ description: 'Verify the brokers\' certificates (default true).' })),
}, { additionalProperties: false });

const KafkaConnection = Type.Object({
  // One string is accepted too, so a whole broker list can come from one variable.
  brokers: Type.Union([NonEmptyString('host:port, or several separated by commas'), Type.Array(NonEmptyString('host:port'), { minItems: 1 })], {
    description: 'Bootstrap brokers: a list of host:port, or one string (several separated by commas), e.g. from one ${VAR}.',
  }),
  client_id: Type.Optional(NonEmptyString('Kafka client id.')),
  tls: Type.Optional(Type.Union([Type.Boolean(), TlsFiles], { description: 'true for TLS with the system\'s certificate authorities, or the files to use.' })),
  sasl: Type.Optional(Type.Object({
    mechanism: Type.Union([Type.Literal('plain'), Type.Literal('scram-sha-256'), Type.Literal('scram-sha-512')], { description: 'SASL mechanism.' }),
    username: NonEmptyString('SASL user name.'),
    password: Type.String({ description: 'A ${ENV} or ${file:…} reference.' }),
  }, { additionalProperties: false, description: 'SASL authentication.' })),
}, { additionalProperties: false, description: 'The Kafka cluster (any Kafka-compatible cluster, with SASL/TLS).' });

const RegistryConnection = Type.Object({
  url: NonEmptyString('Base URL of a Confluent-compatible schema registry API.'),
  username: Type.Optional(Type.String({ description: 'Basic auth user of the registry.' })),
  password: Type.Optional(Type.String({ description: 'A ${ENV} or ${file:…} reference.' })),
  ca_file: Type.Optional(Type.String({ description: 'PEM file of a private CA to trust for an https:// url, besides the system\'s; relative to topology.yaml. Empty means none (e.g. "${LIFELINE_REGISTRY_CA_FILE:-}").' })),
}, { additionalProperties: false, description: 'The schema registry (Confluent-compatible API).' });

/** Connection names under a component-declared kind (`connections.odoo.main`); each is checked by the kind's own schema. */
const NamedConnections = Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), {
  description: 'Named connections of a kind a registered connector declares (e.g. odoo), each checked against that kind\'s schema.',
});

/** The connection kinds the core itself uses; every other key is a kind declared by a component. */
export const CORE_CONNECTION_KINDS = ['kafka', 'registry'] as const;

const Connections = Type.Object({
  kafka: KafkaConnection,
  registry: RegistryConnection,
}, { additionalProperties: NamedConnections, description: 'kafka and registry, plus the kinds registered connectors declare (e.g. odoo).' });

const Runtime = Type.Object({
  http_port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: RUNTIME_DEFAULTS.http_port, description: 'Port of /metrics, /healthz, /readyz.' })),
  state_dir: Type.Optional(Type.String({ minLength: 1, default: RUNTIME_DEFAULTS.state_dir, description: 'Where on-disk state stores live; relative to topology.yaml.' })),
  store: Type.Optional(Type.Union([Type.Literal('lmdb'), Type.Literal('memory')], { default: RUNTIME_DEFAULTS.store, description: 'Where processor state lives: lmdb on disk (bounded by the disk, not the heap) or memory.' })),
  transactions: Type.Optional(Type.Union([Type.Literal('per_partition'), Type.Literal('per_process')], { default: RUNTIME_DEFAULTS.transactions, description: 'Exactly-once processors: per_process gives all partitions of a processor in one process one transactional producer, whose transactions take in every partition\'s batch of a fetch and whose offsets carry the consumer group generation (KIP-447 fencing): fewer transactions, lower latency; a crashed or frozen member\'s open transaction holds back readers until its 10 s time-out. per_partition gives every input partition its own transactional producer (fencing by transactional id, at once when the next owner opens the partition; a transaction per partition and fetch). See docs/architecture.md.' })),
  commit_max_records: Type.Optional(Type.Integer({ minimum: 1, default: RUNTIME_DEFAULTS.commit_max_records, description: 'A transaction commits after this many input records at the latest.' })),
  commit_interval: Type.Optional(Duration('A transaction commits after this long at the latest.', RUNTIME_DEFAULTS.commit_interval)),
  restore_timeout: Type.Optional(Duration('Longest a partition may spend restoring its state stores before the process reports not ready with the reason (the restore then resumes from its checkpoint).', RUNTIME_DEFAULTS.restore_timeout)),
  log_level: Type.Optional(Type.Union(['trace', 'debug', 'info', 'warn', 'error'].map((level) => Type.Literal(level)), { default: RUNTIME_DEFAULTS.log_level, description: 'Log level of the JSON logs.' })),
}, { additionalProperties: false, description: 'How `lifeline run` hosts the components.' });

export const CLASSIFICATIONS = ['phi', 'personal', 'internal', 'public'] as const;

const TopicEntry = Type.Object({
  key: Type.Optional(Type.String({ description: 'What the record key is, e.g. "<model>:<id>".' })),
  value_schema: NonEmptyString('Avro schema file of the values; relative to topology.yaml.'),
  partitions: Type.Integer({ minimum: 1, description: 'Partition count; stateful processors need their inputs co-partitioned (the same count).' }),
  retention: Type.Optional(Duration('How long records are kept.')),
  compact: Type.Optional(Type.Boolean({ description: 'Keep the latest record per key instead of a retention window.' })),
  owner: NonEmptyString('The team answerable for the topic.'),
  description: Type.Optional(Type.String({ description: 'What the topic holds, for the catalogue.' })),
  classification: Type.Union(CLASSIFICATIONS.map((name) => Type.Literal(name)), { description: 'The most sensitive data it holds: phi (patient data), personal, internal or public.' }),
  shared_writers: Type.Optional(Type.Boolean({ description: 'Allow more than one component to write the topic.' })),
}, { additionalProperties: false });

const OutputMap = Type.Record(Type.String(), NonEmptyString('a topic name'), { description: 'Output name (as the component forwards to it) → topic.' });
const ComponentConfig = Type.Record(Type.String(), Type.Unknown(), { description: 'The component\'s config, checked against its type\'s schema (docs/components.md).' });
const OnError = Type.Union([Type.Literal('dlq'), Type.Literal('fail'), Type.Literal('continue')], {
  description: 'A record that fails: dlq dead-letters it to ops.dlq.<label>.v1 (default), fail stops the runtime, continue skips it.',
});

const ProcessorEntry = Type.Object({
  type: NonEmptyString('A registered processor type.'),
  description: Type.Optional(Type.String({ description: 'What this instance is for.' })),
  inputs: Type.Array(NonEmptyString('a topic name'), { minItems: 1, description: 'Topics it reads.' }),
  outputs: Type.Optional(OutputMap),
  guarantee: Type.Optional(Type.Union([Type.Literal('exactly_once'), Type.Literal('at_least_once')], {
    description: 'exactly_once (default): outputs, state and input offsets commit in one Kafka transaction; at_least_once sends, then commits offsets.',
  })),
  on_error: Type.Optional(OnError),
  config: Type.Optional(ComponentConfig),
}, { additionalProperties: false });

const ConnectorEntry = Type.Object({
  type: NonEmptyString('A registered source or sink type.'),
  description: Type.Optional(Type.String({ description: 'What this instance is for.' })),
  inputs: Type.Optional(Type.Array(NonEmptyString('a topic name'), { description: 'Topics a sink reads (a source reads none).' })),
  outputs: Type.Optional(OutputMap),
  on_error: Type.Optional(OnError),
  config: Type.Optional(ComponentConfig),
}, { additionalProperties: false });

export const TopologyFileSchema = Type.Object({
  version: Type.Literal(1, { description: 'The file format version: 1.' }),
  app_id: Type.Optional(Type.String({ default: DEFAULT_APP_ID, description: 'Prefix of consumer groups and transactional ids.' })),
  connections: Connections,
  runtime: Type.Optional(Runtime),
  topics: Type.Optional(Type.Record(Type.String(), TopicEntry, { description: 'The topic catalogue, by topic name.' })),
  processors: Type.Optional(Type.Record(Type.String(), ProcessorEntry, { description: 'Processors (read and write topics only), by label.' })),
  connectors: Type.Optional(Type.Record(Type.String(), ConnectorEntry, { description: 'Sources and sinks (talk to the outside world), by label.' })),
}, { additionalProperties: false });

export type TopologyFile = Static<typeof TopologyFileSchema>;
export type TopicEntry = Static<typeof TopicEntry>;
export type ProcessorEntry = Static<typeof ProcessorEntry>;
export type ConnectorEntry = Static<typeof ConnectorEntry>;

/** Sections whose value may be left empty (`processors:` with everything commented out). */
export const OPTIONAL_SECTIONS = ['topics', 'processors', 'connectors', 'runtime'] as const;
