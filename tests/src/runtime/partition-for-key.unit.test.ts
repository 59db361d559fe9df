import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { murmur2, partitionForKey } from '../../../src/runtime/processor-task.ts';

test('murmur2 gives the hashes of Kafka\'s own test vectors (Java client UtilsTest)', () => {
  const vectors: Array<[string, number]> = [
    ['21', -973932308], ['foobar', -790332482], ['a-little-bit-long-string', -985981536], ['a-little-bit-longer-string', -1486304829],
    ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971], ['abc', 479470107],
  ];
  for (const [key, hash] of vectors) assert.equal(murmur2(key), hash, key);
});

test('partitionForKey places every key where kafkajs\'s default (Java-compatible) partitioner does', () => {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  const keys = ['', 'a', 'ab', 'abc', 'labcorp|charge|TX-1', 'Zoë|ärzte|東京', '\u0000'];
  for (let index = 0; index < 3000; index++) keys.push(randomBytes(index % 41).toString(index % 2 ? 'base64' : 'latin1'));
  for (const partitions of [1, 3, 7, 12]) {
    const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));
    for (const key of keys) {
      assert.equal(partitionForKey(key, partitions), partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }), `${JSON.stringify(key)} on ${partitions}`);
    }
  }
});
