import { Type, type Static } from '@sinclair/typebox';
import { Counter, Histogram, type Registry } from 'prom-client';
import { LifelineError } from '../src/errors.ts';
import { defineProcessor, type InputRecord, type PartitionGauge, type Processor, type ProcessorContext } from '../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../src/component/duration.ts';
import { LIFELINE_HEADERS } from '../src/component/record-headers.ts';
import { readPath } from '../src/component/value-path.ts';

/**
 * `sla`: tracks each business transaction of a declared flow from its start event to its end event
 * against a warning and a breach threshold, and emits SLA events (schemas/ops/sla_event.avsc) to its
 * `events` output (e.g. `ops.sla.tracked.v1`).
 *
 * How events meet: every input record is first sent through the `by_transaction` repartition keyed
 * by its transaction key (read from the flow's key path), so start, milestone and end events keyed
 * differently on their own topics land on the partition that owns the transaction; only there is the
 * SLA logic applied, against the `transactions` store. Thresholds are checked by a timer per
 * partition (`check_interval`) that reads only the transactions due (the store's deadline index), and
 * emits warning and breached once each: the flags are stored in the same Kafka transaction as the
 * events, so restarts and rebalances never repeat them. The timer uses the wall clock, except while
 * the tracker is reading inputs much older than it (a backlog): then it uses the inputs' time, so the
 * tracker's own lag never causes a breach.
 *
 * Out of order: an end (or milestone) for a transaction that has not started yet is held for
 * `settle_window`; a start within it emits started, the held milestones, then completes at once. A
 * finished transaction leaves a marker (store `finished`) for the same window, so a repeated start (a
 * replay, a corrected charge) does not open it again and later breach falsely, and a milestone that
 * arrives after the end is still recorded. Open transactions nobody ends
 * are forgotten after `forget_after` (their breach was reported long before).
 */

const BY_TRANSACTION = 'by_transaction';
const TRANSACTIONS_STORE = 'transactions';
/** Finished transactions, kept for settle_window: only ever read by key, never scanned. */
const FINISHED_STORE = 'finished';
/**
 * Beside the open transactions, written in the same Kafka transactions: an index by start time
 * (`start:<flow>:<started_at>:<key>`, the oldest is the first key) and per-flow open counts
 * (`open:<flow>`), so the gauges never scan.
 */
const OPEN_INDEX_STORE = 'open_index';
const START_INDEX = 'start:';
const OPEN_COUNT = 'open:';
/** Marks (in open_index) a transactions store whose open transactions carry deadlines, counts and a start index. */
const FORMAT_KEY = 'format';
const TRACKER_FORMAT = 2;
/** Records read within this long count as a flow of input (the tracker is reading, not idle). */
const CATCHING_UP_WINDOW_MS = 5000;
/** Inputs whose time is this far behind the wall clock mean the tracker is behind them. */
const BEHIND_INPUTS_MS = 10_000;
/** Transactions a timer call handles before it commits and is called again. */
const DUE_CHUNK = 500;
const EVENTS_OUTPUT = 'events';
/** Optional output receiving the breached events only, e.g. for an odoo_sink that schedules an activity per breach. */
const BREACHES_OUTPUT = 'breaches';
const FLOW_NAME = /^[a-z][a-z0-9_]*$/;
/** forget_after defaults to this many breach_after, and to no less than MIN_FORGET_AFTER_MS. */
const FORGET_AFTER_BREACHES = 10;
const MIN_FORGET_AFTER_MS = 7 * 86_400_000;

const duration = (description: string, defaultValue?: string) => Type.String({
  pattern: DURATION_PATTERN, description, ...(defaultValue === undefined ? {} : { default: defaultValue }),
});

const eventSource = {
  topic: Type.String({ minLength: 1, description: 'Topic carrying the event; one of the processor inputs.' }),
  key_path: Type.String({ minLength: 1, description: 'Dotted path of the value field holding the transaction key.', examples: ['charge_id'] }),
  time_path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path of the event time (epoch ms or ISO-8601); the record timestamp when absent or null.' })),
};

const FlowSchema = Type.Object({
  start: Type.Object(eventSource, { additionalProperties: false, description: 'The event that opens a transaction.' }),
  end: Type.Object({
    ...eventSource,
    status_path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path of a status; with success_values, only ends whose status is listed complete the transaction.' })),
    success_values: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Statuses that complete the transaction (others are ignored: it stays open and can breach).' })),
  }, { additionalProperties: false, description: 'The event that completes a transaction.' }),
  milestones: Type.Optional(Type.Array(Type.Object({
    name: Type.String({ minLength: 1, description: 'Name of the milestone, carried in its event.' }),
    ...eventSource,
  }, { additionalProperties: false }), { description: 'Steps between start and end, reported once each when seen.' })),
  warn_after: duration('A warning is emitted when a transaction is open this long.'),
  breach_after: duration('A breach is emitted when a transaction is open this long; an end after it completes late.'),
  owner_path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path of a start event field naming the owner (e.g. an Odoo login), carried in every event.' })),
  forget_after: Type.Optional(duration('Forget an open transaction this long after it started (default: 10 × breach_after, at least 7d).')),
}, { additionalProperties: false });

const SlaConfig = Type.Object({
  flows: Type.Record(Type.String(), FlowSchema, {
    minProperties: 1,
    description: 'Flows to track, by name (snake_case: it labels metrics and events). Each has `start` {topic, key_path, time_path?}, '
      + '`end` {topic, key_path, time_path?, status_path?, success_values?}, `milestones?` [{name, topic, key_path, time_path?}], '
      + '`warn_after`, `breach_after`, `owner_path?` and `forget_after?` (default 10 × breach_after, at least 7d). '
      + 'The processor inputs are every topic the flows read; a topic may play roles in several flows.',
    examples: [{
      charge_to_invoice: {
        start: { topic: 'partner.service_charge.received.v1', key_path: 'entity_key', time_path: 'received_at' },
        end: { topic: 'billing.vendor_bill.written.v1', key_path: 'key', status_path: 'outcome', success_values: ['created', 'updated'] },
        warn_after: '10m', breach_after: '15m', owner_path: 'owner_login',
      },
    }],
  }),
  check_interval: duration('How often each partition checks its open transactions against the thresholds (wall clock).', '1s'),
  settle_window: duration('How long an end or milestone that came before its start waits for it, and how long a finished transaction is remembered so a repeated start or end is ignored. 0s disables both.', '1h'),
}, { additionalProperties: false });

type SlaConfigType = Static<typeof SlaConfig>;

export type SlaEventType = 'started' | 'milestone' | 'warning' | 'breached' | 'completed' | 'completed_late';

/** A value of the events output (schemas/ops/sla_event.avsc). */
export interface SlaEvent {
  readonly flow: string;
  readonly transaction_key: string;
  readonly event_type: SlaEventType;
  readonly milestone: string | null;
  readonly started_at: number;
  readonly occurred_at: number;
  readonly latency_ms: number | null;
  readonly warn_after_ms: number;
  readonly breach_after_ms: number;
  readonly breach_at: number;
  readonly owner: string | null;
  readonly correlation_id: string | null;
}

/** A flow with its durations parsed. */
interface FlowPlan {
  readonly name: string;
  readonly warnAfterMs: number;
  readonly breachAfterMs: number;
  readonly forgetAfterMs: number;
  readonly ownerPath: string | undefined;
}

/** One role a topic plays in a flow. */
interface TopicRole {
  readonly flow: FlowPlan;
  readonly kind: 'start' | 'milestone' | 'end';
  readonly milestone?: string;
  readonly keyPath: string;
  readonly timePath: string | undefined;
  readonly statusPath?: string;
  readonly successValues?: ReadonlySet<string>;
}

interface TrackerPlan {
  readonly flows: ReadonlyMap<string, FlowPlan>;
  readonly rolesByTopic: ReadonlyMap<string, readonly TopicRole[]>;
  readonly checkIntervalMs: number;
  readonly settleWindowMs: number;
}

/** The transactions store holds one of these per `<flow>:<transaction key>`; JSON in the changelog. */
interface OpenTransaction {
  readonly state: 'open';
  readonly flow: string;
  readonly key: string;
  readonly started_at: number;
  readonly milestones: readonly string[];
  readonly warned: boolean;
  readonly breached: boolean;
  readonly owner: string | null;
  readonly correlation_id: string | null;
}

/** Milestones and an end that arrived before their start. */
interface EarlySteps {
  readonly state: 'early';
  readonly milestones: ReadonlyArray<{ readonly name: string; readonly at: number }>;
  readonly ended_at: number | null;
}

/** A transaction that completed within the settle window (older markers hold no transaction). */
interface FinishedTransaction {
  readonly state: 'finished';
  readonly transaction?: OpenTransaction;
}

/** 'finished' only in state written before finished markers had a store of their own. */
type TrackedEntry = OpenTransaction | EarlySteps | FinishedTransaction;

/** A role a record plays, resolved against its value. */
interface RecordStep {
  readonly role: TopicRole;
  readonly key: string;
  readonly at: number;
}

export const slaTracker = defineProcessor({
  kind: 'processor',
  type: 'sla',
  description: 'Tracks business transactions from start to end event against warn and breach thresholds; emits SLA events (schemas/ops/sla_event.avsc) and per-flow metrics.',
  stateful: true,
  outputs: [EVENTS_OUTPUT, `${BREACHES_OUTPUT}?`],
  config: SlaConfig,
  stores: () => [{ name: TRANSACTIONS_STORE }, { name: FINISHED_STORE }, { name: OPEN_INDEX_STORE }],
  // Topology validation calls this with the config: checking the flows here makes
  // `lifeline topology validate` (and `lifeline run`) refuse flows the tracker cannot run.
  repartitions: (config) => {
    planTracker(config);
    return [BY_TRANSACTION];
  },
  create: (config) => new SlaTracker(planTracker(config)),
});

/** Parses durations and indexes roles by topic; throws LL_CONFIG_INVALID on flows that cannot work. */
function planTracker(config: SlaConfigType): TrackerPlan {
  const invalid = (message: string): never => { throw new LifelineError('LL_CONFIG_INVALID', `sla: ${message}`); };
  const flows = new Map<string, FlowPlan>();
  const rolesByTopic = new Map<string, TopicRole[]>();
  const addRole = (topic: string, role: TopicRole): void => {
    const roles = rolesByTopic.get(topic) ?? [];
    roles.push(role);
    rolesByTopic.set(topic, roles);
  };
  for (const [name, flow] of Object.entries(config.flows)) {
    if (!FLOW_NAME.test(name)) invalid(`flow name "${name}" must be snake_case (a-z, 0-9, _): it labels metrics and keys events`);
    const warnAfterMs = parseDuration(flow.warn_after) as number;
    const breachAfterMs = parseDuration(flow.breach_after) as number;
    if (breachAfterMs <= 0) invalid(`flows.${name}.breach_after must be more than 0`);
    if (warnAfterMs >= breachAfterMs) invalid(`flows.${name}.warn_after (${flow.warn_after}) must be shorter than breach_after (${flow.breach_after})`);
    const forgetAfterMs = flow.forget_after === undefined
      ? Math.max(FORGET_AFTER_BREACHES * breachAfterMs, MIN_FORGET_AFTER_MS)
      : parseDuration(flow.forget_after) as number;
    if (forgetAfterMs <= breachAfterMs) invalid(`flows.${name}.forget_after (${flow.forget_after}) must be longer than breach_after (${flow.breach_after})`);
    if ((flow.end.status_path === undefined) !== (flow.end.success_values === undefined)) {
      invalid(`flows.${name}.end: status_path and success_values go together`);
    }
    if (flow.start.topic === flow.end.topic && flow.end.status_path === undefined) {
      invalid(`flows.${name}: start and end read the same topic ${flow.start.topic}; set end.status_path and success_values so an end can be told from a start`);
    }
    const milestoneNames = (flow.milestones ?? []).map((milestone) => milestone.name);
    const repeated = milestoneNames.find((milestone, index) => milestoneNames.indexOf(milestone) !== index);
    if (repeated !== undefined) invalid(`flows.${name}.milestones names "${repeated}" twice`);

    const plan: FlowPlan = { name, warnAfterMs, breachAfterMs, forgetAfterMs, ownerPath: flow.owner_path };
    flows.set(name, plan);
    addRole(flow.start.topic, { flow: plan, kind: 'start', keyPath: flow.start.key_path, timePath: flow.start.time_path });
    for (const milestone of flow.milestones ?? []) {
      addRole(milestone.topic, { flow: plan, kind: 'milestone', milestone: milestone.name, keyPath: milestone.key_path, timePath: milestone.time_path });
    }
    addRole(flow.end.topic, {
      flow: plan, kind: 'end', keyPath: flow.end.key_path, timePath: flow.end.time_path,
      ...(flow.end.status_path !== undefined ? { statusPath: flow.end.status_path, successValues: new Set(flow.end.success_values) } : {}),
    });
  }
  const checkIntervalMs = parseDuration(config.check_interval) as number;
  if (checkIntervalMs <= 0) invalid('check_interval must be more than 0');
  return { flows, rolesByTopic, checkIntervalMs, settleWindowMs: parseDuration(config.settle_window) as number };
}

/** One instance per partition task (the host calls `create` per task). */
class SlaTracker implements Processor {
  private metrics: SlaMetrics | undefined;
  /** Per-process gauges the runtime aggregates over this process's partitions (sum / max). */
  private openGauge: PartitionGauge | undefined;
  private oldestGauge: PartitionGauge | undefined;
  private label = '';
  /** The newest input time this partition has applied, and when (its clock) it last applied one. */
  private inputTime = 0;
  private inputSeenAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly plan: TrackerPlan) {}

  init(context: ProcessorContext): void {
    this.label = context.label;
    if (context.metricsRegistry) {
      this.metrics = SlaMetrics.of(context.metricsRegistry);
      this.metrics.declareFlows(this.label, [...this.plan.flows.keys()]);
    }
    this.openGauge = context.partitionGauge?.({
      name: 'lifeline_sla_open_transactions', help: 'Transactions started and not yet ended, per flow.', labelNames: ['flow'], aggregate: 'sum',
    });
    this.oldestGauge = context.partitionGauge?.({
      name: 'lifeline_sla_oldest_open_age_seconds', help: 'Age of the oldest open transaction per flow (exception ageing); 0 when none is open.',
      labelNames: ['flow'], aggregate: 'max',
    });
    // Series exist from the start (at 0), so alerts work before the first transaction.
    for (const flow of this.plan.flows.keys()) {
      this.openGauge?.set({ flow }, 0);
      this.oldestGauge?.set({ flow }, 0);
    }
    context.schedule(this.plan.checkIntervalMs, (now) => this.checkDeadlines(context, now));
  }

  process(record: InputRecord, context: ProcessorContext): void {
    if (record.via === undefined) this.sendToOwner(record, context);
    else this.applySteps(record, context);
  }


  /**
   * First hop: validate the record (a bad time or a missing key dead-letters the original record,
   * not its repartitioned copy) and send it to the partition owning each transaction key it names.
   */
  private sendToOwner(record: InputRecord, context: ProcessorContext): void {
    if (record.value === null) {
      context.count('sla_tombstone_ignored'); // a deletion on a compacted topic starts or ends nothing
      return;
    }
    const { steps, missingKeys, unsuccessfulEnds } = this.stepsOf(record);
    if (steps.length === 0) {
      if (unsuccessfulEnds > 0) {
        context.count('sla_end_not_successful', unsuccessfulEnds); // e.g. a failed Odoo write: the transaction stays open
        return;
      }
      const paths = (this.plan.rolesByTopic.get(record.topic) ?? []).map((role) => `${role.flow.name}.${role.kind}: ${role.keyPath}`);
      throw new Error(`sla: record on ${record.topic} has no transaction key (${paths.join('; ')})`);
    }
    if (missingKeys > 0) context.count('sla_key_missing', missingKeys);
    if (unsuccessfulEnds > 0) context.count('sla_end_not_successful', unsuccessfulEnds);
    for (const key of new Set(steps.map((step) => step.key))) context.repartition(BY_TRANSACTION, key);
  }

  /** Second hop, on the partition that owns `record.key`: the steps of each flow this copy is keyed for. */
  private applySteps(record: InputRecord, context: ProcessorContext): void {
    this.inputTime = Math.max(this.inputTime, record.timestamp);
    this.inputSeenAt = context.now();
    const steps = this.stepsOf(record).steps.filter((step) => step.key === record.key);
    for (const flow of new Set(steps.map((step) => step.role.flow))) {
      const flowSteps = steps.filter((step) => step.role.flow === flow);
      // One topic as start and end of one flow (told apart by status): an end is not also a start.
      const end = flowSteps.find((step) => step.role.kind === 'end');
      if (end) {
        this.end(context, flow, end.key, end.at);
        continue;
      }
      for (const step of flowSteps) {
        if (step.role.kind === 'start') this.start(context, flow, step.key, step.at, record);
        else if (step.role.milestone !== undefined) this.milestone(context, flow, step.key, step.role.milestone, step.at);
      }
    }
  }

  private stepsOf(record: InputRecord): { steps: RecordStep[]; missingKeys: number; unsuccessfulEnds: number } {
    const roles = this.plan.rolesByTopic.get(record.topic);
    if (!roles) {
      throw new Error(`sla: ${record.topic} is an input but no flow reads it; flows read ${[...this.plan.rolesByTopic.keys()].join(', ')}`);
    }
    const steps: RecordStep[] = [];
    let missingKeys = 0;
    let unsuccessfulEnds = 0;
    for (const role of roles) {
      const key = keyText(readPath(record.value, role.keyPath));
      if (key === undefined) {
        missingKeys++;
        continue;
      }
      if (role.statusPath !== undefined && !role.successValues?.has(String(readPath(record.value, role.statusPath)))) {
        unsuccessfulEnds++;
        continue;
      }
      steps.push({ role, key, at: eventTime(record, role) });
    }
    return { steps, missingKeys, unsuccessfulEnds };
  }

  private finishedMarker(context: ProcessorContext, storeKey: string, entry: TrackedEntry | undefined): FinishedTransaction | undefined {
    if (entry?.state === 'finished') return entry; // written by an older version into the transactions store
    return context.store<FinishedTransaction>(FINISHED_STORE).get(storeKey);
  }

  private start(context: ProcessorContext, flow: FlowPlan, key: string, startedAt: number, record: InputRecord): void {
    const store = context.store<TrackedEntry>(TRANSACTIONS_STORE);
    const storeKey = transactionId(flow, key);
    const entry = store.get(storeKey);
    if (entry?.state === 'open' || this.finishedMarker(context, storeKey, entry)) {
      context.count('sla_repeat_ignored');
      return;
    }
    const owner = flow.ownerPath === undefined ? null : keyText(readPath(record.value, flow.ownerPath)) ?? null;
    let transaction: OpenTransaction = {
      state: 'open', flow: flow.name, key, started_at: startedAt, milestones: [], warned: false, breached: false,
      owner, correlation_id: record.headers[LIFELINE_HEADERS.correlationId] ?? null,
    };
    this.emit(context, flow, transaction, 'started', startedAt);
    this.indexOpen(context, flow, transaction, +1);
    if (entry?.state === 'early') {
      for (const milestone of [...entry.milestones].sort((a, b) => a.at - b.at)) {
        transaction = this.reachMilestone(context, flow, transaction, milestone.name, milestone.at);
      }
      if (entry.ended_at !== null) {
        this.finish(context, flow, transaction, entry.ended_at);
        return;
      }
    }
    this.keepOpen(context, transaction, flow);
  }

  private milestone(context: ProcessorContext, flow: FlowPlan, key: string, name: string, at: number): void {
    const store = context.store<TrackedEntry>(TRANSACTIONS_STORE);
    const storeKey = transactionId(flow, key);
    const entry = store.get(storeKey);
    if (entry?.state === 'open') {
      if (entry.milestones.includes(name)) context.count('sla_repeat_ignored');
      else this.keepOpen(context, this.reachMilestone(context, flow, entry, name, at), flow);
      return;
    }
    const finished = this.finishedMarker(context, storeKey, entry);
    if (finished) {
      // Inputs on other topics lag differently: a milestone after its end still belongs to the transaction.
      if (!finished.transaction || finished.transaction.milestones.includes(name)) {
        context.count('sla_repeat_ignored');
        return;
      }
      const transaction = this.reachMilestone(context, flow, finished.transaction, name, at);
      context.store<FinishedTransaction>(FINISHED_STORE).put(storeKey, { state: 'finished', transaction }, { ttlMs: this.plan.settleWindowMs });
      context.count('sla_milestone_after_end');
      return;
    }
    const early: EarlySteps = entry?.state === 'early' ? entry : { state: 'early', milestones: [], ended_at: null };
    if (early.milestones.some((milestone) => milestone.name === name)) return;
    this.holdEarly(context, flow, key, { ...early, milestones: [...early.milestones, { name, at }] });
  }

  private end(context: ProcessorContext, flow: FlowPlan, key: string, endedAt: number): void {
    const store = context.store<TrackedEntry>(TRANSACTIONS_STORE);
    const storeKey = transactionId(flow, key);
    const entry = store.get(storeKey);
    if (entry?.state === 'open') {
      this.finish(context, flow, entry, endedAt);
      return;
    }
    if (this.finishedMarker(context, storeKey, entry) || (entry?.state === 'early' && entry.ended_at !== null)) {
      context.count('sla_repeat_ignored');
      return;
    }
    this.holdEarly(context, flow, key, { state: 'early', milestones: entry?.state === 'early' ? entry.milestones : [], ended_at: endedAt });
  }

  private reachMilestone(context: ProcessorContext, flow: FlowPlan, transaction: OpenTransaction, name: string, at: number): OpenTransaction {
    this.emit(context, flow, transaction, 'milestone', at, name);
    return { ...transaction, milestones: [...transaction.milestones, name] };
  }

  private finish(context: ProcessorContext, flow: FlowPlan, transaction: OpenTransaction, endedAt: number): void {
    const latencyMs = Math.max(0, endedAt - transaction.started_at);
    // A transaction already reported breached stays late even if its end event carries an earlier time.
    const late = transaction.breached || latencyMs > flow.breachAfterMs;
    this.emit(context, flow, transaction, late ? 'completed_late' : 'completed', endedAt);
    this.metrics?.observeCompletion(this.label, flow.name, latencyMs, late && !transaction.breached);
    const storeKey = transactionId(flow, transaction.key);
    context.store<TrackedEntry>(TRANSACTIONS_STORE).delete(storeKey);
    this.indexOpen(context, flow, transaction, -1);
    if (this.plan.settleWindowMs > 0) {
      context.store<FinishedTransaction>(FINISHED_STORE).put(storeKey, { state: 'finished', transaction }, { ttlMs: this.plan.settleWindowMs });
    }
  }

  private holdEarly(context: ProcessorContext, flow: FlowPlan, key: string, early: EarlySteps): void {
    if (this.plan.settleWindowMs === 0) {
      context.count('sla_step_without_start');
      return;
    }
    context.store<TrackedEntry>(TRANSACTIONS_STORE).put(transactionId(flow, key), early, { ttlMs: this.plan.settleWindowMs });
    context.count('sla_early_step_held');
  }

  /**
   * An open transaction is scheduled (dueAt) for its next threshold: the warning, then the breach,
   * then forget_after after its start, when the timer forgets it. The timer reads only what is due.
   */
  private keepOpen(context: ProcessorContext, transaction: OpenTransaction, flow: FlowPlan): void {
    const dueAt = transaction.started_at + (!transaction.warned ? flow.warnAfterMs : !transaction.breached ? flow.breachAfterMs : flow.forgetAfterMs);
    context.store<TrackedEntry>(TRANSACTIONS_STORE).put(transactionId(flow, transaction.key), transaction, { dueAt });
  }

  /** Keeps the per-flow open count and start-time index in step with the open transactions (same transaction). */
  private indexOpen(context: ProcessorContext, flow: FlowPlan, transaction: OpenTransaction, change: 1 | -1): void {
    const store = context.store<number>(OPEN_INDEX_STORE);
    const indexKey = startIndexKey(flow, transaction);
    if (change > 0) store.put(indexKey, 1);
    else store.delete(indexKey);
    const countKey = `${OPEN_COUNT}${flow.name}`;
    store.put(countKey, Math.max(0, (store.get(countKey) ?? 0) + change));
  }

  /**
   * The timer: emits warning and breached once each for the open transactions that are due (read
   * from the store's deadline index — finished markers and transactions not yet due are never
   * touched), forgets those open past forget_after, and publishes the per-flow gauges from the open
   * counts and the start-time index. At most DUE_CHUNK per call; returns true when more are due, so
   * the runtime commits and calls again (bounded transactions).
   */
  private checkDeadlines(context: ProcessorContext, wallClock: number): boolean {
    const store = context.store<TrackedEntry>(TRANSACTIONS_STORE);
    if (context.store<number>(OPEN_INDEX_STORE).get(FORMAT_KEY) !== TRACKER_FORMAT) {
      this.migrate(context);
    }
    // The tracker is working through a backlog when the records it has just read are much older than
    // the wall clock: deadlines are then judged on the inputs' time, so an end waiting in the backlog
    // cannot be beaten by a breach the tracker's own lag caused. Idle, the wall clock rules.
    const behind = wallClock - this.inputSeenAt < CATCHING_UP_WINDOW_MS && wallClock - this.inputTime > BEHIND_INPUTS_MS;
    const now = behind ? this.inputTime : wallClock;
    if (behind) context.count('sla_clock_held_to_input_time');
    const due = store.due(now, DUE_CHUNK);
    let orphaned = 0;
    for (const [storeKey, entry] of due) {
      if (entry.state !== 'open') continue;
      const flow = this.plan.flows.get(entry.flow);
      if (!flow) {
        store.delete(storeKey); // its flow was removed from topology.yaml
        orphaned++;
        continue;
      }
      const ageMs = now - entry.started_at;
      if (ageMs >= flow.forgetAfterMs) {
        store.delete(storeKey);
        this.indexOpen(context, flow, entry, -1);
        context.count('sla_forgotten');
        continue;
      }
      let transaction = entry;
      if (!transaction.warned && ageMs >= flow.warnAfterMs) {
        this.emit(context, flow, transaction, 'warning', now);
        transaction = { ...transaction, warned: true };
      }
      if (!transaction.breached && ageMs >= flow.breachAfterMs) {
        this.emit(context, flow, transaction, 'breached', now);
        this.metrics?.countBreach(this.label, flow.name);
        transaction = { ...transaction, breached: true };
      }
      this.keepOpen(context, transaction, flow);
    }
    if (orphaned > 0) context.logger.warn({ transactions: orphaned }, 'sla: forgot open transactions of flows no longer configured');
    if (this.openGauge || this.oldestGauge) {
      for (const [flow, seen] of this.snapshot(context, wallClock)) {
        this.openGauge?.set({ flow }, seen.open);
        this.oldestGauge?.set({ flow }, seen.oldestAgeMs / 1000);
      }
    }
    return due.length >= DUE_CHUNK;
  }

  /**
   * Once per store, the first time this version runs on it: open transactions written by an older
   * version (no deadline, no count or start index) are scheduled and counted. A single scan.
   */
  private migrate(context: ProcessorContext): void {
    const store = context.store<TrackedEntry>(TRANSACTIONS_STORE);
    const open: OpenTransaction[] = [];
    for (const [, entry] of store.entries()) if (entry.state === 'open') open.push(entry);
    // Idempotent: counts are set (not added to) from what the scan saw, index keys and deadlines put again.
    const counts = new Map<string, number>([...this.plan.flows.keys()].map((name) => [name, 0]));
    const numbers = context.store<number>(OPEN_INDEX_STORE);
    for (const transaction of open) {
      const flow = this.plan.flows.get(transaction.flow);
      if (!flow) continue;
      this.keepOpen(context, transaction, flow);
      numbers.put(startIndexKey(flow, transaction), 1);
      counts.set(flow.name, (counts.get(flow.name) ?? 0) + 1);
    }
    for (const [name, count] of counts) numbers.put(`${OPEN_COUNT}${name}`, count);
    numbers.put(FORMAT_KEY, TRACKER_FORMAT);
    if (open.length > 0) context.logger.info({ transactions: open.length }, 'sla: scheduled open transactions kept by an earlier version');
  }

  /** Per flow: open transactions (a stored count) and the oldest one's age (the first key of the start index). */
  private snapshot(context: ProcessorContext, now: number): Map<string, FlowSnapshot> {
    const store = context.store<number>(OPEN_INDEX_STORE);
    const snapshot = new Map<string, FlowSnapshot>();
    for (const name of this.plan.flows.keys()) {
      const open = store.get(`${OPEN_COUNT}${name}`) ?? 0;
      let oldestAgeMs = 0;
      if (open > 0) {
        const prefix = `${START_INDEX}${name}:`;
        for (const [indexKey] of store.range(prefix, `${prefix}\uffff`)) {
          oldestAgeMs = Math.max(0, now - Number(indexKey.slice(prefix.length, prefix.length + 15)));
          break;
        }
      }
      snapshot.set(name, { open, oldestAgeMs });
    }
    return snapshot;
  }

  private emit(context: ProcessorContext, flow: FlowPlan, transaction: OpenTransaction, type: SlaEventType, occurredAt: number, milestone?: string): void {
    const value: SlaEvent = {
      flow: flow.name,
      transaction_key: transaction.key,
      event_type: type,
      milestone: milestone ?? null,
      started_at: transaction.started_at,
      occurred_at: occurredAt,
      latency_ms: type === 'started' ? null : Math.max(0, occurredAt - transaction.started_at),
      warn_after_ms: flow.warnAfterMs,
      breach_after_ms: flow.breachAfterMs,
      breach_at: transaction.started_at + flow.breachAfterMs,
      owner: transaction.owner,
      correlation_id: transaction.correlation_id,
    };
    const id = transactionId(flow, transaction.key);
    const event = {
      key: id,
      value,
      headers: {
        // One event of each kind per transaction: a sink can write it idempotently (e.g. one Odoo activity per breach).
        [LIFELINE_HEADERS.idempotencyKey]: `${id}:${type}${milestone === undefined ? '' : `:${milestone}`}`,
        ...(transaction.correlation_id === null ? {} : { [LIFELINE_HEADERS.correlationId]: transaction.correlation_id }),
      },
    };
    context.forward<SlaEvent>(EVENTS_OUTPUT, event);
    if (type === 'breached' && context.hasOutput(BREACHES_OUTPUT)) context.forward<SlaEvent>(BREACHES_OUTPUT, event);
  }
}

function startIndexKey(flow: FlowPlan, transaction: OpenTransaction): string {
  return `${START_INDEX}${flow.name}:${String(Math.max(0, Math.floor(transaction.started_at))).padStart(15, '0')}:${transaction.key}`;
}

/** `<flow>:<transaction key>`: the store key and the event key. Flow names hold no `:`. */
function transactionId(flow: FlowPlan, key: string): string {
  return `${flow.name}:${key}`;
}

function keyText(raw: unknown): string | undefined {
  if (typeof raw === 'string') return raw === '' ? undefined : raw;
  if (typeof raw === 'number' || typeof raw === 'bigint') return String(raw);
  return undefined;
}

/** The event's time: the role's time path (epoch ms, ISO-8601 text or a Date), else the record timestamp. */
function eventTime(record: InputRecord, role: TopicRole): number {
  if (role.timePath === undefined) return record.timestamp;
  const raw = readPath(record.value, role.timePath);
  if (raw === undefined || raw === null) return record.timestamp;
  const time = raw instanceof Date ? raw.getTime() : typeof raw === 'number' ? raw : typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(time)) {
    // The value itself is left out: it could be anything, including PHI.
    throw new Error(`sla: ${role.timePath} of the ${role.flow.name} ${role.kind} event on ${record.topic} is not a time (epoch ms or ISO-8601)`);
  }
  return time;
}

interface FlowSnapshot {
  readonly open: number;
  readonly oldestAgeMs: number;
}

/** Seconds: from sub-second test flows to day-long ones. */
const LATENCY_BUCKETS_SECONDS = [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400];

type FlowLabels = 'component' | 'flow';

/**
 * Per-flow SLA counters and the latency histogram, registered once per registry (every partition
 * task of every sla processor in the process shares them). The open-transaction gauges are the
 * runtime's partition gauges (context.partitionGauge). Labels are the component label and the flow
 * name, both from topology.yaml — never record content. Counts are observed when the work is done,
 * so a transaction that aborts and is retried may count twice.
 */
class SlaMetrics {
  private static readonly byRegistry = new WeakMap<Registry, SlaMetrics>();

  static of(registry: Registry): SlaMetrics {
    let metrics = SlaMetrics.byRegistry.get(registry);
    if (!metrics) {
      metrics = new SlaMetrics(registry);
      SlaMetrics.byRegistry.set(registry, metrics);
    }
    return metrics;
  }

  private readonly latency: Histogram<FlowLabels>;
  private readonly breaches: Counter<FlowLabels>;

  private constructor(registry: Registry) {
    const registers = [registry];
    const labelNames: FlowLabels[] = ['component', 'flow'];
    this.latency = registeredOnce(registry, 'lifeline_sla_latency_seconds', Histogram, () => new Histogram({
      name: 'lifeline_sla_latency_seconds', help: 'Time from start to end of completed transactions, per flow.',
      labelNames, buckets: [...LATENCY_BUCKETS_SECONDS], registers,
    }));
    this.breaches = registeredOnce(registry, 'lifeline_sla_breaches_total', Counter, () => new Counter({
      name: 'lifeline_sla_breaches_total', help: 'Transactions that breached their deadline (open past breach_after, or completed late), per flow.', labelNames, registers,
    }));
  }

  /** Series exist from the start (at 0), so rates and alerts work before the first breach. */
  declareFlows(component: string, flows: readonly string[]): void {
    for (const flow of flows) this.breaches.inc({ component, flow }, 0);
  }

  observeCompletion(component: string, flow: string, latencyMs: number, breachedNow: boolean): void {
    this.latency.observe({ component, flow }, latencyMs / 1000);
    if (breachedNow) this.countBreach(component, flow);
  }

  countBreach(component: string, flow: string): void {
    this.breaches.inc({ component, flow });
  }
}

/** The metric already in the registry (another task, another runtime instance of this module), or a new one. */
function registeredOnce<M>(registry: Registry, name: string, kind: abstract new (...args: never[]) => M, create: () => M): M {
  const existing: unknown = registry.getSingleMetric(name);
  if (existing === undefined) return create();
  if (existing instanceof kind) return existing;
  throw new Error(`metric ${name} is already registered with another type`);
}
