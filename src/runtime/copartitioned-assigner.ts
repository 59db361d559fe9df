import kafkajs, { type PartitionAssigner } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

export const COPARTITIONED_PROTOCOL = 'LifelineCopartitioned';

/**
 * Plans which member owns which partition number. Every member gets floor(P/M) or ceil(P/M)
 * numbers; a member first keeps the numbers it owned before (sent in its join metadata) up to its
 * share, and only the rest moves — so a membership change moves as few partitions (and their
 * stores) as balance allows. Members and partitions are sorted, so every run computes the same plan.
 */
export function planStickyAssignment(partitionCount: number, previous: ReadonlyMap<string, readonly number[]>): Map<string, number[]> {
  const members = [...previous.keys()].sort();
  const plan = new Map<string, number[]>(members.map((id) => [id, []]));
  if (members.length === 0) return plan;
  const base = Math.floor(partitionCount / members.length);
  let extra = partitionCount % members.length;
  const taken = new Set<number>();
  // Members holding more keep more: they get the ceil shares first.
  const byHolding = [...members].sort((a, b) => (previous.get(b)?.length ?? 0) - (previous.get(a)?.length ?? 0) || (a < b ? -1 : 1));
  const quota = new Map<string, number>();
  const gotExtra = new Set<string>();
  for (const id of byHolding) {
    const wantsExtra = (previous.get(id)?.length ?? 0) > base && extra > 0;
    if (wantsExtra) {
      extra--;
      gotExtra.add(id);
    }
    quota.set(id, base + (wantsExtra ? 1 : 0));
  }
  for (const id of byHolding) {
    const kept = plan.get(id) as number[];
    for (const partition of [...new Set(previous.get(id) ?? [])].sort((a, b) => a - b)) {
      if (kept.length >= (quota.get(id) as number)) break;
      if (partition < 0 || partition >= partitionCount || taken.has(partition)) continue;
      taken.add(partition);
      kept.push(partition);
    }
  }
  // Remaining ceil shares go to members in sorted order.
  for (const id of members) {
    if (extra === 0) break;
    if (gotExtra.has(id)) continue;
    quota.set(id, (quota.get(id) as number) + 1);
    extra--;
  }
  const free = Array.from({ length: partitionCount }, (_, partition) => partition).filter((partition) => !taken.has(partition));
  for (const id of members) {
    const owned = plan.get(id) as number[];
    while (owned.length < (quota.get(id) as number) && free.length > 0) owned.push(free.shift() as number);
    owned.sort((a, b) => a - b);
  }
  return plan;
}

function encodeOwned(partitions: readonly number[]): Buffer {
  return Buffer.from(JSON.stringify({ owned: partitions }));
}

function decodeOwned(userData: Buffer | undefined): number[] {
  if (!userData || userData.length === 0) return [];
  try {
    const parsed = JSON.parse(userData.toString('utf8')) as { owned?: unknown };
    return Array.isArray(parsed.owned) ? parsed.owned.filter((value): value is number => Number.isInteger(value)) : [];
  } catch {
    return [];
  }
}

/**
 * Assigns partition number p of every subscribed topic to the same member (a stateful processor's
 * store for partition p then sees every input keyed to p, which kafkajs's round-robin assigner does
 * not guarantee), and sticks: each member reports the partition numbers it holds (`owned()`) when it
 * joins, and keeps them when balance allows (see planStickyAssignment).
 */
export function copartitionedAssigner(owned: () => readonly number[] = () => []): PartitionAssigner {
  return ({ cluster }) => ({
    name: COPARTITIONED_PROTOCOL,
    version: 1,
    async assign({ members, topics }) {
      const partitionCount = new Map<string, number>();
      for (const topic of topics) partitionCount.set(topic, cluster.findTopicPartitionMetadata(topic).length);
      const maxPartitions = Math.max(0, ...partitionCount.values());
      const previous = new Map(members.map((member) => {
        const metadata = AssignerProtocol.MemberMetadata.decode(member.memberMetadata);
        return [member.memberId, decodeOwned(metadata?.userData)];
      }));
      const plan = planStickyAssignment(maxPartitions, previous);
      return [...plan].map(([memberId, partitions]) => {
        const assignment: Record<string, number[]> = {};
        for (const topic of topics) {
          const count = partitionCount.get(topic) ?? 0;
          const mine = partitions.filter((partition) => partition < count);
          if (mine.length > 0) assignment[topic] = mine;
        }
        return { memberId, memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }) };
      });
    },
    protocol({ topics }) {
      return { name: COPARTITIONED_PROTOCOL, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: encodeOwned(owned()) }) };
    },
  });
}

/** The assigner without stickiness (kept for callers that hold nothing). */
export const CopartitionedAssigner: PartitionAssigner = copartitionedAssigner();
