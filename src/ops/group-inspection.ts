import kafkajs, { type Admin, type Kafka } from 'kafkajs';
import { committedBacklog, type BacklogRequest } from '../kafka/committed-backlog.ts';
import type { Topology } from '../topology/model.ts';
import { componentOfGroup } from './topology-lineage.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';

const { AssignerProtocol } = kafkajs; // not an ESM named export of the CommonJS package

export interface GroupSummary {
  readonly group: string;
  readonly state: string;
  readonly members: number;
  /** The topology component this group belongs to, if any. */
  readonly component: string | null;
}

export interface GroupMember {
  readonly memberId: string;
  readonly clientId: string;
  readonly host: string;
  readonly assignment: Readonly<Record<string, readonly number[]>>;
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** Null when the group has committed nothing there. */
  readonly committed: string | null;
  /** The last stable offset: where a read_committed consumer's reading ends now. */
  readonly end: string;
  /**
   * Records between the committed offset (the first offset when nothing is committed) and `end`,
   * transaction markers and aborted records excluded — the same number as lifeline_consumer_lag.
   * Counted record by record up to a few thousand offsets; beyond, offsets (`lagExact` false).
   */
  readonly lag: string;
  readonly lagExact: boolean;
  readonly memberId: string | null;
}

export interface GroupDescription extends GroupSummary {
  readonly protocol: string;
  readonly memberList: readonly GroupMember[];
  readonly partitions: readonly PartitionLag[];
  readonly totalLag: string;
}

/** Internal groups of Lifeline's own plumbing (control listeners, readers, restores) are not shown unless asked for. */
export function isInternalGroup(group: string): boolean {
  return group.startsWith('_lifeline.');
}

export async function listGroups(admin: Admin, topology: Topology, options: { all?: boolean } = {}): Promise<GroupSummary[]> {
  const { groups } = await admin.listGroups();
  const prefix = `${topology.runtime.appId}.`;
  const chosen = groups
    .filter((group) => group.protocolType === 'consumer' || group.protocolType === '')
    .map((group) => group.groupId)
    .filter((group) => (options.all ? true : group.startsWith(prefix) && !isInternalGroup(group)))
    .sort();
  if (chosen.length === 0) return [];
  const described = await admin.describeGroups(chosen);
  return described.groups.map((group) => ({
    group: group.groupId, state: group.state, members: group.members.length,
    component: componentOfGroup(topology, group.groupId)?.label ?? null,
  }));
}

export async function describeGroup(admin: Admin, topology: Topology, group: string, kafka: Kafka): Promise<GroupDescription> {
  const { groups } = await admin.describeGroups([group]);
  const described = groups[0];
  const memberList: GroupMember[] = (described?.members ?? []).map((member) => {
    const decoded = member.memberAssignment.length > 0 ? AssignerProtocol.MemberAssignment.decode(member.memberAssignment) : null;
    return { memberId: member.memberId, clientId: member.clientId, host: member.clientHost, assignment: decoded?.assignment ?? {} };
  });
  const committed = await admin.fetchOffsets({ groupId: group });
  const component = componentOfGroup(topology, group);
  const topics = [...new Set([...committed.map((entry) => entry.topic), ...(component?.inputs ?? []), ...memberList.flatMap((member) => Object.keys(member.assignment))])].sort();
  const existing = new Set(await admin.listTopics());
  const partitions: PartitionLag[] = [];
  let totalLag = 0n;
  const requests: BacklogRequest[] = [];
  for (const topic of topics.filter((name) => existing.has(name))) {
    const offsets = await fetchTopicOffsetsSerially(admin, topic);
    for (const entry of offsets.sort((a, b) => a.partition - b.partition)) {
      const offset = committed.find((candidate) => candidate.topic === topic)?.partitions.find((candidate) => candidate.partition === entry.partition)?.offset;
      requests.push({ topic, partition: entry.partition, from: offset !== undefined && Number(offset) >= 0 ? BigInt(offset) : null });
    }
  }
  for (const backlog of await committedBacklog(kafka, requests)) {
    const request = requests.find((candidate) => candidate.topic === backlog.topic && candidate.partition === backlog.partition) as BacklogRequest;
    totalLag += backlog.records;
    const owner = memberList.find((member) => member.assignment[backlog.topic]?.includes(backlog.partition));
    partitions.push({
      topic: backlog.topic, partition: backlog.partition, committed: request.from === null ? null : request.from.toString(), end: backlog.end.toString(),
      lag: backlog.records.toString(), lagExact: backlog.exact, memberId: owner?.memberId ?? null,
    });
  }
  return {
    group, state: described?.state ?? 'Dead', members: memberList.length, component: component?.label ?? null,
    protocol: described?.protocol ?? '', memberList, partitions, totalLag: totalLag.toString(),
  };
}
