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

test('a registry that accepts the connection and never answers is LL_REGISTRY_UNAVAILABLE after the request time-out, not a hang', async () => {
  const { createServer } = await import('node:http');
  let requests = 0;
  const silent = createServer(() => { requests++; }); // reads the request, never answers
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    const port = (silent.address() as { port: number }).port;
    const serde = new AvroSerde({ url: `http://127.0.0.1:${port}/apis/ccompat/v7`, requestTimeoutMs: 300 });
    const started = Date.now();
    await assert.rejects(() => serde.register('partner.lab_charge.received.v1', loadContract('schemas/partner/service_charge.avsc')), (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'LL_REGISTRY_UNAVAILABLE', String(error));
      assert.equal(isRetriable(error), true);
      return true;
    });
    assert.ok(requests >= 1, 'the request reached the silent registry');
    assert.ok(Date.now() - started < 10_000, `gave up after ${Date.now() - started} ms`);
  } finally {
    silent.closeAllConnections();
    await new Promise((resolve) => silent.close(resolve));
  }
});
