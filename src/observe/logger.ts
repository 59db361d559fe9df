import pino from 'pino';
import kafkajs from 'kafkajs';
import type { DestinationStream, Level, Logger } from 'pino';
import type { LogEntry, logCreator, logLevel as KafkaLogLevel } from 'kafkajs';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** pino level name (`trace` … `fatal`, `silent`); defaults to `info`. */
  readonly level?: string;
  /** Where JSON lines go; defaults to stdout. Tests pass an in-memory stream. */
  readonly destination?: DestinationStream | NodeJS.WritableStream;
  readonly name?: string;
}

export const REDACTED = '[REDACTED]';

/** Keys whose values are credentials wherever they appear, e.g. in a logged client config. */
const SECRET_KEYS: ReadonlySet<string> = new Set(['password', 'api_key', 'apiKey', 'authorization', 'Authorization', 'secret', 'token']);

/** Deeper than any config or error we log; also what stops the walk on a cyclic object. */
const SECRET_SEARCH_DEPTH = 32;

/**
 * The process logger: JSON lines with ISO timestamps and level names, secrets redacted.
 *
 * Secret keys are censored at any depth in two steps. pino's `redact` takes the top-level keys,
 * which also covers child bindings (`logger.child({ token })`) and costs nothing. Nested keys are
 * censored by a walk in `formatters.log`: pino's own wildcards reach one level each (`*.password`
 * misses `a.b.password`), and spelling six levels out made a small line cost ≈45 µs instead of
 * ≈2 µs, where the walk adds well under a microsecond. Child bindings are not walked: bind
 * identifiers, not configuration objects.
 *
 * PHI is a different matter: it is masked by schema path before a record is logged (phi-mask.ts),
 * not by key name.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const config: pino.LoggerOptions = {
    level: options.level ?? 'info',
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: {
      // Level names rather than numbers, so operators can grep and alert on "level":"error".
      level: (label) => ({ level: label }),
      log: (object) => withoutSecrets(object, 0) as Record<string, unknown>,
    },
    redact: { paths: [...SECRET_KEYS], censor: REDACTED },
    ...(options.name !== undefined ? { name: options.name } : {}),
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

/** `value` with every secret key censored; copies only the objects on the way to a secret. */
function withoutSecrets(value: unknown, depth: number): unknown {
  if (value === null || typeof value !== 'object' || depth > SECRET_SEARCH_DEPTH || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((element: unknown, index) => {
      const cleaned = withoutSecrets(element, depth + 1);
      if (cleaned !== element) (copy ??= [...value])[index] = cleaned;
    });
    return copy ?? value;
  }
  let copy: object | undefined;
  for (const key of Object.keys(value)) {
    const field: unknown = (value as Record<string, unknown>)[key];
    const cleaned = SECRET_KEYS.has(key) ? REDACTED : withoutSecrets(field, depth + 1);
    if (cleaned === field) continue;
    copy ??= writableCopy(value);
    Object.defineProperty(copy, key, { value: cleaned, enumerable: true, writable: true, configurable: true });
  }
  return copy ?? value;
}

/**
 * A shallow copy that keeps the prototype and non-enumerable properties, so an Error stays an
 * Error for pino's `err` serializer, and that is writable even when the original is frozen
 * (validated configuration is).
 */
function writableCopy(value: object): object {
  const descriptors = Object.getOwnPropertyDescriptors(value);
  for (const [key, descriptor] of Object.entries(descriptors)) {
    descriptor.configurable = true;
    if ('value' in descriptor) descriptor.writable = true;
    // An accessor read on the copy would see the copy (Node 24's Error `stack` is one): keep its value.
    else if (descriptor.get) descriptors[key] = { value: (value as Record<string, unknown>)[key], enumerable: descriptor.enumerable ?? false, writable: true, configurable: true };
  }
  return Object.create(Object.getPrototypeOf(value) as object | null, descriptors) as object;
}

/** A child logger for one component; every line it writes names the component. */
export function componentLogger(base: Logger, label: string, extra: Readonly<Record<string, unknown>> = {}): Logger {
  return base.child({ ...extra, component: label });
}

/** A child logger that ties every line to one business transaction across components. */
export function withCorrelation(logger: Logger, correlationId: string): Logger {
  return logger.child({ correlation_id: correlationId });
}

const KAFKAJS_TO_PINO_LEVEL: ReadonlyMap<KafkaLogLevel, Level> = new Map([
  [kafkajs.logLevel.ERROR, 'error'],
  [kafkajs.logLevel.WARN, 'warn'],
  // kafkajs narrates every join, fetch loop and restore consumer at INFO; that is debugging detail here.
  [kafkajs.logLevel.INFO, 'debug'],
  [kafkajs.logLevel.DEBUG, 'debug'],
]);

/** The pino level a kafkajs level is logged at; `undefined` for NOTHING, which is never logged. */
export function pinoLevelForKafka(level: KafkaLogLevel): Level | undefined {
  return KAFKAJS_TO_PINO_LEVEL.get(level);
}

/**
 * The level one kafkajs line is logged at. kafkajs's Connection logs every error answer of the
 * broker at ERROR before handing it to the caller, which handles it (TOPIC_ALREADY_EXISTS when two
 * processes create the same topics, UNKNOWN_TOPIC_OR_PARTITION while a new topic's metadata spreads,
 * a coordinator still loading) or reports it; a healthy start used to print ten such lines. They are
 * debugging detail; a refused or lost connection is a warning (the caller retries, and logs an error
 * if it gives up). Everything else keeps kafkajs's level.
 */
export function kafkaEntryLevel(entry: Pick<LogEntry, 'level' | 'namespace' | 'log'>): Level | undefined {
  const level = pinoLevelForKafka(entry.level);
  if (level !== 'error') return level;
  if (entry.namespace === 'Connection' && entry.log.message.startsWith('Response ')) return 'debug';
  if (entry.namespace === 'Connection' || entry.namespace === 'BrokerPool' || entry.namespace === 'Cluster') return 'warn';
  return level;
}

/**
 * A kafkajs `logCreator` that writes through pino, so broker and client messages share the
 * process's format, redaction and level. kafkajs filters by its own level before calling us;
 * pino's level then applies as well.
 */
export function kafkaLogCreator(logger: Logger): logCreator {
  const kafkaLogger = logger.child({ component: 'kafkajs' });
  const byNamespace = new Map<string, Logger>();
  const namespaceLogger = (namespace: string): Logger => {
    let child = byNamespace.get(namespace);
    if (!child) byNamespace.set(namespace, (child = kafkaLogger.child({ namespace })));
    return child;
  };
  return () => (entry: LogEntry) => {
    const level = kafkaEntryLevel(entry);
    if (level === undefined) return;
    // pino stamps its own time, and `logger` is always "kafkajs"; the rest is kafkajs's context.
    const { message, timestamp: _timestamp, logger: _logger, ...context } = entry.log;
    const fields: Record<string, unknown> = context;
    const target = namespaceLogger(entry.namespace);
    if (Object.keys(fields).length === 0) target[level](message);
    else target[level]({ kafka: fields }, message);
  };
}
