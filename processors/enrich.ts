import { Type, type Static } from '@sinclair/typebox';
import { defineProcessor, type InputRecord, type ProcessorContext } from '../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../src/component/duration.ts';
import { readPath } from '../src/component/value-path.ts';

const JoinSchema = Type.Object({
  table: Type.String({ description: 'Name of a table under `tables`.' }),
  key_path: Type.String({ description: 'Dotted path of the event field to look the table up by.', examples: ['service_code'] }),
  key_prefix: Type.String({ default: '', description: 'Prepended to the looked-up value, e.g. "product.product:" when the table is keyed <model>:<id>.' }),
  fields: Type.Record(Type.String(), Type.String(), { description: 'Output field → dotted path in the table record, e.g. { odoo_product_id: id }.' }),
}, { additionalProperties: false });

const EnrichConfig = Type.Object({
  tables: Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Type.Object({
    topic: Type.String({ description: 'A declared, compacted topic (e.g. from odoo_source).' }),
    key_field: Type.Optional(Type.String({ description: 'Key the table by this value field (e.g. default_code) instead of the record key.' })),
  }, { additionalProperties: false }), { description: 'Reference tables, materialised in full on every instance and kept current.' }),
  joins: Type.Array(JoinSchema, { minItems: 1, description: 'Lookups to make per event; each adds its fields to the event.' }),
  on_miss: Type.Union([Type.Literal('emit'), Type.Literal('wait'), Type.Literal('dlq')], {
    default: 'emit',
    description: 'When a lookup misses: emit the event flagged unenriched, wait for the table to get the key (then dead-letter after wait_timeout), or dead-letter at once.',
  }),
  wait_timeout: Type.String({ pattern: DURATION_PATTERN, default: '15m', description: 'With on_miss: wait, how long an event is held before it is dead-lettered.' }),
  check_interval: Type.String({ pattern: DURATION_PATTERN, default: '1s', description: 'With on_miss: wait, how often held events are retried.' }),
  status_field: Type.Optional(Type.String({ description: 'Output field set to "enriched" or "unenriched".', examples: ['enrichment_status'] })),
}, { additionalProperties: false });

type EnrichConfigType = Static<typeof EnrichConfig>;

/** An event held back (on_miss: wait), in a form the store can keep. */
interface HeldEvent {
  readonly since: number;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: string | null;
  readonly value: unknown;
  readonly headers: Record<string, string>;
  readonly raw: string | null;
  /** Lookups tried so far (absent in events held by an earlier version). */
  readonly attempts?: number;
}

/** Held events a timer call retries before it commits and is called again. */
const RELEASE_CHUNK = 500;
/** Retries back off from check_interval to this many times it. */
const MAX_BACKOFF_FACTOR = 16;


class EnrichmentMiss extends Error {
  override readonly name = 'EnrichmentMiss';
}

/**
 * Joins each event with reference tables (Odoo products, partners, facilities from odoo_source) and
 * adds the declared fields. Held events (on_miss: wait) live in a store, so they survive restarts.
 * Each is scheduled (the store's deadline index) for its next lookup — after check_interval, then
 * backing off to 16 × check_interval, and at the latest when wait_timeout ends — so a check touches
 * only the events that are due, whatever the number held; they come back roughly in arrival order.
 */
export const enrich = defineProcessor({
  kind: 'processor',
  type: 'enrich',
  description: 'Adds fields from reference tables (compacted topics) to each event; on a miss emits flagged, waits, or dead-letters.',
  stateful: true,
  outputs: ['enriched'],
  config: EnrichConfig,
  tables: (config) => Object.entries(config.tables).map(([name, table]) => ({ name, topic: table.topic, ...(table.key_field ? { keyField: table.key_field } : {}) })),
  stores: (config) => [{ name: 'held_events', ttlMs: 2 * (parseDuration(config.wait_timeout) as number) }],
  create: (config) => {
    const timeoutMs = parseDuration(config.wait_timeout) as number;
    return {
      init(context) {
        if (config.on_miss !== 'wait') return;
        const intervalMs = parseDuration(config.check_interval) as number;
        context.schedule(intervalMs, (now) => releaseHeld(config, context, now, timeoutMs, intervalMs));
      },
      process(record, context) {
        const { added, missing } = lookUp(config, context, record.value);
        if (missing.length === 0) {
          forwardEnriched(config, context, record, added, 'enriched');
          context.count('enriched');
          return;
        }
        if (config.on_miss === 'emit') {
          forwardEnriched(config, context, record, added, 'unenriched');
          context.count('unenriched');
        } else if (config.on_miss === 'dlq') {
          throw new EnrichmentMiss(`no ${missing.join(', ')} in the reference tables`);
        } else {
          const since = context.now();
          context.store<HeldEvent>('held_events').put(`${record.topic}:${record.partition}:${record.offset}`, {
            since, topic: record.topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp,
            key: record.key, value: JSON.parse(JSON.stringify(record.value)) as unknown, headers: { ...record.headers },
            raw: record.rawValue === null ? null : record.rawValue.toString('base64'), attempts: 0,
          }, { dueAt: Math.min(since + (parseDuration(config.check_interval) as number), since + timeoutMs) });
          context.count('held');
        }
      },
    };
  },
});

function lookUp(config: EnrichConfigType, context: ProcessorContext, event: unknown): { added: Record<string, unknown>; missing: string[] } {
  const added: Record<string, unknown> = {};
  const missing: string[] = [];
  for (const join of config.joins) {
    const lookupValue = readPath(event, join.key_path);
    const reference = lookupValue === undefined || lookupValue === null ? undefined : context.table(join.table).get(`${join.key_prefix}${String(lookupValue)}`);
    for (const [target, path] of Object.entries(join.fields)) added[target] = reference === undefined ? null : readPath(reference, path) ?? null;
    // Names the table and field only: the looked-up value may be personal data.
    if (reference === undefined) missing.push(`${join.table} entry for ${join.key_path}`);
  }
  return { added, missing };
}

function forwardEnriched(
  config: EnrichConfigType, context: ProcessorContext, record: Pick<InputRecord, 'key' | 'value'>, added: Record<string, unknown>, status: 'enriched' | 'unenriched',
): void {
  const value = { ...(record.value as Record<string, unknown>), ...added, ...(config.status_field ? { [config.status_field]: status } : {}) };
  context.forward('enriched', { key: record.key, value });
}

const scheduledLegacy = new WeakSet<ProcessorContext>();

/** Retries the held events that are due (at most RELEASE_CHUNK; true when more are due). */
function releaseHeld(config: EnrichConfigType, context: ProcessorContext, now: number, timeoutMs: number, intervalMs: number): boolean {
  const held = context.store<HeldEvent>('held_events');
  if (!scheduledLegacy.has(context)) {
    // Once per task: events held by an earlier version carry no deadline (nor attempts); schedule them
    // now. Held events are few (each waits wait_timeout at most), so this one scan is small.
    scheduledLegacy.add(context);
    for (const [id, event] of [...held.entries()]) if (event.attempts === undefined) held.put(id, { ...event, attempts: 0 }, { dueAt: now });
  }
  const due = held.due(now, RELEASE_CHUNK);
  for (const [id, event] of due) {
    const { added, missing } = lookUp(config, context, event.value);
    if (missing.length === 0) {
      forwardEnriched(config, context, event, added, 'enriched');
      held.delete(id);
      context.count('released');
    } else if (now - event.since >= timeoutMs) {
      context.deadLetter({
        topic: event.topic, partition: event.partition, offset: event.offset, timestamp: event.timestamp, key: event.key,
        value: event.value, headers: event.headers, rawValue: event.raw === null ? null : Buffer.from(event.raw, 'base64'),
      }, new EnrichmentMiss(`still no ${missing.join(', ')} after ${config.wait_timeout}`));
      held.delete(id);
      context.count('timed_out');
    } else {
      const attempts = (event.attempts ?? 0) + 1;
      const backoff = intervalMs * Math.min(MAX_BACKOFF_FACTOR, 2 ** attempts);
      held.put(id, { ...event, attempts }, { dueAt: Math.min(now + backoff, event.since + timeoutMs) });
    }
  }
  return due.length >= RELEASE_CHUNK;
}
