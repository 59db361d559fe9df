import { applicationError, invalidField } from './odoo-fault.ts';
import { fieldsOf, modelNamed, type FieldDefinition, type ModelDefinition, type StoredValue } from './model-definitions.ts';
import type { Row } from './record-store.ts';

/**
 * Odoo domains and orders over the in-memory rows, with PostgreSQL's semantics where they show:
 * datetimes compare at microsecond precision (so `write_date > '10:00:00'` matches a row written
 * at 10:00:00.4, and `=` does not), NULLs never match a comparison but do match `!=` and the
 * negative operators (Odoo adds `OR x IS NULL`), `like`/`ilike` wrap the value in `%…%` while
 * `=like`/`=ilike` take it as the pattern, and archived rows are hidden unless the domain names
 * `active` (or the context says active_test: false).
 */
export interface FieldReader {
  /** A field's value in stored form, computed ones included. */
  value(model: ModelDefinition, row: Row, field: string): StoredValue;
  row(model: string, id: number): Row | undefined;
  rows(model: string): Iterable<Row>;
}

type Predicate = (row: Row) => boolean;
type Token = '&' | '|' | '!';

export function compileDomain(model: ModelDefinition, domain: unknown, reader: FieldReader, activeTest = true): Predicate {
  if (domain !== undefined && domain !== null && domain !== false && !Array.isArray(domain)) {
    throw applicationError(`ValueError: Invalid domain: ${JSON.stringify(domain)}`);
  }
  const terms = (Array.isArray(domain) ? domain : []) as unknown[];
  const stack: Predicate[] = [];
  for (let index = terms.length - 1; index >= 0; index--) {
    const term = terms[index];
    if (term === '&' || term === '|' || term === '!') {
      stack.push(combine(term, stack));
    } else if (Array.isArray(term) && term.length === 3) {
      stack.push(compileLeaf(model, term as [unknown, unknown, unknown], reader));
    } else {
      throw applicationError(`ValueError: Invalid leaf ${JSON.stringify(term)}`);
    }
  }
  const predicates = [...stack];
  const fields = fieldsOf(model);
  if (activeTest && 'active' in fields && !mentionsActive(terms)) predicates.push((row) => row.active !== false);
  return (row) => predicates.every((predicate) => predicate(row));
}

const TEXT_TYPES = new Set(['char', 'text', 'html', 'selection']);
const NUMBER_TYPES = new Set(['integer', 'many2one', 'many2one_reference']);

/**
 * The leaves `[field, '=' | 'in', value]` on stored scalar fields that the whole domain ANDs with
 * the rest (no `|` or `!` anywhere), whose values have the field's own type: the rows matching the
 * most selective one come from its field's index, and the full domain then filters those few.
 */
export function indexableLeaves(model: ModelDefinition, domain: unknown): Array<{ field: string; values: Array<string | number> }> {
  const leaves: Array<{ field: string; values: Array<string | number> }> = [];
  if (!Array.isArray(domain) || domain.some((term) => term === '|' || term === '!')) return leaves;
  const fields = fieldsOf(model);
  for (const term of domain) {
    if (!Array.isArray(term) || term.length !== 3) continue;
    const [left, operator, value] = term as [unknown, unknown, unknown];
    if (typeof left !== 'string' || left.includes('.') || (operator !== '=' && operator !== 'in')) continue;
    const field = fields[left];
    if (!field || field.computed) continue;
    const values = operator === 'in' ? value : [value];
    if (!Array.isArray(values)) continue;
    const wanted = TEXT_TYPES.has(field.type) ? 'string' : NUMBER_TYPES.has(field.type) ? 'number' : undefined;
    if (!wanted || !values.every((item) => typeof item === wanted && item !== '')) continue;
    leaves.push({ field: left, values: values as Array<string | number> });
  }
  return leaves;
}

function combine(token: Token, stack: Predicate[]): Predicate {
  const first = stack.pop();
  if (!first) throw applicationError(`ValueError: Domain operator ${token} is missing its operands`);
  if (token === '!') return (row) => !first(row);
  const second = stack.pop();
  if (!second) throw applicationError(`ValueError: Domain operator ${token} is missing its operands`);
  return token === '&' ? (row) => first(row) && second(row) : (row) => first(row) || second(row);
}

function mentionsActive(terms: readonly unknown[]): boolean {
  return terms.some((term) => Array.isArray(term) && typeof term[0] === 'string' && (term[0] === 'active' || term[0].startsWith('active.')));
}

const OPERATORS = new Set(['=', '!=', '<>', '<', '<=', '>', '>=', 'in', 'not in', 'like', 'ilike', '=like', '=ilike', 'not like', 'not ilike', 'child_of', 'parent_of', '=?']);

function compileLeaf(model: ModelDefinition, leaf: [unknown, unknown, unknown], reader: FieldReader): Predicate {
  const [left, operator, value] = leaf;
  // TRUE_LEAF (1, '=', 1) and FALSE_LEAF (0, '=', 1).
  if (typeof left === 'number') return () => left === value;
  if (typeof left !== 'string' || typeof operator !== 'string') throw applicationError(`ValueError: Invalid leaf ${JSON.stringify(leaf)}`);
  if (!OPERATORS.has(operator)) throw applicationError(`ValueError: Invalid leaf ${JSON.stringify(leaf)}`);
  const [head, ...rest] = left.split('.');
  const fields = fieldsOf(model);
  const field = fields[head as string];
  if (!field) throw invalidField(model.name, head as string);

  if (rest.length > 0) {
    // A path through a many2one: compile the rest on the comodel.
    const comodel = field.relation ? modelNamed(field.relation) : undefined;
    if (!comodel || field.type !== 'many2one') throw applicationError(`ValueError: Invalid field ${model.name}.${left} in leaf ${JSON.stringify(leaf)}`);
    const inner = compileLeaf(comodel, [rest.join('.'), operator, value], reader);
    return (row) => {
      const id = row[head as string];
      const target = typeof id === 'number' ? reader.row(comodel.name, id) : undefined;
      return target ? inner(target) : false;
    };
  }
  const name = head as string;
  if (operator === '=?') return value === false || value === null ? () => true : compileLeaf(model, [name, '=', value], reader);
  if (operator === 'child_of' || operator === 'parent_of') return compileHierarchy(model, name, operator, value, reader);
  if (field.type === 'one2many' || field.type === 'many2many') return compileToMany(model, name, operator, value, reader);
  if (field.type === 'many2one' && typeof value === 'string' && field.relation) {
    // A name instead of an id: Odoo matches the comodel's display name.
    const comodel = modelNamed(field.relation);
    if (!comodel) return () => false;
    const inner = compileLeaf(comodel, ['display_name', operator, value], reader);
    return (row) => {
      const id = row[name];
      const target = typeof id === 'number' ? reader.row(comodel.name, id) : undefined;
      return target ? inner(target) : operator.startsWith('not') || operator === '!=';
    };
  }
  return (row) => compare(field, reader.value(model, row, name), operator, value);
}

function compileToMany(model: ModelDefinition, name: string, operator: string, value: unknown, reader: FieldReader): Predicate {
  return (row) => {
    const ids = reader.value(model, row, name) as readonly number[];
    if (value === false || value === null) return operator === '=' ? ids.length === 0 : ids.length > 0;
    const wanted = Array.isArray(value) ? value : [value];
    const overlaps = ids.some((id) => wanted.includes(id));
    return operator === 'not in' || operator === '!=' ? !overlaps : overlaps;
  };
}

function compileHierarchy(model: ModelDefinition, name: string, operator: string, value: unknown, reader: FieldReader): Predicate {
  const roots = new Set((Array.isArray(value) ? value : [value]).filter((id): id is number => typeof id === 'number'));
  const parentOf = (row: Row): number | null => (typeof row.parent_id === 'number' ? row.parent_id : null);
  return (row) => {
    const start = row[name];
    if (typeof start !== 'number') return false;
    if (operator === 'child_of') {
      // Walk up from the row's record: is any ancestor (or itself) a root?
      let current: Row | undefined = reader.row(model.name, start);
      for (let depth = 0; current && depth < 64; depth++) {
        if (roots.has(current.id)) return true;
        const parent = parentOf(current);
        current = parent === null ? undefined : reader.row(model.name, parent);
      }
      return false;
    }
    // parent_of: is the row's record an ancestor of (or one of) the given records?
    for (const root of roots) {
      let current: Row | undefined = reader.row(model.name, root);
      for (let depth = 0; current && depth < 64; depth++) {
        if (current.id === start) return true;
        const parent = parentOf(current);
        current = parent === null ? undefined : reader.row(model.name, parent);
      }
    }
    return false;
  };
}

function compare(field: FieldDefinition, actual: StoredValue, operator: string, expected: unknown): boolean {
  const isEmpty = actual === null || actual === undefined || (actual === false && field.type !== 'boolean') || (actual === '' && isText(field));
  switch (operator) {
    case '=':
      if (expected === false || expected === null) return field.type === 'boolean' ? actual !== true : isEmpty;
      if (field.type === 'boolean') return Boolean(actual) === Boolean(expected);
      return !isEmpty && equal(field, actual, expected);
    case '!=': case '<>':
      if (expected === false || expected === null) return field.type === 'boolean' ? actual === true : !isEmpty;
      if (field.type === 'boolean') return Boolean(actual) !== Boolean(expected);
      return isEmpty || !equal(field, actual, expected);
    case 'in': case 'not in': {
      const list = Array.isArray(expected) ? expected : [expected];
      const hit = list.some((item) => (item === false || item === null ? (field.type === 'boolean' ? actual !== true : isEmpty) : field.type === 'boolean' ? Boolean(actual) === Boolean(item) : !isEmpty && equal(field, actual, item)));
      return operator === 'in' ? hit : !hit;
    }
    case '<': case '<=': case '>': case '>=': {
      if (isEmpty || expected === false || expected === null) return false;
      const order = ordering(field, actual, expected);
      return operator === '<' ? order < 0 : operator === '<=' ? order <= 0 : operator === '>' ? order > 0 : order >= 0;
    }
    case 'like': case 'ilike': case '=like': case '=ilike': case 'not like': case 'not ilike': {
      const negative = operator.startsWith('not');
      if (isEmpty) return negative;
      const literal = operator.startsWith('=');
      const pattern = literal ? String(expected) : `%${String(expected)}%`;
      const matched = likePattern(pattern, operator.includes('ilike')).test(String(actual));
      return negative ? !matched : matched;
    }
    default:
      return false;
  }
}

function isText(field: FieldDefinition): boolean {
  return field.type === 'char' || field.type === 'text' || field.type === 'html' || field.type === 'selection';
}

function equal(field: FieldDefinition, actual: StoredValue, expected: unknown): boolean {
  if (field.type === 'datetime') return actual === toMicros(expected);
  if (field.type === 'many2one' && Array.isArray(expected)) return actual === expected[0];
  if (typeof actual === 'number' && typeof expected === 'string' && expected.trim() !== '') return actual === Number(expected);
  return actual === expected;
}

function ordering(field: FieldDefinition, actual: StoredValue, expected: unknown): number {
  if (field.type === 'datetime') return (actual as number) - toMicros(expected);
  if (typeof actual === 'number') return actual - Number(expected);
  return String(actual) < String(expected) ? -1 : String(actual) > String(expected) ? 1 : 0;
}

const DATETIME_TEXT = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?)?$/;

/** Epoch microseconds of a datetime literal in a domain ('YYYY-MM-DD HH:MM:SS[.ffffff]' or a date). */
export function toMicros(value: unknown): number {
  if (typeof value === 'number') return value;
  const match = typeof value === 'string' ? DATETIME_TEXT.exec(value) : null;
  if (!match) throw applicationError(`ValueError: time data ${JSON.stringify(String(value))} does not match format '%Y-%m-%d %H:%M:%S'`);
  const [, year, month, day, hour = '0', minute = '0', second = '0', fraction = ''] = match;
  const millis = Date.UTC(Number(year), Number(month) - 1, Number(day), Number(hour), Number(minute), Number(second));
  return millis * 1000 + Number(fraction.padEnd(6, '0'));
}

function likePattern(pattern: string, caseInsensitive: boolean): RegExp {
  let source = '';
  for (const character of pattern) {
    if (character === '%') source += '[\\s\\S]*';
    else if (character === '_') source += '[\\s\\S]';
    else source += character.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, caseInsensitive ? 'i' : '');
}

/** Sorts rows by an Odoo order spec (`write_date asc, id asc`); NULLs last ascending, first descending, as PostgreSQL. */
export function sortRows(model: ModelDefinition, rows: Row[], order: string | undefined, reader: FieldReader): Row[] {
  const spec = parseOrder(model, order ?? model.order);
  const fields = fieldsOf(model);
  return rows.sort((a, b) => {
    for (const { field, descending } of spec) {
      const definition = fields[field] as FieldDefinition;
      const left = sortKey(definition, reader.value(model, a, field), reader);
      const right = sortKey(definition, reader.value(model, b, field), reader);
      if (left === right) continue;
      if (left === null) return descending ? -1 : 1;
      if (right === null) return descending ? 1 : -1;
      const result = typeof left === 'number' && typeof right === 'number' ? left - right : String(left).localeCompare(String(right));
      if (result !== 0) return descending ? -result : result;
    }
    return 0;
  });
}

function sortKey(field: FieldDefinition, value: StoredValue, reader: FieldReader): string | number | null {
  if (value === null || value === undefined || (value === false && field.type !== 'boolean')) return null;
  if (field.type === 'many2one' && typeof value === 'number' && field.relation) {
    const comodel = modelNamed(field.relation);
    const row = reader.row(field.relation, value);
    return comodel && row ? String(reader.value(comodel, row, 'display_name')) : value;
  }
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (Array.isArray(value)) return value.length;
  return value as string | number;
}

function parseOrder(model: ModelDefinition, order: string): Array<{ field: string; descending: boolean }> {
  const fields = fieldsOf(model);
  const spec = order.split(',').map((part) => part.trim()).filter(Boolean).map((part) => {
    const match = /^([a-z_][a-z0-9_]*)(?:\s+(asc|desc))?(?:\s+nulls\s+(?:first|last))?$/i.exec(part);
    if (!match || !fields[match[1] as string]) {
      throw applicationError(`ValueError: Invalid "order" specified (${order}). A valid "order" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)`);
    }
    return { field: match[1] as string, descending: (match[2] ?? 'asc').toLowerCase() === 'desc' };
  });
  // Odoo appends id as the final tie-breaker when the order does not already decide.
  if (!spec.some((item) => item.field === 'id')) spec.push({ field: 'id', descending: false });
  return spec;
}
