import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Kafka } from 'kafkajs';
import { pino } from 'pino';
import { RuntimeMetrics } from '../../../src/observe/metrics.ts';
import { SharedTransaction } from '../../../src/runtime/shared-transaction.ts';
import { isGroupFenced } from '../../../src/runtime/transaction-errors.ts';
import { SizeLimits } from '../../../src/runtime/transaction-budget.ts';

interface Recorded { sent: string[][]; offsets: Array<{ generationId?: number; partitions: number[] }>; committed: number; aborted: number }

/** A kafkajs stand-in recording what each transaction sent; `sendOffsets` may be made to fail like the coordinator. */
function fakeKafka(recorded: Recorded, options: { refuseOffsets?: () => string | undefined; commitDelayMs?: number; onSend?: () => void } = {}): Kafka {
  return {
    producer: () => ({
      connect: async () => undefined,
      disconnect: async () => undefined,
      transaction: async () => {
        const sent: string[] = [];
        return {
          sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string; messages: Array<{ key: string; partition: number }> }> }) => {
            options.onSend?.();
            for (const { topic, messages } of topicMessages) for (const message of messages) sent.push(`${topic}/${message.partition}:${message.key}`);
            return topicMessages.flatMap(({ topic, messages }) => [...new Set(messages.map((message) => message.partition))].map((partition) => ({ topicName: topic, partition, errorCode: 0, baseOffset: '0' })));
          },
          sendOffsets: async ({ consumerGroupMetadata, topics }: { consumerGroupMetadata?: { generationId: number }; topics: Array<{ partitions: Array<{ partition: number }> }> }) => {
            const refusal = options.refuseOffsets?.();
            if (refusal) throw Object.assign(new Error(`refused: ${refusal}`), { name: 'KafkaJSProtocolError', type: refusal });
            recorded.offsets.push({ ...(consumerGroupMetadata ? { generationId: consumerGroupMetadata.generationId } : {}), partitions: topics.flatMap((topic) => topic.partitions.map((entry) => entry.partition)) });
          },
          commit: async () => {
            await new Promise((resolve) => setTimeout(resolve, options.commitDelayMs ?? 0));
            recorded.sent.push(sent);
            recorded.committed++;
          },
          abort: async () => { recorded.aborted++; },
        };
      },
    }),
  } as unknown as Kafka;
}

function contribution(partition: number, key: string): { partition: number; topicMessages: Array<{ topic: string; messages: Array<{ key: string; value: string; partition: number }> }>; offsets: Array<{ topic: string; partition: number; offset: string }> } {
  return { partition, topicMessages: [{ topic: 'out', messages: [{ key, value: 'v', partition }] }], offsets: [{ topic: 'in', partition, offset: '1' }] };
}

function shared(kafka: Kafka, owned: Set<number>): SharedTransaction {
  return new SharedTransaction({
    kafka, transactionalId: 'app.label.host.slot-0', groupId: 'app.label', label: 'label',
    limits: () => SizeLimits.fixed(1_048_588), metrics: new RuntimeMetrics({ collectDefaults: false }), logger: pino({ level: 'silent' }),
    owns: (partition) => owned.has(partition),
  });
}

test('tasks committing while a transaction is in flight share the next one; the offsets carry the member\'s generation', async () => {
  const recorded: Recorded = { sent: [], offsets: [], committed: 0, aborted: 0 };
  let sending!: () => void;
  const firstSending = new Promise<void>((resolve) => { sending = resolve; });
  const transactions = shared(fakeKafka(recorded, { commitDelayMs: 30, onSend: () => sending() }), new Set([0, 1, 2]));
  await transactions.start();
  transactions.setGeneration({ generationId: 7, memberId: 'member-a' });
  const first = transactions.commit(contribution(0, 'a'));
  await firstSending; // the first transaction is in flight
  const later = [transactions.commit(contribution(1, 'b')), transactions.commit(contribution(2, 'c'))];
  await Promise.all([first, ...later]);
  assert.equal(recorded.committed, 2, 'two transactions for three tasks');
  assert.deepEqual(recorded.sent, [['out/0:a'], ['out/1:b', 'out/2:c']]);
  assert.deepEqual(recorded.offsets, [{ generationId: 7, partitions: [0] }, { generationId: 7, partitions: [1, 2] }]);
});

test('a partition revoked before its commit is refused as LL_GROUP_FENCED while the others commit', async () => {
  const recorded: Recorded = { sent: [], offsets: [], committed: 0, aborted: 0 };
  const owned = new Set([0]);
  const transactions = shared(fakeKafka(recorded), owned);
  await transactions.start();
  transactions.setGeneration({ generationId: 3, memberId: 'member-a' });
  const results = await Promise.allSettled([transactions.commit(contribution(0, 'a')), transactions.commit(contribution(1, 'b'))]);
  assert.equal(results[0].status, 'fulfilled');
  assert.equal(results[1].status, 'rejected');
  assert.ok(isGroupFenced((results[1] as PromiseRejectedResult).reason));
  assert.deepEqual(recorded.sent, [['out/0:a']]);
});

test('offsets refused for a stale generation abort the transaction and fail every task in it with LL_GROUP_FENCED, without a retry', async () => {
  const recorded: Recorded = { sent: [], offsets: [], committed: 0, aborted: 0 };
  let refusals = 0;
  const transactions = shared(fakeKafka(recorded, { refuseOffsets: () => { refusals++; return 'ILLEGAL_GENERATION'; } }), new Set([0, 1]));
  await transactions.start();
  transactions.setGeneration({ generationId: 3, memberId: 'member-a' });
  const results = await Promise.allSettled([transactions.commit(contribution(0, 'a')), transactions.commit(contribution(1, 'b'))]);
  for (const result of results) {
    assert.equal(result.status, 'rejected');
    assert.ok(isGroupFenced((result as PromiseRejectedResult).reason), String((result as PromiseRejectedResult).reason));
  }
  assert.equal(refusals, 1, 'not retried');
  assert.equal(recorded.committed, 0);
  assert.ok(recorded.aborted >= 2, 'the start\'s empty transaction and the refused one were aborted');
});

test('batches in progress share one transaction: it waits until each has handed in its commit, or gatherMs for one that does not', async () => {
  const recorded: Recorded = { sent: [], offsets: [], committed: 0, aborted: 0 };
  const transactions = new SharedTransaction({
    kafka: fakeKafka(recorded), transactionalId: 'app.label.host.slot-0', groupId: 'app.label', label: 'label',
    limits: () => SizeLimits.fixed(1_048_588), metrics: new RuntimeMetrics({ collectDefaults: false }), logger: pino({ level: 'silent' }),
    owns: () => true, gatherMs: 200,
  });
  await transactions.start();
  for (let batch = 0; batch < 3; batch++) transactions.batchStarted();
  const commits = [transactions.commit(contribution(0, 'a'))];
  await new Promise((resolve) => setTimeout(resolve, 20));
  commits.push(transactions.commit(contribution(1, 'b')));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(recorded.committed, 0, 'waiting for the third batch');
  commits.push(transactions.commit(contribution(2, 'c')));
  await Promise.all(commits);
  assert.deepEqual(recorded.sent, [['out/0:a', 'out/1:b', 'out/2:c']], 'one transaction for the three');
  for (let batch = 0; batch < 3; batch++) transactions.batchEnded();

  // One batch in progress that commits nothing: the others go after gatherMs, not never.
  transactions.batchStarted();
  transactions.batchStarted();
  const started = Date.now();
  await transactions.commit(contribution(0, 'd'));
  const waited = Date.now() - started;
  assert.ok(waited >= 150 && waited < 2_000, `waited ${waited} ms`);
  // A batch that ends wakes the waiting transaction at once.
  const next = transactions.commit(contribution(1, 'e'));
  transactions.batchEnded();
  const woke = Date.now();
  await next;
  assert.ok(Date.now() - woke < 150, 'sent when the other batch ended');
});

test('a contribution whose task was superseded is refused as LL_GROUP_FENCED; offsets carry the generation the contributions were checked against', async () => {
  const recorded: Recorded = { sent: [], offsets: [], committed: 0, aborted: 0 };
  let sending!: () => void;
  const firstSending = new Promise<void>((resolve) => { sending = resolve; });
  const transactions = shared(fakeKafka(recorded, { commitDelayMs: 30, onSend: () => sending() }), new Set([0, 1]));
  await transactions.start();
  transactions.setGeneration({ generationId: 4, memberId: 'member-a' });
  let current = true;
  const first = transactions.commit({ ...contribution(0, 'a'), current: () => current });
  await firstSending; // in flight with generation 4
  // The member rejoins after missing a generation: its tasks are superseded, the generation moves on.
  current = false;
  transactions.setGeneration({ generationId: 7, memberId: 'member-b' });
  const stale = transactions.commit({ ...contribution(1, 'b'), current: () => current });
  const fresh = transactions.commit(contribution(1, 'c'));
  await first;
  const results = await Promise.allSettled([stale, fresh]);
  assert.equal(results[0].status, 'rejected');
  assert.ok(isGroupFenced((results[0] as PromiseRejectedResult).reason), String((results[0] as PromiseRejectedResult).reason));
  assert.equal(results[1].status, 'fulfilled');
  assert.deepEqual(recorded.sent, [['out/0:a'], ['out/1:c']], 'the superseded task\'s records were never sent');
  assert.deepEqual(recorded.offsets, [{ generationId: 4, partitions: [0] }, { generationId: 7, partitions: [1] }], 'the transaction in flight kept the generation it was checked against');
});
