/**
 * The models the simulator serves, with Odoo 17's field names, types and labels for the fields
 * Lifeline's flows use (a subset of each real model). Computed fields are derived on read.
 */
export type FieldType =
  | 'char' | 'text' | 'html' | 'integer' | 'float' | 'monetary' | 'boolean' | 'date' | 'datetime'
  | 'selection' | 'many2one' | 'one2many' | 'many2many' | 'many2one_reference';

export interface FieldDefinition {
  readonly type: FieldType;
  readonly string: string;
  readonly required?: boolean;
  readonly readonly?: boolean;
  /** Comodel of relational fields. */
  readonly relation?: string;
  /** For one2many: the many2one on the comodel pointing back. */
  readonly inverse?: string;
  readonly selection?: ReadonlyArray<readonly [string, string]>;
  /** A default for create (a function is called per record). */
  readonly default?: StoredValue | ((now: number) => StoredValue);
  /** Not stored: derived on read (and usable in domains and order). */
  readonly computed?: boolean;
  /** `tracking=True`: a change is logged in the chatter as mail.tracking.value rows under a mail.message. */
  readonly tracking?: boolean;
  /** Set on create only: writing it on an existing record is refused with this text (fault 2). */
  readonly createOnly?: string;
}

/** Stored values: datetimes as epoch microseconds, dates as 'YYYY-MM-DD', many2one as an id. */
export type StoredValue = string | number | boolean | null | readonly number[];

export interface ModelDefinition {
  readonly name: string;
  /** `_description`, used in Odoo's messages. */
  readonly description: string;
  /** `_order`. */
  readonly order: string;
  readonly fields: Readonly<Record<string, FieldDefinition>>;
  /** Models inheriting mail.thread accept message_post. */
  readonly mailThread?: boolean;
  /** How display_name is derived (default: the `name` field). */
  readonly displayName?: (row: Readonly<Record<string, StoredValue>>) => string;
  /** A sequence that numbers new records (`name` default), e.g. S00001. */
  readonly sequence?: { readonly field: string; readonly prefix: string; readonly padding: number };
  /** SQL unique constraints: name → the fields that are unique together (backed by an index). */
  readonly unique?: Readonly<Record<string, readonly string[]>>;
}

const today = (now: number): string => new Date(Math.floor(now / 1000)).toISOString().slice(0, 10);

/** Fields every model has (models.Model's magic fields). */
export const MAGIC_FIELDS: Readonly<Record<string, FieldDefinition>> = {
  id: { type: 'integer', string: 'ID', readonly: true },
  display_name: { type: 'char', string: 'Display Name', readonly: true, computed: true },
  create_date: { type: 'datetime', string: 'Created on', readonly: true },
  create_uid: { type: 'many2one', string: 'Created by', relation: 'res.users', readonly: true },
  write_date: { type: 'datetime', string: 'Last Updated on', readonly: true },
  write_uid: { type: 'many2one', string: 'Last Updated by', relation: 'res.users', readonly: true },
};

const selection = (...pairs: Array<[string, string]>): ReadonlyArray<readonly [string, string]> => pairs;

export const MODELS: readonly ModelDefinition[] = [
  {
    name: 'res.users', description: 'User', order: 'name, login',
    fields: {
      name: { type: 'char', string: 'Name', required: true },
      login: { type: 'char', string: 'Login', required: true },
      email: { type: 'char', string: 'Email' },
      active: { type: 'boolean', string: 'Active', default: true },
      partner_id: { type: 'many2one', string: 'Related Partner', relation: 'res.partner' },
      groups_id: { type: 'many2many', string: 'Groups', relation: 'res.groups' },
    },
    unique: { res_users_login_key: ['login'] },
  },
  {
    name: 'res.groups', description: 'Access Groups', order: 'name',
    fields: {
      name: { type: 'char', string: 'Name', required: true },
      full_name: { type: 'char', string: 'Group Name' },
    },
    displayName: (row) => String(row.full_name ?? row.name ?? ''),
  },
  {
    name: 'res.currency', description: 'Currency', order: 'active desc, name',
    fields: {
      name: { type: 'char', string: 'Currency', required: true },
      symbol: { type: 'char', string: 'Symbol', required: true },
      decimal_places: { type: 'integer', string: 'Decimal Places', default: 2 },
      active: { type: 'boolean', string: 'Active', default: true },
    },
  },
  {
    name: 'res.partner', description: 'Contact', order: 'complete_name ASC, id DESC', mailThread: true,
    fields: {
      name: { type: 'char', string: 'Name', required: true },
      complete_name: { type: 'char', string: 'Complete Name', computed: true },
      ref: { type: 'char', string: 'Reference' },
      is_company: { type: 'boolean', string: 'Is a Company', default: false },
      parent_id: { type: 'many2one', string: 'Related Company', relation: 'res.partner' },
      email: { type: 'char', string: 'Email' },
      phone: { type: 'char', string: 'Phone' },
      street: { type: 'char', string: 'Street' },
      city: { type: 'char', string: 'City' },
      zip: { type: 'char', string: 'Zip' },
      vat: { type: 'char', string: 'Tax ID' },
      comment: { type: 'html', string: 'Notes' },
      lang: { type: 'selection', string: 'Language', selection: selection(['en_US', 'English (US)'], ['fr_FR', 'French']), default: 'en_US' },
      customer_rank: { type: 'integer', string: 'Customer Rank', default: 0 },
      supplier_rank: { type: 'integer', string: 'Supplier Rank', default: 0 },
      active: { type: 'boolean', string: 'Active', default: true },
    },
  },
  {
    name: 'product.product', description: 'Product Variant', order: 'default_code, name, id', mailThread: true,
    fields: {
      name: { type: 'char', string: 'Name', required: true },
      default_code: { type: 'char', string: 'Internal Reference' },
      barcode: { type: 'char', string: 'Barcode' },
      type: { type: 'selection', string: 'Product Type', selection: selection(['consu', 'Consumable'], ['service', 'Service'], ['product', 'Storable Product']), default: 'consu', required: true },
      list_price: { type: 'float', string: 'Sales Price', default: 1 },
      standard_price: { type: 'float', string: 'Cost', default: 0 },
      uom_name: { type: 'char', string: 'Unit of Measure Name', default: 'Units' },
      description_sale: { type: 'text', string: 'Sales Description' },
      supplier_taxes_id: { type: 'many2many', string: 'Vendor Taxes', relation: 'account.tax' },
      active: { type: 'boolean', string: 'Active', default: true },
    },
  },
  {
    name: 'account.tax', description: 'Tax', order: 'sequence,id',
    fields: {
      name: { type: 'char', string: 'Tax Name', required: true },
      amount: { type: 'float', string: 'Amount', default: 0 },
      type_tax_use: { type: 'selection', string: 'Tax Type', selection: selection(['sale', 'Sales'], ['purchase', 'Purchases'], ['none', 'None']), default: 'sale', required: true },
      sequence: { type: 'integer', string: 'Sequence', default: 1 },
      active: { type: 'boolean', string: 'Active', default: true },
    },
  },
  {
    name: 'sale.order', description: 'Sales Order', order: 'date_order desc, id desc', mailThread: true,
    sequence: { field: 'name', prefix: 'S', padding: 5 },
    fields: {
      name: { type: 'char', string: 'Order Reference', required: true, default: 'New' },
      partner_id: { type: 'many2one', string: 'Customer', relation: 'res.partner', required: true },
      client_order_ref: { type: 'char', string: 'Customer Reference' },
      origin: { type: 'char', string: 'Source Document' },
      date_order: { type: 'datetime', string: 'Order Date', required: true, default: (now) => now },
      state: { type: 'selection', string: 'Status', selection: selection(['draft', 'Quotation'], ['sent', 'Quotation Sent'], ['sale', 'Sales Order'], ['cancel', 'Cancelled']), default: 'draft' },
      currency_id: { type: 'many2one', string: 'Currency', relation: 'res.currency', default: 1 },
      order_line: { type: 'one2many', string: 'Order Lines', relation: 'sale.order.line', inverse: 'order_id' },
      amount_untaxed: { type: 'monetary', string: 'Untaxed Amount', computed: true },
      amount_tax: { type: 'monetary', string: 'Taxes', computed: true },
      amount_total: { type: 'monetary', string: 'Total', computed: true },
      note: { type: 'html', string: 'Terms and conditions' },
    },
  },
  {
    name: 'sale.order.line', description: 'Sales Order Line', order: 'order_id, sequence, id',
    fields: {
      order_id: { type: 'many2one', string: 'Order Reference', relation: 'sale.order', required: true },
      sequence: { type: 'integer', string: 'Sequence', default: 10 },
      product_id: { type: 'many2one', string: 'Product', relation: 'product.product' },
      name: { type: 'text', string: 'Description', required: true },
      product_uom_qty: { type: 'float', string: 'Quantity', default: 1 },
      price_unit: { type: 'float', string: 'Unit Price', default: 0 },
      tax_id: { type: 'many2many', string: 'Taxes', relation: 'account.tax' },
      price_subtotal: { type: 'monetary', string: 'Subtotal', computed: true },
    },
    displayName: (row) => String(row.name ?? ''),
  },
  {
    name: 'account.move', description: 'Journal Entry', order: 'date desc, name desc, id desc', mailThread: true,
    fields: {
      name: { type: 'char', string: 'Number', default: '/' },
      move_type: {
        type: 'selection', string: 'Type', required: true, default: 'entry',
        selection: selection(['entry', 'Journal Entry'], ['out_invoice', 'Customer Invoice'], ['out_refund', 'Customer Credit Note'], ['in_invoice', 'Vendor Bill'], ['in_refund', 'Vendor Credit Note']),
      },
      partner_id: { type: 'many2one', string: 'Partner', relation: 'res.partner', tracking: true },
      ref: { type: 'char', string: 'Reference', tracking: true },
      invoice_origin: { type: 'char', string: 'Origin' },
      date: { type: 'date', string: 'Date', required: true, default: today },
      invoice_date: { type: 'date', string: 'Invoice/Bill Date', tracking: true },
      invoice_date_due: { type: 'date', string: 'Due Date', tracking: true },
      state: { type: 'selection', string: 'Status', selection: selection(['draft', 'Draft'], ['posted', 'Posted'], ['cancel', 'Cancelled']), default: 'draft', required: true, tracking: true },
      payment_state: { type: 'selection', string: 'Payment Status', selection: selection(['not_paid', 'Not Paid'], ['in_payment', 'In Payment'], ['paid', 'Paid'], ['partial', 'Partially Paid']), default: 'not_paid' },
      currency_id: { type: 'many2one', string: 'Currency', relation: 'res.currency', default: 1, required: true },
      invoice_line_ids: { type: 'one2many', string: 'Invoice lines', relation: 'account.move.line', inverse: 'move_id' },
      amount_untaxed: { type: 'monetary', string: 'Untaxed Amount', computed: true },
      amount_tax: { type: 'monetary', string: 'Tax', computed: true },
      amount_total: { type: 'monetary', string: 'Total', computed: true, tracking: true },
      amount_residual: { type: 'monetary', string: 'Amount Due', computed: true },
      narration: { type: 'html', string: 'Terms and Conditions' },
      // A custom field (Settings → Technical → Fields, or `lifeline odoo seed`): the version of the event that last wrote the record.
      x_lifeline_version: { type: 'char', string: 'Lifeline version' },
    },
    displayName: (row) => (row.name && row.name !== '/' ? String(row.name) : `Draft Invoice (* ${String(row.id)})`),
  },
  {
    name: 'account.move.line', description: 'Journal Item', order: 'date desc, move_name desc, id',
    fields: {
      move_id: { type: 'many2one', string: 'Journal Entry', relation: 'account.move', required: true },
      move_name: { type: 'char', string: 'Number', computed: true },
      date: { type: 'date', string: 'Date', computed: true },
      product_id: { type: 'many2one', string: 'Product', relation: 'product.product' },
      name: { type: 'char', string: 'Label' },
      quantity: { type: 'float', string: 'Quantity', default: 1 },
      price_unit: { type: 'float', string: 'Unit Price', default: 0 },
      discount: { type: 'float', string: 'Discount (%)', default: 0 },
      tax_ids: { type: 'many2many', string: 'Taxes', relation: 'account.tax' },
      price_subtotal: { type: 'monetary', string: 'Subtotal', computed: true },
      price_total: { type: 'monetary', string: 'Total', computed: true },
    },
    displayName: (row) => String(row.name ?? ''),
  },
  {
    name: 'stock.picking', description: 'Transfer', order: 'priority desc, scheduled_date asc, id desc', mailThread: true,
    sequence: { field: 'name', prefix: 'WH/OUT/', padding: 5 },
    fields: {
      name: { type: 'char', string: 'Reference', default: '/' },
      partner_id: { type: 'many2one', string: 'Contact', relation: 'res.partner', tracking: true },
      origin: { type: 'char', string: 'Source Document', tracking: true },
      location_id: { type: 'many2one', string: 'Source Location', relation: 'stock.location', required: true },
      location_dest_id: { type: 'many2one', string: 'Destination Location', relation: 'stock.location', required: true },
      picking_type_id: {
        type: 'many2one', string: 'Operation Type', relation: 'stock.picking.type', required: true,
        createOnly: 'Changing the operation type of this record is forbidden at this point.',
      },
      // A related field (picking_type_id.code): read-only, ignored on create.
      picking_type_code: { type: 'selection', string: 'Type of Operation', selection: selection(['incoming', 'Receipt'], ['outgoing', 'Delivery'], ['internal', 'Internal Transfer']), computed: true },
      priority: { type: 'selection', string: 'Priority', selection: selection(['0', 'Normal'], ['1', 'Urgent']), default: '0' },
      scheduled_date: { type: 'datetime', string: 'Scheduled Date', required: true, default: (now) => now, tracking: true },
      date_done: { type: 'datetime', string: 'Date of Transfer' },
      state: { type: 'selection', string: 'Status', selection: selection(['draft', 'Draft'], ['waiting', 'Waiting Another Operation'], ['confirmed', 'Waiting'], ['assigned', 'Ready'], ['done', 'Done'], ['cancel', 'Cancelled']), default: 'draft', tracking: true },
      note: { type: 'html', string: 'Notes' },
      move_ids: { type: 'one2many', string: 'Stock moves', relation: 'stock.move', inverse: 'picking_id' },
      x_lifeline_version: { type: 'char', string: 'Lifeline version' },
    },
  },
  {
    name: 'stock.move', description: 'Stock Move', order: 'sequence, id',
    fields: {
      picking_id: { type: 'many2one', string: 'Transfer', relation: 'stock.picking' },
      sequence: { type: 'integer', string: 'Sequence', default: 10 },
      name: { type: 'char', string: 'Description', required: true },
      product_id: { type: 'many2one', string: 'Product', relation: 'product.product', required: true },
      location_id: { type: 'many2one', string: 'Source Location', relation: 'stock.location', required: true },
      location_dest_id: { type: 'many2one', string: 'Destination Location', relation: 'stock.location', required: true },
      product_uom_qty: { type: 'float', string: 'Demand', default: 1 },
      quantity: { type: 'float', string: 'Quantity', default: 0 },
      state: { type: 'selection', string: 'Status', selection: selection(['draft', 'New'], ['confirmed', 'Waiting Availability'], ['assigned', 'Available'], ['done', 'Done'], ['cancel', 'Cancelled']), default: 'draft' },
    },
    displayName: (row) => String(row.name ?? ''),
  },
  {
    name: 'stock.location', description: 'Inventory Locations', order: 'complete_name, id',
    fields: {
      name: { type: 'char', string: 'Location Name', required: true },
      complete_name: { type: 'char', string: 'Full Location Name' },
      usage: { type: 'selection', string: 'Location Type', selection: selection(['supplier', 'Vendor Location'], ['view', 'View'], ['internal', 'Internal Location'], ['customer', 'Customer Location'], ['inventory', 'Inventory Loss']), default: 'internal', required: true },
      active: { type: 'boolean', string: 'Active', default: true },
    },
    displayName: (row) => String(row.complete_name ?? row.name ?? ''),
  },
  {
    name: 'stock.picking.type', description: 'Picking Type', order: 'sequence, id',
    fields: {
      name: { type: 'char', string: 'Operation Type', required: true },
      code: { type: 'selection', string: 'Type of Operation', selection: selection(['incoming', 'Receipt'], ['outgoing', 'Delivery'], ['internal', 'Internal Transfer']), required: true },
      sequence: { type: 'integer', string: 'Sequence', default: 1 },
      default_location_src_id: { type: 'many2one', string: 'Default Source Location', relation: 'stock.location' },
      default_location_dest_id: { type: 'many2one', string: 'Default Destination Location', relation: 'stock.location' },
      active: { type: 'boolean', string: 'Active', default: true },
    },
  },
  {
    name: 'ir.model', description: 'Models', order: 'model',
    fields: {
      model: { type: 'char', string: 'Model', required: true },
      name: { type: 'char', string: 'Model Description', required: true },
    },
  },
  {
    name: 'ir.model.data', description: 'Model Data', order: 'module, model, name',
    fields: {
      module: { type: 'char', string: 'Module', required: true },
      name: { type: 'char', string: 'External Identifier', required: true },
      model: { type: 'char', string: 'Model Name', required: true },
      res_id: { type: 'many2one_reference', string: 'Record ID' },
      complete_name: { type: 'char', string: 'Complete ID', computed: true },
      noupdate: { type: 'boolean', string: 'Non Updatable', default: false },
    },
    unique: { ir_model_data_module_name_uniq_index: ['module', 'name'] },
    displayName: (row) => `${String(row.module)}.${String(row.name)}`,
  },
  {
    name: 'mail.message', description: 'Message', order: 'id desc',
    fields: {
      model: { type: 'char', string: 'Related Document Model' },
      res_id: { type: 'many2one_reference', string: 'Related Document ID' },
      body: { type: 'html', string: 'Contents', default: '' },
      subject: { type: 'char', string: 'Subject' },
      message_type: { type: 'selection', string: 'Type', selection: selection(['email', 'Email'], ['comment', 'Comment'], ['notification', 'System notification']), default: 'comment', required: true },
      author_id: { type: 'many2one', string: 'Author', relation: 'res.partner' },
      date: { type: 'datetime', string: 'Date', default: (now) => now },
      tracking_value_ids: { type: 'one2many', string: 'Tracking values', relation: 'mail.tracking.value', inverse: 'mail_message_id' },
    },
    displayName: (row) => String(row.subject ?? row.body ?? ''),
  },
  {
    name: 'mail.tracking.value', description: 'Mail Tracking Value', order: 'id DESC',
    fields: {
      field_id: { type: 'many2one', string: 'Changed Field', relation: 'ir.model.fields', required: true },
      old_value_char: { type: 'char', string: 'Old Value Char' },
      new_value_char: { type: 'char', string: 'New Value Char' },
      old_value_float: { type: 'float', string: 'Old Value Float' },
      new_value_float: { type: 'float', string: 'New Value Float' },
      old_value_integer: { type: 'integer', string: 'Old Value Integer' },
      new_value_integer: { type: 'integer', string: 'New Value Integer' },
      mail_message_id: { type: 'many2one', string: 'Message ID', relation: 'mail.message', required: true },
    },
  },
  {
    name: 'ir.model.fields', description: 'Fields', order: 'name',
    fields: {
      model_id: { type: 'many2one', string: 'Model', relation: 'ir.model' },
      model: { type: 'char', string: 'Model Name', required: true },
      name: { type: 'char', string: 'Field Name', required: true },
      field_description: { type: 'char', string: 'Field Label', required: true },
      ttype: { type: 'char', string: 'Field Type', required: true },
      relation: { type: 'char', string: 'Related Model' },
      required: { type: 'boolean', string: 'Required', default: false },
      tracking: { type: 'integer', string: 'Enable Ordered Tracking', default: 0 },
    },
    unique: { ir_model_fields_name_unique: ['model', 'name'] },
  },
  {
    name: 'mail.activity', description: 'Activity', order: 'date_deadline ASC, id ASC',
    fields: {
      res_model_id: { type: 'many2one', string: 'Document Model', relation: 'ir.model', required: true },
      res_model: { type: 'char', string: 'Related Document Model', computed: true },
      res_id: { type: 'many2one_reference', string: 'Related Document ID', required: true },
      summary: { type: 'char', string: 'Summary' },
      note: { type: 'html', string: 'Note' },
      user_id: { type: 'many2one', string: 'Assigned to', relation: 'res.users' },
      date_deadline: { type: 'date', string: 'Due Date', required: true, default: today },
    },
    displayName: (row) => String(row.summary ?? ''),
  },
];

const BY_NAME = new Map(MODELS.map((model) => [model.name, model]));
const ALL_FIELDS = new Map<ModelDefinition, Readonly<Record<string, FieldDefinition>>>();

export function modelNamed(name: string): ModelDefinition | undefined {
  return BY_NAME.get(name);
}

/** A model's fields including the magic ones: computed once per model (reads ask for them per value). */
export function fieldsOf(model: ModelDefinition): Readonly<Record<string, FieldDefinition>> {
  let all = ALL_FIELDS.get(model);
  if (!all) {
    all = Object.freeze({ ...MAGIC_FIELDS, ...model.fields });
    ALL_FIELDS.set(model, all);
  }
  return all;
}
