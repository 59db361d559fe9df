import { Type } from '@sinclair/typebox';

/**
 * The console's JSON API, typed with TypeBox: the same schemas validate requests, type the route
 * handlers and generate the OpenAPI document (GET /api/openapi.json).
 */
export const ErrorBody = Type.Object({
  code: Type.String({ description: 'Stable LL_ error code (docs/errors.md).' }),
  message: Type.String(),
}, { $id: 'Error' });

/** Views carry `refreshedAt` (epoch ms) so every page can say when it was last refreshed. */
const View = (description: string, properties: Parameters<typeof Type.Object>[0] = {}) =>
  Type.Object({ refreshedAt: Type.Number({ description: 'When this was read from Kafka (epoch ms).' }), ...properties }, { additionalProperties: true, description });

export const Role = Type.Union([Type.Literal('viewer'), Type.Literal('operator'), Type.Literal('approver'), Type.Literal('admin')]);

export const SessionView = Type.Object({
  authenticated: Type.Boolean(),
  identity: Type.Optional(Type.String()),
  roles: Type.Optional(Type.Array(Role)),
  via: Type.Optional(Type.String({ description: 'session, headers or proxy' })),
  csrfToken: Type.Optional(Type.String({ description: 'Echo in x-csrf-token on every POST/DELETE of a cookie session.' })),
  permissions: Type.Optional(Type.Record(Type.String(), Type.Boolean(), { description: 'Which control actions this identity may take (the page hides the rest).' })),
}, { $id: 'Session' });

export const LoginBody = Type.Object({
  identity: Type.String({ minLength: 1, maxLength: 200 }),
  token: Type.String({ minLength: 1, maxLength: 500 }),
});

const Health = Type.Union([Type.Literal('ok'), Type.Literal('warn'), Type.Literal('error'), Type.Literal('unknown')]);

export const FlowNode = Type.Object({
  id: Type.String(),
  kind: Type.Union([Type.Literal('source'), Type.Literal('processor'), Type.Literal('sink'), Type.Literal('topic'), Type.Literal('external')]),
  label: Type.String(),
  type: Type.String(),
  description: Type.String(),
  health: Health,
  why: Type.String({ description: 'Why the node has its colour.' }),
  state: Type.String(),
  rateIn: Type.Number({ description: 'Records/s read, over the last status period, all processes.' }),
  rateOut: Type.Number(),
  recordsIn: Type.Number(),
  recordsOut: Type.Number(),
  lag: Type.Number({ description: 'Records behind (end offset − committed), all input partitions.' }),
  deadLetters: Type.Number(),
  lastRecordAt: Type.Union([Type.Number(), Type.Null()]),
  instances: Type.Array(Type.String()),
});

export const FlowsView = Type.Object({
  refreshedAt: Type.Number(),
  appId: Type.String(),
  nodes: Type.Array(FlowNode),
  edges: Type.Array(Type.Object({ from: Type.String(), to: Type.String(), topic: Type.String(), health: Health, lag: Type.Number() })),
  processes: Type.Array(Type.Object({
    instance: Type.String(), host: Type.String(), pid: Type.Number(), version: Type.String(), at: Type.Number(),
    stale: Type.Boolean(), ready: Type.Boolean(), components: Type.Array(Type.String()),
  })),
}, { $id: 'Flows' });

export const NodeView = View('One component: health, declaration (secrets masked), consumer group partitions and their owners, hosting processes, rates over the last hour.');
export const SlaView = View('Per SLA flow: open transactions by age bucket, warned (at risk) and breached lists, exception ageing.');
export const TraceView = View('Every hop of one business transaction across topics, in time order, PHI masked.');
export const DeadLetterGroupsView = View('Dead letters grouped by fingerprint (component + error code + normalised message).');
export const DeadLettersView = View('Dead letters of one component, newest first, PHI masked.');
export const AuditView = View('Audit entries, newest first.');
export const PlansView = View('Replay plans in their latest state, newest first.');
export const PlanView = Type.Object({}, { additionalProperties: true, description: 'A replay plan (ops.replay-plans.v1) with its spec.' });
export const DryRunView = View('What a dead-letter replay would send, and which components and sinks it reaches. Nothing is sent.');

export const DeadLetterFilterBody = Type.Object({
  errorClasses: Type.Optional(Type.Array(Type.String({ maxLength: 200 }), { maxItems: 50, description: 'Only these error classes (e.g. LL_ODOO_USER_ERROR).' })),
  key: Type.Optional(Type.String({ maxLength: 1000 })),
  originTopic: Type.Optional(Type.String({ maxLength: 300 })),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  max: Type.Optional(Type.Integer({ minimum: 1 })),
  maxAttempts: Type.Optional(Type.Integer({ minimum: 1, default: 3 })),
});

/** Where to move a group's offsets: exactly one of these (as `lifeline offsets reset`). */
export const ResetTargetBody = Type.Object({
  toEarliest: Type.Optional(Type.Boolean()),
  toLatest: Type.Optional(Type.Boolean()),
  toDatetime: Type.Optional(Type.String({ format: 'date-time' })),
  byDuration: Type.Optional(Type.String({ description: 'Back from now, e.g. 2h.' })),
  toOffset: Type.Optional(Type.String({ pattern: '^\\d+$' })),
  shiftBy: Type.Optional(Type.String({ pattern: '^-?\\d+$' })),
});

export const PlanBody = Type.Intersect([
  Type.Object({
    component: Type.Optional(Type.String({ minLength: 1, description: 'A dead-letter replay: whose dead letters (component label).' })),
    group: Type.Optional(Type.String({ minLength: 1, description: 'An offset reset: of this consumer group (with reset).' })),
    reset: Type.Optional(ResetTargetBody),
    reason: Type.String({ minLength: 1, maxLength: 2000, description: 'Why: goes to the plan and the audit trail.' }),
  }),
  DeadLetterFilterBody,
]);

export const GroupsView = View('Consumer groups of this topology: state, members, lag per partition and its owner.');
export const ResetDryRunView = View('What an offset reset would do per partition (nothing is changed).');

export const DecisionBody = Type.Object({
  reason: Type.String({ minLength: 1, maxLength: 2000 }),
});

export const AuditQuery = Type.Object({
  action: Type.Optional(Type.String()),
  who: Type.Optional(Type.String()),
  target: Type.Optional(Type.String()),
  result: Type.Optional(Type.Union([Type.Literal('started'), Type.Literal('succeeded'), Type.Literal('failed'), Type.Literal('refused')])),
  since: Type.Optional(Type.String({ format: 'date-time' })),
  until: Type.Optional(Type.String({ format: 'date-time' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 500 })),
});

export const SubjectInfo = Type.Object({
  subject: Type.String({ description: 'The value subject, <topic>-value.' }),
  registered: Type.Boolean(),
  compatibility: Type.Union([Type.String(), Type.Null()], { description: 'The compatibility level the registry enforces (BACKWARD, FULL…).' }),
  compatibilitySource: Type.Union([Type.Literal('subject'), Type.Literal('global'), Type.Null()], { description: 'The subject\'s own level, or the registry\'s global one.' }),
  versions: Type.Number({ description: 'Schema versions registered under the subject.' }),
  latestVersion: Type.Union([Type.Number(), Type.Null()]),
  error: Type.Optional(Type.String({ description: 'Why the registry could not be asked.' })),
});

export const TopicsView = View('The topic catalogue from topology.yaml, the broker and the schema registry, each schema field marked PHI or not.', {
  topics: Type.Array(Type.Object({
    name: Type.String(),
    registry: Type.Union([SubjectInfo, Type.Null()], { description: 'The subject in the schema registry (Confluent API): compatibility level and versions.' }),
  }, { additionalProperties: true })),
});
export const MessagesView = View('Records of one topic, newest first, decoded and PHI masked.');

const SignalKind = Type.Union(['odoo_unreachable', 'component_down', 'dead_letters', 'lag', 'sla_breach'].map((kind) => Type.Literal(kind)));

export const Incident = Type.Object({
  id: Type.String(),
  appId: Type.String(),
  cause: Type.String({ description: 'What it is grouped by: odoo:<connection>, component:<label> or sla:<flow>.' }),
  title: Type.String({ description: 'One PHI-free line: cause, what it affects, counts.' }),
  status: Type.Union([Type.Literal('open'), Type.Literal('resolved')]),
  openedAt: Type.Number(),
  updatedAt: Type.Number(),
  lastSignalAt: Type.Number(),
  resolvedAt: Type.Union([Type.Number(), Type.Null()]),
  affects: Type.Object({ components: Type.Array(Type.String()), connections: Type.Array(Type.String()), flows: Type.Array(Type.String()) }),
  count: Type.Number({ description: 'Failures grouped into it: dead letters and SLA breaches, plus one per onset of a state (unreachable, down, lag).' }),
  signals: Type.Array(Type.Object({ kind: SignalKind, subject: Type.String(), count: Type.Number(), peak: Type.Number(), firstAt: Type.Number(), lastAt: Type.Number() })),
  timeline: Type.Array(Type.Object({ at: Type.Number(), event: Type.String() })),
  alerts: Type.Array(Type.Object({ kind: Type.Union([Type.Literal('opened'), Type.Literal('resolved')]), at: Type.Number(), delivered: Type.Boolean(), detail: Type.String() })),
}, { $id: 'Incident' });

export const IncidentsView = View('Open incidents first, then up to 100 recently resolved', {
  sampledAt: Type.Union([Type.Number(), Type.Null()], { description: 'When the flows and SLA board were last looked at.' }),
  open: Type.Array(Type.Ref('Incident')),
  recent: Type.Array(Type.Ref('Incident')),
  alerting: Type.Union([Type.Null(), Type.Object({
    leader: Type.Boolean({ description: 'This console tracks incidents and sends alerts (one console per app leads; the others show what it writes).' }),
    webhook: Type.Union([Type.String(), Type.Null()], { description: 'Where alerts go (host only), or null when no webhook is configured.' }),
    quietMs: Type.Number(), intervalMs: Type.Number(), lagThreshold: Type.Number(), lastError: Type.Union([Type.String(), Type.Null()]),
  })]),
});

export const IncidentView = View('One incident', { incident: Type.Ref('Incident') });
