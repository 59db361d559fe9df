import kafkajs, { type PartitionAssigner } from 'kafkajs';

const { AssignerProtocol } = kafkajs;

/**
 * Assigns partition number p of every subscribed topic to the same member, spreading partition
 * numbers round-robin over the members (sorted, so every member computes the same plan). A
 * stateful processor's store for partition p then sees every input keyed to p, which kafkajs's
 * own round-robin assigner does not guarantee.
 */
export const CopartitionedAssigner: PartitionAssigner = ({ cluster }) => ({
  name: 'LifelineCopartitioned',
  version: 1,
  async assign({ members, topics }) {
    const memberIds = members.map((member) => member.memberId).sort();
    const partitionCount = new Map<string, number>();
    for (const topic of topics) partitionCount.set(topic, cluster.findTopicPartitionMetadata(topic).length);
    const maxPartitions = Math.max(0, ...partitionCount.values());
    const plan = new Map<string, Record<string, number[]>>(memberIds.map((id) => [id, {}]));
    for (let partition = 0; partition < maxPartitions; partition++) {
      const owner = plan.get(memberIds[partition % memberIds.length] as string) as Record<string, number[]>;
      for (const topic of topics) {
        if (partition < (partitionCount.get(topic) ?? 0)) (owner[topic] ??= []).push(partition);
      }
    }
    return memberIds.map((memberId) => ({
      memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: plan.get(memberId) ?? {}, userData: Buffer.alloc(0) }),
    }));
  },
  protocol({ topics }) {
    return { name: 'LifelineCopartitioned', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
  },
});
