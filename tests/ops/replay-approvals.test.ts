import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../testing/cli-runner.ts';
import { KEY_COUNT_SCHEMA, TEST_EVENT_SCHEMA, registeredSerde, testEvent } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

interface PlanJson { id: string; state: string; record_count: number; affected_components: string[]; auto_approved: boolean; approved_by: string | null; planned_by: string }
interface AuditLine { who: string; action: string; target: string; result: string; detail: string }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('replay plans: viewers cannot plan, the planner cannot approve, an approver executes, small plans need no approval, all audited', { timeout: 600_000 }, async () => {
  const input = uniqueTopic('test', 'event', 'received');
  const counts = input.replace('.received.v1', '.counted.v1');
  const counter = uniqueLabel('event_counter');
  const { file, appId } = await writeTestTopology({
    topics: {
      [input]: { schema: TEST_EVENT_SCHEMA, partitions: 3, key: 'account', classification: 'phi' },
      [counts]: { schema: KEY_COUNT_SCHEMA, partitions: 3, key: 'account' },
    },
    processors: { [counter]: { type: 'count_by_key', inputs: [input], outputs: { counts } } },
  });
  const group = `${appId}.${counter}`;
  const topology = ['--topology', file];
  const operators = writeTestOperators({ autoApproveBelow: 100 });

  // 150 records the group has processed: its offsets sit at the end of every partition.
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await ensureTopics(admin, [{ name: input, partitions: 3 }]);
  const serde = await registeredSerde();
  await serde.register(input, loadContract(TEST_EVENT_SCHEMA));
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  await producer.send({ topic: input, acks: -1, messages: await Promise.all(Array.from({ length: 150 }, async (_, index) => ({ key: `ACC-${index % 7}`, value: await serde.encode(input, testEvent(index)) }))) });
  const ends = await admin.fetchTopicOffsets(input);
  await admin.setOffsets({ groupId: group, topic: input, partitions: ends.map((entry) => ({ partition: entry.partition, offset: entry.high })) });
  const committed = async (): Promise<Map<number, string>> =>
    new Map((await admin.fetchOffsets({ groupId: group, topics: [input] }))[0]?.partitions.map((entry) => [entry.partition, entry.offset]) ?? []);

  const plan = async (who: Parameters<typeof operators.as>[0], args: string[]) => runLifeline(['replay', 'plan', '--group', group, ...args, '--json', ...topology], { env: operators.as(who) });

  const byViewer = await plan('viola', ['--to-earliest', '--reason', 'viewer tries']);
  assert.equal(byViewer.code, 3, byViewer.stderr);

  // A plan over the threshold waits for an approver.
  const planned = await plan('otto', ['--to-earliest', '--reason', 'reprocess everything after the tariff fix']);
  assert.equal(planned.code, 0, planned.stderr);
  const planA = JSON.parse(planned.stdout) as PlanJson;
  assert.equal(planA.state, 'planned');
  assert.equal(planA.record_count, 150);
  assert.deepEqual(planA.affected_components, [counter]);
  assert.deepEqual([...(await committed()).values()].map(Number).reduce((a, b) => a + b, 0), 150, 'nothing changed yet');

  const raised = await plan('otto', ['--to-earliest', '--auto-approve-below', '1000', '--reason', 'skip the approval']);
  assert.equal(raised.code, 3, 'an operator may not raise the approval threshold');
  const byOperator = await runLifeline(['replay', 'approve', planA.id, ...topology], { env: operators.as('otto') });
  assert.equal(byOperator.code, 3, byOperator.stderr);

  const approved = await runLifeline(['replay', 'approve', planA.id, '--reason', 'checked the window', '--json', ...topology], { env: operators.as('april') });
  assert.equal(approved.code, 0, approved.stderr);
  const executedA = JSON.parse(approved.stdout) as PlanJson;
  assert.deepEqual([executedA.state, executedA.approved_by], ['executed', 'april']);
  assert.deepEqual([...(await committed()).values()], ['0', '0', '0'], 'the group starts over');
  const again = await runLifeline(['replay', 'approve', planA.id, ...topology], { env: operators.as('april') });
  assert.equal(again.code, 4, 'an executed plan does not run twice');

  // The planner may not approve their own plan, even as admin.
  const adminPlan = await plan('adam', ['--to-latest', '--auto-approve-below', '0', '--reason', 'skip the backlog']);
  assert.equal(adminPlan.code, 0, adminPlan.stderr);
  const planB = JSON.parse(adminPlan.stdout) as PlanJson;
  assert.equal(planB.state, 'planned');
  const selfApproval = await runLifeline(['replay', 'approve', planB.id, ...topology], { env: operators.as('adam') });
  assert.equal(selfApproval.code, 3, selfApproval.stderr);
  assert.match(selfApproval.stderr, /adam planned .* and may not approve it/);
  const approvedB = await runLifeline(['replay', 'approve', planB.id, ...topology], { env: operators.as('april') });
  assert.equal(approvedB.code, 0, approvedB.stderr);
  assert.deepEqual([...(await committed()).entries()].sort(), ends.map((entry) => [entry.partition, entry.high]).sort());

  // Under the threshold: executed at once, marked auto-approved.
  const small = await plan('olga', ['--topic', input, '--partition', '0', '--shift-by', '-10', '--reason', 'one record looked wrong']);
  assert.equal(small.code, 0, small.stderr);
  const planC = JSON.parse(small.stdout) as PlanJson;
  assert.deepEqual([planC.state, planC.auto_approved, planC.record_count], ['executed', true, 10]);
  const partition0 = ends.find((entry) => entry.partition === 0);
  assert.equal((await committed()).get(0), String(Number(partition0?.high) - 10));

  const listed = await runLifeline(['replay', 'list', '--json', ...topology]);
  const plans = (JSON.parse(listed.stdout) as PlanJson[]).filter((candidate) => [planA.id, planB.id, planC.id].includes(candidate.id));
  assert.deepEqual(plans.map((candidate) => candidate.state), ['executed', 'executed', 'executed']);

  const audit = await runLifeline(['audit', 'list', '--json', '--action', 'replay', ...topology]);
  const entries = audit.stdout.trim().split('\n').map((line) => JSON.parse(line) as AuditLine);
  const has = (who: string, action: string, target: string, result: string): boolean =>
    entries.some((entry) => entry.who === who && entry.action === action && entry.target === target && entry.result === result);
  assert.ok(has('viola', 'replay.plan', group, 'refused'));
  assert.ok(has('otto', 'replay.plan', planA.id, 'succeeded'));
  assert.ok(has('otto', 'replay.approve', planA.id, 'refused'));
  assert.ok(has('april', 'replay.approve', planA.id, 'succeeded'));
  assert.ok(has('april', 'replay.approve', planA.id, 'failed'), 'the second approval attempt');
  assert.ok(has('adam', 'replay.approve', planB.id, 'refused'));
  assert.ok(has('april', 'replay.approve', planB.id, 'succeeded'));
  assert.ok(has('olga', 'replay.execute', planC.id, 'succeeded'));
  assert.ok(entries.some((entry) => entry.who === 'otto' && entry.action === 'replay.plan' && entry.result === 'refused' && /only an admin may raise it/.test(entry.detail)));
});
