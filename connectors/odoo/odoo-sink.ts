import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { LifelineError, errorCode, errorMessage, isRetriable } from '../../src/errors.ts';
import {
  defineSink, type InputRecord, type Sink, type SinkContext, type SinkFailure,
} from '../../src/component/component.ts';
import { odooConnectionKind } from './odoo-connection.ts';
import { DURATION_PATTERN, parseDuration } from '../../src/component/duration.ts';
import { readPath } from '../../src/component/value-path.ts';
import type { FieldDescription, LoadResult } from './odoo-client.ts';
import {
  FieldSpecSchema, desiredValues, isLines, parseFieldSpecs, referencesOf, renderTemplate, type DesiredValue, type FieldSpec, type ReferenceResolver,
} from './odoo-field-mapping.ts';
import { OdooLink } from './odoo-link.ts';
import { ReferenceCache } from './odoo-reference-cache.ts';
import { toOdooDate, type OdooValues } from './odoo-values.ts';
import { differences, loadTable, toWriteVals, type DesiredRecord } from './odoo-write-format.ts';

const Outcome = Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]);

const OdooSinkConfig = Type.Object({
  connection: Type.String({ minLength: 1, description: 'Name of the Odoo connection under connections.odoo.', examples: ['main'] }),
  model: Type.String({ pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$', description: 'The Odoo model to write.', examples: ['account.move'] }),
  match: Type.Optional(Type.Object({
    by: Type.Union([Type.Literal('external_id'), Type.Literal('field')], {
      default: 'external_id',
      description: 'external_id: ir.model.data `<module>.<key>` (creation through `load` makes the id and the record in one transaction); field: a field holding the key.',
    }),
    module: Type.Optional(Type.String({ pattern: '^[a-z][a-z0-9_]*$', default: 'lifeline', description: 'With by: external_id, the module part of the external ids.' })),
    field: Type.Optional(Type.String({ minLength: 1, description: 'With by: field (required then), the field that holds the key, e.g. ref, client_order_ref or an x_ field; the sink writes the key into it on create.' })),
    key_path: Type.Optional(Type.String({ minLength: 1, description: 'Dotted path of the key in the record; default: the lifeline.idempotency-key header, else the record key.' })),
  }, { additionalProperties: false, description: 'How a record finds its Odoo record. Default: by external id in module lifeline.' })),
  on_missing: Type.Optional(Type.Union([Type.Literal('create'), Type.Literal('skip'), Type.Literal('fail')], {
    default: 'create', description: 'When no Odoo record matches: create it, skip the record, or fail it (dead letter). skip/fail suit updates and notifications of existing records.',
  })),
  fields: Type.Optional(Type.Record(Type.String({ pattern: '^[a-z_][a-z0-9_]*$' }), FieldSpecSchema, {
    default: {},
    description: 'Odoo field → its value: `{ path, as?, scale?, default? }`, `{ constant }`, `{ lookup: { model, field, path } }` (many2one by reference, cached) or `{ lines: { path, fields } }` (one2many lines as commands).',
  })),
  batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_000, default: 200, description: 'Records per Odoo round trip (load / create list).' })),
  message: Type.Optional(Type.Object({
    body: Type.String({ minLength: 1, description: 'Chatter message (HTML) posted on the record; `{path}` placeholders, plus {key}, {odoo_id}, {outcome}.' }),
    subject: Type.Optional(Type.String({ default: 'Lifeline {key}', description: 'Message subject; a replay that finds a message with the same subject on the record posts nothing.' })),
    when: Type.Optional(Type.Array(Outcome, { default: ['created', 'updated'], description: 'Outcomes that post the message.' })),
  }, { additionalProperties: false, description: 'Post a chatter message (message_post) after a write.' })),
  activity: Type.Optional(Type.Object({
    summary: Type.String({ minLength: 1, description: 'Activity summary, with `{path}` placeholders; a replay that finds the same summary on the record schedules nothing.' }),
    note: Type.Optional(Type.String({ description: 'Activity note (HTML), with placeholders.' })),
    user_login: Type.Optional(Type.String({ description: 'Login of the user to assign.' })),
    user_login_path: Type.Optional(Type.String({ description: 'Dotted path of the assignee\'s login in the record (e.g. owner); wins over user_login.' })),
    deadline_days: Type.Optional(Type.Integer({ minimum: 0, default: 0, description: 'Due date: today (UTC) plus this many days.' })),
    when: Type.Optional(Type.Array(Outcome, { default: ['created', 'updated'], description: 'Outcomes that schedule the activity.' })),
  }, { additionalProperties: false, description: 'Schedule an activity (a mail.activity record) after a write, e.g. to tell a business owner about an SLA breach.' })),
  timeout: Type.Optional(Type.String({ pattern: DURATION_PATTERN, default: '60s', description: 'Time limit of one Odoo call.' })),
}, { additionalProperties: false });

export type OdooSinkConfig = Static<typeof OdooSinkConfig>;
type Outcome = Static<typeof Outcome>;
type MatchConfig =
  | { readonly by: 'external_id'; readonly module: string; readonly key_path?: string }
  | { readonly by: 'field'; readonly field: string; readonly key_path?: string };

/**
 * Upserts records into an Odoo model idempotently: each record's key finds its Odoo record (by
 * external id or a match field), what differs is written, what is equal is left alone. Batches go
 * out as one `load` (or one list `create`); a replay changes nothing. Odoo down or a conflict →
 * the batch is thrown back to the host as retriable (it pauses and retries, the backlog shows as
 * lag); a record Odoo rejects comes back as a failure with Odoo's text (dead-lettered).
 */
export const odooSink = defineSink({
  kind: 'sink',
  type: 'odoo_sink',
  description: 'Upserts records into an Odoo model over XML-RPC, idempotently (external id via load, or a match field), with a declared field mapping, many2one lookups and one2many lines; emits a result event per record; can post a chatter message or schedule an activity.',
  stateful: false,
  connections: [odooConnectionKind],
  outputs: ['results?'],
  config: OdooSinkConfig,
  create: (config) => new OdooSink(config),
});

interface Item {
  readonly record: InputRecord;
  readonly key: string;
  desired?: DesiredRecord;
  odooId?: number;
  outcome?: Outcome;
  changed?: Record<string, DesiredValue>;
  /** The external id module.name (external id matching). */
  externalId?: string;
}

interface ModelShape {
  readonly fields: Readonly<Record<string, FieldDescription>>;
  /** one2many field → its comodel's fields (for comparing lines). */
  readonly lineFields: Readonly<Record<string, Readonly<Record<string, FieldDescription>>>>;
  readonly modelId: number | undefined;
}

class OdooSink implements Sink {
  private context!: SinkContext;
  private link!: OdooLink;
  private shape: ModelShape | undefined;
  private readonly references = new ReferenceCache();
  private readonly match: MatchConfig;
  private readonly fields: Readonly<Record<string, FieldSpec>>;
  private readonly batchSize: number;

  constructor(private readonly config: OdooSinkConfig) {
    this.match = matchOf(config.match);
    this.fields = parseFieldSpecs(config.fields ?? {});
    this.batchSize = config.batch_size ?? 200;
  }

  async connect(context: SinkContext): Promise<void> {
    this.context = context;
    this.link = new OdooLink(context, this.config.connection, parseDuration(this.config.timeout ?? '60s') as number);
    // Odoo is first contacted by write(): while it is down the host retries, and the backlog waits in Kafka.
  }

  async write(records: readonly InputRecord[]): Promise<{ readonly failed: readonly SinkFailure[] }> {
    const failed: SinkFailure[] = [];
    try {
      const shape = this.shape ?? await this.describeModel();
      for (const chunk of this.chunks(records, failed)) await this.writeChunk(chunk, shape, failed);
    } catch (error) {
      throw pauseIfNotAboutRecords(error);
    }
    return { failed };
  }

  async close(): Promise<void> {
    this.link?.close();
  }

  /** fields_get of the model and its line comodels, and the ir.model id activities need; once. */
  private async describeModel(): Promise<ModelShape> {
    const { model } = this.config;
    const fields = await this.link.call(`${model}.fields_get`, (client) => client.fieldsGet(model, ['type', 'string', 'required', 'readonly', 'relation', 'digits']));
    const problems: string[] = [];
    const lineFields: Record<string, Record<string, FieldDescription>> = {};
    for (const [name, spec] of Object.entries(this.fields)) {
      const field = fields[name];
      if (!field) problems.push(`${name} is not a field of ${model}`);
      else if (isLines(spec)) {
        if (field.type !== 'one2many' || !field.relation) problems.push(`${name} is a ${field.type} field; lines need a one2many`);
        else lineFields[name] = await this.link.call(`${field.relation}.fields_get`, (client) => client.fieldsGet(field.relation as string, ['type', 'string', 'relation', 'digits']));
      }
    }
    if (this.match.by === 'field' && !fields[this.match.field]) problems.push(`match field ${this.match.field} is not a field of ${model}`);
    if (this.match.by === 'field' && this.match.field in this.fields) {
      problems.push(`match field ${this.match.field} is also mapped under fields; the sink writes the key there itself (set match.key_path to take the key from the record)`);
    }
    if (problems.length > 0) {
      // Retriable on purpose: dead-lettering every record for a mapping mistake would be worse than waiting for the fix.
      const error = new LifelineError('LL_CONFIG_INVALID', `${this.context.label}: ${problems.join('; ')}`, { retriable: true });
      this.context.setHealth('down', error.message);
      throw error;
    }
    let modelId: number | undefined;
    if (this.config.activity) {
      const [row] = await this.link.call('ir.model.search_read', (client) => client.searchRead('ir.model', [['model', '=', model]], { fields: ['id'], limit: 1 }));
      modelId = row?.id;
    }
    this.shape = { fields, lineFields, modelId };
    this.context.logger.info({ model, odoo: this.link.client.describe, match: this.match.by }, 'writing to Odoo');
    return this.shape;
  }

  /** Batches of batch_size in which no key repeats, so each key's updates apply in order. */
  private chunks(records: readonly InputRecord[], failed: SinkFailure[]): Item[][] {
    const chunks: Item[][] = [];
    let current: Item[] = [];
    let keys = new Set<string>();
    for (const record of records) {
      if (record.value === null) continue; // a tombstone asks for nothing to be written
      const key = this.keyOf(record);
      if (!key) {
        failed.push({ record, error: new LifelineError('LL_ODOO_VALUE_INVALID', 'the record has no key to match an Odoo record by (no lifeline.idempotency-key header, record key or key_path value)') });
        continue;
      }
      if (current.length >= this.batchSize || keys.has(key)) {
        chunks.push(current);
        current = [];
        keys = new Set();
      }
      current.push({ record, key });
      keys.add(key);
    }
    if (current.length > 0) chunks.push(current);
    return chunks;
  }

  private keyOf(record: InputRecord): string | undefined {
    if (this.match.key_path) {
      const value = readPath(record.value, this.match.key_path);
      return typeof value === 'string' || typeof value === 'number' ? String(value) : undefined;
    }
    return record.headers['lifeline.idempotency-key'] || record.key || undefined;
  }

  private async writeChunk(items: Item[], shape: ModelShape, failed: SinkFailure[]): Promise<void> {
    const started = performance.now();
    const fail = (item: Item, error: unknown): void => {
      failed.push({ record: item.record, error });
      item.outcome = undefined;
    };
    // Values, with many2one references looked up once per batch.
    const requests = items.flatMap((item) => referencesOf(item.record.value, this.fields));
    const resolve: ReferenceResolver = requests.length === 0 ? () => new LifelineError('LL_ODOO_REFERENCE_NOT_FOUND', 'no lookups') : await this.references.resolver(requests, (model, field, values) =>
      this.link.call(`${model}.search_read`, (client) => client.searchRead(model, [[field, 'in', [...values]]], { fields: [field] })));
    let live = items.filter((item) => {
      try {
        item.desired = {
          ...desiredValues(item.record.value, this.fields, resolve),
          ...(this.match.by === 'field' ? { [this.match.field]: { kind: 'scalar', value: item.key } as const } : {}),
        };
        return true;
      } catch (error) {
        if (isRetriable(error)) throw error;
        fail(item, error);
        return false;
      }
    });

    await this.findExisting(live, fail);
    live = live.filter((item) => !failed.some((failure) => failure.record === item.record));
    const existing = live.filter((item) => item.odooId !== undefined);
    await this.compare(existing, shape);
    const missing = live.filter((item) => item.odooId === undefined);
    const onMissing = this.config.on_missing ?? 'create';
    for (const item of missing) {
      if (onMissing === 'fail') fail(item, new LifelineError('LL_ODOO_RECORD_MISSING', `no ${this.config.model} record matches ${item.key}`));
    }
    if (onMissing === 'skip' && missing.length > 0) this.context.logger.info({ skipped: missing.length }, 'no Odoo record matches; skipped as on_missing says');
    const toCreate = onMissing === 'create' ? missing : [];
    live = live.filter((item) => item.odooId !== undefined || toCreate.includes(item));

    if (this.match.by === 'external_id') await this.upsertByLoad(live, failed);
    else await this.upsertByField(toCreate, live.filter((item) => item.outcome === 'updated'), failed);

    let written = live.filter((item) => item.outcome !== undefined && item.odooId !== undefined);
    await this.notify(written, shape, failed);
    written = written.filter((item) => item.outcome !== undefined);
    const writeMs = Math.round(performance.now() - started);
    for (const item of written) this.emitResult(item, writeMs);
    for (const outcome of ['created', 'updated', 'unchanged'] as const) {
      const count = written.filter((item) => item.outcome === outcome).length;
      if (count > 0) this.link.metrics.wrote(outcome, count);
    }
  }

  /** The Odoo id each key already has, if any. */
  private async findExisting(items: Item[], fail: (item: Item, error: unknown) => void): Promise<void> {
    if (items.length === 0) return;
    const { model } = this.config;
    if (this.match.by === 'external_id') {
      const module = this.match.module;
      for (const item of items) item.externalId = `${module}.${externalName(item.key)}`;
      const names = items.map((item) => externalName(item.key));
      const rows = await this.link.call('ir.model.data.search_read', (client) =>
        client.searchRead('ir.model.data', [['module', '=', module], ['name', 'in', names]], { fields: ['name', 'model', 'res_id'] }));
      const byName = new Map(rows.map((row) => [String(row.name), row]));
      for (const item of items) {
        const row = byName.get(externalName(item.key));
        if (row && row.model === model && typeof row.res_id === 'number' && row.res_id > 0) item.odooId = row.res_id;
      }
      return;
    }
    const field = this.match.field;
    // Archived records still match: a replay must not create a second one beside an archived first.
    const rows = await this.link.call(`${model}.search_read`, (client) =>
      client.searchRead(model, [[field, 'in', items.map((item) => item.key)]], { fields: [field], context: { active_test: false } }));
    const byKey = new Map<string, number[]>();
    for (const row of rows) byKey.set(String(row[field]), [...(byKey.get(String(row[field])) ?? []), row.id]);
    for (const item of items) {
      const ids = byKey.get(item.key) ?? [];
      if (ids.length > 1) fail(item, new LifelineError('LL_ODOO_USER_ERROR', `${ids.length} ${model} records have ${field} = ${item.key} (ids ${ids.join(', ')}); the match field must be unique`));
      else if (ids.length === 1) item.odooId = ids[0];
    }
  }

  /** Reads what Odoo holds for the existing ones and decides updated or unchanged. */
  private async compare(items: Item[], shape: ModelShape): Promise<void> {
    if (items.length === 0) return;
    const { model } = this.config;
    const fieldNames = Object.keys((items[0] as Item).desired ?? {});
    const rows = await this.link.call(`${model}.read`, (client) => client.read(model, items.map((item) => item.odooId as number), fieldNames.length > 0 ? fieldNames : ['id']));
    const byId = new Map(rows.map((row) => [row.id, row as Record<string, unknown>]));
    // one2many fields: replace line ids by the lines' values, read once per comodel.
    for (const [field, lineTypes] of Object.entries(shape.lineFields)) {
      const relation = shape.fields[field]?.relation as string;
      const lineIds = rows.flatMap((row) => (Array.isArray(row[field]) ? (row[field] as number[]) : []));
      const spec = this.fields[field];
      const subfields = spec && isLines(spec) ? Object.keys(spec.lines.fields) : [];
      const lines = await this.link.call(`${relation}.read`, (client) => client.read(relation, lineIds, subfields.filter((name) => lineTypes[name])));
      const lineById = new Map(lines.map((line) => [line.id, line]));
      for (const row of byId.values()) {
        row[field] = (Array.isArray(row[field]) ? (row[field] as number[]) : []).slice().sort((a, b) => a - b).map((id) => lineById.get(id)).filter(Boolean);
      }
    }
    for (const item of items) {
      const current = byId.get(item.odooId as number);
      if (!current) {
        // The external id points at a deleted record: write it again (load re-creates it).
        item.odooId = this.match.by === 'external_id' ? undefined : item.odooId;
        continue;
      }
      item.changed = differences(item.desired ?? {}, current, shape.fields, shape.lineFields);
      item.outcome = Object.keys(item.changed).length === 0 ? 'unchanged' : 'updated';
    }
  }

  /**
   * External ids: one `load` creates the new records with their external ids (lines included), one
   * more updates the changed ones, each in one transaction. Changed one2many lines go by write
   * instead (load would add lines, not replace them), and update rows carry no line columns at all.
   * A row Odoo rejects fails that record; the others are loaded again.
   */
  private async upsertByLoad(items: Item[], failed: SinkFailure[]): Promise<void> {
    const lineFieldNames = new Set(Object.entries(this.fields).filter(([, spec]) => isLines(spec)).map(([name]) => name));
    const creations = items.filter((item) => item.odooId === undefined);
    const updates = items.filter((item) => item.odooId !== undefined && item.outcome === 'updated');
    const lineUpdates = updates.filter((item) => Object.keys(item.changed ?? {}).some((field) => lineFieldNames.has(field)));
    const flatUpdates = updates.filter((item) => !lineUpdates.includes(item));
    await this.loadAll(creations, (item) => item.desired ?? {}, failed);
    await this.loadAll(flatUpdates, (item) => withoutFields(item.desired ?? {}, lineFieldNames), failed);
    await this.writeEach(lineUpdates, failed);
  }

  private async loadAll(items: Item[], valuesOf: (item: Item) => DesiredRecord, failed: SinkFailure[]): Promise<void> {
    const { model } = this.config;
    let pending = items;
    for (let round = 0; pending.length > 0 && round < 5; round++) {
      const table = loadTable(pending.map((item) => ({ externalId: item.externalId as string, desired: valuesOf(item) })));
      const result: LoadResult = await this.link.call(`${model}.load`, (client) => client.load(model, table.fields, table.rows));
      if (result.ids !== false && result.ids.length === pending.length) {
        pending.forEach((item, index) => {
          if (item.odooId === undefined) item.outcome = 'created';
          item.odooId = (result.ids as readonly number[])[index];
        });
        return;
      }
      const errors = result.messages.filter((message) => message.type === 'error');
      const rejected = new Set(errors.map((message) => message.record).filter((index): index is number => typeof index === 'number'));
      if (rejected.size === 0) {
        // No record to blame: every one of them fails with Odoo's text.
        const text = errors.map((message) => message.message).join('; ') || 'load saved nothing and said why not';
        for (const item of pending) {
          failed.push({ record: item.record, error: new LifelineError('LL_ODOO_USER_ERROR', `Odoo ${model}.load: ${text}`) });
          item.outcome = undefined;
        }
        return;
      }
      const next: Item[] = [];
      pending.forEach((item, index) => {
        if (!rejected.has(index)) {
          next.push(item);
          return;
        }
        const own = errors.filter((message) => message.record === index);
        failed.push({ record: item.record, error: new LifelineError('LL_ODOO_USER_ERROR', `Odoo ${model}.load rejected ${item.key}: ${own.map((message) => message.message).join('; ')}`, { details: { messages: own } }) });
        item.outcome = undefined;
      });
      pending = next;
    }
    for (const item of pending) {
      failed.push({ record: item.record, error: new LifelineError('LL_ODOO_USER_ERROR', `Odoo ${model}.load kept rejecting the batch ${item.key} was in`) });
      item.outcome = undefined;
    }
  }

  /** Match field: new records in one list create (one by one if Odoo rejects the list), changed ones written. */
  private async upsertByField(toCreate: Item[], toUpdate: Item[], failed: SinkFailure[]): Promise<void> {
    const { model } = this.config;
    if (toCreate.length > 0) {
      try {
        const ids = await this.link.call(`${model}.create`, (client) => client.create(model, toCreate.map((item) => toWriteVals(item.desired ?? {}, false))));
        toCreate.forEach((item, index) => {
          item.odooId = ids[index];
          item.outcome = 'created';
        });
      } catch (error) {
        if (isRetriable(error)) throw error;
        if (toCreate.length === 1) {
          failed.push({ record: (toCreate[0] as Item).record, error });
          (toCreate[0] as Item).outcome = undefined;
          return this.writeEach(toUpdate, failed);
        }
        // One record spoiled the list (one transaction): find it by creating them one at a time.
        for (const item of toCreate) {
          try {
            item.odooId = await this.link.call(`${model}.create`, (client) => client.create(model, toWriteVals(item.desired ?? {}, false)));
            item.outcome = 'created';
          } catch (itemError) {
            if (isRetriable(itemError)) throw itemError;
            failed.push({ record: item.record, error: itemError });
            item.outcome = undefined;
          }
        }
      }
    }
    await this.writeEach(toUpdate, failed);
  }

  private async writeEach(items: Item[], failed: SinkFailure[]): Promise<void> {
    const { model } = this.config;
    for (const item of items) {
      try {
        await this.link.call(`${model}.write`, (client) => client.write(model, [item.odooId as number], toWriteVals(item.changed ?? {}, true)));
        item.outcome = 'updated';
      } catch (error) {
        if (isRetriable(error)) throw error;
        failed.push({ record: item.record, error });
        item.outcome = undefined;
      }
    }
  }

  /** Chatter messages and activities for the outcomes that ask for them, each at most once per record. */
  private async notify(items: Item[], shape: ModelShape, failed: SinkFailure[]): Promise<void> {
    const { model, message, activity } = this.config;
    if (message) {
      const when = message.when ?? ['created', 'updated'];
      const due = items.filter((item) => when.includes(item.outcome as Outcome));
      if (due.length > 0) {
        const subjects = new Map(due.map((item) => [item, renderTemplate(message.subject ?? 'Lifeline {key}', item.record.value, placeholders(item))]));
        const posted = await this.link.call('mail.message.search_read', (client) => client.searchRead('mail.message', [
          ['model', '=', model], ['res_id', 'in', due.map((item) => item.odooId as number)], ['subject', 'in', [...new Set(subjects.values())]],
        ], { fields: ['res_id', 'subject'] }));
        const done = new Set(posted.map((row) => `${String(row.res_id)}|${String(row.subject)}`));
        for (const item of due) {
          const subject = subjects.get(item) as string;
          if (done.has(`${item.odooId}|${subject}`)) continue;
          const body = renderTemplate(message.body, item.record.value, placeholders(item));
          await this.link.call(`${model}.message_post`, (client) => client.callMethod<number>(model, 'message_post', [[item.odooId]], { body, subject, message_type: 'comment' }));
        }
      }
    }
    if (activity && shape.modelId !== undefined) {
      const when = activity.when ?? ['created', 'updated'];
      const due = items.filter((item) => when.includes(item.outcome as Outcome));
      if (due.length === 0) return;
      const summaries = new Map(due.map((item) => [item, renderTemplate(activity.summary, item.record.value, placeholders(item))]));
      const existing = await this.link.call('mail.activity.search_read', (client) => client.searchRead('mail.activity', [
        ['res_model_id', '=', shape.modelId as number], ['res_id', 'in', due.map((item) => item.odooId as number)], ['summary', 'in', [...new Set(summaries.values())]],
      ], { fields: ['res_id', 'summary'] }));
      const done = new Set(existing.map((row) => `${String(row.res_id)}|${String(row.summary)}`));
      const logins = due.map((item) => loginFor(activity, item)).filter((login): login is string => Boolean(login));
      const users = logins.length === 0 ? undefined : await this.references.resolver(
        logins.map((login) => ({ model: 'res.users', field: 'login', value: login })),
        (userModel, field, values) => this.link.call('res.users.search_read', (client) => client.searchRead(userModel, [[field, 'in', [...values]]], { fields: [field] })),
      );
      const deadline = toOdooDate(Date.now() + (activity.deadline_days ?? 0) * 86_400_000);
      const vals: Array<{ item: Item; values: OdooValues }> = [];
      for (const item of due) {
        const summary = summaries.get(item) as string;
        if (done.has(`${item.odooId}|${summary}`)) continue;
        const login = loginFor(activity, item);
        const userId = login && users ? users({ model: 'res.users', field: 'login', value: login }) : undefined;
        vals.push({ item, values: {
          res_model_id: shape.modelId as number, res_id: item.odooId as number, summary, date_deadline: deadline,
          ...(activity.note ? { note: renderTemplate(activity.note, item.record.value, placeholders(item)) } : {}),
          ...(typeof userId === 'number' ? { user_id: userId } : {}),
        } });
      }
      await this.scheduleActivities(vals, failed);
    }
  }

  /**
   * Activities go in by `load` with an external id derived from the record, model and summary:
   * when a crashed process's call and its successor's race to create the same activity, Odoo lets
   * one commit and fails the other with a serialization conflict, whose retry finds the activity.
   * An activity Odoo rejects fails its record (dead-lettered; a replay writes nothing else again).
   */
  private async scheduleActivities(due: ReadonlyArray<{ item: Item; values: OdooValues }>, failed: SinkFailure[]): Promise<void> {
    if (due.length === 0) return;
    const module = this.match.by === 'external_id' ? this.match.module : 'lifeline';
    const fields = ['id', 'res_model_id/.id', 'res_id', 'summary', 'date_deadline', 'note', 'user_id/.id'];
    const rows = due.map(({ values }) => {
      const name = `activity_${createHash('sha256').update(`${this.config.model}|${String(values.res_id)}|${String(values.summary)}`).digest('hex').slice(0, 32)}`;
      return [`${module}.${name}`, String(values.res_model_id), String(values.res_id), String(values.summary), String(values.date_deadline), values.note === undefined ? '' : String(values.note), values.user_id === undefined ? '' : String(values.user_id)];
    });
    const result: LoadResult = await this.link.call('mail.activity.load', (client) => client.load('mail.activity', fields, rows));
    if (result.ids !== false) return;
    const errors = result.messages.filter((message) => message.type === 'error');
    due.forEach(({ item }, index) => {
      const own = errors.filter((message) => message.record === index || message.record === undefined);
      failed.push({ record: item.record, error: new LifelineError('LL_ODOO_USER_ERROR', `Odoo refused the activity for ${item.key}: ${own.map((message) => message.message).join('; ') || 'load saved nothing'}`) });
      item.outcome = undefined;
    });
  }

  private emitResult(item: Item, writeMs: number): void {
    // The results output is optional: without it mapped there is nowhere to send them.
    if (this.context.hasOutput && !this.context.hasOutput('results')) return;
    const now = Date.now();
    const headers: Record<string, string> = {};
    for (const name of ['lifeline.correlation-id', 'traceparent']) {
      const value = item.record.headers[name];
      if (value) headers[name] = value;
    }
    this.context.forward('results', {
      key: item.key,
      value: {
        key: item.key,
        model: this.config.model,
        odoo_id: item.odooId ?? null,
        outcome: item.outcome,
        latency_ms: Math.max(0, now - item.record.timestamp),
        write_ms: writeMs,
        written_at: now,
        origin_topic: item.record.topic,
        origin_partition: item.record.partition,
        origin_offset: Number(item.record.offset),
      },
      headers,
    });
  }
}

function matchOf(match: OdooSinkConfig['match']): MatchConfig {
  const keyPath = match?.key_path ? { key_path: match.key_path } : {};
  if (match?.by === 'field') {
    if (!match.field) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.field is required when match.by is field');
    return { by: 'field', field: match.field, ...keyPath };
  }
  if (match?.field) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.field goes with match.by: field');
  return { by: 'external_id', module: match?.module ?? 'lifeline', ...keyPath };
}

function placeholders(item: Item): Record<string, string | number> {
  return { key: item.key, odoo_id: item.odooId ?? '', outcome: item.outcome ?? '' };
}

function loginFor(activity: NonNullable<OdooSinkConfig['activity']>, item: Item): string | undefined {
  const fromPath = activity.user_login_path ? readPath(item.record.value, activity.user_login_path) : undefined;
  if (typeof fromPath === 'string' && fromPath) return fromPath;
  return activity.user_login;
}

function withoutFields(desired: DesiredRecord, fields: ReadonlySet<string>): DesiredRecord {
  return Object.fromEntries(Object.entries(desired).filter(([name]) => !fields.has(name)));
}

/**
 * The name part of an external id for a key. Keys made of letters, digits and `_` are used as they
 * are; others get the unsafe characters replaced and a hash of the key appended, so distinct keys
 * never share a name.
 */
export function externalName(key: string): string {
  if (/^[A-Za-z0-9_]{1,200}$/.test(key)) return key;
  const readable = key.replace(/[^A-Za-z0-9_]+/g, '_').slice(0, 160);
  return `${readable}_${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/**
 * A failure of a call about the whole batch (not one record) that no retry of the record would fix
 * soon — the login refused, an access error on the model — pauses the sink instead of
 * dead-lettering every record: operators fix the credentials or rights and the backlog drains.
 */
function pauseIfNotAboutRecords(error: unknown): unknown {
  const code = errorCode(error);
  if (!isRetriable(error) && (code === 'LL_ODOO_AUTH_FAILED' || code === 'LL_ODOO_ACCESS_DENIED' || code === 'LL_ODOO_ACCESS_ERROR' || code === 'LL_ODOO_PROTOCOL')) {
    return new LifelineError(code, errorMessage(error), { cause: error, retriable: true });
  }
  return error;
}

