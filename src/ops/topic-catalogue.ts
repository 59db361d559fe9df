import { relative, dirname } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import { committedBacklog } from '../kafka/committed-backlog.ts';
import type { Classification, Topology } from '../topology/model.ts';
import { formatDuration } from '../topology/describe-topology.ts';
import { downstreamReach } from './topology-lineage.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';

/** One topic of the catalogue: what topology.yaml declares about it and what the broker holds. */
export interface CatalogueEntry {
  readonly name: string;
  readonly description: string;
  readonly owner: string;
  readonly classification: Classification;
  readonly key: string;
  readonly schemaFile: string;
  readonly schema: string;
  readonly phiFields: readonly string[];
  readonly partitions: number;
  /** `compacted`, `7d`, or `broker default`. */
  readonly retention: string;
  readonly writtenBy: readonly string[];
  readonly readBy: readonly string[];
  /** Sinks the topic's records reach downstream. */
  readonly reachesSinks: readonly string[];
  /** Whether the topic exists on the cluster. */
  readonly exists: boolean;
  /**
   * Records a read_committed reader gets (transaction markers and aborted records not counted) when
   * a Kafka client is given: exact per partition up to a few thousand offsets, offsets beyond
   * (`messagesExact` false). Without one: offsets held (end − start), markers included.
   */
  readonly messages: string | null;
  readonly messagesExact?: boolean;
  readonly partitionOffsets: ReadonlyArray<{ readonly partition: number; readonly low: string; readonly high: string }>;
}

export async function topicCatalogue(topology: Topology, admin: Admin | undefined, kafka?: Kafka): Promise<CatalogueEntry[]> {
  const existing = admin ? new Set(await admin.listTopics()) : new Set<string>();
  const components = Object.values(topology.components);
  const entries: CatalogueEntry[] = [];
  for (const topic of Object.values(topology.topics).sort((a, b) => a.name.localeCompare(b.name))) {
    const exists = existing.has(topic.name);
    const offsets = exists && admin ? await fetchTopicOffsetsSerially(admin, topic.name) : [];
    let messages = offsets.reduce((sum, entry) => sum + BigInt(entry.high) - BigInt(entry.low), 0n);
    let messagesExact: boolean | undefined;
    if (kafka && offsets.length > 0) {
      const backlog = await committedBacklog(kafka, offsets.map((entry) => ({ topic: topic.name, partition: entry.partition, from: null })));
      messages = backlog.reduce((sum, entry) => sum + entry.records, 0n);
      messagesExact = backlog.every((entry) => entry.exact);
    }
    entries.push({
      name: topic.name,
      description: topic.description,
      owner: topic.owner,
      classification: topic.classification,
      key: topic.key,
      schemaFile: relative(dirname(topology.file), topic.valueSchemaFile),
      schema: topic.contract.fullName,
      phiFields: topic.contract.phiPaths,
      partitions: topic.partitions,
      retention: topic.compact ? 'compacted' : topic.retentionMs === undefined ? 'broker default' : formatDuration(topic.retentionMs),
      writtenBy: components.filter((component) => Object.values(component.outputs).includes(topic.name)).map((component) => component.label),
      readBy: components.filter((component) => component.inputs.includes(topic.name)).map((component) => component.label),
      reachesSinks: downstreamReach(topology, { topics: [topic.name] }).sinks,
      exists,
      messages: admin ? (exists ? messages.toString() : null) : null,
      ...(messagesExact === undefined ? {} : { messagesExact }),
      partitionOffsets: offsets.sort((a, b) => a.partition - b.partition).map((entry) => ({ partition: entry.partition, low: entry.low, high: entry.high })),
    });
  }
  return entries;
}
