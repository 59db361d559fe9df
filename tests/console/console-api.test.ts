import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { deadLetterTopic } from '../../src/topology/model.ts';
import { DEAD_LETTER_PATIENT, PATIENT_IDS, startConsoleFixture, type ConsoleFixture } from './console-fixture.ts';

/** The console's JSON API against the real broker: views, PHI masking, role checks on every change, plan → approve, audit. */

let fixture: ConsoleFixture;
before(async () => {
  fixture = await startConsoleFixture();
}, { timeout: 300_000 });
after(async () => {
  await fixture?.close();
});

interface Answer<T = Record<string, unknown>> { status: number; body: T; text: string; headers: Headers }

async function request<T = Record<string, unknown>>(method: string, path: string, options: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Answer<T>> {
  const response = await fetch(`${fixture.console.url}${path}`, {
    method,
    headers: { ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(options.headers ?? {}) },
    ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // CSV and pages are not JSON
  }
  return { status: response.status, body: body as T, text, headers: response.headers };
}

function assertNoPhi(text: string, where: string): void {
  for (const mrn of [...PATIENT_IDS, DEAD_LETTER_PATIENT]) assert.ok(!text.includes(mrn), `${where} shows the patient id ${mrn}`);
}

interface FlowNode { id: string; kind: string; health: string; state: string; deadLetters: number; recordsIn: number; lag: number; instances: string[] }

test('the flows graph shows the source and the dedup with live status from _lifeline.status, lag and dead letters; a node has its detail', { timeout: 120_000 }, async () => {
  const unauthenticated = await request('GET', '/api/flows');
  assert.equal(unauthenticated.status, 401);

  let flows: Answer<{ nodes: FlowNode[]; edges: Array<{ from: string; to: string; topic: string }>; processes: Array<{ components: string[] }>; refreshedAt: number }> | undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    flows = await request('GET', '/api/flows', { headers: fixture.as('viola') });
    assert.equal(flows.status, 200, flows.text);
    const dedupNode = flows.body.nodes.find((node) => node.id === fixture.dedup);
    if (dedupNode && dedupNode.instances.length > 0 && dedupNode.recordsIn >= 4 && dedupNode.deadLetters >= 1) break;
    if (Date.now() > deadline) assert.fail(`the dedup never showed its records and dead letter: ${flows.text}`);
    await sleep(1000);
  }
  const nodes = new Map(flows.body.nodes.map((node) => [node.id, node]));
  assert.equal(nodes.get(fixture.source)?.kind, 'source');
  assert.equal(nodes.get(fixture.source)?.health, 'ok');
  const dedupNode = nodes.get(fixture.dedup) as FlowNode;
  assert.equal(dedupNode.kind, 'processor');
  assert.equal(dedupNode.health, 'warn', 'a dead letter colours the node amber');
  assert.equal(dedupNode.deadLetters, 1);
  assert.ok(flows.body.edges.some((edge) => edge.from === fixture.source && edge.to === fixture.dedup && edge.topic === fixture.received), 'source → dedup over the received topic');
  assert.ok(flows.body.edges.some((edge) => edge.from === fixture.dedup && edge.to === `topic:${fixture.deduplicated}`), 'dedup → its output for subscribers');
  assert.ok(flows.body.processes.some((process) => process.components.includes(fixture.dedup)));
  assert.ok(Date.now() - flows.body.refreshedAt < 30_000);

  const detail = await request<{ declaration: { config: Record<string, unknown>; inputs: string[] }; group: { partitions: Array<{ topic: string; partition: number; memberId: string | null }> }; processes: unknown[] }>('GET', `/api/flows/${fixture.dedup}`, { headers: fixture.as('viola') });
  assert.equal(detail.status, 200, detail.text);
  assert.deepEqual(detail.body.declaration.inputs, [fixture.received]);
  assert.equal(detail.body.declaration.config.ttl, '1d');
  assert.equal(detail.body.group.partitions.length, 2, 'both input partitions, each with its owner');
  assert.ok(detail.body.group.partitions.every((partition) => partition.memberId !== null));
  assert.equal(detail.body.processes.length, 1, JSON.stringify(detail.body.processes));
  assert.equal((await request('GET', '/api/flows/no_such_component', { headers: fixture.as('viola') })).status, 404);
});

test('dead letters: grouped by fingerprint, browsed with PHI masked', { timeout: 60_000 }, async () => {
  const groups = await request<{ components: Array<{ component: string; count: number }>; groups: Array<{ component: string; errorClass: string; count: number; message: string }> }>('GET', '/api/dead-letters', { headers: fixture.as('viola') });
  assert.equal(groups.status, 200, groups.text);
  assert.deepEqual(groups.body.components.find((row) => row.component === fixture.dedup)?.count, 1);
  const group = groups.body.groups.find((candidate) => candidate.component === fixture.dedup);
  assert.equal(group?.count, 1);
  assert.match(group?.message ?? '', /no idempotency key/);

  const letters = await request<{ total: number; records: Array<{ value: { patient_id: string; entity_key: string }; origin: { topic: string } }> }>('GET', `/api/dead-letters/${fixture.dedup}`, { headers: fixture.as('viola') });
  assert.equal(letters.status, 200, letters.text);
  assert.equal(letters.body.total, 1);
  assert.equal(letters.body.records[0]?.value.patient_id, '[PHI]');
  assert.equal(letters.body.records[0]?.value.entity_key, 'clinic|charge|NOKEY');
  assert.equal(letters.body.records[0]?.origin.topic, fixture.received);
  assertNoPhi(letters.text, 'the dead-letter view');
});

test('revealing a dead letter\'s PHI is admin-only, one record at a time, audited before it is shown', { timeout: 60_000 }, async () => {
  const letters = await request<{ records: Array<{ deadLetter: string }> }>('GET', `/api/dead-letters/${fixture.dedup}`, { headers: fixture.as('viola') });
  const position = letters.body.records[0]?.deadLetter as string;
  const body = { deadLetter: position, reason: 'patient called about the charge' };
  for (const identity of ['viola', 'otto', 'april'] as const) {
    const refused = await request('POST', `/api/dead-letters/${fixture.dedup}/reveal`, { headers: fixture.as(identity), body });
    assert.equal(refused.status, 403, `${identity}: ${refused.text}`);
    assertNoPhi(refused.text, `the refusal to ${identity}`);
  }
  const revealed = await request<{ value: { patient_id: string }; revealed: boolean }>('POST', `/api/dead-letters/${fixture.dedup}/reveal`, { headers: fixture.as('adam'), body });
  assert.equal(revealed.status, 200, revealed.text);
  assert.equal(revealed.body.value.patient_id, DEAD_LETTER_PATIENT);
  const wrong = await request('POST', `/api/dead-letters/${fixture.dedup}/reveal`, { headers: fixture.as('adam'), body: { deadLetter: 'ops.dlq.other.v1/0@0', reason: 'x' } });
  assert.equal(wrong.status, 400);
  const audit = await request<{ entries: Array<{ who: string; action: string; result: string; reason: string }> }>('GET', `/api/audit?action=dlq.reveal&target=${deadLetterTopic(fixture.dedup)}`, { headers: fixture.as('viola') });
  const trail = audit.body.entries.map((entry) => `${entry.who} ${entry.result}`).reverse();
  assert.deepEqual(trail.filter((line) => line.startsWith('adam')), ['adam started', 'adam succeeded']);
  for (const identity of ['viola', 'otto', 'april']) assert.ok(trail.includes(`${identity} refused`), `${identity}'s refusal is audited`);
  const still = await request('GET', `/api/dead-letters/${fixture.dedup}`, { headers: fixture.as('adam') });
  assertNoPhi(still.text, 'browsing after a reveal');
});

test('trace follows a charge across topics in time order, PHI masked', { timeout: 120_000 }, async () => {
  const key = fixture.entityKeys[0] as string;
  const trace = await request<{ hops: Array<{ topic: string; stage: string; at: number; spentMs: number; value: { patient_id?: string } }> }>('GET', `/api/trace?key=${encodeURIComponent(key)}`, { headers: fixture.as('viola') });
  assert.equal(trace.status, 200, trace.text);
  const stages = trace.body.hops.map((hop) => [hop.topic, hop.stage]);
  assert.deepEqual(stages, [[fixture.received, 'received'], [fixture.deduplicated, 'deduplicated']]);
  assert.ok((trace.body.hops[1]?.at ?? 0) >= (trace.body.hops[0]?.at ?? 0));
  assert.equal(trace.body.hops[0]?.value.patient_id, '[PHI]');
  assertNoPhi(trace.text, 'the trace');
  assert.equal((await request('GET', '/api/trace', { headers: fixture.as('viola') })).status, 400, 'a key is required');
});

test('topics and schemas: the catalogue marks PHI fields; the message viewer decodes, masks and filters, and refuses to search by a PHI field', { timeout: 60_000 }, async () => {
  const topics = await request<{ topics: Array<{ name: string; classification: string; phiFields: string[]; fields: Array<{ path: string; phi: boolean }>; writtenBy: string[]; messages: string | null; registry: unknown }> }>('GET', '/api/topics', { headers: fixture.as('viola') });
  assert.equal(topics.status, 200, topics.text);
  const received = topics.body.topics.find((topic) => topic.name === fixture.received);
  assert.equal(received?.classification, 'phi');
  assert.ok(received?.phiFields.includes('patient_id'));
  assert.equal(received?.fields.find((field) => field.path === 'patient_id')?.phi, true);
  assert.equal(received?.fields.find((field) => field.path === 'entity_key')?.phi, false);
  assert.deepEqual(received?.writtenBy, [fixture.source]);
  // From the registry's Confluent API: Lifeline registers each subject with BACKWARD; this run's subject has one version.
  assert.deepEqual(received?.registry, { subject: `${fixture.received}-value`, registered: true, compatibility: 'BACKWARD', compatibilitySource: 'subject', versions: 1, latestVersion: 1 });

  const all = await request<{ records: Array<{ key: string; value: { patient_id: string } }> }>('GET', `/api/topics/${fixture.deduplicated}/messages`, { headers: fixture.as('viola') });
  assert.equal(all.status, 200, all.text);
  assert.equal(all.body.records.length, 3);
  assert.ok(all.body.records.every((record) => record.value.patient_id === '[PHI]'));
  assertNoPhi(all.text, 'the message viewer');
  const key = fixture.entityKeys[1] as string;
  const byKey = await request<{ records: Array<{ key: string }> }>('GET', `/api/topics/${fixture.deduplicated}/messages?key=${encodeURIComponent(key)}`, { headers: fixture.as('viola') });
  assert.deepEqual(byKey.body.records.map((record) => record.key), [key]);
  const byField = await request<{ records: Array<{ key: string }> }>('GET', `/api/topics/${fixture.deduplicated}/messages?field=entity_key&value=${encodeURIComponent(key)}`, { headers: fixture.as('viola') });
  assert.deepEqual(byField.body.records.map((record) => record.key), [key]);
  const byPhi = await request('GET', `/api/topics/${fixture.deduplicated}/messages?field=patient_id&value=${PATIENT_IDS[0]}`, { headers: fixture.as('viola') });
  assert.equal(byPhi.status, 400, 'searching by a PHI value would tell whether the patient is there');
  assert.equal((await request('GET', '/api/topics/not.a.topic.v1/messages', { headers: fixture.as('viola') })).status, 400);
});

test('the message viewer reveals one PHI field of one message to an admin, audited with topic, partition, offset and field; the other fields stay masked', { timeout: 60_000 }, async () => {
  const all = await request<{ records: Array<{ partition: number; offset: string; key: string; value: { patient_id: string; refs: { account_ref: string | null } } }> }>('GET', `/api/topics/${fixture.deduplicated}/messages`, { headers: fixture.as('adam') });
  assert.equal(all.status, 200, all.text);
  const target = all.body.records[0];
  assert.ok(target);
  assert.equal(target.value.patient_id, '[PHI]', 'masked for an admin too until revealed');
  const body = { partition: target.partition, offset: target.offset, field: 'patient_id', reason: 'billing dispute INC-4711' };
  const path = `/api/topics/${fixture.deduplicated}/reveal`;
  for (const identity of ['viola', 'otto', 'april'] as const) {
    const refused = await request('POST', path, { headers: fixture.as(identity), body });
    assert.equal(refused.status, 403, `${identity} may not reveal: ${refused.text}`);
    assertNoPhi(refused.text, `the refusal to ${identity}`);
  }
  const notPhi = await request('POST', path, { headers: fixture.as('adam'), body: { ...body, field: 'entity_key' } });
  assert.equal(notPhi.status, 400, 'only a PHI field is revealed (the rest is shown already)');

  const revealed = await request<{ field: string; revealed: string[]; key: string; value: { patient_id: string; entity_key: string; refs: { account_ref: string | null; visit_ref: string | null } } }>('POST', path, { headers: fixture.as('adam'), body });
  assert.equal(revealed.status, 200, revealed.text);
  assert.ok(PATIENT_IDS.includes(revealed.body.value.patient_id), `the patient id is shown: ${revealed.text}`);
  assert.equal(revealed.body.key, target.key);
  assert.deepEqual(revealed.body.revealed, ['patient_id']);
  assert.equal(revealed.body.value.refs.account_ref, '[PHI]', 'another PHI field of the same message stays masked');
  assert.equal(revealed.body.value.entity_key, target.key, 'fields that are not PHI are shown as always');
  const others = PATIENT_IDS.filter((mrn) => mrn !== revealed.body.value.patient_id);
  for (const mrn of others) assert.ok(!revealed.text.includes(mrn), 'no other message is revealed');

  const audit = await request<{ entries: Array<{ who: string; action: string; result: string; reason: string; target: string; parameters: string }> }>('GET', '/api/audit?action=record.reveal', { headers: fixture.as('viola') });
  const position = `${fixture.deduplicated}/${target.partition}@${target.offset}`;
  const trail = audit.body.entries.filter((entry) => entry.target === position).reverse();
  // The attempt on a field that is not PHI is audited too (started, failed), then the reveal (started, succeeded).
  assert.deepEqual(trail.filter((entry) => entry.who === 'adam').map((entry) => entry.result), ['started', 'failed', 'started', 'succeeded'], `audited before and after: ${audit.text}`);
  const started = trail.filter((entry) => entry.who === 'adam' && entry.result === 'started')[1];
  assert.equal(started?.reason, 'billing dispute INC-4711');
  assert.deepEqual(JSON.parse(started?.parameters ?? '{}'), { topic: fixture.deduplicated, partition: target.partition, offset: target.offset, field: 'patient_id', via: 'console' });
  for (const identity of ['viola', 'otto', 'april']) assert.ok(trail.some((entry) => entry.who === identity && entry.result === 'refused'), `${identity}'s refusal is audited`);
  assertNoPhi(audit.text, 'the audit trail');
});

test('the SLA board buckets open transactions by age and lists the warned and the breached', { timeout: 60_000 }, async () => {
  const sla = await request<{ flows: Array<{ flow: string; open: Record<string, number>; warned: Array<{ transactionKey: string; owner: string }>; breached: Array<{ transactionKey: string }>; completed: number; breachAgeing: Record<string, number> }> }>('GET', '/api/sla', { headers: fixture.as('viola') });
  assert.equal(sla.status, 200, sla.text);
  const flow = sla.body.flows.find((candidate) => candidate.flow === 'charge_to_invoice');
  assert.ok(flow, sla.text);
  assert.deepEqual(flow.open, { '< 5m': 1, '5-15m': 1, '15m-1h': 1, '1-4h': 0, '> 4h': 0 });
  assert.deepEqual(flow.warned.map((item) => [item.transactionKey, item.owner]), [['CH-WARN', 'billing-owner']]);
  assert.deepEqual(flow.breached.map((item) => item.transactionKey), ['CH-LATE']);
  assert.equal(flow.completed, 1);
  assert.equal(flow.breachAgeing['< 5m'], 1, 'the breach is 100 s old');
});

test('login: a session cookie (HttpOnly, SameSite=Strict) and a CSRF token every change must echo', { timeout: 60_000 }, async () => {
  const wrong = await request('POST', '/api/session', { body: { identity: 'viola', token: 'not-her-token-at-all' } });
  assert.equal(wrong.status, 401);
  const token = fixture.as('otto')['x-lifeline-token'] as string;
  const login = await request<{ identity: string; roles: string[]; csrfToken: string; permissions: Record<string, boolean> }>('POST', '/api/session', { body: { identity: 'otto', token } });
  assert.equal(login.status, 200, login.text);
  const cookie = login.headers.get('set-cookie') ?? '';
  assert.match(cookie, /lifeline_console=/);
  assert.match(cookie, /HttpOnly/i);
  assert.match(cookie, /SameSite=Strict/i);
  assert.deepEqual(login.body.roles, ['operator']);
  assert.equal(login.body.permissions['replay.plan'], true);
  assert.equal(login.body.permissions['replay.approve'], false, 'the page hides Approve from an operator');
  const session = { cookie: cookie.split(';')[0] as string };

  const me = await request<{ identity: string }>('GET', '/api/session', { headers: session });
  assert.equal(me.body.identity, 'otto');
  const withoutCsrf = await request('POST', `/api/dead-letters/${fixture.dedup}/dry-run`, { headers: session, body: {} });
  assert.equal(withoutCsrf.status, 403, 'a cookie session without the CSRF token changes nothing');
  const withCsrf = await request<{ toReplay: number; reaches: { components: string[] } }>('POST', `/api/dead-letters/${fixture.dedup}/dry-run`, { headers: { ...session, 'x-csrf-token': login.body.csrfToken }, body: {} });
  assert.equal(withCsrf.status, 200, withCsrf.text);
  assert.equal(withCsrf.body.toReplay, 1);
  assert.deepEqual(withCsrf.body.reaches.components, [fixture.dedup]);
  const logout = await request('DELETE', '/api/session', { headers: { ...session, 'x-csrf-token': login.body.csrfToken } });
  assert.equal(logout.status, 200);
  assert.equal((await request('GET', '/api/flows', { headers: session })).status, 401, 'the session ended');
});

test('every change is checked on the server: a viewer is refused on each route and the refusal is audited', { timeout: 120_000 }, async () => {
  const changes: Array<[string, string, unknown]> = [
    ['POST', '/api/replay-plans', { component: fixture.dedup, reason: 'viewer tries' }],
    ['POST', '/api/replay-plans/rp-00000000-000000/approve', { reason: 'viewer tries' }],
    ['POST', '/api/replay-plans/rp-00000000-000000/reject', { reason: 'viewer tries' }],
  ];
  for (const [method, path, body] of changes) {
    const byViewer = await request(method, path, { headers: fixture.as('viola'), body });
    assert.equal(byViewer.status, 403, `${method} ${path} by a viewer: ${byViewer.text}`);
    const anonymous = await request(method, path, { body });
    assert.equal(anonymous.status, 401, `${method} ${path} without identity`);
    const badToken = await request(method, path, { headers: { 'x-lifeline-operator': 'otto', 'x-lifeline-token': 'wrong-token-wrong-token' }, body });
    assert.equal(badToken.status, 401, `${method} ${path} with a wrong token`);
  }
  // An operator may plan but not approve.
  const operatorApproves = await request('POST', '/api/replay-plans/rp-00000000-000000/approve', { headers: fixture.as('otto'), body: { reason: 'x' } });
  assert.equal(operatorApproves.status, 403);
  const audit = await request<{ entries: Array<{ who: string; action: string; result: string }> }>('GET', '/api/audit?who=viola&result=refused', { headers: fixture.as('viola') });
  for (const action of ['replay.plan', 'replay.approve', 'replay.reject']) {
    assert.ok(audit.body.entries.some((entry) => entry.action === action), `the refused ${action} is audited: ${audit.text}`);
  }
});

test('replay through plan → approve by a second person, with the same audit records as the CLI; CSV export', { timeout: 180_000 }, async () => {
  const planned = await request<{ id: string; state: string; record_count: number; planned_by: string; sinks: string[] }>('POST', '/api/replay-plans', {
    headers: fixture.as('otto'), body: { component: fixture.dedup, reason: 'the sender fixed its headers' },
  });
  assert.equal(planned.status, 200, planned.text);
  assert.equal(planned.body.state, 'planned', 'over the approval threshold (0): it waits');
  assert.equal(planned.body.record_count, 1);
  assert.equal(planned.body.planned_by, 'otto');
  const id = planned.body.id;

  const listed = await request<{ plans: Array<{ id: string; state: string }> }>('GET', '/api/replay-plans', { headers: fixture.as('viola') });
  assert.equal(listed.body.plans.find((plan) => plan.id === id)?.state, 'planned');

  // The planner may not approve even as admin-like roles; here an admin plans and tries to approve their own plan.
  const own = await request<{ id: string }>('POST', '/api/replay-plans', { headers: fixture.as('adam'), body: { component: fixture.dedup, reason: 'admin plans' } });
  assert.equal(own.status, 200, own.text);
  const selfApproval = await request('POST', `/api/replay-plans/${own.body.id}/approve`, { headers: fixture.as('adam'), body: { reason: 'me' } });
  assert.equal(selfApproval.status, 403, selfApproval.text);
  const rejected = await request<{ state: string }>('POST', `/api/replay-plans/${own.body.id}/reject`, { headers: fixture.as('april'), body: { reason: 'one plan is enough' } });
  assert.equal(rejected.body.state, 'rejected');

  const approved = await request<{ state: string; approved_by: string; result_detail: string }>('POST', `/api/replay-plans/${id}/approve`, { headers: fixture.as('april'), body: { reason: 'checked the headers' } });
  assert.equal(approved.status, 200, approved.text);
  assert.equal(approved.body.state, 'executed');
  assert.equal(approved.body.approved_by, 'april');
  assert.match(approved.body.result_detail, /replayed 1/);
  const again = await request('POST', `/api/replay-plans/${id}/approve`, { headers: fixture.as('april'), body: { reason: 'twice' } });
  assert.equal(again.status, 409, 'an executed plan is not executed again');

  const audit = await request<{ entries: Array<{ who: string; action: string; result: string; target: string }> }>('GET', `/api/audit?target=${id}`, { headers: fixture.as('viola') });
  const trail = audit.body.entries.map((entry) => `${entry.who} ${entry.action} ${entry.result}`).reverse();
  assert.deepEqual(trail, [
    'otto replay.plan started', 'otto replay.plan succeeded',
    'april replay.approve started', 'april replay.approve succeeded',
    'april replay.approve failed',
  ]);
  const csv = await request('GET', `/api/audit.csv?target=${id}`, { headers: fixture.as('viola') });
  assert.equal(csv.status, 200);
  assert.match(csv.headers.get('content-type') ?? '', /text\/csv/);
  const lines = csv.text.trim().split('\r\n');
  assert.equal(lines[0], 'at,who,roles,action,target,reason,result,detail,parameters,action_id,client');
  assert.equal(lines.length, 6);

  // The replayed record went back to its origin (and, still without a key, failed again: a second dead letter).
  const deadline = Date.now() + 60_000;
  while ((await fixture.admin.fetchTopicOffsets(deadLetterTopic(fixture.dedup))).reduce((sum, entry) => sum + Number(entry.high), 0) < 2) {
    if (Date.now() > deadline) assert.fail('the replayed record never reached the dedup again');
    await sleep(500);
  }
  assertNoPhi(audit.text + csv.text, 'the audit trail');
});

test('the API is described by a generated OpenAPI document; the page is served for each view URL', { timeout: 30_000 }, async () => {
  const openapi = await request<{ openapi: string; paths: Record<string, Record<string, unknown>> }>('GET', '/api/openapi.json');
  assert.equal(openapi.status, 200);
  assert.equal(openapi.body.openapi, '3.1.0');
  for (const path of ['/api/flows', '/api/flows/{label}', '/api/sla', '/api/trace', '/api/dead-letters', '/api/dead-letters/{component}', '/api/replay-plans', '/api/replay-plans/{id}/approve', '/api/audit', '/api/session']) {
    assert.ok(openapi.body.paths[path], `${path} is documented`);
  }
  for (const path of ['/flows', '/sla', '/trace', '/dead-letters', '/audit']) {
    const page = await request('GET', path);
    assert.ok(page.status === 200 || page.status === 503, `${path}: ${page.status}`);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  }
});

test('the console serves the Prometheus rules and Grafana dashboard generated from its topology', { timeout: 30_000 }, async () => {
  assert.equal((await request('GET', '/api/observe/rules')).status, 401);
  const rules = await request('GET', '/api/observe/rules', { headers: fixture.as('viola') });
  assert.equal(rules.status, 200);
  assert.match(rules.headers.get('content-type') ?? '', /yaml/);
  const parsed = parse(rules.text) as { groups: Array<{ name: string; rules: Array<{ alert: string; expr: string }> }> };
  assert.equal(parsed.groups[0]?.name, `lifeline-${fixture.appId}`);
  assert.ok(parsed.groups[0]?.rules.some((rule) => rule.alert === 'LifelineDeadLetters' && rule.expr.includes(fixture.dedup)));
  const board = await request<{ title: string; panels: unknown[] }>('GET', '/api/observe/dashboard', { headers: fixture.as('viola') });
  assert.equal(board.status, 200);
  assert.equal(board.body.title, `Lifeline ${fixture.appId}`);
  assert.ok(board.body.panels.length > 0);
});

test('lifeline run --console-port embeds the same console in the runtime process', { timeout: 30_000 }, async () => {
  const flows = await fetch(`${fixture.embeddedUrl}/api/flows`, { headers: fixture.as('viola') });
  assert.equal(flows.status, 200);
  const body = await flows.json() as { nodes: Array<{ id: string }> };
  assert.ok(body.nodes.some((node) => node.id === fixture.dedup));
  assert.equal((await fetch(`${fixture.embeddedUrl}/api/flows`)).status, 401);
  const refused = await fetch(`${fixture.embeddedUrl}/api/replay-plans`, { method: 'POST', headers: { ...fixture.as('viola'), 'content-type': 'application/json' }, body: JSON.stringify({ component: fixture.dedup, reason: 'x' }) });
  assert.equal(refused.status, 403);
});

test('consumers: groups with lag per partition and owner; an offset reset is dry-run, planned by an operator and approved by an approver (the running group is paused and resumed)', { timeout: 180_000 }, async () => {
  const group = `${fixture.appId}.${fixture.dedup}`;
  const groups = await request<{ groups: Array<{ group: string; component: string; partitions: Array<{ topic: string; memberId: string | null }> }> }>('GET', '/api/groups', { headers: fixture.as('viola') });
  assert.equal(groups.status, 200, groups.text);
  const described = groups.body.groups.find((candidate) => candidate.group === group);
  assert.equal(described?.component, fixture.dedup);
  assert.equal(described?.partitions.length, 2);

  const dryRun = await request<{ totalToReprocess: string; partitions: Array<{ topic: string; target: string }> }>('POST', `/api/groups/${group}/reset-dry-run`, { headers: fixture.as('viola'), body: { toEarliest: true } });
  assert.equal(dryRun.status, 200, dryRun.text);
  assert.ok(Number(dryRun.body.totalToReprocess) >= 4, dryRun.text);
  assert.ok(dryRun.body.partitions.every((row) => row.topic === fixture.received && row.target === '0'));
  const bad = await request('POST', `/api/groups/${group}/reset-dry-run`, { headers: fixture.as('viola'), body: { toEarliest: true, toLatest: true } });
  assert.equal(bad.status, 400);

  const byViewer = await request('POST', '/api/replay-plans', { headers: fixture.as('viola'), body: { group, reset: { toEarliest: true }, reason: 'viewer tries' } });
  assert.equal(byViewer.status, 403);
  const planned = await request<{ id: string; state: string; kind: string }>('POST', '/api/replay-plans', { headers: fixture.as('otto'), body: { group, reset: { toEarliest: true }, reason: 'reprocess the day' } });
  assert.equal(planned.status, 200, planned.text);
  assert.equal(planned.body.kind, 'offsets');
  assert.equal(planned.body.state, 'planned');
  const approved = await request<{ state: string; result_detail: string }>('POST', `/api/replay-plans/${planned.body.id}/approve`, { headers: fixture.as('april'), body: { reason: 'ok' } });
  assert.equal(approved.status, 200, approved.text);
  assert.equal(approved.body.state, 'executed', approved.text);
  assert.match(approved.body.result_detail, /paused and resumed/);
  const after = await request<{ groups: Array<{ group: string; partitions: Array<{ committed: string | null }> }> }>('GET', '/api/groups', { headers: fixture.as('viola') });
  assert.ok(after.body.groups.some((candidate) => candidate.group === group), 'the group is back');
});
