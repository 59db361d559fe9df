import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/observe/logger.ts';
import type { InputRecord, KeyValueStore, OutputRecord, Processor, ProcessorContext, ReferenceTableView } from '../../src/component/component.ts';
import { DEDUP_CONFLICT_HEADERS, DEDUP_RESULT_HEADER, DEFAULT_VOLATILE_FIELDS, canonicalJson, contentFingerprint, contentHash, dedup } from '../../processors/dedup.ts';
import { MemoryStoreBackend } from '../../src/runtime/memory-store-backend.ts';
import { TransactionalStore } from '../../src/runtime/transactional-store.ts';
import { TopologyTestDriver } from '../../src/testing/topology-test-driver.ts';

/**
 * Dedup's decisions on the topology test driver: duplicate (same key, same content once the
 * delivery's own fields are left out), conflict (same key, other content, not a correction) to the
 * conflicts output or — unmapped — a dead letter, correction and versioned updates, stale versions.
 * One test keeps a stand-in context: an entry written by an older dedup (a whole-value hash) has to
 * be put in the store first, and the driver's stores are filled only by processing.
 * The broker-level behaviour (conflicts topic, metric, Odoo) is in tests/faithful/faithful-pipeline.test.ts
 * and tests/processors/dedup-conflicts-dlq.test.ts.
 */

/** For the one test that seeds the store (see above). */
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

// The decisions on the topology test driver, through the real partner.service_charge contract: the
// values dedup fingerprints are what Avro decodes (every field, defaults filled in), as in production.
const RECEIVED = 'partner.service_charge.received.v1';
const UNIQUE = 'partner.service_charge.deduplicated.v1';
const CONFLICTS = 'partner.service_charge.conflicts.v1';
const LABEL = 'charge_dedup';
const SERVICE_CHARGE = 'schemas/partner/service_charge.avsc';

/** A charge as the partner formats write it (the fields dedup's fingerprint looks at, and the required ones). */
const serviceCharge = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  partner: 'north_lab', source_format: 'HL7V2', channel: 'WEBHOOK', delivery_id: 'msg_1', idempotency_key: 'north_lab|LIS|LAB|C1#FT1-1',
  entity_key: 'north_lab|charge|T1', version: '20241105|C1', is_correction: false, refs: {}, occurred_at: 800, sent_at: 900, received_at: 1000,
  charge_type: 'CHARGE', status: 'BILLABLE', scope: 'ITEM', service_code: '85025', quantity: 1, total: { amount_minor: 4250, currency: 'USD' }, ...overrides,
});

async function dedupDriver(config: Record<string, unknown>, outputs: { unique: string; conflicts?: string }): Promise<TopologyTestDriver> {
  return TopologyTestDriver.forProcessor(dedup, {
    label: LABEL,
    config: { key_path: 'idempotency_key', repartition: false, ...config },
    topics: Object.fromEntries([RECEIVED, ...Object.values(outputs)].map((topic) => [topic, { schema: SERVICE_CHARGE, partitions: 3 }])),
    inputs: [RECEIVED],
    outputs,
  });
}

/** Pipes charges keyed by their entity, with a header of their own that must travel on. */
async function pipe(driver: TopologyTestDriver, ...charges: Array<Record<string, unknown>>): Promise<void> {
  await driver.input(RECEIVED).pipeAll(charges.map((value) => ({ key: String(value.entity_key), value, headers: { 'lifeline.source': 'test' } })));
}

/** The output records as `<output>:<dedup result>`: the unique output's in order, then the conflicts'. */
function results(driver: TopologyTestDriver, withConflicts = true): string[] {
  const of = (topic: string, output: string): string[] => driver.output(topic).allRecords()
    .sort((a, b) => a.partition - b.partition || Number(a.offset) - Number(b.offset))
    .map((record) => `${output}:${record.headers[DEDUP_RESULT_HEADER]}`);
  return [...of(UNIQUE, 'unique'), ...(withConflicts ? of(CONFLICTS, 'conflicts') : [])];
}

test('a redelivery is a duplicate; the same key with other content is a conflict on the conflicts output with both fingerprints, counted', async () => {
  const driver = await dedupDriver({}, { unique: UNIQUE, conflicts: CONFLICTS });
  const other = { service_code: '87086', total: { amount_minor: 1990, currency: 'USD' } };
  await pipe(driver, serviceCharge(), serviceCharge({ delivery_id: 'msg_retry', received_at: 2000 }), serviceCharge(other));
  assert.deepEqual(driver.output(UNIQUE).readRecords().map((record) => record.headers[DEDUP_RESULT_HEADER]), ['first']);
  const [conflict, ...more] = driver.output(CONFLICTS).readRecords();
  assert.equal(more.length, 0);
  assert.equal(conflict?.headers[DEDUP_RESULT_HEADER], 'conflict');
  // The fingerprints are of what the processor read: the decoded input values.
  const [first, , third] = driver.output(RECEIVED).allRecords().map((record) => record.value);
  assert.equal(conflict?.headers[DEDUP_CONFLICT_HEADERS.previousFingerprint], contentFingerprint(first));
  assert.equal(conflict?.headers[DEDUP_CONFLICT_HEADERS.fingerprint], contentFingerprint(third));
  assert.notEqual(contentFingerprint(first), contentFingerprint(third));
  assert.equal(conflict?.headers['lifeline.source'], 'test', 'the record\'s own headers travel with it');
  assert.deepEqual(await driver.processorEvents(LABEL), { first: 1, duplicates: 1, conflicts: 1 });
  assert.match(await driver.metricsText(), new RegExp(`lifeline_dedup_conflicts_total\\{component="${LABEL}"\\} 1`));
  // The content seen first stays the reference: a third copy of it is still a duplicate.
  await pipe(driver, serviceCharge({ delivery_id: 'msg_3' }));
  assert.equal((await driver.processorEvents(LABEL)).duplicates, 2);
  await driver.close();
});

test('without a conflicts output a conflict is dead-lettered as LL_DEDUP_CONFLICT with its raw bytes and the fingerprints', async () => {
  const driver = await dedupDriver({}, { unique: UNIQUE });
  await pipe(driver, serviceCharge(), serviceCharge({ total: { amount_minor: 1, currency: 'USD' } }));
  const letters = driver.deadLetters(LABEL);
  assert.equal(letters.length, 1);
  const letter = letters[0] as (typeof letters)[number];
  assert.equal(letter.errorClass, 'LL_DEDUP_CONFLICT');
  assert.match(letter.errorMessage, /fingerprint first seen [0-9a-f]{16}, this one [0-9a-f]{16}/);
  assert.doesNotMatch(letter.errorMessage, /north_lab|LIS\|LAB/, 'the message names no key or value');
  const input = driver.output(RECEIVED).allRecords()[1];
  assert.deepEqual(letter.value, input?.value, 'the raw bytes are the input\'s: they decode to it');
  assert.ok(letter.rawValue && letter.rawValue.length > 0);
  assert.deepEqual(letter.origin, { topic: RECEIVED, partition: input?.partition, offset: input?.offset });
  assert.equal(letter.headers[DEDUP_RESULT_HEADER], 'conflict');
  assert.equal(driver.output(UNIQUE).readRecords().length, 1);
  await driver.close();
});

test('a record the format marks as a correction passes as an update; with a version, only a higher one (an older one is stale)', async () => {
  const driver = await dedupDriver({ version_path: 'version' }, { unique: UNIQUE, conflicts: CONFLICTS });
  await pipe(driver,
    serviceCharge({ version: '2' }),
    serviceCharge({ version: '3', is_correction: true, total: { amount_minor: 5000, currency: 'USD' } }),
    serviceCharge({ version: '1', is_correction: true, total: { amount_minor: 10, currency: 'USD' } }),
    serviceCharge({ version: '3', is_correction: true, total: { amount_minor: 7, currency: 'USD' } }));
  assert.deepEqual(results(driver), ['unique:first', 'unique:update', 'conflicts:conflict']);
  assert.equal((await driver.processorEvents(LABEL)).stale, 1);
  await driver.close();
});

test('pass_updates lets other content through as an update (the behaviour before conflicts, kept)', async () => {
  const driver = await dedupDriver({ pass_updates: true }, { unique: UNIQUE });
  await pipe(driver, serviceCharge(), serviceCharge({ total: { amount_minor: 1, currency: 'USD' } }));
  assert.deepEqual(results(driver, false), ['unique:first', 'unique:update']);
  await driver.close();
});

test('without repartitioning, two entities sharing an idempotency key are two records, never a conflict', async () => {
  const driver = await dedupDriver({}, { unique: UNIQUE, conflicts: CONFLICTS });
  await pipe(driver, serviceCharge(), serviceCharge({ entity_key: 'north_lab|charge|T2', total: { amount_minor: 99, currency: 'USD' } }));
  assert.deepEqual(results(driver), ['unique:first', 'unique:first']);
  await driver.close();
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

/** The fingerprint as first written (stored fingerprints were computed with it): the faster one must give the same text and hash. */
function referenceCanonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Buffer.isBuffer(value)) return JSON.stringify(value.toString('base64'));
  if (Array.isArray(value)) return `[${value.map(referenceCanonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${referenceCanonicalJson(item)}`).join(',')}}`;
}

function referenceFingerprint(value: Record<string, unknown>, volatile: ReadonlySet<string>): string {
  const standIn = value.occurred_at !== undefined && (
    (volatile.has('received_at') && value.occurred_at === value.received_at) || (volatile.has('sent_at') && value.occurred_at === value.sent_at));
  const content = Object.fromEntries(Object.entries(value).filter(([field]) => !volatile.has(field) && !(standIn && field === 'occurred_at')));
  return createHash('sha256').update(referenceCanonicalJson(content)).digest('hex').slice(0, 16);
}

test('the content fingerprint is byte for byte the one stored fingerprints were made with, for 3,000 random records of few shapes and many', () => {
  let seed = 42;
  const random = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
  const names = ['id', 'total', 'occurred_at', 'received_at', 'sent_at', 'delivery_id', 'channel', 'version', 'é', 'a"b', 'Z', '10', '2', 'lines', 'payer'];
  const leaf = (): unknown => [null, undefined, true, false, 0, -0, 1.5, -7, 'x', 'ünï"\\\n', '', Buffer.from([1, 2, 3])][Math.floor(random() * 12)];
  const make = (depth: number): unknown => {
    const pick = random();
    if (depth > 2 || pick < 0.4) return leaf();
    if (pick < 0.55) return Array.from({ length: Math.floor(random() * 4) }, () => make(depth + 1));
    const object: Record<string, unknown> = {};
    for (const name of names) if (random() < 0.4) object[name] = make(depth + 1);
    return object;
  };
  const volatile = new Set(DEFAULT_VOLATILE_FIELDS);
  for (let index = 0; index < 3_000; index++) {
    const value = make(0);
    assert.equal(canonicalJson(value), referenceCanonicalJson(value));
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value)) {
      if (index % 3 === 0) (value as Record<string, unknown>).occurred_at = (value as Record<string, unknown>).received_at;
      assert.equal(contentFingerprint(value, volatile), referenceFingerprint(value as Record<string, unknown>, volatile));
    }
  }
  // Keys holding the cache's separator: two key lists that join alike still get their own text.
  assert.equal(canonicalJson({ 'a\u0000b': 1, c: 2 }), referenceCanonicalJson({ 'a\u0000b': 1, c: 2 }));
  assert.equal(canonicalJson({ a: 1, 'b\u0000c': 2 }), referenceCanonicalJson({ a: 1, 'b\u0000c': 2 }));
  // A fixed record pins the format itself: this value was computed before the faster implementation.
  assert.equal(contentHash({ b: [1, { d: 'x', c: null }], a: 'é' }), createHash('sha256').update('{"a":"é","b":[1,{"c":null,"d":"x"}]}').digest('hex'));
});
