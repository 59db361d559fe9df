import { setTimeout as sleep } from 'node:timers/promises';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { TimeoutMiddleware } from 'mappersmith/middleware/timeout';
import { Agent as HttpsAgent } from 'node:https';
import { withoutCredentials } from '../component/http-url.ts';
import { trustedCas, untrustedCertificate } from '../component/tls-trust.ts';
import { LifelineError, errorMessage } from '../errors.ts';
import { compileContract, type AvroContract, type AvroSchemaJson } from './avro-contract.ts';
import { backwardIncompatibilities } from './schema-compatibility.ts';

export interface SchemaRegistryConfig {
  /** Base URL of a Confluent-compatible API, e.g. http://127.0.0.1:8081/apis/ccompat/v7 */
  readonly url: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM file of a (private) CA to trust for an https:// url, besides Node's own roots. */
  readonly caFile?: string;
  /** How long one registry request may take before it counts as an outage (and is retried); default 10 s. */
  readonly requestTimeoutMs?: number;
}

/**
 * The registry client sets no request time-out of its own: a registry that accepts the connection
 * and never answers (overloaded, a database lock held) would hold a start or an encode for ever.
 */
const REGISTRY_REQUEST_TIMEOUT_MS = 10_000;

export interface DecodedRecord<T = unknown> {
  readonly schemaId: number;
  readonly value: T;
}

const MAGIC_BYTE = 0;
const HEADER_BYTES = 5;

export function subjectFor(topic: string): string {
  return `${topic}-value`;
}

/** Reads the schema id from Confluent wire-format bytes, or explains why they are not. */
export function wireSchemaId(bytes: Buffer | null): number {
  if (!bytes || bytes.length === 0) throw new LifelineError('LL_DESERIALIZE_NOT_AVRO', 'record value is empty; expected Confluent Avro wire format');
  if (bytes.length < HEADER_BYTES || bytes[0] !== MAGIC_BYTE) {
    throw new LifelineError('LL_DESERIALIZE_NOT_AVRO',
      `record value is not Confluent Avro wire format (first byte ${bytes[0]}, length ${bytes.length}; expected magic byte 0 and a 4-byte schema id)`);
  }
  return bytes.readInt32BE(1);
}

function httpStatus(error: unknown): number | undefined {
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * The registry client (mappersmith underneath) reports a connection it could not make — refused,
 * reset, timed out, name not resolved — as a response with status 400 and the network error in
 * the message. That is an outage, not a refusal: trying again later succeeds.
 */
const NETWORK_FAILURE = /\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ENOTFOUND|ECONNABORTED|socket hang up|Timeout \(\d+ms\))/i;

/** Whether a registry client error means the registry could not be reached (or is overloaded/failing). */
export function isRegistryUnreachable(error: unknown): boolean {
  const status = httpStatus(error);
  if (status === undefined || status >= 500 || status === 408 || status === 429) return true;
  return NETWORK_FAILURE.test(errorMessage(error));
}

function registryError(error: unknown, what: string, config?: SchemaRegistryConfig): LifelineError {
  const status = httpStatus(error);
  const untrusted = untrustedCertificate(error);
  if (untrusted) {
    const at = config ? withoutCredentials(config.url) : 'the schema registry';
    return new LifelineError('LL_REGISTRY_TLS_UNTRUSTED',
      `the TLS certificate of the schema registry at ${at} is not trusted while ${what} (${untrusted.code}: ${untrusted.message.replace(/^Confluent_Schema_Registry - Error, status \d+: /, '')}). `
      + `Fix: set connections.registry.ca_file (e.g. "\${LIFELINE_REGISTRY_CA_FILE}") to the PEM of the CA that signed the registry's certificate${config?.caFile ? ` (now ${config.caFile}, which did not sign it)` : ''}, and use a host name the certificate names.`,
      { cause: error, details: { url: at } });
  }
  if (isRegistryUnreachable(error)) {
    return new LifelineError('LL_REGISTRY_UNAVAILABLE', `schema registry unavailable while ${what}: ${errorMessage(error)}`, { cause: error });
  }
  return new LifelineError('LL_REGISTRY_REQUEST_FAILED', `schema registry refused ${what} (HTTP ${status}): ${errorMessage(error)}`, { cause: error, details: { status } });
}

/**
 * Avro values in the Confluent wire format, with schemas registered under `<topic>-value`
 * and evolution held to BACKWARD compatibility. Schema ids are cached per topic and per id.
 */
export class AvroSerde {
  readonly registry: SchemaRegistry;
  private readonly idByTopic = new Map<string, number>();
  private readonly typeById = new Map<number, avro.Type>();
  private readonly typeByTopic = new Map<string, avro.Type>();
  private readonly config: SchemaRegistryConfig;

  constructor(config: SchemaRegistryConfig) {
    this.registry = new SchemaRegistry({
      host: config.url,
      clientId: 'lifeline',
      retry: { retries: 2, initialRetryTimeInSecs: 0.1, maxRetryTimeInSecs: 1 },
      // The client is built on mappersmith's CommonJS types, this import on its ESM ones: the same middleware.
      middlewares: [TimeoutMiddleware(config.requestTimeoutMs ?? REGISTRY_REQUEST_TIMEOUT_MS) as never],
      ...(config.username !== undefined ? { auth: { username: config.username, password: config.password ?? '' } } : {}),
      ...(config.caFile ? { agent: new HttpsAgent({ keepAlive: true, ca: trustedCas(config.caFile) }) } : {}),
    });
    this.config = config;
  }

  /**
   * Registers a contract for a topic. If the subject already has versions, the new schema is
   * first checked locally against the latest, so an incompatible change fails naming the field.
   */
  async register(topic: string, contract: AvroContract): Promise<number> {
    const subject = subjectFor(topic);
    const latest = await this.latestContract(subject);
    if (latest) {
      const problems = backwardIncompatibilities(contract.type, latest.type);
      if (problems.length > 0) {
        throw new LifelineError('LL_SCHEMA_INCOMPATIBLE',
          `schema ${contract.file ?? contract.fullName} is not BACKWARD compatible with the latest version registered under ${subject}: ${problems.join('; ')}`,
          { details: { subject, problems } });
      }
    }
    let id: number;
    try {
      id = await this.registerWithRule(subject, contract);
    } catch (error) {
      const status = httpStatus(error);
      if (status === 409) {
        throw new LifelineError('LL_SCHEMA_INCOMPATIBLE',
          `the registry refused ${contract.file ?? contract.fullName} under ${subject} as incompatible (BACKWARD): ${errorMessage(error)}`,
          { cause: error, details: { subject } });
      }
      if ((error as Error).name === 'ConfluentSchemaRegistryCompatibilityError') {
        throw new LifelineError('LL_SCHEMA_INCOMPATIBLE', `${subject}: ${errorMessage(error)} (Lifeline requires BACKWARD)`, { cause: error, details: { subject } });
      }
      throw registryError(error, `registering ${subject}`, this.config);
    }
    this.idByTopic.set(topic, id);
    this.typeById.set(id, contract.type);
    this.typeByTopic.set(topic, contract.type);
    return id;
  }

  /**
   * Two processes registering a new subject at once both set its compatibility rule, and Apicurio
   * answers the second with 409 "rule already exists"; registering again then finds the rule. The
   * second may also find the subject before the first has set the rule (it reads NONE): it waits.
   */
  private async registerWithRule(subject: string, contract: AvroContract): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        const { id } = await this.registry.register(
          { type: SchemaType.AVRO, schema: JSON.stringify(contract.json) },
          { subject, compatibility: 'BACKWARD' as never },
        );
        return id;
      } catch (error) {
        if (attempt < 3 && httpStatus(error) === 409 && /already exists/i.test(errorMessage(error))) continue;
        // The other process created the subject but has not set its rule yet: the rule reads NONE for a moment.
        if (attempt < 20 && (error as Error).name === 'ConfluentSchemaRegistryCompatibilityError' && /!= NONE/.test(errorMessage(error))) {
          await sleep(100 * (attempt + 1));
          continue;
        }
        throw error;
      }
    }
  }

  /** The latest version registered under a subject, or undefined when it has none. */
  async latestContract(subject: string): Promise<AvroContract | undefined> {
    let id: number;
    try {
      id = await this.registry.getLatestSchemaId(subject);
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw registryError(error, `reading the latest version of ${subject}`, this.config);
    }
    const type = await this.typeFor(id);
    return compileContract(JSON.parse(JSON.stringify(type.schema())) as AvroSchemaJson);
  }

  /** Uses the schema registered last for the topic (looked up once, then cached). */
  async schemaIdFor(topic: string): Promise<number> {
    const cached = this.idByTopic.get(topic);
    if (cached !== undefined) return cached;
    let id: number;
    try {
      id = await this.registry.getLatestSchemaId(subjectFor(topic));
    } catch (error) {
      if (httpStatus(error) === 404) {
        throw new LifelineError('LL_SCHEMA_NOT_REGISTERED', `no value schema is registered for topic ${topic} (subject ${subjectFor(topic)})`, { cause: error });
      }
      throw registryError(error, `looking up the schema of ${topic}`, this.config);
    }
    this.idByTopic.set(topic, id);
    this.typeByTopic.set(topic, await this.typeFor(id));
    return id;
  }

  async encode(topic: string, value: unknown): Promise<Buffer> {
    const id = await this.schemaIdFor(topic);
    const type = this.typeByTopic.get(topic) ?? (await this.typeFor(id));
    return this.encodeWith(topic, id, type, value);
  }

  /**
   * `bytes` as they are when they already carry `topic`'s cached schema id (a record passed on
   * unchanged to a topic with the same schema: no re-encoding); undefined otherwise.
   */
  reusableFor(topic: string, bytes: Buffer | null): Buffer | undefined {
    if (bytes === null || bytes.length < HEADER_BYTES || bytes[0] !== MAGIC_BYTE) return undefined;
    return this.idByTopic.get(topic) === bytes.readInt32BE(1) ? bytes : undefined;
  }

  /**
   * The same as `encode`, without a promise, when the topic's schema is already cached (every
   * record after a topic's first); undefined when it is not (then `encode` fetches it).
   */
  encodeCached(topic: string, value: unknown): Buffer | undefined {
    const id = this.idByTopic.get(topic);
    const type = this.typeByTopic.get(topic);
    return id === undefined || type === undefined ? undefined : this.encodeWith(topic, id, type, value);
  }

  private encodeWith(topic: string, id: number, type: avro.Type, value: unknown): Buffer {
    // The plain check is compiled and quick; the one that names every invalid field runs only when it failed.
    if (!type.isValid(value)) this.refuseInvalid(topic, type, value);
    const body = type.toBuffer(value);
    const bytes = Buffer.allocUnsafe(HEADER_BYTES + body.length);
    bytes.writeUInt8(MAGIC_BYTE, 0);
    bytes.writeInt32BE(id, 1);
    body.copy(bytes, HEADER_BYTES);
    return bytes;
  }

  private refuseInvalid(topic: string, type: avro.Type, value: unknown): never {
    const invalid: string[] = [];
    type.isValid(value, {
      errorHook: (path, fieldValue, fieldType) => {
        invalid.push(`${path.join('.') || '(value)'}: expected ${fieldType.typeName}${fieldType.name ? ` ${fieldType.name}` : ''}, got ${describeValue(fieldValue)}`);
      },
    });
    throw new LifelineError('LL_SERIALIZE_INVALID', `value for ${topic} does not match schema ${type.name ?? type.typeName}: ${invalid.join('; ') || 'the value as a whole'}`,
      { details: { topic, fields: invalid } });
  }

  async decode<T = unknown>(bytes: Buffer | null): Promise<DecodedRecord<T>> {
    const schemaId = wireSchemaId(bytes);
    return this.decodeWith<T>(schemaId, await this.typeFor(schemaId), bytes as Buffer);
  }

  /** The same as `decode`, without a promise, when the writer schema is cached; undefined when it is not. */
  decodeCached<T = unknown>(bytes: Buffer | null): DecodedRecord<T> | undefined {
    const schemaId = wireSchemaId(bytes);
    const type = this.typeById.get(schemaId);
    return type === undefined ? undefined : this.decodeWith<T>(schemaId, type, bytes as Buffer);
  }

  private decodeWith<T>(schemaId: number, type: avro.Type, bytes: Buffer): DecodedRecord<T> {
    try {
      return { schemaId, value: type.fromBuffer((bytes as Buffer).subarray(HEADER_BYTES)) as T };
    } catch (error) {
      throw new LifelineError('LL_DESERIALIZE_FAILED', `record bytes do not decode with schema id ${schemaId} (${type.name ?? type.typeName}): ${errorMessage(error)}`, { cause: error, details: { schemaId } });
    }
  }

  /** The writer schema for an id, fetched once. */
  async typeFor(id: number): Promise<avro.Type> {
    const cached = this.typeById.get(id);
    if (cached) return cached;
    let schema: unknown;
    try {
      schema = await this.registry.getSchema(id);
    } catch (error) {
      if (httpStatus(error) === 404) {
        throw new LifelineError('LL_DESERIALIZE_UNKNOWN_SCHEMA', `schema id ${id} is not known to the registry`, { cause: error, details: { schemaId: id } });
      }
      throw registryError(error, `fetching schema id ${id}`, this.config);
    }
    const type = schema as avro.Type;
    this.typeById.set(id, type);
    return type;
  }
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing (field missing)';
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string of length ${value.length}`; // never echo values: they may be PHI
  return typeof value;
}
