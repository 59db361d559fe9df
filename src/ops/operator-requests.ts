import type { Admin } from 'kafkajs';
import { LifelineError } from '../errors.ts';
import { deadLetterTopic, type Topology } from '../topology/model.ts';
import type { DeadLetterFilter, ReplayLimits } from './dead-letter-replay.ts';
import type { ResetScope, ResetTarget } from './offset-reset.ts';
import { durationMs, parseInteger, parseTime } from './option-values.ts';
import { componentOfGroup } from './topology-lineage.ts';

// What an operator asks for, as typed (CLI options or the console's JSON, both strings), turned
// into what src/ops executes: the same checks and the same messages wherever the request came from.

/** The target options shared by `offsets reset` and `replay plan`. */
export interface ResetTargetOptions {
  toEarliest?: boolean;
  toLatest?: boolean;
  toDatetime?: string;
  byDuration?: string;
  toOffset?: string;
  shiftBy?: string;
}

export function resetTarget(options: ResetTargetOptions): ResetTarget {
  const chosen: ResetTarget[] = [];
  if (options.toEarliest) chosen.push({ kind: 'earliest' });
  if (options.toLatest) chosen.push({ kind: 'latest' });
  if (options.toDatetime !== undefined) chosen.push({ kind: 'datetime', at: parseTime(options.toDatetime, '--to-datetime') });
  if (options.byDuration !== undefined) chosen.push({ kind: 'datetime', at: Date.now() - durationMs(options.byDuration, '--by-duration') });
  if (options.toOffset !== undefined) chosen.push({ kind: 'offset', offset: BigInt(parseInteger(options.toOffset, '--to-offset', 0)) });
  if (options.shiftBy !== undefined) chosen.push({ kind: 'shift', by: BigInt(parseInteger(options.shiftBy, '--shift-by')) });
  if (chosen.length !== 1) {
    throw new LifelineError('LL_CONFIG_INVALID', 'give exactly one of --to-earliest, --to-latest, --to-datetime, --by-duration, --to-offset, --shift-by');
  }
  return chosen[0] as ResetTarget;
}

/** The topics to reset: as named, or (as kafka-consumer-groups --all-topics) every topic the group has offsets for, plus a component's inputs. */
export async function resetScope(admin: Admin, topology: Topology, options: { group: string; topic?: string[]; partition?: string[] }): Promise<ResetScope> {
  const partitions = options.partition?.map((value) => parseInteger(value, '--partition', 0));
  if (partitions && !options.topic) throw new LifelineError('LL_CONFIG_INVALID', '--partition needs --topic (as kafka-consumer-groups --topic T:0,1)');
  let topics = options.topic;
  if (!topics || topics.length === 0) {
    const committed = (await admin.fetchOffsets({ groupId: options.group })).map((entry) => entry.topic);
    const component = componentOfGroup(topology, options.group);
    topics = [...new Set([...committed, ...(component?.inputs ?? [])])].sort();
  }
  if (topics.length === 0) {
    throw new LifelineError('LL_OFFSETS_INVALID', `group ${options.group} has no committed offsets and is no component of ${topology.file}; name the topic with --topic`);
  }
  return { group: options.group, topics, ...(partitions ? { partitions } : {}) };
}

export interface DeadLetterFilterOptions {
  errorClass?: string[];
  since?: string;
  until?: string;
  key?: string;
  originTopic?: string;
}

export function deadLetterFilter(options: DeadLetterFilterOptions): DeadLetterFilter {
  return {
    ...(options.errorClass && options.errorClass.length > 0 ? { errorClasses: options.errorClass } : {}),
    ...(options.since !== undefined ? { since: parseTime(options.since, '--since') } : {}),
    ...(options.until !== undefined ? { until: parseTime(options.until, '--until') } : {}),
    ...(options.key !== undefined ? { key: options.key } : {}),
    ...(options.originTopic !== undefined ? { originTopic: options.originTopic } : {}),
  };
}

/** A component label (`charge_sink`) or the dead-letter topic itself (`ops.dlq.charge_sink.v1`). */
export function resolveDeadLetterTopic(topology: Topology, name: string): { topic: string; component: string } {
  const match = /^ops\.dlq\.(.+)\.v1$/.exec(name);
  if (match) return { topic: name, component: match[1] as string };
  if (!topology.components[name]) {
    throw new LifelineError('LL_CONFIG_INVALID', `${name} is neither a component of ${topology.file} nor a dead-letter topic (ops.dlq.<label>.v1); components: ${Object.keys(topology.components).join(', ')}`);
  }
  return { topic: deadLetterTopic(name), component: name };
}

export function replayLimits(options: { max?: string; maxAttempts: string; includeReplayed?: boolean }): ReplayLimits {
  return {
    ...(options.max !== undefined ? { max: parseInteger(options.max, '--max', 1) } : {}),
    maxAttempts: parseInteger(options.maxAttempts, '--max-attempts', 1),
    ...(options.includeReplayed ? { includeReplayed: true } : {}),
  };
}

