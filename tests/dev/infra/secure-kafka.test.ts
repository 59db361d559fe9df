// Least privilege on a real broker: a second local Kafka (its own LIFELINE_HOME and ports; the
// shared plaintext broker keeps running) with a SASL_SSL listener, SCRAM users made at format time,
// a self-signed CA and StandardAuthorizer ACLs. `lifeline run` as the runtime principal does not
// create topics; `lifeline apply` (admin principal) sets them up and grants the runtime its ACLs;
// then an exactly-once processor chain runs over SASL_SSL. A wrong password, an unknown CA and a
// missing ACL each stop a start with one message naming the fix; the runtime cannot create or
// delete topics.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { secureKafkaAccess, startKafka, stopKafka, type SecureKafkaAccess } from '../../../dev/infra/kafka-broker.ts';
import { localInfraSettings, type LocalInfraSettings } from '../../../dev/infra/settings.ts';
import { loadContract } from '../../../src/kafka/avro-contract.ts';
import { AvroSerde } from '../../../src/kafka/avro-serde.ts';
import { createKafka, type KafkaConnectionConfig } from '../../../src/kafka/client.ts';
import { runLifeline } from '../../../testing/cli-runner.ts';
import { infra } from '../../../testing/harness.ts';
import { KEY_COUNT_SCHEMA, LifelineProcess, TEST_EVENT_SCHEMA, testEvent, writeCounterTopology, type CounterTopology } from '../../../testing/runtime-fixture.ts';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

let settings: LocalInfraSettings;
let access: SecureKafkaAccess;
let bootstrap: string;

before(async () => {
  const shared = localInfraSettings();
  settings = { ...shared, root: mkdtempSync(join(tmpdir(), 'lifeline-secure-')), cacheDir: shared.cacheDir, kafkaPort: await freePort(), controllerPort: await freePort(), secure: true };
  await startKafka(settings);
  access = secureKafkaAccess(settings);
  bootstrap = `127.0.0.1:${settings.kafkaPort}`;
}, { timeout: 240_000 });

after(async () => {
  if (settings) await stopKafka(settings, { kill: true });
});

function connection(user: 'admin' | 'runtime', overrides: Partial<KafkaConnectionConfig> = {}): KafkaConnectionConfig {
  const { username, password } = user === 'admin' ? access.admin : access.runtime;
  return { brokers: [bootstrap], clientId: `secure-test-${user}`, tls: { caFile: access.caFile }, sasl: { mechanism: 'scram-sha-512', username, password }, ...overrides };
}

/** The counter topology (an exactly-once processor) pointed at the secure broker as `lifeline`, password from the environment. */
async function secureTopology(caFile = access.caFile): Promise<CounterTopology> {
  const topology = await writeCounterTopology({ partitions: 2 });
  const text = readFileSync(topology.file, 'utf8').replace(/^ {2}kafka: .*$/m, [
    '  kafka:',
    `    brokers: [${JSON.stringify(bootstrap)}]`,
    '    client_id: lifeline-secure-test',
    `    tls: { ca_file: ${JSON.stringify(caFile)} }`,
    '    sasl: { mechanism: scram-sha-512, username: lifeline, password: "${LIFELINE_KAFKA_PASSWORD}" }',
  ].join('\n'));
  writeFileSync(topology.file, text);
  return topology;
}

const adminEnv = (): Record<string, string> => ({ LIFELINE_KAFKA_ADMIN_USERNAME: 'admin', LIFELINE_KAFKA_ADMIN_PASSWORD: access.admin.password, LIFELINE_KAFKA_PASSWORD: access.runtime.password });

/** A `lifeline run` expected to fail at start: its exit code and its fatal lines. */
async function failedStart(topology: CounterTopology, env: Record<string, string>): Promise<{ code: number | null | undefined; fatal: Array<{ code?: string; err?: string }> }> {
  const process = new LifelineProcess(topology.file, [], env).start();
  await process.waitForLine(/"level":"fatal"/, 120_000).catch(() => undefined);
  for (let waited = 0; process.exitCode === undefined && waited < 20_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  await process.kill('SIGKILL');
  const fatal = process.lines.filter((line) => line.includes('"level":"fatal"')).map((line) => JSON.parse(line) as { code?: string; err?: string });
  return { code: process.exitCode, fatal };
}

test('run as the runtime principal creates nothing and names what is missing; apply (admin) sets up topics and ACLs; the chain then runs over SASL_SSL', { timeout: 300_000 }, async () => {
  const topology = await secureTopology();
  const before = await failedStart(topology, { LIFELINE_KAFKA_PASSWORD: access.runtime.password });
  assert.equal(before.code, 1);
  assert.equal(before.fatal.length, 1, JSON.stringify(before.fatal));
  assert.equal(before.fatal[0]?.code, 'LL_KAFKA_NOT_AUTHORISED');
  assert.match(before.fatal[0]?.err ?? '', new RegExp(`do not exist and user "lifeline" may not create them: .*${topology.input.replace(/\./g, '\\.')}.*lifeline apply --execute`));

  const plan = await runLifeline(['apply', '--topology', topology.file], { env: adminEnv() });
  assert.equal(plan.code, 0, plan.stderr);
  assert.match(plan.stdout, /topics: \d+ needed, \d+ to create/);
  assert.match(plan.stdout, /ACLs for User:lifeline: \d+ needed, \d+ to add/);
  assert.match(plan.stdout, /nothing changed/);
  const applied = await runLifeline(['apply', '--topology', topology.file, '--execute', '--reason', 'secure test'], { env: adminEnv() });
  assert.equal(applied.code, 0, applied.stderr + applied.stdout);
  assert.match(applied.stdout, /applied: \d+ topic\(s\) created/);
  const again = await runLifeline(['apply', '--topology', topology.file], { env: adminEnv() });
  assert.match(again.stdout, /0 to create/);
  assert.match(again.stdout, /ACLs for User:lifeline: \d+ needed, 0 to add/);

  // The chain over SASL_SSL as `lifeline`: events in, exactly-once counts out.
  const kafka = createKafka(connection('admin'));
  const serde = new AvroSerde({ url: (await infra()).registryUrl });
  await serde.register(topology.input, loadContract(TEST_EVENT_SCHEMA));
  const lifeline = new LifelineProcess(topology.file, [], { LIFELINE_KAFKA_PASSWORD: access.runtime.password }).start();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: `secure-test-${Date.now()}` });
  try {
    await lifeline.waitForLine(/lifeline running/, 120_000);
    await producer.connect();
    const events = Array.from({ length: 40 }, (_, index) => testEvent(index, 4));
    await producer.send({ topic: topology.input, acks: -1, messages: await Promise.all(events.map(async (event) => ({ key: event.account, value: await serde.encode(topology.input, event) }))) });
    await consumer.connect();
    await consumer.subscribe({ topic: topology.output, fromBeginning: true });
    const latest = new Map<string, number>();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`counts did not arrive: ${JSON.stringify([...latest])}`)), 90_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          const { value } = await serde.decode<{ count: number | bigint }>(message.value as Buffer);
          latest.set(String(message.key), Number(value.count));
          if (latest.size === 4 && [...latest.values()].every((count) => count === 10)) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    assert.ok(loadContract(KEY_COUNT_SCHEMA));
  } finally {
    await lifeline.kill('SIGTERM');
    await consumer.disconnect();
    await producer.disconnect();
  }
  assert.equal(lifeline.exitCode, 0);

  // The runtime principal can neither create nor delete topics.
  const runtimeAdmin = createKafka(connection('runtime')).admin();
  await runtimeAdmin.connect();
  try {
    await assert.rejects(runtimeAdmin.createTopics({ topics: [{ topic: `${topology.input}.extra` }] }));
    await assert.rejects(runtimeAdmin.deleteTopics({ topics: [topology.input] }), /authoriz/i);
  } finally {
    await runtimeAdmin.disconnect();
  }
  const adminClient = kafka.admin();
  await adminClient.connect();
  try {
    assert.ok((await adminClient.listTopics()).includes(topology.input), 'the input topic is still there');

    // A missing ACL: without DescribeConfigs on its input topic the runtime stops at start, naming the fix.
    await adminClient.deleteAcls({ filters: [{
      resourceType: AclResourceTypes.TOPIC, resourceName: topology.input, resourcePatternType: ResourcePatternTypes.LITERAL,
      principal: 'User:lifeline', host: '*', operation: AclOperationTypes.DESCRIBE_CONFIGS, permissionType: AclPermissionTypes.ALLOW,
    }] });
    const denied = await failedStart(topology, { LIFELINE_KAFKA_PASSWORD: access.runtime.password });
    assert.equal(denied.code, 1);
    assert.equal(denied.fatal.length, 1, JSON.stringify(denied.fatal));
    assert.equal(denied.fatal[0]?.code, 'LL_KAFKA_NOT_AUTHORISED');
    assert.match(denied.fatal[0]?.err ?? '', /Kafka denied user "lifeline" TOPIC_AUTHORIZATION_FAILED .*Fix: .*lifeline apply --execute/);
  } finally {
    await adminClient.disconnect();
  }
});

test('a wrong password and an unknown CA each stop a start with one message naming the fix', { timeout: 240_000 }, async () => {
  const topology = await secureTopology();
  const wrong = await failedStart(topology, { LIFELINE_KAFKA_PASSWORD: 'not-the-password' });
  assert.equal(wrong.code, 1);
  assert.equal(wrong.fatal.length, 1, JSON.stringify(wrong.fatal));
  assert.equal(wrong.fatal[0]?.code, 'LL_KAFKA_AUTH_FAILED');
  assert.match(wrong.fatal[0]?.err ?? '', /refused the credentials of user "lifeline" \(SCRAM-SHA-512\).*Fix: set connections\.kafka\.sasl\.username and password/);

  const otherCa = join(mkdtempSync(join(tmpdir(), 'lifeline-other-ca-')), 'ca.pem');
  writeFileSync(otherCa, rootCertificates[0] as string);
  const untrusted = await failedStart(await secureTopology(otherCa), { LIFELINE_KAFKA_PASSWORD: access.runtime.password });
  assert.equal(untrusted.code, 1);
  assert.equal(untrusted.fatal.length, 1, JSON.stringify(untrusted.fatal));
  assert.equal(untrusted.fatal[0]?.code, 'LL_KAFKA_TLS_UNTRUSTED');
  assert.match(untrusted.fatal[0]?.err ?? '', /not trusted .*Fix: set connections\.kafka\.tls\.ca_file/);
});
