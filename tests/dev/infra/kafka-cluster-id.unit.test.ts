import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kafkaClusterId } from '../../../dev/infra/kafka-broker.ts';

test('a generated Kafka cluster id is 22 URL-safe base64 characters and never starts with "-" (the storage tool would read it as an option)', () => {
  const ids = new Set<string>();
  for (let index = 0; index < 5000; index++) {
    const id = kafkaClusterId();
    assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/, id);
    ids.add(id);
  }
  assert.equal(ids.size, 5000);
});
