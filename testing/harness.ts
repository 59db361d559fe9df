import { randomBytes } from 'node:crypto';
import type { Admin, Kafka } from 'kafkajs';
import { pino } from 'pino';
import { infraUp } from '../dev/infra/local-infra.ts';
import { kafkaBootstrap, localInfraSettings, registryUrl } from '../dev/infra/settings.ts';
import { createKafka } from '../src/kafka/client.ts';
import { kafkaLogCreator } from '../src/observe/logger.ts';
import { ensureTopics, type TopicSpec } from '../src/kafka/topic-admin.ts';

/**
 * The shared test harness: the real local Kafka broker and schema registry, started once per
 * run (scripts/run-tests.mjs does it before any test file; `infra()` is idempotent and reuses a
 * running pair), and names that never collide between tests or runs.
 */
export interface TestInfra {
  readonly brokers: string[];
  readonly registryUrl: string;
}

let ready: Promise<TestInfra> | undefined;

export function infra(): Promise<TestInfra> {
  if (process.env.LIFELINE_TEST_TIER === 'unit') {
    // scripts/run-tests.mjs: the unit tier starts no JVM. A test that needs the broker is a broker test.
    throw new Error('this test needs the Kafka broker, but it runs in the unit tier: name its file *.test.ts, not *.unit.test.ts (docs/testing.md)');
  }
  ready ??= (async () => {
    const settings = localInfraSettings();
    await infraUp(settings);
    return { brokers: [kafkaBootstrap(settings)], registryUrl: registryUrl(settings) };
  })();
  return ready;
}

/** `prefix.<random>`: a topic or group name no other test or run uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}.t${Date.now().toString(36)}${randomBytes(4).toString('hex')}`;
}

export async function testKafka(clientId = uniqueName('test-client')): Promise<Kafka> {
  const { brokers } = await infra();
  // Through Lifeline's own kafkajs log levels: an error answer a request is retried on (e.g. the
  // CONCURRENT_TRANSACTIONS a transaction right after a commit meets) is debug, not a line per request
  // on the terminal of a test or bench that runs many transactions.
  return createKafka({ brokers, clientId }, kafkaLogCreator(pino({ level: 'warn' })));
}

/** Creates topics and hands back a connected admin; the caller disconnects it. */
export async function createTestTopics(kafka: Kafka, specs: TopicSpec[]): Promise<Admin> {
  const admin = kafka.admin();
  await admin.connect();
  await ensureTopics(admin, specs);
  return admin;
}

/** A topic name in Lifeline's `<domain>.<entity>.<event>.v<major>` form that no other test uses. */
export function uniqueTopic(domain: string, entity: string, event: string): string {
  return `${domain}.${entity}_${Date.now().toString(36)}${randomBytes(3).toString('hex')}.${event}.v1`;
}
