import { readFileSync } from 'node:fs';
import kafkajs, { CompressionTypes, Kafka, logLevel, type KafkaConfig, type SASLOptions, type logCreator } from 'kafkajs';
import SnappyCodec from 'kafkajs-snappy';

/** How to reach a Kafka cluster; secrets arrive already resolved from the environment or files. */
export interface KafkaConnectionConfig {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly tls?: boolean | { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string; readonly rejectUnauthorized?: boolean };
  readonly sasl?: {
    readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
    readonly username: string;
    readonly password: string;
  };
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
}

/**
 * How long a fetch waits for records when there are none (kafkajs's default is 5 s). A consumer's
 * stop waits for the fetch in flight, so this bounds a graceful stop; an idle consumer pays one
 * small fetch request a second for it.
 */
export const CONSUMER_MAX_WAIT_MS = 1_000;

let snappyRegistered = false;

/** Snappy is not built into kafkajs; registering it is global, so do it once. */
export function registerSnappy(): void {
  if (snappyRegistered) return;
  // Lifeline uses kafkajs's default (Java-compatible murmur2) partitioner on purpose: repartitioning
  // relies on it. Silence kafkajs's v1→v2 migration notice about it.
  process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';
  // CompressionCodecs is not visible as an ESM named export of the CommonJS kafkajs package.
  kafkajs.CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  silenceNegativeTimeoutWarning();
  snappyRegistered = true;
}

/**
 * kafkajs's request queue schedules its throttle check with `setTimeout(fn, throttledUntil - now)`,
 * negative once the throttle has passed; Node 24 then prints a TimeoutNegativeWarning (and runs the
 * check after 1 ms, which is what kafkajs meant). The warning says nothing an operator can act on.
 */
let negativeTimeoutsSilenced = false;

export function silenceNegativeTimeoutWarning(): void {
  if (negativeTimeoutsSilenced) return;
  negativeTimeoutsSilenced = true;
  // Node prints warnings from a 'warning' listener it installs at start: filter in front of it.
  const printers = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning: Error) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    for (const print of printers) print(warning);
  });
}

function tlsOptions(tls: KafkaConnectionConfig['tls']): KafkaConfig['ssl'] {
  if (tls === undefined || tls === false) return undefined;
  if (tls === true) return true;
  return {
    ...(tls.caFile ? { ca: [readFileSync(tls.caFile, 'utf8')] } : {}),
    ...(tls.certFile ? { cert: readFileSync(tls.certFile, 'utf8') } : {}),
    ...(tls.keyFile ? { key: readFileSync(tls.keyFile, 'utf8') } : {}),
    rejectUnauthorized: tls.rejectUnauthorized ?? true,
  };
}

function saslOptions(sasl: KafkaConnectionConfig['sasl']): SASLOptions | undefined {
  if (!sasl) return undefined;
  return { mechanism: sasl.mechanism, username: sasl.username, password: sasl.password } as SASLOptions;
}

export function createKafka(config: KafkaConnectionConfig, logger?: logCreator): Kafka {
  registerSnappy();
  const ssl = tlsOptions(config.tls);
  const sasl = saslOptions(config.sasl);
  return new Kafka({
    brokers: [...config.brokers],
    clientId: config.clientId,
    connectionTimeout: config.connectionTimeoutMs ?? 3000,
    requestTimeout: config.requestTimeoutMs ?? 30_000,
    ...(ssl !== undefined ? { ssl } : {}),
    ...(sasl ? { sasl } : {}),
    ...(logger ? { logCreator: logger } : { logLevel: logLevel.WARN }),
  });
}

/**
 * Deletes a consumer group Lifeline made for itself (a CLI read, a restore, a reference table, the
 * control listener: `_lifeline.*` with a random part) once its consumer has left, so such groups do
 * not pile up in `kafka-consumer-groups --list` until the broker expires them. Best effort: a
 * failure leaves the group to the broker's offsets retention, which removes it anyway.
 */
export async function deleteOwnGroup(kafka: Kafka, groupId: string): Promise<void> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteGroups([groupId]);
  } catch {
    // best effort, see above
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
