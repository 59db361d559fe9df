import type { FieldDescription } from './odoo-client.ts';
import type { DesiredValue } from './odoo-field-mapping.ts';
import { isMany2one, type OdooValue, type OdooValues } from './odoo-values.ts';

/**
 * The shapes odoo_sink sends: vals for create/write (many2one as an id, one2many lines as
 * commands — on update `[5]` then `[0, 0, vals]`, so a replay replaces lines instead of adding
 * them), the string table `load` imports, and the comparison with what Odoo holds, so a replay
 * that would change nothing writes nothing (a write would move write_date, and odoo_source would
 * see a change that is not one).
 */
export type DesiredRecord = Readonly<Record<string, DesiredValue>>;

export function toWriteVals(desired: DesiredRecord, replaceLines: boolean): OdooValues {
  const vals: Record<string, OdooValue> = {};
  for (const [field, value] of Object.entries(desired)) {
    if (value.kind === 'lines') {
      const commands: OdooValue[] = value.lines.map((line) => [0, 0, toWriteVals(line, replaceLines)]);
      vals[field] = replaceLines ? [[5, 0, 0], ...commands] : commands;
    } else {
      vals[field] = scalarForWrite(value);
    }
  }
  return vals;
}

function scalarForWrite(value: Exclude<DesiredValue, { kind: 'lines' }>): OdooValue {
  if (value.kind === 'many2one') return value.id ?? false;
  if (value.kind === 'many2many') return [[6, 0, [...value.ids]]];
  return value.value ?? false;
}

export interface LoadTable {
  readonly fields: string[];
  readonly rows: string[][];
}

/**
 * `load`'s import table: column `id` holds the external id, many2one columns are `field/.id`
 * (database ids, already looked up), one2many lines are `field/subfield` columns on the record's
 * first row and on the rows after it, whose own columns stay empty.
 */
export function loadTable(records: ReadonlyArray<{ readonly externalId: string; readonly desired: DesiredRecord }>): LoadTable {
  const parentColumns: Array<{ field: string; column: string }> = [];
  const lineColumns: Array<{ field: string; subfield: string; column: string }> = [];
  const seen = new Set<string>();
  for (const { desired } of records) {
    for (const [field, value] of Object.entries(desired)) {
      if (value.kind === 'lines') {
        for (const line of value.lines) {
          for (const [subfield, subvalue] of Object.entries(line)) {
            const column = `${field}/${subvalue.kind === 'many2one' || subvalue.kind === 'many2many' ? `${subfield}/.id` : subfield}`;
            if (!seen.has(column)) lineColumns.push({ field, subfield, column });
            seen.add(column);
          }
        }
      } else {
        const column = value.kind === 'many2one' || value.kind === 'many2many' ? `${field}/.id` : field;
        if (!seen.has(column)) parentColumns.push({ field, column });
        seen.add(column);
      }
    }
  }
  const fields = ['id', ...parentColumns.map((column) => column.column), ...lineColumns.map((column) => column.column)];
  const rows: string[][] = [];
  for (const { externalId, desired } of records) {
    const parentCells = parentColumns.map(({ field }) => cell(desired[field]));
    const lineSets = lineColumns.length === 0 ? [] : Object.entries(desired).filter(([, value]) => value.kind === 'lines');
    const lineCount = Math.max(1, ...lineSets.map(([, value]) => (value.kind === 'lines' ? value.lines.length : 0)));
    for (let index = 0; index < lineCount; index++) {
      const lineCells = lineColumns.map(({ field, subfield }) => {
        const value = desired[field];
        return value?.kind === 'lines' ? cell(value.lines[index]?.[subfield]) : '';
      });
      rows.push(index === 0 ? [externalId, ...parentCells, ...lineCells] : ['', ...parentCells.map(() => ''), ...lineCells]);
    }
  }
  return { fields, rows };
}

function cell(value: DesiredValue | undefined): string {
  if (!value) return '';
  if (value.kind === 'many2one') return value.id === null ? '' : String(value.id);
  // An empty many2many cell clears it (no taxes); ids go comma-separated.
  if (value.kind === 'many2many') return value.ids.join(',');
  if (value.kind === 'lines') return '';
  if (value.value === null) return '';
  if (typeof value.value === 'boolean') return value.value ? '1' : '0';
  return String(value.value);
}

/**
 * The fields whose desired value differs from what Odoo holds (`current` as `read` returns it,
 * one2many fields already expanded into their lines' values, in order).
 */
export function differences(
  desired: DesiredRecord,
  current: Readonly<Record<string, unknown>>,
  types: Readonly<Record<string, FieldDescription>>,
  lineTypes: Readonly<Record<string, Readonly<Record<string, FieldDescription>>>>,
): Record<string, DesiredValue> {
  const changed: Record<string, DesiredValue> = {};
  for (const [field, value] of Object.entries(desired)) {
    if (value.kind === 'lines') {
      const lines = current[field];
      const subTypes = lineTypes[field] ?? {};
      const same = Array.isArray(lines) && lines.length === value.lines.length && value.lines.every((line, index) => {
        const currentLine = lines[index] as Record<string, unknown> | undefined;
        return currentLine !== undefined && Object.keys(differences(line, currentLine, subTypes, {})).length === 0;
      });
      if (!same) changed[field] = value;
    } else if (!sameValue(value, current[field], types[field])) {
      changed[field] = value;
    }
  }
  return changed;
}

function sameValue(desired: Exclude<DesiredValue, { kind: 'lines' }>, current: unknown, type: FieldDescription | undefined): boolean {
  if (desired.kind === 'many2many') {
    const have = Array.isArray(current) ? [...(current as number[])].sort((a, b) => a - b) : [];
    const want = [...desired.ids].sort((a, b) => a - b);
    return have.length === want.length && have.every((id, index) => id === want[index]);
  }
  if (desired.kind === 'many2one') {
    const currentId = isMany2one(current) ? current[0] : typeof current === 'number' ? current : null;
    return currentId === desired.id;
  }
  const wanted = desired.value;
  const fieldType = type?.type;
  if (fieldType === 'boolean') return Boolean(current) === Boolean(wanted);
  if (fieldType === 'integer' || fieldType === 'float' || fieldType === 'monetary' || typeof wanted === 'number') {
    const have = typeof current === 'number' ? current : 0;
    const want = wanted === null || wanted === false ? 0 : Number(wanted);
    const digits = Array.isArray(type?.digits) ? Number(type.digits[1]) : undefined;
    if (digits !== undefined && Number.isFinite(digits)) return Math.abs(round(want, digits) - have) < 10 ** -(digits + 1);
    return Math.abs(want - have) < 1e-9 * Math.max(1, Math.abs(want));
  }
  const have = current === false || current === null || current === undefined || current === '' ? null : current;
  const want = wanted === false || wanted === '' ? null : wanted;
  if (fieldType === 'html') return plainText(have) === plainText(want);
  return have === want || (have !== null && want !== null && String(have) === String(want));
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

/** Odoo sanitizes HTML (wraps it in <p>…); compare what a reader sees. */
function plainText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return String(value).replace(/<[^>]*>/g, ' ').replace(/&nbsp;/g, ' ').replace(/\s+/g, ' ').trim() || null;
}
