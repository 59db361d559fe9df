import { LifelineError } from '../../src/errors.ts';

/**
 * The values Odoo's XML-RPC API exchanges, and the rules for sending them: no `None` in answers
 * (empty is `false`), many2one as `[id, display name]`, datetimes as UTC strings
 * `YYYY-MM-DD HH:MM:SS`, integers 32-bit.
 */
export type OdooScalar = string | number | boolean | null;
export type OdooValue = OdooScalar | readonly OdooValue[] | { readonly [key: string]: OdooValue };
export type OdooValues = Readonly<Record<string, OdooValue>>;

/** A many2one as `read` returns it: `[id, display name]`, or `false` when empty. */
export type Many2oneValue = readonly [number, string] | false;

/** A record as `read`/`search_read` return it (always with `id`). */
export interface OdooRecord {
  readonly id: number;
  readonly [field: string]: unknown;
}

export type DomainOperator = '=' | '!=' | '<' | '<=' | '>' | '>=' | 'in' | 'not in' | 'like' | 'ilike' | '=like' | '=ilike' | 'not like' | 'not ilike' | 'child_of' | 'parent_of';
export type DomainLeaf = readonly [string, DomainOperator, OdooValue];
/** Prefix notation: `'&'`, `'|'`, `'!'` before their operands; consecutive terms are ANDed. */
export type OdooDomain = ReadonlyArray<DomainLeaf | '&' | '|' | '!'>;

export const INT32_MIN = -2_147_483_648;
export const INT32_MAX = 2_147_483_647;

/** `YYYY-MM-DD HH:MM:SS` in UTC: what Odoo sends and the only datetime form both 17.0 and 18.0 accept. */
export function toOdooDatetime(value: Date | number): string {
  const date = typeof value === 'number' ? new Date(value) : value;
  if (Number.isNaN(date.getTime())) throw new LifelineError('LL_ODOO_VALUE_INVALID', 'cannot send an invalid date to Odoo');
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** `YYYY-MM-DD` (UTC) for date fields. */
export function toOdooDate(value: Date | number): string {
  return toOdooDatetime(value).slice(0, 10);
}

const ODOO_DATETIME = /^(\d{4})-(\d{2})-(\d{2})(?: (\d{2}):(\d{2}):(\d{2}))?$/;

/** Epoch milliseconds of an Odoo datetime (or date) string, which is UTC. */
export function parseOdooDatetime(value: string): number {
  const match = ODOO_DATETIME.exec(value);
  if (!match) throw new LifelineError('LL_ODOO_VALUE_INVALID', `not an Odoo datetime: ${JSON.stringify(value)}`);
  const [, year, month, day, hour = '0', minute = '0', second = '0'] = match;
  return Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
}

/** Shifts an Odoo datetime string by whole seconds (used to look back an overlap window). */
export function shiftOdooDatetime(value: string, seconds: number): string {
  return toOdooDatetime(parseOdooDatetime(value) + seconds * 1000);
}

/** `false` (Odoo's empty) as null; everything else unchanged. */
export function emptyAsNull<T>(value: T | false): T | null {
  return value === false ? null : value;
}

export function isMany2one(value: unknown): value is readonly [number, string] {
  return Array.isArray(value) && value.length === 2 && typeof value[0] === 'number' && typeof value[1] === 'string';
}

/** The id of a many2one as read, or null when empty. */
export function many2oneId(value: unknown): number | null {
  if (isMany2one(value)) return value[0];
  if (typeof value === 'number') return value;
  return null;
}

/**
 * Checks everything about to go over the wire, so a bad value fails here, named by its path, rather
 * than as a puzzling fault: a JS Date (Odoo 17 rejects it and the xmlrpc package would send local
 * time without an offset), integers beyond 32 bits (the protocol's `<int>`), NaN, undefined, bigint.
 */
export function assertSendable(value: unknown, path = 'params'): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(path, `${value} is not a finite number`);
    if (Number.isInteger(value) && (value < INT32_MIN || value > INT32_MAX)) {
      throw invalid(path, `${value} does not fit XML-RPC's 32-bit <int>; send it as a string or a float field`);
    }
    return;
  }
  if (value instanceof Date) throw invalid(path, 'is a JS Date; send datetimes as UTC strings "YYYY-MM-DD HH:MM:SS" (toOdooDatetime)');
  if (value === undefined) throw invalid(path, 'is undefined; send false (empty) or null explicitly');
  if (typeof value === 'bigint') throw invalid(path, 'is a bigint, which XML-RPC cannot carry');
  if (Buffer.isBuffer(value)) return;
  if (Array.isArray(value)) {
    value.forEach((item, index) => assertSendable(item, `${path}[${index}]`));
    return;
  }
  if (typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) assertSendable(item, `${path}.${key}`);
    return;
  }
  throw invalid(path, `is a ${typeof value}, which XML-RPC cannot carry`);
}

function invalid(path: string, problem: string): LifelineError {
  return new LifelineError('LL_ODOO_VALUE_INVALID', `${path} ${problem}`, { details: { path } });
}
