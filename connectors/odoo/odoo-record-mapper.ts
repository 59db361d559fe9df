import { createHash } from 'node:crypto';
import { LifelineError } from '../../src/errors.ts';
import type { FieldDescription } from './odoo-client.ts';
import { isMany2one, type OdooRecord } from './odoo-values.ts';

/**
 * Odoo records as Avro values, driven by the model's `fields_get`: `false` becomes null (except
 * for booleans), many2one `[id, name]` becomes `{ id, name }`, x2many a list of ids, and money
 * (monetary fields, and floats named in `money_fields`) becomes exact minor units (`long`), never
 * a float. Datetimes stay Odoo's UTC strings `YYYY-MM-DD HH:MM:SS`, dates `YYYY-MM-DD`.
 */
export type AvroFieldValue = string | number | boolean | null | { id: number; name: string } | number[];
export type OdooAvroValue = Record<string, AvroFieldValue>;

export interface RecordMapperOptions {
  readonly model: string;
  readonly fields: readonly string[];
  readonly moneyFields: readonly string[];
  readonly moneyDecimals: number;
}

const SUPPORTED = new Set(['char', 'text', 'html', 'selection', 'integer', 'float', 'monetary', 'boolean', 'date', 'datetime', 'many2one', 'one2many', 'many2many', 'many2one_reference']);

export class OdooRecordMapper {
  private readonly scale: number;
  private readonly types: ReadonlyMap<string, string>;

  constructor(private readonly options: RecordMapperOptions, described: Readonly<Record<string, FieldDescription>>) {
    this.scale = 10 ** options.moneyDecimals;
    const types = new Map<string, string>();
    const problems: string[] = [];
    for (const field of options.fields) {
      const description = described[field];
      if (!description) problems.push(`${field} is not a field of ${options.model}`);
      else if (!SUPPORTED.has(description.type)) problems.push(`${field} is a ${description.type} field, which odoo_source does not emit`);
      else types.set(field, description.type);
    }
    for (const field of options.moneyFields) {
      const type = types.get(field);
      if (type !== 'float' && type !== 'monetary') problems.push(`money field ${field} must be one of the emitted float or monetary fields`);
    }
    if (problems.length > 0) throw new LifelineError('LL_CONFIG_INVALID', `odoo_source on ${options.model}: ${problems.join('; ')}`);
    this.types = types;
  }

  /** The fields to ask Odoo for. */
  get readFields(): string[] {
    return [...new Set(['write_date', ...this.options.fields])];
  }

  toAvro(record: OdooRecord): OdooAvroValue {
    const value: OdooAvroValue = { id: record.id, write_date: String(record.write_date) };
    for (const [field, type] of this.types) value[field] = this.convert(field, type, record[field]);
    return value;
  }

  /** A short hash of everything emitted but write_date: two versions in one second differ here. */
  static contentHash(value: OdooAvroValue): string {
    const { write_date: _ignored, ...content } = value;
    return createHash('sha256').update(JSON.stringify(content)).digest('base64url').slice(0, 11);
  }

  private convert(field: string, type: string, raw: unknown): AvroFieldValue {
    switch (type) {
      case 'boolean': return raw === true;
      case 'integer': case 'many2one_reference': return typeof raw === 'number' ? raw : raw === false || raw === null || raw === undefined ? null : Number(raw);
      case 'float': case 'monetary': {
        if (typeof raw !== 'number') return null;
        // Odoo's floats carry binary noise (80.49999999); rounding at the currency's scale is exact.
        return type === 'monetary' || this.options.moneyFields.includes(field) ? Math.round(raw * this.scale) : raw;
      }
      case 'many2one': return isMany2one(raw) ? { id: raw[0], name: raw[1] } : null;
      case 'one2many': case 'many2many': return Array.isArray(raw) ? raw.filter((id): id is number => typeof id === 'number') : [];
      default: return typeof raw === 'string' ? raw : null;
    }
  }
}
