import { Type } from '@sinclair/typebox';
import { defineProcessor } from '../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../src/component/duration.ts';
import { readPath } from '../src/component/value-path.ts';

/**
 * Counts records per key and emits the running count with the offset of the record that moved it.
 * Small on purpose: it is the reference for writing a processor, and the runtime's exactly-once
 * tests run it (every input appears once in the output; the stored counts are exact).
 */
export const countByKey = defineProcessor({
  kind: 'processor',
  type: 'count_by_key',
  description: 'Counts records per key (the record key, or a field of the value) and emits the running count.',
  stateful: true,
  outputs: ['counts'],
  config: Type.Object({
    key_field: Type.Optional(Type.String({ description: 'Dotted path of a value field to count by; the record key when absent.', examples: ['account.id'] })),
    ttl: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'Forget a key this long after its last record (e.g. 30d); kept forever when absent.' })),
  }, { additionalProperties: false }),
  stores: (config) => [{ name: 'counts', ...(config.ttl ? { ttlMs: parseDuration(config.ttl) as number } : {}) }],
  create: (config) => ({
    process(record, context) {
      const key = config.key_field ? String(readPath(record.value, config.key_field) ?? '') : (record.key ?? '');
      const counts = context.store<number>('counts');
      const count = (counts.get(key) ?? 0) + 1;
      counts.put(key, count);
      context.forward('counts', {
        key,
        value: { key, count, origin_topic: record.topic, origin_partition: record.partition, origin_offset: Number(record.offset) },
      });
    },
  }),
});
