import { createHash } from 'node:crypto';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { RecordHeaders, SourceRecord } from '../src/component/component.ts';
import { LIFELINE_HEADERS } from '../src/component/record-headers.ts';
import { OUTPUT_OF_KIND, type CanonicalRecord, type Channel, type RecordKind } from './formats/canonical.ts';

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
  private readonly dropped: Counter<'source' | 'partner' | 'kind'>;

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
    this.dropped = shared(registry, 'lifeline_partner_records_dropped_total', () => new Counter({
      name: 'lifeline_partner_records_dropped_total', help: 'Canonical records of a kind no output maps, dropped by the partner\'s unrouted: accept_and_drop policy.', labelNames: ['source', 'partner', 'kind'], registers,
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

  /** Records of a delivery dropped by the partner's `unrouted: accept_and_drop` policy. */
  recordsDropped(partner: string, kind: string, count: number): void {
    this.dropped.inc({ source: this.source, partner, kind }, count);
  }

  deliveryAcceptedWithoutRecords(partner: string, seconds: number): void {
    this.accepted.inc({ source: this.source, partner, channel: this.channel });
    this.ingestSeconds.observe({ source: this.source, partner, channel: this.channel, outcome: 'accepted' }, seconds);
  }
}

function shared<M>(registry: Registry, name: string, create: () => M): M {
  return (registry.getSingleMetric(name) as M | undefined) ?? create();
}

/**
 * Routing: which canonical kinds a partner's format can produce, which of them the topology maps,
 * and the per-partner policies for the rest (docs/partners.md).
 */
export const UNROUTED_POLICIES = ['quarantine', 'accept_and_drop'] as const;
export type UnroutedPolicy = (typeof UNROUTED_POLICIES)[number];
export const MIXED_POLICIES = ['accept_routed', 'reject'] as const;
export type MixedPolicy = (typeof MIXED_POLICIES)[number];

/** The partner message types each canonical kind comes from, per format (what a partner would call them). */
export const SOURCE_TYPES_OF_KIND: Readonly<Record<'hl7v2' | 'fhir_r4', Partial<Record<RecordKind, string>>>> = Object.freeze({
  hl7v2: {
    service_charge: 'DFT^P03',
    order: 'ORM^O01, OML^O21',
    order_acknowledgement: 'ORU^R01, ACK, ORR^O02, ORL^O22',
    visit_reference: 'ADT^A*',
  },
  fhir_r4: {
    service_charge: 'ChargeItem, Invoice',
    supply_delivery: 'SupplyDelivery',
    claim: 'Claim, ClaimResponse',
    pharmacy_dispense: 'MedicationDispense',
  },
});

/** The canonical kinds a partner's deliveries can become. */
export function kindsOfPartner(partner: { format: string; csv?: { record_type: string } | undefined }): RecordKind[] {
  if (partner.format === 'csv') return partner.csv ? [partner.csv.record_type as RecordKind] : [];
  const types = SOURCE_TYPES_OF_KIND[partner.format as 'hl7v2' | 'fhir_r4'];
  return types ? (Object.keys(types) as RecordKind[]) : [];
}

/** How a partner names the content of one kind (e.g. `visit_reference` → `HL7 ADT^A*`). */
export function describeKind(format: string, kind: RecordKind): string {
  if (format === 'csv') return `CSV ${kind} rows`;
  const types = SOURCE_TYPES_OF_KIND[format as 'hl7v2' | 'fhir_r4']?.[kind];
  return types ? `${format === 'hl7v2' ? 'HL7' : 'FHIR'} ${types}` : kind;
}

/**
 * The kinds of a partner that no output maps, with a sentence for `topology validate` (warning)
 * and for run-time problems: what arrives, and what the topology accepts instead.
 */
export function unroutedKinds(partner: { format: string; csv?: { record_type: string } | undefined }, hasOutput: (output: string) => boolean): RecordKind[] {
  return kindsOfPartner(partner).filter((kind) => !hasOutput(OUTPUT_OF_KIND[kind]));
}

/** What a partner may send that the topology routes, for problem bodies ("accepted": [...]). */
export function acceptedTypes(partner: { format: string; csv?: { record_type: string } | undefined }, hasOutput: (output: string) => boolean): string[] {
  return kindsOfPartner(partner).filter((kind) => hasOutput(OUTPUT_OF_KIND[kind])).map((kind) => describeKind(partner.format, kind));
}

/** Splits a delivery's records into the ones an output maps and the ones none does. */
export function routeRecords(records: readonly CanonicalRecord[], hasOutput: (output: string) => boolean): { routed: CanonicalRecord[]; unrouted: CanonicalRecord[] } {
  const routed: CanonicalRecord[] = [];
  const unrouted: CanonicalRecord[] = [];
  for (const record of records) (hasOutput(OUTPUT_OF_KIND[record.kind]) ? routed : unrouted).push(record);
  return { routed, unrouted };
}

/**
 * The message types in a delivery, as the partner named them: MSH-9 of each HL7 message
 * (`ADT^A01`), the resourceType of a FHIR resource or of each Bundle entry. Names only, never
 * values; empty when the content does not say.
 */
export function deliveryMessageTypes(text: string, format: string): string[] {
  const types: string[] = [];
  if (format === 'hl7v2') {
    for (const segment of text.split(/\r\n|\r|\n/)) {
      if (!segment.startsWith('MSH') || segment.length < 4) continue;
      const fields = segment.split(segment[3] as string);
      const type = (fields[8] ?? '').split(fields[1]?.[0] ?? '^').slice(0, 2).filter(Boolean).join('^');
      if (type) types.push(type);
    }
  } else if (format === 'fhir_r4') {
    try {
      const json = JSON.parse(text) as { resourceType?: unknown; entry?: Array<{ resource?: { resourceType?: unknown } }> };
      if (json.resourceType === 'Bundle' && Array.isArray(json.entry)) {
        for (const entry of json.entry) if (typeof entry?.resource?.resourceType === 'string') types.push(entry.resource.resourceType);
      } else if (typeof json.resourceType === 'string') types.push(json.resourceType);
    } catch {
      // not JSON: the adapter said so already
    }
  }
  return types;
}

/** The types of the delivery that belong to unrouted kinds, counted: `{ "ADT^A01": 1 }`, `{ Claim: 2 }`. */
export function unroutedTypeCounts(types: readonly string[], format: string, unrouted: readonly CanonicalRecord[]): Record<string, number> {
  const kinds = new Set(unrouted.map((record) => record.kind));
  const counts: Record<string, number> = {};
  const families = format === 'hl7v2' || format === 'fhir_r4' ? SOURCE_TYPES_OF_KIND[format] : {};
  for (const type of types) {
    const kind = [...kinds].find((candidate) => (families[candidate] ?? '').split(', ').some((family) => family === type || (family.endsWith('*') && type.startsWith(family.slice(0, -1))) || type.split('^')[0] === family.split('^')[0]));
    if (kind) counts[type] = (counts[type] ?? 0) + 1;
  }
  if (Object.keys(counts).length === 0) for (const record of unrouted) counts[record.kind] = (counts[record.kind] ?? 0) + 1;
  return counts;
}

/**
 * `topology validate` warnings for a partner-feed source: each partner whose format can produce a
 * kind no output of the source maps (and whose policy does not drop such content on purpose).
 */
export function partnerRoutingWarnings(
  partners: ReadonlyArray<{ name: string; format: string; csv?: { record_type: string } | undefined; unrouted?: string }>,
  outputs: { has(output: string): boolean },
  source: 'webhook_source' | 'file_source',
): Array<{ path: Array<string | number>; message: string }> {
  const warnings: Array<{ path: Array<string | number>; message: string }> = [];
  partners.forEach((partner, index) => {
    if (partner.unrouted === 'accept_and_drop') return;
    const kinds = unroutedKinds(partner, (output) => outputs.has(output));
    if (kinds.length === 0) return;
    const listed = kinds.map((kind) => `${describeKind(partner.format, kind)} (output ${OUTPUT_OF_KIND[kind]})`).join('; ');
    const fate = source === 'webhook_source'
      ? 'such deliveries are answered 422 and quarantined (LL_PARTNER_TYPE_UNROUTED); map the output, or set unrouted: accept_and_drop if the partner sends everything'
      : 'a file holding such records is rejected at run time (moved to failed/, quarantined, LL_PARTNER_TYPE_UNROUTED); map the output';
    warnings.push({ path: ['partners', index, 'format'], message: `partner ${partner.name} can send ${listed}, which no output of this source maps: ${fate}` });
  });
  return warnings;
}
