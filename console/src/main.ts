import { html } from 'htm/preact';
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError, api, setCsrfToken, type Flows, type FlowNode, type Session } from './api.ts';
import { NODE_HEIGHT, NODE_WIDTH, layout } from './graph.ts';
import './styles.css';

// ---- routing: every page has its own URL --------------------------------------------------------

function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = (): void => setPath(location.pathname);
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return path;
}

export function navigate(path: string): void {
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

function Link(props: { href: string; children: unknown; testid?: string; className?: string }) {
  return html`<a href=${props.href} class=${props.className ?? ''} data-testid=${props.testid} onClick=${(event: MouseEvent) => {
    if (event.ctrlKey || event.metaKey) return;
    event.preventDefault();
    navigate(props.href);
  }}>${props.children}</a>`;
}

// ---- data loading with "last refreshed" ---------------------------------------------------------

interface Loaded<T> { data: T | undefined; error: string | undefined; refreshedAt: number | undefined; reload: () => void }

function useApi<T extends { refreshedAt?: number }>(path: string | undefined, everyMs = 10_000): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: string | undefined; refreshedAt: number | undefined }>({ data: undefined, error: undefined, refreshedAt: undefined });
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((value) => value + 1), []);
  useEffect(() => {
    if (!path) return undefined;
    let cancelled = false;
    const load = (): void => {
      api.get<T>(path).then(
        (data) => { if (!cancelled) setState({ data, error: undefined, refreshedAt: data.refreshedAt ?? Date.now() }); },
        (error: unknown) => { if (!cancelled) setState((before) => ({ ...before, error: error instanceof Error ? error.message : String(error) })); },
      );
    };
    load();
    const timer = everyMs > 0 ? setInterval(load, everyMs) : undefined;
    return () => {
      cancelled = true;
      if (timer) clearInterval(timer);
    };
  }, [path, tick, everyMs]);
  return { ...state, reload };
}

function Refreshed(props: { at: number | undefined; reload: () => void; error?: string | undefined }) {
  return html`<div class="refreshed">
    <span data-testid="last-refreshed">Last refreshed: ${props.at ? new Date(props.at).toLocaleTimeString() : 'loading…'}</span>
    <button class="small" onClick=${props.reload}>Refresh</button>
    ${props.error ? html`<span class="error" role="alert">${props.error}</span>` : null}
  </div>`;
}

const time = (at: number | null | undefined): string => (at ? new Date(at).toLocaleString() : '—');
const age = (ms: number): string => (ms < 60_000 ? `${Math.round(ms / 1000)}s` : ms < 3600_000 ? `${Math.round(ms / 60_000)}m` : `${(ms / 3600_000).toFixed(1)}h`);
const json = (value: unknown): string => JSON.stringify(value, null, 2);

// ---- Flows --------------------------------------------------------------------------------------

const HEALTH_COLOUR: Record<string, string> = { ok: '#2e7d32', warn: '#ef8f00', error: '#c62828', unknown: '#78909c' };

function FlowGraph(props: { flows: Flows; selected: string | undefined }) {
  const placed = layout(props.flows.nodes, props.flows.edges);
  const byId = new Map(placed.nodes.map((node) => [node.id, node]));
  return html`<svg class="graph" data-testid="flow-graph" width=${placed.width} height=${placed.height} viewBox=${`0 0 ${placed.width} ${placed.height}`} role="img" aria-label="Flow graph">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#607d8b" /></marker></defs>
    ${props.flows.edges.map((edge) => {
      const from = byId.get(edge.from);
      const to = byId.get(edge.to);
      if (!from || !to) return null;
      const x1 = from.x + NODE_WIDTH;
      const y1 = from.y + NODE_HEIGHT / 2;
      const x2 = to.x;
      const y2 = to.y + NODE_HEIGHT / 2;
      const bend = Math.max(30, Math.abs(x2 - x1) / 2);
      return html`<path class="edge" data-testid=${`edge-${edge.from}-${edge.to}`} data-health=${edge.health} d=${`M ${x1} ${y1} C ${x1 + bend} ${y1}, ${x2 - bend} ${y2}, ${x2} ${y2}`}
        stroke=${HEALTH_COLOUR[edge.health]} stroke-width=${edge.lag > 0 ? 3 : 2} fill="none" marker-end="url(#arrow)">
        <title>${edge.topic || 'Odoo'}${edge.lag > 0 ? ` — ${edge.lag} behind` : ''}</title></path>`;
    })}
    ${placed.nodes.map((node) => html`<g class=${`node ${props.selected === node.id ? 'selected' : ''}`} data-testid=${`node-${node.id}`} data-health=${node.health}
        transform=${`translate(${node.x},${node.y})`} onClick=${() => { if (node.kind !== 'topic' && node.kind !== 'external') navigate(`/flows/${encodeURIComponent(node.id)}`); }}>
      <title>${node.why}</title>
      <rect width=${NODE_WIDTH} height=${NODE_HEIGHT} rx="8" fill="#fff" stroke=${HEALTH_COLOUR[node.health]} stroke-width="3" />
      <rect width="8" height=${NODE_HEIGHT} rx="3" fill=${HEALTH_COLOUR[node.health]} />
      <text x="16" y="18" class="node-title">${node.label.length > 26 ? `${node.label.slice(0, 25)}…` : node.label}</text>
      <text x="16" y="34" class="node-meta">${node.kind} · ${node.type}</text>
      ${node.kind === 'topic' || node.kind === 'external'
        ? html`<text x="16" y="52" class="node-meta">${node.state}</text>`
        : html`<text x="16" y="52" class="node-meta">in ${node.rateIn}/s · out ${node.rateOut}/s · lag ${node.lag}</text>
               <text x="16" y="67" class="node-meta" data-testid=${`node-${node.id}-dlq`}>DLQ ${node.deadLetters} · ${node.lastRecordAt ? `last ${new Date(node.lastRecordAt).toLocaleTimeString()}` : 'no records yet'}</text>`}
    </g>`)}
  </svg>`;
}

function Sparkline(props: { points: Array<{ at: number; rateIn: number; rateOut: number }> }) {
  const width = 360;
  const height = 60;
  if (props.points.length < 2) return html`<p class="muted">Not enough samples yet (one every status period while the console runs).</p>`;
  const first = props.points[0]?.at ?? 0;
  const last = props.points[props.points.length - 1]?.at ?? 1;
  const max = Math.max(1, ...props.points.map((point) => Math.max(point.rateIn, point.rateOut)));
  const line = (pick: (point: { rateIn: number; rateOut: number }) => number): string => props.points
    .map((point) => `${((point.at - first) / Math.max(1, last - first)) * width},${height - (pick(point) / max) * (height - 4)}`).join(' ');
  return html`<svg width=${width} height=${height} class="spark" role="img" aria-label="records per second, last hour">
    <polyline points=${line((point) => point.rateIn)} fill="none" stroke="#1565c0" stroke-width="1.5" />
    <polyline points=${line((point) => point.rateOut)} fill="none" stroke="#2e7d32" stroke-width="1.5" />
  </svg><div class="muted">records/s in (blue) and out (green), peak ${max}/s</div>`;
}

interface NodeDetail {
  refreshedAt: number;
  node: FlowNode | undefined;
  declaration: Record<string, unknown> & { config: unknown; inputs: string[]; outputs: Record<string, string>; deadLetterTopic: string };
  group: null | { group: string; state: string; totalLag: string; members: Array<{ memberId: string; clientId: string; host: string }>; partitions: Array<{ topic: string; partition: number; committed: string | null; end: string; lag: string; memberId: string | null }> };
  processes: Array<{ instance: string; host: string; at: number; state: string; detail: string; rate_in: number; rate_out: number }>;
  rates: { lastHour: Array<{ at: number; rateIn: number; rateOut: number }> };
}

function NodePanel(props: { label: string }) {
  const detail = useApi<NodeDetail>(`/api/flows/${encodeURIComponent(props.label)}`, 5000);
  const data = detail.data;
  return html`<section class="panel" data-testid="node-detail">
    <h2>${props.label} <${Link} href="/flows" className="small">close</${Link}></h2>
    <${Refreshed} at=${detail.refreshedAt} reload=${detail.reload} error=${detail.error} />
    ${data ? html`
      <p><span class=${`badge ${data.node?.health ?? 'unknown'}`} data-testid="node-detail-health">${data.node?.health ?? 'unknown'}</span> ${data.node?.why}</p>
      <p>${String(data.declaration.kind)} · ${String(data.declaration.type)} · ${String(data.declaration.description ?? '')}</p>
      <p class="muted">inputs: ${data.declaration.inputs.join(', ') || '—'}; outputs: ${Object.values(data.declaration.outputs).join(', ') || '—'}; dead letters: <${Link} href=${`/dead-letters/${encodeURIComponent(props.label)}`}>${data.declaration.deadLetterTopic}</${Link}></p>
      <h3>Rates, last hour</h3>
      <${Sparkline} points=${data.rates.lastHour} />
      <h3>Processes</h3>
      <table><thead><tr><th>Instance</th><th>State</th><th>In/s</th><th>Out/s</th><th>Reported</th></tr></thead><tbody>
        ${data.processes.map((process) => html`<tr><td>${process.instance}</td><td>${process.state} ${process.detail}</td><td>${process.rate_in}</td><td>${process.rate_out}</td><td>${time(process.at)}</td></tr>`)}
      </tbody></table>
      ${data.group ? html`<h3>Partitions (${data.group.group}, ${data.group.state}, lag ${data.group.totalLag})</h3>
        <table><thead><tr><th>Topic</th><th>Partition</th><th>Committed</th><th>End</th><th>Lag</th><th>Owner</th></tr></thead><tbody>
        ${data.group.partitions.map((partition) => html`<tr><td>${partition.topic}</td><td>${partition.partition}</td><td>${partition.committed ?? '—'}</td><td>${partition.end}</td><td>${partition.lag}</td>
          <td>${data.group?.members.find((member) => member.memberId === partition.memberId)?.clientId ?? '—'} ${data.group?.members.find((member) => member.memberId === partition.memberId)?.host ?? ''}</td></tr>`)}
        </tbody></table>` : null}
      <h3>Config (secrets masked)</h3>
      <pre data-testid="node-config">${json(data.declaration.config)}</pre>` : null}
  </section>`;
}

function FlowsPage(props: { selected: string | undefined }) {
  const flows = useApi<Flows>('/api/flows', 5000);
  return html`<div>
    <h1>Flows ${flows.data ? html`<span class="muted">${flows.data.appId}</span>` : null}</h1>
    <${Refreshed} at=${flows.refreshedAt} reload=${flows.reload} error=${flows.error} />
    <div class="legend">${Object.entries(HEALTH_COLOUR).map(([name, colour]) => html`<span><i style=${`background:${colour}`}></i>${name}</span>`)}</div>
    ${flows.data ? html`<div class="graph-wrap"><${FlowGraph} flows=${flows.data} selected=${props.selected} /></div>
      <h3>Processes</h3>
      <table data-testid="processes"><thead><tr><th>Instance</th><th>Version</th><th>Ready</th><th>Reported</th><th>Components</th></tr></thead><tbody>
        ${flows.data.processes.map((process) => html`<tr class=${process.stale ? 'stale' : ''}><td>${process.instance}</td><td>${process.version}</td><td>${process.ready ? 'yes' : 'no'}</td><td>${time(process.at)}${process.stale ? ' (stale)' : ''}</td><td>${process.components.join(', ')}</td></tr>`)}
      </tbody></table>` : null}
    ${props.selected ? html`<${NodePanel} label=${props.selected} />` : null}
  </div>`;
}

// ---- SLA board ----------------------------------------------------------------------------------

interface SlaItem { transactionKey: string; owner: string | null; ageMs: number; breachAt: number; state: string }
interface Sla { refreshedAt: number; topics: string[]; buckets: string[]; flows: Array<{ flow: string; open: Record<string, number>; warned: SlaItem[]; breached: SlaItem[]; warnedCount: number; breachedCount: number; completed: number; completedLate: number; breachAgeing: Record<string, number> }> }

function SlaTable(props: { items: SlaItem[]; testid: string }) {
  return html`<table data-testid=${props.testid}><thead><tr><th>Business key</th><th>Owner</th><th>Age</th><th>Deadline</th></tr></thead><tbody>
    ${props.items.map((item) => html`<tr><td><${Link} href=${`/trace?key=${encodeURIComponent(item.transactionKey)}`}>${item.transactionKey}</${Link}></td><td>${item.owner ?? '—'}</td><td>${age(item.ageMs)}</td><td>${time(item.breachAt)}</td></tr>`)}
  </tbody></table>`;
}

function SlaPage() {
  const sla = useApi<Sla>('/api/sla', 15_000);
  return html`<div><h1>SLA board</h1>
    <${Refreshed} at=${sla.refreshedAt} reload=${sla.reload} error=${sla.error} />
    ${sla.data && sla.data.flows.length === 0 ? html`<p class="muted">No SLA events in ${sla.data.topics.join(', ') || 'any SLA topic of this topology'}.</p>` : null}
    ${sla.data?.flows.map((flow) => html`<section class="panel" data-testid=${`sla-${flow.flow}`}>
      <h2>${flow.flow}</h2>
      <p>${flow.completed} completed on time · ${flow.completedLate} completed late · ${flow.warnedCount} at risk · ${flow.breachedCount} breached</p>
      <h3>Open by age</h3>
      <div class="buckets">${sla.data?.buckets.map((bucket) => html`<div class="bucket"><b>${flow.open[bucket] ?? 0}</b><span>${bucket}</span></div>`)}</div>
      <h3>At risk (warned)</h3><${SlaTable} items=${flow.warned} testid="sla-warned" />
      <h3>Breached</h3><${SlaTable} items=${flow.breached} testid="sla-breached" />
      <h3>Exception ageing (how long breaches stay open)</h3>
      <div class="buckets">${sla.data?.buckets.map((bucket) => html`<div class="bucket"><b>${flow.breachAgeing[bucket] ?? 0}</b><span>${bucket}</span></div>`)}</div>
    </section>`)}
  </div>`;
}

// ---- Trace --------------------------------------------------------------------------------------

interface Hop { at: number; spentMs: number; topic: string; partition: number; offset: string; stage: string; writtenBy: string[]; key: string | null; value: unknown; error?: string; odoo: { model: string; id: number; url: string | null } | null }

function TracePage() {
  const initial = new URLSearchParams(location.search).get('key') ?? '';
  const [key, setKey] = useState(initial);
  const [query, setQuery] = useState(initial);
  const trace = useApi<{ refreshedAt: number; hops: Hop[]; searched: number }>(query ? `/api/trace?key=${encodeURIComponent(query)}` : undefined, 0);
  return html`<div><h1>Trace</h1>
    <form class="row" onSubmit=${(event: Event) => { event.preventDefault(); history.replaceState(null, '', `/trace?key=${encodeURIComponent(key)}`); setQuery(key); }}>
      <input data-testid="trace-key" placeholder="business key: charge entity key, order number, idempotency key, correlation id" value=${key} onInput=${(event: Event) => setKey((event.target as HTMLInputElement).value)} />
      <button type="submit">Search</button>
    </form>
    ${query ? html`<${Refreshed} at=${trace.refreshedAt} reload=${trace.reload} error=${trace.error} />` : null}
    ${trace.data ? html`<p class="muted">${trace.data.hops.length} hop(s) in ${trace.data.searched} topics</p>
      <ol class="timeline" data-testid="trace-hops">${trace.data.hops.map((hop) => html`<li>
        <div><b data-testid="trace-stage">${hop.stage}</b> <span class="muted">${time(hop.at)} (+${age(hop.spentMs)})</span></div>
        <div class="muted">${hop.topic}/${hop.partition}@${hop.offset}${hop.writtenBy.length ? ` by ${hop.writtenBy.join(', ')}` : ''}</div>
        ${hop.odoo ? html`<div data-testid="trace-odoo">Odoo ${hop.odoo.model} #${hop.odoo.id} ${hop.odoo.url ? html`<a href=${hop.odoo.url} target="_blank" rel="noreferrer">open</a>` : null}</div>` : null}
        <details><summary>record (PHI masked)</summary><pre>${hop.error ?? json(hop.value)}</pre></details>
      </li>`)}</ol>` : null}
  </div>`;
}

// ---- Dead letters and replay ---------------------------------------------------------------------

interface Groups { refreshedAt: number; components: Array<{ component: string; topic: string; count: number; replayed: number }>; groups: Array<{ fingerprint: string; component: string; errorClass: string; message: string; count: number; replayed: number; firstSeen: number; lastSeen: number }> }
interface Letters { refreshedAt: number; topic: string; total: number; records: Array<{ deadLetter: string; failedAt: number; errorClass: string; errorMessage: string; key: string | null; idempotencyKey: string | null; origin: { topic: string }; replayed: unknown; value?: unknown; valueError?: string }> }
interface Plan { id: string; state: string; kind: string; target: string; summary: string; record_count: number; sinks: string[]; affected_components: string[]; planned_by: string; approved_by: string | null; reason: string; result_detail: string; auto_approved: boolean }

function Plans(props: { session: Session; version: number }) {
  const plans = useApi<{ refreshedAt: number; plans: Plan[] }>(`/api/replay-plans?v=${props.version}`, 10_000);
  const [message, setMessage] = useState<string>();
  const decide = async (plan: Plan, verb: 'approve' | 'reject'): Promise<void> => {
    const reason = prompt(`Why ${verb} ${plan.id}?`, verb === 'approve' ? 'cause fixed' : '') ?? '';
    if (!reason) return;
    try {
      const result = await api.post<Plan>(`/api/replay-plans/${plan.id}/${verb}`, { reason });
      setMessage(`${result.id}: ${result.state} ${result.result_detail}`);
    } catch (error) {
      setMessage(error instanceof Error ? error.message : String(error));
    }
    plans.reload();
  };
  const mayApprove = props.session.permissions?.['replay.approve'];
  return html`<section class="panel"><h2>Replay plans</h2>
    <${Refreshed} at=${plans.refreshedAt} reload=${plans.reload} error=${plans.error} />
    ${message ? html`<p class="notice" data-testid="plan-message">${message}</p>` : null}
    <table data-testid="plans"><thead><tr><th>Plan</th><th>State</th><th>What</th><th>Records</th><th>Sinks</th><th>Planned by</th><th>Decided by</th><th></th></tr></thead><tbody>
      ${plans.data?.plans.map((plan) => html`<tr data-testid=${`plan-${plan.id}`}><td>${plan.id}</td><td>${plan.state}${plan.auto_approved ? ' (auto)' : ''}</td><td>${plan.summary}<div class="muted">${plan.result_detail}</div></td><td>${plan.record_count}</td><td>${plan.sinks.join(', ') || '—'}</td><td>${plan.planned_by}: ${plan.reason}</td><td>${plan.approved_by ?? '—'}</td>
        <td>${mayApprove && plan.state === 'planned' && plan.planned_by !== props.session.identity ? html`<button data-testid="approve" onClick=${() => decide(plan, 'approve')}>Approve</button> <button class="secondary" onClick=${() => decide(plan, 'reject')}>Reject</button>` : null}</td></tr>`)}
    </tbody></table></section>`;
}

function DeadLetterComponent(props: { component: string; session: Session }) {
  const letters = useApi<Letters>(`/api/dead-letters/${encodeURIComponent(props.component)}`, 15_000);
  const [errorClass, setErrorClass] = useState('');
  const [impact, setImpact] = useState<{ selection: string; toReplay: number; reaches: { components: string[]; sinks: string[] } }>();
  const [reason, setReason] = useState('');
  const [message, setMessage] = useState<string>();
  const [version, setVersion] = useState(0);
  const filter = errorClass ? { errorClasses: [errorClass] } : {};
  const dryRun = async (): Promise<void> => {
    try {
      setImpact(await api.post(`/api/dead-letters/${encodeURIComponent(props.component)}/dry-run`, filter));
    } catch (error) {
      setMessage(error instanceof Error ? error.message : String(error));
    }
  };
  const plan = async (): Promise<void> => {
    try {
      const result = await api.post<Plan & { threshold: number }>('/api/replay-plans', { component: props.component, reason, ...filter });
      setMessage(result.state === 'planned' ? `${result.id} waits for an approver (${result.record_count} records, threshold ${result.threshold})` : `${result.id}: ${result.state} — ${result.result_detail}`);
      setImpact(undefined);
      setVersion((value) => value + 1);
      letters.reload();
    } catch (error) {
      setMessage(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    }
  };
  const classes = [...new Set(letters.data?.records.map((record) => record.errorClass) ?? [])];
  const [revealed, setRevealed] = useState<Record<string, unknown>>({});
  const reveal = async (position: string): Promise<void> => {
    const why = prompt(`Why reveal the PHI of ${position}? (admin; audited before it is shown)`) ?? '';
    if (!why.trim()) return;
    try {
      const answer = await api.post<{ value?: unknown; valueError?: string }>(`/api/dead-letters/${encodeURIComponent(props.component)}/reveal`, { deadLetter: position, reason: why });
      setRevealed({ ...revealed, [position]: answer.valueError ?? answer.value });
    } catch (error) {
      setMessage(error instanceof Error ? error.message : String(error));
    }
  };
  const mayReveal = props.session.permissions?.['dlq.reveal'];
  return html`<div>
    <h1>Dead letters: ${props.component} <${Link} href="/dead-letters" className="small">all</${Link}></h1>
    <${Refreshed} at=${letters.refreshedAt} reload=${letters.reload} error=${letters.error} />
    ${props.session.permissions?.['replay.plan'] ? html`<section class="panel" data-testid="replay-form"><h2>Replay</h2>
      <div class="row">
        <select value=${errorClass} onChange=${(event: Event) => setErrorClass((event.target as HTMLSelectElement).value)}><option value="">every error class</option>${classes.map((name) => html`<option value=${name}>${name}</option>`)}</select>
        <button data-testid="dry-run" onClick=${dryRun}>Dry run</button>
      </div>
      ${impact ? html`<div class="notice" data-testid="dry-run-result"><b>${impact.toReplay} to replay</b> (${impact.selection}); reaches ${impact.reaches.components.join(', ') || 'no component'}; sinks ${impact.reaches.sinks.join(', ') || 'none'}
        <div class="row"><input data-testid="replay-reason" placeholder="why (goes to the plan and the audit trail)" value=${reason} onInput=${(event: Event) => setReason((event.target as HTMLInputElement).value)} />
        <button data-testid="plan-replay" disabled=${!reason.trim()} onClick=${plan}>Plan replay</button></div></div>` : null}
      ${message ? html`<p class="notice" data-testid="replay-message">${message}</p>` : null}
    </section>` : null}
    ${letters.data ? html`<p class="muted">${letters.data.total} in ${letters.data.topic}</p>
      <table data-testid="dead-letters"><thead><tr><th>Failed</th><th>Error</th><th>Key</th><th>Origin</th><th>Replayed</th><th>Record (PHI masked)</th></tr></thead><tbody>
      ${letters.data.records.map((record) => html`<tr><td>${time(record.failedAt)}</td><td><b>${record.errorClass}</b><div class="muted">${record.errorMessage}</div></td><td>${record.key ?? '—'}<div class="muted">${record.idempotencyKey ?? ''}</div></td><td>${record.origin.topic}</td><td>${record.replayed ? 'yes' : 'no'}</td>
        <td>${record.deadLetter in revealed
          ? html`<div class="error">PHI revealed to you (audited)</div><pre class="record">${json(revealed[record.deadLetter])}</pre>`
          : html`<pre class="record" data-testid="dead-letter-value">${record.valueError ?? json(record.value)}</pre>${mayReveal ? html`<button class="small secondary" onClick=${() => reveal(record.deadLetter)}>Reveal PHI…</button>` : null}`}</td></tr>`)}
      </tbody></table>` : null}
    <${Plans} session=${props.session} version=${version} />
  </div>`;
}

function DeadLettersPage(props: { session: Session }) {
  const groups = useApi<Groups>('/api/dead-letters', 15_000);
  return html`<div><h1>Dead letters</h1>
    <${Refreshed} at=${groups.refreshedAt} reload=${groups.reload} error=${groups.error} />
    <table data-testid="dlq-components"><thead><tr><th>Component</th><th>Topic</th><th>Dead letters</th><th>Replayed</th></tr></thead><tbody>
      ${groups.data?.components.map((row) => html`<tr><td><${Link} href=${`/dead-letters/${encodeURIComponent(row.component)}`} testid=${`dlq-${row.component}`}>${row.component}</${Link}></td><td>${row.topic}</td><td>${row.count}</td><td>${row.replayed}</td></tr>`)}
    </tbody></table>
    <h2>By error fingerprint</h2>
    <table data-testid="dlq-groups"><thead><tr><th>Component</th><th>Error</th><th>Message</th><th>Count</th><th>Replayed</th><th>First seen</th><th>Last seen</th></tr></thead><tbody>
      ${groups.data?.groups.map((group) => html`<tr><td><${Link} href=${`/dead-letters/${encodeURIComponent(group.component)}`}>${group.component}</${Link}></td><td>${group.errorClass}</td><td class="muted">${group.message}</td><td>${group.count}</td><td>${group.replayed}</td><td>${time(group.firstSeen)}</td><td>${time(group.lastSeen)}</td></tr>`)}
    </tbody></table>
    <${Plans} session=${props.session} version=${0} />
  </div>`;
}

// ---- Consumers and offsets ------------------------------------------------------------------------

interface Group { group: string; state: string; component: string | null; totalLag: string; members: Array<{ memberId: string; clientId: string; host: string }>; partitions: Array<{ topic: string; partition: number; committed: string | null; end: string; lag: string; memberId: string | null }> }
interface ResetDryRun { target: string; totalToReprocess: string; partitions: Array<{ topic: string; partition: number; current: string | null; target: string; toReprocess: string; records?: string; recordsExact?: boolean; note?: string }> }

const RESET_KINDS = [['toEarliest', 'to earliest'], ['toLatest', 'to latest'], ['toDatetime', 'to date-time (ISO)'], ['byDuration', 'back by duration (e.g. 2h)'], ['toOffset', 'to offset'], ['shiftBy', 'shift by n']] as const;

function ResetForm(props: { group: string; onPlanned: () => void }) {
  const [kind, setKind] = useState<string>('toDatetime');
  const [value, setValue] = useState('');
  const [reason, setReason] = useState('');
  const [dryRun, setDryRun] = useState<ResetDryRun>();
  const [message, setMessage] = useState<string>();
  const target = (): Record<string, unknown> => (kind === 'toEarliest' || kind === 'toLatest' ? { [kind]: true } : { [kind]: value });
  const run = async (): Promise<void> => {
    try {
      setDryRun(await api.post<ResetDryRun>(`/api/groups/${encodeURIComponent(props.group)}/reset-dry-run`, target()));
      setMessage(undefined);
    } catch (error) {
      setMessage(error instanceof Error ? error.message : String(error));
    }
  };
  const plan = async (): Promise<void> => {
    try {
      const result = await api.post<Plan & { threshold: number }>('/api/replay-plans', { group: props.group, reset: target(), reason });
      setMessage(result.state === 'planned' ? `${result.id} waits for an approver (${result.record_count} records)` : `${result.id}: ${result.state} — ${result.result_detail}`);
      setDryRun(undefined);
      props.onPlanned();
    } catch (error) {
      setMessage(error instanceof Error ? error.message : String(error));
    }
  };
  return html`<div class="panel" data-testid="reset-form"><b>Reset offsets of ${props.group}</b>
    <div class="row"><select value=${kind} onChange=${(event: Event) => setKind((event.target as HTMLSelectElement).value)}>${RESET_KINDS.map(([name, label]) => html`<option value=${name}>${label}</option>`)}</select>
      ${kind === 'toEarliest' || kind === 'toLatest' ? null : html`<input placeholder="value" value=${value} onInput=${(event: Event) => setValue((event.target as HTMLInputElement).value)} />`}
      <button onClick=${run}>Dry run</button></div>
    ${dryRun ? html`<p>${dryRun.target}: ${dryRun.totalToReprocess} record(s) to reprocess</p>
      <table><thead><tr><th>Topic</th><th>Partition</th><th>Current</th><th>Target</th><th>Offsets</th><th>Records to reprocess</th></tr></thead><tbody>
      ${dryRun.partitions.map((row) => html`<tr><td>${row.topic}</td><td>${row.partition}</td><td>${row.current ?? '—'}</td><td>${row.target}</td><td>${row.toReprocess}</td><td>${row.records ?? row.toReprocess}${row.recordsExact === false ? ' (offsets: too long to count)' : ''}${row.note ? ` (${row.note})` : ''}</td></tr>`)}</tbody></table>
      <div class="row"><input placeholder="why (goes to the plan and the audit trail)" value=${reason} onInput=${(event: Event) => setReason((event.target as HTMLInputElement).value)} />
      <button disabled=${!reason.trim()} onClick=${plan}>Plan reset</button></div>` : null}
    ${message ? html`<p class="notice">${message}</p>` : null}
  </div>`;
}

function ConsumersPage(props: { session: Session }) {
  const groups = useApi<{ refreshedAt: number; groups: Group[] }>('/api/groups', 10_000);
  const [resetting, setResetting] = useState<string>();
  const [version, setVersion] = useState(0);
  return html`<div><h1>Consumers and offsets</h1>
    <${Refreshed} at=${groups.refreshedAt} reload=${groups.reload} error=${groups.error} />
    ${groups.data?.groups.map((group) => html`<section class="panel" data-testid=${`group-${group.group}`}>
      <h2>${group.group} <span class="muted">${group.state} · ${group.component ?? 'not a component'} · lag ${group.totalLag}</span>
        ${props.session.permissions?.['replay.plan'] ? html` <button class="small" onClick=${() => setResetting(resetting === group.group ? undefined : group.group)}>Reset offsets…</button>` : null}</h2>
      <table><thead><tr><th>Topic</th><th>Partition</th><th>Committed</th><th>End</th><th>Lag</th><th>Owner</th></tr></thead><tbody>
      ${group.partitions.map((partition) => html`<tr><td>${partition.topic}</td><td>${partition.partition}</td><td>${partition.committed ?? '—'}</td><td>${partition.end}</td><td>${partition.lag}</td><td>${group.members.find((member) => member.memberId === partition.memberId)?.clientId ?? '—'}</td></tr>`)}
      </tbody></table>
      ${resetting === group.group ? html`<${ResetForm} group=${group.group} onPlanned=${() => setVersion((value) => value + 1)} />` : null}
    </section>`)}
    <${Plans} session=${props.session} version=${version} />
  </div>`;
}

// ---- Topics and schemas -------------------------------------------------------------------------

interface TopicEntry { name: string; description: string; owner: string; classification: string; key: string; schema: string; phiFields: string[]; partitions: number; retention: string; writtenBy: string[]; readBy: string[]; reachesSinks: string[]; exists: boolean; messages: string | null; fields: Array<{ path: string; type: string; phi: boolean; doc: string }>; registry: RegistrySubject | null }
interface RegistrySubject { subject: string; registered: boolean; compatibility: string | null; compatibilitySource: 'subject' | 'global' | null; versions: number; latestVersion: number | null; error?: string }

function Compatibility(props: { registry: RegistrySubject | null }) {
  const registry = props.registry;
  if (!registry) return html`<span class="muted">—</span>`;
  if (registry.error) return html`<span class="error" title=${registry.error}>registry unreachable</span>`;
  if (!registry.registered) return html`<span class="muted">not registered</span>`;
  return html`<span data-testid="compatibility">${registry.compatibility ?? '?'}${registry.compatibilitySource === 'global' ? html` <span class="muted">(global)</span>` : ''}</span>`;
}
interface Message { topic: string; partition: number; offset: string; timestamp: string; key: string | null; headers: Record<string, string>; value?: unknown; error?: string }

function TopicsPage() {
  const topics = useApi<{ refreshedAt: number; topics: TopicEntry[] }>('/api/topics', 30_000);
  return html`<div><h1>Topics and schemas</h1>
    <${Refreshed} at=${topics.refreshedAt} reload=${topics.reload} error=${topics.error} />
    <table data-testid="topics"><thead><tr><th>Topic</th><th>Owner</th><th>Classification</th><th>Schema</th><th>Compatibility</th><th>Versions</th><th>PHI fields</th><th>Partitions</th><th>Retention</th><th>Messages</th><th>Written by</th><th>Read by</th></tr></thead><tbody>
      ${topics.data?.topics.map((topic) => html`<tr><td><${Link} href=${`/topics/${encodeURIComponent(topic.name)}`}>${topic.name}</${Link}><div class="muted">${topic.description}</div></td><td>${topic.owner}</td><td>${topic.classification}</td><td>${topic.schema}</td><td><${Compatibility} registry=${topic.registry} /></td><td data-testid="versions">${topic.registry?.registered ? topic.registry.versions : '—'}</td><td>${topic.phiFields.join(', ') || '—'}</td><td>${topic.partitions}</td><td>${topic.retention}</td><td>${topic.messages ?? 'not created'}</td><td>${topic.writtenBy.join(', ') || '—'}</td><td>${topic.readBy.join(', ') || '—'}</td></tr>`)}
    </tbody></table></div>`;
}

function TopicPage(props: { name: string; session: Session }) {
  const topics = useApi<{ refreshedAt: number; topics: TopicEntry[] }>('/api/topics', 0);
  const [filter, setFilter] = useState({ key: '', field: '', value: '' });
  const [applied, setApplied] = useState(filter);
  const query = new URLSearchParams(Object.entries(applied).filter(([name, value]) => value && (name !== 'value' || applied.field))).toString();
  const messages = useApi<{ refreshedAt: number; scanned: number; records: Message[] }>(`/api/topics/${encodeURIComponent(props.name)}/messages${query ? `?${query}` : ''}`, 15_000);
  const topic = topics.data?.topics.find((candidate) => candidate.name === props.name);
  const [revealed, setRevealed] = useState<Record<string, { field: string; value: unknown }>>({});
  const [revealError, setRevealError] = useState<string>();
  const mayReveal = props.session.permissions?.['record.reveal'] ?? false;
  const reveal = async (record: Message, field: string): Promise<void> => {
    const position = `${record.topic}/${record.partition}@${record.offset}`;
    const why = prompt(`Why reveal ${field} of ${position}? (admin; only this field; audited before it is shown)`) ?? '';
    if (!why.trim()) return;
    try {
      const answer = await api.post<{ field: string; value: unknown }>(`/api/topics/${encodeURIComponent(props.name)}/reveal`, { partition: record.partition, offset: record.offset, field, reason: why });
      setRevealed({ ...revealed, [position]: { field: answer.field, value: answer.value } });
      setRevealError(undefined);
    } catch (error) {
      setRevealError(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error));
    }
  };
  const input = (name: 'key' | 'field' | 'value', placeholder: string) => html`<input placeholder=${placeholder} value=${filter[name]} onInput=${(event: Event) => setFilter({ ...filter, [name]: (event.target as HTMLInputElement).value })} />`;
  return html`<div><h1>${props.name} <${Link} href="/topics" className="small">all topics</${Link}></h1>
    ${topic ? html`<p>${topic.description} · owner ${topic.owner} · ${topic.classification} · key ${topic.key} · ${topic.schema} · registry subject ${topic.registry?.subject ?? '—'}: <${Compatibility} registry=${topic.registry} />, ${topic.registry?.versions ?? 0} version(s)${topic.registry?.latestVersion ? ` (latest ${topic.registry.latestVersion})` : ''}</p>
      <h3>Schema (PHI fields are masked everywhere in the console)</h3>
      <table data-testid="schema-fields"><thead><tr><th>Field</th><th>Type</th><th>PHI</th><th>Description</th></tr></thead><tbody>
      ${topic.fields.map((field) => html`<tr><td>${field.path}</td><td>${field.type}</td><td>${field.phi ? html`<span class="badge error">PHI</span>` : ''}</td><td class="muted">${field.doc}</td></tr>`)}</tbody></table>` : null}
    <h3>Messages</h3>
    <form class="row" onSubmit=${(event: Event) => { event.preventDefault(); setApplied(filter); }}>${input('key', 'key')}${input('field', 'field (not PHI)')}${input('value', 'value')}<button type="submit">Filter</button></form>
    <${Refreshed} at=${messages.refreshedAt} reload=${messages.reload} error=${messages.error} />
    ${revealError ? html`<p class="error" role="alert">${revealError}</p>` : null}
    ${messages.data ? html`<p class="muted">${messages.data.records.length} shown of the newest ${messages.data.scanned} looked through</p>
      <table data-testid="messages"><thead><tr><th>When</th><th>Partition@offset</th><th>Key</th><th>Value (PHI masked)</th></tr></thead><tbody>
      ${messages.data.records.map((record) => html`<tr><td>${time(Date.parse(record.timestamp))}</td><td>${record.partition}@${record.offset}</td><td>${record.key ?? '—'}</td><td>${(() => {
        const shown = revealed[`${record.topic}/${record.partition}@${record.offset}`];
        return html`<pre class="record" data-testid="message-value">${record.error ?? json(shown ? shown.value : record.value)}</pre>
          ${shown ? html`<span class="badge warn" data-testid="revealed-field">${shown.field} revealed (audited)</span>` : null}
          ${mayReveal && !record.error && !shown ? (topic?.phiFields ?? []).map((field) => html`<button class="small secondary" data-testid=${`reveal-${field}`} onClick=${() => reveal(record, field)}>Reveal ${field}…</button>`) : null}`;
      })()}</td></tr>`)}</tbody></table>` : null}
  </div>`;
}

// ---- Incidents ----------------------------------------------------------------------------------

interface IncidentSignal { kind: string; subject: string; count: number; peak: number; firstAt: number; lastAt: number }
interface Incident {
  id: string; cause: string; title: string; status: 'open' | 'resolved'; openedAt: number; updatedAt: number; lastSignalAt: number; resolvedAt: number | null;
  affects: { components: string[]; connections: string[]; flows: string[] }; count: number; signals: IncidentSignal[];
  timeline: Array<{ at: number; event: string }>; alerts: Array<{ kind: string; at: number; delivered: boolean; detail: string }>;
}
interface Incidents { refreshedAt: number; sampledAt: number | null; open: Incident[]; recent: Incident[]; alerting: null | { leader: boolean; webhook: string | null; quietMs: number; intervalMs: number; lagThreshold: number; lastError: string | null } }

const SIGNAL_NAMES: Record<string, string> = { odoo_unreachable: 'Odoo unreachable', component_down: 'not running', dead_letters: 'dead letters', lag: 'lag', sla_breach: 'SLA breaches' };

function IncidentRow(props: { incident: Incident }) {
  const incident = props.incident;
  const duration = (incident.resolvedAt ?? Date.now()) - incident.openedAt;
  return html`<tr data-testid=${`incident-${incident.id}`} data-status=${incident.status} class=${`incident-${incident.status}`}>
    <td><span class=${`badge ${incident.status === 'open' ? 'error' : 'ok'}`}>${incident.status}</span></td>
    <td><${Link} href=${`/incidents/${encodeURIComponent(incident.id)}`} testid="incident-title">${incident.title}</${Link}></td>
    <td>${time(incident.openedAt)}</td><td>${incident.resolvedAt ? time(incident.resolvedAt) : '—'}</td><td>${age(duration)}</td>
    <td>${[...incident.affects.components, ...incident.affects.flows.map((flow) => `flow ${flow}`)].join(', ')}</td>
    <td data-testid="incident-count">${incident.count}</td>
  </tr>`;
}

function IncidentTable(props: { incidents: Incident[]; testid: string; empty: string }) {
  if (props.incidents.length === 0) return html`<p class="muted" data-testid=${`${props.testid}-empty`}>${props.empty}</p>`;
  return html`<table data-testid=${props.testid}><thead><tr><th></th><th>Incident</th><th>Opened</th><th>Resolved</th><th>Duration</th><th>Affects</th><th>Failures</th></tr></thead><tbody>
    ${props.incidents.map((incident) => html`<${IncidentRow} incident=${incident} />`)}</tbody></table>`;
}

function IncidentsPage(props: { selected: string | undefined }) {
  const incidents = useApi<Incidents>('/api/incidents', 3000);
  const data = incidents.data;
  const selected = props.selected ? [...(data?.open ?? []), ...(data?.recent ?? [])].find((incident) => incident.id === props.selected) : undefined;
  return html`<div><h1>Incidents</h1>
    <${Refreshed} at=${incidents.refreshedAt} reload=${incidents.reload} error=${incidents.error} />
    ${data?.alerting ? html`<p class="muted">Failures are grouped by cause; an incident resolves after ${age(data.alerting.quietMs)} without failure. Alerts: ${data.alerting.webhook ? `webhook ${data.alerting.webhook}` : 'no webhook configured (log only)'}${data.alerting.leader ? '' : '; another console of this app tracks them and sends the alerts (shown here as it writes them)'}.
      ${data.alerting.lastError ? html`<span class="error">${data.alerting.lastError}</span>` : null}</p>` : data ? html`<p class="muted">Incidents are off on this console.</p>` : null}
    <h2>Open</h2>
    ${data ? html`<${IncidentTable} incidents=${data.open} testid="incidents-open" empty="No open incident." />` : null}
    <h2>Recent</h2>
    ${data ? html`<${IncidentTable} incidents=${data.recent} testid="incidents-recent" empty="No incident resolved recently." />` : null}
    ${selected ? html`<section class="panel" data-testid="incident-detail">
      <h2>${selected.title} <${Link} href="/incidents" className="small">close</${Link}></h2>
      <p>Cause <b>${selected.cause}</b> · opened ${time(selected.openedAt)} · ${selected.resolvedAt ? `resolved ${time(selected.resolvedAt)}` : `last failure ${time(selected.lastSignalAt)}`} · ${selected.count} failure(s)</p>
      <p>Affects: ${selected.affects.components.map((component) => html`<${Link} href=${`/flows/${encodeURIComponent(component)}`}>${component}</${Link}> `)}
        ${selected.affects.connections.map((connection) => html`<span>Odoo (${connection}) </span>`)}${selected.affects.flows.map((flow) => html`<${Link} href="/sla">flow ${flow}</${Link}> `)}</p>
      <h3>Signals</h3>
      <table data-testid="incident-signals"><thead><tr><th>What</th><th>Where</th><th>Count</th><th>Peak</th><th>First</th><th>Last</th></tr></thead><tbody>
        ${selected.signals.map((signal) => html`<tr><td>${SIGNAL_NAMES[signal.kind] ?? signal.kind}</td><td>${signal.subject}</td><td>${signal.count}</td><td>${signal.peak || '—'}</td><td>${time(signal.firstAt)}</td><td>${time(signal.lastAt)}</td></tr>`)}</tbody></table>
      <h3>Timeline</h3>
      <table data-testid="incident-timeline"><tbody>${selected.timeline.map((entry) => html`<tr><td>${time(entry.at)}</td><td>${entry.event}</td></tr>`)}</tbody></table>
    </section>` : props.selected && data ? html`<p class="muted">Incident ${props.selected} is not kept any more.</p>` : null}
  </div>`;
}

// ---- Audit --------------------------------------------------------------------------------------

interface Audit { refreshedAt: number; total: number; entries: Array<{ id: string; at: number; who: string; roles: string[]; action: string; target: string; reason: string | null; result: string; detail: string }> }

function AuditPage() {
  const [filters, setFilters] = useState({ who: '', action: '', result: '' });
  const query = new URLSearchParams(Object.entries(filters).filter(([, value]) => value)).toString();
  const audit = useApi<Audit>(`/api/audit${query ? `?${query}` : ''}`, 15_000);
  const field = (name: 'who' | 'action' | 'result', placeholder: string) => html`<input placeholder=${placeholder} value=${filters[name]} onChange=${(event: Event) => setFilters({ ...filters, [name]: (event.target as HTMLInputElement).value })} />`;
  return html`<div><h1>Audit</h1>
    <${Refreshed} at=${audit.refreshedAt} reload=${audit.reload} error=${audit.error} />
    <div class="row">${field('who', 'who')}${field('action', 'action (e.g. replay)')}${field('result', 'result (succeeded, refused…)')}
      <a class="button" href=${`/api/audit.csv${query ? `?${query}` : ''}`} download="lifeline-audit.csv">Export CSV</a></div>
    <table data-testid="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th><th>Target</th><th>Why</th><th>Result</th><th>Detail</th></tr></thead><tbody>
      ${audit.data?.entries.map((entry) => html`<tr class=${`result-${entry.result}`}><td>${time(entry.at)}</td><td>${entry.who} <span class="muted">${entry.roles.join(', ')}</span></td><td>${entry.action}</td><td>${entry.target}</td><td>${entry.reason ?? ''}</td><td>${entry.result}</td><td class="muted">${entry.detail}</td></tr>`)}
    </tbody></table>
  </div>`;
}

// ---- shell: login, navigation -------------------------------------------------------------------

function Login(props: { onLogin: (session: Session) => void }) {
  const [identity, setIdentity] = useState('');
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    try {
      props.onLogin(await api.post<Session>('/api/session', { identity, token }));
    } catch (failure) {
      setError(failure instanceof Error ? failure.message : String(failure));
    }
  };
  return html`<form class="login panel" onSubmit=${submit}>
    <h1>Lifeline console</h1>
    <label>Operator identity <input name="identity" data-testid="login-identity" autocomplete="username" value=${identity} onInput=${(event: Event) => setIdentity((event.target as HTMLInputElement).value)} /></label>
    <label>Operator token <input name="token" type="password" data-testid="login-token" autocomplete="current-password" value=${token} onInput=${(event: Event) => setToken((event.target as HTMLInputElement).value)} /></label>
    <button type="submit" data-testid="login-submit">Log in</button>
    ${error ? html`<p class="error" role="alert">${error}</p>` : null}
  </form>`;
}

const NAV = [['/flows', 'Flows'], ['/incidents', 'Incidents'], ['/sla', 'SLA board'], ['/trace', 'Trace'], ['/dead-letters', 'Dead letters'], ['/consumers', 'Consumers'], ['/topics', 'Topics'], ['/audit', 'Audit']] as const;

function App() {
  const path = usePath();
  const [session, setSession] = useState<Session>();
  useEffect(() => {
    api.get<Session>('/api/session').then((value) => { setCsrfToken(value.csrfToken); setSession(value); }, () => setSession({ authenticated: false }));
  }, []);
  if (!session) return html`<p class="muted">Loading…</p>`;
  if (!session.authenticated) return html`<${Login} onLogin=${(value: Session) => { setCsrfToken(value.csrfToken); setSession(value); }} />`;
  const logout = async (): Promise<void> => {
    await api.delete('/api/session').catch(() => undefined);
    setCsrfToken(undefined);
    setSession({ authenticated: false });
  };
  const segments = path.split('/').filter(Boolean).map(decodeURIComponent);
  let page;
  if (segments[0] === 'sla') page = html`<${SlaPage} />`;
  else if (segments[0] === 'trace') page = html`<${TracePage} />`;
  else if (segments[0] === 'dead-letters') page = segments[1] ? html`<${DeadLetterComponent} component=${segments[1]} session=${session} />` : html`<${DeadLettersPage} session=${session} />`;
  else if (segments[0] === 'incidents') page = html`<${IncidentsPage} selected=${segments[1]} />`;
  else if (segments[0] === 'audit') page = html`<${AuditPage} />`;
  else if (segments[0] === 'topics') page = segments[1] ? html`<${TopicPage} name=${segments[1]} session=${session} />` : html`<${TopicsPage} />`;
  else if (segments[0] === 'consumers') page = html`<${ConsumersPage} session=${session} />`;
  else page = html`<${FlowsPage} selected=${segments[0] === 'flows' ? segments[1] : undefined} />`;
  return html`<div class="shell">
    <header><b class="brand">Lifeline</b>
      <nav>${NAV.map(([href, label]) => html`<${Link} href=${href} className=${path.startsWith(href) || (href === '/flows' && path === '/') ? 'active' : ''} testid=${`nav-${href.slice(1)}`}>${label}</${Link}>`)}</nav>
      <span class="who" data-testid="who">${session.identity} (${session.roles?.join(', ')})</span>
      <button class="small secondary" onClick=${logout}>Log out</button>
    </header>
    <main>${page}</main>
  </div>`;
}

const root = document.getElementById('app');
if (root) render(html`<${App} />`, root);
