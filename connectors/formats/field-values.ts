import { formatError, type FormatErrorCode, type Money } from './canonical.ts';

/**
 * Parsing of the values every format shares — money, quantities, timestamps — strictly: a value
 * that does not fit is an error naming the field, never a guess. Messages describe the expected
 * form and never echo the value (it may be PHI).
 */

const currencyExponents = new Map<string, number>();
let knownCurrencies: Set<string> | undefined;

/** Minor-unit exponent of an ISO 4217 currency (USD 2, JPY 0, BHD 3), from the runtime's ICU data. */
export function currencyExponent(currency: string, code: FormatErrorCode, where: string): number {
  const cached = currencyExponents.get(currency);
  if (cached !== undefined) return cached;
  knownCurrencies ??= new Set(Intl.supportedValuesOf('currency'));
  if (!/^[A-Z]{3}$/.test(currency) || !knownCurrencies.has(currency)) {
    throw formatError(code, 'currency must be an ISO 4217 code such as USD or EUR', where);
  }
  const exponent = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  currencyExponents.set(currency, exponent);
  return exponent;
}

const DECIMAL = /^([+-])?(\d+)(?:\.(\d*))?$|^([+-])?\.(\d+)$/;

/**
 * A decimal string ("123.45", "-0.5", "12") as minor units of `currency`, exactly. More
 * fraction digits than the currency has are accepted only when they are zeros ("12.3400" USD).
 */
export function parseMoney(text: string, currency: string, code: FormatErrorCode, where: string): Money {
  const exponent = currencyExponent(currency, code, where);
  const match = DECIMAL.exec(text.trim());
  if (!match) throw formatError(code, `amount must be a decimal number like 123.45 (no exponent, no currency sign)`, where);
  const sign = (match[1] ?? match[4]) === '-' ? -1n : 1n;
  const whole = match[2] ?? '0';
  const fraction = match[3] ?? match[5] ?? '';
  const significant = fraction.replace(/0+$/, '');
  if (significant.length > exponent) {
    throw formatError(code, `amount has ${significant.length} decimal places; ${currency} has ${exponent}`, where);
  }
  const minor = sign * BigInt(whole + significant.padEnd(exponent, '0'));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER) || minor < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw formatError(code, 'amount is too large to represent exactly', where);
  }
  return { amount_minor: Number(minor), currency };
}

/** A JSON number (FHIR Money.value) as exact minor units; JSON numbers print back as their shortest decimal. */
export function jsonNumberToMoney(value: unknown, currency: string, code: FormatErrorCode, where: string): Money {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw formatError(code, 'amount must be a number', where);
  const text = String(value);
  if (/e/i.test(text)) throw formatError(code, 'amount is too large or too small to be money', where);
  return parseMoney(text, currency, code, where);
}

/** A quantity: a finite decimal, not money (a count or a measure). */
export function parseQuantity(text: string, code: FormatErrorCode, where: string): number {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) throw formatError(code, 'quantity must be a decimal number', where);
  return Number(trimmed);
}

export function parseInteger(text: string, code: FormatErrorCode, where: string): number {
  const trimmed = text.trim();
  if (!/^[+-]?\d{1,9}$/.test(trimmed)) throw formatError(code, 'must be a whole number', where);
  return Number(trimmed);
}

const HL7_TIMESTAMP = /^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,4}))?([+-]\d{4})?$/;

/**
 * An HL7 v2 DTM/TS (YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]) as epoch ms. Without an offset the
 * time is in the sender's zone: `defaultOffset`, the offset the message declares in MSH-7 (HL7
 * v2: a time without an offset is the sending system's local time); UTC only when the message
 * declares none. Written here rather than taken from @medplum/core because its parser accepts
 * garbage ("abc" becomes 1900) and mis-reads fractional seconds.
 */
export function parseHl7Timestamp(text: string, where: string, defaultOffset?: string): number {
  const match = HL7_TIMESTAMP.exec(text.trim());
  if (!match) throw formatError('LL_FORMAT_HL7_INVALID', 'timestamp must be YYYY[MM[DD[HHMM[SS[.SSSS]]]]][+/-ZZZZ]', where);
  const [, year, month = '01', day = '01', hour = '00', minute = '00', second = '00', fraction = ''] = match;
  const offset = match[8] ?? defaultOffset;
  const millis = Math.round(Number(`0.${fraction || '0'}`) * 1000);
  const local = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second), millis);
  const check = new Date(local);
  if (check.getUTCMonth() !== Number(month) - 1 || check.getUTCDate() !== Number(day) || Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) {
    throw formatError('LL_FORMAT_HL7_INVALID', 'timestamp is not a real date and time', where);
  }
  if (!offset) return local;
  const offsetMinutes = (offset.startsWith('-') ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(3, 5)));
  return local - offsetMinutes * 60_000;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
const COMPACT_DATE = /^(\d{4})(\d{2})(\d{2})$/;

/**
 * A date or date-time as epoch ms: ISO 8601 (`2024-03-01`, `2024-03-01T10:15:00Z`, with an
 * offset) or NCPDP's CCYYMMDD. A date alone is midnight UTC.
 */
export function parseDateTime(text: string, code: FormatErrorCode, where: string): number {
  if (typeof text !== 'string') throw formatError(code, 'must be a date or date-time string', where);
  const trimmed = text.trim();
  const date = ISO_DATE.exec(trimmed) ?? COMPACT_DATE.exec(trimmed);
  if (date) {
    const [, year, month, day] = date;
    const epoch = Date.UTC(Number(year), Number(month) - 1, Number(day));
    const check = new Date(epoch);
    if (check.getUTCMonth() !== Number(month) - 1 || check.getUTCDate() !== Number(day)) throw formatError(code, 'date is not a real calendar date', where);
    return epoch;
  }
  if (ISO_DATE_TIME.test(trimmed)) {
    const epoch = Date.parse(trimmed);
    if (!Number.isNaN(epoch)) return epoch;
  }
  throw formatError(code, 'must be a date (YYYY-MM-DD or YYYYMMDD) or an ISO 8601 date-time with a zone (2024-03-01T10:15:00Z)', where);
}

/** A date as ISO yyyy-mm-dd (for date-only fields such as expiry or payment dates). */
export function parseIsoDate(text: string, code: FormatErrorCode, where: string): string {
  return new Date(parseDateTime(text, code, where)).toISOString().slice(0, 10);
}

/**
 * Unit price and total made consistent with the quantity: what the format leaves out is derived
 * when that is exact (total = unit × quantity in whole minor units; unit = total ÷ quantity when it
 * divides), and stays null (unknown) otherwise — never rounded. Both given are kept as given (a
 * total may include a discount the unit price does not show); the total is what a bill uses.
 */
export function completeLineMoney(quantity: number, unit: Money | null, total: Money | null): { unit: Money | null; total: Money | null } {
  if (unit && !total) {
    const minor = unit.amount_minor * quantity;
    return { unit, total: Number.isSafeInteger(minor) ? { amount_minor: minor, currency: unit.currency } : null };
  }
  if (total && !unit && quantity !== 0) {
    const minor = total.amount_minor / quantity;
    return { unit: Number.isSafeInteger(minor) ? { amount_minor: minor, currency: total.currency } : null, total };
  }
  return { unit, total };
}

/** The sum of the parts when every part is known and in one currency; else null. */
export function sumKnownMoney(parts: ReadonlyArray<Money | null>): Money | null {
  if (parts.length === 0 || parts.some((part) => part === null)) return null;
  const known = parts as readonly Money[];
  const currency = (known[0] as Money).currency;
  if (known.some((part) => part.currency !== currency)) return null;
  return { amount_minor: known.reduce((sum, part) => sum + part.amount_minor, 0), currency };
}
