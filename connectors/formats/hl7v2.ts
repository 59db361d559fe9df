import { createHash } from 'node:crypto';
import { Hl7Message, type Hl7Segment } from '@medplum/core';
import {
  EMPTY_REFS, blankToNull, formatError, partnerScopedKey, type BusinessRefs, type CanonicalRecord, type DeliveryContext, type Envelope,
  type OrderAcknowledgement, type OrderItem, type PartnerOrder, type ServiceCharge, type VisitReference,
} from './canonical.ts';
import { completeLineMoney, parseHl7Timestamp, parseMoney, parseQuantity } from './field-values.ts';
import { delimitersOf, unescapeHl7, type Hl7Delimiters } from './hl7-text.ts';

/**
 * HL7 v2 → canonical records, on @medplum/core's Hl7Message (segments, fields, components,
 * repetitions, escape characters). Supported: DFT^P03 (one ServiceCharge per FT1), ORM^O01 and
 * OML^O21 (one PartnerOrder per ORC group), ORU^R01 (one OrderAcknowledgement per OBR with the
 * result status), ACK / ORR^O02 / ORL^O22 (the MSA acknowledgement), ADT^A* (VisitReference,
 * reference data only). FHS/BHS batches are split into their messages, and BTS/FTS counts checked.
 *
 * Idempotency key: MSH-3|MSH-4|MSH-10 (MSH-10 is unique only per sending application and
 * facility), plus `#<segment>-<n>` when a message yields several records. A corrected result
 * (OBR-25 or OBX-11 = C) arrives as a new message (new MSH-10) for the same order: it has its own
 * idempotency key, the same entity_key as the result it corrects, a version marker that names the
 * correction, and is_correction = true — so deduplication never mistakes it for a repeat.
 */

const HL7 = 'LL_FORMAT_HL7_INVALID';
const SEGMENT_NAME = /^[A-Z][A-Z0-9]{2}$/;
const BATCH_SEGMENTS = new Set(['FHS', 'BHS', 'BTS', 'FTS']);

export const SUPPORTED_HL7_MESSAGES = 'DFT^P03, ORM^O01, OML^O21, ORU^R01, ACK, ORR^O02, ORL^O22, ADT^A*';

/** One HL7 message cut out of a delivery or a batch file: its segments and where it started. */
export interface Hl7MessageText {
  /** 1-based position of the message in the delivery or file. */
  readonly ordinal: number;
  /** 1-based line (segment) of its MSH in the delivery or file. */
  readonly line: number;
  readonly segments: readonly string[];
}

/**
 * Cuts a stream of segments into messages. Segments end at CR, LF or CRLF (MLLP framing and
 * editors disagree). Batch envelopes (FHS/BHS … BTS/FTS) are checked: a BTS or FTS count that
 * differs from the messages seen, or a batch header without its trailer, means a truncated file.
 */
export class Hl7MessageSplitter {
  private pendingText = '';
  private current: { line: number; segments: string[] } | undefined;
  private line = 0;
  private ordinal = 0;
  private batchMessages = 0;
  private fileBatches = 0;
  private openBatch = false;
  private openFile = false;

  /** Feeds text; returns the messages completed by it. */
  push(text: string): Hl7MessageText[] {
    let input = this.pendingText + text;
    // A trailing CR may be the first half of a CRLF that the next chunk completes.
    const heldCr = input.endsWith('\r') ? '\r' : '';
    if (heldCr) input = input.slice(0, -1);
    const lines = input.split(/\r\n|\r|\n/);
    // The last piece may be a segment cut by the chunk boundary.
    this.pendingText = (lines.pop() ?? '') + heldCr;
    return this.takeLines(lines);
  }

  /** The rest of the input; throws when the input was empty or a batch is not closed. */
  end(): Hl7MessageText[] {
    const rest = this.pendingText.replace(/\r$/, '');
    const done = this.takeLines(rest === '' ? [] : [rest]);
    this.pendingText = '';
    if (this.current) done.push(this.finishMessage());
    if (this.ordinal === 0) throw formatError('LL_FORMAT_EMPTY', 'no HL7 message (no MSH segment) in the content');
    if (this.openBatch) throw formatError(HL7, 'batch has a BHS header but no BTS trailer: the content looks truncated', `line ${this.line}`);
    if (this.openFile) throw formatError(HL7, 'file has an FHS header but no FTS trailer: the content looks truncated', `line ${this.line}`);
    return done;
  }

  private takeLines(lines: readonly string[]): Hl7MessageText[] {
    const done: Hl7MessageText[] = [];
    for (const raw of lines) {
      this.line++;
      const segment = raw.replace(/^\v|\x1c$/g, ''); // MLLP start/end blocks when a capture kept them
      if (segment.trim() === '') continue;
      const name = segment.slice(0, 3);
      if (!SEGMENT_NAME.test(name) || (segment.length > 3 && segment[3] !== '|' && name !== 'MSH')) {
        throw formatError(HL7, `not an HL7 segment (a segment starts with a three-letter name and a field separator)`, `line ${this.line}`);
      }
      if (BATCH_SEGMENTS.has(name)) {
        if (this.current) done.push(this.finishMessage());
        this.batchSegment(name, segment);
        continue;
      }
      if (name === 'MSH') {
        if (this.current) done.push(this.finishMessage());
        this.current = { line: this.line, segments: [segment] };
        continue;
      }
      if (!this.current) throw formatError(HL7, `segment ${name} before any MSH header`, `line ${this.line}`);
      this.current.segments.push(segment);
    }
    return done;
  }

  private batchSegment(name: string, segment: string): void {
    const count = (fieldIndex: number): number | undefined => {
      const value = segment.split('|')[fieldIndex];
      return value && /^\d+$/.test(value.trim()) ? Number(value.trim()) : undefined;
    };
    if (name === 'FHS') this.openFile = true;
    if (name === 'BHS') {
      this.openBatch = true;
      this.batchMessages = 0;
    }
    if (name === 'BTS') {
      const declared = count(1);
      if (declared !== undefined && declared !== this.batchMessages) {
        throw formatError(HL7, `BTS-1 declares ${declared} messages but the batch holds ${this.batchMessages}: the content looks truncated or edited`, `line ${this.line} BTS-1`);
      }
      this.openBatch = false;
      this.fileBatches++;
    }
    if (name === 'FTS') {
      const declared = count(1);
      if (declared !== undefined && declared !== this.fileBatches) {
        throw formatError(HL7, `FTS-1 declares ${declared} batches but the file holds ${this.fileBatches}`, `line ${this.line} FTS-1`);
      }
      this.openFile = false;
    }
  }

  private finishMessage(): Hl7MessageText {
    const current = this.current as { line: number; segments: string[] };
    this.current = undefined;
    this.ordinal++;
    this.batchMessages++;
    return { ordinal: this.ordinal, line: current.line, segments: current.segments };
  }
}

/** Every message of an HL7 delivery (one message or a batch). */
export function splitHl7(text: string): Hl7MessageText[] {
  const splitter = new Hl7MessageSplitter();
  return [...splitter.push(text), ...splitter.end()];
}

/** All canonical records of an HL7 delivery; all or none (the first bad message fails it). */
export function hl7ToCanonical(text: string, context: DeliveryContext): CanonicalRecord[] {
  return splitHl7(text).flatMap((message) => hl7MessageToCanonical(message, context));
}

/** A parsed message with the accessors the mappings use; every error says which message it is. */
class MessageReader {
  readonly message: Hl7Message;
  readonly messageType: string;
  readonly triggerEvent: string;
  readonly controlId: string;
  readonly idempotencyKey: string;
  readonly sentAt: number;
  readonly sentAtText: string;
  readonly delimiters: Hl7Delimiters;
  /** MSH-7's offset (+/-ZZZZ): the sender's zone, for the message's timestamps that carry none. */
  readonly defaultOffset: string | undefined;

  constructor(readonly text: Hl7MessageText, readonly context: DeliveryContext) {
    this.delimiters = delimitersOf(text.segments[0] ?? '');
    try {
      this.message = Hl7Message.parse(text.segments.join('\r'));
    } catch (error) {
      throw formatError(HL7, 'the message does not parse as HL7 v2', this.where('MSH'), error);
    }
    const msh = this.message.header;
    if (this.optional(msh, 12) === null) {
      throw formatError(HL7, 'MSH-12 (version) is empty: the header is incomplete or the message truncated', this.where('MSH-12'));
    }
    this.messageType = this.required(msh, 9, 1);
    this.triggerEvent = this.optional(msh, 9, 2) ?? '';
    this.controlId = this.required(msh, 10, 1);
    const application = msh.getField(3)?.toString() ?? '';
    const facility = msh.getField(4)?.toString() ?? '';
    if (application === '' && facility === '') throw formatError(HL7, 'MSH-3 and MSH-4 are both empty: the sender cannot be identified', this.where('MSH-3'));
    this.idempotencyKey = partnerScopedKey(context, `${application}|${facility}|${this.controlId}`);
    this.sentAtText = this.required(msh, 7, 1);
    this.defaultOffset = /([+-]\d{4})$/.exec(this.sentAtText)?.[1];
    this.sentAt = parseHl7Timestamp(this.sentAtText, this.where('MSH-7'));
  }

  /** `message 2 (line 14) FT1[3]-11`: enough to find the field in the partner's file. */
  where(field: string): string {
    return `message ${this.text.ordinal} (line ${this.text.line}) ${field}`;
  }

  segments(name: string): Hl7Segment[] {
    return this.message.getAllSegments(name);
  }

  segment(name: string): Hl7Segment | undefined {
    return this.message.getSegment(name);
  }

  requiredSegment(name: string): Hl7Segment {
    const found = this.segment(name);
    if (!found) throw formatError(HL7, `${this.messageType}^${this.triggerEvent} requires a ${name} segment`, this.where(name));
    return found;
  }

  /** A component's text, escape sequences decoded (\T\ → &, \X0D\ → CR …); null when blank. */
  optional(segment: Hl7Segment | undefined, field: number, component = 1, subcomponent?: number): string | null {
    if (!segment) return null;
    const raw = blankToNull(segment.getComponent(field, component, subcomponent));
    if (raw === null) return null;
    return blankToNull(unescapeHl7(raw, this.delimiters, this.context.charset ?? 'utf-8', this.where(`${segment.name}-${field}`)));
  }

  required(segment: Hl7Segment, field: number, component = 1, subcomponent?: number, label = `${segment.name}-${field}`): string {
    const value = this.optional(segment, field, component, subcomponent);
    if (value === null) throw formatError(HL7, `${label} is required but empty`, this.where(label));
    return value;
  }

  timestamp(segment: Hl7Segment | undefined, field: number, label: string): number | null {
    const text = this.optional(segment, field, 1);
    return text === null ? null : parseHl7Timestamp(text, this.where(label), this.defaultOffset);
  }

  /** Envelope of one record; `part` distinguishes several records of one message. */
  envelope(options: { part?: string; entityKey: string; version?: string; isCorrection?: boolean; correlationId?: string | null; refs?: Partial<BusinessRefs>; occurredAt?: number | null }): Envelope {
    const pid = this.segment('PID');
    const pv1 = this.segment('PV1');
    const patientId = this.optional(pid, 3, 1);
    return {
      partner: this.context.partner,
      source_format: 'HL7V2',
      channel: this.context.channel,
      delivery_id: this.context.deliveryId,
      idempotency_key: options.part ? `${this.idempotencyKey}#${options.part}` : this.idempotencyKey,
      entity_key: options.entityKey,
      version: options.version ?? `${this.sentAtText}|${this.controlId}`,
      is_correction: options.isCorrection ?? false,
      correlation_id: options.correlationId ?? null,
      refs: {
        ...EMPTY_REFS,
        account_ref: this.optional(pid, 18, 1),
        visit_ref: this.optional(pv1, 19, 1),
        facility_ref: this.optional(pv1, 3, 4) ?? this.optional(this.message.header, 4, 1),
        ...options.refs,
      },
      patient_id: patientId,
      patient_id_system: patientId === null ? null : this.optional(pid, 3, 4),
      occurred_at: options.occurredAt ?? this.sentAt,
      sent_at: this.sentAt,
      received_at: this.context.receivedAt,
    };
  }

  /** An entity key scoped to the partner; identifiers that are PHI (visit numbers) are hashed. */
  entityKey(kind: string, natural: string, isPhi = false): string {
    const value = isPhi ? createHash('sha256').update(natural).digest('hex').slice(0, 32) : natural;
    return `${this.context.partner}|${kind}|${value}`;
  }
}

export function hl7MessageToCanonical(text: Hl7MessageText, context: DeliveryContext): CanonicalRecord[] {
  const reader = new MessageReader(text, context);
  const type = `${reader.messageType}^${reader.triggerEvent}`;
  if (reader.messageType === 'DFT' && (reader.triggerEvent === 'P03' || reader.triggerEvent === 'P11')) return charges(reader);
  if ((reader.messageType === 'ORM' && reader.triggerEvent === 'O01') || (reader.messageType === 'OML' && reader.triggerEvent === 'O21')) return orders(reader);
  if (reader.messageType === 'ORU' && reader.triggerEvent === 'R01') return resultStatuses(reader);
  if (reader.messageType === 'ACK' || type === 'ORR^O02' || type === 'ORL^O22') return [acknowledgement(reader)];
  if (reader.messageType === 'ADT' && reader.triggerEvent.startsWith('A')) return [visitReference(reader)];
  throw formatError('LL_FORMAT_UNSUPPORTED', `${type} is not a supported message type (supported: ${SUPPORTED_HL7_MESSAGES})`, reader.where('MSH-9'));
}

const CHARGE_TYPES: Readonly<Record<string, ServiceCharge['charge_type']>> = { CG: 'CHARGE', CD: 'CREDIT', PY: 'PAYMENT', AJ: 'ADJUSTMENT' };

function charges(reader: MessageReader): CanonicalRecord[] {
  const ft1s = reader.segments('FT1');
  if (ft1s.length === 0) throw formatError(HL7, 'DFT^P03 requires at least one FT1 segment', reader.where('FT1'));
  return ft1s.map((ft1, index) => {
    const label = (field: number): string => `FT1[${index + 1}]-${field}`;
    const transactionId = reader.optional(ft1, 2, 1);
    const currencyOf = (field: number): string => reader.optional(ft1, field, 1, 1) ?? reader.context.defaultCurrency;
    const amount = (field: number): ServiceCharge['total'] => {
      const amount = reader.optional(ft1, field, 1, 0);
      return amount === null ? null : parseMoney(amount, currencyOf(field), HL7, reader.where(label(field)));
    };
    const typeCode = reader.required(ft1, 6, 1, undefined, label(6));
    const chargeType = CHARGE_TYPES[typeCode.toUpperCase()] ?? 'OTHER';
    const quantityText = reader.optional(ft1, 10, 1);
    const quantity = quantityText === null ? 1 : parseQuantity(quantityText, HL7, reader.where(label(10)));
    // FT1-11 is the extended (total) amount, FT1-12 the unit amount; either may be left out.
    const money = completeLineMoney(quantity, amount(12), amount(11));
    const part = `FT1-${index + 1}`;
    const charge: ServiceCharge = {
      ...reader.envelope({
        part,
        entityKey: reader.entityKey('charge', transactionId ?? `${reader.idempotencyKey}#${part}`),
        correlationId: reader.optional(ft1, 23, 1) ?? transactionId,
        refs: { order_ref: reader.optional(ft1, 23, 1), ...(reader.optional(ft1, 13, 1) ? { facility_ref: reader.optional(ft1, 13, 1) } : {}) },
        occurredAt: reader.timestamp(ft1, 4, label(4)) ?? (() => { throw formatError(HL7, `${label(4)} (transaction date) is required but empty`, reader.where(label(4))); })(),
      }),
      charge_type: chargeType,
      status: 'BILLABLE',
      scope: 'ITEM',
      service_code: reader.required(ft1, 7, 1, undefined, label(7)),
      service_code_system: reader.optional(ft1, 7, 3),
      service_description: reader.optional(ft1, 7, 2),
      quantity,
      unit_price: money.unit,
      total: money.total,
      performer_ref: reader.optional(ft1, 20, 1),
      ordering_provider_ref: reader.optional(ft1, 21, 1),
    };
    return { kind: 'service_charge', value: charge };
  });
}

const ORDER_STATUS: Readonly<Record<string, PartnerOrder['status']>> = {
  NW: 'NEW', SN: 'NEW', CA: 'CANCELLED', OC: 'CANCELLED', CR: 'CANCELLED', DC: 'DISCONTINUED', OD: 'DISCONTINUED',
  XO: 'CHANGED', XX: 'CHANGED', HD: 'ON_HOLD', OH: 'ON_HOLD', SC: 'STATUS_CHANGED',
};

/** ORM^O01 / OML^O21: each ORC opens an order; the OBRs after it (until the next ORC) are its items. */
function orders(reader: MessageReader): CanonicalRecord[] {
  const groups: Array<{ orc: Hl7Segment; obrs: Hl7Segment[]; tq1: Hl7Segment | undefined }> = [];
  for (const segment of reader.message.segments) {
    if (segment.name === 'ORC') groups.push({ orc: segment, obrs: [], tq1: undefined });
    else if (segment.name === 'OBR' && groups.length > 0) (groups.at(-1) as (typeof groups)[number]).obrs.push(segment);
    else if (segment.name === 'TQ1' && groups.length > 0) (groups.at(-1) as (typeof groups)[number]).tq1 ??= segment;
    else if (segment.name === 'OBR') throw formatError(HL7, 'OBR before any ORC: an order group starts with ORC', reader.where('OBR'));
  }
  if (groups.length === 0) throw formatError(HL7, `${reader.messageType}^${reader.triggerEvent} requires at least one ORC segment`, reader.where('ORC'));
  return groups.map(({ orc, obrs, tq1 }, index) => {
    const label = (field: number): string => `ORC[${index + 1}]-${field}`;
    const control = reader.required(orc, 1, 1, undefined, label(1)).toUpperCase();
    const firstObr = obrs[0];
    const placer = reader.optional(orc, 2, 1) ?? reader.optional(firstObr, 2, 1);
    const filler = reader.optional(orc, 3, 1) ?? reader.optional(firstObr, 3, 1);
    const orderRef = placer ?? filler;
    if (orderRef === null) throw formatError(HL7, 'an order needs a placer (ORC-2/OBR-2) or filler (ORC-3/OBR-3) order number', reader.where(label(2)));
    const items: OrderItem[] = obrs.map((obr, obrIndex) => ({
      line: Number(reader.optional(obr, 1, 1) ?? obrIndex + 1) || obrIndex + 1,
      service_code: reader.required(obr, 4, 1, undefined, `OBR[${obrIndex + 1}]-4`),
      service_code_system: reader.optional(obr, 4, 3),
      service_description: reader.optional(obr, 4, 2),
      quantity: 1,
    }));
    const order: PartnerOrder = {
      ...reader.envelope({
        ...(groups.length > 1 ? { part: `ORC-${index + 1}` } : {}),
        entityKey: reader.entityKey('order', orderRef),
        correlationId: orderRef,
        refs: { order_ref: orderRef },
        occurredAt: reader.timestamp(orc, 9, label(9)),
      }),
      order_control: control,
      status: ORDER_STATUS[control] ?? 'UNKNOWN',
      placer_order_ref: placer,
      filler_order_ref: filler,
      priority: reader.optional(tq1, 9, 1) ?? reader.optional(orc, 7, 6) ?? reader.optional(firstObr, 5, 1),
      ordering_provider_ref: reader.optional(orc, 12, 1) ?? reader.optional(firstObr, 16, 1),
      items,
    };
    return { kind: 'order', value: order };
  });
}

const RESULT_STATUS: Readonly<Record<string, OrderAcknowledgement['status']>> = {
  F: 'RESULT_FINAL', C: 'RESULT_CORRECTED', P: 'RESULT_PRELIMINARY', X: 'CANCELLED', I: 'IN_PROGRESS', S: 'IN_PROGRESS', R: 'RESULT_PRELIMINARY', A: 'RESULT_PRELIMINARY',
};

/** ORU^R01, for status only: per OBR, the order it answers and whether the result is final, corrected, … */
function resultStatuses(reader: MessageReader): CanonicalRecord[] {
  const groups: Array<{ obr: Hl7Segment; obxs: Hl7Segment[]; orc: Hl7Segment | undefined }> = [];
  let lastOrc: Hl7Segment | undefined;
  for (const segment of reader.message.segments) {
    if (segment.name === 'ORC') lastOrc = segment;
    else if (segment.name === 'OBR') groups.push({ obr: segment, obxs: [], orc: lastOrc });
    else if (segment.name === 'OBX' && groups.length > 0) (groups.at(-1) as (typeof groups)[number]).obxs.push(segment);
  }
  if (groups.length === 0) throw formatError(HL7, 'ORU^R01 requires at least one OBR segment', reader.where('OBR'));
  return groups.map(({ obr, obxs, orc }, index) => {
    const label = `OBR[${index + 1}]`;
    const orderRef = reader.optional(obr, 3, 1) ?? reader.optional(obr, 2, 1) ?? reader.optional(orc, 3, 1) ?? reader.optional(orc, 2, 1);
    const observationStatuses = obxs.map((obx) => (reader.optional(obx, 11, 1) ?? '').toUpperCase());
    const resultStatus = (reader.optional(obr, 25, 1) ?? '').toUpperCase();
    const corrected = resultStatus === 'C' || observationStatuses.includes('C');
    const status: OrderAcknowledgement['status'] = corrected ? 'RESULT_CORRECTED'
      : RESULT_STATUS[resultStatus] ?? (observationStatuses.length > 0 && observationStatuses.every((code) => code === 'F') ? 'RESULT_FINAL'
        : observationStatuses.includes('P') ? 'RESULT_PRELIMINARY' : 'UNKNOWN');
    const serviceCode = reader.optional(obr, 4, 1);
    const acknowledgedRef = orderRef ?? `${reader.idempotencyKey}#OBR-${index + 1}`;
    const value: OrderAcknowledgement = {
      ...reader.envelope({
        ...(groups.length > 1 ? { part: `OBR-${index + 1}` } : {}),
        // The result of one service on one order: a correction later updates this same entity.
        entityKey: reader.entityKey('result', `${acknowledgedRef}|${serviceCode ?? index + 1}`),
        version: `${reader.sentAtText}|${status}|${reader.controlId}`,
        isCorrection: corrected,
        correlationId: orderRef,
        refs: { order_ref: orderRef },
        occurredAt: reader.timestamp(obr, 22, `${label}-22`) ?? reader.timestamp(obr, 7, `${label}-7`),
      }),
      kind: 'RESULT_STATUS',
      acknowledged_ref: acknowledgedRef,
      status,
      status_detail: null,
      service_code: serviceCode,
      result_count: obxs.length,
    };
    return { kind: 'order_acknowledgement', value };
  });
}

const ACK_STATUS: Readonly<Record<string, OrderAcknowledgement['status']>> = {
  AA: 'ACCEPTED', CA: 'ACCEPTED', AE: 'ERROR', CE: 'ERROR', AR: 'REJECTED', CR: 'REJECTED',
};

function acknowledgement(reader: MessageReader): CanonicalRecord {
  const msa = reader.requiredSegment('MSA');
  const code = reader.required(msa, 1).toUpperCase();
  const acknowledged = reader.required(msa, 2);
  const err = reader.segment('ERR');
  const value: OrderAcknowledgement = {
    ...reader.envelope({ entityKey: reader.entityKey('ack', acknowledged), correlationId: acknowledged }),
    kind: 'MESSAGE_ACK',
    acknowledged_ref: acknowledged,
    status: ACK_STATUS[code] ?? 'UNKNOWN',
    status_detail: reader.optional(msa, 3) ?? reader.optional(err, 8) ?? reader.optional(err, 3, 2),
    service_code: null,
    result_count: 0,
  };
  return { kind: 'order_acknowledgement', value };
}

function visitReference(reader: MessageReader): CanonicalRecord {
  const pid = reader.requiredSegment('PID');
  const pv1 = reader.segment('PV1');
  const evn = reader.segment('EVN');
  const visit = reader.optional(pv1, 19);
  const account = reader.optional(pid, 18);
  const patient = reader.required(pid, 3, 1, undefined, 'PID-3');
  // Reference data is keyed by the visit (or account, or patient): PHI, so hashed in the key.
  const natural = visit !== null ? `visit:${visit}` : account !== null ? `account:${account}` : `patient:${patient}`;
  const value: VisitReference = {
    ...reader.envelope({
      entityKey: reader.entityKey('visit', natural, true),
      occurredAt: reader.timestamp(evn, 2, 'EVN-2') ?? reader.timestamp(evn, 6, 'EVN-6'),
    }),
    event_type: reader.triggerEvent,
    patient_class: reader.optional(pv1, 2),
    location: blankToNull(pv1?.getField(3)?.toString()),
    attending_provider_ref: reader.optional(pv1, 7),
    admitted_at: reader.timestamp(pv1, 44, 'PV1-44'),
    discharged_at: reader.timestamp(pv1, 45, 'PV1-45'),
  };
  return { kind: 'visit_reference', value };
}
