import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isRetriable } from '../../../src/errors.ts';
import { AvroSerde, isRegistryUnreachable } from '../../../src/kafka/avro-serde.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';

/**
 * The registry client reports a refused connection as "status 400" with the network error in its
 * message. Lifeline reads it as an outage (LL_REGISTRY_UNAVAILABLE, retriable) wherever it is met —
 * registering at start, encoding, decoding — so nothing is dead-lettered while the registry is away.
 */

const unreachable = new AvroSerde({ url: 'http://127.0.0.1:1/apis/ccompat/v7' });

test('a refused connection is LL_REGISTRY_UNAVAILABLE (retriable) on lookup, encode, decode and register', async () => {
  const attempts: Array<[string, () => Promise<unknown>]> = [
    ['encode', () => unreachable.encode('partner.lab_charge.received.v1', { any: 1 })],
    ['decode', () => unreachable.decode(Buffer.from([0, 0, 0, 0, 42, 1]))],
    ['register', () => unreachable.register('partner.lab_charge.received.v1', loadContract('schemas/partner/service_charge.avsc'))],
  ];
  for (const [what, attempt] of attempts) {
    await assert.rejects(attempt, (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'LL_REGISTRY_UNAVAILABLE', what);
      assert.equal(isRetriable(error), true, what);
      return true;
    });
  }
});

test('isRegistryUnreachable: network failures and 5xx are outages; a real 4xx refusal is not', () => {
  assert.equal(isRegistryUnreachable(Object.assign(new Error('lifeline - Error, status 400: connect ECONNREFUSED 127.0.0.1:8081'), { status: 400 })), true);
  assert.equal(isRegistryUnreachable(Object.assign(new Error('socket hang up'), { status: 400 })), true);
  assert.equal(isRegistryUnreachable(Object.assign(new Error('Service Unavailable'), { status: 503 })), true);
  assert.equal(isRegistryUnreachable(new Error('no status at all')), true);
  assert.equal(isRegistryUnreachable(Object.assign(new Error('Either the input schema or one its references is invalid'), { status: 422 })), false);
  assert.equal(isRegistryUnreachable(Object.assign(new Error('Subject not found'), { status: 404 })), false);
  assert.equal(isRegistryUnreachable(Object.assign(new Error('Bad request: invalid schema'), { status: 400 })), false);
});
