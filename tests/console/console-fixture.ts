import { copyFileSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka, Producer } from 'kafkajs';
import pino from 'pino';
import { openOpsSession } from '../../src/cli/ops-session.ts';
import { startConsole, type RunningConsole } from '../../src/console/console-server.ts';
import type { IncidentSettings } from '../../src/console/incident-watcher.ts';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { ensureTopics } from '../../src/kafka/topic-admin.ts';
import type { AvroSerde } from '../../src/kafka/avro-serde.ts';
import { deadLetterTopic } from '../../src/topology/model.ts';
import { writeTestOperators, type TestOperators } from '../../testing/cli-runner.ts';
import { testKafka, uniqueTopic } from '../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';
import { uniqueLabel, writeTestTopology } from '../../testing/topology-writer.ts';

/**
 * A small live flow for the console tests, on the real broker: a file_source (CSV drops of lab
 * charges) → a dedup processor, run by `lifeline run`; three charges flow through, one record
 * without an idempotency key is dead-lettered by the dedup (its patient id is PHI), and an SLA
 * topic holds a few transactions in different states. Then `lifeline console` is started on it
 * in this process, with operators of every role (plans always wait for an approver).
 */
export const PATIENT_IDS = ['MRN-PHI-71001', 'MRN-PHI-71002', 'MRN-PHI-71003'];
export const DEAD_LETTER_PATIENT = 'MRN-PHI-79999';

export interface ConsoleFixture {
  readonly file: string;
  readonly appId: string;
  readonly received: string;
  readonly deduplicated: string;
  readonly slaTopic: string;
  readonly source: string;
  readonly dedup: string;
  readonly operators: TestOperators;
  readonly console: RunningConsole;
  /** The console `lifeline run --console-port 0` embeds. */
  readonly embeddedUrl: string;
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly serde: AvroSerde;
  /** Entity keys of the charges that flowed through. */
  readonly entityKeys: string[];
  /** Sends charges without an idempotency key (the dedup dead-letters each), each with this patient id. */
  sendUnkeyedCharges(patientIds: readonly string[]): Promise<void>;
  /** Headers to call the API as an identity (scripts' way in). */
  as(identity: 'viola' | 'otto' | 'olga' | 'april' | 'adam'): Record<string, string>;
  close(): Promise<void>;
}

async function until(what: string, condition: () => Promise<boolean> | boolean, timeoutMs: number, lifeline?: LifelineProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lifeline ? `:\n${lifeline.lines.slice(-15).join('\n')}` : ''}`);
    await sleep(200);
  }
}

export async function startConsoleFixture(options: { incidents?: Partial<IncidentSettings> | false; assetsDir?: string } = {}): Promise<ConsoleFixture> {
  const cleanups: Array<() => Promise<void>> = [];
  const received = uniqueTopic('partner', 'lab_charge', 'received');
  const deduplicated = received.replace('.received.v1', '.deduplicated.v1');
  const quarantine = uniqueTopic('ops', 'quarantine', 'files');
  const slaTopic = uniqueTopic('ops', 'sla_charge', 'tracked');
  const source = uniqueLabel('clinic_files');
  const dedup = uniqueLabel('charge_dedup');
  const written = await writeTestTopology({
    topics: {
      [received]: { schema: 'schemas/partner/service_charge.avsc', partitions: 2, key: 'entity_key', classification: 'phi' },
      [deduplicated]: { schema: 'schemas/partner/service_charge.avsc', partitions: 2, key: 'entity_key', classification: 'phi' },
      [quarantine]: { schema: 'schemas/ops/quarantine.avsc', partitions: 1, key: '<partner>|<file>', classification: 'phi' },
      [slaTopic]: { schema: 'schemas/ops/sla_event.avsc', partitions: 1, key: '<flow>:<transaction key>' },
    },
    connectors: {
      [source]: {
        type: 'file_source', outputs: { service_charges: received, quarantine },
        config: { poll_interval: '200ms', settle_time: '1s', partners: [{ name: 'clinic', format: 'csv', inbox: '__INBOX__', csv: {
          record_type: 'service_charge',
          columns: { occurred_at: 'date', service_code: 'code', total: 'amount', account_ref: 'account', patient_id: 'mrn' },
          key_columns: ['charge_id'],
        } }] },
      },
    },
    processors: {
      [dedup]: { type: 'dedup', inputs: [received], outputs: { unique: deduplicated }, config: { ttl: '1d', repartition: false } },
    },
  });
  // The inbox lives beside the topology; the writer's YAML takes it by a placeholder.
  const inbox = join(written.dir, 'inbox');
  mkdirSync(inbox, { recursive: true });
  const { readFileSync } = await import('node:fs');
  writeFileSync(written.file, readFileSync(written.file, 'utf8').replace('__INBOX__', inbox));

  const operators = writeTestOperators({ autoApproveBelow: 0 });
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();

  // The runtime embeds a console of its own too (lifeline run --console-port).
  const lifeline = new LifelineProcess(written.file, ['--console-port', '0'], { LIFELINE_OPERATORS_FILE: operators.file, LIFELINE_INCIDENTS: 'off' }).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/, 120_000);
  const embeddedUrl = /lifeline console at (http:\/\/[^"\s]+)/.exec(await lifeline.waitForLine(/lifeline console at http/, 60_000))?.[1] as string;

  const output = await new TopicCollector<{ entity_key: string }>(kafka, deduplicated, serde).start();
  cleanups.push(() => output.stop());
  const csv = ['charge_id,date,code,amount,account,mrn', ...PATIENT_IDS.map((mrn, index) => `C${index + 1},2026-11-05,80048,4${index}.50,A${index + 1},${mrn}`), ''].join('\n');
  const staging = join(written.dir, 'charges.csv');
  writeFileSync(staging, csv);
  const past = new Date(Date.now() - 10_000);
  utimesSync(staging, past, past);
  copyFileSync(staging, join(inbox, 'charges.csv'));
  utimesSync(join(inbox, 'charges.csv'), past, past);
  await output.waitForCount(3, 120_000);
  const entityKeys = output.records.map((record) => record.value.entity_key);

  // One charge without the idempotency key header: the dedup dead-letters it (its value holds PHI).
  const producer: Producer = kafka.producer();
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const template = (await serde.decode<Record<string, unknown>>((await firstRecordValue(kafka, admin, received)) as Buffer)).value;
  const broken = { ...template, patient_id: DEAD_LETTER_PATIENT, entity_key: 'clinic|charge|NOKEY', idempotency_key: 'clinic|NOKEY' };
  await producer.send({ topic: received, acks: -1, messages: [{ key: 'clinic|charge|NOKEY', value: await serde.encode(received, broken) }] });
  await until('the dead letter', async () => (await admin.listTopics()).includes(deadLetterTopic(dedup))
    && (await admin.fetchTopicOffsets(deadLetterTopic(dedup))).some((entry) => Number(entry.high) > 0), 60_000, lifeline);

  // SLA events as the sla processor writes them: one open, one warned, one breached, one completed.
  await ensureTopics(admin, [{ name: slaTopic, partitions: 1 }]);
  await serde.register(slaTopic, loadContract('schemas/ops/sla_event.avsc'));
  const now = Date.now();
  const sla = (key: string, type: string, startedAgoMs: number) => ({
    flow: 'charge_to_invoice', transaction_key: key, event_type: type, milestone: null, started_at: now - startedAgoMs, occurred_at: now,
    latency_ms: type === 'started' ? null : startedAgoMs, warn_after_ms: 600_000, breach_after_ms: 900_000, breach_at: now - startedAgoMs + 900_000,
    owner: 'billing-owner', correlation_id: null,
  });
  const events = [sla('CH-OPEN', 'started', 60_000), sla('CH-WARN', 'started', 700_000), sla('CH-WARN', 'warning', 700_000),
    sla('CH-LATE', 'started', 1_000_000), sla('CH-LATE', 'breached', 1_000_000), sla('CH-DONE', 'started', 30_000), sla('CH-DONE', 'completed', 30_000)];
  await producer.send({ topic: slaTopic, acks: -1, messages: await Promise.all(events.map(async (event) => ({ key: `${event.flow}:${event.transaction_key}`, value: await serde.encode(slaTopic, event) }))) });

  process.env.LIFELINE_OPERATORS_FILE = operators.file;
  const session = openOpsSession({ topology: written.file }, 'console');
  cleanups.push(() => session.close());
  const running = await startConsole({ session, logger: pino({ level: 'warn' }), port: 0, ...(options.incidents !== undefined ? { incidents: options.incidents } : {}), ...(options.assetsDir !== undefined ? { assetsDir: options.assetsDir } : {}) });
  cleanups.push(() => running.close());

  const tokenOf = (identity: 'viola' | 'otto' | 'olga' | 'april' | 'adam'): Record<string, string> => {
    const env = operators.as(identity);
    return { 'x-lifeline-operator': env.LIFELINE_OPERATOR as string, 'x-lifeline-token': env.LIFELINE_OPERATOR_TOKEN as string };
  };
  return {
    file: written.file, appId: written.appId, embeddedUrl, received, deduplicated, slaTopic, source, dedup, operators, console: running, kafka, admin, serde, entityKeys,
    as: tokenOf,
    async sendUnkeyedCharges(patientIds) {
      await producer.send({
        topic: received, acks: -1,
        messages: await Promise.all(patientIds.map(async (patientId, index) => {
          const key = `clinic|charge|NOKEY-${Date.now()}-${index}`;
          return { key, value: await serde.encode(received, { ...template, patient_id: patientId, entity_key: key, idempotency_key: key }) };
        })),
      });
    },
    async close() {
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    },
  };
}

async function firstRecordValue(kafka: Kafka, admin: Admin, topic: string): Promise<Buffer | null> {
  const { readTopicRanges, wholeTopicRanges } = await import('../../src/kafka/topic-reader.ts');
  let value: Buffer | null = null;
  await readTopicRanges(kafka, topic, await wholeTopicRanges(admin, topic), (message) => {
    value = message.value;
    return false;
  });
  return value;
}
