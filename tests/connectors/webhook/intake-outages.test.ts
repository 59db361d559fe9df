import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { AvroSerde } from '../../../src/kafka/avro-serde.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { RuntimeMetrics } from '../../../src/observe/metrics.ts';
import { sourceDeadLetterMessage } from '../../../src/runtime/dead-letter.ts';
import { SourceHost } from '../../../src/runtime/source-host.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { decodeDelivery } from '../../../connectors/formats/partner-format.ts';
import { canonicalSourceRecord, headersFor } from '../../../connectors/partner-feed.ts';
import { webhookSource } from '../../../connectors/webhook/webhook-source.ts';
import { fileSource } from '../../../connectors/files/file-source.ts';
import { createTestTopics, infra, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { runLifeline, writeTestOperators } from '../../../testing/cli-runner.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, TopicCollector, registeredSerde, testEventTopic, type TestEvent } from '../../../testing/runtime-fixture.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import { uniqueLabel, writeTestTopology } from '../../../testing/topology-writer.ts';
import { deliver, newWebhookSecret, webhookPort, type DeliveryAnswer } from '../../../testing/partner-feed-fixture.ts';
import { metricValue, until } from '../../../testing/intake-fixture.ts';

/**
 * Issue 11, "outages are retried, never dead-lettered", on the real broker with the registry
 * behind a TCP proxy the test closes and reopens (the shared registry is never stopped): a source
 * that cannot encode answers 503 and dead-letters nothing; after an intake restart the schema ids
 * registered at start carry the process through a registry outage; a source dead letter replayed
 * by `lifeline dlq replay` is re-encoded in the origin topic's Avro format.
 */

const dft = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** A TCP proxy to the registry that can refuse connections (closed) and accept them again. */
class RegistryProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      this.sockets.add(client).add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => { client.destroy(); upstream.destroy(); this.sockets.delete(client); this.sockets.delete(upstream); };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as { port: number }).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function dftNumbered(index: number): string {
  return dft.replaceAll('DFT000123', `DFTOUT${index}`).replaceAll('TX-900', `TX-O${index}-`);
}

async function proxiedTopology(proxy: RegistryProxy, secretVariable: string): Promise<{ file: string; label: string; charges: string; quarantine: string }> {
  const charges = uniqueTopic('partner', 'lab_charge', 'received');
  const quarantine = uniqueTopic('ops', 'quarantine', 'received');
  const label = uniqueLabel('partner_webhooks');
  const { file } = await writeTestTopology({
    topics: {
      [charges]: { schema: 'schemas/partner/service_charge.avsc', partitions: 2, key: 'entity_key', classification: 'phi' },
      [quarantine]: { schema: 'schemas/ops/quarantine.avsc', partitions: 1, key: 'entity_key', classification: 'phi' },
    },
    connectors: {
      [label]: {
        type: 'webhook_source', outputs: { service_charges: charges, quarantine },
        config: { host: '127.0.0.1', port: 0, partners: [{ name: 'acme_lab', path: '/w/acme_lab', format: 'hl7v2', secrets: [`\${${secretVariable}}`] }] },
      },
    },
  });
  // The registry is reached through the proxy.
  const text = readFileSync(file, 'utf8');
  const { registryUrl } = await infra();
  const proxied = registryUrl.replace(/\/\/[^/]+/, `//127.0.0.1:${proxy.port}`);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, text.replace(registryUrl, proxied));
  return { file, label, charges, quarantine };
}

async function registryTarget(): Promise<{ host: string; port: number }> {
  const url = new URL((await infra()).registryUrl);
  return { host: url.hostname, port: Number(url.port) };
}

test('registry unreachable for a freshly started source (cold cache): partners get 503, nothing is dead-lettered, all written once after it returns', { timeout: 120_000 }, async () => {
  const proxy = new RegistryProxy(await registryTarget());
  await proxy.open();
  cleanups.push(() => proxy.close());
  const secret = newWebhookSecret();
  process.env.OUTAGE_SECRET_A = secret;
  const { file, label, charges } = await proxiedTopology(proxy, 'OUTAGE_SECRET_A');
  const registry = buildComponentRegistry();
  const topology = loadTopology(file, registry);
  const kafka = await testKafka();
  // A previous run created the topics and registered the schemas.
  const admin = await createTestTopics(kafka, [
    ...Object.values(topology.topics).map((topic) => ({ name: topic.name, partitions: topic.partitions, retentionMs: 86_400_000 })),
    { name: deadLetterTopic(label), partitions: 1 },
    { name: '_lifeline.source-offsets', partitions: 1, cleanupPolicy: 'compact' as const },
  ]);
  cleanups.push(() => admin.disconnect());
  const direct = await registeredSerde();
  for (const topic of Object.values(topology.topics)) await direct.register(topic.name, topic.contract);

  // The intake restarts and the registry is unreachable right then: its serde knows no schema id yet.
  await proxy.close();
  const metrics = new RuntimeMetrics();
  const host = new SourceHost({
    kafka, serde: new AvroSerde(topology.registry), metrics, logger: createLogger({ level: 'warn' }), topology,
    declaration: topology.components[label] as never, definition: webhookSource as never, onFatal: (error) => { throw error; },
  });
  await host.start();
  cleanups.push(() => host.stop());
  const port = await waitForPort(host);
  const ids = Array.from({ length: 5 }, (_, index) => `msg_outage_${index}_${Date.now()}`);
  const first = await Promise.all(ids.map((id, index) => deliver(port, '/w/acme_lab', dftNumbered(index), { secret, id })));
  for (const answer of first) {
    assert.equal(answer.status, 503, JSON.stringify(answer.body));
    assert.equal(answer.body.error?.code, 'LL_SOURCE_UNAVAILABLE');
    assert.ok(answer.headers.get('retry-after'));
  }
  // Nothing was dead-lettered: the DLQ is empty.
  const dlqOffsets = await admin.fetchTopicOffsets(deadLetterTopic(label));
  assert.equal(dlqOffsets.reduce((sum, entry) => sum + Number(entry.high), 0), 0, 'an outage is never dead-lettered');

  await proxy.open(); // the registry is back
  const collector = await new TopicCollector<{ delivery_id: string }>(kafka, charges, direct).start();
  cleanups.push(() => collector.stop());
  const retried: DeliveryAnswer[] = [];
  for (const [index, id] of ids.entries()) {
    let answer = await deliver(port, '/w/acme_lab', dftNumbered(index), { secret, id });
    for (let attempt = 0; answer.status === 503 && attempt < 20; attempt++) answer = await deliver(port, '/w/acme_lab', dftNumbered(index), { secret, id });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    retried.push(answer);
  }
  await until('every delivery written', () => ids.every((id) => collector.records.filter((record) => record.value.delivery_id === id).length >= 2));
  for (const id of ids) assert.equal(collector.records.filter((record) => record.value.delivery_id === id).length, 2, `${id}: its two charges, once`);
  const after = await admin.fetchTopicOffsets(deadLetterTopic(label));
  assert.equal(after.reduce((sum, entry) => sum + Number(entry.high), 0), 0, 'still nothing dead-lettered');
});

async function waitForPort(host: SourceHost): Promise<number> {
  // The webhook server logs its port; the host exposes no port, so find it through the source's server.
  const source = (host as unknown as { source: { server?: { address(): { port: number } | null } } }).source;
  await until('the webhook server listening', () => Boolean(source.server?.address()));
  return (source.server?.address() as { port: number }).port;
}

test('after an intake restart the registry goes away: schema ids registered at start carry every component, so deliveries are accepted, none dead-lettered', { timeout: 120_000 }, async () => {
  const proxy = new RegistryProxy(await registryTarget());
  await proxy.open();
  cleanups.push(() => proxy.close());
  const secret = newWebhookSecret();
  const { file, label, charges } = await proxiedTopology(proxy, 'OUTAGE_SECRET_B');
  const env = { OUTAGE_SECRET_B: secret };
  const firstRun = new LifelineProcess(file, [], env).start();
  await firstRun.waitForLine(/lifeline running/);
  await firstRun.kill('SIGTERM');
  const restarted = new LifelineProcess(file, [], env).start();
  cleanups.push(() => restarted.kill('SIGTERM'));
  const port = await webhookPort(restarted);
  await restarted.waitForLine(/lifeline running/);
  await proxy.close(); // right after the restart
  const answers = await Promise.all(Array.from({ length: 5 }, (_, index) => deliver(port, '/w/acme_lab', dftNumbered(100 + index), { secret })));
  for (const answer of answers) assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const kafka = await testKafka();
  const collector = await new TopicCollector<{ delivery_id: string }>(kafka, charges, await registeredSerde()).start();
  cleanups.push(() => collector.stop());
  await until('every delivery written', () => answers.every((answer) => collector.records.filter((record) => record.value.delivery_id === answer.id).length >= 2));
  for (const answer of answers) assert.equal(collector.records.filter((record) => record.value.delivery_id === answer.id).length, 2);
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  const dlq = await admin.fetchTopicOffsets(deadLetterTopic(label));
  assert.equal(dlq.reduce((sum, entry) => sum + Number(entry.high), 0), 0);
});

test('registry unreachable while a file source ingests (cold cache): the file waits in its inbox, nothing is dead-lettered or quarantined, every row written once after it returns', { timeout: 150_000 }, async () => {
  const proxy = new RegistryProxy(await registryTarget());
  await proxy.open();
  cleanups.push(() => proxy.close());
  const charges = uniqueTopic('partner', 'lab_charge', 'received');
  const quarantine = uniqueTopic('ops', 'quarantine', 'received');
  const label = uniqueLabel('partner_files');
  const { mkdirSync, readdirSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { file, dir } = await writeTestTopology({
    topics: {
      [charges]: { schema: 'schemas/partner/service_charge.avsc', partitions: 2, key: 'entity_key', classification: 'phi' },
      [quarantine]: { schema: 'schemas/ops/quarantine.avsc', partitions: 1, key: 'entity_key', classification: 'phi' },
    },
    connectors: {
      [label]: {
        type: 'file_source', outputs: { service_charges: charges, quarantine },
        config: {
          poll_interval: '200ms', settle_time: '300ms',
          partners: [{ name: 'ftp_lab', format: 'csv', inbox: '${OUTAGE_FILES}/inbox', csv: {
            record_type: 'service_charge', columns: { occurred_at: 'date', service_code: 'code', total: 'amount' }, key_columns: ['charge_id'],
          } }],
        },
      },
    },
  });
  process.env.OUTAGE_FILES = dir;
  const { registryUrl } = await infra();
  writeFileSync(file, readFileSync(file, 'utf8').replace(registryUrl, registryUrl.replace(/\/\/[^/]+/, `//127.0.0.1:${proxy.port}`)));
  const topology = loadTopology(file, buildComponentRegistry());
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [
    ...Object.values(topology.topics).map((topic) => ({ name: topic.name, partitions: topic.partitions, retentionMs: 86_400_000 })),
    { name: deadLetterTopic(label), partitions: 1 },
    { name: '_lifeline.source-offsets', partitions: 1, cleanupPolicy: 'compact' as const },
  ]);
  cleanups.push(() => admin.disconnect());
  const direct = await registeredSerde();
  for (const topic of Object.values(topology.topics)) await direct.register(topic.name, topic.contract);
  const highs = async (topic: string): Promise<number> => (await admin.fetchTopicOffsets(topic)).reduce((sum, entry) => sum + Number(entry.high), 0);

  // The intake restarts and the registry is unreachable right then: its serde knows no schema id yet.
  await proxy.close();
  const metrics = new RuntimeMetrics();
  const host = new SourceHost({
    kafka, serde: new AvroSerde(topology.registry), metrics, logger: createLogger({ level: 'error' }), topology,
    declaration: topology.components[label] as never, definition: fileSource as never, onFatal: (error) => { throw error; },
  });
  await host.start();
  cleanups.push(() => host.stop());
  const inbox = join(dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  const rows = Array.from({ length: 10 }, (_, index) => `OUT-${index},2024-11-05,CPT-85025,${(10 + index).toFixed(2)}`);
  writeFileSync(join(inbox, 'charges.csv'), `charge_id,date,code,amount\n${rows.join('\n')}\n`);
  const aborted = async (): Promise<number> => {
    const metric = (await metrics.registry.getSingleMetric('lifeline_transactions_total')?.get())?.values ?? [];
    return metric.filter((value) => value.labels.component === label && value.labels.result === 'aborted').reduce((sum, value) => sum + value.value, 0);
  };
  await until('the file tried twice while the registry is away', async () => await aborted() >= 2, 60_000);
  assert.equal(host.describe().state, 'degraded', 'the source says it cannot commit');
  assert.match(host.describe().detail, /registry/i);
  assert.equal(await highs(deadLetterTopic(label)), 0, 'an outage is never dead-lettered');
  assert.equal(await highs(quarantine), 0, 'nor quarantined');
  assert.deepEqual(readdirSync(inbox).filter((name) => name.endsWith('.csv')), ['charges.csv'], 'the file waits in its inbox');
  assert.deepEqual(readdirSync(join(inbox, 'failed')), [], 'not rejected');

  await proxy.open(); // the registry is back
  const collector = await new TopicCollector<{ idempotency_key: string; delivery_id: string }>(kafka, charges, direct).start();
  cleanups.push(() => collector.stop());
  await until('every row written', () => collector.records.length >= rows.length, 90_000);
  await until('the file archived', () => readdirSync(join(inbox, 'archive')).includes('charges.csv'), 30_000);
  assert.equal(new Set(collector.records.map((record) => record.value.idempotency_key)).size, rows.length, 'each row once');
  assert.equal(await highs(deadLetterTopic(label)), 0, 'still nothing dead-lettered');
  assert.equal(await highs(quarantine), 0, 'still nothing quarantined');
  assert.equal(host.describe().state, 'running');
});

test('registry unreachable when a processor meets a schema id it has not seen (decode): nothing dead-lettered, the stall reported, every record processed once after it returns', { timeout: 180_000 }, async () => {
  const proxy = new RegistryProxy(await registryTarget());
  await proxy.open();
  cleanups.push(() => proxy.close());
  const events = uniqueTopic('partner', 'outage_event', 'received');
  const unique = events.replace('.received.v1', '.deduplicated.v1');
  const dedupLabel = uniqueLabel('outage_dedup');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const { file } = await writeTestTopology({
    runtime: { commit_max_records: 500, commit_interval: '1s' },
    topics: {
      [events]: { schema: TEST_EVENT_SCHEMA, partitions: 1, key: 'account', classification: 'phi' },
      [unique]: { schema: TEST_EVENT_SCHEMA, partitions: 1, key: 'account', classification: 'phi' },
    },
    processors: { [dedupLabel]: { type: 'dedup', inputs: [events], outputs: { unique }, config: { key_path: 'id', ttl: '1d', repartition: false } } },
  });
  const { registryUrl } = await infra();
  writeFileSync(file, readFileSync(file, 'utf8').replace(registryUrl, registryUrl.replace(/\/\/[^/]+/, `//127.0.0.1:${proxy.port}`)));
  const input = await testEventTopic(events, 1);
  cleanups.push(() => input.close());
  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'error' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start(); // its serde knows the ids of the schemas it registered, through the proxy

  // A partner's producer evolves the input's schema (an optional field): a schema id this process never saw.
  const evolvedFile = join(mkdtempSync(join(tmpdir(), 'lifeline-evolved-')), 'test_event_v2.avsc');
  const evolved = JSON.parse(readFileSync(TEST_EVENT_SCHEMA, 'utf8')) as { fields: unknown[] };
  evolved.fields.push({ name: 'note', type: ['null', 'string'], default: null });
  writeFileSync(evolvedFile, JSON.stringify(evolved));
  const writer = new AvroSerde({ url: registryUrl });
  await writer.register(events, loadContract(evolvedFile));

  await proxy.close(); // the registry goes away
  const producer = input.kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const ids = Array.from({ length: 10 }, (_, index) => `evolved-${index}`);
  await producer.send({ topic: events, acks: -1, messages: await Promise.all(ids.map(async (id, index) => ({ key: `ACC-${index % 3}`, value: await writer.encode(events, { id, account: `ACC-${index % 3}`, patient_mrn: 'M-1', amount_minor: 100 + index, note: 'v2' }) }))) });
  const port = runtime.port as number;
  await until('the processor to report it cannot make progress', async () => await metricValue(port, 'lifeline_stalled_batches_total', { component: dedupLabel }) >= 1, 60_000);
  const highs = async (topic: string): Promise<number> => (await input.admin.fetchTopicOffsets(topic)).reduce((sum, entry) => sum + Number(entry.high), 0);
  assert.equal(await highs(deadLetterTopic(dedupLabel)), 0, 'an outage on decode is never dead-lettered');
  // Infrastructure, not a partner: the processor says it cannot make progress (not ready, with the reason).
  const stalled = runtime.health() as { ready: boolean; components: Record<string, { state: string; detail?: string }> };
  assert.equal(stalled.ready, false);
  assert.match(stalled.components[dedupLabel]?.detail ?? '', /no progress.*LL_REGISTRY_UNAVAILABLE/, JSON.stringify(stalled.components));

  await proxy.open(); // the registry is back
  const output = await new TopicCollector<TestEvent>(input.kafka, unique, input.serde).start();
  cleanups.push(() => output.stop());
  await until('every record processed', () => ids.every((id) => output.records.some((record) => record.value.id === id)), 90_000);
  assert.deepEqual(output.records.map((record) => record.value.id).sort(), [...ids].sort(), 'each once');
  assert.equal(await highs(deadLetterTopic(dedupLabel)), 0, 'still nothing dead-lettered');
  await until('ready again', () => runtime.health().ready, 30_000);
});

test('a source dead letter (the record as JSON, with origin topic and subject) is re-encoded in the origin\'s Avro format by lifeline dlq replay', { timeout: 120_000 }, async () => {
  const charges = uniqueTopic('partner', 'lab_charge', 'received');
  const label = uniqueLabel('partner_webhooks');
  // A topology with only what the replay needs: the charges topic and the source's dead-letter topic.
  const topology = await writeTestTopology({
    topics: {
      [charges]: { schema: 'schemas/partner/service_charge.avsc', partitions: 2, key: 'entity_key', classification: 'phi' },
      [charges.replace('.received.', '.quarantined.')]: { schema: 'schemas/ops/quarantine.avsc', partitions: 1, key: 'entity_key', classification: 'phi' },
    },
    connectors: {
      [label]: {
        type: 'webhook_source', outputs: { service_charges: charges, quarantine: charges.replace('.received.', '.quarantined.') },
        config: { port: 0, partners: [{ name: 'acme_lab', path: '/w', format: 'hl7v2', secrets: ['${REPLAY_SECRET}'] }] },
      },
    },
  });
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: charges, partitions: 2 }, { name: deadLetterTopic(label), partitions: 1 }]);
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();
  const registry = buildComponentRegistry();
  process.env.REPLAY_SECRET = newWebhookSecret();
  const loaded = loadTopology(topology.file, registry);
  await serde.register(charges, loaded.topics[charges]?.contract as never);
  // The dead letter as the source host writes it when a record does not encode.
  const [canonical] = decodeDelivery(Buffer.from(dft), { name: 'acme_lab', format: 'hl7v2', charset: 'utf-8', default_currency: 'USD' } as never,
    { partner: 'acme_lab', channel: 'WEBHOOK', deliveryId: 'msg_replayed', receivedAt: Date.now(), defaultCurrency: 'USD' });
  const record = canonicalSourceRecord(canonical as never, headersFor({ idempotencyKey: 'msg_replayed#1', correlationId: 'ORD-777', ingestedAt: new Date().toISOString(), source: label }));
  const producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const { LifelineError } = await import('../../../src/errors.ts');
  await producer.send({ topic: deadLetterTopic(label), messages: [sourceDeadLetterMessage({
    component: label, error: new LifelineError('LL_SERIALIZE_INVALID', 'value did not match (fixed since)'), originTopic: charges,
    key: record.key, value: record.value, headers: record.headers as Record<string, string>,
  })] });
  const collector = await new TopicCollector<{ delivery_id: string; idempotency_key: string; total: { amount_minor: number } | null }>(kafka, charges, serde).start();
  cleanups.push(() => collector.stop());

  const operators = writeTestOperators();
  const replay = await runLifeline(['dlq', 'replay', label, '--execute', '--reason', 'registry fixed', '--topology', topology.file], { env: { ...operators.as('otto'), REPLAY_SECRET: process.env.REPLAY_SECRET as string } });
  assert.equal(replay.code, 0, replay.stderr);
  await until('the replayed record in its origin topic', () => collector.records.length >= 1);
  const replayed = collector.records[0];
  assert.equal(replayed?.value.delivery_id, 'msg_replayed', 'decoded with the origin topic\'s Avro schema');
  assert.equal(replayed?.value.idempotency_key, (canonical as { value: { idempotency_key: string } }).value.idempotency_key);
  assert.equal(replayed?.headers['lifeline.idempotency-key'], 'msg_replayed#1', 'its own headers travel with it');
  assert.equal(replayed?.headers['lifeline.dlq.value-format'], undefined, 'the dead-letter format header is not replayed');
});
