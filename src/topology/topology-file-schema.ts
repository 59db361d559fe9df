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
  commit_max_records: 500,
  commit_interval: '1s',
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
  brokers: Type.Union([NonEmptyString('host:port, or several separated by commas'), Type.Array(NonEmptyString('host:port'), { minItems: 1 })]),
  client_id: Type.Optional(NonEmptyString('Kafka client id.')),
  tls: Type.Optional(Type.Union([Type.Boolean(), TlsFiles])),
  sasl: Type.Optional(Type.Object({
    mechanism: Type.Union([Type.Literal('plain'), Type.Literal('scram-sha-256'), Type.Literal('scram-sha-512')]),
    username: NonEmptyString('SASL user name.'),
    password: Type.String({ description: 'A ${ENV} or ${file:…} reference.' }),
  }, { additionalProperties: false })),
}, { additionalProperties: false });

const RegistryConnection = Type.Object({
  url: NonEmptyString('Base URL of a Confluent-compatible schema registry API.'),
  username: Type.Optional(Type.String()),
  password: Type.Optional(Type.String({ description: 'A ${ENV} or ${file:…} reference.' })),
}, { additionalProperties: false });

/** Connection names under a component-declared kind (`connections.odoo.main`); each is checked by the kind's own schema. */
const NamedConnections = Type.Record(Type.String(), Type.Record(Type.String(), Type.Unknown()), {
  description: 'Named connections of a kind a registered connector declares (e.g. odoo), each checked against that kind\'s schema.',
});

/** The connection kinds the core itself uses; every other key is a kind declared by a component. */
export const CORE_CONNECTION_KINDS = ['kafka', 'registry'] as const;

const Connections = Type.Object({
  kafka: KafkaConnection,
  registry: RegistryConnection,
}, { additionalProperties: NamedConnections });

const Runtime = Type.Object({
  http_port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535, default: RUNTIME_DEFAULTS.http_port, description: 'Port of /metrics, /healthz, /readyz.' })),
  state_dir: Type.Optional(Type.String({ minLength: 1, default: RUNTIME_DEFAULTS.state_dir, description: 'Where on-disk state stores live; relative to topology.yaml.' })),
  store: Type.Optional(Type.Union([Type.Literal('lmdb'), Type.Literal('memory')], { default: RUNTIME_DEFAULTS.store })),
  commit_max_records: Type.Optional(Type.Integer({ minimum: 1, default: RUNTIME_DEFAULTS.commit_max_records })),
  commit_interval: Type.Optional(Duration('A transaction commits after this long at the latest.', RUNTIME_DEFAULTS.commit_interval)),
  log_level: Type.Optional(Type.Union(['trace', 'debug', 'info', 'warn', 'error'].map((level) => Type.Literal(level)), { default: RUNTIME_DEFAULTS.log_level })),
}, { additionalProperties: false });

export const CLASSIFICATIONS = ['phi', 'personal', 'internal', 'public'] as const;

const TopicEntry = Type.Object({
  key: Type.Optional(Type.String({ description: 'What the record key is, e.g. "<model>:<id>".' })),
  value_schema: NonEmptyString('Avro schema file of the values; relative to topology.yaml.'),
  partitions: Type.Integer({ minimum: 1 }),
  retention: Type.Optional(Duration('How long records are kept.')),
  compact: Type.Optional(Type.Boolean({ description: 'Keep the latest record per key instead of a retention window.' })),
  owner: NonEmptyString('The team answerable for the topic.'),
  description: Type.Optional(Type.String()),
  classification: Type.Union(CLASSIFICATIONS.map((name) => Type.Literal(name))),
  shared_writers: Type.Optional(Type.Boolean({ description: 'Allow more than one component to write the topic.' })),
}, { additionalProperties: false });

const TopicList = Type.Array(NonEmptyString('a topic name'));
const OutputMap = Type.Record(Type.String(), NonEmptyString('a topic name'));
const ComponentConfig = Type.Record(Type.String(), Type.Unknown());
const OnError = Type.Union([Type.Literal('dlq'), Type.Literal('fail'), Type.Literal('continue')]);

const ProcessorEntry = Type.Object({
  type: NonEmptyString('A registered processor type.'),
  description: Type.Optional(Type.String()),
  inputs: Type.Array(NonEmptyString('a topic name'), { minItems: 1 }),
  outputs: Type.Optional(OutputMap),
  guarantee: Type.Optional(Type.Union([Type.Literal('exactly_once'), Type.Literal('at_least_once')])),
  on_error: Type.Optional(OnError),
  config: Type.Optional(ComponentConfig),
}, { additionalProperties: false });

const ConnectorEntry = Type.Object({
  type: NonEmptyString('A registered source or sink type.'),
  description: Type.Optional(Type.String()),
  inputs: Type.Optional(TopicList),
  outputs: Type.Optional(OutputMap),
  on_error: Type.Optional(OnError),
  config: Type.Optional(ComponentConfig),
}, { additionalProperties: false });

export const TopologyFileSchema = Type.Object({
  version: Type.Literal(1),
  app_id: Type.Optional(Type.String({ default: DEFAULT_APP_ID, description: 'Prefix of consumer groups and transactional ids.' })),
  connections: Connections,
  runtime: Type.Optional(Runtime),
  topics: Type.Optional(Type.Record(Type.String(), TopicEntry)),
  processors: Type.Optional(Type.Record(Type.String(), ProcessorEntry)),
  connectors: Type.Optional(Type.Record(Type.String(), ConnectorEntry)),
}, { additionalProperties: false });

export type TopologyFile = Static<typeof TopologyFileSchema>;
export type TopicEntry = Static<typeof TopicEntry>;
export type ProcessorEntry = Static<typeof ProcessorEntry>;
export type ConnectorEntry = Static<typeof ConnectorEntry>;

/** Sections whose value may be left empty (`processors:` with everything commented out). */
export const OPTIONAL_SECTIONS = ['topics', 'processors', 'connectors', 'runtime'] as const;
