import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/observe/logger.ts';
import type { InputRecord, KeyValueStore, OutputRecord, Processor, ProcessorContext, ReferenceTableView } from '../../src/component/component.ts';
import { DEDUP_CONFLICT_HEADERS, DEDUP_RESULT_HEADER, contentFingerprint, dedup } from '../../processors/dedup.ts';
import { MemoryStoreBackend } from '../../src/runtime/memory-store-backend.ts';
import { TransactionalStore } from '../../src/runtime/transactional-store.ts';

/**
 * Dedup's decisions, driven through a stand-in context: duplicate (same key, same content once the
 * delivery's own fields are left out), conflict (same key, other content, not a correction) to the
 * conflicts output or — unmapped — a dead letter, correction and versioned updates, stale versions.
 * The broker-level behaviour (conflicts topic, metric, Odoo) is in tests/faithful/faithful-pipeline.test.ts
 * and tests/processors/dedup-conflicts-dlq.test.ts.
 */

class StandInContext implements ProcessorContext {
  readonly label = 'dedup_stand_in';
  readonly partition = 0;
  readonly logger = createLogger({ level: 'silent' });
  readonly metricsRegistry = new Registry();
  readonly forwarded: Array<{ output: string; record: OutputRecord }> = [];
  readonly deadLetters: Array<{ record: InputRecord; error: Error }> = [];
  readonly counts = new Map<string, number>();
  /** The runtime's own store over the memory backend (TTL, deadlines and ranges as in production). */
  private readonly state = new TransactionalStore('seen_keys', 'changelog', new MemoryStoreBackend(), undefined);

  constructor(private readonly outputs: readonly string[]) {}

  store<V>(): KeyValueStore<V> {
    return this.state as TransactionalStore<V>;
  }
  forward<V>(output: string, record: OutputRecord<V>): void { this.forwarded.push({ output, record }); }
  now(): number { return Date.now(); }
  schedule(): void { throw new Error('dedup schedules nothing'); }
  table<V>(): ReferenceTableView<V> { throw new Error('dedup reads no tables'); }
  repartition(): void { throw new Error('these records are keyed by their idempotency key'); }
  deadLetter(record: InputRecord, error: Error): void { this.deadLetters.push({ record, error }); }
  hasOutput(output: string): boolean { return this.outputs.includes(output); }
  count(event: string, n = 1): void { this.counts.set(event, (this.counts.get(event) ?? 0) + n); }
  results(): Array<string | undefined> { return this.forwarded.map((entry) => `${entry.output}:${entry.record.headers?.[DEDUP_RESULT_HEADER]}`); }
}

const charge = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  partner: 'north_lab', delivery_id: 'msg_1', channel: 'WEBHOOK', received_at: 1000, sent_at: 900, version: '20241105|C1',
  idempotency_key: 'north_lab|LIS|LAB|C1#FT1-1', entity_key: 'north_lab|charge|T1', is_correction: false,
  service_code: '85025', total: { amount_minor: 4250, currency: 'USD' }, ...overrides,
});

let offset = 0;
const input = (value: Record<string, unknown>, key = String(value.entity_key)): InputRecord => ({
  topic: 'partner.charge.received.v1', partition: 0, offset: String(offset++), timestamp: 0, key, value, headers: { 'lifeline.source': 'test' }, rawValue: Buffer.from('raw'),
});

async function processor(config: Record<string, unknown>, context: StandInContext): Promise<Processor> {
  const created = dedup.create(Value.Default(dedup.config, { key_path: 'idempotency_key', repartition: false, ...config }) as never);
  await created.init?.(context);
  return created;
}

test('the fingerprint leaves out how and when a record was delivered, not what it says', () => {
  assert.equal(contentFingerprint(charge()), contentFingerprint(charge({ delivery_id: 'msg_2', channel: 'FILE', received_at: 5, sent_at: 6, version: 'other' })));
  assert.notEqual(contentFingerprint(charge()), contentFingerprint(charge({ total: { amount_minor: 4251, currency: 'USD' } })));
  assert.match(contentFingerprint(charge()), /^[0-9a-f]{16}$/);
  // No time in the content: the adapters stand in the arrival time, which is not content either.
  assert.equal(contentFingerprint(charge({ occurred_at: 1000 })), contentFingerprint(charge({ occurred_at: 7000, received_at: 7000 })));
  assert.equal(contentFingerprint(charge({ occurred_at: 900 })), contentFingerprint(charge({ occurred_at: 950, sent_at: 950 })), 'nor the send time (a resend with a new MSH-7)');
  assert.notEqual(contentFingerprint(charge({ occurred_at: 1 })), contentFingerprint(charge({ occurred_at: 2 })));
});

test('a redelivery is a duplicate; the same key with other content is a conflict on the conflicts output with both fingerprints, counted', async () => {
  const context = new StandInContext(['unique', 'conflicts']);
  const dedupe = await processor({}, context);
  await dedupe.process(input(charge()), context);
  await dedupe.process(input(charge({ delivery_id: 'msg_retry', received_at: 2000 })), context);
  await dedupe.process(input(charge({ service_code: '87086', total: { amount_minor: 1990, currency: 'USD' } })), context);
  assert.deepEqual(context.results(), ['unique:first', 'conflicts:conflict']);
  const conflict = context.forwarded[1]?.record;
  assert.equal(conflict?.headers?.[DEDUP_CONFLICT_HEADERS.previousFingerprint], contentFingerprint(charge()));
  assert.equal(conflict?.headers?.[DEDUP_CONFLICT_HEADERS.fingerprint], contentFingerprint(charge({ service_code: '87086', total: { amount_minor: 1990, currency: 'USD' } })));
  assert.equal(conflict?.headers?.['lifeline.source'], 'test', 'the record\'s own headers travel with it');
  assert.equal(context.counts.get('duplicates'), 1);
  assert.equal(context.counts.get('conflicts'), 1);
  assert.match(await context.metricsRegistry.metrics(), /lifeline_dedup_conflicts_total\{component="dedup_stand_in"\} 1/);
  // The content seen first stays the reference: a third copy of it is still a duplicate.
  await dedupe.process(input(charge({ delivery_id: 'msg_3' })), context);
  assert.equal(context.counts.get('duplicates'), 2);
});

test('without a conflicts output a conflict is dead-lettered as LL_DEDUP_CONFLICT with its raw bytes and the fingerprints', async () => {
  const context = new StandInContext(['unique']);
  const dedupe = await processor({}, context);
  await dedupe.process(input(charge()), context);
  await dedupe.process(input(charge({ total: { amount_minor: 1, currency: 'USD' } })), context);
  assert.equal(context.deadLetters.length, 1);
  const letter = context.deadLetters[0] as { record: InputRecord; error: Error & { code?: string } };
  assert.equal(letter.error.code, 'LL_DEDUP_CONFLICT');
  assert.match(letter.error.message, /fingerprint first seen [0-9a-f]{16}, this one [0-9a-f]{16}/);
  assert.doesNotMatch(letter.error.message, /north_lab|LIS\|LAB/, 'the message names no key or value');
  assert.deepEqual(letter.record.rawValue, Buffer.from('raw'));
  assert.equal(letter.record.headers[DEDUP_RESULT_HEADER], 'conflict');
});

test('a record the format marks as a correction passes as an update; with a version, only a higher one (an older one is stale)', async () => {
  const context = new StandInContext(['unique', 'conflicts']);
  const dedupe = await processor({ version_path: 'version' }, context);
  await dedupe.process(input(charge({ version: '2' })), context);
  await dedupe.process(input(charge({ version: '3', is_correction: true, total: { amount_minor: 5000, currency: 'USD' } })), context);
  await dedupe.process(input(charge({ version: '1', is_correction: true, total: { amount_minor: 10, currency: 'USD' } })), context);
  await dedupe.process(input(charge({ version: '3', is_correction: true, total: { amount_minor: 7, currency: 'USD' } })), context);
  assert.deepEqual(context.results(), ['unique:first', 'unique:update', 'conflicts:conflict']);
  assert.equal(context.counts.get('stale'), 1);
});

test('pass_updates lets other content through as an update (the behaviour before conflicts, kept)', async () => {
  const context = new StandInContext(['unique']);
  const dedupe = await processor({ pass_updates: true }, context);
  await dedupe.process(input(charge()), context);
  await dedupe.process(input(charge({ total: { amount_minor: 1, currency: 'USD' } })), context);
  assert.deepEqual(context.results(), ['unique:first', 'unique:update']);
});

test('without repartitioning, two entities sharing an idempotency key are two records, never a conflict', async () => {
  const context = new StandInContext(['unique', 'conflicts']);
  const dedupe = await processor({}, context);
  await dedupe.process(input(charge()), context);
  await dedupe.process(input(charge({ entity_key: 'north_lab|charge|T2', total: { amount_minor: 99, currency: 'USD' } })), context);
  assert.deepEqual(context.results(), ['unique:first', 'unique:first']);
});

test('an entry stored before fingerprints (a whole-value sha256) still recognises its duplicate', async () => {
  const context = new StandInContext(['unique', 'conflicts']);
  const dedupe = await processor({}, context);
  const { contentHash } = await import('../../processors/dedup.ts');
  const value = charge();
  context.store<unknown>().put(String(value.idempotency_key), { hash: contentHash(value) });
  await dedupe.process(input(value), context);
  assert.deepEqual(context.results(), []);
  assert.equal(context.counts.get('duplicates'), 1);
});
