import assert from 'node:assert/strict';
import { test } from 'node:test';
import kafkajs from 'kafkajs';
import { copartitionedAssigner, planStickyAssignment } from '../../../src/runtime/copartitioned-assigner.ts';

const { AssignerProtocol } = kafkajs;

function moved(before: Map<string, number[]>, after: Map<string, number[]>): number {
  let count = 0;
  for (const [member, partitions] of after) {
    const had = new Set(before.get(member) ?? []);
    count += partitions.filter((partition) => !had.has(partition)).length;
  }
  return count;
}

function balanced(plan: Map<string, number[]>, partitions: number): void {
  const all = [...plan.values()].flat().sort((a, b) => a - b);
  assert.deepEqual(all, Array.from({ length: partitions }, (_, index) => index), 'every partition exactly once');
  const sizes = [...plan.values()].map((owned) => owned.length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `balanced: ${sizes.join(',')}`);
}

test('a member joining takes only its share; everyone else keeps what they had', () => {
  const first = planStickyAssignment(12, new Map([['a', []], ['b', []], ['c', []]]));
  balanced(first, 12);
  const second = planStickyAssignment(12, new Map([...first, ['d', []]]));
  balanced(second, 12);
  assert.equal(moved(first, second), 3, 'only the 3 partitions the newcomer needs move');
  for (const member of ['a', 'b', 'c']) {
    assert.ok((second.get(member) ?? []).every((partition) => first.get(member)?.includes(partition)), `${member} kept its partitions`);
  }
});

test('a member leaving: the survivors keep theirs and share out only the leaver\'s', () => {
  const before = planStickyAssignment(7, new Map([['a', []], ['b', []], ['c', []]]));
  const survivors = new Map([...before].filter(([member]) => member !== 'b'));
  const after = planStickyAssignment(7, survivors);
  balanced(after, 7);
  for (const member of ['a', 'c']) {
    assert.ok((before.get(member) ?? []).every((partition) => after.get(member)?.includes(partition)), `${member} kept everything`);
  }
  assert.equal(moved(before, after), (before.get('b') ?? []).length);
});

test('conflicting or out-of-range claims are resolved deterministically; every member computes the same plan', () => {
  const plan = planStickyAssignment(4, new Map([['a', [0, 1, 2, 9]], ['b', [1, 2]], ['c', []]]));
  balanced(plan, 4);
  assert.deepEqual(plan, planStickyAssignment(4, new Map([['c', []], ['b', [1, 2]], ['a', [0, 1, 2, 9]]])));
});

test('the kafkajs assigner sends owned partitions in its metadata and assigns partition p of every topic to one member', async () => {
  const counts: Record<string, number> = { in1: 6, in2: 6, repart: 6 };
  const cluster = { findTopicPartitionMetadata: (topic: string) => Array.from({ length: counts[topic] ?? 0 }, (_, partitionId) => ({ partitionId })) };
  const owned: Record<string, number[]> = { m1: [0, 1, 2], m2: [3, 4, 5], m3: [] };
  const members = Object.keys(owned).map((memberId) => {
    const assigner = copartitionedAssigner(() => owned[memberId] ?? [])({ cluster } as never);
    return { memberId, memberMetadata: assigner.protocol({ topics: Object.keys(counts) }).metadata };
  });
  const assigner = copartitionedAssigner()({ cluster } as never);
  const result = await assigner.assign({ members, topics: Object.keys(counts) } as never);
  const plan = new Map(result.map(({ memberId, memberAssignment }) => [memberId, AssignerProtocol.MemberAssignment.decode(memberAssignment)?.assignment ?? {}]));
  for (const [member, assignment] of plan) {
    assert.deepEqual(assignment.in1, assignment.in2, `${member}: co-partitioned`);
    assert.deepEqual(assignment.in1, assignment.repart);
    assert.equal(assignment.in1?.length, 2);
  }
  assert.ok(plan.get('m1')?.in1?.every((partition) => [0, 1, 2].includes(partition)), 'm1 kept two of its own');
  assert.ok(plan.get('m2')?.in1?.every((partition) => [3, 4, 5].includes(partition)), 'm2 kept two of its own');
});
