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
  LL_REGISTRY_TLS_UNTRUSTED: { retriable: false, summary: 'The schema registry\'s TLS certificate is not trusted (unknown CA, wrong host name); the message names connections.registry.ca_file as the fix.' },
  LL_REGISTRY_REQUEST_FAILED: { retriable: false, summary: 'The schema registry refused a request (4xx other than an incompatibility).' },
  LL_SERIALIZE_INVALID: { retriable: false, summary: 'A value does not match its Avro schema; the message names the field path.' },
  LL_DESERIALIZE_NOT_AVRO: { retriable: false, summary: 'Record bytes are not in the Confluent Avro wire format (magic byte 0 + schema id).' },
  LL_DESERIALIZE_UNKNOWN_SCHEMA: { retriable: false, summary: 'Record bytes carry a schema id the registry does not know.' },
  LL_DESERIALIZE_FAILED: { retriable: false, summary: 'Record bytes could not be decoded with the schema their id names.' },
  LL_KAFKA_UNAVAILABLE: { retriable: true, summary: 'The Kafka cluster could not be reached.' },
  LL_KAFKA_AUTH_FAILED: { retriable: false, summary: 'Kafka refused the SASL credentials of connections.kafka.sasl; the message names the user, the mechanism and what to fix.' },
  LL_KAFKA_TLS_UNTRUSTED: { retriable: false, summary: 'The Kafka broker\'s TLS certificate is not trusted (unknown CA, wrong host name); the message says which connections.kafka.tls setting to fix.' },
  LL_KAFKA_NOT_AUTHORISED: { retriable: false, summary: 'The Kafka principal lacks an ACL it needs (e.g. missing topics it may not create, a group it may not read); the message names the resource and how to grant it (`lifeline apply` as the admin principal).' },
  LL_TOPIC_MISMATCH: { retriable: false, summary: 'An existing topic differs from its declaration in a way Lifeline will not change (e.g. fewer declared partitions).' },
  LL_FORMAT_EMPTY: { retriable: false, summary: 'A partner delivery or file has no content (empty body, empty file, only a header row).' },
  LL_FORMAT_ENCODING: { retriable: false, summary: 'Partner content is not valid in its declared character encoding (e.g. not UTF-8); the message gives the line, column and byte offset.' },
  LL_FORMAT_HL7_INVALID: { retriable: false, summary: 'An HL7 v2 message is malformed or lacks a required field; the message names the message, segment and field (e.g. MSH-10, FT1-11).' },
  LL_FORMAT_FHIR_INVALID: { retriable: false, summary: 'A FHIR R4 resource is not valid JSON, fails the R4 definitions, or lacks what the mapping needs; the message gives the JSON path.' },
  LL_FORMAT_CSV_INVALID: { retriable: false, summary: 'A CSV file does not parse or does not match its partner\'s column mapping; the message gives the line (and column or field).' },
  LL_FILE_CHANGED: { retriable: false, summary: 'A partner file changed after it was taken (its hash differs from the one ingested): reported and quarantined, never half-ingested in silence.' },
  LL_DEDUP_CONFLICT: { retriable: false, summary: 'An idempotency key arrived again with different content that its format does not mark as a correction: neither a duplicate nor an update; routed to the dedup\'s conflicts output or its dead letters with both fingerprints.' },
  LL_FORMAT_UNSUPPORTED: { retriable: false, summary: 'Well-formed partner content of a kind Lifeline does not map (e.g. HL7 RSP^K11, a FHIR Patient); the message names it and what is supported.' },
  LL_WEBHOOK_SIGNATURE_INVALID: { retriable: false, summary: 'A webhook request has no valid Standard Webhooks signature (missing webhook-id/timestamp/signature headers, or no signature matches any configured secret).' },
  LL_WEBHOOK_TIMESTAMP_STALE: { retriable: false, summary: 'A webhook request\'s webhook-timestamp is outside the configured tolerance (replayed or clock skew).' },
  LL_WEBHOOK_BODY_TOO_LARGE: { retriable: false, summary: 'A webhook request body exceeds the partner\'s max_body_bytes.' },
  LL_WEBHOOK_CONTENT_TYPE: { retriable: false, summary: 'A webhook request\'s Content-Type is not one the partner\'s format accepts.' },
  LL_SOURCE_UNAVAILABLE: { retriable: true, summary: 'A source could not hand a delivery to Kafka in time (Kafka unavailable, or the intake queue is full); the partner should retry.' },
  LL_PARTNER_TYPE_UNROUTED: { retriable: false, summary: 'A partner sent a message type (e.g. HL7 ADT, a FHIR Claim) that its source maps to an output topology.yaml does not route; answered 422 (RFC 9457 problem naming the type and what is accepted) and quarantined, or dropped and counted when the partner\'s policy is accept_and_drop. A partner file holding such records goes to failed/ and quarantine.' },
  LL_FILE_RECORD_TOO_LARGE: { retriable: false, summary: 'A row, HL7 message or FHIR resource of a partner file becomes a record larger than the partner\'s max_record_bytes; the file is rejected whole (failed/ with its report, quarantine), naming where, the size and the limit.' },
  LL_RECORD_TOO_LARGE: { retriable: false, summary: 'A record is larger than its topic accepts (max.message.bytes, read from the broker at start); it is dead-lettered (or a webhook delivery answered 413) with its size and the limit, and the rest of the batch proceeds.' },
  LL_COMMIT_OUTCOME_UNKNOWN: { retriable: true, summary: 'A Kafka transaction\'s commit failed without an answer (time-out, lost connection), so the broker may or may not have committed it; the task is reopened from what Kafka holds (committed offsets, changelog) instead of trying the transaction again, which could write its outputs twice.' },
  LL_GROUP_FENCED: { retriable: true, summary: 'Under runtime.transactions: per_process, the group coordinator refused a transaction\'s offsets because this member no longer holds the generation they were read in (a rebalance gave the partitions to another member), or a partition was revoked before its commit; the transaction is aborted and the partitions\' tasks are reopened from what Kafka holds (KIP-447 fencing).' },
  LL_NO_PROGRESS: { retriable: true, summary: 'A host failed to commit the same batch twice in a row; it splits the batch and reports itself degraded (health, lifeline_stalled_batches_total, log) rather than retrying it unchanged.' },
  LL_WEBHOOK_RATE_LIMITED: { retriable: true, summary: 'A source address sent too many unauthenticated (badly signed) webhook requests; answered 429 with Retry-After, and only metadata is kept.' },
  LL_SOURCE_OUTPUT_UNMAPPED: { retriable: false, summary: 'A source emitted a record to an output topology.yaml does not map; the record is dead-lettered and the rest of its batch proceeds.' },
  LL_FILE_IO: { retriable: true, summary: 'A partner file or folder could not be read, moved or written (permissions, disk, a file that vanished).' },
  LL_RESTORE_TIMEOUT: { retriable: true, summary: 'Restoring a partition\'s state stores from their changelogs passed runtime.restore_timeout; the process reports not ready with the reason, and the next attempt resumes from the restore\'s checkpoint.' },
  LL_STATE_DIR_LOCKED: { retriable: false, summary: 'Every state directory slot under runtime.state_dir is locked by a live process (more than 64 processes on this host share one state_dir).' },
  LL_RETRY_EXHAUSTED: { retriable: false, summary: 'An operation kept failing with retriable errors until the retry budget ran out; the cause is the last failure.' },
  LL_NOT_AUTHORISED: { retriable: false, summary: 'An operator command was refused: no or unknown identity, a token that does not match, a role that does not allow the action, or an approver approving their own plan. The refusal is audited.' },
  LL_ALERT_DELIVERY_FAILED: { retriable: true, summary: 'An incident alert could not be delivered to the alert webhook (unreachable, timed out, or answered an error) after its retries; the incident is kept and shows the failed delivery.' },
  LL_OPERATORS_INVALID: { retriable: false, summary: 'The operators file (LIFELINE_OPERATORS_FILE or LIFELINE_OPERATORS) is unreadable or does not match its schema; the message names the path.' },
  LL_GROUP_ACTIVE: { retriable: false, summary: 'A consumer group has active members that no Lifeline runtime paused (another application owns it, or it did not become empty in time); offsets are changed only on an empty group.' },
  LL_OFFSETS_INVALID: { retriable: false, summary: 'An offset reset cannot be computed: unknown topic or partition, no committed offset to shift from, or a bad datetime.' },
  LL_PLAN_INVALID: { retriable: false, summary: 'A replay plan does not exist or is not in a state that allows the request (e.g. approving an executed plan).' },
  LL_AUDIT_FAILED: { retriable: true, summary: 'An audit event could not be written and acknowledged by Kafka; the command does not report success without its audit entry.' },
  LL_ODOO_AUTH_FAILED: { retriable: false, summary: 'Odoo refused the login: authenticate returned false for the connection\'s database, username and password or API key.' },
  LL_ODOO_ACCESS_DENIED: { retriable: false, summary: 'Odoo fault 3 (AccessDenied): the credentials were rejected on a call, e.g. a revoked API key.' },
  LL_ODOO_ACCESS_ERROR: { retriable: false, summary: 'Odoo fault 4 (AccessError): the user may not do this to this model or record (or called a private method).' },
  LL_ODOO_USER_ERROR: { retriable: false, summary: 'Odoo fault 2 (UserError, ValidationError, unknown model, duplicate key), or a `load` row Odoo rejected; the message is Odoo\'s text.' },
  LL_ODOO_RECORD_MISSING: { retriable: false, summary: 'Odoo fault 2 MissingError: the record does not exist or has been deleted.' },
  LL_ODOO_FAULT: { retriable: false, summary: 'Odoo fault 1 (a server-side exception); the message ends with the traceback\'s last line.' },
  LL_ODOO_CONFLICT: { retriable: true, summary: 'Odoo fault 1 caused by a database serialization failure or lock (concurrent update); trying again succeeds.' },
  LL_ODOO_UNAVAILABLE: { retriable: true, summary: 'Odoo could not be reached, timed out, or answered HTTP 5xx.' },
  LL_ODOO_TLS_UNTRUSTED: { retriable: false, summary: 'Odoo\'s TLS certificate is not trusted (unknown CA, wrong host name); the message names connections.odoo.<name>.ca_file as the fix. Sinks pause (health down, the backlog waits in Kafka) rather than dead-letter.' },
  LL_ODOO_PROTOCOL: { retriable: false, summary: 'Odoo\'s URL answered something that is not XML-RPC (HTTP 404, an HTML page): check the connection url.' },
  LL_ODOO_VALUE_INVALID: { retriable: false, summary: 'A value cannot be sent to Odoo over XML-RPC (an integer beyond 32 bits, a JS Date, NaN, undefined); the message names its path.' },
  LL_ODOO_LINK_UNRESOLVED: { retriable: true, summary: 'A link in odoo_sink\'s field mapping (external id, model + domain, or id) does not resolve to exactly one Odoo record: the sink pauses until it does (`lifeline odoo check` names the fix).' },
  LL_ODOO_SETUP_MISSING: { retriable: false, summary: '`lifeline odoo check` found a model, field, record or access right a sink or source needs missing in Odoo; the message says which and how to fix it.' },
  LL_ODOO_OWNER_MISSING: { retriable: false, summary: 'No owner in an odoo_sink activity\'s owner chain resolved to an Odoo record (each step and what it looked for is in the message).' },
  LL_ODOO_REFERENCE_NOT_FOUND: { retriable: false, summary: 'A many2one lookup declared in odoo_sink\'s field mapping found no record (or several) for the value.' },
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
