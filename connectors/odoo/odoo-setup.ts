import { parse } from 'yaml';
import { LifelineError, errorMessage } from '../../src/errors.ts';
import type { OdooClient } from './odoo-client.ts';
import { describeLink, isLines, linksOf, parseFieldSpecs, type FieldSpec } from './odoo-field-mapping.ts';
import { resolveLink } from './odoo-sink.ts';
import type { OdooValues } from './odoo-values.ts';

/**
 * What `lifeline odoo check` and `lifeline odoo seed` do. check: logs in as the configured user and
 * verifies, for each Odoo sink and source of a topology, every model, field, link and access right
 * it needs (and, given a seed file, the reference records), naming for each problem the exact fix.
 * seed: creates a topology's reference partners and products (and custom fields) idempotently, by
 * external id — run it as an administrator on a demo or test database, never as the integration user.
 */

/** An Odoo component of the topology as check sees it. */
export interface OdooComponent {
  readonly label: string;
  readonly type: 'odoo_sink' | 'odoo_source';
  readonly config: Readonly<Record<string, unknown>>;
}

export interface CheckLine {
  readonly ok: boolean;
  readonly what: string;
  /** With ok false: what to do. */
  readonly fix?: string;
}

export interface CheckSection {
  readonly title: string;
  readonly lines: CheckLine[];
}

export type Operation = 'read' | 'create' | 'write';

/**
 * The groups that grant an operation on the standard models Lifeline's flows touch, from the
 * `ir.model.access.csv` of Odoo 17's base, account, stock, sale and mail modules: the fix names them.
 */
const GRANTING_GROUPS: Readonly<Record<string, Partial<Record<Operation, readonly string[]>>>> = {
  'res.partner': { read: ['User types / Internal User'], create: ['Extra Rights / Contact Creation'], write: ['Extra Rights / Contact Creation'] },
  'product.product': { read: ['User types / Internal User'], create: ['Sales / Administrator', 'Inventory / Administrator'], write: ['Sales / Administrator', 'Inventory / Administrator'] },
  'account.move': { read: ['Accounting / Billing'], create: ['Accounting / Billing'], write: ['Accounting / Billing'] },
  'account.move.line': { read: ['Accounting / Billing'], create: ['Accounting / Billing'], write: ['Accounting / Billing'] },
  'stock.move': { read: ['Inventory / User'], create: ['Inventory / User'], write: ['Inventory / User'] },
  'stock.picking': { read: ['Inventory / User'], create: ['Inventory / User'], write: ['Inventory / User'] },
  // Own Documents Only grants the right but a record rule then hides other users' orders: a source needs All Documents.
  'sale.order': { read: ['Sales / User: All Documents'], create: ['Sales / User: All Documents'], write: ['Sales / User: All Documents'] },
  'mail.activity': { read: ['User types / Internal User'], create: ['User types / Internal User'], write: ['User types / Internal User'] },
};

function rightFix(login: string, model: string, operation: Operation): string {
  const groups = GRANTING_GROUPS[model]?.[operation];
  const which = groups ? `one of: ${groups.join(', ')}` : `a group that grants ${operation} on ${model} (Settings → Technical → Access Rights)`;
  return `give the user ${login} (Settings → Users & Companies → Users → ${login}) ${which}`;
}

export async function checkOdooSetup(client: OdooClient, login: string, components: readonly OdooComponent[], seed?: SeedFile): Promise<CheckSection[]> {
  const sections: CheckSection[] = [];
  const login_: CheckSection = { title: `login ${client.describe}`, lines: [] };
  sections.push(login_);
  try {
    await client.authenticate();
    login_.lines.push({ ok: true, what: `logged in as ${login}` });
  } catch (error) {
    login_.lines.push({ ok: false, what: `cannot log in: ${errorMessage(error)}`, fix: 'check ODOO_URL, ODOO_DB, ODOO_USERNAME and ODOO_API_KEY (an API key from the user\'s Preferences → Account Security → New API Key)' });
    return sections;
  }
  const fieldCache = new Map<string, Promise<Record<string, { type: string; relation?: string }> | undefined>>();
  const fieldsOf = (model: string): Promise<Record<string, { type: string; relation?: string }> | undefined> => {
    let pending = fieldCache.get(model);
    if (!pending) {
      pending = (async () => {
        const exists = await client.searchCount('ir.model', [['model', '=', model]]);
        if (exists === 0) return undefined;
        return await client.fieldsGet(model, ['type', 'relation']) as Record<string, { type: string; relation?: string }>;
      })();
      fieldCache.set(model, pending);
    }
    return pending;
  };
  const canDo = async (model: string, operation: Operation): Promise<boolean> =>
    await client.callMethod<boolean>(model, 'check_access_rights', [operation], { raise_exception: false });

  for (const component of components) {
    const model = String(component.config.model);
    const section: CheckSection = { title: `${component.label} (${component.type} → ${model})`, lines: [] };
    sections.push(section);
    const fields = await fieldsOf(model);
    if (!fields) {
      section.lines.push({ ok: false, what: `model ${model} does not exist`, fix: `install the Odoo app that provides ${model} (Apps), or correct ${component.label}.config.model` });
      continue;
    }
    section.lines.push({ ok: true, what: `model ${model}` });
    const operations: Operation[] = component.type === 'odoo_source' ? ['read'] : ['read', 'create', 'write'];
    for (const operation of operations) {
      const ok = await canDo(model, operation);
      section.lines.push(ok ? { ok, what: `${operation} ${model}` } : { ok, what: `${login} may not ${operation} ${model}`, fix: rightFix(login, model, operation) });
    }
    if (component.type === 'odoo_source') {
      for (const name of (component.config.fields as string[] | undefined) ?? []) {
        if (!fields[name]) section.lines.push({ ok: false, what: `field ${model}.${name} does not exist`, fix: `remove ${name} from ${component.label}.config.fields, or install the app that adds it` });
      }
      continue;
    }
    let specs: Record<string, FieldSpec>;
    try {
      specs = parseFieldSpecs((component.config.fields ?? {}) as never);
    } catch (error) {
      section.lines.push({ ok: false, what: errorMessage(error), fix: `correct ${component.label}.config.fields` });
      continue;
    }
    const lineFields: Record<string, Record<string, { type: string; relation?: string }>> = {};
    for (const [name, spec] of Object.entries(specs)) {
      const field = fields[name];
      if (!field) {
        section.lines.push({ ok: false, what: `field ${model}.${name} does not exist`, fix: `remove ${name} from ${component.label}.config.fields, or install the app that adds it` });
        continue;
      }
      if (isLines(spec) && field.relation) {
        const comodel = await fieldsOf(field.relation) ?? {};
        lineFields[name] = comodel;
        for (const sub of [...Object.keys(spec.lines.fields), ...(spec.lines.taxes !== undefined && spec.lines.taxes !== 'product_default' ? [spec.lines.taxField] : [])]) {
          if (!comodel[sub]) section.lines.push({ ok: false, what: `field ${field.relation}.${sub} does not exist`, fix: `correct ${component.label}.config.fields.${name}.lines` });
        }
        for (const operation of ['create', 'write'] as const) {
          if (!(await canDo(field.relation, operation))) section.lines.push({ ok: false, what: `${login} may not ${operation} ${field.relation} (the lines of ${name})`, fix: rightFix(login, field.relation, operation) });
        }
      }
      for (const lookup of lookupsOf(spec)) {
        const target = await fieldsOf(lookup.model);
        if (!target?.[lookup.field]) section.lines.push({ ok: false, what: `lookup field ${lookup.model}.${lookup.field} does not exist`, fix: `correct the lookup in ${component.label}.config.fields.${name}` });
        else if (!(await canDo(lookup.model, 'read'))) section.lines.push({ ok: false, what: `${login} may not read ${lookup.model} (lookup of ${name})`, fix: rightFix(login, lookup.model, 'read') });
      }
    }
    section.lines.push({ ok: true, what: `${Object.keys(specs).length} mapped fields checked` });
    const version = component.config.version as { field?: string } | undefined;
    if (version) {
      const name = version.field ?? 'x_lifeline_version';
      const field = fields[name];
      if (!field || field.type !== 'char') {
        section.lines.push({
          ok: false, what: field ? `${model}.${name} is a ${field.type} field, not char` : `field ${model}.${name} (the version monotonic writes keep) does not exist`,
          fix: `create it: \`lifeline odoo seed --from FILE\` with fields: [{ model: ${model}, name: ${name} }] as an administrator, or Settings → Technical → Fields → New (model ${model}, name ${name}, type Char)`,
        });
      } else {
        section.lines.push({ ok: true, what: `version field ${model}.${name}` });
      }
    }
    for (const { field, link } of linksOf(specs)) {
      const [head, sub] = field.split('.') as [string, string | undefined];
      const relation = sub ? lineFields[head]?.[sub]?.relation : fields[head]?.relation;
      if (!relation) continue;
      const outcome = await resolveLink((_operation, fn) => fn(client), link, relation).catch((error: unknown) => `cannot be looked up: ${errorMessage(error)}`);
      section.lines.push(typeof outcome === 'number'
        ? { ok: true, what: `${field} → ${describeLink(link)} (${relation} id ${outcome})` }
        : { ok: false, what: `${field}: ${outcome}`, fix: link.external_id?.startsWith('stock.') ? 'install the Inventory app (it creates the warehouse\'s operation types and locations), or link to another record' : `create the ${relation} record, or change the link in ${component.label}.config.fields` });
    }
    if (component.config.activity) {
      const ok = await canDo('mail.activity', 'create');
      section.lines.push(ok ? { ok, what: 'create mail.activity' } : { ok, what: `${login} may not create activities`, fix: rightFix(login, 'mail.activity', 'create') });
    }
  }

  if (seed) {
    const section: CheckSection = { title: `reference records of the seed file (module ${seed.module})`, lines: [] };
    sections.push(section);
    for (const [model, records] of seedGroups(seed)) {
      const key = SEED_KEYS[model] as string;
      const values = records.map((record) => String(record[key]));
      const found = await client.searchRead(model, [[key, 'in', values]], { fields: [key] });
      const have = new Set(found.map((row) => String(row[key])));
      const missing = values.filter((value) => !have.has(value));
      section.lines.push(missing.length === 0
        ? { ok: true, what: `${records.length} ${model} records (${key})` }
        : { ok: false, what: `${missing.length} ${model} records missing: ${missing.slice(0, 8).join(', ')}${missing.length > 8 ? ', …' : ''}`, fix: 'run `lifeline odoo seed --from FILE` as an administrator (demo or test database), or create them in Odoo' });
    }
  }
  return sections;
}

function lookupsOf(spec: FieldSpec): Array<{ model: string; field: string }> {
  if (isLines(spec)) return Object.values(spec.lines.fields).flatMap((line) => ('lookup' in line ? [line.lookup] : []));
  return 'lookup' in spec ? [spec.lookup] : [];
}

/** The problems of a check, or none. */
export function checkProblems(sections: readonly CheckSection[]): CheckLine[] {
  return sections.flatMap((section) => section.lines.filter((line) => !line.ok));
}

export function formatCheck(sections: readonly CheckSection[]): string {
  const out: string[] = [];
  for (const section of sections) {
    out.push(section.title);
    for (const line of section.lines) {
      out.push(`  ${line.ok ? 'ok  ' : 'FAIL'} ${line.what}`);
      if (line.fix) out.push(`       fix: ${line.fix}`);
    }
  }
  const problems = checkProblems(sections);
  out.push(problems.length === 0 ? 'Odoo is ready for this topology.' : `LL_ODOO_SETUP_MISSING: ${problems.length} problem${problems.length === 1 ? '' : 's'} (each with its fix above).`);
  return `${out.join('\n')}\n`;
}

// ---- seed -------------------------------------------------------------------------------------

/**
 * A seed file (YAML): the reference records a topology expects, each with an external id name
 * (`id`, in `module`), matched by its natural key (partners by ref, products by default_code), and
 * the custom fields the sinks use.
 */
export interface SeedFile {
  readonly module: string;
  readonly partners: ReadonlyArray<Readonly<Record<string, string | number | boolean>>>;
  readonly products: ReadonlyArray<Readonly<Record<string, string | number | boolean>>>;
  readonly fields: ReadonlyArray<{ readonly model: string; readonly name: string; readonly label?: string }>;
}

const SEED_KEYS: Readonly<Record<string, string>> = { 'res.partner': 'ref', 'product.product': 'default_code' };

function seedGroups(seed: SeedFile): Array<[string, ReadonlyArray<Readonly<Record<string, string | number | boolean>>>]> {
  return [['res.partner', seed.partners], ['product.product', seed.products]];
}

export function parseSeedFile(text: string, file: string): SeedFile {
  const raw = parse(text) as Record<string, unknown> | null;
  const problems: string[] = [];
  if (!raw || typeof raw !== 'object') throw new LifelineError('LL_CONFIG_INVALID', `${file}: not a YAML mapping`);
  const module = typeof raw.module === 'string' && /^[a-z][a-z0-9_]*$/.test(raw.module) ? raw.module : (problems.push('module: a lowercase module name, e.g. lifeline_seed'), '');
  const records = (name: 'partners' | 'products', key: string): Array<Record<string, string | number | boolean>> => {
    const list = raw[name] ?? [];
    if (!Array.isArray(list)) {
      problems.push(`${name}: a list`);
      return [];
    }
    list.forEach((item: Record<string, unknown>, index) => {
      if (!item || typeof item !== 'object') problems.push(`${name}[${index}]: a mapping`);
      else {
        if (typeof item.id !== 'string' || !/^[A-Za-z0-9_]+$/.test(item.id)) problems.push(`${name}[${index}].id: an external id name (letters, digits, _)`);
        if (typeof item.name !== 'string') problems.push(`${name}[${index}].name: required`);
        if (typeof item[key] !== 'string') problems.push(`${name}[${index}].${key}: required (records are matched by it)`);
      }
    });
    return list as Array<Record<string, string | number | boolean>>;
  };
  const partners = records('partners', 'ref');
  const products = records('products', 'default_code');
  const fields = Array.isArray(raw.fields) ? raw.fields as SeedFile['fields'] : [];
  fields.forEach((field, index) => {
    if (typeof field?.model !== 'string' || typeof field?.name !== 'string' || !field.name.startsWith('x_')) problems.push(`fields[${index}]: { model, name: x_… }`);
  });
  if (problems.length > 0) throw new LifelineError('LL_CONFIG_INVALID', `${file}: ${problems.join('; ')}`);
  return { module, partners, products, fields };
}

export interface SeedReport {
  readonly created: number;
  /** Found by their key and given the external id. */
  readonly adopted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly fieldsCreated: number;
}

/**
 * Creates what is missing, updates what differs, and leaves the rest alone (no write, so no
 * chatter): idempotent, a second run reports everything unchanged. A record that exists with the
 * same key but no external id (made by hand) is adopted: it gets the external id instead of a twin.
 */
export async function seedOdoo(client: OdooClient, seed: SeedFile): Promise<SeedReport> {
  let created = 0;
  let adopted = 0;
  let updated = 0;
  let unchanged = 0;
  let fieldsCreated = 0;
  for (const field of seed.fields) {
    const existing = await client.fieldsGet(field.model, ['type']);
    if (existing[field.name]) continue;
    const [model] = await client.searchRead('ir.model', [['model', '=', field.model]], { fields: ['id'] });
    if (!model) throw new LifelineError('LL_ODOO_SETUP_MISSING', `seed: model ${field.model} does not exist (install its app first)`);
    await client.create('ir.model.fields', { model_id: model.id, name: field.name, field_description: field.label ?? field.name, ttype: 'char' });
    fieldsCreated++;
  }
  for (const [model, records] of seedGroups(seed)) {
    if (records.length === 0) continue;
    const key = SEED_KEYS[model] as string;
    const names = records.map((record) => String(record.id));
    const xmlids = await client.searchRead('ir.model.data', [['module', '=', seed.module], ['name', 'in', names]], { fields: ['name', 'res_id', 'model'] });
    const byName = new Map(xmlids.map((row) => [String(row.name), Number(row.res_id)]));
    const byKey = new Map((await client.searchRead(model, [[key, 'in', records.map((record) => String(record[key]))]], { fields: [key], context: { active_test: false } }))
      .map((row) => [String(row[key]), row.id]));
    const valueFields = [...new Set(records.flatMap((record) => Object.keys(record).filter((name) => name !== 'id')))];
    const current = new Map((await client.read(model, [...new Set([...byName.values(), ...byKey.values()])], valueFields)).map((row) => [row.id, row]));
    for (const record of records) {
      const { id: name, ...values } = record;
      let odooId = byName.get(String(name));
      let adoptedNow = false;
      if (odooId === undefined || !current.has(odooId)) {
        const existing = byKey.get(String(record[key]));
        if (existing !== undefined) {
          await client.create('ir.model.data', { module: seed.module, name: String(name), model, res_id: existing, noupdate: true });
          odooId = existing;
          adopted++;
          adoptedNow = true;
        } else {
          const result = await client.load(model, ['id', ...Object.keys(values)], [[`${seed.module}.${String(name)}`, ...Object.values(values).map(loadCell)]]);
          if (result.ids === false) throw new LifelineError('LL_ODOO_USER_ERROR', `seed: Odoo refused ${model} ${String(name)}: ${result.messages.map((message) => message.message).join('; ')}`);
          created++;
          continue;
        }
      }
      const row: Record<string, unknown> = current.get(odooId) ?? {};
      const differs = Object.entries(values).filter(([field, value]) => !sameSeedValue(row[field], value));
      if (differs.length === 0) {
        if (!adoptedNow) unchanged++;
        continue;
      }
      await client.write(model, [odooId], Object.fromEntries(differs) as OdooValues);
      updated++;
    }
  }
  return { created, adopted, updated, unchanged, fieldsCreated };
}

function loadCell(value: string | number | boolean): string {
  return typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
}

function sameSeedValue(current: unknown, wanted: string | number | boolean): boolean {
  if (typeof wanted === 'boolean') return Boolean(current) === wanted;
  if (typeof wanted === 'number') return typeof current === 'number' && Math.abs(current - wanted) < 1e-9;
  return current === wanted;
}
