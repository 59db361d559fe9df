import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LifelineError, isRetriable } from '../../src/errors.ts';
import { TEST_RETRY_POLICY, backoffDelay, retry } from '../../src/retry.ts';

const transient = (): LifelineError => new LifelineError('LL_KAFKA_UNAVAILABLE', 'broker down');

test('retries retriable failures until one succeeds', async () => {
  let calls = 0;
  const retried: number[] = [];
  const result = await retry(async () => {
    calls++;
    if (calls < 3) throw transient();
    return 'ok';
  }, { ...TEST_RETRY_POLICY, onRetry: ({ attempt }) => retried.push(attempt) });
  assert.equal(result, 'ok');
  assert.equal(calls, 3);
  assert.deepEqual(retried, [1, 2]);
});

test('never retries programmer errors or permanent failures', async () => {
  for (const error of [new TypeError('x is undefined'), new LifelineError('LL_SCHEMA_INVALID', 'bad schema')]) {
    let calls = 0;
    await assert.rejects(retry(async () => {
      calls++;
      throw error;
    }, TEST_RETRY_POLICY), (thrown) => thrown === error);
    assert.equal(calls, 1);
  }
});

test('wraps the final failure with its cause once the budget is spent', async () => {
  let calls = 0;
  await assert.rejects(retry(async () => {
    calls++;
    throw transient();
  }, { ...TEST_RETRY_POLICY, retries: 2, operation: 'send to Kafka' }), (error: unknown) => {
    assert.ok(error instanceof LifelineError);
    assert.equal(error.code, 'LL_RETRY_EXHAUSTED');
    assert.match(error.message, /send to Kafka failed after 3 attempts: broker down/);
    assert.equal((error.cause as LifelineError).code, 'LL_KAFKA_UNAVAILABLE');
    return true;
  });
  assert.equal(calls, 3);
});

test('backoff grows exponentially, is capped, and jitter only shortens it', () => {
  const policy = { retries: 10, initialDelayMs: 100, maxDelayMs: 1000, factor: 2, jitter: 1 };
  assert.equal(backoffDelay(0, policy, () => 0), 100);
  assert.equal(backoffDelay(3, policy, () => 0), 800);
  assert.equal(backoffDelay(8, policy, () => 0), 1000);
  assert.equal(backoffDelay(3, policy, () => 0.5), 400);
  assert.equal(backoffDelay(3, { ...policy, jitter: 0 }, () => 0.9), 800);
});

test('isRetriable reads kafkajs flags and network codes', () => {
  const kafkaError = Object.assign(new Error('There is no leader for this topic-partition'), { retriable: true });
  assert.equal(isRetriable(kafkaError), true);
  assert.equal(isRetriable(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), true);
  assert.equal(isRetriable(new Error('plain')), false);
  assert.equal(isRetriable(new Error('wrapped', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) })), true);
});
