// The golden path over SASL_SSL as the least-privileged runtime principal, with the registry and
// Odoo reached over HTTPS through TLS fronts whose certificate a private CA made by the test signed. The test starts its own
// secure broker (its own LIFELINE_HOME and ports; the shared plaintext broker is not touched):
// SASL_SSL listener, SCRAM users `admin` and `lifeline`, a self-signed CA, StandardAuthorizer ACLs.
// `lifeline apply --execute` (admin) creates the repository topology's topics, registers its schemas
// and grants `lifeline` exactly its rights; then two `lifeline run` processes (intake; processors and
// sinks) connect as `lifeline`, partner webhooks and pharmacy file drops go in, and the bills land in
// the Odoo simulator exactly once. Then the runtime principal is refused what it may not do.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { logLevel, type Kafka, type logCreator } from 'kafkajs';
import { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { externalName } from '../../connectors/odoo/odoo-sink.ts';
import { planTraffic } from '../../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../../dev/demo/traffic-sender.ts';
import { secureKafkaAccess, startKafka, stopKafka, type SecureKafkaAccess } from '../../dev/infra/kafka-broker.ts';
import { localInfraSettings, type LocalInfraSettings } from '../../dev/infra/settings.ts';
import { startOdooSimulator } from '../../dev/odoo-simulator/odoo-simulator.ts';
import { createKafka } from '../../src/kafka/client.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { writeGoldenTopology } from '../../testing/golden-path-fixture.ts';
import { infra, uniqueName } from '../../testing/harness.ts';
import { makePrivateCa } from '../../testing/private-ca.ts';
import { startTlsProxy } from '../../testing/tls-proxy.ts';
import { waitForQuiescence } from '../../testing/quiescence.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';

const EVENTS = 300;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let settings: LocalInfraSettings | undefined;
let access: SecureKafkaAccess;
let bootstrap: string;

before(async () => {
  const shared = localInfraSettings();
  settings = { ...shared, root: mkdtempSync(join(tmpdir(), 'lifeline-secure-golden-')), cacheDir: shared.cacheDir, kafkaPort: await freePort(), controllerPort: await freePort(), secure: true };
  await startKafka(settings);
  access = secureKafkaAccess(settings);
  bootstrap = `127.0.0.1:${settings.kafkaPort}`;
}, { timeout: 240_000 });

after(async () => {
  if (!settings) return;
  await stopKafka(settings, { kill: true });
  rmSync(settings.root, { recursive: true, force: true });
});

function kafkaAs(user: 'admin' | 'runtime', log?: string[]): Kafka {
  const { username, password } = user === 'admin' ? access.admin : access.runtime;
  const logCreator: logCreator | undefined = log ? () => ({ level, log: entry }) => { if (level <= logLevel.WARN) log.push(`${String(entry.message)} ${String(entry.error ?? '')}`); } : undefined;
  return createKafka({ brokers: [bootstrap], clientId: uniqueName(`secure-golden-${user}`), tls: { caFile: access.caFile }, sasl: { mechanism: access.mechanism, username, password } }, logCreator);
}

test('golden path over SASL_SSL as the runtime principal (registry and Odoo over HTTPS, private CA): webhooks and file drops become bills in Odoo exactly once; the runtime may not create topics or use another app\'s groups and topics', { timeout: 300_000 }, async (t) => {
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  const testStarted = Date.now();
  try {
    const simulator = await startOdooSimulator({ port: 0 });
    cleanups.push(() => simulator.close());
    const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
    cleanups.push(() => odoo.close());
    // The registry and Odoo over HTTPS too, behind TLS fronts with a certificate from the hospital's own CA.
    const ca = makePrivateCa('St Mary\'s test CA');
    cleanups.push(() => rmSync(ca.dir, { recursive: true, force: true }));
    const registry = new URL((await infra()).registryUrl);
    const registryFront = await startTlsProxy({ host: registry.hostname, port: Number(registry.port) }, ca);
    cleanups.push(() => registryFront.close());
    const odooFront = await startTlsProxy({ host: '127.0.0.1', port: Number(new URL(simulator.url).port) }, ca);
    cleanups.push(() => odooFront.close());
    const topology = await writeGoldenTopology({
      simulator, warnAfter: '10m', breachAfter: '15m',
      secureKafka: { brokers: [bootstrap], caFile: access.caFile, username: access.runtime.username, password: access.runtime.password },
      https: { registryUrl: `${registryFront.origin}${registry.pathname}`, odooUrl: odooFront.origin, caFile: ca.caFile },
    });
    cleanups.push(() => rmSync(topology.dir, { recursive: true, force: true }));

    // Set-up as the admin principal: topics, schemas and the runtime's ACLs, audited.
    const adminEnv = { ...topology.env, LIFELINE_KAFKA_ADMIN_USERNAME: access.admin.username, LIFELINE_KAFKA_ADMIN_PASSWORD: access.admin.password };
    const applied = await runLifeline(['apply', '--topology', topology.file, '--execute', '--reason', 'secure golden path test'], { env: adminEnv });
    assert.equal(applied.code, 0, applied.stderr + applied.stdout);
    assert.match(applied.stdout, /ACLs for User:lifeline: \d+ needed, [1-9]\d* to add/);
    assert.match(applied.stdout, /applied: [1-9]\d* topic\(s\) created/);

    t.diagnostic(`lifeline apply --execute took ${((Date.now() - testStarted) / 1000).toFixed(1)} s`);
    // Running as `lifeline`: the processes get no admin credentials.
    const started = Date.now();
    const intake = new LifelineProcess(topology.file, ['--only', topology.intakeLabels.join(',')], topology.env).start();
    cleanups.push(() => intake.kill('SIGTERM'));
    const pipeline = new LifelineProcess(topology.file, ['--only', topology.pipelineLabels.join(',')], topology.env).start();
    cleanups.push(() => pipeline.kill('SIGTERM'));
    const listening = await intake.waitForLine(/"msg":"webhook source listening"/, 120_000);
    const webhookUrl = `http://127.0.0.1:${String((JSON.parse(listening) as { port: number }).port)}`;
    await intake.waitForLine(/"msg":"lifeline running"/, 120_000);
    await pipeline.waitForLine(/"msg":"lifeline running"/, 120_000);
    t.diagnostic(`both processes running as User:lifeline ${((Date.now() - started) / 1000).toFixed(1)} s after start`);

    const admin = kafkaAs('admin');
    const serde = await registeredSerde();
    const products = await new TopicCollector<{ default_code: string | null }>(admin, topology.topic('odoo.product.changed.v1'), serde).start();
    cleanups.push(() => products.stop());
    await waitFor('the Odoo products to reach their topic (odoo_source over SASL_SSL)', 60_000, () => products.records.length >= 19);

    const plan = planTraffic({ events: EVENTS, duplicateRatio: 0.2, corrections: 5 });
    const stats = await sendTraffic(plan.deliveries, { webhookUrl, secrets: topology.secrets, inboxDir: topology.inboxDir, ratePerSecond: 150 });
    assert.deepEqual(stats.failed, [], 'every delivery is answered 2xx');
    assert.ok(stats.files > 0 && stats.accepted > 0, `webhooks (${stats.accepted}) and file drops (${stats.files}) both went in`);

    const expectedBills = new Set([...plan.expected.charges.keys(), ...plan.expected.dispenses.keys()]);
    await waitFor('Odoo to hold every bill and receipt', 120_000, async () => {
      const bills = await odoo.searchCount('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]]);
      const receipts = await odoo.searchCount('ir.model.data', [['module', '=', 'lifeline'], ['model', '=', 'stock.picking']]);
      return bills >= expectedBills.size && receipts >= plan.expected.deliveries.size;
    });
    const inOdoo = (Date.now() - started) / 1000;
    // Nothing in flight any more (a late duplicate would have been written by now), then Odoo is read.
    await waitForQuiescence(admin, topology.pipelineLabels.map((label) => `${topology.appId}.${label}`), 60_000);
    t.diagnostic(`${stats.events} partner events (${stats.accepted} webhooks accepted, ${stats.files} files) in Odoo ${inOdoo.toFixed(1)} s after start, settled at ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const bills = await odoo.searchRead('account.move', [['move_type', '=', 'in_invoice'], ['ref', 'like', plan.runId]], { fields: ['ref', 'invoice_line_ids'] });
    const refs = bills.map((bill) => String(bill.ref));
    assert.equal(new Set(refs).size, refs.length, 'no charge or dispense was billed twice');
    assert.deepEqual(new Set(refs), expectedBills, 'Odoo holds a bill for exactly the unique charges and dispenses');
    const lines = await odoo.read('account.move.line', bills.flatMap((bill) => bill.invoice_line_ids as number[]), ['move_id', 'price_unit']);
    const priceByBill = new Map(lines.map((line) => [(line.move_id as [number, string])[0], line.price_unit]));
    for (const bill of bills) {
      const charge = plan.expected.charges.get(String(bill.ref));
      const dispense = plan.expected.dispenses.get(String(bill.ref));
      const total = charge ? (charge.unitPriceMinor * charge.quantity) / 100 : (dispense?.totalMinor ?? Number.NaN) / 100;
      assert.equal(priceByBill.get(bill.id), total, `bill ${String(bill.ref)} has the ${charge?.corrected ? 'amended ' : ''}total`);
    }
    const receipts = await odoo.searchRead('ir.model.data', [['module', '=', 'lifeline'], ['model', '=', 'stock.picking']], { fields: ['name'] });
    assert.deepEqual(new Set(receipts.map((row) => String(row.name))), new Set([...plan.expected.deliveries.keys()].map(externalName)), 'one receipt per unique supply delivery');
    for (const [name, process] of [['intake', intake], ['pipeline', pipeline]] as const) {
      // (kafkajs logs the broker's retriable CONCURRENT_TRANSACTIONS at error level; Lifeline retries it.)
      const denied = process.lines.filter((line) => /AUTHORIZATION_FAILED|LL_KAFKA_NOT_AUTHORISED|"level":"fatal"/.test(line) || (/"level":"error"/.test(line) && !/"component":"kafkajs"/.test(line)));
      assert.deepEqual(denied, [], `${name} ran without an authorisation error or an error-level line of its own`);
    }

    t.diagnostic(`Odoo checked at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    // What the runtime principal may not do.
    const refusalsStarted = Date.now();
    const otherApp = `other-${topology.appId}`;
    const otherTopic = `ops.other_${topology.appId.replace(/-/g, '_')}.events.v1`;
    const adminClient = admin.admin();
    await adminClient.connect();
    cleanups.push(() => adminClient.disconnect());
    await adminClient.createTopics({ topics: [{ topic: otherTopic, numPartitions: 1 }], waitForLeaders: true });
    await adminClient.setOffsets({ groupId: `${otherApp}.readers`, topic: topology.topic('billing.vendor_bill.written.v1'), partitions: [{ partition: 0, offset: '0' }] });
    // kafkajs turns a refused FindCoordinator into "Failed to find group coordinator"; the broker's
    // answer is in its log, so the refusals are checked against both (and beside an allowed control).
    const runtimeLog: string[] = [];
    const runtime = kafkaAs('runtime', runtimeLog);
    const refused = async (what: string, action: () => Promise<unknown>): Promise<void> => {
      const from = runtimeLog.length;
      const error = await action().then(() => undefined, (caught: unknown) => caught);
      assert.ok(error, `the runtime principal may not: ${what}`);
      assert.ok(isRefusal(error) || runtimeLog.slice(from).some((line) => /authorization failed/i.test(line)), `${what}: refused for want of rights, not for another reason: ${String(error)} ${runtimeLog.slice(from).join(' | ')}`);
    };
    t.diagnostic(`another app's topic and group made at ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const runtimeAdmin = runtime.admin();
    await runtimeAdmin.connect();
    cleanups.push(() => runtimeAdmin.disconnect());
    const billsWritten = topology.topic('billing.vendor_bill.written.v1');
    const ownGroup = `${topology.appId}.${topology.label('charge_bills')}`;
    assert.ok((await runtimeAdmin.fetchOffsets({ groupId: ownGroup })).length > 0, 'the runtime reads its own group\'s offsets');
    await refused('create a topic', () => runtimeAdmin.createTopics({ topics: [{ topic: `${billsWritten}.extra` }] }));
    await refused('delete one of its own topics', () => runtimeAdmin.deleteTopics({ topics: [billsWritten] }));
    await refused('read another app\'s group offsets', () => runtimeAdmin.fetchOffsets({ groupId: `${otherApp}.readers` }));
    await refused('describe another app\'s topic', () => runtimeAdmin.fetchTopicMetadata({ topics: [otherTopic] }));
    await refused('join another app\'s group', () => consumeOnce(runtime, `${otherApp}.readers`, billsWritten));
    await refused('read another app\'s topic', () => consumeOnce(runtime, `${topology.appId}.intruder`, otherTopic));
    assert.ok((await adminClient.listTopics()).includes(topology.topic('billing.vendor_bill.written.v1')), 'its topic is still there');
    t.diagnostic(`six refusals checked in ${((Date.now() - refusalsStarted) / 1000).toFixed(1)} s`);
  } finally {
    const stopping = Date.now();
    for (const cleanup of cleanups.reverse()) await Promise.resolve().then(cleanup).catch(() => undefined);
    t.diagnostic(`stopped in ${((Date.now() - stopping) / 1000).toFixed(1)} s`);
  }
});

/** A Kafka authorisation refusal, also when wrapped (createTopics reports per-topic errors in an aggregate). */
function isRefusal(error: unknown): boolean {
  const texts: string[] = [];
  const walk = (value: unknown, depth: number): void => {
    if (!value || typeof value !== 'object' || depth > 4) return;
    const { message, type, errors, cause } = value as { message?: unknown; type?: unknown; errors?: unknown; cause?: unknown };
    texts.push(String(message ?? ''), String(type ?? ''));
    if (Array.isArray(errors)) for (const inner of errors) walk(inner, depth + 1);
    walk(cause, depth + 1);
  };
  walk(error, 0);
  return texts.some((text) => /AUTHORIZATION_FAILED|not authorized/i.test(text));
}

/** Joins `groupId` and reads `topic` from the beginning until the first record or a refusal. */
async function consumeOnce(kafka: Kafka, groupId: string, topic: string): Promise<void> {
  const consumer = kafka.consumer({ groupId, retry: { retries: 0 } });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${groupId} read nothing from ${topic} within 30 s`)), 30_000);
      consumer.on(consumer.events.CRASH, ({ payload }) => { clearTimeout(timer); reject(payload.error); });
      consumer.run({ eachMessage: async () => { clearTimeout(timer); resolve(); } }).catch((error: unknown) => { clearTimeout(timer); reject(error as Error); });
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

async function waitFor(what: string, timeoutMs: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}
