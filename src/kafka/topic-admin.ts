import kafkajs, { type Admin } from 'kafkajs';

const { ConfigResourceTypes } = kafkajs; // not an ESM named export of the CommonJS package
import { LifelineError } from '../errors.ts';
import { retry } from '../retry.ts';

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor?: number;
  readonly cleanupPolicy?: 'delete' | 'compact' | 'compact,delete';
  /** -1 keeps records forever. */
  readonly retentionMs?: number;
  readonly config?: Readonly<Record<string, string>>;
}

export interface EnsureTopicsResult {
  readonly created: string[];
  readonly updated: string[];
  readonly unchanged: string[];
}

function desiredConfig(spec: TopicSpec): Record<string, string> {
  return {
    ...(spec.cleanupPolicy ? { 'cleanup.policy': spec.cleanupPolicy } : {}),
    ...(spec.retentionMs !== undefined ? { 'retention.ms': String(spec.retentionMs) } : {}),
    ...(spec.config ?? {}),
  };
}

/**
 * Creates declared topics that are missing and brings the configuration of existing ones
 * (retention, compaction) in line. Partition counts are never lowered or silently raised:
 * raising them changes which partition a key lands on, so a difference is an error.
 */
export async function ensureTopics(admin: Admin, specs: readonly TopicSpec[]): Promise<EnsureTopicsResult> {
  const created: string[] = [];
  // A topic just created (here or by someone else) can be unknown to the broker's metadata for a
  // moment (UNKNOWN_TOPIC_OR_PARTITION, retriable): try again until every topic answers.
  const result = await retry(() => ensureTopicsOnce(admin, specs, created), { operation: 'ensure topics', retries: 10, initialDelayMs: 100, maxDelayMs: 2000 });
  return { ...result, created };
}

async function ensureTopicsOnce(admin: Admin, specs: readonly TopicSpec[], created: string[]): Promise<EnsureTopicsResult> {
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((spec) => !existing.has(spec.name));
  const present = specs.filter((spec) => existing.has(spec.name));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((spec) => ({
        topic: spec.name,
        numPartitions: spec.partitions,
        replicationFactor: spec.replicationFactor ?? -1,
        configEntries: Object.entries(desiredConfig(spec)).map(([name, value]) => ({ name, value })),
      })),
    });
    created.push(...missing.map((spec) => spec.name));
  }
  const updated: string[] = [];
  const unchanged: string[] = [];
  if (present.length > 0) {
    const metadata = await admin.fetchTopicMetadata({ topics: present.map((spec) => spec.name) });
    for (const topic of metadata.topics) {
      const spec = present.find((candidate) => candidate.name === topic.name);
      if (spec && topic.partitions.length !== spec.partitions) {
        throw new LifelineError('LL_TOPIC_MISMATCH',
          `topic ${topic.name} has ${topic.partitions.length} partitions but is declared with ${spec.partitions}; ` +
          'change the declaration or migrate the topic (Lifeline does not repartition existing topics)',
          { details: { topic: topic.name, actual: topic.partitions.length, declared: spec.partitions } });
      }
    }
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: present.map((spec) => ({ type: ConfigResourceTypes.TOPIC, name: spec.name })),
    });
    for (const spec of present) {
      const wanted = desiredConfig(spec);
      const current = described.resources.find((resource) => resource.resourceName === spec.name)?.configEntries ?? [];
      const drift = Object.entries(wanted).filter(([name, value]) => current.find((entry) => entry.configName === name)?.configValue !== value);
      if (drift.length === 0) {
        unchanged.push(spec.name);
        continue;
      }
      // alterConfigs replaces the topic's whole dynamic config: send every wanted entry, not only the drift.
      await admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: spec.name, configEntries: Object.entries(wanted).map(([name, value]) => ({ name, value })) }],
      });
      updated.push(spec.name);
    }
  }
  if (specs.length > 0) await admin.fetchTopicMetadata({ topics: specs.map((spec) => spec.name) }); // every topic answers now
  return { created, updated, unchanged: unchanged.filter((name) => !created.includes(name)) };
}
