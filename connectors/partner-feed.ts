import { createHash } from 'node:crypto';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RecordHeaders, SourceRecord } from '../src/component/component.ts';
import { LIFELINE_HEADERS } from '../src/component/record-headers.ts';
import { OUTPUT_OF_KIND, type CanonicalRecord, type Channel } from './formats/canonical.ts';

/**
 * What the webhook and file sources share: canonical records as source records (key, output,
 * headers), the quarantine record for what was not accepted, and the partner-feed metrics.
 */

export const QUARANTINE_OUTPUT = 'quarantine';

/**
 * Kafka's default max.message.bytes is ~1 MB: raw content is split into parts of this size, each
 * a quarantine record of its own (part/parts), so a large bad delivery still fits.
 */
export const QUARANTINE_PART_BYTES = 512 * 1024;

export interface RecordHeaderValues {
  /** lifeline.idempotency-key: the webhook-id for webhooks, the record's natural key for files. */
  readonly idempotencyKey: string;
  readonly correlationId: string;
  readonly traceparent?: string;
  readonly ingestedAt: string;
  readonly source: string;
}

export function headersFor(values: RecordHeaderValues): RecordHeaders {
  return {
    [LIFELINE_HEADERS.idempotencyKey]: values.idempotencyKey,
    [LIFELINE_HEADERS.correlationId]: values.correlationId,
    [LIFELINE_HEADERS.source]: values.source,
    [LIFELINE_HEADERS.ingestedAt]: values.ingestedAt,
    ...(values.traceparent ? { [LIFELINE_HEADERS.traceparent]: values.traceparent } : {}),
  };
}

/** A canonical record as the source hands it to the host: keyed by its entity, so updates stay in order. */
export function canonicalSourceRecord(record: CanonicalRecord, headers: RecordHeaders): SourceRecord {
  return { output: OUTPUT_OF_KIND[record.kind], key: record.value.entity_key, value: record.value, headers };
}

export interface QuarantineFacts {
  readonly source: string;
  readonly partner: string;
  readonly channel: Channel;
  /** An LL_* code (docs/errors.md). */
  readonly reasonCode: string;
  readonly message: string;
  readonly location?: string | undefined;
  readonly receivedAt: number;
  readonly contentType?: string | undefined;
  readonly deliveryId?: string | undefined;
  /** The raw content kept (possibly shortened: see `truncated`). */
  readonly raw: Buffer;
  /** Size of the whole original content, when more than `raw`. */
  readonly originalSize?: number;
  readonly sha256?: string;
  readonly truncated?: boolean;
  readonly headers: Readonly<Record<string, string>>;
}

/** The quarantine record(s) for rejected content: the raw bytes in parts, with the reason on each. */
export function quarantineRecords(facts: QuarantineFacts, recordHeaders: RecordHeaders): SourceRecord[] {
  const parts = Math.max(1, Math.ceil(facts.raw.length / QUARANTINE_PART_BYTES));
  const sha256 = facts.sha256 ?? createHash('sha256').update(facts.raw).digest('hex');
  const key = `${facts.partner}|${facts.deliveryId ?? sha256}`;
  const records: SourceRecord[] = [];
  for (let part = 0; part < parts; part++) {
    records.push({
      output: QUARANTINE_OUTPUT,
      key,
      headers: recordHeaders,
      value: {
        source: facts.source,
        partner: facts.partner,
        channel: facts.channel.toLowerCase(),
        reason_code: facts.reasonCode,
        message: facts.message,
        location: facts.location ?? null,
        received_at: facts.receivedAt,
        content_type: facts.contentType ?? null,
        delivery_id: facts.deliveryId ?? null,
        sha256,
        size_bytes: facts.originalSize ?? facts.raw.length,
        part: part + 1,
        parts,
        truncated: facts.truncated ?? false,
        raw: facts.raw.subarray(part * QUARANTINE_PART_BYTES, (part + 1) * QUARANTINE_PART_BYTES),
        headers: { ...facts.headers },
      },
    });
  }
  return records;
}

/** Seconds from a delivery's arrival to its durable acceptance (or rejection). */
const INGEST_SECONDS_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/**
 * received / accepted / rejected per partner (and reason), records per kind, and ingest latency.
 * Labels are the source label, partner id, channel, an error code and a record kind: never content.
 * Both sources may run in one process: the metrics are registered once and shared.
 */
export class PartnerFeedMetrics {
  private readonly received: Counter<'source' | 'partner' | 'channel'>;
  private readonly accepted: Counter<'source' | 'partner' | 'channel'>;
  private readonly rejected: Counter<'source' | 'partner' | 'channel' | 'reason'>;
  private readonly records: Counter<'source' | 'partner' | 'kind'>;
  private readonly ingestSeconds: Histogram<'source' | 'partner' | 'channel' | 'outcome'>;

  constructor(registry: Registry, private readonly source: string, private readonly channel: 'webhook' | 'file') {
    const registers = [registry];
    this.received = shared(registry, 'lifeline_partner_deliveries_received_total', () => new Counter({
      name: 'lifeline_partner_deliveries_received_total', help: 'Partner deliveries (webhook requests, files) received.', labelNames: ['source', 'partner', 'channel'], registers,
    }));
    this.accepted = shared(registry, 'lifeline_partner_deliveries_accepted_total', () => new Counter({
      name: 'lifeline_partner_deliveries_accepted_total', help: 'Partner deliveries committed to Kafka and acknowledged (2xx, archived).', labelNames: ['source', 'partner', 'channel'], registers,
    }));
    this.rejected = shared(registry, 'lifeline_partner_deliveries_rejected_total', () => new Counter({
      name: 'lifeline_partner_deliveries_rejected_total', help: 'Partner deliveries rejected (4xx, failed/), by reason code; their content is quarantined.', labelNames: ['source', 'partner', 'channel', 'reason'], registers,
    }));
    this.records = shared(registry, 'lifeline_partner_records_total', () => new Counter({
      name: 'lifeline_partner_records_total', help: 'Canonical records produced from partner deliveries, by kind.', labelNames: ['source', 'partner', 'kind'], registers,
    }));
    this.ingestSeconds = shared(registry, 'lifeline_partner_ingest_seconds', () => new Histogram({
      name: 'lifeline_partner_ingest_seconds', help: 'From receiving a delivery to answering it (accepted: committed in Kafka; rejected: quarantined).',
      labelNames: ['source', 'partner', 'channel', 'outcome'], buckets: INGEST_SECONDS_BUCKETS, registers,
    }));
  }

  deliveryReceived(partner: string): void {
    this.received.inc({ source: this.source, partner, channel: this.channel });
  }

  deliveryAccepted(partner: string, records: readonly CanonicalRecord[], seconds: number): void {
    this.accepted.inc({ source: this.source, partner, channel: this.channel });
    const perKind = new Map<string, number>();
    for (const record of records) perKind.set(record.kind, (perKind.get(record.kind) ?? 0) + 1);
    for (const [kind, count] of perKind) this.records.inc({ source: this.source, partner, kind }, count);
    this.ingestSeconds.observe({ source: this.source, partner, channel: this.channel, outcome: 'accepted' }, seconds);
  }

  /** Counts records of a delivery accepted in several transactions (a large file), as they commit. */
  recordsAccepted(partner: string, kind: string, count: number): void {
    this.records.inc({ source: this.source, partner, kind }, count);
  }

  deliveryRejected(partner: string, reason: string, seconds?: number): void {
    this.rejected.inc({ source: this.source, partner, channel: this.channel, reason });
    if (seconds !== undefined) this.ingestSeconds.observe({ source: this.source, partner, channel: this.channel, outcome: 'rejected' }, seconds);
  }

  deliveryAcceptedWithoutRecords(partner: string, seconds: number): void {
    this.accepted.inc({ source: this.source, partner, channel: this.channel });
    this.ingestSeconds.observe({ source: this.source, partner, channel: this.channel, outcome: 'accepted' }, seconds);
  }
}

function shared<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}
