import type { Admin, Kafka } from 'kafkajs';
import { committedBacklog } from '../kafka/committed-backlog.ts';
import { LifelineError, errorMessage } from '../errors.ts';
import { retry } from '../retry.ts';
import { fetchTopicOffsetsSerially } from '../kafka/client.ts';

/**
 * Offset resets with the semantics of Kafka's own kafka-consumer-groups tool:
 * --to-earliest, --to-latest, --to-offset N and --shift-by N (both clamped to what the partition
 * holds), --to-datetime (the first record at or after the time, the end when there is none) and
 * --by-duration (now minus a duration). Offsets are set with real numbers (kafkajs's resetOffsets
 * writes placeholders that kafkajs consumers read by their own fromBeginning), on an empty group.
 */
export type ResetTarget =
  | { readonly kind: 'earliest' }
  | { readonly kind: 'latest' }
  | { readonly kind: 'offset'; readonly offset: bigint }
  | { readonly kind: 'shift'; readonly by: bigint }
  | { readonly kind: 'datetime'; readonly at: number };

export interface PartitionPosition {
  readonly topic: string;
  readonly partition: number;
  /** First offset the partition still holds. */
  readonly low: bigint;
  /** The end: the offset the next record gets. */
  readonly high: bigint;
  /** The group's committed offset; undefined when it has none. */
  readonly committed: bigint | undefined;
  /** For --to-datetime: the first offset at or after the time (the end when there is none). */
  readonly atTimestamp?: bigint;
}

export interface ResetRow {
  readonly topic: string;
  readonly partition: number;
  readonly current: bigint | undefined;
  readonly target: bigint;
  /** Offsets between target and current: positive = reprocessed, negative = skipped. Transaction markers count too. */
  readonly toReprocess: bigint;
  /** Records between target and current (read committed: no markers, no aborted records), same sign; set by withRecordCounts. */
  readonly records?: bigint;
  /** False when the count gave up on a long range and `records` is offsets after all. */
  readonly recordsExact?: boolean;
  readonly low: bigint;
  readonly high: bigint;
  /** Set when the requested offset was outside [low, high] and was clamped, as kafka-consumer-groups does. */
  readonly note?: string;
}

export interface ResetScope {
  readonly group: string;
  readonly topics: readonly string[];
  /** Only these partitions (of every topic in scope); all when undefined. */
  readonly partitions?: readonly number[];
}

export function describeTarget(target: ResetTarget): string {
  switch (target.kind) {
    case 'earliest': return 'to earliest';
    case 'latest': return 'to latest';
    case 'offset': return `to offset ${target.offset}`;
    case 'shift': return `shift by ${target.by}`;
    case 'datetime': return `to ${new Date(target.at).toISOString()}`;
  }
}

/** Computes the new offset of one partition; pure, so the rules are testable without a broker. */
export function resetRow(position: PartitionPosition, target: ResetTarget): ResetRow {
  const { low, high, committed } = position;
  let wanted: bigint;
  switch (target.kind) {
    case 'earliest': wanted = low; break;
    case 'latest': wanted = high; break;
    case 'offset': wanted = target.offset; break;
    case 'datetime':
      if (position.atTimestamp === undefined) throw new Error('atTimestamp is needed for a datetime reset');
      wanted = position.atTimestamp;
      break;
    case 'shift':
      if (committed === undefined) {
        throw new LifelineError('LL_OFFSETS_INVALID',
          `cannot shift ${position.topic}/${position.partition}: the group has no committed offset there (as kafka-consumer-groups, shift needs one)`);
      }
      wanted = committed + target.by;
      break;
  }
  let note: string | undefined;
  let targetOffset = wanted;
  if (wanted < low) {
    targetOffset = low;
    note = `offset ${wanted} is below the earliest offset ${low}; set to earliest`;
  } else if (wanted > high) {
    targetOffset = high;
    note = `offset ${wanted} is beyond the latest offset ${high}; set to latest`;
  }
  const from = committed ?? low;
  return {
    topic: position.topic, partition: position.partition, current: committed, target: targetOffset,
    toReprocess: (committed === undefined ? high : from) - targetOffset, low, high,
    ...(note ? { note } : {}),
  };
}

/** Positions of every partition in scope: low, high, the group's committed offset (and the offset at a time). */
export async function fetchPositions(admin: Admin, scope: ResetScope, target?: ResetTarget): Promise<PartitionPosition[]> {
  const existing = new Set(await admin.listTopics());
  const missing = scope.topics.filter((topic) => !existing.has(topic));
  if (missing.length > 0) throw new LifelineError('LL_OFFSETS_INVALID', `topic(s) ${missing.join(', ')} do not exist on the cluster`);
  const committed = await admin.fetchOffsets({ groupId: scope.group, topics: [...scope.topics] });
  const positions: PartitionPosition[] = [];
  for (const topic of scope.topics) {
    const offsets = await fetchTopicOffsetsSerially(admin, topic);
    const byTime = target?.kind === 'datetime' ? await admin.fetchTopicOffsetsByTimestamp(topic, target.at) : undefined;
    const known = new Set(offsets.map((entry) => entry.partition));
    for (const partition of scope.partitions ?? []) {
      if (!known.has(partition)) throw new LifelineError('LL_OFFSETS_INVALID', `topic ${topic} has no partition ${partition} (it has ${offsets.length})`);
    }
    for (const entry of offsets.sort((a, b) => a.partition - b.partition)) {
      if (scope.partitions && !scope.partitions.includes(entry.partition)) continue;
      const committedOffset = committed.find((candidate) => candidate.topic === topic)?.partitions.find((candidate) => candidate.partition === entry.partition)?.offset;
      const timeOffset = byTime?.find((candidate) => candidate.partition === entry.partition)?.offset;
      positions.push({
        topic, partition: entry.partition, low: BigInt(entry.low), high: BigInt(entry.high),
        committed: committedOffset !== undefined && Number(committedOffset) >= 0 ? BigInt(committedOffset) : undefined,
        ...(timeOffset !== undefined ? { atTimestamp: BigInt(timeOffset) } : {}),
      });
    }
  }
  return positions;
}

export async function planReset(admin: Admin, scope: ResetScope, target: ResetTarget): Promise<ResetRow[]> {
  return (await fetchPositions(admin, scope, target)).map((position) => resetRow(position, target));
}

/** kafkajs#1219 and the coordinator's own lag: right after members leave, a join may briefly still find them. */
function isTransientGroupError(error: unknown): boolean {
  const text = errorMessage(error);
  const type = (error as { type?: unknown }).type;
  return /must have no running instances|REBALANCE_IN_PROGRESS|UNKNOWN_MEMBER_ID|COORDINATOR/i.test(text)
    || (typeof type === 'string' && /REBALANCE_IN_PROGRESS|UNKNOWN_MEMBER_ID|COORDINATOR|NOT_COORDINATOR/.test(type));
}

/**
 * Commits the rows' targets for an empty group (kafkajs's setOffsets joins the group to commit, so
 * Kafka itself refuses while members are active), then reads them back: what is reported is what
 * the broker holds.
 */
export async function applyReset(admin: Admin, group: string, rows: ReadonlyArray<Pick<ResetRow, 'topic' | 'partition' | 'target'>>): Promise<void> {
  const byTopic = new Map<string, Array<Pick<ResetRow, 'topic' | 'partition' | 'target'>>>();
  for (const row of rows) byTopic.set(row.topic, [...(byTopic.get(row.topic) ?? []), row]);
  for (const [topic, topicRows] of byTopic) {
    await retry(() => admin.setOffsets({
      groupId: group, topic, partitions: topicRows.map((row) => ({ partition: row.partition, offset: row.target.toString() })),
    }), { retries: 5, initialDelayMs: 300, maxDelayMs: 3000, shouldRetry: isTransientGroupError, operation: `setting offsets of ${group} on ${topic}` });
  }
  const committed = await admin.fetchOffsets({ groupId: group, topics: [...byTopic.keys()] });
  const wrong = rows.filter((row) => {
    const offset = committed.find((entry) => entry.topic === row.topic)?.partitions.find((entry) => entry.partition === row.partition)?.offset;
    return offset === undefined || BigInt(offset) !== row.target;
  });
  if (wrong.length > 0) {
    throw new LifelineError('LL_GROUP_ACTIVE',
      `after the reset, ${wrong.length} partition(s) of ${group} do not hold the target offset (was a member of the group started meanwhile?): ${wrong.map((row) => `${row.topic}/${row.partition}`).join(', ')}`);
  }
}

/** What a reset reprocesses: records where they were counted (withRecordCounts), else offsets. */
export function totalToReprocess(rows: readonly ResetRow[]): bigint {
  return rows.reduce((sum, row) => {
    const count = row.records ?? row.toReprocess;
    return sum + (count > 0n ? count : 0n);
  }, 0n);
}

/**
 * The rows with `records`: what lies between each target and current offset as a consumer would
 * read it (read committed), not offsets, which also count transaction markers and aborted records —
 * an idle transactional partition is one marker per transaction. Counted as the backlog from the
 * lower offset minus the backlog from the higher one; a range too long to read is left in offsets
 * (`recordsExact` false).
 */
export async function withRecordCounts(kafka: Kafka, rows: readonly ResetRow[]): Promise<ResetRow[]> {
  const moving = rows.filter((row) => row.toReprocess !== 0n);
  const bounds = moving.map((row) => {
    const current = row.current ?? row.high;
    return { row, lower: current < row.target ? current : row.target, upper: current < row.target ? row.target : current };
  });
  const requests = bounds.flatMap(({ row, lower, upper }) => [
    { topic: row.topic, partition: row.partition, from: lower },
    { topic: row.topic, partition: row.partition, from: upper },
  ]);
  const backlogs = await committedBacklog(kafka, requests);
  const counted = new Map<ResetRow, { records: bigint; exact: boolean }>();
  bounds.forEach(({ row }, index) => {
    const fromLower = backlogs[2 * index];
    const fromUpper = backlogs[2 * index + 1];
    if (!fromLower || !fromUpper) return;
    const exact = fromLower.exact && fromUpper.exact;
    const records = exact ? fromLower.records - fromUpper.records : (row.toReprocess < 0n ? -row.toReprocess : row.toReprocess);
    counted.set(row, { records: row.toReprocess < 0n ? -records : records, exact });
  });
  return rows.map((row) => {
    if (row.toReprocess === 0n) return { ...row, records: 0n, recordsExact: true };
    const count = counted.get(row);
    return count ? { ...row, records: count.records, recordsExact: count.exact } : row;
  });
}
