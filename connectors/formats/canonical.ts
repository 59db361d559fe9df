import { LifelineError, type ErrorCode } from '../../src/errors.ts';

/**
 * The canonical partner records every format adapter produces (HL7 v2, FHIR R4, CSV), mirroring
 * the Avro contracts in schemas/partner/*.avsc field for field. Optional fields are explicit
 * nulls: the Avro encoder wants a branch of the union, not a missing key.
 */

export type SourceFormat = 'HL7V2' | 'FHIR_R4' | 'CSV' | 'X12' | 'OTHER';
export type Channel = 'WEBHOOK' | 'FILE' | 'OTHER';

/** Exact money: minor units of the currency and its ISO 4217 code. */
export interface Money {
  readonly amount_minor: number;
  readonly currency: string;
}

export interface BusinessRefs {
  readonly order_ref: string | null;
  readonly account_ref: string | null;
  readonly visit_ref: string | null;
  readonly facility_ref: string | null;
  readonly invoice_ref: string | null;
}

/** Fields every canonical record starts with (the same in every schemas/partner contract). */
export interface Envelope {
  readonly partner: string;
  readonly source_format: SourceFormat;
  readonly channel: Channel;
  readonly delivery_id: string;
  readonly idempotency_key: string;
  readonly entity_key: string;
  readonly version: string;
  readonly is_correction: boolean;
  readonly correlation_id: string | null;
  readonly refs: BusinessRefs;
  readonly patient_id: string | null;
  readonly patient_id_system: string | null;
  readonly occurred_at: number;
  readonly sent_at: number | null;
  readonly received_at: number;
}

export interface ServiceCharge extends Envelope {
  readonly charge_type: 'CHARGE' | 'CREDIT' | 'PAYMENT' | 'ADJUSTMENT' | 'OTHER';
  readonly status: 'PLANNED' | 'BILLABLE' | 'NOT_BILLABLE' | 'ABORTED' | 'BILLED' | 'ENTERED_IN_ERROR' | 'UNKNOWN';
  readonly scope: 'ITEM' | 'INVOICE_TOTAL';
  readonly service_code: string;
  readonly service_code_system: string | null;
  readonly service_description: string | null;
  readonly quantity: number;
  readonly unit_price: Money | null;
  readonly total: Money | null;
  readonly performer_ref: string | null;
  readonly ordering_provider_ref: string | null;
}

export interface PharmacyDispense extends Envelope {
  readonly pharmacy_id: string;
  readonly rx_number: string;
  readonly fill_number: number;
  readonly product_code: string;
  readonly product_code_system: string | null;
  readonly product_description: string | null;
  readonly quantity: number;
  readonly quantity_unit: string | null;
  readonly days_supply: number | null;
  readonly prescriber_ref: string | null;
  readonly status: 'DISPENSED' | 'REVERSED' | 'UNKNOWN';
  readonly ingredient_cost: Money | null;
  readonly dispensing_fee: Money | null;
  readonly patient_pay: Money | null;
  readonly total: Money | null;
}

export interface SupplyDelivery extends Envelope {
  readonly status: 'IN_PROGRESS' | 'COMPLETED' | 'ABANDONED' | 'ENTERED_IN_ERROR' | 'UNKNOWN';
  readonly item_code: string;
  readonly item_code_system: string | null;
  readonly item_description: string | null;
  readonly quantity: number;
  readonly quantity_unit: string | null;
  readonly supplier_ref: string | null;
  readonly destination_ref: string | null;
  readonly lot_number: string | null;
  readonly expires_on: string | null;
  readonly unit_cost: Money | null;
  readonly total_cost: Money | null;
}

export interface OrderItem {
  readonly line: number;
  readonly service_code: string;
  readonly service_code_system: string | null;
  readonly service_description: string | null;
  readonly quantity: number;
}

export interface PartnerOrder extends Envelope {
  readonly order_control: string;
  readonly status: 'NEW' | 'CHANGED' | 'CANCELLED' | 'DISCONTINUED' | 'ON_HOLD' | 'STATUS_CHANGED' | 'UNKNOWN';
  readonly placer_order_ref: string | null;
  readonly filler_order_ref: string | null;
  readonly priority: string | null;
  readonly ordering_provider_ref: string | null;
  readonly items: readonly OrderItem[];
}

export interface OrderAcknowledgement extends Envelope {
  readonly kind: 'MESSAGE_ACK' | 'RESULT_STATUS' | 'ORDER_STATUS' | 'OTHER';
  readonly acknowledged_ref: string;
  readonly status: 'ACCEPTED' | 'ERROR' | 'REJECTED' | 'IN_PROGRESS' | 'RESULT_PRELIMINARY' | 'RESULT_FINAL' | 'RESULT_CORRECTED' | 'CANCELLED' | 'UNKNOWN';
  readonly status_detail: string | null;
  readonly service_code: string | null;
  readonly result_count: number;
}

export interface ClaimEvent extends Envelope {
  readonly kind: 'CLAIM' | 'CLAIM_RESPONSE' | 'REMITTANCE' | 'OTHER';
  readonly claim_ref: string;
  readonly payer_ref: string | null;
  readonly payer_claim_ref: string | null;
  readonly use: string;
  readonly outcome: 'QUEUED' | 'COMPLETE' | 'ERROR' | 'PARTIAL' | 'UNKNOWN';
  readonly disposition: string | null;
  readonly item_count: number;
  readonly claimed_total: Money | null;
  readonly benefit_total: Money | null;
  readonly paid_amount: Money | null;
  readonly patient_responsibility: Money | null;
  readonly payment_ref: string | null;
  readonly paid_on: string | null;
}

export interface VisitReference extends Envelope {
  readonly event_type: string;
  readonly patient_class: string | null;
  readonly location: string | null;
  readonly attending_provider_ref: string | null;
  readonly admitted_at: number | null;
  readonly discharged_at: number | null;
}

export type CanonicalRecord =
  | { readonly kind: 'service_charge'; readonly value: ServiceCharge }
  | { readonly kind: 'pharmacy_dispense'; readonly value: PharmacyDispense }
  | { readonly kind: 'supply_delivery'; readonly value: SupplyDelivery }
  | { readonly kind: 'order'; readonly value: PartnerOrder }
  | { readonly kind: 'order_acknowledgement'; readonly value: OrderAcknowledgement }
  | { readonly kind: 'claim'; readonly value: ClaimEvent }
  | { readonly kind: 'visit_reference'; readonly value: VisitReference };

export type RecordKind = CanonicalRecord['kind'];

/** The source output (a key of `outputs` in topology.yaml) each kind of record goes to. */
export const OUTPUT_OF_KIND: Readonly<Record<RecordKind, string>> = Object.freeze({
  service_charge: 'service_charges',
  pharmacy_dispense: 'pharmacy_dispenses',
  supply_delivery: 'supply_deliveries',
  order: 'orders',
  order_acknowledgement: 'order_acknowledgements',
  claim: 'claims',
  visit_reference: 'visit_references',
});

/** The outputs a partner-feed source declares: every canonical kind is optional, quarantine is not. */
export const PARTNER_FEED_OUTPUTS: readonly string[] = Object.freeze([
  ...Object.values(OUTPUT_OF_KIND).map((output) => `${output}?`),
  'quarantine',
]);

/** Who sent a delivery and how: what every adapter needs to fill in the envelope. */
export interface DeliveryContext {
  readonly partner: string;
  readonly channel: Channel;
  /** webhook-id, or `<file name>@<sha256 prefix>`. */
  readonly deliveryId: string;
  readonly receivedAt: number;
  /** Currency assumed when the content names none (HL7 FT1 rarely does). */
  readonly defaultCurrency: string;
  /** The character set the content was decoded with (HL7 \X…\ escapes are decoded in it); utf-8 when absent. */
  readonly charset?: 'utf-8' | 'windows-1252' | 'iso-8859-1';
}

export const EMPTY_REFS: BusinessRefs = Object.freeze({ order_ref: null, account_ref: null, visit_ref: null, facility_ref: null, invoice_ref: null });

export type FormatErrorCode = Extract<ErrorCode, `LL_FORMAT_${string}`>;

/**
 * A format error names what was wrong and where, never the value (values may be PHI). `location`
 * is machine-readable: `message 2 FT1-11`, `Bundle.entry[3].resource.status`, `line 12 column 4`.
 */
export function formatError(code: FormatErrorCode, message: string, location?: string, cause?: unknown): LifelineError {
  return new LifelineError(code, location ? `${location}: ${message}` : message, {
    ...(cause === undefined ? {} : { cause }),
    details: location ? { location } : {},
  });
}

/** Where a format error happened, when it was raised by an adapter. */
export function errorLocation(error: unknown): string | undefined {
  if (!(error instanceof LifelineError)) return undefined;
  const location = error.details.location;
  return typeof location === 'string' ? location : undefined;
}

/**
 * An idempotency key scoped to the partner that sent it: `<partner>|<format's natural key>`. Two
 * partners' natural keys may collide (two labs with the same MSH-3/MSH-4 and control ids); the
 * partner name (the source's configured one, not anything in the content) keeps them apart.
 */
export function partnerScopedKey(context: Pick<DeliveryContext, 'partner'>, natural: string): string {
  return `${context.partner}|${natural}`;
}

/** Empty strings and whitespace become null: partners leave optional fields blank. */
export function blankToNull(value: string | undefined | null): string | null {
  if (typeof value !== 'string') return null; // absent — or, from JSON, not text at all
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
}
