import type { Admin, Kafka } from 'kafkajs';
import { LifelineError } from '../errors.ts';
import type { AvroSerde } from '../kafka/avro-serde.ts';
import { readTopicRanges, type PartitionRange } from '../kafka/topic-reader.ts';
import { odooComponents } from '../observe/alerting.ts';
import { PHI_MASK } from '../observe/phi-mask.ts';
import { AuditTrail, type AuditEvent, type AuditFilter } from '../ops/audit-trail.ts';
import { readDeadLetters, readReplayMarkers, type DeadLetter, type DeadLetterFilter } from '../ops/dead-letter-replay.ts';
import { describeGroup, listGroups } from '../ops/group-inspection.ts';
import { topicCatalogue } from '../ops/topic-catalogue.ts';
import { RecordViewer } from '../ops/record-view.ts';
import { subjectsInfo, type SubjectInfo } from '../ops/registry-subjects.ts';
import { withoutCredentials } from '../component/http-url.ts';
import { LIFELINE_HEADERS } from '../component/record-headers.ts';
import type { ProcessStatus } from '../runtime/status-publisher.ts';
import { isSecretKey } from '../topology/config-references.ts';
import { deadLetterTopic, type ComponentDeclaration, type Topology } from '../topology/model.ts';
import type { StatusWatcher } from './status-watcher.ts';

/**
 * What the console shows, read from Kafka each time (with a few seconds' cache so a page of
 * many panels costs one read): the topology, the processes' status topic, consumer group offsets,
 * dead-letter, SLA and audit topics. Everything a person sees is PHI-masked by the topics'
 * contracts and the writer schemas' own marks; secrets in component config are masked by key.
 */
export type Health = 'ok' | 'warn' | 'error' | 'unknown';

/** Every view says when it was read. */
export interface ViewBody {
  readonly refreshedAt: number;
  readonly [field: string]: unknown;
}

export interface FlowNode {
  readonly id: string;
  readonly kind: 'source' | 'processor' | 'sink' | 'topic' | 'external';
  readonly label: string;
  readonly type: string;
  readonly description: string;
  readonly health: Health;
  readonly why: string;
  readonly state: string;
  readonly rateIn: number;
  readonly rateOut: number;
  readonly recordsIn: number;
  readonly recordsOut: number;
  readonly lag: number;
  readonly deadLetters: number;
  readonly lastRecordAt: number | null;
  readonly instances: string[];
}

export interface FlowEdge {
  readonly from: string;
  readonly to: string;
  readonly topic: string;
  readonly health: Health;
  readonly lag: number;
}

export interface FlowsView {
  readonly appId: string;
  readonly refreshedAt: number;
  readonly nodes: FlowNode[];
  readonly edges: FlowEdge[];
  readonly processes: Array<{ instance: string; host: string; pid: number; version: string; at: number; stale: boolean; ready: boolean; components: string[] }>;
}

/** Lag above this many records colours a flow amber (a caught-up transactional reader may show 1 per partition). */
const LAG_WARN = 100;
/** A status older than this many publishing periods is stale: the process is gone or cut off. */
const STALE_PERIODS = 3;
/** Records read per topic at most by the SLA board and Trace (the newest ones). */
const SCAN_LIMIT_PER_TOPIC = 20_000;
const CACHE_MS = 2000;
/** Compatibility levels and version counts change rarely: the registry is asked at most this often. */
const REGISTRY_CACHE_MS = 30_000;
/** How old an answer may be served while a fresh one is read. */
const STALE_MS = 60_000;

/** A record as the message viewer shows it, with exactly one PHI field revealed. */
export interface RevealedField {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: string;
  readonly key: string | null;
  readonly field: string;
  readonly revealed: string[];
  readonly value: unknown;
}

export class ConsoleData {
  private readonly cache = new Map<string, { at: number; value: Promise<unknown>; settled: boolean; refreshing: boolean }>();
  /** Per dead-letter topic: its offsets when counted, and the count (one entry per component: bounded by the topology). */
  private readonly deadLetterCountCache = new Map<string, { signature: string; count: number }>();
  /** Per dead-letter topic of the topology: its offsets when read, and what the fingerprint groups need. */
  private readonly summaryCache = new Map<string, { signature: string; letters: LetterSummary[] }>();
  private registryCache: { at: number; value: Promise<Map<string, SubjectInfo>> } | undefined;

  constructor(
    private readonly topology: Topology,
    private readonly kafka: Kafka,
    private readonly admin: () => Promise<Admin>,
    private readonly serde: AvroSerde,
    private readonly statuses: StatusWatcher,
    private readonly audit: () => Promise<AuditTrail>,
  ) {}

  /**
   * A view read at most every CACHE_MS; within STALE_MS an older answer is served at once while a
   * fresh one is read in the background (stale-while-revalidate), so pages stay fast however big
   * the topics are. Every view carries its `refreshedAt`, so the page says how old it is.
   */
  private cached<T>(key: string, load: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < CACHE_MS) return hit.value as Promise<T>;
    if (hit?.settled && now - hit.at < STALE_MS) {
      if (!hit.refreshing) {
        hit.refreshing = true;
        const next = load();
        next.then(() => this.cache.set(key, { at: Date.now(), value: next, settled: true, refreshing: false }), () => { hit.refreshing = false; });
      }
      return hit.value as Promise<T>;
    }
    const value = load();
    const entry = { at: now, value: value as Promise<unknown>, settled: false, refreshing: false };
    this.cache.set(key, entry);
    value.then(() => { entry.settled = true; }, () => this.cache.delete(key));
    if (this.cache.size > 200) for (const [name, cached] of this.cache) if (now - cached.at >= STALE_MS) this.cache.delete(name);
    return value;
  }

  /** Reads the main views once, so the first person to open the console does not wait for them. */
  warm(): void {
    for (const view of [() => this.flows(), () => this.deadLetterGroups(), () => this.topics(), () => this.groups()]) view().catch(() => undefined);
  }

  invalidate(): void {
    this.cache.clear();
  }

  groupOf(label: string): string {
    return `${this.topology.runtime.appId}.${label}`;
  }

  private writersOf(topic: string): ComponentDeclaration[] {
    return Object.values(this.topology.components).filter((component) => Object.values(component.outputs).includes(topic));
  }

  private readersOf(topic: string): ComponentDeclaration[] {
    return Object.values(this.topology.components).filter((component) => component.inputs.includes(topic));
  }

  /** The Odoo connection a component talks to, if any (`config.connection` of an Odoo connector). */
  private odooOf(component: ComponentDeclaration): string | undefined {
    return [...odooComponents(this.topology)].find(([, labels]) => labels.includes(component.label))?.[0];
  }

  /** The Odoo connections components use (the console loads the topology without their settings: only the names are known). */
  private odooConnections(): Readonly<Record<string, Readonly<Record<string, unknown>>>> {
    return Object.fromEntries([...odooComponents(this.topology).keys()].map((name) => [name, this.topology.connections.odoo?.[name] ?? {}]));
  }

  /**
   * Dead letters per component: records in its dead-letter topic now. Offsets alone overcount
   * (a transactional producer's commit markers take offsets too), so the records are counted, and
   * counted again only when a partition's end moved.
   */
  private async deadLetterCounts(): Promise<Map<string, number>> {
    const admin = await this.admin();
    const existing = new Set(await admin.listTopics());
    const counts = new Map<string, number>();
    await Promise.all(Object.keys(this.topology.components).map(async (label) => {
      const topic = deadLetterTopic(label);
      if (!existing.has(topic)) return;
      const offsets = await admin.fetchTopicOffsets(topic);
      const signature = offsets.map((entry) => `${entry.partition}:${entry.low}-${entry.high}`).sort().join(',');
      const known = this.deadLetterCountCache.get(topic);
      if (known && known.signature === signature) {
        counts.set(label, known.count);
        return;
      }
      let count = 0;
      await readTopicRanges(this.kafka, topic, offsets.map((entry) => ({ partition: entry.partition, from: BigInt(entry.low), to: BigInt(entry.high) })), () => {
        count += 1;
      });
      this.deadLetterCountCache.set(topic, { signature, count });
      counts.set(label, count);
    }));
    return counts;
  }

  /** Lag per component (its consumer group) and per input topic. */
  private async lags(): Promise<Map<string, { total: number; byTopic: Map<string, number> }>> {
    const admin = await this.admin();
    const lags = new Map<string, { total: number; byTopic: Map<string, number> }>();
    // True lag reads the partitions' tails: a few groups at a time, not fifty consumers at once.
    await inBatches(Object.values(this.topology.components).filter((component) => component.kind !== 'source'), 8, async (component) => {
      const description = await describeGroup(admin, this.topology, this.groupOf(component.label), this.kafka);
      const byTopic = new Map<string, number>();
      for (const partition of description.partitions) byTopic.set(partition.topic, (byTopic.get(partition.topic) ?? 0) + Number(partition.lag));
      lags.set(component.label, { total: Number(description.totalLag), byTopic });
    });
    return lags;
  }

  processes(): FlowsView['processes'] {
    const now = Date.now();
    return this.statuses.statuses(this.topology.runtime.appId).map((status) => ({
      instance: status.instance, host: status.host, pid: status.pid, version: status.version, at: status.at,
      stale: now - status.at > STALE_PERIODS * status.interval_ms, ready: status.ready, components: Object.keys(status.components),
    }));
  }

  flows(): Promise<FlowsView> {
    return this.cached('flows', async () => {
      const [deadLetters, lags] = await Promise.all([this.deadLetterCounts(), this.lags()]);
      const now = Date.now();
      const live = this.statuses.statuses(this.topology.runtime.appId).filter((status) => now - status.at <= STALE_PERIODS * status.interval_ms);
      const nodes: FlowNode[] = [];
      const edges: FlowEdge[] = [];
      for (const component of Object.values(this.topology.components)) {
        const hosting = live.filter((status) => status.components[component.label]);
        const parts = hosting.map((status) => status.components[component.label] as ProcessStatus['components'][string]);
        const lag = lags.get(component.label)?.total ?? 0;
        const dead = deadLetters.get(component.label) ?? 0;
        const states = [...new Set(parts.map((part) => part.state))];
        const notRunning = parts.filter((part) => part.state !== 'running');
        let health: Health = 'ok';
        let why = 'running';
        if (parts.length === 0) {
          health = 'unknown';
          why = 'no running process reports this component';
        } else if (notRunning.length > 0) {
          health = 'error';
          why = notRunning.map((part) => `${part.state}${part.detail ? `: ${part.detail}` : ''}`).join('; ');
        } else if (dead > 0 || lag > LAG_WARN) {
          health = 'warn';
          why = [dead > 0 ? `${dead} dead letter(s)` : '', lag > LAG_WARN ? `${lag} records behind` : ''].filter(Boolean).join(', ');
        }
        const lastRecord = Math.max(0, ...parts.map((part) => part.last_record_at ?? 0));
        nodes.push({
          id: component.label, kind: component.kind, label: component.label, type: component.type, description: component.description ?? '',
          health, why, state: states.join(', ') || 'not running',
          rateIn: sum(parts.map((part) => part.rate_in)), rateOut: sum(parts.map((part) => part.rate_out)),
          recordsIn: sum(parts.map((part) => part.records_in)), recordsOut: sum(parts.map((part) => part.records_out)),
          lag, deadLetters: dead, lastRecordAt: lastRecord > 0 ? lastRecord : null, instances: hosting.map((status) => status.instance),
        });
      }
      const topicNode = (topic: string, why: string): string => {
        const id = `topic:${topic}`;
        if (!nodes.some((node) => node.id === id)) {
          nodes.push({
            id, kind: 'topic', label: topic, type: 'topic', description: this.topology.topics[topic]?.description ?? why, health: 'ok', why,
            state: why, rateIn: 0, rateOut: 0, recordsIn: 0, recordsOut: 0, lag: 0, deadLetters: 0, lastRecordAt: null, instances: [],
          });
        }
        return id;
      };
      for (const topic of Object.keys(this.topology.topics)) {
        const writers = this.writersOf(topic);
        const readers = this.readersOf(topic);
        const from = writers.length > 0 ? writers.map((writer) => writer.label) : readers.length > 0 ? [topicNode(topic, 'written outside this topology')] : [];
        const to = readers.length > 0 ? readers.map((reader) => reader.label) : writers.length > 0 ? [topicNode(topic, 'for subscribers')] : [];
        for (const source of from) {
          for (const target of to) {
            const lag = lags.get(target)?.byTopic.get(topic) ?? 0;
            edges.push({ from: source, to: target, topic, lag, health: lag > LAG_WARN ? 'warn' : 'ok' });
          }
        }
      }
      for (const [name] of Object.entries(this.odooConnections())) {
        const connected = Object.values(this.topology.components).filter((component) => this.odooOf(component) === name);
        if (connected.length === 0) continue;
        const id = `odoo:${name}`;
        const componentNodes = nodes.filter((node) => connected.some((component) => component.label === node.id));
        const unreachable = componentNodes.filter((node) => node.health === 'error');
        const reporting = componentNodes.filter((node) => node.health !== 'unknown');
        nodes.push({
          id, kind: 'external', label: `Odoo (${name})`, type: 'odoo', description: String(this.odooConnections()[name]?.url ?? ''),
          health: reporting.length === 0 ? 'unknown' : unreachable.length > 0 ? 'error' : 'ok',
          why: reporting.length === 0 ? 'no running connector reports on it' : unreachable.length > 0 ? `unreachable for ${unreachable.map((node) => node.id).join(', ')}: ${unreachable[0]?.why ?? ''}` : 'reachable',
          state: unreachable.length > 0 ? 'unreachable' : 'reachable', rateIn: 0, rateOut: 0, recordsIn: 0, recordsOut: 0, lag: 0, deadLetters: 0, lastRecordAt: null, instances: [],
        });
        for (const component of connected) {
          const node = nodes.find((candidate) => candidate.id === component.label);
          const health: Health = node?.health === 'error' ? 'error' : 'ok';
          if (component.kind === 'source') edges.push({ from: id, to: component.label, topic: '', lag: 0, health });
          else edges.push({ from: component.label, to: id, topic: '', lag: 0, health });
        }
      }
      return { appId: this.topology.runtime.appId, refreshedAt: Date.now(), nodes, edges, processes: this.processes() };
    });
  }

  /** One component: declaration with secrets masked, partitions and owners, processes, rates over time. */
  async node(label: string): Promise<ViewBody | undefined> {
    if (!this.topology.components[label]) return undefined;
    return this.cached(`node\u0000${label}`, () => this.readNode(label));
  }

  private async readNode(label: string): Promise<ViewBody> {
    const component = this.topology.components[label] as ComponentDeclaration;
    const admin = await this.admin();
    const flows = await this.flows();
    const node = flows.nodes.find((candidate) => candidate.id === label);
    const group = component.kind === 'source' ? null : await describeGroup(admin, this.topology, this.groupOf(label), this.kafka);
    const now = Date.now();
    return {
      refreshedAt: now,
      node,
      declaration: {
        label, kind: component.kind, type: component.type, description: component.description ?? '', position: component.position,
        inputs: component.inputs, outputs: component.outputs, onError: component.onError, guarantee: component.guarantee,
        config: maskSecrets(component.config), deadLetterTopic: deadLetterTopic(label),
      },
      group: group && {
        group: group.group, state: group.state,
        members: group.memberList.map((member) => ({ memberId: member.memberId, clientId: member.clientId, host: member.host, assignment: member.assignment })),
        partitions: group.partitions, totalLag: group.totalLag,
      },
      processes: this.statuses.statuses(this.topology.runtime.appId).filter((status) => status.components[label]).map((status) => ({
        instance: status.instance, host: status.host, at: status.at, ...status.components[label],
      })),
      rates: { lastHour: this.statuses.rateHistory(this.topology.runtime.appId, label, now - 3600_000) },
    };
  }

  /** The topology's consumer groups, each with lag per partition and the member owning it. */
  groups(): Promise<ViewBody> {
    return this.cached('groups', async () => {
      const admin = await this.admin();
      const groups = await listGroups(admin, this.topology);
      const described: Array<Record<string, unknown>> = [];
      await inBatches(groups.slice(0, 200), 8, async (group) => {
        const description = await describeGroup(admin, this.topology, group.group, this.kafka);
        described.push({
          group: group.group, state: description.state, component: description.component, totalLag: description.totalLag,
          members: description.memberList.map((member) => ({ memberId: member.memberId, clientId: member.clientId, host: member.host })),
          partitions: description.partitions,
        });
      });
      described.sort((a, b) => String(a.group).localeCompare(String(b.group)));
      return { refreshedAt: Date.now(), groups: described };
    });
  }

  // ---- SLA board -------------------------------------------------------------------------------

  private slaTopics(): string[] {
    return Object.values(this.topology.topics).filter((topic) => topic.contract.fullName === 'lifeline.ops.SlaEvent').map((topic) => topic.name);
  }

  /** The newest `limit` records of a topic, split evenly over its partitions. */
  private async recentRanges(topic: string, limit = SCAN_LIMIT_PER_TOPIC): Promise<PartitionRange[]> {
    const admin = await this.admin();
    const offsets = await admin.fetchTopicOffsets(topic);
    const each = BigInt(Math.max(1, Math.floor(limit / Math.max(1, offsets.length))));
    return offsets.map((entry) => {
      const low = BigInt(entry.low);
      const high = BigInt(entry.high);
      return { partition: entry.partition, from: high - each > low ? high - each : low, to: high };
    });
  }

  private async existingTopics(): Promise<Set<string>> {
    return new Set(await (await this.admin()).listTopics());
  }

  sla(): Promise<ViewBody> {
    return this.cached('sla', async () => {
      const existing = await this.existingTopics();
      const latest = new Map<string, SlaEventValue>();
      for (const topic of this.slaTopics().filter((name) => existing.has(name))) {
        await readTopicRanges(this.kafka, topic, await this.recentRanges(topic), async (message) => {
          if (!message.value) return;
          const event = (await this.serde.decode<SlaEventValue>(message.value)).value;
          const key = `${event.flow}:${event.transaction_key}`;
          const before = latest.get(key);
          if (!before || laterSla(event, before)) latest.set(key, event);
        });
      }
      const now = Date.now();
      const flows = new Map<string, { flow: string; open: Record<string, number>; warned: unknown[]; breached: unknown[]; completed: number; completedLate: number; breachAgeing: Record<string, number> }>();
      for (const event of latest.values()) {
        let flow = flows.get(event.flow);
        if (!flow) {
          flow = { flow: event.flow, open: Object.fromEntries(AGE_BUCKETS.map((bucket) => [bucket.name, 0])), warned: [], breached: [], completed: 0, completedLate: 0, breachAgeing: Object.fromEntries(AGE_BUCKETS.map((bucket) => [bucket.name, 0])) };
          flows.set(event.flow, flow);
        }
        const age = now - Number(event.started_at);
        const item = {
          transactionKey: event.transaction_key, owner: event.owner ?? null, startedAt: Number(event.started_at), ageMs: age,
          breachAt: Number(event.breach_at), state: event.event_type, correlationId: event.correlation_id ?? null,
        };
        if (event.event_type === 'completed') flow.completed += 1;
        else if (event.event_type === 'completed_late') flow.completedLate += 1;
        else {
          const bucket = ageBucket(age);
          flow.open[bucket] = (flow.open[bucket] ?? 0) + 1;
          if (event.event_type === 'warning') flow.warned.push(item);
          if (event.event_type === 'breached') {
            flow.breached.push(item);
            const open = ageBucket(now - Number(event.breach_at));
            flow.breachAgeing[open] = (flow.breachAgeing[open] ?? 0) + 1;
          }
        }
      }
      const byAge = (a: unknown, b: unknown): number => (b as { ageMs: number }).ageMs - (a as { ageMs: number }).ageMs;
      return {
        refreshedAt: now, topics: this.slaTopics(), buckets: AGE_BUCKETS.map((bucket) => bucket.name),
        flows: [...flows.values()].map((flow) => ({ ...flow, warned: flow.warned.sort(byAge).slice(0, 200), breached: flow.breached.sort(byAge).slice(0, 200), warnedCount: flow.warned.length, breachedCount: flow.breached.length })),
      };
    });
  }

  // ---- Trace -----------------------------------------------------------------------------------

  /**
   * Every record of the business transaction `key` across the topology's topics, SLA and
   * dead-letter topics: matched by record key (or `<flow>:<key>`), idempotency key or correlation
   * id, in time order with the time spent since the previous hop. Values are PHI-masked.
   */
  trace(key: string): Promise<ViewBody> {
    return this.cached(`trace\u0000${key}`, async () => {
      const existing = await this.existingTopics();
      const topics = [
        ...Object.keys(this.topology.topics),
        ...Object.keys(this.topology.components).map(deadLetterTopic),
      ].filter((topic) => existing.has(topic));
      const viewer = new RecordViewer(this.serde, (topic) => this.phiPathsOf(topic), false);
      const hops: Array<Record<string, unknown> & { at: number }> = [];
      const correlationIds = new Set<string>();
      const matches = (recordKey: string | null, headers: Record<string, string>): boolean =>
        recordKey === key || (recordKey?.endsWith(`:${key}`) ?? false)
        || headers[LIFELINE_HEADERS.idempotencyKey] === key || headers[LIFELINE_HEADERS.correlationId] === key;
      await inBatches(topics, 4, async (topic) => {
        await readTopicRanges(this.kafka, topic, await this.recentRanges(topic), async (message, partition) => {
          const recordKey = message.key?.toString('utf8') ?? null;
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = (Array.isArray(value) ? value[value.length - 1] : value)?.toString() ?? '';
          if (!matches(recordKey, headers)) return;
          if (hops.length >= 500) return false;
          const view = await viewer.view(this.originOf(topic, headers), partition, message);
          const correlation = headers[LIFELINE_HEADERS.correlationId];
          if (correlation) correlationIds.add(correlation);
          hops.push({
            at: Number(message.timestamp), topic, partition, offset: message.offset, key: recordKey,
            stage: this.stageOf(topic, view.value), writtenBy: this.writersOf(topic).map((writer) => writer.label),
            headers: pickHeaders(headers), value: view.value ?? null, ...(view.error ? { error: view.error } : {}),
            odoo: odooLink(view.value, this.topology),
          });
        });
      });
      hops.sort((a, b) => a.at - b.at);
      let previous: number | undefined;
      const timed = hops.map((hop) => {
        const spentMs = previous === undefined ? 0 : hop.at - previous;
        previous = hop.at;
        return { ...hop, spentMs };
      });
      return { refreshedAt: Date.now(), key, searched: topics.length, correlationIds: [...correlationIds], hops: timed };
    });
  }

  /** A dead letter's value is masked by its origin topic's contract. */
  private originOf(topic: string, headers: Record<string, string>): string {
    return /^ops\.dlq\..+\.v1$/.test(topic) ? (headers['lifeline.origin.topic'] ?? topic) : topic;
  }

  phiPathsOf(topic: string): readonly string[] {
    return this.topology.topics[topic]?.contract.phiPaths ?? [];
  }

  private stageOf(topic: string, value: unknown): string {
    if (/^ops\.dlq\./.test(topic)) return 'dead-lettered';
    if (this.topology.topics[topic]?.contract.fullName === 'lifeline.ops.SlaEvent') {
      const type = (value as { event_type?: string } | null)?.event_type;
      return `sla ${type ?? 'event'}`;
    }
    const writers = this.writersOf(topic);
    const writer = writers[0];
    if (!writer) return 'received';
    if (writer.kind === 'source') return 'received';
    if (writer.kind === 'sink') return 'written to Odoo';
    if (writer.type === 'dedup') return 'deduplicated';
    if (writer.type === 'enrich') return 'enriched';
    return `${writer.type} output`;
  }

  // ---- Dead letters ----------------------------------------------------------------------------

  private deadLetterTopics(existing: Set<string>): Array<{ topic: string; component: string }> {
    return Object.keys(this.topology.components).map((label) => ({ topic: deadLetterTopic(label), component: label })).filter((entry) => existing.has(entry.topic));
  }

  /** Dead letters grouped by error fingerprint: component + error code + normalised message. */
  deadLetterGroups(): Promise<ViewBody> {
    return this.cached('dlq-groups', async () => {
      const admin = await this.admin();
      const existing = await this.existingTopics();
      const markers = await readReplayMarkers(this.kafka, admin);
      const groups = new Map<string, { fingerprint: string; component: string; topic: string; errorClass: string; message: string; count: number; replayed: number; firstSeen: number; lastSeen: number; originTopics: string[] }>();
      const totals: Array<{ component: string; topic: string; count: number; replayed: number }> = [];
      for (const { topic, component } of this.deadLetterTopics(existing)) {
        const letters = await this.letterSummaries(topic);
        totals.push({ component, topic, count: letters.length, replayed: letters.filter((letter) => markers.has(letter.position)).length });
        for (const letter of letters) {
          const fingerprint = `${component}|${letter.errorClass}|${letter.message}`;
          const group = groups.get(fingerprint) ?? { fingerprint, component, topic, errorClass: letter.errorClass, message: letter.message, count: 0, replayed: 0, firstSeen: letter.failedAt, lastSeen: letter.failedAt, originTopics: [] };
          group.count += 1;
          if (markers.has(letter.position)) group.replayed += 1;
          group.firstSeen = Math.min(group.firstSeen, letter.failedAt);
          group.lastSeen = Math.max(group.lastSeen, letter.failedAt);
          if (!group.originTopics.includes(letter.originTopic)) group.originTopics.push(letter.originTopic);
          groups.set(fingerprint, group);
        }
      }
      return { refreshedAt: Date.now(), components: totals, groups: [...groups.values()].sort((a, b) => b.lastSeen - a.lastSeen) };
    });
  }

  /**
   * What the fingerprint groups need of each dead letter of a topic, read again only when the
   * topic's offsets moved (dead letters are only ever appended), at most MAX_SUMMARIES per topic.
   */
  private async letterSummaries(topic: string): Promise<LetterSummary[]> {
    const admin = await this.admin();
    const offsets = await admin.fetchTopicOffsets(topic);
    const signature = offsets.map((entry) => `${entry.partition}:${entry.low}-${entry.high}`).sort().join(',');
    const known = this.summaryCache.get(topic);
    if (known && known.signature === signature) return known.letters;
    const letters = (await readDeadLetters(this.kafka, admin, topic)).slice(-MAX_SUMMARIES).map((letter) => ({
      position: letter.position, errorClass: letter.errorClass, message: normaliseMessage(letter.errorMessage), failedAt: letter.failedAt, originTopic: letter.origin.topic,
    }));
    this.summaryCache.set(topic, { signature, letters });
    return letters;
  }

  /** A component's dead letters, PHI masked, newest first, at most `limit`. */
  deadLetters(component: string, filter: DeadLetterFilter, limit: number): Promise<ViewBody> {
    return this.cached(`dlq\u0000${component}\u0000${JSON.stringify(filter)}\u0000${limit}`, () => this.readDeadLetterView(component, filter, limit));
  }

  private async readDeadLetterView(component: string, filter: DeadLetterFilter, limit: number): Promise<ViewBody> {
    const admin = await this.admin();
    const topic = deadLetterTopic(component);
    const [letters, markers] = await Promise.all([readDeadLetters(this.kafka, admin, topic, filter), readReplayMarkers(this.kafka, admin)]);
    const viewer = new RecordViewer(this.serde, (origin) => this.phiPathsOf(origin), false);
    const shown = letters.slice(-limit).reverse();
    const records = [];
    for (const letter of shown) {
      const decoded = letter.value === null ? { value: null } : await viewer.valueView(letter.origin.topic, letter.value);
      records.push({
        ...describeLetter(letter), fingerprint: `${component}|${letter.errorClass}|${normaliseMessage(letter.errorMessage)}`,
        replayed: markers.get(letter.position) ?? null,
        ...(decoded.error !== undefined ? { valueError: decoded.error } : { value: decoded.value ?? null }),
      });
    }
    return { refreshedAt: Date.now(), component, topic, total: letters.length, records };
  }

  /** One dead letter with PHI unmasked: only for the reveal route, which checks the role and audits first. */
  async revealDeadLetter(topic: string, partition: number, offset: bigint): Promise<Record<string, unknown> | undefined> {
    const admin = await this.admin();
    const bounds = (await admin.fetchTopicOffsets(topic)).find((entry) => entry.partition === partition);
    if (!bounds || offset < BigInt(bounds.low) || offset >= BigInt(bounds.high)) return undefined;
    const viewer = new RecordViewer(this.serde, (origin) => this.phiPathsOf(origin), true);
    let found: Record<string, unknown> | undefined;
    await readTopicRanges(this.kafka, topic, [{ partition, from: offset, to: offset + 1n }], async (message) => {
      if (BigInt(message.offset) !== offset) return;
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) if (value !== undefined) headers[name] = (Array.isArray(value) ? value[value.length - 1] : value)?.toString() ?? '';
      const origin = headers['lifeline.origin.topic'] ?? topic;
      const decoded = message.value === null ? { value: null } : await viewer.valueView(origin, message.value);
      found = { key: message.key?.toString('utf8') ?? null, origin, ...(decoded.error !== undefined ? { valueError: decoded.error } : { value: decoded.value ?? null }) };
      return false;
    });
    return found;
  }

  /** One record of a declared topic with one PHI field revealed (the caller audits first). */
  async revealRecordField(topic: string, partition: number, offset: bigint, field: string): Promise<RevealedField | undefined> {
    if (!this.topology.topics[topic]) throw new LifelineError('LL_CONFIG_INVALID', `${topic} is not a topic of ${this.topology.file}`);
    const admin = await this.admin();
    const bounds = (await admin.fetchTopicOffsets(topic)).find((entry) => entry.partition === partition);
    if (!bounds || offset < BigInt(bounds.low) || offset >= BigInt(bounds.high)) return undefined;
    const viewer = new RecordViewer(this.serde, (name) => this.phiPathsOf(name), false);
    let found: RevealedField | undefined;
    let failure: unknown;
    await readTopicRanges(this.kafka, topic, [{ partition, from: offset, to: offset + 1n }], async (message) => {
      if (BigInt(message.offset) !== offset) return;
      try {
        if (message.value === null) throw new LifelineError('LL_CONFIG_INVALID', `${topic}/${partition}@${offset} is a tombstone: nothing to reveal`);
        const revealed = await viewer.revealField(topic, message.value, field);
        found = {
          topic, partition, offset: message.offset, timestamp: new Date(Number(message.timestamp)).toISOString(), key: message.key?.toString('utf8') ?? null,
          field, revealed: [field], value: revealed.value,
        };
      } catch (error) {
        // Thrown from the reader's callback it would be the reader's failure; it is the request's.
        failure = error;
      }
      return false;
    });
    if (failure) throw failure;
    return found;
  }

  // ---- Topics and schemas ----------------------------------------------------------------------

  topics(): Promise<ViewBody> {
    return this.cached('topics', async () => {
      const [entries, registry] = await Promise.all([topicCatalogue(this.topology, await this.admin()), this.registryInfo()]);
      return {
        refreshedAt: Date.now(),
        topics: entries.map((entry) => ({
          ...entry, fields: schemaFields(this.topology.topics[entry.name]?.contract.json, entry.phiFields),
          registry: registry.get(entry.name) ?? null,
        })),
      };
    });
  }

  /** Each declared topic's subject in the registry (compatibility, versions), asked at most every REGISTRY_CACHE_MS. */
  private registryInfo(): Promise<Map<string, SubjectInfo>> {
    const now = Date.now();
    if (!this.registryCache || now - this.registryCache.at > REGISTRY_CACHE_MS) {
      const value = subjectsInfo(this.topology.registry, Object.keys(this.topology.topics));
      this.registryCache = { at: now, value };
      value.catch(() => { this.registryCache = undefined; });
    }
    return this.registryCache.value;
  }

  /**
   * The newest records of a declared topic, PHI masked, filtered by key, header, time range and
   * the value of a field that is not PHI (a filter on a PHI field would tell whether a patient's
   * value is there: refused).
   */
  async messages(topic: string, filter: { key?: string; header?: string; headerValue?: string; since?: number; until?: number; field?: string; value?: string }, limit: number, scan: number): Promise<ViewBody> {
    const declared = this.topology.topics[topic];
    if (!declared) throw new LifelineError('LL_CONFIG_INVALID', `${topic} is not a topic of ${this.topology.file}`);
    if (filter.field && declared.contract.phiPaths.some((path) => path === filter.field || filter.field?.startsWith(`${path}.`) || path.startsWith(`${filter.field}.`))) {
      throw new LifelineError('LL_CONFIG_INVALID', `${filter.field} holds PHI: records cannot be searched by it in the console`);
    }
    const existing = await this.existingTopics();
    if (!existing.has(topic)) return { refreshedAt: Date.now(), topic, scanned: 0, records: [] };
    const viewer = new RecordViewer(this.serde, (name) => this.phiPathsOf(name), false);
    const records: Array<Record<string, unknown> & { at: number }> = [];
    let scanned = 0;
    await readTopicRanges(this.kafka, topic, await this.recentRanges(topic, scan), async (message, partition) => {
      scanned += 1;
      const at = Number(message.timestamp);
      if (filter.since !== undefined && at < filter.since) return;
      if (filter.until !== undefined && at > filter.until) return;
      const key = message.key?.toString('utf8') ?? null;
      if (filter.key !== undefined && key !== filter.key) return;
      const view = await viewer.view(topic, partition, message);
      if (filter.header && view.headers[filter.header] !== (filter.headerValue ?? view.headers[filter.header])) return;
      if (filter.header && view.headers[filter.header] === undefined) return;
      if (filter.field && String(readField(view.value, filter.field)) !== filter.value) return;
      records.push({ at, ...view });
    });
    records.sort((a, b) => b.at - a.at);
    return { refreshedAt: Date.now(), topic, scanned, records: records.slice(0, limit) };
  }

  // ---- Audit -----------------------------------------------------------------------------------

  async auditEntries(filter: AuditFilter, limit: number): Promise<{ refreshedAt: number; total: number; entries: AuditEvent[] }> {
    const entries = await (await this.audit()).list(filter);
    return { refreshedAt: Date.now(), total: entries.length, entries: entries.slice(-limit).reverse() };
  }
}

interface LetterSummary {
  readonly position: string;
  readonly errorClass: string;
  readonly message: string;
  readonly failedAt: number;
  readonly originTopic: string;
}

/** Dead letters per topic the fingerprint view keeps in memory at most (the newest). */
const MAX_SUMMARIES = 100_000;

interface SlaEventValue {
  flow: string;
  transaction_key: string;
  event_type: 'started' | 'milestone' | 'warning' | 'breached' | 'completed' | 'completed_late';
  started_at: number | bigint;
  occurred_at: number | bigint;
  breach_at: number | bigint;
  owner: string | null;
  correlation_id: string | null;
}

const SLA_ORDER = ['started', 'milestone', 'warning', 'breached', 'completed', 'completed_late'];

function laterSla(event: SlaEventValue, before: SlaEventValue): boolean {
  const rank = (candidate: SlaEventValue): number => (candidate.event_type.startsWith('completed') ? 10 : SLA_ORDER.indexOf(candidate.event_type));
  if (rank(event) !== rank(before)) return rank(event) > rank(before);
  return Number(event.occurred_at) >= Number(before.occurred_at);
}

export const AGE_BUCKETS = [
  { name: '< 5m', below: 5 * 60_000 },
  { name: '5-15m', below: 15 * 60_000 },
  { name: '15m-1h', below: 3600_000 },
  { name: '1-4h', below: 4 * 3600_000 },
  { name: '> 4h', below: Number.POSITIVE_INFINITY },
] as const;

function ageBucket(ageMs: number): string {
  return (AGE_BUCKETS.find((bucket) => ageMs < bucket.below) ?? AGE_BUCKETS[4]).name;
}

/** Error messages differ by ids, numbers and quoted values; the fingerprint keeps what they share. */
export function normaliseMessage(message: string): string {
  return message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<id>')
    .replace(/"[^"]*"|'[^']*'/g, '<value>')
    .replace(/\d+/g, '<n>')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 300);
}

/** Config as shown to people: every value under a secret-bearing key masked, however deep. */
export function maskSecrets(value: unknown, key = ''): unknown {
  if (key && isSecretKey(key)) return value === null || value === undefined || value === '' ? value : '[SECRET]';
  if (Array.isArray(value)) return value.map((element) => maskSecrets(element));
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([name, field]) => [name, maskSecrets(field, name)]));
  return value;
}

function describeLetter(letter: DeadLetter): Record<string, unknown> {
  return {
    deadLetter: letter.position, failedAt: letter.failedAt, errorClass: letter.errorClass, errorMessage: letter.errorMessage,
    component: letter.component, attempts: letter.attempts, replayCount: letter.replayCount, origin: letter.origin, key: letter.key,
    idempotencyKey: letter.headers[LIFELINE_HEADERS.idempotencyKey] ?? null,
  };
}

/** Headers worth showing on a hop (no raw error text beyond the dead-letter message, which is scrubbed when written). */
function pickHeaders(headers: Record<string, string>): Record<string, string> {
  const shown: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (name.startsWith('lifeline.') || name === 'traceparent') shown[name] = value;
  return shown;
}

/** The Odoo record a writeback result names, with a link into Odoo's web client. */
function odooLink(value: unknown, topology: Topology): { model: string; id: number; url: string | null } | null {
  const result = value as { model?: unknown; odoo_id?: unknown } | null;
  if (!result || typeof result.model !== 'string' || typeof result.odoo_id !== 'number') return null;
  const url = Object.values(topology.connections.odoo ?? {})[0]?.url;
  const base = typeof url === 'string' ? withoutCredentials(url) : undefined;
  // The form view by id and model: Odoo 17's web client URL (Odoo 18 redirects it to /odoo/<model>/<id>).
  return { model: result.model, id: result.odoo_id, url: base ? `${base.replace(/\/$/, '')}/web#id=${result.odoo_id}&model=${encodeURIComponent(result.model)}&view_type=form` : null };
}

/** The record's fields for the catalogue, each with its Avro type in short and whether it is PHI. */
function schemaFields(json: unknown, phiPaths: readonly string[], prefix = ''): Array<{ path: string; type: string; phi: boolean; doc: string }> {
  const record = json as { type?: unknown; fields?: Array<{ name: string; type: unknown; doc?: string }> } | undefined;
  if (!record || record.type !== 'record' || !Array.isArray(record.fields)) return [];
  const fields: Array<{ path: string; type: string; phi: boolean; doc: string }> = [];
  for (const field of record.fields) {
    const path = `${prefix}${field.name}`;
    const branches = Array.isArray(field.type) ? field.type : [field.type];
    const nested = branches.find((branch) => (branch as { type?: unknown })?.type === 'record');
    fields.push({ path, type: branches.map(typeName).join(' | '), phi: phiPaths.includes(path), doc: field.doc ?? '' });
    if (nested && fields.length < 500) fields.push(...schemaFields(nested, phiPaths, `${path}.`));
  }
  return fields;
}

function typeName(type: unknown): string {
  if (typeof type === 'string') return type;
  const named = type as { type?: unknown; name?: string; logicalType?: string; items?: unknown };
  if (named.logicalType) return `${String(named.type)} (${named.logicalType})`;
  if (named.type === 'array') return `array<${typeName(named.items)}>`;
  return named.name ?? String(named.type);
}

function readField(value: unknown, path: string): unknown {
  let current = value;
  for (const part of path.split('.')) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

function sum(values: readonly number[]): number {
  return Math.round(values.reduce((total, value) => total + value, 0) * 100) / 100;
}

async function inBatches<T>(items: readonly T[], size: number, run: (item: T) => Promise<void>): Promise<void> {
  for (let start = 0; start < items.length; start += size) await Promise.all(items.slice(start, start + size).map(run));
}

export { PHI_MASK };
