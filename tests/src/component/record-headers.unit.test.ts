import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIFELINE_HEADERS, newTraceparent, withIngestHeaders } from '../../../src/component/record-headers.ts';

test('every trace context is a W3C traceparent with its own random trace and span ids, across refills of the random pool', () => {
  const seen = new Set<string>();
  for (let index = 0; index < 2000; index++) {
    const traceparent = newTraceparent();
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(traceparent);
    assert.ok(match, traceparent);
    assert.notEqual(match[1], '0'.repeat(32));
    assert.notEqual(match[2], '0'.repeat(16));
    seen.add(match[1] as string);
  }
  assert.equal(seen.size, 2000);
});

test('ingest headers fill in what the source did not set and keep what it did', () => {
  const headers = withIngestHeaders({ [LIFELINE_HEADERS.idempotencyKey]: 'msg-1', [LIFELINE_HEADERS.traceparent]: 'kept' }, 'lab_webhooks', new Date('2026-12-02T08:00:00Z'));
  assert.equal(headers[LIFELINE_HEADERS.idempotencyKey], 'msg-1');
  assert.equal(headers[LIFELINE_HEADERS.traceparent], 'kept');
  assert.equal(headers[LIFELINE_HEADERS.source], 'lab_webhooks');
  assert.equal(headers[LIFELINE_HEADERS.ingestedAt], '2026-12-02T08:00:00.000Z');
  assert.match(headers[LIFELINE_HEADERS.correlationId] as string, /^[0-9a-f-]{36}$/);
});
