import { fileURLToPath } from 'node:url';
import type { Admin } from 'kafkajs';
import { loadContract, type AvroContract } from '../kafka/avro-contract.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { ensureTopics, type TopicSpec } from '../kafka/topic-admin.ts';

/** The topics operations write: the audit trail, replay plans, and which dead letters were replayed. */
export const AUDIT_TOPIC = 'ops.audit.v1';
export const REPLAY_PLANS_TOPIC = 'ops.replay-plans.v1';
/** Compacted, keyed by dead-letter position: written in the replay's transaction, so no dead letter is replayed twice by accident. */
export const DLQ_REPLAYED_TOPIC = '_lifeline.dlq-replayed';

function schemaFile(name: string): string {
  return fileURLToPath(new URL(`../../schemas/ops/${name}`, import.meta.url));
}

let auditContract: AvroContract | undefined;
let planContract: AvroContract | undefined;

export function auditEventContract(): AvroContract {
  auditContract ??= loadContract(schemaFile('audit_event.avsc'));
  return auditContract;
}

export function replayPlanContract(): AvroContract {
  planContract ??= loadContract(schemaFile('replay_plan.avsc'));
  return planContract;
}

const OPS_TOPIC_SPECS: Readonly<Record<string, TopicSpec>> = {
  // One partition keeps the trail in the order things happened; kept until someone decides otherwise.
  [AUDIT_TOPIC]: { name: AUDIT_TOPIC, partitions: 1, retentionMs: -1 },
  [REPLAY_PLANS_TOPIC]: { name: REPLAY_PLANS_TOPIC, partitions: 1, cleanupPolicy: 'compact' },
  [DLQ_REPLAYED_TOPIC]: { name: DLQ_REPLAYED_TOPIC, partitions: 1, cleanupPolicy: 'compact' },
};

const prepared = new Set<string>();

/** Creates an operations topic if missing and registers its schema, once per process. */
export async function prepareOpsTopic(admin: Admin, serde: AvroSerde, topic: keyof typeof OPS_TOPIC_SPECS): Promise<void> {
  if (prepared.has(topic)) return;
  const spec = OPS_TOPIC_SPECS[topic];
  if (!spec) throw new Error(`${topic} is not an operations topic`);
  await ensureTopics(admin, [spec]);
  if (topic === AUDIT_TOPIC) await serde.register(topic, auditEventContract());
  if (topic === REPLAY_PLANS_TOPIC) await serde.register(topic, replayPlanContract());
  prepared.add(topic);
}
