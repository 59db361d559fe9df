import { createHash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { defineProcessor, type InputRecord } from '../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../src/component/duration.ts';
import { LIFELINE_HEADERS } from '../src/component/record-headers.ts';
import { readPath } from '../src/component/value-path.ts';

/** What dedup remembers per idempotency key. */
interface SeenKey {
  /** sha256 of the value's canonical JSON: the same delivery again has the same hash. */
  readonly hash: string;
  /** The business version when `version_path` is set (a corrected result has a higher one). */
  readonly version?: string | number;
}

export const DEDUP_RESULT_HEADER = 'lifeline.dedup.result';

/**
 * Passes the first occurrence of each idempotency key and drops (or routes) the repeats.
 *
 * Guarantee: within `ttl` of the last time a key was seen, a record whose key and content were
 * already passed is never passed again — exactly once, including across crashes, restarts and
 * rebalances, because the key store's changelog and the outputs commit in one transaction with
 * the input offsets. Keys are owned per partition: a record not keyed by its idempotency key is
 * first repartitioned by it (Kafka's default partitioner), so every copy meets the same store —
 * unless `repartition: false` says the record key already brings every copy to one partition (it
 * must: copies on two partitions would each pass once). After
 * `ttl` a key is forgotten and a very late copy passes again. With `pass_updates`, a record with
 * the key of an earlier one but different content (or, with `version_path`, a higher version) passes
 * as an update; an older version never overwrites a newer one.
 */
export const dedup = defineProcessor({
  kind: 'processor',
  type: 'dedup',
  description: 'Drops repeated deliveries by idempotency key within a TTL window; exactly-once across restarts.',
  stateful: true,
  outputs: ['unique', 'duplicates?'],
  config: Type.Object({
    key_header: Type.String({ default: LIFELINE_HEADERS.idempotencyKey, description: 'Header holding the idempotency key (used unless key_path is set).' }),
    key_path: Type.Optional(Type.String({ description: 'Dotted path of a value field holding the idempotency key, instead of the header.', examples: ['charge_id'] })),
    ttl: Type.String({ pattern: DURATION_PATTERN, default: '7d', description: 'How long a key is remembered after it was last seen.' }),
    pass_updates: Type.Boolean({ default: false, description: 'Let a record with a known key but different content (an amended charge, a corrected result) pass as an update.' }),
    version_path: Type.Optional(Type.String({ description: 'With pass_updates: dotted path of a version that must increase for an update to pass (e.g. a result revision).' })),
    repartition: Type.Boolean({
      default: true,
      description: 'Send records whose key is not their idempotency key through a repartition topic keyed by it. Set false when every copy of an idempotency key already has the same record key (partner records keyed by entity_key): no extra hop, and the versions of one entity keep their order.',
    }),
  }, { additionalProperties: false }),
  stores: (config) => [{ name: 'seen_keys', ttlMs: parseDuration(config.ttl) as number }],
  repartitions: (config) => (config.repartition ? ['by_idempotency_key'] : []),
  create: (config) => {
    const keyOf = (record: InputRecord): string | undefined => {
      const raw = config.key_path ? readPath(record.value, config.key_path) : record.headers[config.key_header];
      return raw === undefined || raw === null || raw === '' ? undefined : String(raw);
    };
    return {
      process(record, context) {
        const key = keyOf(record);
        if (key === undefined) {
          throw new Error(`dedup: record has no idempotency key (${config.key_path ? `value field ${config.key_path}` : `header ${config.key_header}`} is missing)`);
        }
        if (config.repartition && record.via === undefined && record.key !== key) {
          context.repartition('by_idempotency_key', key);
          return;
        }
        const seen = context.store<SeenKey>('seen_keys');
        const hash = contentHash(record.value);
        const rawVersion = config.version_path ? readPath(record.value, config.version_path) : undefined;
        const version = typeof rawVersion === 'number' || typeof rawVersion === 'string' ? rawVersion : undefined;
        const previous = seen.get(key);
        let result: 'first' | 'update' | 'duplicate';
        if (!previous) result = 'first';
        else if (!config.pass_updates || previous.hash === hash) result = 'duplicate';
        else if (version !== undefined && previous.version !== undefined && !(version > previous.version)) result = 'duplicate';
        else result = 'update';
        const headers = { [DEDUP_RESULT_HEADER]: result };
        if (result === 'duplicate') {
          seen.put(key, previous as SeenKey); // seen again: the TTL window restarts
          if (context.hasOutput('duplicates')) context.forward('duplicates', { key: record.key, value: record.value, headers });
          context.count('duplicates');
          return;
        }
        seen.put(key, version === undefined ? { hash } : { hash, version });
        context.forward('unique', { key: record.key, value: record.value, headers });
        context.count(result === 'first' ? 'first' : 'updates');
      },
    };
  },
});

/** sha256 of JSON with sorted keys, so field order does not make two equal values differ. */
export function contentHash(value: unknown): string {
  return createHash('sha256').update(canonicalJson(value)).digest('hex');
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}
