import type { Topology, TopicDeclaration } from '../topology/model.ts';
import { LIFELINE_HEADERS } from '../component/record-headers.ts';
import { formatDuration } from '../topology/describe-topology.ts';
import { downstreamReach } from './topology-lineage.ts';

/**
 * The topic catalogue as an AsyncAPI 3.0 document, for teams that subscribe to Lifeline topics
 * with their own clients: one channel per declared topic (its Kafka binding says partitions and
 * retention), one message per channel whose payload is the topic's Avro schema as declared (with
 * its `"phi": true` marks), Kafka message bindings for the string key and the Confluent wire format
 * (schema id in the payload, subject `<topic>-value`), and a `receive` operation per topic.
 */

const AVRO_SCHEMA_FORMAT = 'application/vnd.apache.avro+json;version=1.9.0';
const KAFKA_BINDING_VERSION = '0.5.0';

export interface AsyncApiOptions {
  /** The document's version; defaults to 1.0.0. */
  readonly version?: string;
}

export function asyncApiDocument(topology: Topology, options: AsyncApiOptions = {}): Record<string, unknown> {
  const topics = Object.values(topology.topics).sort((a, b) => a.name.localeCompare(b.name));
  const secure = Boolean(topology.kafka.tls) || Boolean(topology.kafka.sasl);
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const topic of topics) {
    const id = channelId(topic.name);
    const messageId = `${id}.message`;
    messages[messageId] = message(topic);
    channels[id] = channel(topology, topic, messageId);
    operations[`receive.${id}`] = {
      action: 'receive',
      title: `Subscribe to ${topic.name}`,
      summary: `Read ${topic.name} (read_committed), decoding values with the registry.`,
      channel: { $ref: `#/channels/${id}` },
      messages: [{ $ref: `#/channels/${id}/messages/${messageId}` }],
    };
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: `Lifeline topic catalogue (${topology.runtime.appId})`,
      version: options.version ?? '1.0.0',
      description: [
        'Topics of the Lifeline integration backbone, generated from topology.yaml by `lifeline catalog asyncapi`.',
        'Values are Avro in the Confluent wire format (magic byte 0, 4-byte schema id, Avro body), registered under the subject `<topic>-value` with BACKWARD compatibility; keys are UTF-8 strings.',
        'Read with isolation level read_committed: Lifeline writes in transactions.',
        'Fields marked `"phi": true` in a schema hold patient or personal data: handle them accordingly.',
      ].join('\n\n'),
      tags: [{ name: 'lifeline' }],
    },
    defaultContentType: 'application/octet-stream',
    servers: {
      kafka: {
        host: topology.kafka.brokers.join(','),
        protocol: secure ? 'kafka-secure' : 'kafka',
        description: `Kafka cluster${topology.kafka.sasl ? ` (SASL ${topology.kafka.sasl.mechanism})` : ''}${topology.kafka.tls ? ' (TLS)' : ''}; schema registry at ${withoutCredentials(topology.registry.url)}`,
        bindings: { kafka: { schemaRegistryUrl: withoutCredentials(topology.registry.url), schemaRegistryVendor: 'confluent', bindingVersion: KAFKA_BINDING_VERSION } },
      },
    },
    channels,
    operations,
    components: { messages },
  };
}

/** AsyncAPI component keys allow letters, digits, dots, dashes and underscores: topic names fit as they are. */
function channelId(topic: string): string {
  return topic.replace(/[^A-Za-z0-9._-]/g, '_');
}

function channel(topology: Topology, topic: TopicDeclaration, messageId: string): Record<string, unknown> {
  const components = Object.values(topology.components);
  const writers = components.filter((component) => Object.values(component.outputs).includes(topic.name)).map((component) => component.label);
  const readers = components.filter((component) => component.inputs.includes(topic.name)).map((component) => component.label);
  const topicConfiguration: Record<string, unknown> = { 'cleanup.policy': [topic.compact ? 'compact' : 'delete'] };
  if (!topic.compact && topic.retentionMs !== undefined) topicConfiguration['retention.ms'] = topic.retentionMs;
  return {
    address: topic.name,
    title: topic.name,
    ...(topic.description ? { summary: topic.description } : {}),
    description: [
      topic.description,
      `Owner: ${topic.owner}. Classification: ${topic.classification}${topic.contract.phiPaths.length > 0 ? ` (PHI fields: ${topic.contract.phiPaths.join(', ')})` : ''}.`,
      `Key: ${topic.key || 'string'}. Partitions: ${topic.partitions}. ${topic.compact ? 'Compacted: the latest record per key is kept.' : topic.retentionMs !== undefined ? `Retention: ${formatDuration(topic.retentionMs)}.` : ''}`,
      `Written by: ${writers.join(', ') || 'outside this topology'}. Read by: ${readers.join(', ') || 'outside this topology'}. Reaches sinks: ${downstreamReach(topology, { topics: [topic.name] }).sinks.join(', ') || 'none'}.`,
    ].filter(Boolean).join('\n\n'),
    messages: { [messageId]: { $ref: `#/components/messages/${messageId}` } },
    tags: [{ name: `owner:${topic.owner}` }, { name: `classification:${topic.classification}` }],
    bindings: { kafka: { topic: topic.name, partitions: topic.partitions, topicConfiguration, bindingVersion: KAFKA_BINDING_VERSION } },
    'x-lifeline-owner': topic.owner,
    'x-lifeline-classification': topic.classification,
    'x-lifeline-phi-fields': [...topic.contract.phiPaths],
    'x-lifeline-subject': `${topic.name}-value`,
  };
}

function message(topic: TopicDeclaration): Record<string, unknown> {
  return {
    name: topic.contract.fullName,
    title: topic.contract.fullName,
    summary: `A record of ${topic.name}`,
    contentType: 'application/octet-stream',
    headers: {
      type: 'object',
      description: 'Kafka headers Lifeline sets on every record (UTF-8 strings).',
      properties: {
        [LIFELINE_HEADERS.correlationId]: { type: 'string', description: 'Ties every record of one business transaction together.' },
        [LIFELINE_HEADERS.idempotencyKey]: { type: 'string', description: 'The same for every delivery of the same business event: deduplicate by it.' },
        [LIFELINE_HEADERS.source]: { type: 'string', description: 'The component that brought the record into Kafka.' },
        [LIFELINE_HEADERS.ingestedAt]: { type: 'string', format: 'date-time', description: 'When the record entered Kafka.' },
        [LIFELINE_HEADERS.traceparent]: { type: 'string', description: 'W3C trace context.' },
      },
    },
    payload: { schemaFormat: AVRO_SCHEMA_FORMAT, schema: topic.contract.json },
    bindings: {
      kafka: {
        key: { type: 'string', description: topic.key || 'the record key' },
        schemaIdLocation: 'payload',
        schemaIdPayloadEncoding: 'confluent',
        schemaLookupStrategy: 'TopicNameStrategy',
        bindingVersion: KAFKA_BINDING_VERSION,
      },
    },
  };
}

function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}
