import { Type, type Static } from '@sinclair/typebox';
import { LifelineError } from '../../src/errors.ts';
import { readPath } from '../../src/component/value-path.ts';
import { toOdooDate, toOdooDatetime } from './odoo-values.ts';

/**
 * odoo_sink's field mapping: for each Odoo field, where its value comes from — a path in the
 * record, a constant, a many2one looked up by reference, or one2many lines built from a list in
 * the record — and how a value is converted (money in minor units to Odoo's float, epoch ms or ISO
 * text to Odoo's UTC datetime strings).
 */
const CONVERSIONS = ['amount', 'date', 'datetime', 'string', 'integer', 'float', 'boolean', 'id'] as const;
export type Conversion = (typeof CONVERSIONS)[number];

// One flat object per field rather than a union of shapes: a typo then gets "unknown key" from
// `lifeline topology validate`, where a union only says that no shape matched. Which keys may go
// together is checked by parseFieldSpecs when the sink is created.
const valueKeys = {
  path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path in the record value, e.g. payer.code.' })),
  as: Type.Optional(Type.Union(CONVERSIONS.map((name) => Type.Literal(name)), {
    description: 'With path. amount: minor units (or a decimal string) to Odoo\'s float; date/datetime: epoch ms or ISO text to UTC `YYYY-MM-DD[ HH:MM:SS]`; string, integer, float, boolean; id: the value is the database id of a many2one\'s record (e.g. added by enrich).',
  })),
  scale: Type.Optional(Type.Integer({ minimum: 0, maximum: 6, description: 'With as: amount: decimal places of the minor units (2 when absent).' })),
  default: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description: 'With path: used when the path is absent or null.' })),
  constant: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description: 'The same value for every record.' })),
  lookup: Type.Optional(Type.Object({
    model: Type.String({ minLength: 1, description: 'The many2one\'s comodel, e.g. res.partner.' }),
    field: Type.String({ minLength: 1, description: 'The comodel field that holds the reference, e.g. ref or default_code.' }),
    path: Type.String({ minLength: 1, description: 'Dotted path of the reference in the record.' }),
  }, { additionalProperties: false, description: 'A many2one found by reference (cached).' })),
};

const ValueSpecSchema = Type.Object(valueKeys, { additionalProperties: false, description: 'One of path, constant or lookup.' });

export const FieldSpecSchema = Type.Object({
  ...valueKeys,
  lines: Type.Optional(Type.Object({
    path: Type.String({ minLength: 1, description: 'Dotted path of the list in the record, or "." for one line made from the record itself (a charge that is one invoice line).' }),
    fields: Type.Record(Type.String({ pattern: '^[a-z_][a-z0-9_]*$' }), ValueSpecSchema, { description: 'Line field → value, relative to one list item.' }),
  }, { additionalProperties: false, description: 'one2many lines, one per list item.' })),
}, { additionalProperties: false, description: 'One of path, constant, lookup or lines.' });

type FieldSpecInput = Static<typeof FieldSpecSchema>;
type Scalar = string | number | boolean | null;

export type ValueSpec =
  | { readonly path: string; readonly as?: Conversion; readonly scale?: number; readonly default?: Scalar }
  | { readonly constant: Scalar }
  | { readonly lookup: { readonly model: string; readonly field: string; readonly path: string } };
export type LinesSpec = { readonly lines: { readonly path: string; readonly fields: Readonly<Record<string, ValueSpec>> } };
export type FieldSpec = ValueSpec | LinesSpec;

/** The mapping as configured, checked: each field has exactly one source, and modifiers only where they apply. */
export function parseFieldSpecs(input: Readonly<Record<string, FieldSpecInput>>): Record<string, FieldSpec> {
  const problems: string[] = [];
  const parse = (name: string, raw: FieldSpecInput, allowLines: boolean): FieldSpec | undefined => {
    const kinds = (['path', 'constant', 'lookup', 'lines'] as const).filter((kind) => kind in raw && (kind !== 'lines' || allowLines));
    if (!allowLines && 'lines' in raw) problems.push(`${name}: lines cannot be nested`);
    if (kinds.length !== 1) {
      problems.push(`${name}: give exactly one of path, constant, lookup${allowLines ? ' or lines' : ''} (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
      return undefined;
    }
    const kind = kinds[0];
    if (kind !== 'path' && (raw.as !== undefined || raw.scale !== undefined || raw.default !== undefined)) problems.push(`${name}: as, scale and default go with path`);
    if (kind === 'path') return { path: raw.path as string, ...(raw.as ? { as: raw.as } : {}), ...(raw.scale !== undefined ? { scale: raw.scale } : {}), ...('default' in raw ? { default: raw.default ?? null } : {}) };
    if (kind === 'constant') return { constant: raw.constant ?? null };
    if (kind === 'lookup') return { lookup: raw.lookup as { model: string; field: string; path: string } };
    const lines = raw.lines as { path: string; fields: Record<string, FieldSpecInput> };
    const fields: Record<string, ValueSpec> = {};
    for (const [lineField, lineRaw] of Object.entries(lines.fields)) {
      const parsed = parse(`${name}.lines.fields.${lineField}`, lineRaw, false);
      if (parsed) fields[lineField] = parsed as ValueSpec;
    }
    return { lines: { path: lines.path, fields } };
  };
  const result: Record<string, FieldSpec> = {};
  for (const [name, raw] of Object.entries(input)) {
    const parsed = parse(name, raw, true);
    if (parsed) result[name] = parsed;
  }
  if (problems.length > 0) throw new LifelineError('LL_CONFIG_INVALID', `odoo_sink fields: ${problems.join('; ')}`);
  return result;
}

/** A value ready for Odoo: a scalar, a many2one id (null: empty) or one2many lines. */
export type DesiredValue =
  | { readonly kind: 'scalar'; readonly value: string | number | boolean | null }
  | { readonly kind: 'many2one'; readonly id: number | null }
  | { readonly kind: 'lines'; readonly lines: ReadonlyArray<Readonly<Record<string, DesiredValue>>> };

export interface ReferenceRequest {
  readonly model: string;
  readonly field: string;
  readonly value: string | number;
}

/** Resolves a reference to an Odoo id: a number, or an error for this record. */
export type ReferenceResolver = (request: ReferenceRequest) => number | LifelineError;

export function isLines(spec: FieldSpec): spec is LinesSpec {
  return 'lines' in spec;
}

/** Every reference a record needs looked up, so a batch asks Odoo once per comodel and field. */
export function referencesOf(value: unknown, fields: Readonly<Record<string, FieldSpec>>): ReferenceRequest[] {
  const requests: ReferenceRequest[] = [];
  const collect = (spec: ValueSpec, scope: unknown): void => {
    if (!('lookup' in spec)) return;
    const raw = readPath(scope, spec.lookup.path);
    if (typeof raw === 'string' && raw !== '' || typeof raw === 'number') requests.push({ model: spec.lookup.model, field: spec.lookup.field, value: raw });
  };
  for (const spec of Object.values(fields)) {
    if (isLines(spec)) {
      const items = lineItems(value, spec.lines.path);
      if (Array.isArray(items)) for (const item of items) for (const line of Object.values(spec.lines.fields)) collect(line, item);
    } else {
      collect(spec, value);
    }
  }
  return requests;
}

/** The items lines are built from: the list at `path`, or the record itself for ".". */
function lineItems(value: unknown, path: string): unknown {
  return path === '.' ? [value] : readPath(value, path);
}

/** The Odoo values a record maps to; a LifelineError (permanent) names the field that cannot be built. */
export function desiredValues(value: unknown, fields: Readonly<Record<string, FieldSpec>>, resolve: ReferenceResolver): Record<string, DesiredValue> {
  const result: Record<string, DesiredValue> = {};
  for (const [field, spec] of Object.entries(fields)) {
    if (isLines(spec)) {
      const items = lineItems(value, spec.lines.path);
      if (items !== undefined && items !== null && !Array.isArray(items)) {
        throw new LifelineError('LL_ODOO_VALUE_INVALID', `${field}: ${spec.lines.path} is not a list`, { details: { field } });
      }
      result[field] = {
        kind: 'lines',
        lines: (items ?? []).map((item, index) => {
          const line: Record<string, DesiredValue> = {};
          for (const [lineField, lineSpec] of Object.entries(spec.lines.fields)) line[lineField] = valueFor(`${field}[${index}].${lineField}`, item, lineSpec, resolve);
          return line;
        }),
      };
    } else {
      result[field] = valueFor(field, value, spec, resolve);
    }
  }
  return result;
}

function valueFor(name: string, scope: unknown, spec: ValueSpec, resolve: ReferenceResolver): DesiredValue {
  if ('constant' in spec) return { kind: 'scalar', value: spec.constant };
  if ('lookup' in spec) {
    const raw = readPath(scope, spec.lookup.path);
    if (raw === undefined || raw === null || raw === '') return { kind: 'many2one', id: null };
    if (typeof raw !== 'string' && typeof raw !== 'number') {
      throw new LifelineError('LL_ODOO_VALUE_INVALID', `${name}: ${spec.lookup.path} must be a string or number to look up ${spec.lookup.model}.${spec.lookup.field}`, { details: { field: name } });
    }
    const resolved = resolve({ model: spec.lookup.model, field: spec.lookup.field, value: raw });
    if (resolved instanceof LifelineError) throw resolved;
    return { kind: 'many2one', id: resolved };
  }
  const raw = readPath(scope, spec.path);
  const present = raw === undefined || raw === null ? (spec.default ?? null) : raw;
  if (spec.as === 'id') {
    if (present === null || present === '') return { kind: 'many2one', id: null };
    const id = Number(present);
    if (!Number.isInteger(id) || id <= 0) throw new LifelineError('LL_ODOO_VALUE_INVALID', `${name}: expected a record id (a positive integer) at ${spec.path}`, { details: { field: name } });
    return { kind: 'many2one', id };
  }
  return { kind: 'scalar', value: convert(name, present, spec.as, spec.scale ?? 2) };
}

function convert(name: string, value: unknown, conversion: Conversion | undefined, scale: number): string | number | boolean | null {
  if (value === null) return null;
  const fail = (expected: string): never => {
    throw new LifelineError('LL_ODOO_VALUE_INVALID', `${name}: expected ${expected}, got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`, { details: { field: name } });
  };
  switch (conversion) {
    case 'amount': {
      // Minor units are exact integers; Odoo's money fields are floats in major units.
      if (typeof value === 'number' || typeof value === 'bigint') return Number(value) / 10 ** scale;
      if (typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value.trim())) return Number(value);
      return fail('minor units (a number) or a decimal string');
    }
    case 'date': case 'datetime': {
      const millis = typeof value === 'number' ? value : typeof value === 'string' ? Date.parse(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(value) ? `${value.replace(' ', 'T')}Z` : value) : Number.NaN;
      if (!Number.isFinite(millis)) return fail('epoch milliseconds or an ISO 8601 date-time');
      return conversion === 'date' ? toOdooDate(millis) : toOdooDatetime(millis);
    }
    case 'string': return typeof value === 'object' ? JSON.stringify(value) : String(value);
    case 'integer': {
      const number = Number(value);
      return Number.isInteger(number) ? number : fail('an integer');
    }
    case 'float': {
      const number = Number(value);
      return Number.isFinite(number) ? number : fail('a number');
    }
    case 'boolean': return value === true || value === 'true' || value === 1 || value === '1';
    default:
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
      if (typeof value === 'bigint') return Number(value);
      return fail('a string, number or boolean (add `as:` to convert it)');
  }
}

/** `{path}` placeholders in a message or activity text, filled from the record. */
export function renderTemplate(template: string, value: unknown, extra: Readonly<Record<string, string | number>> = {}): string {
  return template.replace(/\{([a-zA-Z0-9_.]+)\}/g, (whole, path: string) => {
    if (path in extra) return String(extra[path]);
    const found = readPath(value, path);
    return found === undefined || found === null ? '' : typeof found === 'object' ? JSON.stringify(found) : String(found);
  });
}
