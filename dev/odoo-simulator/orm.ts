import { checkAccess, type Operation } from './access-rights.ts';
import { compileDomain, indexableLeaves, sortRows, toMicros, type FieldReader } from './domain.ts';
import type { FailureSwitches } from './failure-switches.ts';
import { importRecords, type ImportOrm } from './load-import.ts';
import {
  accessError, applicationError, duplicateKey, invalidField, missingError, notNullViolation, serializationFailure, userError,
} from './odoo-fault.ts';
import { fieldsOf, modelNamed, type FieldDefinition, type ModelDefinition, type StoredValue } from './model-definitions.ts';
import type { IndexKey, Row, Transaction } from './record-store.ts';
import { PythonFloat } from './xmlrpc-wire.ts';

/**
 * Odoo's ORM methods over the simulator's store, as execute_kw reaches them: one instance per call
 * (one transaction). Values are checked and converted the way Odoo 17 does it — unknown fields,
 * bad selections and unparsable datetimes are fault 1, a JS Date in a datetime field is the
 * TypeError Odoo 17 raises, missing required values and duplicate external ids are fault 2 —
 * and read back the way Odoo sends them (`false` for empty, many2one as `[id, name]`, datetimes
 * truncated to the second, floats as doubles).
 */
export interface CallSession {
  readonly uid: number;
  readonly txn: Transaction;
  readonly switches: FailureSwitches;
  readonly context: Readonly<Record<string, unknown>>;
  /** External ids of the calling user's groups: access rights per model follow them (fault 4 otherwise). */
  readonly groups: ReadonlySet<string>;
  /** The partner of the calling user, as message author. */
  readonly authorPartnerId: number | null;
}

/** Positional parameters of the public methods, so args and kwargs combine as Python would. */
const SIGNATURES: Readonly<Record<string, readonly string[]>> = {
  search: ['domain', 'offset', 'limit', 'order'],
  search_read: ['domain', 'fields', 'offset', 'limit', 'order'],
  search_count: ['domain', 'limit'],
  read: ['ids', 'fields', 'load'],
  fields_get: ['allfields', 'attributes'],
  create: ['vals_list'],
  write: ['ids', 'vals'],
  unlink: ['ids'],
  load: ['fields', 'data'],
  name_search: ['name', 'args', 'operator', 'limit'],
  default_get: ['fields_list'],
  message_post: ['ids'],
  action_post: ['ids'],
  action_confirm: ['ids'],
  action_archive: ['ids'],
  action_unarchive: ['ids'],
  check_access_rights: ['operation', 'raise_exception'],
  activity_schedule: ['ids'],
};

/** The access right each public method needs on its model (load also needs write to update). */
const OPERATIONS: Readonly<Record<string, Operation | undefined>> = {
  search: 'read', search_read: 'read', search_count: 'read', read: 'read', name_search: 'read',
  create: 'create', load: 'create', write: 'write', unlink: 'unlink',
  message_post: 'write', action_post: 'write', action_confirm: 'write', action_archive: 'write', action_unarchive: 'write',
};

type Kwargs = Record<string, unknown>;

export class Orm implements FieldReader, ImportOrm {
  /** Set while `load` imports: a missing required value is then reported as the import does. */
  importing = false;

  constructor(private readonly session: CallSession) {}

  checkAccess(model: ModelDefinition, operation: Operation): void {
    checkAccess(this.session.groups, model, operation);
  }

  get txn(): Transaction {
    return this.session.txn;
  }

  /** execute_kw's dispatch: model, method, positional args, keyword args. */
  call(modelName: string, method: string, args: readonly unknown[], kwargs: Kwargs): unknown {
    const model = modelNamed(modelName);
    if (!model) throw userError(`Object ${modelName} doesn't exist`);
    if (method.startsWith('_')) throw accessError(`Private methods (such as ${modelName}.${method}) cannot be called remotely.`);
    const signature = SIGNATURES[method];
    if (!signature) throw applicationError(`AttributeError: The method '${modelName}.${method}' does not exist`);
    const named: Kwargs = { ...kwargs };
    signature.forEach((name, index) => { if (index < args.length) named[name] = args[index]; });
    const operation = OPERATIONS[method];
    if (operation) this.checkAccess(model, operation);
    const result = this.dispatch(model, method, named);
    // Odoo's XML-RPC is allow_none=False: a method answering None cannot be marshalled.
    if (result === undefined || result === null) throw applicationError('TypeError: cannot marshal None unless allow_none is enabled');
    return result;
  }

  private dispatch(model: ModelDefinition, method: string, args: Kwargs): unknown {
    switch (method) {
      case 'search': return this.search(model, args.domain, args);
      case 'search_count': return this.search(model, args.domain, { limit: args.limit }).length;
      case 'search_read': {
        const ids = this.search(model, args.domain, args);
        return this.read(model, ids, args.fields);
      }
      case 'read': return this.read(model, idList(args.ids), args.fields);
      case 'fields_get': return this.fieldsGet(model, args.allfields, args.attributes);
      case 'create': return this.createMany(model, args.vals_list);
      case 'write': return this.write(model, idList(args.ids), args.vals);
      case 'unlink': return this.unlink(model, idList(args.ids));
      case 'load': return importRecords(this, model, args.fields, args.data);
      case 'name_search': return this.nameSearch(model, args);
      case 'default_get': return this.defaultGet(model, args.fields_list);
      case 'message_post': return this.messagePost(model, idList(args.ids), args);
      case 'action_post': return this.actionPost(model, idList(args.ids));
      case 'action_confirm': return this.actionConfirm(model, idList(args.ids));
      case 'action_archive': case 'action_unarchive': return this.setActive(model, idList(args.ids), method === 'action_unarchive');
      case 'check_access_rights': {
        const operation = String(args.operation) as Operation;
        if (!['read', 'write', 'create', 'unlink'].includes(operation)) throw applicationError(`ValueError: Invalid access mode: ${operation}`);
        if (args.raise_exception === false) {
          try {
            this.checkAccess(model, operation);
            return true;
          } catch {
            return false;
          }
        }
        this.checkAccess(model, operation);
        return true;
      }
      case 'activity_schedule':
        // It returns a recordset, which XML-RPC cannot marshal: create a mail.activity instead.
        throw applicationError("TypeError: cannot marshal <class 'odoo.api.mail.activity'> objects");
      default: throw applicationError(`AttributeError: The method '${model.name}.${method}' does not exist`);
    }
  }

  // ---- FieldReader ------------------------------------------------------------------------------

  row(model: string, id: number): Row | undefined {
    return this.txn.get(model, id);
  }

  rows(model: string): Iterable<Row> {
    return this.txn.rows(model);
  }

  value(model: ModelDefinition, row: Row, field: string): StoredValue {
    const definition = fieldsOf(model)[field];
    if (!definition) throw invalidField(model.name, field);
    if (field === 'display_name') return model.displayName ? model.displayName(row) : String(row.name ?? '');
    if (definition.type === 'one2many') return this.lineIds(definition, row.id);
    if (definition.computed) return this.computed(model, row, field);
    const stored = row[field];
    if (stored === undefined) return definition.type === 'many2many' ? [] : null;
    return stored;
  }

  private computed(model: ModelDefinition, row: Row, field: string): StoredValue {
    switch (`${model.name}.${field}`) {
      case 'res.partner.complete_name': {
        const parent = typeof row.parent_id === 'number' ? this.row('res.partner', row.parent_id) : undefined;
        return parent ? `${String(parent.name)}, ${String(row.name)}` : String(row.name ?? '');
      }
      case 'ir.model.data.complete_name': return `${String(row.module)}.${String(row.name)}`;
      case 'stock.picking.picking_type_code': {
        const type = typeof row.picking_type_id === 'number' ? this.row('stock.picking.type', row.picking_type_id) : undefined;
        return type ? (type.code ?? null) : null;
      }
      case 'mail.activity.res_model': {
        const target = typeof row.res_model_id === 'number' ? this.row('ir.model', row.res_model_id) : undefined;
        return target ? String(target.model) : null;
      }
      case 'account.move.line.move_name': case 'account.move.line.date': {
        const move = typeof row.move_id === 'number' ? this.row('account.move', row.move_id) : undefined;
        return move ? (move[field === 'move_name' ? 'name' : 'date'] ?? null) : null;
      }
      case 'account.move.line.price_subtotal': case 'sale.order.line.price_subtotal':
        return money(lineSubtotal(row));
      case 'account.move.line.price_total':
        return money(lineSubtotal(row) + this.lineTax(row));
      default: return this.totals(model, row, field);
    }
  }

  private totals(model: ModelDefinition, row: Row, field: string): StoredValue {
    const lineField = model.name === 'account.move' ? 'invoice_line_ids' : model.name === 'sale.order' ? 'order_line' : undefined;
    if (!lineField) return null;
    const definition = model.fields[lineField] as FieldDefinition;
    const lines = this.lineIds(definition, row.id).map((id) => this.row(definition.relation as string, id)).filter((line): line is Row => line !== undefined);
    const untaxed = lines.reduce((sum, line) => sum + lineSubtotal(line), 0);
    const tax = lines.reduce((sum, line) => sum + this.lineTax(line), 0);
    switch (field) {
      case 'amount_untaxed': return money(untaxed);
      case 'amount_tax': return money(tax);
      case 'amount_total': return money(untaxed + tax);
      case 'amount_residual': return row.payment_state === 'paid' ? 0 : money(untaxed + tax);
      default: return null;
    }
  }

  private lineTax(line: Row): number {
    const taxIds = (line.tax_ids ?? line.tax_id ?? []) as readonly number[];
    const percent = taxIds.reduce((sum, id) => sum + Number(this.row('account.tax', id)?.amount ?? 0), 0);
    return lineSubtotal(line) * percent / 100;
  }

  /** The ids of a parent's one2many lines, from the index on the comodel's inverse many2one. */
  private lineIds(definition: FieldDefinition, parentId: number): number[] {
    const relation = definition.relation as string;
    const inverse = definition.inverse as string;
    const ids: number[] = [];
    for (const line of this.txn.candidates(relation, inverse, [parentId])) if (line[inverse] === parentId) ids.push(line.id);
    return ids.sort((a, b) => a - b);
  }

  /** Rows of a model whose (stored, scalar) field equals one of the values: index-backed. */
  rowsWhere(model: string, field: string, values: readonly IndexKey[]): Row[] {
    const wanted = new Set(values);
    return [...this.txn.candidates(model, field, values)].filter((row) => wanted.has((row[field] ?? null) as IndexKey));
  }

  // ---- reading ----------------------------------------------------------------------------------

  search(model: ModelDefinition, domain: unknown, options: { offset?: unknown; limit?: unknown; order?: unknown }): number[] {
    const activeTest = this.session.context.active_test !== false;
    const matches = compileDomain(model, domain, this, activeTest);
    // The most selective `=` / `in` leaf on a stored field ANDed with the rest narrows the rows through its index.
    let leaf: { field: string; values: Array<string | number> } | undefined;
    let fewest = Number.POSITIVE_INFINITY;
    for (const candidate of indexableLeaves(model, domain)) {
      const count = candidate.values.reduce<number>((sum, value) => sum + this.txn.store.idsWhere(model.name, candidate.field, value).size, 0);
      if (count < fewest) [leaf, fewest] = [candidate, count];
    }
    const source = leaf ? this.txn.candidates(model.name, leaf.field, leaf.values) : this.rows(model.name);
    const rows = [...source].filter(matches);
    sortRows(model, rows, typeof options.order === 'string' && options.order ? options.order : undefined, this);
    const offset = typeof options.offset === 'number' ? options.offset : 0;
    const limit = typeof options.limit === 'number' && options.limit > 0 ? options.limit : undefined;
    return rows.slice(offset, limit === undefined ? undefined : offset + limit).map((row) => row.id);
  }

  read(model: ModelDefinition, ids: readonly number[], fieldsArg: unknown): Array<Record<string, unknown>> {
    const all = fieldsOf(model);
    const requested = Array.isArray(fieldsArg) && fieldsArg.length > 0 ? (fieldsArg as string[]) : Object.keys(all);
    for (const field of requested) if (!all[field]) throw invalidField(model.name, field);
    const result: Array<Record<string, unknown>> = [];
    for (const id of ids) {
      const row = this.row(model.name, id);
      if (!row) continue; // read of a deleted id: absent, no fault
      const record: Record<string, unknown> = { id };
      for (const field of requested) record[field] = this.wireValue(model, all[field] as FieldDefinition, row, field);
      result.push(record);
    }
    return result;
  }

  /** A stored value as Odoo sends it. */
  private wireValue(model: ModelDefinition, definition: FieldDefinition, row: Row, field: string): unknown {
    const value = this.value(model, row, field);
    switch (definition.type) {
      case 'integer': case 'many2one_reference': return typeof value === 'number' ? value : 0;
      case 'float': case 'monetary': return new PythonFloat(typeof value === 'number' ? value : 0);
      case 'boolean': return value === true;
      case 'datetime': return typeof value === 'number' ? microsToOdoo(value) : false;
      case 'many2one': {
        if (typeof value !== 'number' || !definition.relation) return false;
        const comodel = modelNamed(definition.relation);
        const target = this.row(definition.relation, value);
        return comodel && target ? [value, String(this.value(comodel, target, 'display_name'))] : false;
      }
      case 'one2many': case 'many2many': return Array.isArray(value) ? [...value] : [];
      default: return value === null || value === '' && definition.type !== 'char' ? false : value;
    }
  }

  private fieldsGet(model: ModelDefinition, allfields: unknown, attributes: unknown): Record<string, Record<string, unknown>> {
    const all = fieldsOf(model);
    const names = Array.isArray(allfields) && allfields.length > 0 ? (allfields as string[]).filter((name) => all[name]) : Object.keys(all);
    const wanted = Array.isArray(attributes) && attributes.length > 0 ? new Set(attributes as string[]) : undefined;
    const result: Record<string, Record<string, unknown>> = {};
    for (const name of names) {
      const field = all[name] as FieldDefinition;
      const description: Record<string, unknown> = {
        type: field.type, string: field.string, required: field.required ?? false, readonly: field.readonly ?? field.computed ?? false,
        store: !field.computed, sortable: true, searchable: true,
        ...(field.relation ? { relation: field.relation } : {}),
        ...(field.inverse ? { relation_field: field.inverse } : {}),
        ...(field.selection ? { selection: field.selection.map(([key, label]) => [key, label]) } : {}),
      };
      result[name] = wanted ? Object.fromEntries(Object.entries(description).filter(([key]) => wanted.has(key))) : description;
    }
    return result;
  }

  private nameSearch(model: ModelDefinition, args: Kwargs): Array<[number, string]> {
    const name = typeof args.name === 'string' ? args.name : '';
    const operator = typeof args.operator === 'string' ? args.operator : 'ilike';
    const domain = [...(Array.isArray(args.args) ? args.args : []), ...(name ? [['display_name', operator, name]] : [])];
    const ids = this.search(model, domain, { limit: typeof args.limit === 'number' ? args.limit : 100 });
    return ids.map((id) => [id, String(this.value(model, this.row(model.name, id) as Row, 'display_name'))]);
  }

  private defaultGet(model: ModelDefinition, fieldsList: unknown): Record<string, unknown> {
    const result: Record<string, unknown> = {};
    for (const name of Array.isArray(fieldsList) ? (fieldsList as string[]) : []) {
      const field = model.fields[name];
      if (!field || field.default === undefined) continue;
      const value = typeof field.default === 'function' ? field.default(this.txn.now) : field.default;
      result[name] = field.type === 'datetime' && typeof value === 'number' ? microsToOdoo(value) : value;
    }
    return result;
  }

  // ---- writing ----------------------------------------------------------------------------------

  private createMany(model: ModelDefinition, valsList: unknown): number | number[] {
    if (Array.isArray(valsList)) return valsList.map((vals) => this.create(model, vals));
    return this.create(model, valsList);
  }

  create(model: ModelDefinition, vals: unknown): number {
    const values = asVals(vals);
    const fields = model.fields;
    const id = this.txn.store.nextId(model.name);
    const row: Row = { id, create_date: this.txn.now, write_date: this.txn.now, create_uid: this.session.uid, write_uid: this.session.uid };
    for (const [name, field] of Object.entries(fields)) {
      if (field.default === undefined || field.computed || name in values) continue;
      row[name] = typeof field.default === 'function' ? field.default(this.txn.now) : field.default;
    }
    const relational: Array<[string, FieldDefinition, unknown]> = [];
    for (const [name, value] of Object.entries(values)) {
      const field = this.writableField(model, name, value);
      if (!field) continue;
      if (field.type === 'one2many') relational.push([name, field, value]);
      else if (field.type === 'many2many') row[name] = this.many2manyCommands(field, [], value);
      else row[name] = this.storedValue(model, name, field, value);
    }
    if (model.sequence) {
      const current = row[model.sequence.field];
      if (current === 'New' || current === '/' || current === null || current === undefined) {
        row[model.sequence.field] = `${model.sequence.prefix}${String(this.txn.store.nextNumber(model.name)).padStart(model.sequence.padding, '0')}`;
      }
    }
    if (model.name === 'account.move.line' && !('tax_ids' in values)) this.defaultVendorTaxes(row);
    if (model.name === 'mail.activity') this.checkActivityTarget(row);
    if (model.name === 'ir.model.fields' && this.session.uid !== 1) {
      // Real Odoo adds a custom field to the model's table; the simulator's models are fixed.
      throw userError(`The Odoo simulator cannot add fields at run time: declare ${String(values.name)} on ${String(values.model ?? 'the model')} in dev/odoo-simulator/model-definitions.ts (x_lifeline_version already is, on account.move and stock.picking).`);
    }
    this.checkRequired(model, row);
    this.checkUnique(model, row);
    this.txn.insert(model.name, row);
    for (const [name, field, value] of relational) this.one2manyCommands(model, name, field, id, value);
    if (model.mailThread && this.tracks()) this.logMessage(model, id, `<p>${model.description} created</p>`, []);
    return id;
  }

  /**
   * A vendor bill line created without tax_ids gets its product's default purchase taxes
   * (supplier_taxes_id), as account.move.line's computed tax_ids does; `tax_ids: [[6, 0, []]]` says none.
   */
  private defaultVendorTaxes(row: Row): void {
    const move = typeof row.move_id === 'number' ? this.row('account.move', row.move_id) : undefined;
    const product = typeof row.product_id === 'number' ? this.row('product.product', row.product_id) : undefined;
    if (!move || !product || (move.move_type !== 'in_invoice' && move.move_type !== 'in_refund')) return;
    const taxes = (product.supplier_taxes_id ?? []) as readonly number[];
    row.tax_ids = taxes.filter((taxId) => this.row('account.tax', taxId)?.active !== false);
  }

  /** Creating an activity needs write access to the document it is on (mail.activity._check_access). */
  private checkActivityTarget(row: Row): void {
    const target = typeof row.res_model_id === 'number' ? this.row('ir.model', row.res_model_id) : undefined;
    const targetModel = target ? modelNamed(String(target.model)) : undefined;
    if (targetModel) this.checkAccess(targetModel, 'write');
  }

  private tracks(): boolean {
    return this.session.context.tracking_disable !== true && this.session.context.mail_notrack !== true;
  }

  private trackedFields(model: ModelDefinition): string[] {
    return Object.entries(model.fields).filter(([, field]) => field.tracking).map(([name]) => name);
  }

  /** A chatter entry on a record: a mail.message, with a mail.tracking.value per changed tracked field. */
  private logMessage(model: ModelDefinition, resId: number, body: string, changes: ReadonlyArray<{ field: string; before: StoredValue; after: StoredValue }>): void {
    const messageModel = modelNamed('mail.message') as ModelDefinition;
    const trackingValues = changes.map(({ field, before, after }) => {
      const definition = model.fields[field] as FieldDefinition;
      const [fieldRow] = this.rowsWhere('ir.model.fields', 'name', [field]).filter((candidate) => candidate.model === model.name);
      const column = definition.type === 'float' || definition.type === 'monetary' ? 'float' : definition.type === 'integer' ? 'integer' : 'char';
      const shown = (value: StoredValue): unknown => {
        if (column !== 'char') return typeof value === 'number' ? value : 0;
        if (definition.type === 'many2one' && typeof value === 'number' && definition.relation) {
          const comodel = modelNamed(definition.relation);
          const target = this.row(definition.relation, value);
          return comodel && target ? String(this.value(comodel, target, 'display_name')) : false;
        }
        if (definition.type === 'datetime' && typeof value === 'number') return microsToOdoo(value);
        if (definition.type === 'selection') return selectionLabel(model, field, value);
        return value === null || value === undefined ? false : String(value);
      };
      return [0, 0, { field_id: fieldRow?.id ?? false, [`old_value_${column}`]: shown(before), [`new_value_${column}`]: shown(after) }];
    });
    this.create(messageModel, {
      model: model.name, res_id: resId, body, message_type: 'notification',
      author_id: this.session.authorPartnerId ?? false, tracking_value_ids: trackingValues,
    });
  }

  private trackedValues(model: ModelDefinition, id: number, fields: readonly string[]): StoredValue[] {
    const row = this.row(model.name, id);
    return row ? fields.map((field) => this.value(model, row, field)) : [];
  }

  write(model: ModelDefinition, ids: readonly number[], vals: unknown): true {
    const values = asVals(vals);
    const missing = ids.filter((id) => !this.row(model.name, id));
    if (missing.length > 0) throw missingError(model.name, missing, this.session.uid);
    const tracked = model.mailThread && this.tracks() ? this.trackedFields(model) : [];
    for (const id of ids) {
      const before = tracked.length > 0 ? this.trackedValues(model, id, tracked) : [];
      const changes: Record<string, StoredValue> = { write_date: this.txn.now, write_uid: this.session.uid };
      const relational: Array<[string, FieldDefinition, unknown]> = [];
      const current = this.row(model.name, id) as Row;
      for (const [name, value] of Object.entries(values)) {
        const field = this.writableField(model, name, value);
        if (!field) continue;
        if (field.createOnly) throw userError(field.createOnly);
        if (field.type === 'one2many') relational.push([name, field, value]);
        else if (field.type === 'many2many') changes[name] = this.many2manyCommands(field, (current[name] ?? []) as number[], value);
        else changes[name] = this.storedValue(model, name, field, value);
      }
      const next = { ...current, ...changes } as Row;
      this.checkRequired(model, next);
      this.checkUnique(model, next);
      this.txn.update(model.name, id, changes);
      for (const [name, field, value] of relational) this.one2manyCommands(model, name, field, id, value);
      if (tracked.length > 0) {
        const after = this.trackedValues(model, id, tracked);
        const changed = tracked.map((field, index) => ({ field, before: before[index] ?? null, after: after[index] ?? null }))
          .filter(({ before: old, after: now }) => !sameStored(old, now));
        if (changed.length > 0) this.logMessage(model, id, '', changed);
      }
    }
    return true;
  }

  unlink(model: ModelDefinition, ids: readonly number[]): true {
    const missing = ids.filter((id) => !this.row(model.name, id));
    if (missing.length > 0) throw missingError(model.name, missing, this.session.uid);
    for (const id of ids) {
      for (const field of Object.values(model.fields)) {
        // Lines go with their document (ondelete cascade on the required inverse).
        if (field.type === 'one2many') for (const lineId of this.lineIds(field, id)) this.txn.remove(field.relation as string, lineId);
      }
      this.txn.remove(model.name, id);
      // Odoo drops the external ids of deleted records.
      for (const data of this.rowsWhere('ir.model.data', 'res_id', [id])) if (data.model === model.name) this.txn.remove('ir.model.data', data.id);
    }
    return true;
  }

  /** The field definition if the value may be written, undefined if Odoo silently ignores it. */
  private writableField(model: ModelDefinition, name: string, value: unknown): FieldDefinition | undefined {
    const all = fieldsOf(model);
    const field = all[name];
    if (!field) throw invalidField(model.name, name);
    if (name in { id: 1, create_date: 1, write_date: 1, create_uid: 1, write_uid: 1, display_name: 1 } || field.computed) return undefined;
    const rejection = this.session.switches.rejectionFor(model.name, name, value);
    if (rejection?.transient) throw serializationFailure();
    if (rejection) throw userError(rejection.message ?? `Invalid value for ${field.string}: ${String(value)}`);
    return field;
  }

  /** An incoming value converted to its stored form, as Odoo's convert_to_cache does. */
  storedValue(model: ModelDefinition, name: string, field: FieldDefinition, value: unknown): StoredValue {
    if (value instanceof Date) {
      if (field.type === 'datetime' || field.type === 'date') throw applicationError("TypeError: object of type 'DateTime' has no len()");
      throw applicationError(`ValueError: Wrong value for ${model.name}.${name}: ${String(value)}`);
    }
    switch (field.type) {
      case 'char': case 'text': case 'html':
        if (value === false || value === null) return null;
        return typeof value === 'string' ? value : String(value);
      case 'selection':
        if (value === false || value === null) return null;
        if (!field.selection?.some(([key]) => key === value)) throw applicationError(`ValueError: Wrong value for ${model.name}.${name}: ${JSON.stringify(value)}`);
        return value as string;
      case 'integer': case 'many2one_reference':
        if (value === false || value === null) return field.type === 'integer' ? 0 : null;
        return toInteger(value);
      case 'float': case 'monetary':
        if (value === false || value === null) return 0;
        return toFloat(value);
      case 'boolean':
        return Boolean(value);
      case 'date':
        if (value === false || value === null) return null;
        return toDate(value);
      case 'datetime':
        if (value === false || value === null) return null;
        return toDatetimeMicros(value);
      case 'many2one': {
        if (value === false || value === null || value === 0) return null;
        const id = Array.isArray(value) ? value[0] : value;
        if (typeof id !== 'number') throw applicationError(`ValueError: Wrong value for ${model.name}.${name}: ${JSON.stringify(value)}`);
        if (!this.row(field.relation as string, id)) {
          throw userError(`The operation cannot be completed: insert or update on table "${table(model.name)}" violates foreign key constraint "${table(model.name)}_${name}_fkey"\nDETAIL:  Key (${name})=(${id}) is not present in table "${table(field.relation as string)}".`);
        }
        return id;
      }
      default:
        throw applicationError(`ValueError: Wrong value for ${model.name}.${name}: ${JSON.stringify(value)}`);
    }
  }

  private many2manyCommands(field: FieldDefinition, current: readonly number[], value: unknown): number[] {
    let ids = [...current];
    const comodel = modelNamed(field.relation as string) as ModelDefinition;
    for (const command of commandList(value)) {
      const [code, id, payload] = command;
      switch (code) {
        case 0: ids.push(this.create(comodel, payload)); break;
        case 3: ids = ids.filter((existing) => existing !== id); break;
        case 4: if (typeof id === 'number' && !ids.includes(id)) ids.push(id); break;
        case 5: ids = []; break;
        case 6: ids = Array.isArray(payload) ? (payload as number[]).filter((item) => typeof item === 'number') : []; break;
        default: throw applicationError(`ValueError: Invalid many2many command ${JSON.stringify(command)} for ${field.string}`);
      }
    }
    for (const id of ids) if (!this.row(field.relation as string, id)) throw missingError(field.relation as string, [id], this.session.uid);
    return ids;
  }

  private one2manyCommands(model: ModelDefinition, name: string, field: FieldDefinition, parentId: number, value: unknown): void {
    const comodel = modelNamed(field.relation as string);
    if (!comodel || !field.inverse) throw applicationError(`ValueError: Invalid field '${name}' on model '${model.name}'`);
    const inverse = field.inverse;
    for (const command of commandList(value)) {
      const [code, id, payload] = command;
      switch (code) {
        case 0: this.create(comodel, { ...asVals(payload), [inverse]: parentId }); break;
        case 1: this.write(comodel, [id as number], payload); break;
        case 2: case 3: this.unlink(comodel, [id as number]); break;
        case 4: this.write(comodel, [id as number], { [inverse]: parentId }); break;
        case 5: this.unlink(comodel, this.lineIds(field, parentId)); break;
        case 6: {
          const keep = new Set(Array.isArray(payload) ? (payload as number[]) : []);
          const drop = this.lineIds(field, parentId).filter((lineId) => !keep.has(lineId));
          if (drop.length > 0) this.unlink(comodel, drop);
          for (const lineId of keep) this.write(comodel, [lineId], { [inverse]: parentId });
          break;
        }
        default: throw applicationError(`ValueError: Invalid one2many command ${JSON.stringify(command)} for ${field.string}`);
      }
    }
  }

  private checkRequired(model: ModelDefinition, row: Row): void {
    for (const [name, field] of Object.entries(model.fields)) {
      if (!field.required || field.computed) continue;
      const value = row[name];
      if (value === null || value === undefined || value === false) {
        // The import names one missing field per call; a plain create hits PostgreSQL's NOT NULL.
        if (this.importing) throw userError(`Missing required value for the field '${field.string}' (${name})`);
        throw notNullViolation(model.description, model.name, field.string, name);
      }
    }
  }

  /** SQL unique constraints, checked through the index of their last (most selective) field. */
  private checkUnique(model: ModelDefinition, row: Row): void {
    for (const [constraint, fields] of Object.entries(model.unique ?? {})) {
      const last = fields[fields.length - 1] as string;
      const clash = this.rowsWhere(model.name, last, [(row[last] ?? null) as IndexKey])
        .some((other) => other.id !== row.id && fields.every((field) => other[field] === row[field]));
      if (clash) {
        throw duplicateKey(constraint, `Key (${fields.join(', ')})=(${fields.map((field) => String(row[field])).join(', ')}) already exists.`);
      }
    }
  }

  // ---- business methods -------------------------------------------------------------------------

  private messagePost(model: ModelDefinition, ids: readonly number[], args: Kwargs): number {
    if (!model.mailThread) throw applicationError(`AttributeError: The method '${model.name}.message_post' does not exist`);
    if (ids.length !== 1) throw applicationError(`ValueError: Expected singleton: ${model.name}(${ids.join(', ')}${ids.length === 1 ? ',' : ''})`);
    const resId = ids[0] as number;
    if (!this.row(model.name, resId)) throw missingError(model.name, [resId], this.session.uid);
    const messageModel = modelNamed('mail.message') as ModelDefinition;
    return this.create(messageModel, {
      model: model.name,
      res_id: resId,
      body: typeof args.body === 'string' ? args.body : '',
      subject: typeof args.subject === 'string' ? args.subject : false,
      message_type: typeof args.message_type === 'string' ? args.message_type : 'notification',
      author_id: typeof args.author_id === 'number' ? args.author_id : this.session.authorPartnerId ?? false,
    });
  }

  private actionPost(model: ModelDefinition, ids: readonly number[]): false {
    if (model.name !== 'account.move') throw applicationError(`AttributeError: The method '${model.name}.action_post' does not exist`);
    for (const id of ids) {
      const move = this.row(model.name, id);
      if (!move) throw missingError(model.name, [id], this.session.uid);
      if (move.state !== 'draft') throw userError(`The entry ${String(move.name)} (id ${id}) is already posted.`);
      const isInvoice = move.move_type !== 'entry';
      if (isInvoice && typeof move.partner_id !== 'number') {
        throw userError(`The field 'Customer' is required, please complete it to validate the ${selectionLabel(model, 'move_type', move.move_type ?? null)}.`);
      }
      const lines = this.lineIds(model.fields.invoice_line_ids as FieldDefinition, id);
      if (lines.length === 0) throw userError('You need to add a line before posting.');
      const prefix = ({ out_invoice: 'INV', out_refund: 'RINV', in_invoice: 'BILL', in_refund: 'RBILL', entry: 'MISC' } as Record<string, string>)[String(move.move_type)] ?? 'MISC';
      const year = String(move.invoice_date ?? move.date).slice(0, 4);
      const number = this.txn.store.nextNumber(`${model.name}/${prefix}/${year}`);
      this.txn.update(model.name, id, {
        state: 'posted', name: `${prefix}/${year}/${String(number).padStart(5, '0')}`,
        invoice_date: move.invoice_date ?? (move.move_type === 'entry' ? null : move.date ?? null), write_date: this.txn.now, write_uid: this.session.uid,
      });
    }
    return false;
  }

  private actionConfirm(model: ModelDefinition, ids: readonly number[]): true {
    if (model.name !== 'sale.order') throw applicationError(`AttributeError: The method '${model.name}.action_confirm' does not exist`);
    for (const id of ids) {
      const order = this.row(model.name, id);
      if (!order) throw missingError(model.name, [id], this.session.uid);
      if (order.state !== 'draft' && order.state !== 'sent') {
        throw userError(`Some orders are not in a state requiring confirmation.`);
      }
      this.txn.update(model.name, id, { state: 'sale', write_date: this.txn.now, write_uid: this.session.uid });
    }
    return true;
  }

  private setActive(model: ModelDefinition, ids: readonly number[], active: boolean): true {
    if (!('active' in model.fields)) throw applicationError(`AttributeError: The method '${model.name}.action_archive' does not exist`);
    return this.write(model, ids, { active });
  }
}

// ---- value helpers ------------------------------------------------------------------------------

/** Epoch microseconds as Odoo puts a datetime on the wire: UTC, truncated to the second. */
export function microsToOdoo(micros: number): string {
  return new Date(Math.floor(micros / 1000)).toISOString().slice(0, 19).replace('T', ' ');
}

function toDatetimeMicros(value: unknown): number {
  if (typeof value !== 'string') throw applicationError(`TypeError: object of type '${pythonType(value)}' has no len()`);
  // Odoo 17's Datetime.to_datetime: the first 19 characters, parsed with '%Y-%m-%d %H:%M:%S'.
  const text = value.length === 10 ? `${value} 00:00:00` : value.slice(0, 19);
  if (!/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/.test(text)) {
    throw applicationError(`ValueError: time data '${text}' does not match format '%Y-%m-%d %H:%M:%S'`);
  }
  return toMicros(text);
}

function toDate(value: unknown): string {
  if (typeof value !== 'string') throw applicationError(`TypeError: object of type '${pythonType(value)}' has no len()`);
  const text = value.slice(0, 10);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) throw applicationError(`ValueError: time data '${text}' does not match format '%Y-%m-%d'`);
  return text;
}

function toInteger(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return Math.trunc(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value)) return Number.parseInt(value, 10);
  throw applicationError(`ValueError: invalid literal for int() with base 10: '${String(value)}'`);
}

function toFloat(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value)) return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw applicationError(`ValueError: could not convert string to float: '${String(value)}'`);
}

function pythonType(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'boolean') return 'bool';
  if (Array.isArray(value)) return 'list';
  if (value === null) return 'NoneType';
  return 'dict';
}

function lineSubtotal(line: Row): number {
  const quantity = Number(line.quantity ?? line.product_uom_qty ?? 0);
  const discount = Number(line.discount ?? 0);
  return quantity * Number(line.price_unit ?? 0) * (1 - discount / 100);
}

/** Currency rounding (2 places), as Odoo rounds monetary amounts. */
function money(value: number): number {
  return Math.round((value + Number.EPSILON) * 100) / 100;
}

function sameStored(a: StoredValue, b: StoredValue): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return JSON.stringify(a) === JSON.stringify(b);
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) < 1e-9;
  return (a ?? null) === (b ?? null);
}

function table(model: string): string {
  return model.replace(/\./g, '_');
}

function selectionLabel(model: ModelDefinition, field: string, value: StoredValue): string {
  return model.fields[field]?.selection?.find(([key]) => key === value)?.[1] ?? String(value);
}

function asVals(vals: unknown): Record<string, unknown> {
  if (vals === null || typeof vals !== 'object' || Array.isArray(vals)) {
    throw applicationError(`AttributeError: '${pythonType(vals)}' object has no attribute 'items'`);
  }
  return vals as Record<string, unknown>;
}

function idList(ids: unknown): number[] {
  if (typeof ids === 'number') return [ids];
  if (Array.isArray(ids) && ids.every((id) => typeof id === 'number')) return ids as number[];
  throw applicationError(`TypeError: unhashable type: '${pythonType(ids)}'`);
}

/** x2many commands; a bare list of ids means "replace with these" (command 6). */
function commandList(value: unknown): Array<[number, unknown, unknown]> {
  if (value === false || value === null) return [[5, 0, 0]];
  if (!Array.isArray(value)) throw applicationError(`ValueError: Wrong value for x2many field: ${JSON.stringify(value)}`);
  if (value.every((item) => typeof item === 'number')) return [[6, 0, value]];
  return value.map((item) => {
    if (!Array.isArray(item) || typeof item[0] !== 'number') throw applicationError(`ValueError: Invalid x2many command ${JSON.stringify(item)}`);
    return [item[0], item[1], item[2]];
  });
}
