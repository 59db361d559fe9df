import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { RuntimeMetrics } from '../../../src/observe/metrics.ts';
import kafkajs from 'kafkajs';
import { isRetriable } from '../../../src/errors.ts';
import { ProgressGuard, RECORD_BATCH_OVERHEAD, SizeLimits, estimateMessageBytes, isMessageTooLarge, splitIntoRequests, staleLimitsCheck } from '../../../src/runtime/transaction-budget.ts';

test('estimateMessageBytes is an upper bound of the record\'s size in a batch: key, value, headers and their framing', () => {
  const message = { key: 'k'.repeat(10), value: Buffer.alloc(1000), headers: { 'lifeline.idempotency-key': 'abc' } };
  const estimate = estimateMessageBytes(message);
  assert.ok(estimate >= 10 + 1000 + 'lifeline.idempotency-key'.length + 3);
  assert.ok(estimate <= 10 + 1000 + 27 + 40 + 10);
});

test('splitIntoRequests keeps every topic\'s share of a request under its limit and the request under the request limit, in order', () => {
  const limits = new SizeLimits(new Map([['small', 2_000]]), 10_000, 6_000);
  const messages = Array.from({ length: 40 }, (_, index) => ({ key: `k${index}`, value: Buffer.alloc(300, index) }));
  const requests = splitIntoRequests([{ topic: 'small', messages }, { topic: 'large', messages }], limits);
  const sent = new Map<string, Buffer[]>();
  for (const request of requests) {
    let requestBytes = 0;
    for (const { topic, messages: part } of request) {
      const bytes = part.reduce((sum, message) => sum + estimateMessageBytes(message), 0);
      requestBytes += bytes + RECORD_BATCH_OVERHEAD * part.length;
      assert.ok(bytes <= limits.limitFor(topic) * 0.9, `${topic}: ${bytes} bytes in one request`);
      sent.set(topic, [...(sent.get(topic) ?? []), ...part.map((message) => message.value as Buffer)]);
    }
    assert.ok(requestBytes <= 6_000, `a request of ${requestBytes} bytes`);
  }
  for (const topic of ['small', 'large']) assert.deepEqual(sent.get(topic), messages.map((message) => message.value), `${topic}: every message once, in order`);
});

test('tooLarge names the topic, the size and the limit; a record that fits alone is never too large', () => {
  const limits = SizeLimits.fixed(1_048_588, new Map([['small', 2_000]]));
  const error = limits.tooLarge('small', { key: 'k', value: Buffer.alloc(2_000) });
  assert.equal(error?.code, 'LL_RECORD_TOO_LARGE');
  assert.equal(error?.details.limit, 2_000);
  assert.ok(Number(error?.details.size) > 2_000);
  assert.match(error?.message ?? '', /small accepts \(max\.message\.bytes 2000\)/);
  assert.equal(limits.tooLarge('small', { key: 'k', value: Buffer.alloc(1_800) }), undefined);
  assert.equal(limits.tooLarge('other', { key: 'k', value: Buffer.alloc(900_000) }), undefined, 'other topics have the broker\'s limit');
});

test('ProgressGuard: the second failure from the same position splits the batch and reports the stall; a commit clears it', async () => {
  const metrics = new RuntimeMetrics();
  const reports: Array<[boolean, string]> = [];
  const guard = new ProgressGuard('charge_dedup', pino({ level: 'silent' }), metrics, (stalled, detail) => reports.push([stalled, detail]));
  const error = Object.assign(new Error('message too large'), { type: 'MESSAGE_TOO_LARGE' });
  guard.failed('topic/0@10', error);
  assert.equal(guard.divisor, 1, 'one failure may be an accident');
  assert.equal(guard.stalled, false);
  guard.failed('topic/0@10', error);
  assert.equal(guard.divisor, 2, 'never a third time unchanged');
  assert.equal(guard.stalled, true);
  assert.equal(guard.cause, 'MESSAGE_TOO_LARGE', 'what the health detail names');
  assert.match(reports.at(-1)?.[1] ?? '', /no progress: the batch at topic\/0@10 failed 2 times \(MESSAGE_TOO_LARGE/);
  guard.failed('topic/0@10', error);
  assert.equal(guard.divisor, 4);
  assert.match(await metrics.registry.metrics(), /lifeline_stalled_batches_total\{component="charge_dedup"\} 1/);
  guard.succeeded();
  assert.equal(guard.stalled, false);
  assert.equal(guard.cause, undefined);
  assert.deepEqual(reports.at(-1), [false, 'progress again']);
  assert.equal(guard.divisor, 2, 'grows back gradually');
  guard.failed('topic/0@30', error);
  assert.equal(guard.stalled, false, 'a failure at a new position starts counting again');
});

// kafkajs's own error classes, as its protocol layer and its retrier build them (the typings declare fewer arguments).
const ProtocolError = kafkajs.KafkaJSProtocolError as unknown as new (error: { message: string; type: string; code: number; retriable: boolean }) => Error;
const NonRetriableError = kafkajs.KafkaJSNonRetriableError as unknown as new (error: Error, options: { cause: Error }) => Error;

test('isMessageTooLarge finds the broker\'s refusal however kafkajs wraps it; other errors are not it', () => {
  const refusal = new ProtocolError({ message: 'The request included a message larger than the max message size the server will accept', type: 'MESSAGE_TOO_LARGE', code: 10, retriable: false });
  assert.equal(isMessageTooLarge(refusal), true);
  assert.equal(isMessageTooLarge(new NonRetriableError(refusal, { cause: refusal })), true, 'a retrier\'s wrapper');
  assert.equal(isMessageTooLarge(new ProtocolError({ message: 'too many', type: 'RECORD_LIST_TOO_LARGE', code: 18, retriable: false })), true);
  assert.equal(isMessageTooLarge(new ProtocolError({ message: 'seq', type: 'OUT_OF_ORDER_SEQUENCE_NUMBER', code: 45, retriable: false })), false);
  assert.equal(isMessageTooLarge(new Error('MESSAGE_TOO_LARGE in a message is not a type')), false);
  // Too large by limits read long ago: retried after reading them again, not dead-lettered yet.
  const tooLarge = SizeLimits.fixed(65_536).tooLarge('t', { key: 'k', value: Buffer.alloc(100_000) });
  assert.ok(tooLarge);
  assert.equal(isRetriable(tooLarge), false, 'decided: dead-letter it');
  const stale = staleLimitsCheck(tooLarge);
  assert.equal(isRetriable(stale), true);
  assert.equal(isMessageTooLarge(stale), true, 'the host reads the limits again');
  assert.equal(isMessageTooLarge(tooLarge), false, 'a decided refusal needs no new limits');
});

test('SizeLimits.update takes limits read again; isStale says when a too-large record should first have them read again', () => {
  const limits = SizeLimits.fixed(1_048_588);
  const message = { key: 'k', value: Buffer.alloc(100_000) };
  assert.equal(limits.tooLarge('t', message), undefined);
  assert.equal(limits.isStale(), false, 'just read');
  assert.equal(limits.isStale(-1), true);
  limits.update(SizeLimits.fixed(1_048_588, new Map([['t', 65_536]])));
  assert.equal(limits.limitFor('t'), 65_536, 'the lowered limit');
  assert.match(limits.tooLarge('t', message)?.message ?? '', /max\.message\.bytes 65536/);
  assert.equal(limits.limitFor('other'), 1_048_588);
});
