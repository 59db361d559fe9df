import { randomBytes } from 'node:crypto';

/**
 * Believable partner traffic for the golden path (topology.yaml), planned up front so that a test
 * knows exactly what Odoo must end up holding:
 * - lab charges: HL7 v2 DFT^P03 messages (one FT1 each) from Quest and Labcorp, POSTed as webhooks;
 * - supply deliveries: FHIR R4 SupplyDelivery resources from McKesson and Medline, as webhooks;
 * - pharmacy dispenses: NCPDP-style CSV files dropped by CVS Specialty and Walgreens.
 * Duplicates are the ones partners really make: a webhook retried with the same webhook-id (the
 * answer got lost), a message re-sent under a new webhook-id (same HL7 control id / FHIR version),
 * a file that repeats rows of the one before, and a file dropped twice. Corrections are amended lab
 * charges: the same FT1 transaction id with a new price under a new control id, sent at the end.
 *
 * Counting: `events` partner events = unique + duplicates (+ corrections, which are unique events
 * that update a record); `duplicateRatio` of them are duplicates.
 */

export interface TrafficOptions {
  /** Partner events in all (charges, deliveries and dispense rows, duplicates included, corrections excluded). */
  readonly events: number;
  /** Share of `events` that repeat an earlier one (0 ≤ ratio < 1). */
  readonly duplicateRatio: number;
  /** Amended lab charges sent after everything else (default 0). */
  readonly corrections?: number;
  /** New dispense rows per CSV file (default 100, fewer for small runs so that there are at least 5 files). */
  readonly rowsPerFile?: number;
  /** Seeds the random choices: the same seed and run id plan the same traffic. */
  readonly seed?: number;
  /** Goes into every business id, so repeated runs create new records (default: random). */
  readonly runId?: string;
  /** Epoch ms the business dates are based on (default: now). */
  readonly now?: number;
}

export type LabPartner = 'quest_lab' | 'labcorp';
export type SupplierPartner = 'mckesson' | 'medline';
export type PharmacyPartner = 'cvs_specialty' | 'walgreens';

export interface WebhookDelivery {
  readonly kind: 'webhook';
  readonly partner: LabPartner | SupplierPartner;
  readonly contentType: string;
  readonly body: string;
  readonly webhookId: string;
  /** What the delivery carries: a first delivery, a copy of an earlier one, or an amendment. */
  readonly role: 'original' | 'retry' | 'resend' | 'correction';
  /** Entity key of the record the delivery is about (as the adapters derive it). */
  readonly entityKey: string;
  /** Wait for every earlier delivery to be answered before sending this one. */
  readonly barrier?: boolean;
}

export interface FileDelivery {
  readonly kind: 'file';
  readonly partner: PharmacyPartner;
  readonly fileName: string;
  readonly body: string;
  readonly newRows: number;
  readonly repeatedRows: number;
  /** Byte-for-byte the same content as an earlier file (the source refuses it by its sha256). */
  readonly droppedTwice: boolean;
  readonly barrier?: boolean;
}

export type Delivery = WebhookDelivery | FileDelivery;

export interface ExpectedCharge {
  readonly entityKey: string;
  readonly partner: LabPartner;
  readonly labRef: string;
  readonly productCode: string;
  readonly description: string;
  readonly quantity: number;
  /** The latest price (corrections included), in cents. */
  readonly unitPriceMinor: number;
  readonly corrected: boolean;
}

export interface ExpectedDispense {
  readonly entityKey: string;
  readonly partner: PharmacyPartner;
  readonly pharmacyRef: string;
  readonly productCode: string;
  readonly totalMinor: number;
}

export interface ExpectedDelivery {
  readonly entityKey: string;
  readonly partner: SupplierPartner;
  readonly supplierRef: string;
  readonly productCode: string;
  readonly quantity: number;
  readonly orderRef: string;
}

export interface TrafficPlan {
  readonly runId: string;
  readonly deliveries: readonly Delivery[];
  readonly expected: {
    readonly charges: ReadonlyMap<string, ExpectedCharge>;
    readonly dispenses: ReadonlyMap<string, ExpectedDispense>;
    readonly deliveries: ReadonlyMap<string, ExpectedDelivery>;
  };
  /** Partner events planned: `unique + duplicates` = options.events; corrections on top. */
  readonly counts: { readonly events: number; readonly unique: number; readonly duplicates: number; readonly corrections: number };
}

/** Odoo `ref` of each partner (seeded in the simulator; a real Odoo needs the same refs). */
export const PARTNER_REFS: Readonly<Record<LabPartner | SupplierPartner | PharmacyPartner, string>> = {
  quest_lab: 'LAB-QUEST-WD', labcorp: 'LAB-LABCORP-BUR', mckesson: 'SUP-MCKESSON', medline: 'SUP-MEDLINE', cvs_specialty: 'RX-CVS-SP', walgreens: 'RX-WAG-04512',
};

const LAB_SERVICES = [
  { cpt: '80053', description: 'Comprehensive metabolic panel', cents: 1180 },
  { cpt: '85025', description: 'CBC with automated differential', cents: 790 },
  { cpt: '83036', description: 'Hemoglobin A1c', cents: 1020 },
  { cpt: '80061', description: 'Lipid panel', cents: 1460 },
  { cpt: '87635', description: 'SARS-CoV-2 amplified probe', cents: 4100 },
  { cpt: '36415', description: 'Venipuncture', cents: 250 },
] as const;

const SUPPLY_ITEMS = [
  { code: 'SUP-GLV-NIT-M', description: 'Nitrile exam gloves, medium (box of 100)', unit: 'box' },
  { code: 'SUP-SST-5ML', description: 'Vacutainer SST tubes 5 mL (100)', unit: 'pack' },
  { code: 'SUP-GAUZE-4X4', description: 'Sterile gauze sponges 4x4 (200)', unit: 'pack' },
  { code: 'SUP-SHARPS-2G', description: 'Sharps container 2 gal', unit: 'each' },
  { code: 'SUP-SYR-INS-05', description: 'Insulin syringes 0.5 mL 31G (100)', unit: 'box' },
  { code: 'SUP-ALC-PREP', description: 'Alcohol prep pads (200)', unit: 'box' },
] as const;

const DRUGS = [
  { ndc: '00093-5057-98', name: 'Atorvastatin calcium 20 mg tablet', cents: 1860 },
  { ndc: '00093-1048-18', name: 'Metformin HCl 500 mg tablet', cents: 1240 },
  { ndc: '68180-0513-09', name: 'Lisinopril 10 mg tablet', cents: 980 },
  { ndc: '00088-5020-05', name: 'Insulin glargine 100 units/mL pen', cents: 41250 },
  { ndc: '00173-0682-20', name: 'Albuterol sulfate HFA 90 mcg inhaler', cents: 6230 },
  { ndc: '65862-0017-30', name: 'Amoxicillin 500 mg capsule', cents: 1120 },
] as const;

const FAMILY_NAMES = ['NGUYEN', 'GARCIA', 'SMITH', 'OKAFOR', 'KOWALSKI', 'PATEL', 'JOHNSON', 'MULLER', 'HASSAN', 'BROWN'];
const GIVEN_NAMES = ['MARIA', 'JAMES', 'AISHA', 'WEI', 'ELENA', 'DAVID', 'FATIMA', 'JOHN', 'SOFIA', 'RAVI'];

export const DISPENSE_CSV_HEADER = 'pharmacy_ref,rx_number,fill_no,fill_date,ndc,drug_name,qty,unit,days_supply,member_id,status,ingredient_cost,dispensing_fee,copay,total_billed';

/** A small seeded PRNG (mulberry32): the same seed gives the same plan. */
function randomSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const cents = (value: number): string => (value / 100).toFixed(2);
const hl7Time = (epochMs: number): string => new Date(epochMs).toISOString().replace(/[-:T]/g, '').slice(0, 14);
const isoDate = (epochMs: number): string => new Date(epochMs).toISOString().slice(0, 10);

/** Splits `total` into parts proportional to `weights`, summing exactly to `total`. */
function apportion(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const parts = weights.map((weight) => Math.floor((total * weight) / sum));
  for (let index = 0; parts.reduce((a, b) => a + b, 0) < total; index++) (parts[index % parts.length] as number)++;
  return parts;
}

export function planTraffic(options: TrafficOptions): TrafficPlan {
  if (!(options.duplicateRatio >= 0 && options.duplicateRatio < 1)) throw new RangeError('duplicateRatio must be at least 0 and below 1');
  if (!Number.isInteger(options.events) || options.events < 4) throw new RangeError('events must be an integer of at least 4');
  const random = randomSource(options.seed ?? 20261129);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const runId = options.runId ?? randomBytes(3).toString('hex').toUpperCase();
  const now = options.now ?? Date.now();
  const duplicates = Math.round(options.events * options.duplicateRatio);
  const unique = options.events - duplicates;
  const [uniqueCharges, uniqueDeliveries, uniqueDispenses] = apportion(unique, [2, 1, 1]) as [number, number, number];
  const [dupCharges, dupDeliveries, dupDispenses] = apportion(duplicates, [2, 1, 1]) as [number, number, number];

  const charges = new Map<string, ExpectedCharge>();
  const supplies = new Map<string, ExpectedDelivery>();
  const dispenses = new Map<string, ExpectedDispense>();
  let controlSeq = 0;

  const chargeMessage = (charge: ExpectedCharge, serial: number, controlId: string, sentAt: number): string => {
    const service = LAB_SERVICES.find((item) => item.cpt === charge.productCode) as (typeof LAB_SERVICES)[number];
    const mrn = `MRN${String(100000 + (serial % 90000))}`;
    const ft1 = ['FT1', '1', charge.entityKey.split('|')[2], '', isoDate(now).replace(/-/g, ''), isoDate(now).replace(/-/g, ''), 'CG',
      `${service.cpt}^${service.description}^CPT`, '', '', String(charge.quantity), cents(charge.unitPriceMinor * charge.quantity), cents(charge.unitPriceMinor),
      'LAB', '', '', '', '', '', '', `${charge.labRef}^${charge.partner === 'quest_lab' ? 'Quest Diagnostics' : 'Labcorp'}`, '', '', `ORD-${runId}-${serial}`];
    return [
      `MSH|^~\\&|LIS|${charge.partner.toUpperCase()}|LIFELINE|STMARYS|${hl7Time(sentAt)}||DFT^P03|${controlId}|P|2.5`,
      `EVN|P03|${hl7Time(sentAt)}`,
      `PID|1||${mrn}^^^STMARYS^MR||${pick(FAMILY_NAMES)}^${pick(GIVEN_NAMES)}||19${50 + (serial % 50)}0${1 + (serial % 9)}15|${serial % 2 ? 'F' : 'M'}`,
      'PV1|1|O|LAB^^^STMARYS',
      ft1.join('|'),
    ].join('\r') + '\r';
  };

  const deliveryResource = (delivery: ExpectedDelivery, serial: number, version: number): string => {
    const item = SUPPLY_ITEMS.find((candidate) => candidate.code === delivery.productCode) as (typeof SUPPLY_ITEMS)[number];
    return JSON.stringify({
      resourceType: 'SupplyDelivery',
      id: `asn-${runId}-${serial}`.toLowerCase(),
      meta: { versionId: String(version) },
      identifier: [{ system: `urn:${delivery.partner}:asn`, value: delivery.entityKey.split('|').at(-1) }],
      basedOn: [{ identifier: { system: 'urn:stmarys:po', value: delivery.orderRef } }],
      status: 'completed',
      suppliedItem: {
        quantity: { value: delivery.quantity, unit: item.unit },
        itemCodeableConcept: { coding: [{ system: 'urn:stmarys:item', code: item.code, display: item.description }] },
      },
      occurrenceDateTime: new Date(now - (serial % 600) * 1000).toISOString(),
      supplier: { identifier: { system: 'urn:stmarys:vendor', value: delivery.supplierRef }, display: delivery.partner === 'mckesson' ? 'McKesson Medical-Surgical' : 'Medline Industries' },
      destination: { display: 'Central Supply, Springfield' },
    });
  };

  // Webhook originals, then copies placed later in the stream.
  const webhooks: WebhookDelivery[] = [];
  for (let index = 0; index < uniqueCharges; index++) {
    const partner: LabPartner = index % 2 === 0 ? 'quest_lab' : 'labcorp';
    const service = pick(LAB_SERVICES);
    const transactionId = `TX-${runId}-${index}`;
    const charge: ExpectedCharge = {
      entityKey: `${partner}|charge|${transactionId}`, partner, labRef: PARTNER_REFS[partner], productCode: service.cpt, description: service.description,
      quantity: random() < 0.9 ? 1 : 2, unitPriceMinor: service.cents + Math.floor(random() * 40), corrected: false,
    };
    charges.set(charge.entityKey, charge);
    const controlId = `${runId}${String(++controlSeq).padStart(7, '0')}`;
    webhooks.push({
      kind: 'webhook', partner, contentType: 'x-application/hl7-v2+er7', body: chargeMessage(charge, index, controlId, now),
      webhookId: `msg_${runId}_${controlSeq}`, role: 'original', entityKey: charge.entityKey,
    });
  }
  for (let index = 0; index < uniqueDeliveries; index++) {
    const partner: SupplierPartner = index % 2 === 0 ? 'mckesson' : 'medline';
    const item = pick(SUPPLY_ITEMS);
    const asn = `ASN-${runId}-${index}`;
    const delivery: ExpectedDelivery = {
      entityKey: `${partner}|SupplyDelivery|urn:${partner}:asn|${asn}`, partner, supplierRef: PARTNER_REFS[partner], productCode: item.code,
      quantity: 1 + Math.floor(random() * 24), orderRef: `PO-${runId}-${Math.floor(index / 4)}`,
    };
    supplies.set(delivery.entityKey, delivery);
    webhooks.push({
      kind: 'webhook', partner, contentType: 'application/fhir+json', body: deliveryResource(delivery, index, 1),
      webhookId: `msg_${runId}_${++controlSeq}`, role: 'original', entityKey: delivery.entityKey,
    });
  }
  // Interleave charges and deliveries as they would arrive, then add the copies after their originals.
  const stream: WebhookDelivery[] = [];
  const chargeOriginals = webhooks.filter((item) => item.partner === 'quest_lab' || item.partner === 'labcorp');
  const deliveryOriginals = webhooks.filter((item) => item.partner === 'mckesson' || item.partner === 'medline');
  for (let c = 0, d = 0; c < chargeOriginals.length || d < deliveryOriginals.length;) {
    const takeCharge = d >= deliveryOriginals.length || (c < chargeOriginals.length && random() < chargeOriginals.length / webhooks.length);
    stream.push((takeCharge ? chargeOriginals[c++] : deliveryOriginals[d++]) as WebhookDelivery);
  }
  const addCopies = (originals: readonly WebhookDelivery[], count: number): void => {
    for (let copy = 0; copy < count; copy++) {
      const original = originals[Math.floor(random() * originals.length)] as WebhookDelivery;
      const at = stream.indexOf(original);
      const position = Math.min(stream.length, at + 1 + Math.floor(random() * 50));
      // A quarter are retries of the same delivery (same webhook-id), the rest re-sends under a new one.
      const retry = random() < 0.25;
      stream.splice(position, 0, { ...original, role: retry ? 'retry' : 'resend', webhookId: retry ? original.webhookId : `msg_${runId}_${++controlSeq}` });
    }
  };
  addCopies(chargeOriginals, dupCharges);
  addCopies(deliveryOriginals, dupDeliveries);

  // Pharmacy files: new rows, plus rows repeated from the file before; one whole file dropped twice when there are enough copies.
  const rowsPerFile = options.rowsPerFile ?? Math.max(2, Math.min(100, Math.ceil(uniqueDispenses / 5)));
  const files: FileDelivery[] = [];
  const rowsOf = new Map<PharmacyPartner, string[]>([['cvs_specialty', []], ['walgreens', []]]);
  let dispenseSerial = 0;
  const newDispenseRow = (partner: PharmacyPartner): string => {
    const drug = pick(DRUGS);
    const serial = dispenseSerial++;
    const rx = `${partner === 'cvs_specialty' ? 'C' : 'W'}${runId}${String(serial).padStart(6, '0')}`;
    const fee = 150 + Math.floor(random() * 100);
    const copay = [0, 500, 1000, 2500][serial % 4] as number;
    const total = drug.cents + fee;
    const dispense: ExpectedDispense = { entityKey: `${partner}|pharmacy_dispense|${PARTNER_REFS[partner]}|${rx}|0`, partner, pharmacyRef: PARTNER_REFS[partner], productCode: drug.ndc, totalMinor: total };
    dispenses.set(dispense.entityKey, dispense);
    return [PARTNER_REFS[partner], rx, '0', isoDate(now), drug.ndc, `"${drug.name}"`, String([30, 60, 90][serial % 3]), 'EA', String([30, 30, 90][serial % 3]),
      `M${String(7_000_000 + serial)}`, 'DISPENSED', cents(drug.cents), cents(fee), cents(copay), cents(total)].join(',');
  };
  const fileCount = Math.max(1, Math.ceil(uniqueDispenses / rowsPerFile));
  const newRowsPerFile = apportion(uniqueDispenses, Array.from({ length: fileCount }, () => 1));
  const wholeFileCopy = dupDispenses >= rowsPerFile && fileCount >= 2 ? (newRowsPerFile[0] as number) : 0;
  const repeatedPerFile = apportion(dupDispenses - wholeFileCopy, Array.from({ length: Math.max(1, fileCount - 1) }, () => 1));
  for (let file = 0; file < fileCount; file++) {
    const partner: PharmacyPartner = file % 2 === 0 ? 'cvs_specialty' : 'walgreens';
    const fresh = Array.from({ length: newRowsPerFile[file] as number }, () => newDispenseRow(partner));
    const earlier = rowsOf.get(partner) as string[];
    const wantRepeats = fileCount === 1 ? 0 : file === 0 ? 0 : (repeatedPerFile[file - 1] as number);
    // Repeats come from this partner's earlier files (the first file of a partner repeats its own rows).
    const pool = earlier.length > 0 ? earlier : fresh;
    const repeats = Array.from({ length: wantRepeats }, (_, index) => pool[(((pool.length - 1 - index) % pool.length) + pool.length) % pool.length] as string);
    earlier.push(...fresh);
    const body = `${DISPENSE_CSV_HEADER}\n${[...repeats, ...fresh].join('\n')}\n`;
    files.push({ kind: 'file', partner, fileName: `dispenses-${runId}-${String(file).padStart(4, '0')}.csv`, body, newRows: fresh.length, repeatedRows: repeats.length, droppedTwice: false });
    if (file === 0 && wholeFileCopy > 0) {
      files.push({ kind: 'file', partner, fileName: `dispenses-${runId}-${String(file).padStart(4, '0')}-resent.csv`, body, newRows: 0, repeatedRows: fresh.length + repeats.length, droppedTwice: true });
    }
  }
  if (fileCount === 1 && dupDispenses > 0) throw new RangeError('too few dispense rows for their duplicates: raise events or lower rowsPerFile');

  // Files spread evenly through the webhook stream.
  const deliveries: Delivery[] = [];
  const every = Math.max(1, Math.floor(stream.length / (files.length + 1)));
  let nextFile = 0;
  stream.forEach((item, index) => {
    deliveries.push(item);
    if ((index + 1) % every === 0 && nextFile < files.length) deliveries.push(files[nextFile++] as FileDelivery);
  });
  while (nextFile < files.length) deliveries.push(files[nextFile++] as FileDelivery);

  // Corrections last, after everything before them was answered: an amended price under a new control id.
  const correctable = [...charges.values()];
  const corrections = Math.min(options.corrections ?? 0, correctable.length);
  for (let index = 0; index < corrections; index++) {
    const original = correctable[Math.floor((index * correctable.length) / corrections)] as ExpectedCharge;
    const amended: ExpectedCharge = { ...original, unitPriceMinor: original.unitPriceMinor + 500, corrected: true };
    charges.set(amended.entityKey, amended);
    const controlId = `${runId}${String(++controlSeq).padStart(7, '0')}`;
    deliveries.push({
      kind: 'webhook', partner: amended.partner, contentType: 'x-application/hl7-v2+er7', body: chargeMessage(amended, Number(amended.entityKey.split('-').at(-1)), controlId, now + 1000),
      webhookId: `msg_${runId}_${controlSeq}`, role: 'correction', entityKey: amended.entityKey, barrier: index === 0,
    });
  }

  return {
    runId,
    deliveries,
    expected: { charges, dispenses, deliveries: supplies },
    counts: { events: unique + duplicates, unique, duplicates, corrections },
  };
}
