import type { AvroSerde } from '../kafka/avro-serde.ts';
import { subjectFor } from '../kafka/avro-serde.ts';
import { backwardIncompatibilities } from '../kafka/schema-compatibility.ts';
import type { Topology } from '../topology/model.ts';

export type SchemaStatus = 'unregistered' | 'identical' | 'compatible' | 'incompatible';

export interface SchemaCheck {
  readonly topic: string;
  readonly subject: string;
  readonly schema: string;
  readonly status: SchemaStatus;
  /** Why a schema is incompatible: the field and the rule (BACKWARD). */
  readonly problems: readonly string[];
}

/**
 * Checks every declared schema against the latest version registered for its topic, locally and
 * with the same BACKWARD rule `register` enforces: what `lifeline run` would register, and whether
 * the registry would take it.
 */
export async function checkSchemas(topology: Topology, serde: AvroSerde): Promise<SchemaCheck[]> {
  const checks: SchemaCheck[] = [];
  for (const topic of Object.values(topology.topics).sort((a, b) => a.name.localeCompare(b.name))) {
    const subject = subjectFor(topic.name);
    const latest = await serde.latestContract(subject);
    const base = { topic: topic.name, subject, schema: topic.contract.fullName };
    if (!latest) {
      checks.push({ ...base, status: 'unregistered', problems: [] });
      continue;
    }
    if (latest.type.fingerprint().equals(topic.contract.type.fingerprint())) {
      checks.push({ ...base, status: 'identical', problems: [] });
      continue;
    }
    const problems = backwardIncompatibilities(topic.contract.type, latest.type);
    checks.push({ ...base, status: problems.length > 0 ? 'incompatible' : 'compatible', problems });
  }
  return checks;
}
