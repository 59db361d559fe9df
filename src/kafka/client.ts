import { readFileSync } from 'node:fs';
import { LifelineError } from '../errors.ts';
import { retry } from '../retry.ts';
import kafkajs, { CompressionTypes, Kafka, logLevel, type Admin, type KafkaConfig, type SASLOptions, type logCreator } from 'kafkajs';
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

/**
 * Retry timing for transactional producers. A transaction that begins right after the previous one
 * ended often meets CONCURRENT_TRANSACTIONS (the broker is still writing the previous commit's
 * markers, a few milliseconds). kafkajs retries it like any error, after ~300 ms — which measured as
 * the p90–p99 of every back-to-back transaction (p99 360 ms against 25–31 ms with this), and so of
 * every exactly-once hop. The Java producer retries that case after 20 ms; this does the same. The
 * rest is kafkajs's default for an idempotent producer: retries without a count limit, each wait
 * doubling up to 30 s (a limit would void its exactly-once bookkeeping, kafkajs warns).
 */
export const TRANSACTIONAL_PRODUCER_RETRY = { initialRetryTime: 20, retries: Number.MAX_SAFE_INTEGER, maxRetryTime: 30_000 } as const;

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

const TLS_TRUST_CODES = /^(SELF_SIGNED_CERT_IN_CHAIN|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_HAS_EXPIRED|CERT_UNTRUSTED|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** Every error in `error`'s chain: causes, kafkajs's originalError and an aggregate's errors. */
export function errorChain(error: unknown): Error[] {
  const seen: Error[] = [];
  const visit = (current: unknown, depth: number): void => {
    if (!(current instanceof Error) || depth > 8 || seen.includes(current)) return;
    seen.push(current);
    const { cause, originalError, errors } = current as { cause?: unknown; originalError?: unknown; errors?: unknown };
    visit(cause, depth + 1);
    visit(originalError, depth + 1);
    if (Array.isArray(errors)) for (const inner of errors) visit(inner, depth + 1);
  };
  visit(error, 0);
  return seen;
}

/**
 * A Kafka failure that configuration or ACLs must fix, as one LifelineError whose message names the
 * fix: refused credentials, an untrusted certificate, a missing ACL. Undefined for anything else.
 * `doing` says what was attempted ("creating topics a, b").
 */
export function kafkaAccessProblem(error: unknown, config: KafkaConnectionConfig, doing: string): LifelineError | undefined {
  if (error instanceof LifelineError && /^LL_KAFKA_(AUTH_FAILED|TLS_UNTRUSTED|NOT_AUTHORISED)$/.test(error.code)) return error; // explained already
  const chain = errorChain(error);
  const at = config.brokers.join(', ');
  const user = config.sasl ? `"${config.sasl.username}"` : 'this client (no SASL user)';
  const sasl = chain.find((item) => /SASL/i.test(item.name) || (item as { type?: string }).type === 'SASL_AUTHENTICATION_FAILED');
  if (sasl) {
    return new LifelineError('LL_KAFKA_AUTH_FAILED',
      `Kafka at ${at} refused the credentials of user ${user} (${config.sasl?.mechanism.toUpperCase() ?? 'no mechanism'}): ${sasl.message}. `
      + 'Fix: set connections.kafka.sasl.username and password to a SCRAM user the cluster knows (a changed password needs the new one here).', { cause: error });
  }
  const tls = chain.find((item) => typeof (item as { code?: unknown }).code === 'string' && TLS_TRUST_CODES.test((item as unknown as { code: string }).code));
  if (tls) {
    const caFile = typeof config.tls === 'object' ? config.tls.caFile : undefined;
    return new LifelineError('LL_KAFKA_TLS_UNTRUSTED',
      `the TLS certificate of the Kafka broker at ${at} is not trusted (${(tls as { code?: string }).code}: ${tls.message.replace(/^Connection error: /, '')}). `
      + `Fix: set connections.kafka.tls.ca_file to the PEM of the CA that signed the broker's certificate${caFile ? ` (now ${caFile}, which did not sign it)` : ''}, and connect by a host name the certificate names.`, { cause: error });
  }
  const denied = chain.find((item) => /AUTHORIZATION_FAILED$/.test(String((item as { type?: unknown }).type ?? '')));
  if (denied) {
    const type = String((denied as { type?: unknown }).type);
    return new LifelineError('LL_KAFKA_NOT_AUTHORISED',
      `Kafka denied user ${user} ${type} while ${doing}. Fix: grant the runtime principal what it needs with \`lifeline apply --execute\` run with the admin principal `
      + '(LIFELINE_KAFKA_ADMIN_USERNAME / LIFELINE_KAFKA_ADMIN_PASSWORD), or with kafka-acls.sh as docs/operations.md lists.', { cause: error });
  }
  return undefined;
}

const offsetQueues = new WeakMap<Admin, Promise<unknown>>();

const TRANSIENT_METADATA_ERRORS = new Set(['LEADER_NOT_AVAILABLE', 'UNKNOWN_TOPIC_OR_PARTITION', 'NOT_LEADER_FOR_PARTITION', 'NOT_LEADER_OR_FOLLOWER', 'REPLICA_NOT_AVAILABLE']);

function isTransientMetadataError(error: unknown): boolean {
  for (let current: unknown = error, depth = 0; depth < 4 && current instanceof Error; depth++) {
    const type = (current as { type?: unknown }).type;
    if (typeof type === 'string' && TRANSIENT_METADATA_ERRORS.has(type)) return true;
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return false;
}

/**
 * admin.fetchTopicOffsets, one call at a time per admin client, retried when kafkajs loses the race
 * it has with other metadata refreshes on the same admin. kafkajs 2.2.4 adds the topic to the
 * admin's shared metadata and reads it back; a refresh for another call in between drops it, and the
 * call fails with a TypeError ("Cannot destructure property 'partitions' of 'low.pop(...)'"):
 * partition tasks opening side by side hit it at start. The topic stays a metadata target, so the
 * next attempt finds it. Also retried: what a topic created a moment ago answers while its leader is
 * being elected (LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER…): kafkajs marks them
 * retriable but does not retry them here, and a read-only command failed on it.
 */
export function fetchTopicOffsetsSerially(admin: Admin, topic: string): ReturnType<Admin['fetchTopicOffsets']> {
  const previous = offsetQueues.get(admin) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(() => retry(() => admin.fetchTopicOffsets(topic), {
    operation: `reading the offsets of ${topic}`, retries: 5, initialDelayMs: 50, maxDelayMs: 1_000, factor: 2, jitter: 0.5,
    shouldRetry: (error) => (error instanceof TypeError && /\b(low|high)\.pop\b/.test(error.message)) || isTransientMetadataError(error),
  }));
  offsetQueues.set(admin, next);
  return next;
}
