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
