import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyCookie from '@fastify/cookie';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { LifelineError, errorCode, errorMessage } from '../errors.ts';
import { alertRulesYaml, dashboard } from '../observe/alerting.ts';
import { describeSelection, selectDeadLetters, type DeadLetterFilter } from '../ops/dead-letter-replay.ts';
import { ACTION_ROLES, isAllowed, rolesFor, type ControlAction, type Operator } from '../ops/operator-identity.ts';
import { ReplayPlanStore, withState, type ReplayPlan } from '../ops/replay-plans.ts';
import { describeTarget, planReset, totalToReprocess, withRecordCounts } from '../ops/offset-reset.ts';
import { downstreamReach } from '../ops/topology-lineage.ts';
import { resetScope, resetTarget } from '../ops/operator-requests.ts';
import type { OpsSession } from '../ops/ops-session.ts';
import { execute, proposePlan, requireState, type PlanRequest } from '../ops/replay-workflow.ts';
import { deadLetterTopic } from '../topology/model.ts';
import {
  AuditQuery, AuditView, DeadLetterFilterBody, GroupsView, MessagesView, ResetDryRunView, ResetTargetBody, TopicsView, DeadLetterGroupsView, DeadLettersView, DecisionBody, DryRunView, ErrorBody, FlowsView,
  Incident, IncidentsView, IncidentView, LoginBody, NodeView, PlanBody, PlansView, PlanView, SessionView, SlaView, TraceView,
} from './api-schemas.ts';
import { CSRF_HEADER, ConsoleAuth, SESSION_COOKIE, permissionsOf, type Caller } from './console-auth.ts';
import { ConsoleData } from './console-data.ts';
import { DEFAULT_INCIDENT_SETTINGS, IncidentWatcher, type IncidentSettings } from './incident-watcher.ts';
import { StatusWatcher } from './status-watcher.ts';

/** Where `npm run build:console` puts the page: console/dist at the project root, from the sources or from the built dist/src/console/. */
export const DEFAULT_ASSETS_DIR = ['../../console/dist', '../../../console/dist']
  .map((path) => fileURLToPath(new URL(path, import.meta.url)))
  .find((path) => existsSync(join(path, 'index.html'))) ?? fileURLToPath(new URL('../../console/dist', import.meta.url));

/** Paths of the page's views: each is reachable by URL and served the same index.html. */
export const PAGE_PATHS = ['/', '/flows', '/flows/:label', '/sla', '/trace', '/dead-letters', '/dead-letters/:component', '/consumers', '/topics', '/topics/:topic', '/audit', '/incidents', '/incidents/:id'] as const;

export interface ConsoleServerOptions {
  readonly session: OpsSession;
  readonly logger: Logger;
  readonly host?: string;
  readonly port: number;
  /** A header a trusted reverse proxy sets to the verified identity (e.g. x-forwarded-user). */
  readonly trustedIdentityHeader?: string;
  /** Marks the session cookie Secure (the console is served over TLS, directly or behind a proxy). */
  readonly secureCookies?: boolean;
  readonly assetsDir?: string;
  /** Incidents and their alerts (on unless false); settings not given take the defaults. */
  readonly incidents?: Partial<IncidentSettings> | false;
}

export interface RunningConsole {
  readonly app: FastifyInstance;
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

const HTTP_STATUS: Readonly<Record<string, number>> = {
  LL_NOT_AUTHORISED: 403,
  LL_PLAN_INVALID: 409,
  LL_GROUP_ACTIVE: 409,
  LL_CONFIG_INVALID: 400,
  LL_OFFSETS_INVALID: 400,
};

declare module 'fastify' {
  interface FastifyRequest {
    caller?: Caller;
  }
}

/** Builds the console (JSON API under /api, OpenAPI, the page) without listening. */
export async function buildConsole(options: ConsoleServerOptions): Promise<{ app: FastifyInstance; stop: () => Promise<void> }> {
  const { session, logger } = options;
  const topology = session.topology;
  const auth = new ConsoleAuth({
    directory: () => session.operatorDirectory(),
    ...(options.trustedIdentityHeader ? { trustedIdentityHeader: options.trustedIdentityHeader } : {}),
  });
  // Connected once up front: OpsSession.admin() connects on first use, and concurrent first uses would each open one.
  await session.admin();
  const statuses = new StatusWatcher(session.kafka, logger);
  await statuses.start();
  const data = new ConsoleData(topology, session.kafka, () => session.admin(), session.serde, statuses, () => session.audit());
  data.warm();
  const incidents = options.incidents === false ? undefined
    : new IncidentWatcher(topology, session.kafka, () => session.admin(), data, logger.child({ component: 'incidents' }), { ...DEFAULT_INCIDENT_SETTINGS, ...options.incidents });
  await incidents?.start();

  const app = Fastify({ loggerInstance: logger.child({ component: 'console' }, { level: 'warn' }) as unknown as FastifyBaseLogger, bodyLimit: 64 * 1024 })
    .withTypeProvider<TypeBoxTypeProvider>();
  await app.register(fastifyCookie);
  await app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Lifeline console API', version: '1', description: 'The JSON API the console page uses; scripts may use it too (x-lifeline-operator and x-lifeline-token headers). Every change is checked against the operators file and audited to ops.audit.v1, as the CLI does.' },
      components: {
        securitySchemes: {
          session: { type: 'apiKey', in: 'cookie', name: SESSION_COOKIE },
          operator: { type: 'apiKey', in: 'header', name: 'x-lifeline-operator' },
          token: { type: 'apiKey', in: 'header', name: 'x-lifeline-token' },
        },
      },
    },
  });
  app.addSchema(ErrorBody);
  app.addSchema(Incident);

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('content-security-policy', "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'");
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });

  app.setErrorHandler((error: unknown, request, reply) => {
    const validation = (error as { validation?: unknown }).validation;
    if (validation) return reply.code(400).send({ code: 'LL_CONFIG_INVALID', message: errorMessage(error) });
    const code = errorCode(error);
    const status = HTTP_STATUS[code] ?? (((error as { statusCode?: number }).statusCode ?? 500) >= 400 && ((error as { statusCode?: number }).statusCode ?? 500) < 500 ? (error as { statusCode: number }).statusCode : 500);
    if (status >= 500) request.log.error({ err: errorMessage(error), code }, 'console request failed');
    return reply.code(status).send({ code, message: errorMessage(error) });
  });

  // ---- identity ------------------------------------------------------------------------------

  const identify = (request: FastifyRequest) => auth.identify(request.headers, request.cookies[SESSION_COOKIE]);

  /** Any authenticated identity may read (masked) data. */
  const reader = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const identified = identify(request);
    if (!identified.ok) {
      await reply.code(401).send({ code: 'LL_NOT_AUTHORISED', message: identified.why });
      return;
    }
    request.caller = identified.caller;
  };

  /** A change: authenticated (refusals audited, as the CLI does) and, for a cookie session, the CSRF token. */
  const changer = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const identified = identify(request);
    if (!identified.ok) {
      await auditRefusal(session, 'console.request', request.url, identified.claimed, [], identified.why);
      await reply.code(401).send({ code: 'LL_NOT_AUTHORISED', message: identified.why });
      return;
    }
    if (!auth.csrfValid(identified.caller, headerOf(request, CSRF_HEADER))) {
      await reply.code(403).send({ code: 'LL_NOT_AUTHORISED', message: `missing or wrong ${CSRF_HEADER}: reload the page` });
      return;
    }
    request.caller = identified.caller;
  };

  /** Checks a role on the server, auditing the refusal (who, what, why) before refusing. */
  const allow = async (caller: Caller, action: ControlAction, target: string, reason?: string): Promise<Operator> => {
    const { operator } = caller;
    if (!isAllowed(operator, action)) {
      await session.refuse(action, target, operator.identity, operator.roles,
        `${operator.identity} (${operator.roles.join(', ')}) may not ${action}; it needs one of the roles ${rolesFor(action).join(', ')}`,
        reason !== undefined ? { reason } : {});
    }
    return operator;
  };

  const sessionView = (caller: Caller) => ({
    authenticated: true, identity: caller.operator.identity, roles: [...caller.operator.roles], via: caller.via,
    ...(caller.session ? { csrfToken: caller.session.csrfToken } : {}),
    permissions: permissionsOf(caller.operator, Object.keys(ACTION_ROLES) as ControlAction[]),
  });

  app.get('/api/session', { schema: { tags: ['session'], summary: 'Who is logged in, their roles and permissions, and the CSRF token', response: { 200: SessionView } } }, async (request) => {
    const identified = identify(request);
    return identified.ok ? sessionView(identified.caller) : { authenticated: false };
  });

  app.post('/api/session', { schema: { tags: ['session'], summary: 'Log in with an operator identity and token (sets an HttpOnly, SameSite=Strict session cookie)', body: LoginBody, response: { 200: SessionView, 401: ErrorBody } } }, async (request, reply) => {
    const result = auth.login(request.body.identity, request.body.token);
    if (!result.ok) {
      request.log.warn({ identity: request.body.identity }, 'console login refused');
      return reply.code(401).send({ code: 'LL_NOT_AUTHORISED', message: result.why });
    }
    reply.setCookie(SESSION_COOKIE, result.session.id, { httpOnly: true, sameSite: 'strict', secure: options.secureCookies ?? false, path: '/' });
    return sessionView({ operator: result.session.operator, via: 'session', session: result.session });
  });

  app.delete('/api/session', { preHandler: changer, schema: { tags: ['session'], summary: 'Log out', response: { 200: Type.Object({ ok: Type.Boolean() }) } } }, async (request, reply) => {
    auth.logout(request.cookies[SESSION_COOKIE]);
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  // ---- views -----------------------------------------------------------------------------------

  app.get('/api/flows', { preHandler: reader, schema: { tags: ['flows'], summary: 'The topology as a graph, each node and edge with its health', response: { 200: FlowsView } } }, () => data.flows());

  app.get('/api/flows/:label', { preHandler: reader, schema: { tags: ['flows'], summary: 'One component in detail', params: Type.Object({ label: Type.String() }), response: { 200: NodeView, 404: ErrorBody } } }, async (request, reply) => {
    const node = await data.node(request.params.label);
    if (!node) return reply.code(404).send({ code: 'LL_CONFIG_INVALID', message: `${request.params.label} is not a component of ${topology.file}` });
    return node;
  });

  app.get('/api/sla', { preHandler: reader, schema: { tags: ['sla'], summary: 'The SLA board', response: { 200: SlaView } } }, () => data.sla());

  app.get('/api/trace', { preHandler: reader, schema: { tags: ['trace'], summary: 'Follow a business transaction by its key (record key, idempotency key or correlation id)', querystring: Type.Object({ key: Type.String({ minLength: 1, maxLength: 500 }) }), response: { 200: TraceView } } }, (request) => data.trace(request.query.key));

  app.get('/api/dead-letters', { preHandler: reader, schema: { tags: ['dead letters'], summary: 'Dead letters grouped by error fingerprint', response: { 200: DeadLetterGroupsView } } }, () => data.deadLetterGroups());

  const componentParams = Type.Object({ component: Type.String({ minLength: 1 }) });
  const requireComponent = (component: string): void => {
    if (!topology.components[component]) throw new LifelineError('LL_CONFIG_INVALID', `${component} is not a component of ${topology.file}`);
  };

  app.get('/api/dead-letters/:component', {
    preHandler: reader,
    schema: {
      tags: ['dead letters'], summary: 'A component\'s dead letters, PHI masked', params: componentParams,
      querystring: Type.Object({ errorClass: Type.Optional(Type.String()), key: Type.Optional(Type.String()), limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 200 })) }),
      response: { 200: DeadLettersView },
    },
  }, async (request) => {
    requireComponent(request.params.component);
    const filter: DeadLetterFilter = {
      ...(request.query.errorClass ? { errorClasses: [request.query.errorClass] } : {}),
      ...(request.query.key ? { key: request.query.key } : {}),
    };
    return data.deadLetters(request.params.component, filter, request.query.limit ?? 200);
  });

  app.post('/api/dead-letters/:component/dry-run', {
    preHandler: changer,
    schema: { tags: ['dead letters'], summary: 'What a replay with this filter would send (nothing is sent)', params: componentParams, body: DeadLetterFilterBody, response: { 200: DryRunView } },
  }, async (request) => {
    requireComponent(request.params.component);
    const topic = deadLetterTopic(request.params.component);
    const selection = await selectDeadLetters(session.kafka, await session.admin(), topic, filterOf(request.body), { maxAttempts: request.body.maxAttempts ?? 3, ...(request.body.max !== undefined ? { max: request.body.max } : {}) });
    const reach = downstreamReach(topology, { topics: [...new Set(selection.selected.map((letter) => letter.origin.topic))] });
    return {
      refreshedAt: Date.now(), topic, selection: describeSelection(selection), toReplay: selection.selected.length,
      alreadyReplayed: selection.alreadyReplayed.length, budgetExhausted: selection.budgetExhausted.length, deferred: selection.deferred.length,
      reaches: reach, records: selection.selected.slice(0, 500).map((letter) => ({ deadLetter: letter.position, errorClass: letter.errorClass, key: letter.key, origin: letter.origin })),
    };
  });

  app.post('/api/dead-letters/:component/reveal', {
    preHandler: changer,
    schema: {
      tags: ['dead letters'], summary: 'One dead letter with its PHI unmasked (admin). Audited (started) before it is read and (succeeded) before it is answered',
      params: componentParams,
      body: Type.Object({ deadLetter: Type.String({ pattern: '^ops\\.dlq\\..+\\.v1/\\d+@\\d+$', description: 'The dead letter\'s position, e.g. ops.dlq.charge_bills.v1/0@12.' }), reason: Type.String({ minLength: 1, maxLength: 2000 }) }),
      response: { 200: Type.Object({ deadLetter: Type.String(), revealed: Type.Boolean(), value: Type.Optional(Type.Unknown()) }, { additionalProperties: true }) },
    },
  }, async (request) => {
    const caller = request.caller as Caller;
    requireComponent(request.params.component);
    const topic = deadLetterTopic(request.params.component);
    const { deadLetter, reason } = request.body;
    const operator = await allow(caller, 'dlq.reveal', topic, reason.trim());
    const match = /^(.+)\/(\d+)@(\d+)$/.exec(deadLetter);
    if (!match || match[1] !== topic) throw new LifelineError('LL_CONFIG_INVALID', `${deadLetter} is not a dead letter of ${request.params.component} (${topic}/<partition>@<offset>)`);
    const partition = Number(match[2]);
    const offset = BigInt(match[3] as string);
    return session.audited(operator, 'dlq.reveal', topic, { reason: reason.trim(), parameters: { topic, deadLetter, via: 'console' } }, async () => {
      const letter = await data.revealDeadLetter(topic, partition, offset);
      if (!letter) throw new LifelineError('LL_CONFIG_INVALID', `no dead letter at ${deadLetter}`);
      return { value: { deadLetter, revealed: true, ...letter }, detail: `1 dead letter shown with PHI revealed (${deadLetter})` };
    });
  });

  // ---- replay plans: plan → approve, as `lifeline replay plan|approve|reject` -------------------

  app.get('/api/replay-plans', { preHandler: reader, schema: { tags: ['replay'], summary: 'Replay plans of this topology (its components and consumer groups), newest first', response: { 200: PlansView } } }, async () => {
    const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
    try {
      // ops.replay-plans.v1 is shared by every topology on the cluster: this console shows its own.
      const ours = (plan: ReplayPlan): boolean => Boolean(topology.components[plan.target]) || plan.target.startsWith(`${topology.runtime.appId}.`);
      return { refreshedAt: Date.now(), plans: (await store.list()).filter(ours).slice(0, 500).map(planView) };
    } finally {
      await store.close();
    }
  });

  app.post('/api/replay-plans', {
    preHandler: changer,
    schema: { tags: ['replay'], summary: 'Plan a dead-letter replay (operator). Under the approval threshold it executes at once; otherwise it waits for an approver', body: PlanBody, response: { 200: PlanView } },
  }, async (request) => {
    const caller = request.caller as Caller;
    const body = request.body;
    const reason = body.reason.trim();
    const operator = await allow(caller, 'replay.plan', body.component ?? body.group ?? '', reason);
    if (Boolean(body.component) === Boolean(body.group)) throw new LifelineError('LL_CONFIG_INVALID', 'give exactly one of component (a dead-letter replay) and group (an offset reset, with reset)');
    if (body.component) requireComponent(body.component);
    const planOptions: PlanRequest = {
      maxAttempts: String(body.maxAttempts ?? 3), reason, ackTimeout: '10s',
      ...(body.component ? { dlq: body.component } : { group: body.group as string, ...(body.reset ?? {}) }),
      ...(body.max !== undefined ? { max: String(body.max) } : {}),
      ...(body.errorClasses && body.errorClasses.length > 0 ? { errorClass: body.errorClasses } : {}),
      ...(body.key !== undefined ? { key: body.key } : {}),
      ...(body.originTopic !== undefined ? { originTopic: body.originTopic } : {}),
      ...(body.since !== undefined ? { since: body.since } : {}),
      ...(body.until !== undefined ? { until: body.until } : {}),
    };
    const { plan: final, threshold } = await proposePlan(session, operator, planOptions, reason, undefined);
    data.invalidate();
    return { ...planView(final), threshold };
  });

  app.post('/api/replay-plans/:id/approve', {
    preHandler: changer,
    schema: { tags: ['replay'], summary: 'Approve a plan and execute it (approver; not the planner)', params: Type.Object({ id: Type.String() }), body: DecisionBody, response: { 200: PlanView } },
  }, async (request) => {
    const caller = request.caller as Caller;
    const { id } = request.params;
    const reason = request.body.reason.trim();
    const operator = await allow(caller, 'replay.approve', id, reason);
    const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
    try {
      const plan = await store.get(id);
      if (plan.planned_by === operator.identity) {
        await session.refuse('replay.approve', id, operator.identity, operator.roles, `${operator.identity} planned ${id} and may not approve it: a second person must`, { reason });
      }
      await requireState(session, operator, plan, 'planned', 'replay.approve', reason);
      const final = await execute(session, store, withState(plan, 'executing', { approved_by: operator.identity }), operator, 'replay.approve', reason, '10s');
      data.invalidate();
      return planView(final);
    } finally {
      await store.close();
    }
  });

  app.post('/api/replay-plans/:id/reject', {
    preHandler: changer,
    schema: { tags: ['replay'], summary: 'Reject a plan: it will never execute (approver)', params: Type.Object({ id: Type.String() }), body: DecisionBody, response: { 200: PlanView } },
  }, async (request) => {
    const caller = request.caller as Caller;
    const { id } = request.params;
    const reason = request.body.reason.trim();
    const operator = await allow(caller, 'replay.reject', id, reason);
    const store = new ReplayPlanStore(session.kafka, await session.admin(), session.serde);
    try {
      const plan = await store.get(id);
      await requireState(session, operator, plan, 'planned', 'replay.reject', reason);
      const rejected = withState(plan, 'rejected', { approved_by: operator.identity, result_detail: `rejected by ${operator.identity}: ${reason}` });
      await session.audited(operator, 'replay.reject', id, { reason }, async () => {
        await store.save(rejected);
        return { value: undefined, detail: `rejected ${plan.summary}` };
      });
      return planView(rejected);
    } finally {
      await store.close();
    }
  });

  // ---- incidents -------------------------------------------------------------------------------------

  app.get('/api/incidents', { preHandler: reader, schema: { tags: ['incidents'], summary: 'Open and recent incidents: failures grouped by cause (an Odoo outage, a component down, dead letters, lag, SLA breaches), each with what it affects, a count and its timeline', response: { 200: IncidentsView } } }, () => {
    if (!incidents) return { refreshedAt: Date.now(), sampledAt: null, open: [], recent: [], alerting: null };
    return incidents.view();
  });

  app.get('/api/incidents/:id', { preHandler: reader, schema: { tags: ['incidents'], summary: 'One incident with its signals and timeline', params: Type.Object({ id: Type.String() }), response: { 200: IncidentView, 404: ErrorBody } } }, async (request, reply) => {
    const incident = incidents?.tracker.get(request.params.id);
    if (!incident) return reply.code(404).send({ code: 'LL_CONFIG_INVALID', message: `no incident ${request.params.id} (resolved ones are kept for a while, then forgotten)` });
    return { refreshedAt: Date.now(), incident };
  });

  // ---- topics and schemas ----------------------------------------------------------------------

  app.get('/api/topics', { preHandler: reader, schema: { tags: ['topics'], summary: 'The topic catalogue: owner, classification, schema with PHI fields marked, partitions, retention, writers and readers, messages held', response: { 200: TopicsView } } }, () => data.topics());

  app.get('/api/topics/:topic/messages', {
    preHandler: reader,
    schema: {
      tags: ['topics'], summary: 'The newest records of a topic, decoded and PHI masked, filtered by key, header, time range or a non-PHI field value',
      params: Type.Object({ topic: Type.String({ minLength: 1 }) }),
      querystring: Type.Object({
        key: Type.Optional(Type.String()), header: Type.Optional(Type.String()), headerValue: Type.Optional(Type.String()),
        since: Type.Optional(Type.String({ format: 'date-time' })), until: Type.Optional(Type.String({ format: 'date-time' })),
        field: Type.Optional(Type.String({ description: 'Dotted path of a field that is not PHI.' })), value: Type.Optional(Type.String()),
        limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50 })),
        scan: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000, default: 5000, description: 'How many of the newest records to look through.' })),
      }),
      response: { 200: MessagesView },
    },
  }, (request) => {
    const query = request.query;
    return data.messages(request.params.topic, {
      ...(query.key !== undefined ? { key: query.key } : {}),
      ...(query.header ? { header: query.header } : {}),
      ...(query.headerValue !== undefined ? { headerValue: query.headerValue } : {}),
      ...(query.since ? { since: Date.parse(query.since) } : {}),
      ...(query.until ? { until: Date.parse(query.until) } : {}),
      ...(query.field ? { field: query.field, value: query.value ?? '' } : {}),
    }, query.limit ?? 50, query.scan ?? 5000);
  });

  app.post('/api/topics/:topic/reveal', {
    preHandler: changer,
    schema: {
      tags: ['topics'], summary: 'One PHI field of one record unmasked (admin), the others still masked. Audited (who, which topic/partition/offset/field, why) before it is read, and again before it is answered',
      params: Type.Object({ topic: Type.String({ minLength: 1 }) }),
      body: Type.Object({
        partition: Type.Integer({ minimum: 0 }), offset: Type.String({ pattern: '^\\d+$' }),
        field: Type.String({ minLength: 1, maxLength: 500, description: 'A PHI path of the topic\'s schema, e.g. patient_id.' }),
        reason: Type.String({ minLength: 1, maxLength: 2000 }),
      }),
      response: { 200: Type.Object({ topic: Type.String(), partition: Type.Number(), offset: Type.String(), field: Type.String(), revealed: Type.Array(Type.String()), value: Type.Unknown() }, { additionalProperties: true }) },
    },
  }, async (request) => {
    const caller = request.caller as Caller;
    const { topic } = request.params;
    const { partition, offset, field } = request.body;
    const reason = request.body.reason.trim();
    const position = `${topic}/${partition}@${offset}`;
    const parameters = { topic, partition, offset, field, via: 'console' };
    const operator = await allow(caller, 'record.reveal', position, reason);
    return session.audited(operator, 'record.reveal', position, { reason, parameters }, async () => {
      const record = await data.revealRecordField(topic, partition, BigInt(offset), field);
      if (!record) throw new LifelineError('LL_CONFIG_INVALID', `no record at ${position}`);
      return { value: record, detail: `field ${field} of ${position} shown unmasked; its other PHI fields stayed masked` };
    });
  });

  // ---- consumer groups and offsets ----------------------------------------------------------------

  app.get('/api/groups', { preHandler: reader, schema: { tags: ['groups'], summary: 'Consumer groups of this topology with lag per partition and its owner', response: { 200: GroupsView } } }, () => data.groups());

  app.post('/api/groups/:group/reset-dry-run', {
    preHandler: changer,
    schema: { tags: ['groups'], summary: 'What an offset reset would do per partition (nothing changes); plan it with POST /api/replay-plans', params: Type.Object({ group: Type.String({ minLength: 1 }) }), body: ResetTargetBody, response: { 200: ResetDryRunView } },
  }, async (request) => {
    const admin = await session.admin();
    const target = resetTarget(request.body);
    // Counted as the CLI's dry run counts them: records read committed, not offsets (markers left out).
    const rows = await withRecordCounts(session.kafka, await planReset(admin, await resetScope(admin, topology, { group: request.params.group }), target));
    return {
      refreshedAt: Date.now(), group: request.params.group, target: describeTarget(target), totalToReprocess: totalToReprocess(rows).toString(),
      partitions: rows.map((row) => ({ topic: row.topic, partition: row.partition, current: row.current?.toString() ?? null, target: row.target.toString(), toReprocess: row.toReprocess.toString(), ...(row.records !== undefined ? { records: row.records.toString(), recordsExact: row.recordsExact ?? false } : {}), ...(row.note ? { note: row.note } : {}) })),
    };
  });

  // ---- audit ---------------------------------------------------------------------------------------

  const auditFilter = (query: { action?: string; who?: string; target?: string; result?: 'started' | 'succeeded' | 'failed' | 'refused'; since?: string; until?: string }) => ({
    ...(query.action ? { action: query.action } : {}),
    ...(query.who ? { who: query.who } : {}),
    ...(query.target ? { target: query.target } : {}),
    ...(query.result ? { result: query.result } : {}),
    ...(query.since ? { since: Date.parse(query.since) } : {}),
    ...(query.until ? { until: Date.parse(query.until) } : {}),
  });

  app.get('/api/audit', { preHandler: reader, schema: { tags: ['audit'], summary: 'Every control action: who, what, why, when, result', querystring: AuditQuery, response: { 200: AuditView } } }, (request) => data.auditEntries(auditFilter(request.query), request.query.limit ?? 500));

  app.get('/api/audit.csv', { preHandler: reader, schema: { tags: ['audit'], summary: 'The same entries as CSV', querystring: AuditQuery } }, async (request, reply) => {
    const { entries } = await data.auditEntries(auditFilter(request.query), request.query.limit ?? 10_000);
    const columns = ['at', 'who', 'roles', 'action', 'target', 'reason', 'result', 'detail', 'parameters', 'action_id', 'client'] as const;
    const rows = entries.map((entry) => columns.map((column) => csvCell(column === 'at' ? new Date(entry.at).toISOString() : column === 'roles' ? entry.roles.join(' ') : entry[column])).join(','));
    reply.header('content-type', 'text/csv; charset=utf-8').header('content-disposition', 'attachment; filename="lifeline-audit.csv"');
    return [columns.join(','), ...rows].join('\r\n') + '\r\n';
  });

  // ---- monitoring generated from the topology (as `lifeline observe rules|dashboard`) ----------------

  app.get('/api/observe/rules', { preHandler: reader, schema: { tags: ['observe'], summary: 'Prometheus alerting rules generated from this topology (YAML), as `lifeline observe rules` writes them' } }, async (_request, reply) => {
    reply.header('content-type', 'application/yaml; charset=utf-8').header('content-disposition', 'attachment; filename="lifeline-rules.yml"');
    return alertRulesYaml(topology);
  });

  app.get('/api/observe/dashboard', { preHandler: reader, schema: { tags: ['observe'], summary: 'A Grafana dashboard generated from this topology (JSON), as `lifeline observe dashboard` writes it' } }, async (_request, reply) => {
    reply.header('content-disposition', 'attachment; filename="lifeline-dashboard.json"');
    return dashboard(topology);
  });

  app.get('/api/openapi.json', { schema: { hide: true } }, () => app.swagger());

  // ---- the page ----------------------------------------------------------------------------------

  const assets = options.assetsDir ?? DEFAULT_ASSETS_DIR;
  if (existsSync(`${assets}/index.html`)) {
    await app.register(fastifyStatic, { root: assets, prefix: '/', index: false, wildcard: false, maxAge: '1h' });
    for (const path of PAGE_PATHS) app.get(path, { schema: { hide: true } }, (_request, reply) => reply.header('cache-control', 'no-cache').sendFile('index.html'));
  } else {
    logger.warn({ assets }, 'the console page is not built: run `npm run build:console` (the API works without it)');
    for (const path of PAGE_PATHS) {
      app.get(path, { schema: { hide: true } }, (_request, reply) => reply.code(503).type('text/plain').send('The console page is not built: run `npm run build:console`. The API is under /api (OpenAPI: /api/openapi.json).'));
    }
  }

  return {
    app,
    stop: async () => {
      await app.close();
      await incidents?.stop();
      await statuses.stop();
    },
  };
}

/** Builds the console and listens. */
export async function startConsole(options: ConsoleServerOptions): Promise<RunningConsole> {
  const { app, stop } = await buildConsole(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ port: options.port, host });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  return { app, port, url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`, close: stop };
}

async function auditRefusal(session: OpsSession, action: string, target: string, who: string, roles: readonly string[], why: string): Promise<void> {
  try {
    await session.refuse(action, target, who, roles, why);
  } catch (error) {
    if (!(error instanceof LifelineError && error.code === 'LL_NOT_AUTHORISED')) throw error;
  }
}

function headerOf(request: FastifyRequest, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function filterOf(body: { errorClasses?: string[]; key?: string; originTopic?: string; since?: string; until?: string }): DeadLetterFilter {
  return {
    ...(body.errorClasses && body.errorClasses.length > 0 ? { errorClasses: body.errorClasses } : {}),
    ...(body.key !== undefined ? { key: body.key } : {}),
    ...(body.originTopic !== undefined ? { originTopic: body.originTopic } : {}),
    ...(body.since !== undefined ? { since: Date.parse(body.since) } : {}),
    ...(body.until !== undefined ? { until: Date.parse(body.until) } : {}),
  };
}

function planView(plan: ReplayPlan): Record<string, unknown> {
  let spec: unknown;
  try {
    spec = JSON.parse(plan.spec);
  } catch {
    spec = plan.spec;
  }
  return { ...plan, spec };
}

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  // A cell starting with = + - @ would be a formula in a spreadsheet: quote it with a leading apostrophe.
  const safe = /^[=+\-@\t\r]/.test(text) ? `'${text}` : text;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}
