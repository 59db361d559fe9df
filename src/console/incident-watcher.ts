import type { Admin, Consumer, Kafka, Producer } from 'kafkajs';
import { copartitionedAssigner } from '../runtime/copartitioned-assigner.ts';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { ensureTopics } from '../kafka/topic-admin.ts';
import { readTopicRanges, wholeTopicRanges } from '../kafka/topic-reader.ts';
import type { AlertWebhook } from '../ops/alert-webhook.ts';
import { DEFAULT_INCIDENT_POLICY, IncidentTracker, LastingStates, type Incident, type IncidentPolicy, type Signal } from '../ops/incidents.ts';
import type { Topology } from '../topology/model.ts';
import type { ConsoleData, FlowsView, ViewBody } from './console-data.ts';

/** Compacted, keyed `<app_id>/<incident id>`, JSON: every incident's latest state, so a restarted console knows what is open and alerts no second time. */
export const INCIDENTS_TOPIC = '_lifeline.incidents';

export interface IncidentSettings {
  readonly policy: IncidentPolicy;
  /** How often the console looks at the flows and the SLA board. */
  readonly intervalMs: number;
  /** A component further behind than this many records is failing (its lag joins an incident). */
  readonly lagThreshold: number;
  /**
   * A state (Odoo unreachable, a component not running, lag) counts only once it has lasted this
   * long, so a restart or a rolling deploy, where components are `starting` for a few seconds,
   * opens no incident.
   */
  readonly graceMs: number;
  readonly webhook?: AlertWebhook;
}

export const DEFAULT_INCIDENT_SETTINGS: IncidentSettings = Object.freeze({ policy: DEFAULT_INCIDENT_POLICY, intervalMs: 10_000, lagThreshold: 1000, graceMs: 30_000 });

/** An incident's state is written again at most this often while nothing but its timestamps changes. */
const REPUBLISH_MS = 30_000;
/** A console that does not lead reads the incidents the leader wrote at most this often. */
const FOLLOW_MS = 5000;

/**
 * Samples the console's own views (flows: Odoo reachability, components not running, dead letters,
 * lag; the SLA board: breaches) every interval, turns them into PHI-free signals, feeds them to the
 * incident tracker, keeps every incident in `_lifeline.incidents`, and sends one alert when an
 * incident opens and one when it resolves.
 *
 * Several consoles of one app (e.g. one embedded in each `lifeline run`) elect one of them to do
 * this: each joins the consumer group `<app_id>.incidents` on the one-partition incidents topic,
 * and the member that owns the partition leads (the sticky assigner keeps it where it is while its
 * owner lives; Kafka moves it when the owner goes). The others show what the leader wrote.
 */
export class IncidentWatcher {
  readonly tracker: IncidentTracker;
  private timer: NodeJS.Timeout | undefined;
  private producer: Producer | undefined;
  private running: Promise<void> | undefined;
  private previousDeadLetters: Map<string, number> | undefined;
  private previousBreaches: Map<string, number> | undefined;
  private readonly published = new Map<string, number>();
  private readonly states = new LastingStates();
  private readonly deliveries = new Set<Promise<void>>();
  private lastError: string | undefined;
  private lastSampleAt: number | undefined;
  private consumer: Consumer | undefined;
  /** Owns the incidents partition: samples and alerts. */
  private leader = false;
  /** Became the owner; takes over at the next tick (reads what the last leader wrote first). */
  private takingOver = false;
  private followedAt = 0;

  constructor(
    private readonly topology: Topology,
    private readonly kafka: Kafka,
    private readonly admin: () => Promise<Admin>,
    private readonly data: ConsoleData,
    private readonly logger: Logger,
    readonly settings: IncidentSettings = DEFAULT_INCIDENT_SETTINGS,
  ) {
    this.tracker = new IncidentTracker(topology.runtime.appId, settings.policy);
  }

  async start(): Promise<void> {
    const admin = await this.admin();
    const retentionMs = Math.max(this.settings.policy.ttlMs, this.settings.policy.quietMs) + 24 * 3600_000;
    await ensureTopics(admin, [{ name: INCIDENTS_TOPIC, partitions: 1, cleanupPolicy: 'compact,delete', retentionMs }]);
    await this.restore(admin);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    await this.joinElection();
    this.schedule();
  }

  private async joinElection(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: `${this.topology.runtime.appId}.incidents`, sessionTimeout: 10_000, heartbeatInterval: 1000, maxWaitTimeInMs: 1000,
      partitionAssigners: [copartitionedAssigner(() => (this.leader || this.takingOver ? [0] : []))],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (event) => {
      const owns = (event.payload.memberAssignment[INCIDENTS_TOPIC] ?? []).includes(0);
      if (owns && !this.leader) this.takingOver = true;
      if (!owns && (this.leader || this.takingOver)) {
        this.leader = false;
        this.takingOver = false;
        this.logger.info('incidents: another console leads now');
      }
    });
    consumer.on(consumer.events.CRASH, () => {
      this.leader = false;
      this.takingOver = false;
    });
    // Disconnecting a consumer in the middle of its first join leaves a connection open: wait for the join.
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.connect();
    await consumer.subscribe({ topic: INCIDENTS_TOPIC, fromBeginning: false });
    await consumer.run({ autoCommit: false, eachMessage: async () => undefined });
    await joined;
  }

  /** A leader samples; a follower shows what the leader keeps in the topic. */
  private async tick(): Promise<void> {
    if (this.takingOver) {
      this.takingOver = false;
      await this.restore(await this.admin(), true);
      this.previousDeadLetters = undefined;
      this.previousBreaches = undefined;
      this.leader = true;
      this.logger.info('incidents: this console leads (samples and alerts)');
    }
    if (this.leader) {
      await this.sample();
    } else if (Date.now() - this.followedAt >= FOLLOW_MS) {
      this.followedAt = Date.now();
      await this.restore(await this.admin(), true).catch((error: unknown) => this.logger.warn({ err: errorMessage(error) }, `incidents: could not read ${INCIDENTS_TOPIC}`));
    }
  }

  private schedule(): void {
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (this.timer) this.schedule();
      });
    }, this.settings.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    const timer = this.timer;
    this.timer = undefined;
    if (timer) clearTimeout(timer);
    await this.running;
    await Promise.allSettled([...this.deliveries]);
    this.leader = false;
    await this.consumer?.disconnect().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
  }

  /** What the page shows: open incidents first, then the recent resolved ones. */
  view(): { refreshedAt: number; sampledAt: number | null; open: Incident[]; recent: Incident[]; alerting: { leader: boolean; webhook: string | null; quietMs: number; intervalMs: number; lagThreshold: number; lastError: string | null } } {
    const all = this.tracker.list();
    return {
      refreshedAt: Date.now(), sampledAt: this.lastSampleAt ?? null,
      open: all.filter((incident) => incident.status === 'open'),
      recent: all.filter((incident) => incident.status === 'resolved').slice(0, 100),
      alerting: {
        leader: this.leader,
        webhook: this.settings.webhook?.target ?? null, quietMs: this.settings.policy.quietMs, intervalMs: this.settings.intervalMs,
        lagThreshold: this.settings.lagThreshold, lastError: this.lastError ?? null,
      },
    };
  }

  /** One look at the views; exported for tests that do not want to wait for the timer. */
  async sample(now = Date.now()): Promise<void> {
    let signals: Signal[];
    try {
      const [flows, sla] = await Promise.all([this.data.flows(), this.data.sla()]);
      signals = this.states.filter([...this.flowSignals(flows), ...this.slaSignals(sla)], now, this.settings.graceMs);
      this.lastError = undefined;
    } catch (error) {
      // Kafka itself unreachable: nothing can be judged, and nothing resolves on a guess.
      this.lastError = errorMessage(error);
      this.logger.warn({ err: this.lastError }, 'incidents: could not read the views');
      return;
    }
    this.lastSampleAt = now;
    const changes = this.tracker.observe(signals, now);
    for (const incident of changes.opened) {
      this.logger.warn({ incident: incident.id, cause: incident.cause }, `incident opened: ${incident.title}`);
      this.alert(incident, 'opened');
    }
    for (const incident of changes.resolved) {
      this.logger.info({ incident: incident.id, cause: incident.cause }, `incident resolved: ${incident.title}`);
      this.alert(incident, 'resolved');
    }
    const due = [...changes.opened, ...changes.resolved, ...changes.updated.filter((incident) => now - (this.published.get(incident.id) ?? 0) >= REPUBLISH_MS)];
    await this.publish(due, changes.forgotten, now);
  }

  private flowSignals(flows: FlowsView): Signal[] {
    const signals: Signal[] = [];
    const connectedTo = (nodeId: string): string[] => [...new Set(flows.edges.filter((edge) => edge.from === nodeId || edge.to === nodeId).map((edge) => (edge.from === nodeId ? edge.to : edge.from)))].sort();
    const explained = new Set<string>();
    for (const node of flows.nodes.filter((candidate) => candidate.kind === 'external' && candidate.id.startsWith('odoo:') && candidate.health === 'error')) {
      const connection = node.id.slice('odoo:'.length);
      const components = connectedTo(node.id);
      for (const component of components) explained.add(component);
      signals.push({ kind: 'odoo_unreachable', subject: connection, cause: `odoo:${connection}`, components, connections: [connection], count: 1, ...codeOf(node.why) });
    }
    const deadLetters = new Map<string, number>();
    for (const node of flows.nodes.filter((candidate) => candidate.kind !== 'external' && candidate.kind !== 'topic')) {
      deadLetters.set(node.id, node.deadLetters);
      if (node.health === 'error' && !explained.has(node.id)) {
        signals.push({ kind: 'component_down', subject: node.id, cause: `component:${node.id}`, components: [node.id], count: 1, ...codeOf(node.why) });
      }
      if (node.lag > this.settings.lagThreshold) {
        signals.push({ kind: 'lag', subject: node.id, cause: `component:${node.id}`, components: [node.id], count: 1, level: node.lag });
      }
      const before = this.previousDeadLetters?.get(node.id);
      if (before !== undefined && node.deadLetters > before) {
        signals.push({ kind: 'dead_letters', subject: node.id, cause: `component:${node.id}`, components: [node.id], count: node.deadLetters - before });
      }
    }
    this.previousDeadLetters = deadLetters;
    return signals;
  }

  private slaSignals(sla: ViewBody): Signal[] {
    const signals: Signal[] = [];
    const breaches = new Map<string, number>();
    for (const flow of (sla.flows ?? []) as Array<{ flow: string; breachedCount?: number }>) {
      const count = flow.breachedCount ?? 0;
      breaches.set(flow.flow, count);
      const before = this.previousBreaches?.get(flow.flow);
      if (before !== undefined && count > before) {
        signals.push({ kind: 'sla_breach', subject: flow.flow, cause: `sla:${flow.flow}`, components: [], flows: [flow.flow], count: count - before });
      }
    }
    this.previousBreaches = breaches;
    return signals;
  }

  private alert(incident: Incident, kind: 'opened' | 'resolved'): void {
    const webhook = this.settings.webhook;
    if (!webhook) return;
    const delivery = webhook.send(incident, kind === 'opened' ? 'incident.opened' : 'incident.resolved').then(
      () => this.tracker.alerted(incident, kind, Date.now(), true, `sent to ${webhook.target}`),
      (error: unknown) => {
        this.tracker.alerted(incident, kind, Date.now(), false, errorMessage(error));
        this.logger.error({ incident: incident.id, code: 'LL_ALERT_DELIVERY_FAILED', err: errorMessage(error) }, 'incident alert not delivered');
      },
    ).then(() => this.publish([incident], [], Date.now()));
    this.deliveries.add(delivery);
    void delivery.finally(() => this.deliveries.delete(delivery));
  }

  private async publish(incidents: readonly Incident[], forgotten: readonly Incident[], now: number): Promise<void> {
    if (!this.producer || (incidents.length === 0 && forgotten.length === 0)) return;
    const key = (incident: Incident): string => `${incident.appId}/${incident.id}`;
    try {
      await this.producer.send({
        topic: INCIDENTS_TOPIC, acks: -1,
        messages: [
          ...incidents.map((incident) => ({ key: key(incident), value: JSON.stringify(incident) })),
          ...forgotten.map((incident) => ({ key: key(incident), value: null })),
        ],
      });
      for (const incident of incidents) this.published.set(incident.id, now);
      for (const incident of forgotten) this.published.delete(incident.id);
    } catch (error) {
      this.logger.warn({ err: errorMessage(error) }, `incidents: could not write ${INCIDENTS_TOPIC} (kept in memory, written again later)`);
    }
  }

  private async restore(admin: Admin, replace = false): Promise<void> {
    const latest = new Map<string, Incident | null>();
    const prefix = `${this.topology.runtime.appId}/`;
    await readTopicRanges(this.kafka, INCIDENTS_TOPIC, await wholeTopicRanges(admin, INCIDENTS_TOPIC), (message) => {
      const key = message.key?.toString('utf8') ?? '';
      if (!key.startsWith(prefix)) return;
      if (!message.value) {
        latest.set(key, null);
        return;
      }
      try {
        latest.set(key, JSON.parse(message.value.toString('utf8')) as Incident);
      } catch {
        this.logger.warn({ key }, `incidents: a record of ${INCIDENTS_TOPIC} is not JSON; skipped`);
      }
    });
    const restored = [...latest.values()].filter((incident): incident is Incident => incident !== null);
    if (replace) this.tracker.clear();
    this.tracker.restore(restored);
    for (const incident of restored) this.published.set(incident.id, incident.updatedAt);
    if (restored.length > 0 && !replace) this.logger.info({ open: restored.filter((incident) => incident.status === 'open').length, kept: restored.length }, 'incidents restored');
  }
}

function codeOf(why: string): { code?: string } {
  const match = /\bLL_[A-Z_]+\b/.exec(why);
  return match ? { code: match[0] } : {};
}
