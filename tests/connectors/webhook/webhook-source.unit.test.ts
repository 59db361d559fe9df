import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import kafkajs from 'kafkajs';
import { webhookSource } from '../../../connectors/webhook/webhook-source.ts';
import type { ConnectorHealth, Source, SourceBatch, SourceContext } from '../../../src/component/component.ts';
import { until } from '../../../testing/intake-fixture.ts';
import { deliver, newWebhookSecret } from '../../../testing/partner-feed-fixture.ts';

/**
 * The webhook source driven by hand, as the source host drives it (produce → commit → acknowledge,
 * or fail): what the partner is told while Kafka is unavailable, without stopping the shared broker.
 */

const dft = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');
const secret = newWebhookSecret();
const running: Source[] = [];
afterEach(async () => {
  for (const source of running.splice(0)) await source.close();
});

async function startSource(overrides: Record<string, unknown> = {}): Promise<{ source: Source; port: number; health: Array<[ConnectorHealth, string | undefined]>; registry: Registry }> {
  const config = Value.Default(webhookSource.config, {
    host: '127.0.0.1', port: 0, ...overrides,
    partners: [{ name: 'acme_lab', path: '/webhooks/acme_lab', format: 'hl7v2', secrets: [secret] }],
  });
  const source = webhookSource.create(config as never);
  running.push(source);
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
  const health: Array<[ConnectorHealth, string | undefined]> = [];
  const registry = new Registry();
  const context: SourceContext = {
    label: 'partner_webhooks', logger, signal: new AbortController().signal, connections: {}, metricsRegistry: registry, cursor: undefined,
    setHealth: (state, detail) => health.push([state, detail]),
  };
  await source.connect(context);
  const listening = lines.find((line) => line.includes('webhook source listening')) as string;
  return { source, port: (JSON.parse(listening) as { port: number }).port, health, registry };
}

test('Kafka unavailable: the batch fails, the partner gets 503 with Retry-After, and its retry is accepted once Kafka is back', async () => {
  const { source, port, health, registry } = await startSource();
  const answering = deliver(port, '/webhooks/acme_lab', dft, { secret });
  let batch = await source.produce();
  while (!batch) batch = await source.produce();
  assert.equal(batch.records.length, 2);
  await source.fail(batch, new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), undefined);
  const answer = await answering;
  assert.equal(answer.status, 503);
  assert.equal(answer.headers.get('retry-after'), '5');
  assert.equal(answer.body.error?.code, 'LL_SOURCE_UNAVAILABLE');
  assert.equal(health.at(-1)?.[0], 'degraded');

  // The partner retries the same delivery (same id, new timestamp); Kafka is back.
  const retrying = deliver(port, '/webhooks/acme_lab', dft, { secret, id: answer.id });
  let retried = await source.produce();
  while (!retried) retried = await source.produce();
  await source.acknowledge(retried);
  const accepted = await retrying;
  assert.equal(accepted.status, 200);
  assert.equal(health.at(-1)?.[0], 'up');
  const metrics = await registry.metrics();
  assert.match(metrics, /lifeline_partner_deliveries_rejected_total\{source="partner_webhooks",partner="acme_lab",channel="webhook",reason="LL_SOURCE_UNAVAILABLE"\} 1/);
  assert.match(metrics, /lifeline_partner_deliveries_accepted_total\{source="partner_webhooks",partner="acme_lab",channel="webhook"\} 1/);
  assert.match(metrics, /lifeline_partner_records_total\{source="partner_webhooks",partner="acme_lab",kind="service_charge"\} 2/);
  assert.match(metrics, /lifeline_partner_ingest_seconds_count\{source="partner_webhooks",partner="acme_lab",channel="webhook",outcome="accepted"\} 1/);
  assert.doesNotMatch(metrics, /MRN123456|ACCT778899/, 'no PHI in labels');
});

test('no commit within response_timeout (Kafka hanging) is 503, and the delivery is then no longer produced', async () => {
  const { source, port } = await startSource({ response_timeout: '300ms' });
  const started = Date.now();
  const answer = await deliver(port, '/webhooks/acme_lab', dft, { secret });
  assert.equal(answer.status, 503);
  assert.ok(Date.now() - started >= 250);
  assert.equal(await source.produce(), undefined, 'a delivery answered 503 is not produced afterwards');
});

test('a full intake queue answers 503 at once rather than growing without bound', async () => {
  const { source, port } = await startSource({ max_pending_deliveries: 1, response_timeout: '2s' });
  const first = deliver(port, '/webhooks/acme_lab', dft, { secret });
  await until('the first delivery queued', () => queued(source) === 1);
  const second = await deliver(port, '/webhooks/acme_lab', dft, { secret });
  assert.equal(second.status, 503);
  assert.match(second.body.error?.message ?? '', /too many deliveries/);
  assert.equal((await first).status, 503, 'the first times out: nobody produced it');
});

test('a shared transaction that fails is retried one delivery at a time: only the delivery at fault is answered 503, the others 200', async () => {
  const { source, port, health } = await startSource();
  const answers = Promise.all([0, 1, 2].map((index) => deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', `DFTSHARED${index}`), { secret })));
  await until('three deliveries queued', () => queued(source) === 3);
  const batch = await source.produce();
  assert.equal(batch?.records.length, 6, 'the three share one batch');
  // The shared transaction fails (e.g. one of them broke it).
  await source.fail(batch as SourceBatch, Object.assign(new Error('The request included a message larger than the max message size the server will accept'), { type: 'MESSAGE_TOO_LARGE', retriable: false }), undefined);
  assert.ok(!health.some(([state]) => state === 'degraded'), 'a shared failure does not touch readiness');
  // Each is tried again alone: the second fails again on its own (Kafka went away for it), the others commit.
  for (let index = 0; index < 3; index++) {
    const alone = await source.produce();
    assert.equal(alone?.records.length, 2, 'retried alone');
    if (index === 1) await source.fail(alone as SourceBatch, new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:9092'), undefined);
    else await source.acknowledge(alone as SourceBatch);
  }
  assert.deepEqual((await answers).map((answer) => answer.status), [200, 503, 200]);
});

function queued(source: Source): number {
  return (source as unknown as { queue: unknown[] }).queue.length;
}

test('a committed batch whose record was dead-lettered as too large answers that delivery 413 with the limit, the others 200', async () => {
  const { source, port } = await startSource();
  const first = deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', 'DFTBIG1'), { secret });
  const second = deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', 'DFTBIG2'), { secret });
  await until('two deliveries queued', () => queued(source) === 2);
  const batch = await source.produce() as SourceBatch;
  assert.equal(batch.records.length, 4);
  // The first delivery's second record (index 1) was too large for its topic.
  await source.acknowledge(batch, { deadLettered: [{ index: 1, code: 'LL_RECORD_TOO_LARGE', message: 'too large', details: { size: 70_000, limit: 65_536 } }] });
  const [tooLarge, fine] = await Promise.all([first, second]);
  assert.equal(tooLarge.status, 413);
  assert.equal(tooLarge.headers.get('content-type'), 'application/problem+json');
  assert.equal((tooLarge.body as unknown as { limit_bytes: number }).limit_bytes, 65_536);
  assert.equal(tooLarge.body.error?.code, 'LL_RECORD_TOO_LARGE');
  assert.equal(fine.status, 200);
});

test('group commit: with a transaction committing, the next waits up to group_commit_wait for group_commit_deliveries deliveries; with none committing it starts at once', async () => {
  const { source, port } = await startSource({ group_commit_wait: '1500ms', group_commit_deliveries: 3 });
  const delivery = (index: number) => deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', `DFTGROUP${index}`), { secret });
  const answers = [delivery(0)];
  await until('the first delivery queued', () => queued(source) === 1);
  let started = performance.now();
  const first = await source.produce() as SourceBatch;
  assert.ok(performance.now() - started < 1000, 'nothing else committing: no wait');
  assert.equal(first.records.length, 2);

  // The first transaction is still committing: the next one gathers until three deliveries are there.
  answers.push(delivery(1));
  await until('the second delivery queued', () => queued(source) === 1);
  started = performance.now();
  const gathering = source.produce();
  answers.push(delivery(2), delivery(3));
  const second = await gathering as SourceBatch;
  const gathered = performance.now() - started;
  assert.equal(second.records.length, 6, 'three deliveries in one transaction');
  assert.ok(gathered < 1400, `ended by the third delivery, not the timer (${Math.round(gathered)} ms)`);

  // Two committing, one delivery arrives and no more: it goes when group_commit_wait is up.
  answers.push(delivery(4));
  await until('the fifth delivery queued', () => queued(source) === 1);
  started = performance.now();
  const third = await source.produce() as SourceBatch;
  assert.equal(third.records.length, 2);
  assert.ok(performance.now() - started >= 1400, 'waited for group_commit_wait');

  for (const batch of [first, second, third]) await source.acknowledge(batch);
  assert.deepEqual((await Promise.all(answers)).map((answer) => answer.status), [200, 200, 200, 200, 200]);
});
