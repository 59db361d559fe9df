import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { LIFELINE_HEADERS } from '../../src/component/record-headers.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../testing/cli-runner.ts';
import { KEY_COUNT_SCHEMA, TEST_EVENT_SCHEMA, registeredSerde, testEvent, type TestEvent } from '../../testing/runtime-fixture.ts';
import { writeTestTopology } from '../../testing/topology-writer.ts';

interface ConsumedLine { topic: string; partition: number; offset: string; timestamp: string; key: string | null; headers: Record<string, string>; value: TestEvent }
interface AuditLine { who: string; action: string; target: string; result: string; detail: string; parameters: Record<string, unknown> }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const lines = (stdout: string): ConsumedLine[] => stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as ConsumedLine);

test('produce validates and encodes JSON lines (all or none); consume prints them decoded with PHI masked unless an admin reveals it, audited', { timeout: 300_000 }, async () => {
  const topic = uniqueTopic('test', 'event', 'received');
  const counts = topic.replace('.received.v1', '.counted.v1');
  const { file } = await writeTestTopology({
    topics: {
      [topic]: { schema: TEST_EVENT_SCHEMA, partitions: 2, key: 'account', classification: 'phi' },
      [counts]: { schema: KEY_COUNT_SCHEMA, partitions: 2, key: 'account' },
    },
  });
  const topology = ['--topology', file];
  const operators = writeTestOperators();
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: topic, partitions: 2 }]);
  const serde = await registeredSerde();
  await serde.register(topic, loadContract(TEST_EVENT_SCHEMA));

  const events = Array.from({ length: 6 }, (_, index) => testEvent(index, 3));
  const input = events.map((event) => JSON.stringify(event)).join('\n');
  const refused = await runLifeline(['produce', topic, '--key-field', 'account', '--reason', 'seed', ...topology], { input, env: operators.as('viola') });
  assert.equal(refused.code, 3, 'a viewer may not produce');
  const invalid = await runLifeline(['produce', topic, '--key-field', 'account', '--reason', 'seed', ...topology], {
    input: `${input}\n{"id": "evt-x", "account": "ACC-1", "amount_minor": "12"}\n`, env: operators.as('otto'),
  });
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, /line 7: .*patient_mrn.*nothing \(field missing\)/);
  assert.match(invalid.stderr, /nothing was sent/);
  const produced = await runLifeline(['produce', topic, '--key-field', 'account', '--reason', 'seed test records', ...topology], { input, env: operators.as('otto') });
  assert.equal(produced.code, 0, produced.stderr);
  assert.match(produced.stdout, /6 record\(s\) produced/);

  const masked = await runLifeline(['consume', topic, '--from-beginning', ...topology]);
  assert.equal(masked.code, 0, masked.stderr);
  const records = lines(masked.stdout);
  assert.equal(records.length, 6, 'only what the invalid batch did not send: nothing of it');
  for (const record of records) {
    assert.equal(record.value.patient_mrn, '[PHI]');
    assert.equal(record.key, record.value.account);
    assert.ok(record.headers[LIFELINE_HEADERS.correlationId], 'produced records carry Lifeline headers');
    assert.equal(record.headers[LIFELINE_HEADERS.source], 'lifeline-cli:otto');
  }
  assert.deepEqual(records.map((record) => record.value.id).sort(), events.map((event) => event.id).sort());
  assert.ok(!masked.stdout.includes('MRN-'), 'no patient identifier in masked output');

  // Positions: a partition, an offset, a limit, a time.
  const partition1 = lines((await runLifeline(['consume', topic, '--from-beginning', '--partition', '1', ...topology])).stdout);
  assert.ok(partition1.length > 0 && partition1.every((record) => record.partition === 1));
  const fromOffset = lines((await runLifeline(['consume', topic, '--partition', '1', '--offset', '1', ...topology])).stdout);
  assert.deepEqual(fromOffset.map((record) => record.offset), partition1.slice(1).map((record) => record.offset));
  const limited = lines((await runLifeline(['consume', topic, '--from-beginning', '--limit', '2', ...topology])).stdout);
  assert.equal(limited.length, 2);
  await sleep(20);
  const later = new Date().toISOString();
  await sleep(20);
  const more = await runLifeline(['produce', topic, '--envelope', '--reason', 'one more', ...topology], {
    input: JSON.stringify({ key: 'ACC-9', value: testEvent(99), headers: { [LIFELINE_HEADERS.idempotencyKey]: 'idem-99' } }), env: operators.as('otto'),
  });
  assert.equal(more.code, 0, more.stderr);
  const sinceLater = lines((await runLifeline(['consume', topic, '--from-datetime', later, ...topology])).stdout);
  assert.deepEqual(sinceLater.map((record) => [record.key, record.value.id, record.headers[LIFELINE_HEADERS.idempotencyKey]]), [['ACC-9', 'evt-99', 'idem-99']]);

  // Revealing PHI: refused for an operator, allowed for an admin with a reason; both audited.
  const byOperator = await runLifeline(['consume', topic, '--from-beginning', '--reveal', '--reason', 'debug', ...topology], { env: operators.as('otto') });
  assert.equal(byOperator.code, 3);
  assert.equal(byOperator.stdout, '', 'nothing is shown when the reveal is refused');
  const noReason = await runLifeline(['consume', topic, '--from-beginning', '--reveal', ...topology], { env: operators.as('adam') });
  assert.equal(noReason.code, 2);
  const revealed = await runLifeline(['consume', topic, '--from-beginning', '--reveal', '--reason', 'INC-4711 wrong MRN on a charge', ...topology], { env: operators.as('adam') });
  assert.equal(revealed.code, 0, revealed.stderr);
  const plain = lines(revealed.stdout);
  assert.equal(plain.length, 7);
  assert.ok(plain.every((record) => /^MRN-\d+$/.test(record.value.patient_mrn)));

  const audit = await runLifeline(['audit', 'list', '--json', '--target', topic, ...topology]);
  const entries = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditLine);
  assert.ok(entries.some((entry) => entry.who === 'viola' && entry.action === 'produce' && entry.result === 'refused'));
  assert.ok(entries.some((entry) => entry.who === 'otto' && entry.action === 'produce' && entry.result === 'succeeded' && /6 record/.test(entry.detail)));
  assert.ok(entries.some((entry) => entry.who === 'otto' && entry.action === 'consume.reveal' && entry.result === 'refused'));
  const reveal = entries.filter((entry) => entry.who === 'adam' && entry.action === 'consume.reveal');
  assert.deepEqual(reveal.map((entry) => entry.result), ['started', 'succeeded'], 'the reveal is on record before anything was shown');
  assert.match(reveal[1]?.detail ?? '', /7 record\(s\) shown with PHI revealed/);
});
