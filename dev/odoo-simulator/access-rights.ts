import { accessError } from './odoo-fault.ts';
import type { ModelDefinition } from './model-definitions.ts';

/**
 * Access rights (ir.model.access) per group for the models the simulator serves, the way Odoo 17's
 * modules declare them in their `ir.model.access.csv` (a subset: what Lifeline's flows touch). A
 * call whose user has no group granting the operation fails with fault 4 and Odoo's text, naming
 * the groups that would allow it. `base.group_system` (Settings) is the administrator's group and
 * is granted everything here, as the ERP manager of a fresh database effectively is.
 */
export type Operation = 'read' | 'write' | 'create' | 'unlink';

export interface GroupDefinition {
  readonly xmlid: string;
  readonly category: string;
  readonly name: string;
}

export const GROUPS: readonly GroupDefinition[] = [
  { xmlid: 'base.group_user', category: 'User types', name: 'Internal User' },
  { xmlid: 'base.group_partner_manager', category: 'Extra Rights', name: 'Contact Creation' },
  { xmlid: 'base.group_system', category: 'Administration', name: 'Settings' },
  { xmlid: 'account.group_account_invoice', category: 'Accounting', name: 'Billing' },
  { xmlid: 'account.group_account_readonly', category: 'Accounting', name: 'Read-only' },
  { xmlid: 'stock.group_stock_user', category: 'Inventory', name: 'User' },
  { xmlid: 'sales_team.group_sale_salesman', category: 'Sales', name: 'User: Own Documents Only' },
  { xmlid: 'sales_team.group_sale_salesman_all_leads', category: 'Sales', name: 'User: All Documents' },
  { xmlid: 'sales_team.group_sale_manager', category: 'Sales', name: 'Administrator' },
];

export const fullName = (group: GroupDefinition): string => `${group.category} / ${group.name}`;

/** r, w, c, u as in ir.model.access.csv. */
type Grant = readonly [group: string, rights: string];

const R = 'r';
const ALL = 'rwcu';

export const ACCESS: Readonly<Record<string, readonly Grant[]>> = {
  'res.users': [['base.group_user', R]],
  'res.groups': [['base.group_user', R]],
  'res.currency': [['base.group_user', R]],
  'res.partner': [['base.group_user', R], ['base.group_partner_manager', ALL]],
  'product.product': [['base.group_user', R], ['sales_team.group_sale_manager', ALL]],
  'account.tax': [['account.group_account_invoice', R], ['account.group_account_readonly', R]],
  // Own Documents Only also has a record rule (orders of the user) that the simulator does not model.
  'sale.order': [['sales_team.group_sale_salesman', ALL], ['sales_team.group_sale_salesman_all_leads', ALL]],
  'sale.order.line': [['sales_team.group_sale_salesman', ALL], ['sales_team.group_sale_salesman_all_leads', ALL]],
  'account.move': [['account.group_account_invoice', ALL], ['account.group_account_readonly', R]],
  'account.move.line': [['account.group_account_invoice', ALL], ['account.group_account_readonly', R]],
  'stock.picking': [['stock.group_stock_user', ALL]],
  'stock.move': [['stock.group_stock_user', ALL]],
  'stock.location': [['stock.group_stock_user', R]],
  'stock.picking.type': [['stock.group_stock_user', R]],
  'ir.model': [['base.group_user', R]],
  'ir.model.data': [['base.group_user', R]],
  'ir.model.fields': [['base.group_user', R]],
  'mail.message': [['base.group_user', 'rwc']],
  'mail.tracking.value': [],
  'mail.activity': [['base.group_user', ALL]],
};

const LETTER: Readonly<Record<Operation, string>> = { read: 'r', write: 'w', create: 'c', unlink: 'u' };

/** The groups that grant an operation on a model (Settings always does). */
export function groupsAllowing(model: string, operation: Operation): GroupDefinition[] {
  const xmlids = (ACCESS[model] ?? []).filter(([, rights]) => rights.includes(LETTER[operation])).map(([group]) => group);
  return GROUPS.filter((group) => xmlids.includes(group.xmlid));
}

export function allowed(groups: ReadonlySet<string>, model: string, operation: Operation): boolean {
  if (groups.has('base.group_system')) return true;
  return groupsAllowing(model, operation).some((group) => groups.has(group.xmlid));
}

const VERB: Readonly<Record<Operation, string>> = { read: 'access', write: 'modify', create: 'create', unlink: 'delete' };

/** Odoo 17's ir.model.access._check message, fault 4. */
export function checkAccess(groups: ReadonlySet<string>, model: ModelDefinition, operation: Operation): void {
  if (allowed(groups, model.name, operation)) return;
  const granting = groupsAllowing(model.name, operation);
  const tail = granting.length > 0
    ? `This operation is allowed for the following groups:\n${granting.map((group) => `\t- ${fullName(group)}`).join('\n')}`
    : 'No group currently allows this operation.';
  throw accessError(`You are not allowed to ${VERB[operation]} '${model.description}' (${model.name}) records.\n\n${tail}\n\nContact your administrator to request access if necessary.`);
}
