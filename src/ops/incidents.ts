import { randomBytes } from 'node:crypto';

/**
 * Incidents: failures grouped by their cause, so one Odoo outage is one incident listing what it
 * affects (its sinks' dead letters, their lag, the SLA breaches it causes), not one alert per flow,
 * partition or record. An incident opens when a failure signal first appears, takes in related
 * signals while it is open, and resolves by itself once none of its signals has been seen for a
 * quiet period. One alert when it opens, one when it resolves.
 *
 * Everything here is PHI-free by construction: a signal names components, Odoo connections, SLA
 * flows and counts, never a record's key or value.
 */

export type SignalKind = 'odoo_unreachable' | 'component_down' | 'dead_letters' | 'lag' | 'sla_breach';

/** One failure observed in one sample. State signals (unreachable, down, lag) are present in every sample while true; count signals (dead letters, breaches) only in samples where new ones appeared. */
export interface Signal {
  readonly kind: SignalKind;
  /** The component label, Odoo connection name or SLA flow the signal is about. */
  readonly subject: string;
  /** What it groups by: `odoo:<connection>`, `component:<label>`, `sla:<flow>`. */
  readonly cause: string;
  readonly components: readonly string[];
  readonly connections?: readonly string[];
  readonly flows?: readonly string[];
  /** New failures this sample (dead letters, breaches); 1 for a state signal's onset. */
  readonly count: number;
  /** The level now, for a lag signal (records behind). */
  readonly level?: number;
  /** A PHI-free error class, e.g. LL_ODOO_UNAVAILABLE. */
  readonly code?: string;
}

export interface IncidentSignal {
  kind: SignalKind;
  subject: string;
  count: number;
  peak: number;
  firstAt: number;
  lastAt: number;
}

export interface Incident {
  id: string;
  appId: string;
  cause: string;
  title: string;
  status: 'open' | 'resolved';
  openedAt: number;
  updatedAt: number;
  lastSignalAt: number;
  resolvedAt: number | null;
  affects: { components: string[]; connections: string[]; flows: string[] };
  /** Failures grouped into it: dead letters and SLA breaches, plus one per state signal's onset. */
  count: number;
  signals: IncidentSignal[];
  timeline: Array<{ at: number; event: string }>;
  alerts: Array<{ kind: 'opened' | 'resolved'; at: number; delivered: boolean; detail: string }>;
}

export interface IncidentPolicy {
  /** An incident resolves when none of its signals has been seen for this long. */
  readonly quietMs: number;
  /** Resolved incidents are forgotten after this long. */
  readonly ttlMs: number;
  /** At most this many incidents are kept (the oldest resolved go first). */
  readonly limit: number;
}

export const DEFAULT_INCIDENT_POLICY: IncidentPolicy = Object.freeze({ quietMs: 120_000, ttlMs: 7 * 24 * 3600_000, limit: 500 });

const TIMELINE_LIMIT = 50;

export interface IncidentChanges {
  readonly opened: Incident[];
  readonly updated: Incident[];
  readonly resolved: Incident[];
  /** Incidents dropped by the TTL or the limit (their record may be deleted). */
  readonly forgotten: Incident[];
}

export class IncidentTracker {
  private readonly incidents = new Map<string, Incident>();

  constructor(readonly appId: string, readonly policy: IncidentPolicy = DEFAULT_INCIDENT_POLICY, private readonly newId: () => string = newIncidentId) {}

  /** Incidents read back (e.g. from the incidents topic after a restart): open ones stay open and alert no second time. */
  restore(incidents: Iterable<Incident>): void {
    for (const incident of incidents) if (incident.appId === this.appId) this.incidents.set(incident.id, incident);
  }

  /** Forgets every incident (a follower reloading what the leader wrote). */
  clear(): void {
    this.incidents.clear();
  }

  list(): Incident[] {
    return [...this.incidents.values()].sort((a, b) => (a.status === b.status ? b.openedAt - a.openedAt : a.status === 'open' ? -1 : 1));
  }

  get(id: string): Incident | undefined {
    return this.incidents.get(id);
  }

  open(): Incident[] {
    return this.list().filter((incident) => incident.status === 'open');
  }

  /**
   * Takes one sample's signals. A signal joins the open incident of its cause; else an open
   * incident that already affects one of its components; an SLA breach joins the oldest open
   * incident of any cause (an outage explains the breaches during it); else it opens a new one.
   */
  observe(signals: readonly Signal[], now: number): IncidentChanges {
    const opened: Incident[] = [];
    const updated = new Set<Incident>();
    const open = (): Incident[] => [...this.incidents.values()].filter((incident) => incident.status === 'open').sort((a, b) => a.openedAt - b.openedAt);
    // Cause-defining signals first, so the breaches and dead letters of one sample find the outage they belong to.
    const ordered = [...signals].sort((a, b) => KIND_ORDER[a.kind] - KIND_ORDER[b.kind]);
    for (const signal of ordered) {
      const candidates = open();
      let incident = candidates.find((candidate) => candidate.cause === signal.cause)
        ?? candidates.find((candidate) => signal.components.some((component) => candidate.affects.components.includes(component)))
        ?? (signal.kind === 'sla_breach' ? candidates.find((candidate) => !candidate.cause.startsWith('sla:')) : undefined);
      if (!incident) {
        incident = {
          id: this.newId(), appId: this.appId, cause: signal.cause, title: '', status: 'open', openedAt: now, updatedAt: now, lastSignalAt: now, resolvedAt: null,
          affects: { components: [], connections: [], flows: [] }, count: 0, signals: [], timeline: [], alerts: [],
        };
        this.incidents.set(incident.id, incident);
        opened.push(incident);
        pushTimeline(incident, now, `opened: ${describeSignal(signal)}`);
      }
      absorb(incident, signal, now);
      incident.title = titleOf(incident);
      if (!opened.includes(incident)) updated.add(incident);
    }
    const resolved: Incident[] = [];
    for (const incident of open()) {
      if (now - incident.lastSignalAt >= this.policy.quietMs) {
        incident.status = 'resolved';
        incident.resolvedAt = now;
        incident.updatedAt = now;
        pushTimeline(incident, now, `resolved: no failure seen for ${Math.round(this.policy.quietMs / 1000)} s`);
        incident.title = titleOf(incident);
        resolved.push(incident);
        updated.delete(incident);
      }
    }
    return { opened, updated: [...updated], resolved, forgotten: this.prune(now) };
  }

  /** Records that an alert went out (or failed) for an incident. */
  alerted(incident: Incident, kind: 'opened' | 'resolved', at: number, delivered: boolean, detail: string): void {
    incident.alerts.push({ kind, at, delivered, detail });
    if (incident.alerts.length > 10) incident.alerts.splice(0, incident.alerts.length - 10);
    pushTimeline(incident, at, `${kind} alert ${delivered ? 'delivered' : 'not delivered'}: ${detail}`);
  }

  private prune(now: number): Incident[] {
    const forgotten: Incident[] = [];
    for (const incident of this.incidents.values()) {
      if (incident.status === 'resolved' && incident.resolvedAt !== null && now - incident.resolvedAt > this.policy.ttlMs) forgotten.push(incident);
    }
    for (const incident of forgotten) this.incidents.delete(incident.id);
    if (this.incidents.size > this.policy.limit) {
      const oldestFirst = [...this.incidents.values()].sort((a, b) => (a.status === b.status ? a.updatedAt - b.updatedAt : a.status === 'resolved' ? -1 : 1));
      for (const incident of oldestFirst.slice(0, this.incidents.size - this.policy.limit)) {
        this.incidents.delete(incident.id);
        forgotten.push(incident);
      }
    }
    return forgotten;
  }
}

/**
 * Passes count signals (dead letters, breaches) as they come and state signals (unreachable, not
 * running, lag) once each has been seen without a break for the grace period: a component
 * `starting` for a few seconds after a deploy is no incident.
 */
export class LastingStates {
  /** Since when each state signal (`kind subject`) has been seen without a break. */
  private readonly since = new Map<string, number>();

  filter(signals: readonly Signal[], now: number, graceMs: number): Signal[] {
    const seen = new Set<string>();
    const kept = signals.filter((signal) => {
      if (isCountSignal(signal.kind)) return true;
      const key = `${signal.kind} ${signal.subject}`;
      seen.add(key);
      const since = this.since.get(key) ?? now;
      this.since.set(key, since);
      return now - since >= graceMs;
    });
    for (const key of this.since.keys()) if (!seen.has(key)) this.since.delete(key);
    return kept;
  }
}

const KIND_ORDER: Readonly<Record<SignalKind, number>> = { odoo_unreachable: 0, component_down: 1, lag: 2, dead_letters: 3, sla_breach: 4 };

function absorb(incident: Incident, signal: Signal, now: number): void {
  const union = (into: string[], values: readonly string[] | undefined): void => {
    for (const value of values ?? []) if (!into.includes(value)) into.push(value);
    into.sort();
  };
  union(incident.affects.components, signal.components);
  union(incident.affects.connections, signal.connections);
  union(incident.affects.flows, signal.flows);
  let known = incident.signals.find((entry) => entry.kind === signal.kind && entry.subject === signal.subject);
  const onset = !known || now - known.lastAt > 2 * 60_000;
  if (!known) {
    // The signal that opened the incident is in its "opened" entry already.
    if (incident.signals.length > 0) pushTimeline(incident, now, `joined: ${describeSignal(signal)}`);
    known = { kind: signal.kind, subject: signal.subject, count: 0, peak: 0, firstAt: now, lastAt: now };
    incident.signals.push(known);
  }
  const counted = isCountSignal(signal.kind) ? signal.count : onset ? 1 : 0;
  known.count += counted;
  known.peak = Math.max(known.peak, signal.level ?? 0);
  known.lastAt = now;
  incident.count += counted;
  incident.lastSignalAt = now;
  incident.updatedAt = now;
}

function isCountSignal(kind: SignalKind): boolean {
  return kind === 'dead_letters' || kind === 'sla_breach';
}

function pushTimeline(incident: Incident, at: number, event: string): void {
  incident.timeline.push({ at, event });
  if (incident.timeline.length > TIMELINE_LIMIT) incident.timeline.splice(1, incident.timeline.length - TIMELINE_LIMIT);
}

export function describeSignal(signal: Signal): string {
  switch (signal.kind) {
    case 'odoo_unreachable': return `Odoo (${signal.subject}) unreachable${signal.code ? ` (${signal.code})` : ''}`;
    case 'component_down': return `${signal.subject} not running${signal.code ? ` (${signal.code})` : ''}`;
    case 'dead_letters': return `${signal.count} new dead letter(s) in ${signal.subject}`;
    case 'lag': return `${signal.subject} ${signal.level ?? 0} records behind`;
    case 'sla_breach': return `${signal.count} new SLA breach(es) in flow ${signal.subject}`;
  }
}

/** A one-line, PHI-free summary: the cause, then what it affects and how much. */
export function titleOf(incident: Incident): string {
  const [kind, subject] = splitCause(incident.cause);
  const head = kind === 'odoo' ? `Odoo (${subject}) unreachable`
    : kind === 'sla' ? `SLA breaches in flow ${subject}`
      : incident.signals.some((signal) => signal.kind === 'component_down' && signal.subject === subject) ? `${subject} not running`
        : `${subject} failing`;
  const total = (kind: SignalKind): number => incident.signals.filter((signal) => signal.kind === kind).reduce((sum, signal) => sum + signal.count, 0);
  const parts = [
    incident.affects.components.length > 0 ? `affects ${incident.affects.components.join(', ')}` : '',
    total('dead_letters') > 0 ? `${total('dead_letters')} dead letter(s)` : '',
    incident.signals.some((signal) => signal.kind === 'lag') ? `lag up to ${Math.max(...incident.signals.filter((signal) => signal.kind === 'lag').map((signal) => signal.peak))}` : '',
    total('sla_breach') > 0 ? `${total('sla_breach')} SLA breach(es)${incident.affects.flows.length > 0 ? ` (${incident.affects.flows.join(', ')})` : ''}` : '',
  ].filter(Boolean);
  return `${incident.status === 'resolved' ? 'Resolved: ' : ''}${head}${parts.length > 0 ? ` — ${parts.join('; ')}` : ''}`;
}

function splitCause(cause: string): [string, string] {
  const at = cause.indexOf(':');
  return at < 0 ? ['component', cause] : [cause.slice(0, at), cause.slice(at + 1)];
}

export function newIncidentId(): string {
  return `inc-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
