import { createHash, hash } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { Counter, type Registry } from 'prom-client';
import { LifelineError } from '../src/errors.ts';
import { defineProcessor, type InputRecord } from '../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../src/component/duration.ts';
import { LIFELINE_HEADERS } from '../src/component/record-headers.ts';
import { readPath } from '../src/component/value-path.ts';

/** What dedup remembers per idempotency key. */
interface SeenKey {
  /**
   * The content fingerprint (see `contentFingerprint`): 16 hex digits. Entries written before
   * fingerprints existed hold `hash` instead (sha256 of the whole value) and are compared with it.
   */
  readonly fp?: string;
  readonly hash?: string;
  /** The business version when `version_path` is set (a corrected result has a higher one). */
  readonly version?: string | number;
}

export const DEDUP_RESULT_HEADER = 'lifeline.dedup.result';
/** On a conflict: why, and the fingerprints of the content seen first and of this record. */
export const DEDUP_CONFLICT_HEADERS = {
  reason: 'lifeline.dedup.conflict-reason',
  previousFingerprint: 'lifeline.dedup.fingerprint-previous',
  fingerprint: 'lifeline.dedup.fingerprint',
  /** `<topic>/<partition>@<offset>` of the conflicting record. */
  origin: 'lifeline.dedup.origin',
} as const;

/**
 * Top-level fields that say how and when a record was delivered, not what it says: a re-delivery
 * of the same content through another channel, another webhook id or another file, or a resend
 * with a new send time, is still the same content. See docs/formats.md.
 */
export const DEFAULT_VOLATILE_FIELDS: readonly string[] = Object.freeze(['delivery_id', 'channel', 'received_at', 'sent_at', 'version']);

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
 * `ttl` a key is forgotten and a very late copy passes again.
 *
 * A duplicate is the same key with the same content fingerprint (the value without its volatile
 * delivery fields). The same key with other content is never dropped: with `pass_updates`, or when
 * the record says it is a correction (`correction_path`), it passes as an update (with
 * `version_path`, only a higher version; an older one is stale and never overwrites a newer one);
 * otherwise it is a conflict — forwarded to `conflicts` (or dead-lettered as LL_DEDUP_CONFLICT when
 * that output is not mapped) with both fingerprints and the reason, logged without PHI and counted
 * in `lifeline_dedup_conflicts_total`. The content seen first stays the reference for the key.
 */
export const dedup = defineProcessor({
  kind: 'processor',
  type: 'dedup',
  description: 'Drops repeated deliveries by idempotency key within a TTL window; exactly-once across restarts.',
  stateful: true,
  outputs: ['unique', 'duplicates?', 'conflicts?'],
  config: Type.Object({
    key_header: Type.String({ default: LIFELINE_HEADERS.idempotencyKey, description: 'Header holding the idempotency key (used unless key_path is set).' }),
    key_path: Type.Optional(Type.String({ description: 'Dotted path of a value field holding the idempotency key, instead of the header.', examples: ['charge_id'] })),
    ttl: Type.String({ pattern: DURATION_PATTERN, default: '7d', description: 'How long a key is remembered after it was last seen.' }),
    pass_updates: Type.Boolean({ default: false, description: 'Let a record with a known key but different content (an amended charge, a corrected result) pass as an update.' }),
    version_path: Type.Optional(Type.String({ description: 'With pass_updates: dotted path of a version that must increase for an update to pass (e.g. a result revision).' })),
    correction_path: Type.String({
      default: 'is_correction',
      description: 'Dotted path of a boolean the format sets on a correction (HL7 OBX-11/OBR-25 = C, an FT1 adjustment): a known key with other content and this flag true passes as an update, even without pass_updates.',
    }),
    volatile_fields: Type.Array(Type.String(), {
      default: [...DEFAULT_VOLATILE_FIELDS],
      description: 'Top-level value fields left out of the content fingerprint (how and when the record was delivered, not what it says). The same key with the same fingerprint is a duplicate; with another fingerprint a conflict (or an update).',
    }),
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
    const volatile = new Set(config.volatile_fields);
    let conflictsCounter: Counter<'component'> | undefined;
    return {
      init(context) {
        conflictsCounter = conflictCounter(context.metricsRegistry);
      },
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
        const fingerprint = contentFingerprint(record.value, volatile);
        const rawVersion = config.version_path ? readPath(record.value, config.version_path) : undefined;
        const version = typeof rawVersion === 'number' || typeof rawVersion === 'string' ? rawVersion : undefined;
        // Without repartitioning, a key is remembered per record key too: two entities that share an
        // idempotency key (an HL7 control id reused for another FT1-2 transaction) are two records on
        // whichever partitions they land, never a conflict on one partition and two passes on two.
        // Entries written before this scoping are found under the bare key.
        const storeKey = config.repartition || record.key === null ? key : `${record.key}\u0000${key}`;
        const previous = seen.get(storeKey) ?? (storeKey === key ? undefined : seen.get(key));
        const sameContent = previous !== undefined && (previous.fp !== undefined ? previous.fp === fingerprint : previous.hash === contentHash(record.value));
        const isCorrection = readPath(record.value, config.correction_path) === true;
        let result: 'first' | 'update' | 'duplicate' | 'stale' | 'conflict';
        if (!previous) result = 'first';
        else if (sameContent) result = 'duplicate';
        else if (version !== undefined && previous.version !== undefined && (config.pass_updates || isCorrection)) {
          result = version > previous.version ? 'update' : version < previous.version ? 'stale' : 'conflict';
        } else if (config.pass_updates || isCorrection) result = 'update';
        else result = 'conflict';
        const headers = { [DEDUP_RESULT_HEADER]: result };
        if (result === 'duplicate' || result === 'stale') {
          seen.put(storeKey, previous as SeenKey); // seen again: the TTL window restarts
          if (context.hasOutput('duplicates')) context.forward('duplicates', { key: record.key, value: record.value, headers });
          context.count(result === 'duplicate' ? 'duplicates' : 'stale');
          return;
        }
        if (result === 'conflict') {
          const before = previousFingerprint(previous as SeenKey);
          seen.put(storeKey, previous as SeenKey); // the content seen first stays the reference
          const reason = version !== undefined && previous?.version === version
            ? 'same idempotency key and version with different content'
            : 'same idempotency key with different content, not marked as a correction';
          const conflictHeaders = {
            ...record.headers, ...headers,
            [DEDUP_CONFLICT_HEADERS.reason]: reason,
            [DEDUP_CONFLICT_HEADERS.previousFingerprint]: before,
            [DEDUP_CONFLICT_HEADERS.fingerprint]: fingerprint,
            [DEDUP_CONFLICT_HEADERS.origin]: `${record.topic}/${record.partition}@${record.offset}`,
          };
          // Logged without the key or the value (either may carry PHI): the key's own fingerprint finds it.
          context.logger.warn({
            event: 'dedup_conflict', partition: record.partition, offset: record.offset, topic: record.topic,
            key_fingerprint: shortHash(key), previous_fingerprint: before, fingerprint, reason,
          }, 'dedup: an idempotency key came again with different content: routed as a conflict, not dropped');
          conflictsCounter?.inc({ component: context.label });
          context.count('conflicts');
          if (context.hasOutput('conflicts')) {
            context.forward('conflicts', { key: record.key, value: record.value, headers: conflictHeaders });
          } else {
            context.deadLetter({ ...record, headers: conflictHeaders }, new LifelineError('LL_DEDUP_CONFLICT',
              `${reason} (fingerprint first seen ${before}, this one ${fingerprint}); resolve it at the partner or replay it as a correction`,
              { details: { previous_fingerprint: before, fingerprint } }));
          }
          return;
        }
        seen.put(storeKey, version === undefined ? { fp: fingerprint } : { fp: fingerprint, version });
        context.forward('unique', { key: record.key, value: record.value, headers });
        context.count(result === 'first' ? 'first' : 'updates');
      },
    };
  },
});

/**
 * The content fingerprint dedup keeps per key: the first 16 hex digits (64 bits) of the sha256 of
 * the value's canonical JSON without its volatile top-level fields (and without occurred_at when it
 * merely repeats received_at or sent_at). 64 bits are plenty to tell the
 * contents of one key apart (a collision needs two contents under the same key) and keep the
 * store small.
 */
export function contentFingerprint(value: unknown, volatile: ReadonlySet<string> = new Set(DEFAULT_VOLATILE_FIELDS)): string {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || Buffer.isBuffer(value)) return contentHash(value).slice(0, 16);
  const record = value as Record<string, unknown>;
  // An occurred_at that is the arrival or send time is the adapters' stand-in for "the content
  // names no time" (a CSV without a date column, an HL7 order without ORC-9, a SupplyDelivery in
  // progress): it says when the record travelled, not what it says.
  const standIn = record.occurred_at !== undefined && (
    (volatile.has('received_at') && record.occurred_at === record.received_at) || (volatile.has('sent_at') && record.occurred_at === record.sent_at));
  const skip = (field: string): boolean => volatile.has(field) || (standIn && field === 'occurred_at');
  return hash('sha256', canonicalObject(record, skip)).slice(0, 16);
}

function previousFingerprint(previous: SeenKey): string {
  return previous.fp ?? (previous.hash ?? 'unknown').slice(0, 16);
}

function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** `lifeline_dedup_conflicts_total{component}`, registered once per registry. */
function conflictCounter(registry: Registry | undefined): Counter<'component'> | undefined {
  if (!registry) return undefined;
  const existing = registry.getSingleMetric('lifeline_dedup_conflicts_total');
  if (existing) return existing as Counter<'component'>;
  return new Counter({
    name: 'lifeline_dedup_conflicts_total',
    help: 'Records whose idempotency key was seen before with different content (not a duplicate, not a correction): routed to conflicts or dead letters.',
    labelNames: ['component'],
    registers: [registry],
  });
}

/** sha256 of JSON with sorted keys, so field order does not make two equal values differ. */
export function contentHash(value: unknown): string {
  return hash('sha256', canonicalJson(value));
}

/**
 * JSON with every object's keys in sorted (UTF-16 code unit) order. The text is what fingerprints
 * stored in dedup's state were computed from, so it must never change; only its speed may. Records
 * of one schema share their field names, so each object shape's sorted and quoted keys are computed
 * once (a bounded cache) instead of sorting and quoting every record's keys.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (Array.isArray(value)) {
    let text = '[';
    for (let index = 0; index < value.length; index++) text += (index === 0 ? '' : ',') + canonicalJson(value[index]);
    return `${text}]`;
  }
  return canonicalObject(value as Record<string, unknown>);
}

function canonicalObject(value: Record<string, unknown>, skip?: (field: string) => boolean): string {
  const shape = sortedShape(Object.keys(value));
  let text = '{';
  let first = true;
  for (let index = 0; index < shape.keys.length; index++) {
    const key = shape.keys[index] as string;
    if (skip?.(key)) continue;
    text += `${first ? '' : ','}${shape.quoted[index] as string}:${canonicalJson(value[key])}`;
    first = false;
  }
  return `${text}}`;
}

interface SortedShape { readonly source: readonly string[]; readonly keys: readonly string[]; readonly quoted: readonly string[] }
const SHAPE_CACHE_LIMIT = 512;
const shapes = new Map<string, SortedShape>();

function sortedShape(keys: string[]): SortedShape {
  const id = keys.join('\u0000');
  const cached = shapes.get(id);
  // A key holding the separator could give two key lists one id: a hit counts only for the same keys.
  if (cached !== undefined && sameKeys(cached.source, keys)) return cached;
  const sorted = [...keys].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const shape = { source: keys, keys: sorted, quoted: sorted.map((key) => JSON.stringify(key)) };
  if (cached === undefined) {
    if (shapes.size >= SHAPE_CACHE_LIMIT) shapes.clear();
    shapes.set(id, shape);
  }
  return shape;
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let index = 0; index < a.length; index++) if (a[index] !== b[index]) return false;
  return true;
}
