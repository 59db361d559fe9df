import { GROUPS, fullName } from './access-rights.ts';
import { MODELS, fieldsOf, modelNamed, type ModelDefinition } from './model-definitions.ts';
import { FailureSwitches } from './failure-switches.ts';
import { Orm } from './orm.ts';
import type { RecordStore } from './record-store.ts';

/**
 * A believable starting database for a mid-size US health system: its company, payers, reference
 * labs, pharmacies and medical suppliers as partners (with `ref` codes the flows match on),
 * CPT-coded lab services and supplies as products, a few invoices, orders and deliveries.
 * Ids start where a fresh Odoo leaves them (partners at 7 after the company, OdooBot and admin).
 */
export interface SimulatorUser {
  readonly uid: number;
  readonly login: string;
  readonly name: string;
  readonly password: string;
  /** API keys (Odoo 14+): accepted wherever the password is. */
  readonly apiKeys: readonly string[];
  /** External ids of the user's groups (access rights follow them). */
  readonly groups: readonly string[];
  readonly partnerId: number;
}

/**
 * The least-privileged integration user Lifeline's golden path needs (docs/odoo.md): internal user,
 * contact creation (activities on partners need write on them), billing (vendor bills), inventory
 * user (receipts) and sales user on all documents (the sales-order source reads every order; "own
 * documents only" would see only the user's). No Settings, no technical rights.
 */
export const INTEGRATION_GROUPS: readonly string[] = [
  'base.group_user', 'base.group_partner_manager', 'account.group_account_invoice', 'stock.group_stock_user', 'sales_team.group_sale_salesman_all_leads',
];

export const SIMULATOR_API_KEY = 'lifeline-simulator-api-key';

export const SIMULATOR_USERS: readonly SimulatorUser[] = [
  { uid: 2, login: 'admin', name: 'Mitchell Admin', password: 'admin', apiKeys: [], groups: GROUPS.map((group) => group.xmlid), partnerId: 3 },
  { uid: 6, login: 'lifeline', name: 'Lifeline Integration', password: 'lifeline', apiKeys: [SIMULATOR_API_KEY], groups: INTEGRATION_GROUPS, partnerId: 5 },
  { uid: 7, login: 'auditor', name: 'Compliance Auditor', password: 'auditor', apiKeys: [], groups: ['base.group_user', 'account.group_account_readonly'], partnerId: 6 },
];

export const PARTNERS: ReadonlyArray<Record<string, string | boolean | number>> = [
  // Payers
  { name: 'Medicare Part B (Novitas Solutions)', ref: 'PAYER-MCR-B', is_company: true, city: 'Mechanicsburg', zip: '17050', email: 'edi@novitas.example', phone: '+1 855-555-0101', customer_rank: 1 },
  { name: 'Blue Cross Blue Shield of Illinois', ref: 'PAYER-BCBS-IL', is_company: true, city: 'Chicago', zip: '60601', email: 'claims@bcbsil.example', phone: '+1 800-555-0102', customer_rank: 1 },
  { name: 'Aetna Better Health', ref: 'PAYER-AETNA', is_company: true, city: 'Hartford', zip: '06156', email: 'providers@aetna.example', phone: '+1 866-555-0103', customer_rank: 1 },
  { name: 'UnitedHealthcare Community Plan', ref: 'PAYER-UHC-CP', is_company: true, city: 'Minnetonka', zip: '55343', email: 'edi@uhc.example', phone: '+1 877-555-0104', customer_rank: 1 },
  { name: 'Humana Gold Plus (HMO)', ref: 'PAYER-HUMANA', is_company: true, city: 'Louisville', zip: '40202', email: 'claims@humana.example', phone: '+1 800-555-0105', customer_rank: 1 },
  // Reference laboratories
  { name: 'Quest Diagnostics – Wood Dale', ref: 'LAB-QUEST-WD', is_company: true, city: 'Wood Dale', zip: '60191', email: 'results@quest.example', phone: '+1 630-555-0201', supplier_rank: 1 },
  { name: 'Labcorp Burlington', ref: 'LAB-LABCORP-BUR', is_company: true, city: 'Burlington', zip: '27215', email: 'hl7@labcorp.example', phone: '+1 336-555-0202', supplier_rank: 1 },
  { name: 'Mayo Clinic Laboratories', ref: 'LAB-MAYO', is_company: true, city: 'Rochester', zip: '55905', email: 'mcl@mayo.example', phone: '+1 507-555-0203', supplier_rank: 1 },
  { name: 'ARUP Laboratories', ref: 'LAB-ARUP', is_company: true, city: 'Salt Lake City', zip: '84108', email: 'clientservices@arup.example', phone: '+1 801-555-0204', supplier_rank: 1 },
  // Pharmacies
  { name: 'CVS Specialty Pharmacy', ref: 'RX-CVS-SP', is_company: true, city: 'Woonsocket', zip: '02895', email: 'specialty@cvs.example', phone: '+1 800-555-0301', supplier_rank: 1 },
  { name: 'Walgreens #04512', ref: 'RX-WAG-04512', is_company: true, city: 'Naperville', zip: '60540', email: 'store04512@walgreens.example', phone: '+1 630-555-0302', supplier_rank: 1 },
  { name: 'Optum Rx Home Delivery', ref: 'RX-OPTUM-HD', is_company: true, city: 'Carlsbad', zip: '92008', email: 'homedelivery@optum.example', phone: '+1 888-555-0303', supplier_rank: 1 },
  // Medical suppliers
  { name: 'McKesson Medical-Surgical', ref: 'SUP-MCKESSON', is_company: true, city: 'Richmond', zip: '23233', email: 'orders@mckesson.example', phone: '+1 800-555-0401', supplier_rank: 1 },
  { name: 'Cardinal Health', ref: 'SUP-CARDINAL', is_company: true, city: 'Dublin', zip: '43017', email: 'orders@cardinal.example', phone: '+1 614-555-0402', supplier_rank: 1 },
  { name: 'Medline Industries', ref: 'SUP-MEDLINE', is_company: true, city: 'Northfield', zip: '60093', email: 'orders@medline.example', phone: '+1 800-555-0403', supplier_rank: 1 },
  { name: 'Henry Schein Medical', ref: 'SUP-SCHEIN', is_company: true, city: 'Melville', zip: '11747', email: 'orders@schein.example', phone: '+1 800-555-0404', supplier_rank: 1 },
];

export const PRODUCTS: ReadonlyArray<Record<string, string | number>> = [
  { name: 'Comprehensive metabolic panel (CPT 80053)', default_code: 'CPT-80053', type: 'service', list_price: 14.49 },
  { name: 'CBC with automated differential (CPT 85025)', default_code: 'CPT-85025', type: 'service', list_price: 10.66 },
  { name: 'Hemoglobin A1c (CPT 83036)', default_code: 'CPT-83036', type: 'service', list_price: 13.32 },
  { name: 'Lipid panel (CPT 80061)', default_code: 'CPT-80061', type: 'service', list_price: 18.29 },
  { name: 'SARS-CoV-2 amplified probe (CPT 87635)', default_code: 'CPT-87635', type: 'service', list_price: 51.31 },
  { name: 'Venipuncture (CPT 36415)', default_code: 'CPT-36415', type: 'service', list_price: 3 },
  { name: 'Office visit, established patient, level 3 (CPT 99213)', default_code: 'CPT-99213', type: 'service', list_price: 92.47 },
  { name: 'Nitrile exam gloves, medium (box of 100)', default_code: 'SUP-GLV-NIT-M', type: 'product', list_price: 8.95, standard_price: 5.1, barcode: '0885632012341' },
  { name: 'Vacutainer SST tubes 5 mL (100)', default_code: 'SUP-SST-5ML', type: 'product', list_price: 42.5, standard_price: 27.8, barcode: '0382903679745' },
  { name: 'Sterile gauze sponges 4x4 (200)', default_code: 'SUP-GAUZE-4X4', type: 'product', list_price: 12.75, standard_price: 7.2 },
  { name: 'Sharps container 2 gal', default_code: 'SUP-SHARPS-2G', type: 'product', list_price: 6.4, standard_price: 3.35 },
  { name: 'Insulin syringes 0.5 mL 31G (100)', default_code: 'SUP-SYR-INS-05', type: 'product', list_price: 24.9, standard_price: 14.6 },
  { name: 'Alcohol prep pads (200)', default_code: 'SUP-ALC-PREP', type: 'consu', list_price: 4.1, standard_price: 1.95 },
  // Outpatient pharmacy formulary, by NDC (11-digit 5-4-2): what partner pharmacies dispense and bill.
  { name: 'Atorvastatin calcium 20 mg tablet (90)', default_code: 'NDC-00093-5057-98', type: 'product', list_price: 18.6, standard_price: 7.9 },
  { name: 'Metformin HCl 500 mg tablet (180)', default_code: 'NDC-00093-1048-18', type: 'product', list_price: 12.4, standard_price: 4.3 },
  { name: 'Lisinopril 10 mg tablet (90)', default_code: 'NDC-68180-0513-09', type: 'product', list_price: 9.8, standard_price: 3.1 },
  { name: 'Insulin glargine 100 units/mL pen 3 mL (5)', default_code: 'NDC-00088-5020-05', type: 'product', list_price: 412.5, standard_price: 298 },
  { name: 'Albuterol sulfate HFA 90 mcg inhaler', default_code: 'NDC-00173-0682-20', type: 'product', list_price: 62.3, standard_price: 41.75 },
  { name: 'Amoxicillin 500 mg capsule (30)', default_code: 'NDC-65862-0017-30', type: 'product', list_price: 11.2, standard_price: 3.6 },
];

export function seedDatabase(store: RecordStore): void {
  store.clear();
  const txn = store.begin(1);
  const orm = new Orm({ uid: 1, txn, switches: new FailureSwitches(), context: { tracking_disable: true }, groups: new Set(['base.group_system']), authorPartnerId: 2 });
  const model = (name: string): ModelDefinition => modelNamed(name) as ModelDefinition;
  const create = (name: string, vals: Record<string, unknown>): number => orm.create(model(name), vals);
  const externalId = (module: string, name: string, modelName: string, resId: number): void => {
    create('ir.model.data', { module, name, model: modelName, res_id: resId, noupdate: true });
  };

  for (const definition of MODELS) {
    create('ir.model', { model: definition.name, name: definition.description });
    for (const [name, field] of Object.entries(fieldsOf(definition))) {
      create('ir.model.fields', {
        model: definition.name, name, field_description: field.string, ttype: field.type, relation: field.relation ?? false,
        required: field.required ?? false, tracking: field.tracking ? 100 : 0,
      });
    }
  }
  const groupIds = new Map<string, number>();
  for (const group of GROUPS) {
    const id = create('res.groups', { name: group.name, full_name: fullName(group) });
    groupIds.set(group.xmlid, id);
    const [module, name] = group.xmlid.split('.') as [string, string];
    externalId(module, name, 'res.groups', id);
  }
  const usd = create('res.currency', { name: 'USD', symbol: '$', decimal_places: 2 });
  create('res.currency', { name: 'EUR', symbol: '€', decimal_places: 2, active: false });
  externalId('base', 'USD', 'res.currency', usd);

  const company = create('res.partner', { name: "St. Mary's Health Network", is_company: true, city: 'Springfield', zip: '62701', email: 'finance@stmarys.example', vat: '37-1234567' });
  create('res.partner', { name: 'OdooBot', active: false, email: 'odoobot@stmarys.example' });
  const adminPartner = create('res.partner', { name: 'Mitchell Admin', parent_id: company, email: 'admin@stmarys.example' });
  store.reserveIdsBelow('res.partner', 5);
  create('res.partner', { name: 'Lifeline Integration', parent_id: company, email: 'lifeline@stmarys.example' });
  create('res.partner', { name: 'Compliance Auditor', parent_id: company, email: 'audit@stmarys.example' });
  externalId('base', 'main_partner', 'res.partner', company);
  externalId('base', 'partner_admin', 'res.partner', adminPartner);

  store.reserveIdsBelow('res.users', 2);
  for (const user of SIMULATOR_USERS) {
    store.reserveIdsBelow('res.users', user.uid);
    create('res.users', { name: user.name, login: user.login, email: `${user.login}@stmarys.example`, partner_id: user.partnerId, groups_id: user.groups.map((group) => groupIds.get(group) as number) });
  }
  externalId('base', 'user_admin', 'res.users', 2);

  const partnerIds = new Map<string, number>();
  for (const partner of PARTNERS) partnerIds.set(String(partner.ref), create('res.partner', { ...partner }));
  create('res.partner', { name: 'Dana Whitfield', parent_id: partnerIds.get('PAYER-BCBS-IL'), email: 'dana.whitfield@bcbsil.example', phone: '+1 312-555-0187' });
  create('res.partner', { name: 'Ravi Deshmukh', parent_id: partnerIds.get('LAB-QUEST-WD'), email: 'ravi.deshmukh@quest.example', phone: '+1 630-555-0143' });
  create('res.partner', { name: 'Maria Okafor', parent_id: partnerIds.get('SUP-MCKESSON'), email: 'maria.okafor@mckesson.example' });

  // As a fresh database with the generic chart of accounts: a 15 % purchase tax is every product's default vendor tax.
  const exempt = create('account.tax', { name: 'Exempt (0%)', amount: 0, type_tax_use: 'purchase' });
  create('account.tax', { name: 'IL Sales Tax 6.25%', amount: 6.25, sequence: 2 });
  const purchase15 = create('account.tax', { name: '15%', amount: 15, type_tax_use: 'purchase', sequence: 1 });
  externalId('account', '1_purchase_tax_template', 'account.tax', purchase15);
  externalId('account', '1_tax_exempt_purchase', 'account.tax', exempt);
  const productIds = new Map<string, number>();
  for (const product of PRODUCTS) productIds.set(String(product.default_code), create('product.product', { ...product, supplier_taxes_id: [[6, 0, [purchase15]]] }));

  // Warehouse WH: its locations and operation types, with the external ids the stock app gives them.
  const location = (xmlName: string, vals: Record<string, unknown>): number => {
    const id = create('stock.location', vals);
    externalId('stock', xmlName, 'stock.location', id);
    return id;
  };
  const suppliers = location('stock_location_suppliers', { name: 'Vendors', complete_name: 'Partners/Vendors', usage: 'supplier' });
  const customers = location('stock_location_customers', { name: 'Customers', complete_name: 'Partners/Customers', usage: 'customer' });
  const stock = location('stock_location_stock', { name: 'Stock', complete_name: 'WH/Stock', usage: 'internal' });
  const pickingType = (xmlName: string, vals: Record<string, unknown>): number => {
    const id = create('stock.picking.type', vals);
    externalId('stock', xmlName, 'stock.picking.type', id);
    return id;
  };
  const receipts = pickingType('picking_type_in', { name: 'Receipts', code: 'incoming', sequence: 1, default_location_src_id: suppliers, default_location_dest_id: stock });
  const deliveries = pickingType('picking_type_out', { name: 'Delivery Orders', code: 'outgoing', sequence: 2, default_location_src_id: stock, default_location_dest_id: customers });

  const line = (code: string, quantity: number): unknown[] => {
    const product = PRODUCTS.find((item) => item.default_code === code) as Record<string, string | number>;
    return [0, 0, { product_id: productIds.get(code), name: product.name, quantity, price_unit: product.list_price, tax_ids: [[6, 0, [exempt]]] }];
  };
  create('account.move', {
    move_type: 'out_invoice', partner_id: partnerIds.get('PAYER-BCBS-IL'), ref: 'CLM-2026-000184', invoice_date: '2026-01-12', invoice_origin: 'ENC-88213',
    invoice_line_ids: [line('CPT-80053', 1), line('CPT-85025', 1), line('CPT-36415', 1)],
  });
  create('account.move', {
    move_type: 'out_invoice', partner_id: partnerIds.get('PAYER-MCR-B'), ref: 'CLM-2026-000185', invoice_date: '2026-01-13', invoice_origin: 'ENC-88240',
    invoice_line_ids: [line('CPT-99213', 1), line('CPT-83036', 1)],
  });
  create('account.move', {
    move_type: 'in_invoice', partner_id: partnerIds.get('LAB-QUEST-WD'), ref: 'QD-INV-5521873', invoice_date: '2026-01-15',
    invoice_line_ids: [line('CPT-87635', 12)],
  });
  const order = create('sale.order', {
    partner_id: partnerIds.get('PAYER-AETNA'), client_order_ref: 'AET-PA-20260114-07',
    order_line: [[0, 0, { product_id: productIds.get('CPT-80061'), name: 'Lipid panel (CPT 80061)', product_uom_qty: 40, price_unit: 18.29 }]],
  });
  const restock = create('sale.order', {
    partner_id: company, origin: 'Ward 4B restock',
    order_line: [
      [0, 0, { product_id: productIds.get('SUP-GLV-NIT-M'), name: 'Nitrile exam gloves, medium (box of 100)', product_uom_qty: 30, price_unit: 8.95 }],
      [0, 0, { product_id: productIds.get('SUP-SHARPS-2G'), name: 'Sharps container 2 gal', product_uom_qty: 12, price_unit: 6.4 }],
    ],
  });
  create('stock.picking', { partner_id: partnerIds.get('SUP-MCKESSON'), picking_type_id: receipts, location_id: suppliers, location_dest_id: stock, origin: 'PO-2026-0042', state: 'assigned' });
  create('stock.picking', { partner_id: company, picking_type_id: deliveries, location_id: stock, location_dest_id: customers, origin: `S${String(restock).padStart(5, '0')}`, state: 'confirmed' });
  void order;
  txn.commit();
}
