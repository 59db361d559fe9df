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
/**
 * A many2one to a fixed Odoo record, resolved once when the sink starts and cached: by external id
 * (`stock.picking_type_in`), by a search (model + domain: the first match in the model's order,
 * e.g. the warehouse's incoming type), or by database id.
 */
export const LinkSchema = Type.Object({
  external_id: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_]+\\.[A-Za-z0-9_.]+$', description: 'module.name of the record, e.g. stock.picking_type_in.' })),
  model: Type.Optional(Type.String({ minLength: 1, description: 'With domain: the model to search, e.g. stock.picking.type.' })),
  domain: Type.Optional(Type.Array(Type.Unknown(), { description: 'With model: an Odoo domain, e.g. [["code", "=", "incoming"]]; the first match in the model\'s order is used.' })),
  id: Type.Optional(Type.Integer({ minimum: 1, description: 'The database id (checked to exist).' })),
}, { additionalProperties: false, description: 'A fixed record: one of external_id, model + domain, or id.' });
export type LinkSpec = Static<typeof LinkSchema>;

const valueKeys = {
  path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path in the record value, e.g. payer.code.' })),
  as: Type.Optional(Type.Union(CONVERSIONS.map((name) => Type.Literal(name)), {
    description: 'With path. amount: minor units (or a decimal string) to Odoo\'s float; date/datetime: epoch ms or ISO text to UTC `YYYY-MM-DD[ HH:MM:SS]`; string, integer, float, boolean; id: the value is the database id of a many2one\'s record (e.g. added by enrich).',
  })),
  scale: Type.Optional(Type.Integer({ minimum: 0, maximum: 6, description: 'With as: amount: decimal places of the minor units (2 when absent).' })),
  default: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description: 'With path: used when the path is absent or null.' })),
  required: Type.Optional(Type.Boolean({ description: 'With path: a record without this value (absent or null, and no default) is dead-lettered with LL_ODOO_VALUE_INVALID instead of written empty — e.g. an amount the partner did not send, which must not become a 0.00 bill.' })),
  constant: Type.Optional(Type.Union([Type.String(), Type.Number(), Type.Boolean(), Type.Null()], { description: 'The same value for every record.' })),
  lookup: Type.Optional(Type.Object({
    model: Type.String({ minLength: 1, description: 'The many2one\'s comodel, e.g. res.partner.' }),
    field: Type.String({ minLength: 1, description: 'The comodel field that holds the reference, e.g. ref or default_code.' }),
    path: Type.String({ minLength: 1, description: 'Dotted path of the reference in the record.' }),
  }, { additionalProperties: false, description: 'A many2one found by reference (cached).' })),
  link: Type.Optional(LinkSchema),
  create_only: Type.Optional(Type.Boolean({
    description: 'Written when the record is created, never on update (Odoo refuses some changes after create: an operation type, the partner of a posted document, sequence-bearing fields).',
  })),
};

const ValueSpecSchema = Type.Object(valueKeys, { additionalProperties: false, description: 'One of path, constant or lookup.' });

export const FieldSpecSchema = Type.Object({
  ...valueKeys,
  lines: Type.Optional(Type.Object({
    path: Type.String({ minLength: 1, description: 'Dotted path of the list in the record, or "." for one line made from the record itself (a charge that is one invoice line).' }),
    fields: Type.Record(Type.String({ pattern: '^[a-z_][a-z0-9_]*$' }), ValueSpecSchema, { description: 'Line field → value, relative to one list item.' }),
    taxes: Type.Optional(Type.Union([Type.Literal('none'), Type.Literal('product_default'), Type.Array(LinkSchema, { minItems: 1 })], {
      description: 'Which taxes each line carries: none (tax_ids cleared), product_default (tax_ids not sent: Odoo applies the product\'s default taxes, e.g. 15 % purchase tax), or a list of tax records (links).',
    })),
    tax_field: Type.Optional(Type.String({ pattern: '^[a-z_][a-z0-9_]*$', default: 'tax_ids', description: 'The lines\' many2many of taxes (tax_ids on account.move.line, tax_id on sale.order.line).' })),
  }, { additionalProperties: false, description: 'one2many lines, one per list item.' })),
}, { additionalProperties: false, description: 'One of path, constant, lookup or lines.' });

type FieldSpecInput = Static<typeof FieldSpecSchema>;
type Scalar = string | number | boolean | null;

export type ValueSpec = (
  | { readonly path: string; readonly as?: Conversion; readonly scale?: number; readonly default?: Scalar; readonly required?: true }
  | { readonly constant: Scalar }
  | { readonly lookup: { readonly model: string; readonly field: string; readonly path: string } }
  | { readonly link: LinkSpec }
) & { readonly createOnly?: boolean };
export type Taxes = 'none' | 'product_default' | readonly LinkSpec[];
export type LinesSpec = {
  readonly lines: { readonly path: string; readonly fields: Readonly<Record<string, ValueSpec>>; readonly taxes?: Taxes; readonly taxField: string };
  readonly createOnly?: boolean;
};
export type FieldSpec = ValueSpec | LinesSpec;

/** The mapping as configured, checked: each field has exactly one source, and modifiers only where they apply. */
export function parseFieldSpecs(input: Readonly<Record<string, FieldSpecInput>>): Record<string, FieldSpec> {
  const problems: string[] = [];
  const parse = (name: string, raw: FieldSpecInput, allowLines: boolean): FieldSpec | undefined => {
    const kinds = (['path', 'constant', 'lookup', 'link', 'lines'] as const).filter((kind) => kind in raw && (kind !== 'lines' || allowLines));
    if (!allowLines && 'lines' in raw) problems.push(`${name}: lines cannot be nested`);
    if (kinds.length !== 1) {
      problems.push(`${name}: give exactly one of path, constant, lookup, link${allowLines ? ' or lines' : ''} (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);
      return undefined;
    }
    const kind = kinds[0];
    if (kind !== 'path' && (raw.as !== undefined || raw.scale !== undefined || raw.default !== undefined || raw.required !== undefined)) problems.push(`${name}: as, scale, default and required go with path`);
    if (!allowLines && raw.create_only !== undefined) problems.push(`${name}: create_only goes on the record's own fields (lines are replaced as a whole)`);
    const createOnly = raw.create_only === true ? { createOnly: true } : {};
    if (kind === 'path') return { path: raw.path as string, ...(raw.as ? { as: raw.as } : {}), ...(raw.scale !== undefined ? { scale: raw.scale } : {}), ...('default' in raw ? { default: raw.default ?? null } : {}), ...(raw.required === true ? { required: true } : {}), ...createOnly };
    if (kind === 'constant') return { constant: raw.constant ?? null, ...createOnly };
    if (kind === 'lookup') return { lookup: raw.lookup as { model: string; field: string; path: string }, ...createOnly };
    if (kind === 'link') {
      const problem = linkProblem(raw.link as LinkSpec);
      if (problem) problems.push(`${name}.link: ${problem}`);
      return { link: raw.link as LinkSpec, ...createOnly };
    }
    const lines = raw.lines as { path: string; fields: Record<string, FieldSpecInput>; taxes?: Taxes; tax_field?: string };
    const fields: Record<string, ValueSpec> = {};
    for (const [lineField, lineRaw] of Object.entries(lines.fields)) {
      const parsed = parse(`${name}.lines.fields.${lineField}`, lineRaw, false);
      if (parsed) fields[lineField] = parsed as ValueSpec;
    }
    const taxField = lines.tax_field ?? 'tax_ids';
    if (lines.taxes !== undefined && taxField in fields) problems.push(`${name}.lines: ${taxField} is set by taxes; do not map it under fields too`);
    if (Array.isArray(lines.taxes)) lines.taxes.forEach((link, index) => { const problem = linkProblem(link); if (problem) problems.push(`${name}.lines.taxes[${index}]: ${problem}`); });
    return { lines: { path: lines.path, fields, ...(lines.taxes !== undefined ? { taxes: lines.taxes } : {}), taxField }, ...createOnly };
  };
  const result: Record<string, FieldSpec> = {};
  for (const [name, raw] of Object.entries(input)) {
    const parsed = parse(name, raw, true);
    if (parsed) result[name] = parsed;
  }
  if (problems.length > 0) throw new LifelineError('LL_CONFIG_INVALID', `odoo_sink fields: ${problems.join('; ')}`);
  return result;
}

function linkProblem(link: LinkSpec): string | undefined {
  const ways = [link.external_id !== undefined, link.model !== undefined || link.domain !== undefined, link.id !== undefined].filter(Boolean).length;
  if (ways !== 1) return 'give exactly one of external_id, model + domain, or id';
  if ((link.model === undefined) !== (link.domain === undefined)) return 'model and domain go together';
  return undefined;
}

/** A stable text for a link, the key of its resolved id. */
export function linkKey(link: LinkSpec): string {
  if (link.external_id) return `xmlid:${link.external_id}`;
  if (link.id !== undefined) return `id:${link.id}`;
  return `search:${String(link.model)}:${JSON.stringify(link.domain)}`;
}

/** A link as the text people wrote (for errors and `lifeline odoo check`). */
export function describeLink(link: LinkSpec): string {
  if (link.external_id) return `external id ${link.external_id}`;
  if (link.id !== undefined) return `id ${link.id}`;
  return `${String(link.model)} matching ${JSON.stringify(link.domain)}`;
}

/** Every link a mapping declares, with the comodel it must point into when the field says so. */
export function linksOf(fields: Readonly<Record<string, FieldSpec>>): Array<{ field: string; link: LinkSpec }> {
  const links: Array<{ field: string; link: LinkSpec }> = [];
  for (const [field, spec] of Object.entries(fields)) {
    if (isLines(spec)) {
      for (const [lineField, lineSpec] of Object.entries(spec.lines.fields)) if ('link' in lineSpec) links.push({ field: `${field}.${lineField}`, link: lineSpec.link });
      if (Array.isArray(spec.lines.taxes)) for (const link of spec.lines.taxes) links.push({ field: `${field}.${spec.lines.taxField}`, link });
    } else if ('link' in spec) {
      links.push({ field, link: spec.link });
    }
  }
  return links;
}

/** Resolved links: linkKey → database id. */
export type ResolvedLinks = ReadonlyMap<string, number>;

/** A value ready for Odoo: a scalar, a many2one id (null: empty), a many2many's ids, or one2many lines. */
export type DesiredValue =
  | { readonly kind: 'scalar'; readonly value: string | number | boolean | null }
  | { readonly kind: 'many2one'; readonly id: number | null }
  | { readonly kind: 'many2many'; readonly ids: readonly number[] }
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
export function desiredValues(value: unknown, fields: Readonly<Record<string, FieldSpec>>, resolve: ReferenceResolver, links: ResolvedLinks = new Map()): Record<string, DesiredValue> {
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
          for (const [lineField, lineSpec] of Object.entries(spec.lines.fields)) line[lineField] = valueFor(`${field}[${index}].${lineField}`, item, lineSpec, resolve, links);
          const taxes = spec.lines.taxes;
          if (taxes === 'none') line[spec.lines.taxField] = { kind: 'many2many', ids: [] };
          else if (Array.isArray(taxes)) line[spec.lines.taxField] = { kind: 'many2many', ids: taxes.map((link) => linkId(`${field}[${index}].${spec.lines.taxField}`, link, links)) };
          return line;
        }),
      };
    } else {
      result[field] = valueFor(field, value, spec, resolve, links);
    }
  }
  return result;
}

function linkId(name: string, link: LinkSpec, links: ResolvedLinks): number {
  const id = links.get(linkKey(link));
  if (id === undefined) throw new LifelineError('LL_ODOO_LINK_UNRESOLVED', `${name}: ${describeLink(link)} was not resolved`, { retriable: true });
  return id;
}

function valueFor(name: string, scope: unknown, spec: ValueSpec, resolve: ReferenceResolver, links: ResolvedLinks): DesiredValue {
  if ('constant' in spec) return { kind: 'scalar', value: spec.constant };
  if ('link' in spec) return { kind: 'many2one', id: linkId(name, spec.link, links) };
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
  if (present === null && spec.required) {
    throw new LifelineError('LL_ODOO_VALUE_INVALID', `${name}: the record has no ${spec.path} (required: it is not written empty)`, { details: { field: name, path: spec.path } });
  }
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

/**
 * `{path}` placeholders in a message or activity text, filled from the record; `{path|duration}`
 * shows milliseconds as people say them ("15 minutes"), `{path|datetime}` epoch ms as UTC time.
 */
export function renderTemplate(template: string, value: unknown, extra: Readonly<Record<string, string | number>> = {}): string {
  return template.replace(/\{([a-zA-Z0-9_.]+)(?:\|(duration|datetime))?\}/g, (whole, path: string, format: string | undefined) => {
    const found = path in extra ? extra[path] : readPath(value, path);
    if (found === undefined || found === null) return '';
    if (format === 'duration') return formatDuration(Number(found));
    if (format === 'datetime') return Number.isFinite(Number(found)) ? `${toOdooDatetime(Number(found))} UTC` : String(found);
    return typeof found === 'object' ? JSON.stringify(found) : String(found);
  });
}

/** 900000 → "15 minutes", 5400000 → "90 minutes", 7200000 → "2 hours", 45000 → "45 seconds". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  const unit = (count: number, name: string): string => `${count} ${name}${count === 1 ? '' : 's'}`;
  if (ms % 86_400_000 === 0 && ms > 0) return unit(ms / 86_400_000, 'day');
  if (ms % 3_600_000 === 0 && ms > 0) return unit(ms / 3_600_000, 'hour');
  if (ms % 60_000 === 0 && ms > 0) return unit(ms / 60_000, 'minute');
  if (ms % 1000 === 0) return unit(ms / 1000, 'second');
  return `${ms} ms`;
}
