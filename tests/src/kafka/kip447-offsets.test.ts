import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { retry } from '../../../src/retry.ts';
import { createTestTopics, testKafka, uniqueName, uniqueTopic } from '../../../testing/harness.ts';

/**
 * KIP-447's two requests, as patched into kafkajs (patches/kafkajs+2.2.4.patch), against the real
 * broker: TxnOffsetCommit v3 carries the consumer group member's generation, so the coordinator
 * refuses offsets from a member that no longer holds it; OffsetFetch v7 with require_stable answers
 * UNSTABLE_OFFSET_COMMIT while a transaction holds uncommitted offsets for a partition.
 */
describe('KIP-447 offsets in transactions (patched kafkajs, real broker)', () => {
  let kafka: Kafka;
  let admin: Admin;
  const topic = uniqueTopic('test', 'kip447', 'received');
  const producers: Producer[] = [];
  const consumers: Consumer[] = [];

  before(async () => {
    kafka = await testKafka();
    admin = await createTestTopics(kafka, [{ name: topic, partitions: 1 }]);
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({ topic, messages: Array.from({ length: 5 }, (_, index) => ({ key: `k${index}`, value: `v${index}` })), acks: -1 });
    await producer.disconnect();
  });

  after(async () => {
    for (const consumer of consumers) await consumer.disconnect().catch(() => undefined);
    for (const producer of producers) await producer.disconnect().catch(() => undefined);
    await admin.disconnect();
  });

  async function transactionalProducer(): Promise<Producer> {
    const producer = kafka.producer({ transactionalId: uniqueName('test-kip447-txn'), idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    producers.push(producer);
    return producer;
  }

  async function committed(groupId: string, requireStable = false): Promise<string | undefined> {
    const [entry] = await admin.fetchOffsets({ groupId, topics: [topic], requireStable });
    return entry?.partitions.find((partition) => partition.partition === 0)?.offset;
  }

  /**
   * The offset once no transaction holds it: asked again while UNSTABLE_OFFSET_COMMIT (about 10 s at
   * most). The coordinator answers EndTxn before it has written the transaction's markers; until the
   * one on __consumer_offsets is written, a plain read still sees the offset before it.
   */
  async function stableOffset(groupId: string): Promise<string | undefined> {
    return retry(() => committed(groupId, true), {
      retries: 40, initialDelayMs: 20, maxDelayMs: 500, operation: `stable offset of ${groupId}`,
      shouldRetry: (error) => errorType(error) === 'UNSTABLE_OFFSET_COMMIT',
    });
  }

  /** A member of `groupId` that has joined and holds the partition; its generation and member id. */
  async function joinedMember(groupId: string): Promise<{ generationId: number; memberId: string }> {
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 200 });
    consumers.push(consumer);
    const joined = new Promise<{ generationId: number; memberId: string }>((resolve) => {
      consumer.on(consumer.events.GROUP_JOIN, (event) => resolve({ generationId: event.payload.generationId, memberId: event.payload.memberId }));
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: async () => undefined });
    return joined;
  }

  function errorType(error: unknown): string | undefined {
    return (error as { type?: string }).type;
  }

  test('offsets sent with the member\'s generation commit; a stale generation or an unknown member is refused and the offset stays', async () => {
    const groupId = uniqueName('test-kip447-group');
    const member = await joinedMember(groupId);
    assert.equal(typeof member.generationId, 'number');
    assert.ok(member.generationId >= 1, `generation ${member.generationId}`);
    assert.ok(member.memberId.length > 0);
    const producer = await transactionalProducer();

    const current = await producer.transaction();
    await current.sendOffsets({ consumerGroupId: groupId, consumerGroupMetadata: member, topics: [{ topic, partitions: [{ partition: 0, offset: '2' }] }] });
    await current.commit();
    assert.equal(await stableOffset(groupId), '2');

    for (const [metadata, expected] of [
      [{ generationId: member.generationId + 1, memberId: member.memberId }, ['ILLEGAL_GENERATION']],
      [{ generationId: member.generationId, memberId: `${member.memberId}-gone` }, ['UNKNOWN_MEMBER_ID']],
    ] as const) {
      const stale = await producer.transaction();
      const refused = await stale.sendOffsets({ consumerGroupId: groupId, consumerGroupMetadata: metadata, topics: [{ topic, partitions: [{ partition: 0, offset: '4' }] }] })
        .then(() => undefined, (error: unknown) => error);
      assert.ok(refused, `offsets with ${JSON.stringify(metadata)} were taken`);
      assert.ok((expected as readonly string[]).includes(errorType(refused) ?? ''), `refused with ${errorType(refused)}: ${String(refused)}`);
      await stale.abort();
      assert.equal(await stableOffset(groupId), '2');
    }

    // Without the member's generation (as before the patch) the coordinator checks nothing.
    const unchecked = await producer.transaction();
    await unchecked.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '3' }] }] });
    await unchecked.commit();
    assert.equal(await stableOffset(groupId), '3');
  });

  test('require_stable: an offset an open transaction holds is UNSTABLE_OFFSET_COMMIT until the transaction ends; without it the old offset is read', async () => {
    const groupId = uniqueName('test-kip447-stable');
    const producer = await transactionalProducer();
    const first = await producer.transaction();
    await first.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '1' }] }] });
    await first.commit();

    const pending = await producer.transaction();
    await pending.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '4' }] }] });
    assert.equal(await committed(groupId), '1', 'a fetch without require_stable reads the offset before the open transaction');
    const unstable = await committed(groupId, true).then(() => undefined, (error: unknown) => error);
    assert.equal(errorType(unstable), 'UNSTABLE_OFFSET_COMMIT', `require_stable answered ${String(unstable)}`);
    await pending.commit();
    // The coordinator answers EndTxn before it has written the commit's markers (here, on
    // __consumer_offsets): until then a stable read is still refused, as the runtime's retry expects.
    assert.equal(await stableOffset(groupId), '4');

    const aborted = await producer.transaction();
    await aborted.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }] });
    await aborted.abort();
    assert.equal(await stableOffset(groupId), '4', 'an aborted transaction\'s offsets are never committed');
  });
});
