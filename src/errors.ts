/**
 * Lifeline's one error module. Every error we raise has a stable code (documented in
 * docs/errors.md; a test keeps both in step), a `retriable` flag and an optional cause.
 * `isRetriable` classifies any error, including kafkajs's and the network's.
 */

export const ERROR_CODES = {
  LL_CONFIG_INVALID: { retriable: false, summary: 'Configuration failed validation before anything connected.' },
  LL_TOPOLOGY_INVALID: { retriable: false, summary: 'topology.yaml failed validation; each problem names file, line, column and path.' },
  LL_SECRET_MISSING: { retriable: false, summary: 'A ${ENV} or file secret referenced by the configuration is not set or not readable.' },
  LL_COMPONENT_UNKNOWN: { retriable: false, summary: 'A component type is not registered; the message lists the known ones.' },
  LL_SCHEMA_NOT_FOUND: { retriable: false, summary: 'A schema file named by the configuration does not exist.' },
  LL_SCHEMA_INVALID: { retriable: false, summary: 'A schema file is not valid JSON or not a valid Avro schema.' },
  LL_SCHEMA_INCOMPATIBLE: { retriable: false, summary: 'A schema change breaks the subject\'s compatibility rule (BACKWARD); the message names the field and the rule.' },
  LL_SCHEMA_NOT_REGISTERED: { retriable: false, summary: 'A topic has no registered value schema to encode with.' },
  LL_REGISTRY_UNAVAILABLE: { retriable: true, summary: 'The schema registry could not be reached or answered 5xx.' },
  LL_REGISTRY_REQUEST_FAILED: { retriable: false, summary: 'The schema registry refused a request (4xx other than an incompatibility).' },
  LL_SERIALIZE_INVALID: { retriable: false, summary: 'A value does not match its Avro schema; the message names the field path.' },
  LL_DESERIALIZE_NOT_AVRO: { retriable: false, summary: 'Record bytes are not in the Confluent Avro wire format (magic byte 0 + schema id).' },
  LL_DESERIALIZE_UNKNOWN_SCHEMA: { retriable: false, summary: 'Record bytes carry a schema id the registry does not know.' },
  LL_DESERIALIZE_FAILED: { retriable: false, summary: 'Record bytes could not be decoded with the schema their id names.' },
  LL_KAFKA_UNAVAILABLE: { retriable: true, summary: 'The Kafka cluster could not be reached.' },
  LL_TOPIC_MISMATCH: { retriable: false, summary: 'An existing topic differs from its declaration in a way Lifeline will not change (e.g. fewer declared partitions).' },
  LL_RETRY_EXHAUSTED: { retriable: false, summary: 'An operation kept failing with retriable errors until the retry budget ran out; the cause is the last failure.' },
} as const satisfies Record<string, { retriable: boolean; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface LifelineErrorOptions {
  readonly cause?: unknown;
  /** Overrides the code's default, e.g. a registry 503 is retriable where a 404 is not. */
  readonly retriable?: boolean;
  readonly details?: Readonly<Record<string, unknown>>;
}

export class LifelineError extends Error {
  override readonly name = 'LifelineError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: LifelineErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

const PROGRAMMER_ERRORS = [TypeError, RangeError, ReferenceError, SyntaxError, EvalError];

const RETRIABLE_NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND',
  'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'ECONNABORTED',
]);

/**
 * Whether trying the same operation again may succeed. Programmer errors never are;
 * LifelineErrors and kafkajs errors carry their own flag; network failures are.
 */
export function isRetriable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error instanceof LifelineError) return error.retriable;
  if (PROGRAMMER_ERRORS.some((kind) => error.constructor === kind)) return false;
  const flagged = (error as { retriable?: unknown }).retriable;
  if (typeof flagged === 'boolean') return flagged;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && RETRIABLE_NETWORK_CODES.has(code)) return true;
  if (error.cause instanceof Error) return isRetriable(error.cause);
  return false;
}

/** A stable code for any error, for dead-letter headers and metrics. */
export function errorCode(error: unknown): string {
  if (error instanceof LifelineError) return error.code;
  if (error instanceof Error) {
    const type = (error as { type?: unknown }).type;
    if (typeof type === 'string') return type; // kafkajs protocol errors, e.g. CONCURRENT_TRANSACTIONS
    return error.name;
  }
  return 'UNKNOWN';
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
