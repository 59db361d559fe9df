import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Type, type Static } from '@sinclair/typebox';
import type { Logger } from 'pino';
import { ERROR_CODES, LifelineError, errorCode, errorMessage, isRetriable } from '../../src/errors.ts';
import { defineSource, type Source, type SourceBatch, type SourceBatchOutcome, type SourceContext, type SourceRecord } from '../../src/component/component.ts';
import { DURATION_PATTERN, parseDuration } from '../../src/component/duration.ts';
import { PARTNER_FEED_OUTPUTS, errorLocation, type CanonicalRecord, type DeliveryContext } from '../formats/canonical.ts';
import { checkPartnerFormat, decodeDelivery, partnerFormatProperties, type PartnerFormat } from '../formats/partner-format.ts';
import {
  MIXED_POLICIES, PartnerFeedMetrics, UNROUTED_POLICIES, acceptedTypes, canonicalSourceRecord, deliveryMessageTypes, headersFor, partnerRoutingWarnings, quarantineRecords,
  routeRecords, unroutedTypeCounts,
} from '../partner-feed.ts';
import { decodeWebhookSecret, verifyWebhook } from './standard-webhooks.ts';

/**
 * `webhook_source`: partners POST signed notifications (Standard Webhooks) to a path of their
 * own. A delivery is answered only once its fate is durable in Kafka:
 *
 * | outcome | answer |
 * | --- | --- |
 * | records committed (acknowledge) | 200 `{"status":"accepted"}` |
 * | a message type no output maps (HL7 ADT to a charges-only lab, a FHIR Claim to a supplier) | 422 problem naming the type and what is accepted, after quarantine; or 200 with `dropped` under `unrouted: accept_and_drop` |
 * | a Bundle / batch mixing routed and unrouted content | `mixed: accept_routed`: 200 with `unrouted` listed, the routed records committed and the whole delivery quarantined; `mixed: reject`: 422 |
 * | a record larger than its topic accepts | 413 problem with the size and the limit (the record is dead-lettered) |
 * | too many unauthenticated requests from one address | 429 + Retry-After, nothing recorded |
 * | same webhook-id and body as a delivery already accepted by this process | 200 `{"status":"duplicate"}`, nothing produced |
 * | bad or missing signature | 401, after a metadata-only quarantine record (time, path, address, reason, size, sha256: never the body) |
 * | timestamp outside tolerance (signature valid) | 401, after the quarantine record is committed |
 * | body larger than max_body_bytes | 413, after the quarantine record (headers, no body) is committed |
 * | content type the format does not accept | 415, after quarantine |
 * | content that does not decode or map (HL7, FHIR, CSV, encoding, empty, unsupported) | 422, after quarantine |
 * | not committed (Kafka or registry unavailable), intake queue full, or no commit within response_timeout | 503 + Retry-After: the partner retries |
 *
 * Every non-2xx answer is an RFC 9457 problem (`application/problem+json`). Deliveries committed
 * together never share a failure: when a transaction fails, each of its deliveries is retried in
 * a transaction of its own, so only the one at fault is answered 4xx/503.
 * | unknown path / not POST | 404 / 405, nothing recorded |
 *
 * The webhook-id is the idempotency key (header `lifeline.idempotency-key`; `<id>#<n>` when one
 * delivery yields several records), so a retried delivery — same id, new timestamp — is
 * deduplicated downstream even after this process restarted. A 503 never loses anything: the
 * delivery was either not committed, or committed and then deduplicated when the partner retries.
 */

const partnerSchema = Type.Object({
  ...partnerFormatProperties,
  path: Type.String({ pattern: '^/[A-Za-z0-9/_.-]*$', description: 'URL path the partner POSTs to (exact match).', examples: ['/webhooks/acme_lab'] }),
  secrets: Type.Array(Type.String(), {
    minItems: 1,
    description: 'Standard Webhooks secrets ("whsec_<base64>"), as ${ENV} or ${file:…} references only. Every one is tried, so a rotation lists old and new together.',
  }),
  max_body_bytes: Type.Integer({ minimum: 1, default: 1_048_576, description: 'Largest body accepted; larger ones are answered 413.' }),
  unrouted: Type.Union(UNROUTED_POLICIES.map((policy) => Type.Literal(policy)), {
    default: 'quarantine',
    description: 'What a message type no output maps becomes (an HL7 ADT sent to a lab whose topology maps only charges): quarantine = 422 problem + quarantined; accept_and_drop = 200, dropped and counted (lifeline_partner_records_dropped_total), for partners who send everything.',
  }),
  mixed: Type.Union(MIXED_POLICIES.map((policy) => Type.Literal(policy)), {
    default: 'accept_routed',
    description: 'A FHIR Bundle or HL7 batch mixing routed and unrouted content (with unrouted: quarantine): accept_routed = the routed records are committed, the delivery is quarantined for the rest and the answer (200) lists what was not routed; reject = 422 for the whole delivery, nothing written but the quarantine record.',
  }),
  content_types: Type.Optional(Type.Array(Type.String({ minLength: 3 }), {
    minItems: 1,
    description: 'Media types accepted (parameters such as charset ignored). Defaults: hl7v2 x-application/hl7-v2+er7, application/hl7-v2, text/plain; fhir_r4 application/fhir+json, application/json+fhir (DSTU2-era partners), application/json; csv text/csv, application/csv, text/plain.',
  })),
}, { additionalProperties: false });

const configSchema = Type.Object({
  host: Type.String({ default: '0.0.0.0', description: 'Interface to listen on.' }),
  port: Type.Integer({ minimum: 0, maximum: 65535, default: 8088, description: 'TCP port (0 picks a free one; the chosen port is logged).' }),
  tolerance: Type.String({ pattern: DURATION_PATTERN, default: '5m', description: 'How far webhook-timestamp may be from this server\'s clock (Standard Webhooks uses 5m).' }),
  response_timeout: Type.String({ pattern: DURATION_PATTERN, default: '10s', description: 'A delivery not committed by then is answered 503 (the partner retries; a late commit is deduplicated).' }),
  max_batch_deliveries: Type.Integer({ minimum: 1, default: 200, description: 'Deliveries committed together in one Kafka transaction at most.' }),
  transactions_in_flight: Type.Integer({ minimum: 1, maximum: 16, default: 4, description: 'Kafka transactions committing deliveries at once (one transactional producer each): a delivery waits for its own commit, not for the one before it.' }),
  group_commit_wait: Type.String({ pattern: DURATION_PATTERN, default: '2ms', description: 'While other transactions are committing, a free one waits up to this long for group_commit_deliveries deliveries before it starts: fewer, fuller transactions under load (0ms: start at once). A delivery waits this long at most; when nothing else is committing it never waits.' }),
  group_commit_deliveries: Type.Integer({ minimum: 1, default: 16, description: 'Deliveries that end the group_commit_wait early.' }),
  max_pending_deliveries: Type.Integer({ minimum: 1, default: 2000, description: 'Deliveries waiting for Kafka at most; more are answered 503 at once (bounded memory under load or while Kafka is down).' }),
  remember_deliveries: Type.Integer({ minimum: 0, default: 10_000, description: 'Accepted webhook-ids remembered to answer an identical re-delivery 200 "duplicate" without producing it again.' }),
  unauthenticated_per_minute: Type.Integer({ minimum: 1, default: 30, description: 'Requests without a valid signature (or too large to be verified) recorded per source address and minute; more are answered 429 and not recorded.' }),
  partners: Type.Array(partnerSchema, { minItems: 1, description: 'One entry per partner: its path, format and secrets.' }),
}, { additionalProperties: false });

type WebhookConfig = Static<typeof configSchema>;
type PartnerConfig = Static<typeof partnerSchema>;

const DEFAULT_CONTENT_TYPES: Readonly<Record<PartnerFormat, readonly string[]>> = {
  hl7v2: ['x-application/hl7-v2+er7', 'application/hl7-v2', 'text/plain'],
  fhir_r4: ['application/fhir+json', 'application/json+fhir', 'application/json'],
  csv: ['text/csv', 'application/csv', 'text/plain'],
};

const REJECTION_STATUS: Readonly<Record<string, number>> = {
  LL_WEBHOOK_SIGNATURE_INVALID: 401, LL_WEBHOOK_TIMESTAMP_STALE: 401, LL_WEBHOOK_BODY_TOO_LARGE: 413, LL_WEBHOOK_CONTENT_TYPE: 415,
};
const RETRY_AFTER_SECONDS = 5;
/** Headers of an unauthenticated request that are kept: they say what arrived, not what it holds. */
const METADATA_HEADERS = ['content-type', 'content-length', 'user-agent', 'webhook-id', 'webhook-timestamp', 'x-forwarded-for', 'x-request-id'];
/** Source addresses tracked by the rate limit at most (oldest forgotten first). */
const MAX_TRACKED_ADDRESSES = 10_000;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
/** Request headers never copied into quarantine records. */
const PRIVATE_HEADERS = new Set(['authorization', 'proxy-authorization', 'cookie']);

interface Partner {
  readonly config: PartnerConfig;
  readonly keys: readonly Buffer[];
  readonly contentTypes: ReadonlySet<string>;
}

/** A request waiting for its records to be committed. */
interface PendingDelivery {
  readonly partner: string;
  readonly webhookId: string | undefined;
  readonly bodySha256: string;
  readonly receivedAt: number;
  readonly records: readonly SourceRecord[];
  readonly canonical: readonly CanonicalRecord[];
  /** What to answer once committed: 200 accepted, or the rejection (its quarantine record is in `records`). */
  readonly outcome:
    | { kind: 'accept'; unrouted?: Readonly<Record<string, number>> }
    | { kind: 'reject'; status: number; code: string; message: string; location: string | undefined; extensions?: Readonly<Record<string, unknown>> };
  readonly response: ServerResponse;
  answered: boolean;
  timer: NodeJS.Timeout | undefined;
  /** Retried in a transaction of its own after a transaction it shared failed. */
  isolated?: boolean;
  /** Tried once more after Kafka refused it as too large (with the limits read again). */
  retriedTooLarge?: boolean;
}

export const webhookSource = defineSource({
  kind: 'source',
  type: 'webhook_source',
  description: 'Receives partner webhooks (Standard Webhooks signatures; HL7 v2, FHIR R4 or CSV bodies) and answers 2xx only once the canonical records are committed in Kafka.',
  stateful: false,
  outputs: PARTNER_FEED_OUTPUTS,
  config: configSchema,
  create: (config) => new WebhookSource(config),
  warnings: (config, outputs) => partnerRoutingWarnings(config.partners, outputs, 'webhook_source'),
});

class WebhookSource implements Source {
  /** Each delivery's answer waits for its own transaction only: several commit at once. */
  readonly batchesInFlight: number;
  private readonly partnersByPath = new Map<string, Partner>();
  private readonly toleranceMs: number;
  private readonly responseTimeoutMs: number;
  private readonly queue: PendingDelivery[] = [];
  /** Batches handed to the host and not yet acknowledged or failed: the transactions committing now. */
  private readonly inFlight = new Map<SourceBatch, PendingDelivery[]>();
  /** webhook-id → sha256 of the body, for deliveries committed and answered 200 (insertion-ordered, oldest evicted). */
  private readonly accepted = new Map<string, string>();
  /** Source address → unauthenticated requests in the current minute. */
  private readonly unauthenticated = new Map<string, { windowStart: number; count: number }>();
  private wake: (() => void) | undefined;
  private readonly groupCommitWaitMs: number;
  private server: Server | undefined;
  private context!: SourceContext;
  private logger!: Logger;
  private metrics!: PartnerFeedMetrics;

  constructor(private readonly config: WebhookConfig) {
    this.batchesInFlight = config.transactions_in_flight;
    this.toleranceMs = parseDuration(config.tolerance) as number;
    this.responseTimeoutMs = parseDuration(config.response_timeout) as number;
    this.groupCommitWaitMs = parseDuration(config.group_commit_wait) as number;
    config.partners.forEach((partner, index) => {
      const where = `webhook_source partners[${index}]`;
      checkPartnerFormat(partner, where);
      if (this.partnersByPath.has(partner.path)) throw new LifelineError('LL_CONFIG_INVALID', `${where}: path ${partner.path} is already used by partner ${this.partnersByPath.get(partner.path)?.config.name}`);
      this.partnersByPath.set(partner.path, {
        config: partner,
        keys: partner.secrets.map((secret, secretIndex) => decodeWebhookSecret(secret, `${where}.secrets[${secretIndex}]`)),
        contentTypes: new Set((partner.content_types ?? DEFAULT_CONTENT_TYPES[partner.format]).map((type) => type.toLowerCase())),
      });
    });
  }

  async connect(context: SourceContext): Promise<void> {
    this.context = context;
    this.logger = context.logger;
    this.metrics = new PartnerFeedMetrics(context.metricsRegistry, context.label, 'webhook');
    const server = createServer((request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        this.logger.error({ err: errorMessage(error) }, 'webhook request failed unexpectedly');
        if (!response.headersSent) answerProblem(response, 500, 'internal', 'unexpected error; retry later', { webhook_id: null, quarantined: false });
      });
    });
    server.keepAliveTimeout = 65_000; // longer than common load balancer idle timeouts
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.config.port, this.config.host, () => resolve());
    });
    this.server = server;
    const { port } = server.address() as AddressInfo;
    context.signal.addEventListener('abort', () => this.wake?.(), { once: true });
    context.setHealth('up');
    this.logger.info({ port, host: this.config.host, partners: this.config.partners.map((partner) => `${partner.name} ${partner.path}`) }, 'webhook source listening');
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const receivedAt = Date.now();
    const path = (request.url ?? '/').split('?')[0] as string;
    const partner = this.partnersByPath.get(path);
    if (!partner) {
      request.resume();
      answerProblem(response, 404, 'not_found', 'no partner is configured at this path', { webhook_id: null, quarantined: false });
      return;
    }
    if (request.method !== 'POST') {
      request.resume();
      answerProblem(response, 405, 'method_not_allowed', 'deliveries are POSTed', { webhook_id: null, quarantined: false }, { Allow: 'POST' });
      return;
    }
    const name = partner.config.name;
    this.metrics.deliveryReceived(name);
    const headers = copyHeaders(request);
    const webhookId = headerValue(request, 'webhook-id');
    const contentType = headerValue(request, 'content-type');

    const address = request.socket.remoteAddress ?? 'unknown';
    const body = await readBody(request, partner.config.max_body_bytes);
    if (body.tooLarge) {
      response.setHeader('Connection', 'close');
      if (this.rateLimited(address, partner, receivedAt, response)) return;
      const reason = new LifelineError('LL_WEBHOOK_BODY_TOO_LARGE', `body is larger than this partner's limit of ${partner.config.max_body_bytes} bytes`);
      // The body is not kept (it is the problem); the headers and the reason are.
      this.enqueueRejection({ partner, webhookId, receivedAt, response, headers: metadataHeaders(headers, path, address), contentType, raw: Buffer.alloc(0), truncated: true, error: reason, originalSize: body.size });
      return;
    }
    const raw = body.bytes;
    try {
      verifyWebhook({ id: webhookId, timestamp: headerValue(request, 'webhook-timestamp'), signature: headerValue(request, 'webhook-signature') }, raw, partner.keys, this.toleranceMs, receivedAt);
    } catch (error) {
      if (errorCode(error) === 'LL_WEBHOOK_SIGNATURE_INVALID') {
        // Anyone on the network can send this: keep what arrived and from where, never the body.
        if (this.rateLimited(address, partner, receivedAt, response)) return;
        this.enqueueRejection({
          partner, webhookId, receivedAt, response, headers: metadataHeaders(headers, path, address), contentType, raw: Buffer.alloc(0), error,
          truncated: true, originalSize: raw.length, bodySha256: createHash('sha256').update(raw).digest('hex'),
        });
        return;
      }
      this.enqueueRejection({ partner, webhookId, receivedAt, response, headers, contentType, raw, error });
      return;
    }
    const id = webhookId as string;
    const bodySha256 = createHash('sha256').update(raw).digest('hex');
    if (this.accepted.get(id) === bodySha256) {
      this.metrics.deliveryAcceptedWithoutRecords(name, (Date.now() - receivedAt) / 1000);
      answer(response, 200, { status: 'duplicate', webhook_id: id, message: 'this delivery was already accepted' });
      return;
    }
    const mediaType = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
    if (!partner.contentTypes.has(mediaType)) {
      const error = new LifelineError('LL_WEBHOOK_CONTENT_TYPE', `Content-Type must be one of ${[...partner.contentTypes].join(', ')} for ${partner.config.format}`);
      this.enqueueRejection({ partner, webhookId: id, receivedAt, response, headers, contentType, raw, error, bodySha256 });
      return;
    }
    const delivery: DeliveryContext = { partner: name, channel: 'WEBHOOK', deliveryId: id, receivedAt, defaultCurrency: partner.config.default_currency };
    let canonical: CanonicalRecord[];
    try {
      canonical = decodeDelivery(raw, partner.config, delivery);
    } catch (error) {
      if (!(error instanceof LifelineError)) throw error;
      this.enqueueRejection({ partner, webhookId: id, receivedAt, response, headers, contentType, raw, error, bodySha256 });
      return;
    }
    const routing = this.route(partner, canonical, raw);
    if (routing.reject) {
      this.enqueueRejection({ partner, webhookId: id, receivedAt, response, headers, contentType, raw, error: routing.reject.error, bodySha256, extensions: routing.reject.extensions });
      return;
    }
    canonical = routing.records;
    if (canonical.length === 0) {
      // Everything was dropped by the partner's accept_and_drop policy: nothing to commit.
      this.metrics.deliveryAcceptedWithoutRecords(name, (Date.now() - receivedAt) / 1000);
      answer(response, 200, { status: 'accepted', webhook_id: id, records: 0, dropped: routing.dropped });
      return;
    }
    const traceparent = headerValue(request, 'traceparent');
    const ingestedAt = new Date(receivedAt).toISOString();
    const records: SourceRecord[] = canonical.map((record, index) => canonicalSourceRecord(record, headersFor({
      idempotencyKey: canonical.length === 1 ? id : `${id}#${index + 1}`,
      correlationId: record.value.correlation_id ?? id,
      ingestedAt,
      source: this.context.label,
      ...(traceparent && TRACEPARENT.test(traceparent) ? { traceparent } : {}),
    })));
    let outcome: PendingDelivery['outcome'] = { kind: 'accept' };
    if (routing.unrouted) {
      // mixed: accept_routed: the routed records go on; the delivery is quarantined for the rest.
      records.push(...this.quarantineFor({
        partner, webhookId: id, receivedAt, headers, contentType, raw, bodySha256, error: routing.unrouted.error,
      }));
      outcome = { kind: 'accept', unrouted: routing.unrouted.types };
      this.metrics.deliveryRejected(name, 'LL_PARTNER_TYPE_UNROUTED');
    }
    this.enqueue({ partner: name, webhookId: id, bodySha256, receivedAt, records, canonical, outcome, response, answered: false, timer: undefined });
  }

  /**
   * Applies the partner's routing policies to a decoded delivery: what to commit, or why to
   * refuse it (422), and what was left out.
   */
  private route(partner: Partner, canonical: CanonicalRecord[], raw: Buffer): {
    records: CanonicalRecord[];
    dropped: number;
    reject?: { error: LifelineError; extensions: Record<string, unknown> };
    unrouted?: { error: LifelineError; types: Record<string, number> };
  } {
    const hasOutput = (output: string): boolean => this.context.hasOutput?.(output) ?? true;
    const { routed, unrouted } = routeRecords(canonical, hasOutput);
    if (unrouted.length === 0) return { records: canonical, dropped: 0 };
    const config = partner.config;
    if (config.unrouted === 'accept_and_drop') {
      const perKind = new Map<string, number>();
      for (const record of unrouted) perKind.set(record.kind, (perKind.get(record.kind) ?? 0) + 1);
      for (const [kind, count] of perKind) this.metrics.recordsDropped(config.name, kind, count);
      return { records: routed, dropped: unrouted.length };
    }
    const types = unroutedTypeCounts(deliveryMessageTypes(raw.toString('latin1'), config.format), config.format, unrouted);
    const accepted = acceptedTypes(config, hasOutput);
    const listed = Object.entries(types).map(([type, count]) => (count > 1 ? `${count} × ${type}` : type)).join(', ');
    const detail = `${listed} ${Object.keys(types).length === 1 && unrouted.length === 1 ? 'is' : 'are'} not routed by this topology for partner ${config.name}; it accepts ${accepted.length > 0 ? accepted.join('; ') : 'no message type from this partner'}`;
    const error = new LifelineError('LL_PARTNER_TYPE_UNROUTED', detail, { details: { unrouted_types: types, accepted } });
    if (routed.length === 0 || config.mixed === 'reject') {
      const mixedNote = routed.length > 0 ? ` (the delivery also holds ${routed.length} routed record(s); this partner's mixed policy is reject)` : '';
      return {
        records: [], dropped: 0,
        reject: { error: new LifelineError('LL_PARTNER_TYPE_UNROUTED', `${detail}${mixedNote}`, { details: error.details }), extensions: { unrouted_types: types, accepted } },
      };
    }
    return { records: routed, dropped: 0, unrouted: { error, types } };
  }

  /** Returns true (and answers 429) when the address sent too many unauthenticated requests this minute. */
  private rateLimited(address: string, partner: Partner, now: number, response: ServerResponse): boolean {
    let entry = this.unauthenticated.get(address);
    if (!entry || now - entry.windowStart >= 60_000) {
      this.unauthenticated.delete(address);
      entry = { windowStart: now, count: 0 };
      this.unauthenticated.set(address, entry);
      if (this.unauthenticated.size > MAX_TRACKED_ADDRESSES) this.unauthenticated.delete(this.unauthenticated.keys().next().value as string);
    }
    entry.count++;
    if (entry.count <= this.config.unauthenticated_per_minute) return false;
    this.metrics.deliveryRejected(partner.config.name, 'LL_WEBHOOK_RATE_LIMITED');
    if (entry.count === this.config.unauthenticated_per_minute + 1) {
      this.logger.warn({ partner: partner.config.name, address, limit: this.config.unauthenticated_per_minute }, 'too many unauthenticated webhook requests from one address; answering 429 for the rest of the minute');
    }
    const retryAfter = Math.max(1, Math.ceil((entry.windowStart + 60_000 - now) / 1000));
    answerProblem(response, 429, 'LL_WEBHOOK_RATE_LIMITED', `more than ${this.config.unauthenticated_per_minute} unauthenticated requests from this address in a minute`, { webhook_id: null, quarantined: false }, { 'Retry-After': String(retryAfter) });
    return true;
  }

  private enqueueRejection(rejection: {
    partner: Partner; webhookId: string | undefined; receivedAt: number; response: ServerResponse; headers: Record<string, string>;
    contentType: string | undefined; raw: Buffer; error: unknown; truncated?: boolean; originalSize?: number; bodySha256?: string;
    extensions?: Record<string, unknown>;
  }): void {
    const code = errorCode(rejection.error);
    const message = errorMessage(rejection.error);
    const location = errorLocation(rejection.error);
    const status = REJECTION_STATUS[code] ?? 422;
    const bodySha256 = rejection.bodySha256 ?? createHash('sha256').update(rejection.raw).digest('hex');
    const records = this.quarantineFor({ ...rejection, bodySha256 });
    this.logger.info({ partner: rejection.partner.config.name, webhook_id: rejection.webhookId, code, location, status }, 'webhook delivery rejected; quarantining it');
    this.enqueue({
      partner: rejection.partner.config.name, webhookId: rejection.webhookId, bodySha256, receivedAt: rejection.receivedAt, records, canonical: [],
      outcome: { kind: 'reject', status, code, message, location, ...(rejection.extensions ? { extensions: rejection.extensions } : {}) },
      response: rejection.response, answered: false, timer: undefined,
    });
  }

  private quarantineFor(rejection: {
    partner: Partner; webhookId: string | undefined; receivedAt: number; headers: Record<string, string>;
    contentType: string | undefined; raw: Buffer; error: unknown; truncated?: boolean; originalSize?: number; bodySha256: string;
  }): SourceRecord[] {
    const code = errorCode(rejection.error);
    const message = errorMessage(rejection.error);
    const location = errorLocation(rejection.error);
    const bodySha256 = rejection.bodySha256;
    return quarantineRecords({
      source: this.context.label,
      partner: rejection.partner.config.name,
      channel: 'WEBHOOK',
      reasonCode: code,
      message,
      location,
      receivedAt: rejection.receivedAt,
      contentType: rejection.contentType,
      deliveryId: rejection.webhookId,
      raw: rejection.raw,
      ...(rejection.truncated ? { truncated: true, originalSize: rejection.originalSize ?? 0 } : {}),
      sha256: bodySha256,
      headers: rejection.headers,
    }, headersFor({
      idempotencyKey: `${rejection.webhookId ?? bodySha256}:quarantine`,
      correlationId: rejection.webhookId ?? randomUUID(),
      ingestedAt: new Date(rejection.receivedAt).toISOString(),
      source: this.context.label,
    }));
  }

  private enqueue(delivery: PendingDelivery): void {
    if (this.queue.length >= this.config.max_pending_deliveries) {
      this.answerUnavailable(delivery, 'too many deliveries are waiting for Kafka');
      return;
    }
    delivery.timer = setTimeout(() => {
      const queued = this.queue.indexOf(delivery);
      if (queued !== -1) this.queue.splice(queued, 1);
      this.answerUnavailable(delivery, `not committed to Kafka within ${this.config.response_timeout}`);
    }, this.responseTimeoutMs);
    this.queue.push(delivery);
    this.wake?.();
  }

  async produce(): Promise<SourceBatch | undefined> {
    if (this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 250);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    if (this.queue.length === 0 || this.context.signal.aborted) return undefined;
    if (this.inFlight.size > 0 && this.queue.length < this.config.group_commit_deliveries && this.groupCommitWaitMs > 0) await this.gatherMore();
    // A delivery retried after a shared transaction failed goes alone, so its outcome is its own.
    const take = this.queue[0]?.isolated ? 1 : Math.min(this.config.max_batch_deliveries, this.queue.findIndex((delivery) => delivery.isolated) === -1 ? Infinity : this.queue.findIndex((delivery) => delivery.isolated));
    const deliveries = this.queue.splice(0, take).filter((delivery) => !delivery.answered);
    if (deliveries.length === 0) return undefined;
    const batch: SourceBatch = { records: deliveries.flatMap((delivery) => delivery.records) };
    this.inFlight.set(batch, deliveries);
    return batch;
  }

  /**
   * Group commit: with other transactions committing, a transaction started for the one or two
   * deliveries that just arrived costs the broker and this process as much as a full one (4 lanes,
   * 50 connections: ~8 deliveries a transaction). Waiting up to group_commit_wait for more gave
   * 4,612–5,882 deliveries/s against 3,247–4,068 without, p99 26–30 against 35–58 ms (bench/partner).
   */
  private async gatherMore(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.groupCommitWaitMs);
      this.wake = () => {
        if (this.queue.length < this.config.group_commit_deliveries && !this.context.signal.aborted) return;
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  async acknowledge(batch: SourceBatch, outcome?: SourceBatchOutcome): Promise<void> {
    this.context.setHealth('up');
    const failures = new Map((outcome?.deadLettered ?? []).map((failure) => [failure.index, failure]));
    let first = 0;
    const deliveries = this.inFlight.get(batch) ?? [];
    this.inFlight.delete(batch);
    for (const delivery of deliveries) {
      const seconds = (Date.now() - delivery.receivedAt) / 1000;
      const mine = delivery.records.map((_, offset) => failures.get(first + offset)).filter((failure) => failure !== undefined);
      first += delivery.records.length;
      const tooLarge = mine.find((failure) => failure.code === 'LL_RECORD_TOO_LARGE');
      if (tooLarge) {
        // Not accepted: the partner must send it smaller. The record is kept in the dead-letter topic.
        const limit = Number(tooLarge.details?.limit);
        const size = Number(tooLarge.details?.size);
        this.metrics.deliveryRejected(delivery.partner, tooLarge.code, seconds);
        this.logger.warn({ partner: delivery.partner, webhook_id: delivery.webhookId, size, limit }, 'webhook delivery too large for its topic; dead-lettered, answered 413');
        this.replyProblem(delivery, 413, tooLarge.code, `a record of this delivery is about ${size} bytes; its topic accepts ${limit} bytes at most`, { limit_bytes: limit, size_bytes: size, quarantined: false, dead_lettered: true });
      } else if (delivery.outcome.kind === 'accept') {
        this.remember(delivery);
        this.metrics.deliveryAccepted(delivery.partner, delivery.canonical, seconds);
        this.reply(delivery, 200, {
          status: 'accepted', webhook_id: delivery.webhookId, records: delivery.canonical.length,
          ...(delivery.outcome.unrouted ? { unrouted: delivery.outcome.unrouted, quarantined: true } : {}),
          ...(mine.length > 0 ? { dead_lettered: mine.length } : {}),
        });
      } else {
        const { status, code, message, location, extensions } = delivery.outcome;
        this.metrics.deliveryRejected(delivery.partner, code, seconds);
        this.replyProblem(delivery, status, code, message, { quarantined: true, ...(location ? { location } : {}), ...(extensions ?? {}) });
      }
    }
  }

  async fail(batch: SourceBatch, error: unknown): Promise<void> {
    const deliveries = (this.inFlight.get(batch) ?? []).filter((delivery) => !delivery.answered);
    this.inFlight.delete(batch);
    if (deliveries.length > 1) {
      // One delivery's failure never fails another: each is tried again in a transaction of its own.
      for (const delivery of deliveries) delivery.isolated = true;
      this.queue.unshift(...deliveries);
      this.logger.warn({ deliveries: deliveries.length, code: errorCode(error) }, 'a shared transaction failed; retrying each delivery alone');
      this.wake?.();
      return;
    }
    const [delivery] = deliveries;
    if (!delivery) return;
    if (refusedAsTooLarge(error) && !delivery.retriedTooLarge) {
      // Kafka refused what the limits read at start let through (a topic's limit was lowered): the
      // host has read them again, so one more try dead-letters the record and answers 413 with the limit.
      delivery.retriedTooLarge = true;
      delivery.isolated = true;
      this.queue.unshift(delivery);
      this.wake?.();
      return;
    }
    if (refusedAsTooLarge(error)) {
      this.metrics.deliveryRejected(delivery.partner, 'LL_RECORD_TOO_LARGE', (Date.now() - delivery.receivedAt) / 1000);
      this.replyProblem(delivery, 413, 'LL_RECORD_TOO_LARGE', `this delivery is larger than Kafka accepts for its topic: ${errorMessage(error)}`, { quarantined: false });
      return;
    }
    // Readiness is about Kafka: only a retriable failure (an outage) degrades it.
    if (isRetriable(error)) this.context.setHealth('degraded', `deliveries not committed: ${errorMessage(error)}`);
    this.answerUnavailable(delivery, isRetriable(error) ? 'Kafka or the schema registry did not accept the delivery' : `the delivery could not be committed (${errorCode(error)})`);
  }

  async close(): Promise<void> {
    for (const delivery of this.queue.splice(0)) this.answerUnavailable(delivery, 'the receiver is shutting down');
    const server = this.server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeIdleConnections();
      setTimeout(() => server.closeAllConnections(), 1000).unref();
    });
  }

  private remember(delivery: PendingDelivery): void {
    if (this.config.remember_deliveries === 0 || !delivery.webhookId) return;
    this.accepted.delete(delivery.webhookId);
    this.accepted.set(delivery.webhookId, delivery.bodySha256);
    if (this.accepted.size > this.config.remember_deliveries) this.accepted.delete(this.accepted.keys().next().value as string);
  }

  private answerUnavailable(delivery: PendingDelivery, why: string): void {
    if (delivery.answered) return;
    this.metrics.deliveryRejected(delivery.partner, 'LL_SOURCE_UNAVAILABLE', (Date.now() - delivery.receivedAt) / 1000);
    this.replyProblem(delivery, 503, 'LL_SOURCE_UNAVAILABLE', `${why}; retry later`, { quarantined: false }, { 'Retry-After': String(RETRY_AFTER_SECONDS) });
  }

  private replyProblem(delivery: PendingDelivery, status: number, code: string, detail: string, extensions: Record<string, unknown>, extraHeaders: Record<string, string> = {}): void {
    if (delivery.answered) return;
    delivery.answered = true;
    if (delivery.timer) clearTimeout(delivery.timer);
    answerProblem(delivery.response, status, code, detail, { webhook_id: delivery.webhookId ?? null, ...extensions }, extraHeaders);
  }

  private reply(delivery: PendingDelivery, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
    if (delivery.answered) return;
    delivery.answered = true;
    if (delivery.timer) clearTimeout(delivery.timer);
    answer(delivery.response, status, body, extraHeaders);
  }
}

/** Kafka refused the delivery's records as too large (the error itself, or what a kafkajs wrapper carries). */
function refusedAsTooLarge(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'LL_RECORD_TOO_LARGE'].includes(errorCode(current))) return true;
    current = (current as { originalError?: unknown }).originalError ?? current.cause;
  }
  return false;
}

function answer(response: ServerResponse, status: number, body: unknown, extraHeaders: Record<string, string> = {}): void {
  if (response.headersSent || response.destroyed) return;
  const text = JSON.stringify(body);
  response.writeHead(status, { 'Content-Type': 'application/json', ...extraHeaders, 'Content-Length': Buffer.byteLength(text) });
  response.end(text);
  if (response.getHeader('Connection') === 'close') response.once('finish', () => response.socket?.destroy());
}

/**
 * An RFC 9457 problem: `type` names the stable code (docs/errors.md), `title` says what it means,
 * `detail` this occurrence; `code` and `error` repeat the code for clients that read those.
 */
function answerProblem(response: ServerResponse, status: number, code: string, detail: string, extensions: Record<string, unknown>, extraHeaders: Record<string, string> = {}): void {
  const title = (ERROR_CODES as Readonly<Record<string, { summary: string }>>)[code]?.summary ?? code;
  const location = typeof extensions.location === 'string' ? extensions.location : undefined;
  answer(response, status, {
    type: `urn:lifeline:error:${code}`, title, status, detail, code, ...extensions,
    error: { code, message: detail, ...(location ? { location } : {}) },
  }, { 'Content-Type': 'application/problem+json', ...extraHeaders });
}

/** What is kept of an unauthenticated request: a few descriptive headers, the path and the sender's address. */
function metadataHeaders(headers: Record<string, string>, path: string, address: string): Record<string, string> {
  const kept: Record<string, string> = { 'lifeline.path': path, 'lifeline.source-address': address };
  for (const name of METADATA_HEADERS) if (headers[name] !== undefined) kept[name] = headers[name] as string;
  return kept;
}

function headerValue(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function copyHeaders(request: IncomingMessage): Record<string, string> {
  const copy: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || PRIVATE_HEADERS.has(name)) continue;
    copy[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return copy;
}

/**
 * Reads the body up to `limit` bytes. Past it (or when Content-Length already says so) reading
 * stops without destroying the request, so the 413 can still be written; the connection is then
 * closed, which discards the unread rest.
 */
function readBody(request: IncomingMessage, limit: number): Promise<{ bytes: Buffer; tooLarge: false } | { tooLarge: true; size: number }> {
  const declared = Number(request.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    request.pause();
    return Promise.resolve({ tooLarge: true, size: declared });
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      request.off('data', onData);
      request.off('end', onEnd);
      request.pause();
      resolve({ tooLarge: true, size });
    };
    const onEnd = (): void => resolve({ bytes: Buffer.concat(chunks, size), tooLarge: false });
    request.on('data', onData);
    request.once('end', onEnd);
    request.once('error', reject);
  });
}
