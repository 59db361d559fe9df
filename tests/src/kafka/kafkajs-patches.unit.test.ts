import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

// patches/kafkajs+2.2.4.patch, applied by `npm install` (postinstall: patch-package).
const require = createRequire(import.meta.url);
type Grouper = (options: { topic: string; partitionMetadata: unknown[]; messages: Array<{ partition: number; n: number }>; partitioner: (options: { message: { partition: number } }) => number }) => Record<string, Array<{ n: number }>>;

test('kafkajs groups a send\'s messages by partition in one pass (the installed file is the patched one), keeping their order', () => {
  const path = require.resolve('kafkajs/src/producer/groupMessagesPerPartition.js');
  assert.doesNotMatch(readFileSync(path, 'utf8'), /\[\.\.\.current, message\]/, `${path} still copies the list per message: run npm install (patch-package)`);
  const group = require(path) as Grouper;
  const messages = Array.from({ length: 30_000 }, (_, n) => ({ partition: n % 3, n }));
  const grouped = group({ topic: 't', partitionMetadata: [{}, {}, {}], messages, partitioner: ({ message }) => message.partition });
  assert.deepEqual(Object.keys(grouped).sort(), ['0', '1', '2']);
  for (const partition of [0, 1, 2]) {
    const ns = (grouped[String(partition)] ?? []).map((message) => message.n);
    assert.equal(ns.length, 10_000);
    assert.deepEqual(ns.slice(0, 3), [partition, partition + 3, partition + 6], 'in send order');
  }
  assert.deepEqual(group({ topic: 't', partitionMetadata: [], messages, partitioner: () => 0 }), {});
});

test('kafkajs keeps seek offsets per topic and partition under a plain string key (patched), and pops them once', () => {
  const path = require.resolve('kafkajs/src/consumer/seekOffsets.js');
  assert.doesNotMatch(readFileSync(path, 'utf8'), /JSON\.stringify/, `${path} is not patched: run npm install (patch-package)`);
  const SeekOffsets = require(path) as new () => { set(topic: string, partition: number, offset: string): void; has(topic: string, partition: number): boolean; pop(topic: string, partition: number): { topic: string; partition: number; offset: string } | undefined };
  const seeks = new SeekOffsets();
  seeks.set('a.b', 1, '42');
  seeks.set('a.b1', 0, '7');
  assert.equal(seeks.has('a.b', 1), true);
  assert.equal(seeks.has('a.b', 0), false);
  assert.deepEqual(seeks.pop('a.b', 1), { topic: 'a.b', partition: 1, offset: '42' });
  assert.equal(seeks.pop('a.b', 1), undefined);
  assert.equal(seeks.has('a.b1', 0), true);
});

test('kafkajs read_committed drops every aborted transaction\'s records, also when two producers\' aborted transactions begin before the next record read, listed out of order (patched)', () => {
  const path = require.resolve('kafkajs/src/consumer/filterAbortedMessages.js');
  const filter = require(path) as (options: { messages: unknown[]; abortedTransactions: Array<{ firstOffset: string; producerId: string }> }) => Array<{ offset: string }>;
  const record = (offset: number, producerId: string, inTransaction = true) => ({ offset: String(offset), key: Buffer.from(`k${offset}`), isControlRecord: false, batchContext: { producerId, inTransaction } });
  const abortMarker = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from([0, 0, 0, 0]), isControlRecord: true, batchContext: { producerId, inTransaction: true } });
  const commitMarker = (offset: number, producerId: string) => ({ offset: String(offset), key: Buffer.from([0, 0, 0, 1]), isControlRecord: true, batchContext: { producerId, inTransaction: true } });
  // Producers 7 and 9 each begin a transaction (offsets 10 and 11) that is aborted when their process
  // is killed; the fetch starts at 12, so both began before the first record read. Producer 5 commits.
  const messages = [
    record(12, '9'), record(13, '7'), record(14, '5'), record(15, '9'), commitMarker(16, '5'),
    abortMarker(17, '7'), abortMarker(18, '9'), record(19, '7'), record(20, '8', false),
    // A data record whose key has the bytes of an abort marker does not end producer 4's aborted transaction.
    { offset: '22', key: Buffer.from([0, 0, 0, 0]), isControlRecord: false, batchContext: { producerId: '4', inTransaction: true } }, record(23, '4'), abortMarker(24, '4'),
  ];
  const kept = filter({ messages, abortedTransactions: [{ firstOffset: '11', producerId: '9' }, { firstOffset: '10', producerId: '7' }, { firstOffset: '21', producerId: '4' }] });
  assert.deepEqual(kept.filter((message) => !(message as { isControlRecord?: boolean }).isControlRecord).map((message) => Number(message.offset)), [14, 19, 20],
    'only producer 5\'s committed record, producer 7\'s next transaction and the non-transactional record are left');
});

test('kafkajs writes varints in place and small varlongs without Long (patched), byte for byte what the Long-based encoding writes, and reads them back', () => {
  const source = readFileSync(require.resolve('kafkajs/src/protocol/encoder.js'), 'utf8');
  assert.match(source, /Lifeline patch: bytes written in place/, 'the installed encoder.js is the patched one (npm install runs patch-package)');
  const Encoder = require('kafkajs/src/protocol/encoder.js') as new () => { writeVarLong(value: number): unknown; writeVarInt(value: number): unknown; buffer: Buffer };
  const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => { readVarLong(): { toString(): string }; readVarInt(): number };
  const Long = require('kafkajs/src/utils/long.js') as { fromValue(value: number): LongValue; fromInt(value: number): LongValue };
  interface LongValue { shiftLeft(n: number): LongValue; shiftRight(n: number): LongValue; shiftRightUnsigned(n: number): LongValue; xor(other: LongValue): LongValue; and(other: LongValue | number): LongValue; or(other: number): LongValue; notEquals(other: LongValue): boolean; toInt(): number }
  // The unpatched algorithm: zigzag on a 64-bit Long, seven bits at a time.
  const referenceVarLong = (value: number): Buffer => {
    const bytes: number[] = [];
    const long = Long.fromValue(value);
    let zigzag = long.shiftLeft(1).xor(long.shiftRight(63));
    while (zigzag.and(Long.fromValue(-128)).notEquals(Long.fromInt(0))) {
      bytes.push(zigzag.and(0x7f).or(0x80).toInt());
      zigzag = zigzag.shiftRightUnsigned(7);
    }
    bytes.push(zigzag.toInt());
    return Buffer.from(bytes);
  };
  const values = [0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 2 ** 30 - 1, -(2 ** 30), 2 ** 30, -(2 ** 30) - 1, 2 ** 31 - 1, -(2 ** 31), 1_733_130_000_000, -1_733_130_000_000];
  for (let exponent = 1; exponent < 52; exponent++) values.push(2 ** exponent + 3, -(2 ** exponent) - 5);
  for (const value of values) {
    const encoder = new Encoder();
    encoder.writeVarLong(value);
    assert.deepEqual(encoder.buffer, referenceVarLong(value), `varlong ${value}`);
    assert.equal(new Decoder(encoder.buffer).readVarLong().toString(), String(value));
    if (value >= -(2 ** 31) && value < 2 ** 31) {
      const varint = new Encoder();
      varint.writeVarInt(value);
      assert.equal(new Decoder(varint.buffer).readVarInt(), value, `varint ${value}`);
    }
  }
});

interface FakeBroker {
  nodeId: number;
  connected: boolean;
  isConnected(): boolean;
  [request: string]: unknown;
}

/** A cluster of fake brokers that records every request and coordinator lookup; `fail` makes the next request of a kind fail once. */
function fakeTransactionCluster() {
  const log: string[] = [];
  const lookups: string[] = [];
  const fail = new Map<string, Error>();
  /** Errors the next requests of a kind fail with, one each, in order. */
  const failNext = new Map<string, Error[]>();
  const delays = new Map<string, number>();
  let nextNodeId = 0;
  const broker = (): FakeBroker => {
    const nodeId = nextNodeId++;
    const request = (name: string, answer: unknown = {}) => async () => {
      log.push(`${name}@${nodeId} start`);
      await new Promise((resolveDelay) => setTimeout(resolveDelay, delays.get(name) ?? 0));
      log.push(`${name}@${nodeId} end`);
      const error = fail.get(name);
      if (error) {
        fail.delete(name);
        throw error;
      }
      const queued = failNext.get(name)?.shift();
      if (queued) throw queued;
      return answer;
    };
    const created: FakeBroker = {
      nodeId, connected: true, isConnected: () => created.connected,
      initProducerId: request('InitProducerId', { producerId: 7, producerEpoch: 1 }),
      addPartitionsToTxn: request('AddPartitionsToTxn'),
      addOffsetsToTxn: request('AddOffsetsToTxn'),
      txnOffsetCommit: request('TxnOffsetCommit'),
      endTxn: request('EndTxn'),
    };
    return created;
  };
  const brokers: FakeBroker[] = [];
  const cluster = {
    retry: { retries: 0 },
    refreshMetadataIfNecessary: async () => undefined,
    findGroupCoordinator: async ({ groupId, coordinatorType }: { groupId: string; coordinatorType: number }) => {
      lookups.push(`${coordinatorType === 1 ? 'transaction' : 'group'}:${groupId}`);
      const found = broker();
      brokers.push(found);
      return found;
    },
  };
  return { cluster, log, lookups, fail, failNext, delays, brokers };
}

const silentLogger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, namespace: () => silentLogger };

type EosManager = {
  initProducerId(): Promise<void>;
  beginTransaction(): void;
  addPartitionsToTransaction(topicData: Array<{ topic: string; partitions: Array<{ partition: number }> }>): Promise<void>;
  sendOffsets(options: { consumerGroupId: string; topics: Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }> }): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
};

function eosManagerOn(cluster: unknown): EosManager {
  const path = require.resolve('kafkajs/src/producer/eosManager/index.js');
  assert.match(readFileSync(path, 'utf8'), /onTransactionCoordinator/, `${path} is not patched: run npm install (patch-package)`);
  const create = require(path) as (options: object) => EosManager;
  return create({ logger: silentLogger, cluster, transactional: true, transactionalId: 'task.0' });
}

async function oneTransaction(manager: EosManager, partition: number): Promise<void> {
  manager.beginTransaction();
  await manager.addPartitionsToTransaction([{ topic: 'out', partitions: [{ partition }] }]);
  await manager.sendOffsets({ consumerGroupId: 'group', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '10' }] }] });
  await manager.commit();
}

test('kafkajs remembers the transaction and group coordinators across transactions (patched): no FindCoordinator before every request', async () => {
  const fake = fakeTransactionCluster();
  const manager = eosManagerOn(fake.cluster);
  await manager.initProducerId();
  for (let index = 0; index < 5; index++) await oneTransaction(manager, index);
  assert.deepEqual(fake.lookups, ['transaction:task.0', 'group:group'], 'one lookup of each coordinator for 5 transactions (unpatched: 4 per transaction)');
  assert.equal(fake.log.filter((entry) => entry.startsWith('EndTxn') && entry.endsWith('end')).length, 5);
});

test('kafkajs looks a coordinator up again after a request to it failed or its connection closed (patched)', async () => {
  const fake = fakeTransactionCluster();
  const manager = eosManagerOn(fake.cluster);
  await manager.initProducerId();
  await oneTransaction(manager, 0);
  fake.fail.set('AddPartitionsToTxn', Object.assign(new Error('This is not the correct coordinator'), { type: 'NOT_COORDINATOR' }));
  manager.beginTransaction();
  await assert.rejects(manager.addPartitionsToTransaction([{ topic: 'out', partitions: [{ partition: 1 }] }]), /correct coordinator/);
  await manager.abort();
  await oneTransaction(manager, 2);
  assert.deepEqual(fake.lookups, ['transaction:task.0', 'group:group', 'transaction:task.0'], 'the failed AddPartitionsToTxn made the next request find the transaction coordinator again');
  (fake.brokers.at(-1) as FakeBroker).connected = false; // the transaction coordinator's connection closed
  await oneTransaction(manager, 3);
  assert.deepEqual(fake.lookups.slice(3), ['transaction:task.0']);
  fake.fail.set('TxnOffsetCommit', Object.assign(new Error('unknown error'), { type: 'UNKNOWN' }));
  manager.beginTransaction();
  await assert.rejects(manager.sendOffsets({ consumerGroupId: 'group', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '11' }] }] }));
  await manager.abort();
  await oneTransaction(manager, 4);
  assert.deepEqual(fake.lookups.slice(4), ['group:group'], 'the failed TxnOffsetCommit made the next one find the group coordinator again');
});

test('kafkajs sends one transaction coordinator request at a time (patched): offsets sent beside a send wait for its AddPartitionsToTxn, their TxnOffsetCommit overlaps the rest', async () => {
  const fake = fakeTransactionCluster();
  const manager = eosManagerOn(fake.cluster);
  await manager.initProducerId();
  fake.delays.set('AddPartitionsToTxn', 30);
  manager.beginTransaction();
  const adding = manager.addPartitionsToTransaction([{ topic: 'out', partitions: [{ partition: 0 }] }]);
  const offsets = manager.sendOffsets({ consumerGroupId: 'group', topics: [{ topic: 'in', partitions: [{ partition: 0, offset: '10' }] }] });
  await Promise.all([adding, offsets]);
  await manager.commit();
  const order = fake.log.filter((entry) => !entry.startsWith('InitProducerId')).map((entry) => entry.replace(/@\d+/, ''));
  assert.deepEqual(order.slice(0, 3), ['AddPartitionsToTxn start', 'AddPartitionsToTxn end', 'AddOffsetsToTxn start'], 'AddOffsetsToTxn waited for AddPartitionsToTxn (the broker answers CONCURRENT_TRANSACTIONS otherwise)');
  assert.deepEqual(order.slice(-2), ['EndTxn start', 'EndTxn end']);
});

test('kafkajs retries AddPartitionsToTxn and AddOffsetsToTxn refused with CONCURRENT_TRANSACTIONS at once, on the same coordinator (patched), and keeps the coordinator after an error it answered', async () => {
  const fake = fakeTransactionCluster();
  const manager = eosManagerOn(fake.cluster);
  await manager.initProducerId();
  await oneTransaction(manager, 0);
  const concurrent = (): Error => Object.assign(new Error('The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing'), { name: 'KafkaJSProtocolError', type: 'CONCURRENT_TRANSACTIONS', retriable: true });
  fake.failNext.set('AddPartitionsToTxn', [concurrent(), concurrent(), concurrent()]);
  fake.failNext.set('AddOffsetsToTxn', [concurrent()]);
  const started = performance.now();
  await oneTransaction(manager, 1);
  const took = performance.now() - started;
  const starts = (name: string): number => fake.log.filter((entry) => entry.startsWith(`${name}@`) && entry.endsWith('start')).length;
  assert.equal(starts('AddPartitionsToTxn'), 1 + 4, 'three refusals, then accepted — inside addPartitionsToTransaction, not failing the send');
  assert.equal(starts('AddOffsetsToTxn'), 1 + 2);
  assert.ok(took < 1000, `short back-offs (5, 10, 20 ms), took ${Math.round(took)} ms`);
  assert.deepEqual(fake.lookups, ['transaction:task.0', 'group:group'], 'CONCURRENT_TRANSACTIONS came from the right coordinator: no new lookup');
  fake.fail.set('EndTxn', Object.assign(new Error('fenced'), { name: 'KafkaJSProtocolError', type: 'INVALID_PRODUCER_EPOCH', retriable: false }));
  manager.beginTransaction();
  await manager.addPartitionsToTransaction([{ topic: 'out', partitions: [{ partition: 2 }] }]);
  await assert.rejects(manager.commit(), /fenced/);
  assert.deepEqual(fake.lookups, ['transaction:task.0', 'group:group'], 'an error the coordinator answered keeps it');
  fake.failNext.set('AddPartitionsToTxn', Array.from({ length: 100 }, concurrent));
  const other = eosManagerOn(fake.cluster);
  await other.initProducerId();
  other.beginTransaction();
  await assert.rejects(other.addPartitionsToTransaction([{ topic: 'out', partitions: [{ partition: 3 }] }]), /concurrent operation/, 'refused for good: the error goes to the send after the retries (about a second)');
});

test('kafkajs speaks TxnOffsetCommit v3 and OffsetFetch v7 (KIP-447, patched): the member\'s generation and require_stable are encoded as the flexible versions lay them out, and the answers decoded to the older versions\' shape', async () => {
  type Built = { request: { apiVersion: number; encode(): Promise<{ buffer: Buffer }> }; response: { decode(data: Buffer): Promise<unknown>; parse(data: unknown): Promise<unknown> } };
  const txnOffsetCommit = require('kafkajs/src/protocol/requests/txnOffsetCommit/index.js') as { versions: string[]; protocol(options: { version: number }): (args: object) => Built };
  const offsetFetch = require('kafkajs/src/protocol/requests/offsetFetch/index.js') as { versions: string[]; protocol(options: { version: number }): (args: object) => Built };
  assert.ok(txnOffsetCommit.versions.includes('3'));
  assert.ok(offsetFetch.versions.includes('7'));

  const commit = txnOffsetCommit.protocol({ version: 3 })({
    transactionalId: 'tx', groupId: 'g', producerId: 7, producerEpoch: 2, generationId: 5, memberId: 'm',
    topics: [{ topic: 't', partitions: [{ partition: 1, offset: '42' }] }],
  });
  assert.equal(commit.request.apiVersion, 3);
  const int64 = (value: bigint): Buffer => { const buffer = Buffer.alloc(8); buffer.writeBigInt64BE(value); return buffer; };
  const int32 = (value: number): Buffer => { const buffer = Buffer.alloc(4); buffer.writeInt32BE(value); return buffer; };
  const compact = (text: string): Buffer => Buffer.concat([Buffer.from([text.length + 1]), Buffer.from(text)]);
  assert.deepEqual((await commit.request.encode()).buffer, Buffer.concat([
    Buffer.from([0]), // request header tagged fields
    compact('tx'), compact('g'), int64(7n), Buffer.from([0, 2]), int32(5), compact('m'), Buffer.from([0]), // group_instance_id: null
    Buffer.from([2]), compact('t'), Buffer.from([2]), int32(1), int64(42n), int32(-1), Buffer.from([0]), Buffer.from([0]), Buffer.from([0]), // topics, partitions, tags
    Buffer.from([0]),
  ]));
  const refused = Buffer.concat([Buffer.from([0]), int32(0), Buffer.from([2]), compact('t'), Buffer.from([2]), int32(1), Buffer.from([0, 22]), Buffer.from([0]), Buffer.from([0]), Buffer.from([0])]);
  const decodedCommit = await commit.response.decode(refused);
  assert.deepEqual(decodedCommit, { throttleTime: 0, clientSideThrottleTime: 0, topics: [{ topic: 't', partitions: [{ partition: 1, errorCode: 22 }] }] });
  await assert.rejects(commit.response.parse(decodedCommit), (error: { type?: string }) => error.type === 'ILLEGAL_GENERATION');

  const fetch = offsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: [{ topic: 't', partitions: [{ partition: 0 }, { partition: 2 }] }], requireStable: true });
  assert.deepEqual((await fetch.request.encode()).buffer, Buffer.concat([
    Buffer.from([0]), compact('g'), Buffer.from([2]), compact('t'), Buffer.from([3]), int32(0), int32(2), Buffer.from([0]), Buffer.from([1]), Buffer.from([0]),
  ]));
  const allTopics = offsetFetch.protocol({ version: 7 })({ groupId: 'g', topics: [] });
  assert.deepEqual((await allTopics.request.encode()).buffer, Buffer.concat([Buffer.from([0]), compact('g'), Buffer.from([0]), Buffer.from([0]), Buffer.from([0])]));
  const answer = Buffer.concat([
    Buffer.from([0]), int32(0), Buffer.from([2]), compact('t'), Buffer.from([2]), int32(0), int64(9n), int32(-1), Buffer.from([0]), Buffer.from([0, 88]), Buffer.from([0]), Buffer.from([0]),
    Buffer.from([0, 0]), Buffer.from([0]),
  ]);
  const decodedFetch = await fetch.response.decode(answer);
  assert.deepEqual(decodedFetch, { throttleTime: 0, clientSideThrottleTime: 0, responses: [{ topic: 't', partitions: [{ partition: 0, offset: '9', metadata: null, errorCode: 88 }] }], errorCode: 0 });
  await assert.rejects(fetch.response.parse(decodedFetch), (error: { type?: string; retriable?: boolean }) => error.type === 'UNSTABLE_OFFSET_COMMIT' && error.retriable === true);
});
