import type { Operation } from './access-rights.ts';
import type { FieldReader } from './domain.ts';
import { OdooFault, applicationError, invalidField } from './odoo-fault.ts';
import { fieldsOf, modelNamed, type FieldDefinition, type ModelDefinition } from './model-definitions.ts';
import type { IndexKey, Row, Transaction } from './record-store.ts';

/** What the import needs of the ORM (the ORM implements it; this file does not import the ORM). */
export interface ImportOrm extends FieldReader {
  readonly txn: Transaction;
  importing: boolean;
  create(model: ModelDefinition, vals: unknown): number;
  write(model: ModelDefinition, ids: readonly number[], vals: unknown): true;
  checkAccess(model: ModelDefinition, operation: Operation): void;
  rowsWhere(model: string, field: string, values: readonly IndexKey[]): Row[];
}

/**
 * `Model.load(fields, rows)`: Odoo's import, the one call that creates or updates records by
 * external id atomically. Columns are field paths: `id` (external id, `module.name`), `.id`
 * (database id), `field`, `field/id` and `field/.id` (many2one by external or database id), and
 * `lines/subfield` for one2many lines, whose extra lines follow on rows with the record's own
 * columns empty. Values are strings in import form. A record that fails becomes an error message
 * (with its index), and then nothing of the call is kept: ids is false.
 */
export interface LoadMessage {
  type: 'error' | 'warning';
  message: string;
  record: number;
  rows: { from: number; to: number };
  field?: string;
}

interface Column {
  readonly index: number;
  readonly path: readonly string[];
}

export function importRecords(orm: ImportOrm, model: ModelDefinition, fieldsArg: unknown, dataArg: unknown): { ids: number[] | false; messages: LoadMessage[]; nextrow: number } {
  if (!Array.isArray(fieldsArg) || !fieldsArg.every((field) => typeof field === 'string')) throw applicationError('TypeError: load() fields must be a list of field names');
  if (!Array.isArray(dataArg)) throw applicationError('TypeError: load() data must be a list of rows');
  const all = fieldsOf(model);
  const columns: Column[] = (fieldsArg as string[]).map((name, index) => {
    const path = name.split('/');
    const head = path[0] as string;
    if (head !== 'id' && head !== '.id' && !all[head]) throw invalidField(model.name, head);
    return { index, path };
  });
  const rows = (dataArg as unknown[]).map((row) => (Array.isArray(row) ? row.map((cell) => (cell === false || cell === null || cell === undefined ? '' : String(cell))) : []));
  const ownColumns = columns.filter((column) => !isOne2many(all, column));

  // A record starts on a row with any of its own columns filled; other rows carry more lines.
  const records: Array<{ from: number; to: number }> = [];
  rows.forEach((row, index) => {
    const starts = ownColumns.some((column) => (row[column.index] ?? '') !== '');
    if (starts || records.length === 0) records.push({ from: index, to: index });
    else (records[records.length - 1] as { to: number }).to = index;
  });

  const savepoint = orm.txn.savepoint();
  const messages: LoadMessage[] = [];
  const ids: number[] = [];
  orm.importing = true;
  try {
  records.forEach((span, recordIndex) => {
    const inner = orm.txn.savepoint();
    try {
      ids.push(importRecord(orm, model, all, columns, rows.slice(span.from, span.to + 1)));
    } catch (error) {
      orm.txn.rollbackTo(inner);
      if (!(error instanceof ImportProblem || error instanceof OdooFault)) throw error;
      const message = error instanceof ImportProblem ? error.message : faultText(error);
      messages.push({ type: 'error', message, record: recordIndex, rows: span, ...(error instanceof ImportProblem && error.field ? { field: error.field } : {}) });
    }
  });
  } finally {
    orm.importing = false;
  }
  if (messages.some((message) => message.type === 'error')) {
    orm.txn.rollbackTo(savepoint);
    return { ids: false, messages, nextrow: 0 };
  }
  return { ids, messages, nextrow: 0 };
}

class ImportProblem extends Error {
  constructor(message: string, readonly field?: string) {
    super(message);
  }
}

/** What Odoo puts in a load message: the exception's text, without the traceback. */
function faultText(fault: OdooFault): string {
  if (fault.faultCode !== 1) return fault.faultString;
  const last = fault.faultString.trim().split('\n').pop() ?? fault.faultString;
  return last.replace(/^[A-Za-z_.]+(?:Error|Exception|Failure): /, '');
}

function isOne2many(all: Readonly<Record<string, FieldDefinition>>, column: Column): boolean {
  return all[column.path[0] as string]?.type === 'one2many';
}

function importRecord(orm: ImportOrm, model: ModelDefinition, all: Readonly<Record<string, FieldDefinition>>, columns: readonly Column[], rows: readonly string[][]): number {
  const first = rows[0] ?? [];
  const vals: Record<string, unknown> = {};
  let externalId: { module: string; name: string } | undefined;
  let databaseId: number | undefined;
  const lineColumns = new Map<string, Column[]>();

  for (const column of columns) {
    const [head, ...rest] = column.path as [string, ...string[]];
    const cell = first[column.index] ?? '';
    if (head === 'id') {
      if (cell) externalId = splitExternalId(cell);
      continue;
    }
    if (head === '.id') {
      if (cell) databaseId = Number.parseInt(cell, 10);
      continue;
    }
    const field = all[head] as FieldDefinition;
    if (field.type === 'one2many') {
      lineColumns.set(head, [...(lineColumns.get(head) ?? []), { index: column.index, path: rest }]);
      continue;
    }
    vals[head] = convertCell(orm, model, head, field, rest, cell);
  }
  for (const [name, subColumns] of lineColumns) {
    const field = all[name] as FieldDefinition;
    const comodel = modelNamed(field.relation as string) as ModelDefinition;
    const comodelFields = fieldsOf(comodel);
    const commands: unknown[] = [];
    for (const row of rows) {
      if (subColumns.every((column) => (row[column.index] ?? '') === '')) continue;
      const lineVals: Record<string, unknown> = {};
      for (const column of subColumns) {
        const [subHead, ...subRest] = column.path as [string, ...string[]];
        const subField = comodelFields[subHead];
        if (!subField) throw invalidField(comodel.name, subHead);
        lineVals[subHead] = convertCell(orm, comodel, subHead, subField, subRest, row[column.index] ?? '');
      }
      commands.push([0, 0, lineVals]);
    }
    vals[name] = commands;
  }

  if (databaseId !== undefined) {
    orm.checkAccess(model, 'write');
    orm.write(model, [databaseId], vals);
    return databaseId;
  }
  if (!externalId) return orm.create(model, vals);
  const dataModel = modelNamed('ir.model.data') as ModelDefinition;
  const mapping = findExternalId(orm, externalId.module, externalId.name);
  if (mapping && typeof mapping.res_id === 'number' && orm.row(model.name, mapping.res_id)) {
    if (mapping.model !== model.name) throw new ImportProblem(`External ID ${externalId.module}.${externalId.name} belongs to model ${String(mapping.model)}, not ${model.name}`);
    orm.checkAccess(model, 'write');
    orm.write(model, [mapping.res_id], vals);
    return mapping.res_id;
  }
  const id = orm.create(model, vals);
  if (mapping) orm.write(dataModel, [mapping.id], { res_id: id, model: model.name });
  else orm.create(dataModel, { module: externalId.module, name: externalId.name, model: model.name, res_id: id, noupdate: false });
  return id;
}

function splitExternalId(value: string): { module: string; name: string } {
  const dot = value.indexOf('.');
  return dot > 0 ? { module: value.slice(0, dot), name: value.slice(dot + 1) } : { module: '__import__', name: value };
}

/** ir.model.data by (module, name), through its unique index. */
function findExternalId(orm: ImportOrm, module: string, name: string): Row | undefined {
  return orm.rowsWhere('ir.model.data', 'name', [name]).find((row) => row.module === module);
}

/** One cell in import form to the value create/write take, with Odoo's import messages. */
function convertCell(orm: ImportOrm, model: ModelDefinition, name: string, field: FieldDefinition, rest: readonly string[], cell: string): unknown {
  const label = field.string;
  const suffix = rest[0];
  if (field.type === 'many2one' || field.type === 'many2many') {
    if (cell === '') return field.type === 'many2one' ? false : [[5, 0, 0]];
    const comodel = field.relation as string;
    const resolve = (reference: string): number => {
      if (suffix === '.id') {
        const id = Number.parseInt(reference, 10);
        if (!Number.isInteger(id) || !orm.row(comodel, id)) throw new ImportProblem(`No matching record found for database id '${reference}' in field '${label}'`, name);
        return id;
      }
      if (suffix === 'id') {
        const { module, name: xmlName } = splitExternalId(reference);
        const mapping = findExternalId(orm, module, xmlName);
        if (!mapping || typeof mapping.res_id !== 'number' || !orm.row(comodel, mapping.res_id)) throw new ImportProblem(`No matching record found for external id '${reference}' in field '${label}'`, name);
        return mapping.res_id;
      }
      const comodelDefinition = modelNamed(comodel) as ModelDefinition;
      const found = [...orm.rows(comodel)].find((row) => String(orm.value(comodelDefinition, row, 'display_name')) === reference);
      if (!found) throw new ImportProblem(`No matching record found for name '${reference}' in field '${label}'`, name);
      return found.id;
    };
    if (field.type === 'many2one') return resolve(cell);
    return [[6, 0, cell.split(',').map((part) => resolve(part.trim()))]];
  }
  switch (field.type) {
    case 'char': case 'text': case 'html': return cell === '' ? false : cell;
    case 'integer': case 'many2one_reference': {
      if (cell === '') return false;
      if (!/^\s*-?\d+\s*$/.test(cell)) throw new ImportProblem(`'${cell}' does not seem to be an integer for field '${label}'`, name);
      return Number.parseInt(cell, 10);
    }
    case 'float': case 'monetary': {
      if (cell === '') return false;
      const number = Number(cell);
      if (!Number.isFinite(number)) throw new ImportProblem(`'${cell}' does not seem to be a number for field '${label}'`, name);
      return number;
    }
    case 'boolean': return ['1', 'true', 'yes'].includes(cell.trim().toLowerCase());
    case 'date': {
      if (cell === '') return false;
      if (!/^\d{4}-\d{2}-\d{2}$/.test(cell)) throw new ImportProblem(`'${cell}' does not seem to be a valid date for field '${label}'`, name);
      return cell;
    }
    case 'datetime': {
      if (cell === '') return false;
      if (!/^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$/.test(cell)) throw new ImportProblem(`'${cell}' does not seem to be a valid datetime for field '${label}'`, name);
      return cell;
    }
    case 'selection': {
      if (cell === '') return false;
      const match = field.selection?.find(([key, text]) => key === cell || text.toLowerCase() === cell.toLowerCase());
      if (!match) throw new ImportProblem(`Value '${cell}' not found in selection field '${label}'`, name);
      return match[0];
    }
    default: throw new ImportProblem(`Field '${label}' cannot be imported`, name);
  }
}
