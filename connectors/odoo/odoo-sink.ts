import { createHash } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import { LifelineError, errorCode, errorMessage, isRetriable } from '../../src/errors.ts';
import {
  defineSink, type InputRecord, type Sink, type SinkContext, type SinkFailure,
} from '../../src/component/component.ts';
import { odooConnectionKind } from './odoo-connection.ts';
import { DURATION_PATTERN, parseDuration } from '../../src/component/duration.ts';
import { readPath } from '../../src/component/value-path.ts';
import type { FieldDescription, LoadResult, OdooClient } from './odoo-client.ts';
import {
  FieldSpecSchema, LinkSchema, describeLink, desiredValues, isLines, linkKey, linksOf, parseFieldSpecs, referencesOf, renderTemplate,
  type DesiredValue, type FieldSpec, type LinkSpec, type ReferenceResolver,
} from './odoo-field-mapping.ts';
import { OdooLink } from './odoo-link.ts';
import { ReferenceCache } from './odoo-reference-cache.ts';
import { toOdooDate, type OdooValues } from './odoo-values.ts';
import { differences, loadTable, toWriteVals, type DesiredRecord } from './odoo-write-format.ts';

const Outcome = Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged'), Type.Literal('skipped_older')]);

const OdooSinkConfig = Type.Object({
  connection: Type.String({ minLength: 1, description: 'Name of the Odoo connection under connections.odoo.', examples: ['main'] }),
  model: Type.String({ pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$', description: 'The Odoo model to write.', examples: ['account.move'] }),
  match: Type.Optional(Type.Object({
    by: Type.Union([Type.Literal('external_id'), Type.Literal('field'), Type.Literal('chain')], {
      default: 'external_id',
      description: 'external_id: ir.model.data `<module>.<key>` (creation through `load` makes the id and the record in one transaction); field: a field holding the key; chain: an existing record found by the first step of `chain` that finds one (never creates).',
    }),
    chain: Type.Optional(Type.Array(Type.Object({
      field: Type.Optional(Type.String({ minLength: 1, description: 'A field of the model to search, e.g. ref or email.' })),
      path: Type.Optional(Type.String({ minLength: 1, description: 'With field: the dotted path of the value in the record.' })),
      link: Type.Optional(LinkSchema),
    }, { additionalProperties: false }), {
      minItems: 1,
      description: 'With by: chain, the steps tried in order: `{ field, path }` searches the model, `{ link }` is a fixed fallback record (e.g. the owning team\'s partner). A record no step finds is dead-lettered with what each step looked for.',
    })),
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
  batch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_000, default: 200, description: 'Most records per Odoo round trip (load / create list); the sink lowers it while calls take longer than target_call_time and raises it back when they are quick.' })),
  target_call_time: Type.Optional(Type.String({ pattern: DURATION_PATTERN, default: '5s', description: 'How long one Odoo write call may take before the batch size shrinks (a real Odoo takes ~2 s per 200 bills).' })),
  max_in_flight: Type.Optional(Type.Integer({ minimum: 1, maximum: 32, default: 4, description: 'Partitions written concurrently (each partition\'s records stay in order). Raise it for an Odoo with several workers.' })),
  version: Type.Optional(Type.Object({
    field: Type.Optional(Type.String({ pattern: '^x_[a-z0-9_]+$', default: 'x_lifeline_version', description: 'A char field of the model (custom, x_) that holds the version of the event that last wrote the record.' })),
    header: Type.Optional(Type.String({ minLength: 1, default: 'lifeline.ingested-at', description: 'The header whose value (ISO date-time or epoch ms) is the event\'s version.' })),
    path: Type.Optional(Type.String({ minLength: 1, description: 'Instead of header: a dotted path in the record (a revision number, epoch ms or ISO date-time).' })),
  }, { additionalProperties: false, description: 'Monotonic writes: an event older than the version the record holds is skipped (outcome skipped_older), so a replay never moves a record backward nor adds chatter.' })),
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
interface VersionConfig { readonly field: string; readonly header: string; readonly path?: string }
type MatchConfig =
  | { readonly by: 'external_id'; readonly module: string; readonly key_path?: string }
  | { readonly by: 'field'; readonly field: string; readonly key_path?: string }
  | { readonly by: 'chain'; readonly steps: readonly ChainStep[]; readonly key_path?: string };
type ChainStep = { readonly field: string; readonly path: string } | { readonly link: LinkSpec };

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
  /** The event's version (monotonic writes), a fixed-width text that sorts as the versions do. */
  version?: string;
  /** Same content, newer version: only the version field is written. */
  bump?: boolean;
  /** The external id module.name (external id matching). */
  externalId?: string;
  /** Chain matching: which step found the record, for texts ({matched_by}). */
  matchedBy?: string;
}

interface ModelShape {
  readonly fields: Readonly<Record<string, FieldDescription>>;
  /** one2many field → its comodel's fields (for comparing lines). */
  readonly lineFields: Readonly<Record<string, Readonly<Record<string, FieldDescription>>>>;
  readonly modelId: number | undefined;
  /** Resolved links: linkKey → id. */
  readonly links: ReadonlyMap<string, number>;
}

class OdooSink implements Sink {
  private context!: SinkContext;
  private link!: OdooLink;
  private shape: ModelShape | undefined;
  private readonly references = new ReferenceCache();
  private readonly match: MatchConfig;
  private readonly fields: Readonly<Record<string, FieldSpec>>;
  private readonly maxBatchSize: number;
  /** Adapted to Odoo's answer times, between 1 and batch_size. */
  private batchSize: number;
  private lastCall: { records: number; ms: number } | undefined;
  /** Calls left during which the batch size stays put: the last shrink did not make calls faster. */
  private perCallCost = 0;
  private readonly targetCallMs: number;
  private readonly maxInFlight_: number;
  private shapeInProgress: Promise<ModelShape> | undefined;
  private readonly version: VersionConfig | undefined;
  private readonly createOnly: ReadonlySet<string>;
  private readonly lineFieldNames: ReadonlySet<string>;

  constructor(private readonly config: OdooSinkConfig) {
    this.match = matchOf(config.match);
    this.fields = parseFieldSpecs(config.fields ?? {});
    this.maxBatchSize = config.batch_size ?? 200;
    this.batchSize = this.maxBatchSize;
    this.targetCallMs = parseDuration(config.target_call_time ?? '5s') as number;
    this.maxInFlight_ = config.max_in_flight ?? 4;
    this.version = config.version ? { field: config.version.field ?? 'x_lifeline_version', header: config.version.header ?? 'lifeline.ingested-at', ...(config.version.path ? { path: config.version.path } : {}) } : undefined;
    this.createOnly = new Set(Object.entries(this.fields).filter(([, spec]) => spec.createOnly).map(([name]) => name));
    this.lineFieldNames = new Set(Object.entries(this.fields).filter(([, spec]) => isLines(spec)).map(([name]) => name));
    if (this.version && this.version.field in this.fields) throw new LifelineError('LL_CONFIG_INVALID', `odoo_sink version.field ${this.version.field} is also mapped under fields; the sink writes it itself`);
  }

  /** Partitions the host may write at once (max_in_flight): each write call then holds one partition. */
  get maxInFlight(): number {
    return this.maxInFlight_;
  }

  /** The batch size now (adaptive), for tests and the benchmark. */
  get currentBatchSize(): number {
    return this.batchSize;
  }

  async connect(context: SinkContext): Promise<void> {
    this.context = context;
    this.link = new OdooLink(context, this.config.connection, parseDuration(this.config.timeout ?? '60s') as number);
    // Odoo is first contacted by write(): while it is down the host retries, and the backlog waits in Kafka.
  }

  async write(records: readonly InputRecord[]): Promise<{ readonly failed: readonly SinkFailure[] }> {
    const failed: SinkFailure[] = [];
    try {
      const shape = this.shape ?? await this.describing();
      // One lane per partition, written concurrently (at most max_in_flight at a time); in a lane,
      // records keep their order, so a key's versions reach Odoo in the order they were produced.
      // Under `lifeline run` the host already hands each call one partition and runs up to
      // max_in_flight calls at once (see maxInFlight); a call with several partitions is split here.
      const lanes = new Map<string, InputRecord[]>();
      for (const record of records) {
        const lane = `${record.topic}|${record.partition}`;
        const list = lanes.get(lane);
        if (list) list.push(record);
        else lanes.set(lane, [record]);
      }
      await runBounded([...lanes.values()], this.maxInFlight_, async (lane) => {
        for (const chunk of this.chunks(lane, failed)) await this.writeChunk(chunk, shape, failed);
      });
    } catch (error) {
      throw pauseIfNotAboutRecords(error);
    }
    return { failed };
  }

  /**
   * Adapts the batch size to Odoo's answer time: a write call slower than target_call_time
   * shrinks the next batches in proportion (on a real Odoo a call costs ~10 ms a record, and a batch
   * must not reach the call timeout and be retried forever); calls well under it grow them back, up
   * to batch_size. When two calls of different sizes take about as long, the cost is per call (a
   * long transaction, a slow network), not per record: the full batch size then drains fastest, and
   * it is kept for the next calls. A slow call of one record says nothing about the cost per record
   * (one record is as small as a call gets), so it shrinks nothing: were it to shrink the batch size
   * to one, every later call would hold one record, no two calls would differ in size, and a
   * per-call delay (Odoo slow for everyone) would pin the sink at one record per call for good.
   */
  private adapt(callMs: number, records: number): void {
    if (records === 0) return;
    const previous = this.lastCall;
    this.lastCall = { records, ms: callMs };
    if (this.perCallCost > 0) {
      this.perCallCost--;
      return;
    }
    if (callMs > this.targetCallMs) {
      if (previous && previous.records !== records && isPerCallCost(previous, { records, ms: callMs })) {
        this.batchSize = this.maxBatchSize;
        this.perCallCost = 20;
        return;
      }
      if (records === 1) return;
      this.batchSize = Math.max(1, Math.min(this.batchSize, Math.floor(records * this.targetCallMs / callMs * 0.8)));
    } else if (callMs < this.targetCallMs / 2 && records >= this.batchSize && this.batchSize < this.maxBatchSize) {
      this.batchSize = Math.min(this.maxBatchSize, Math.ceil(this.batchSize * 1.5));
    }
  }

  async close(): Promise<void> {
    this.link?.close();
  }

  /** One describeModel at a time: concurrent writes (one per partition) share it; a failed one is tried again by the next write. */
  private describing(): Promise<ModelShape> {
    this.shapeInProgress ??= this.describeModel().finally(() => {
      this.shapeInProgress = undefined;
    });
    return this.shapeInProgress;
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
    if (this.match.by === 'chain') {
      for (const step of this.match.steps) if ('field' in step && !fields[step.field]) problems.push(`match.chain field ${step.field} is not a field of ${model}`);
    }
    if (this.match.by === 'field' && this.match.field in this.fields) {
      problems.push(`match field ${this.match.field} is also mapped under fields; the sink writes the key there itself (set match.key_path to take the key from the record)`);
    }
    if (this.version) {
      const versionField = fields[this.version.field];
      if (!versionField) {
        problems.push(`${this.version.field} is not a field of ${model}: create it as a char field (\`lifeline odoo seed\` does, or Settings → Technical → Fields), or drop version from the sink's config`);
      } else if (versionField.type !== 'char') {
        problems.push(`${this.version.field} on ${model} is a ${versionField.type} field; the version needs a char field`);
      }
    }
    for (const name of this.createOnly) if (isLines(this.fields[name] as FieldSpec)) problems.push(`${name}: create_only goes on the record's own fields`);
    for (const [name, spec] of Object.entries(this.fields)) {
      if (!isLines(spec) || spec.lines.taxes === undefined || spec.lines.taxes === 'product_default') continue;
      const lineTypes = lineFields[name];
      if (lineTypes && !lineTypes[spec.lines.taxField]) problems.push(`${name}: the lines have no ${spec.lines.taxField} field for taxes (set lines.tax_field)`);
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
    const links = await this.resolveLinks(fields, lineFields);
    this.shape = { fields, lineFields, modelId, links };
    this.context.logger.info({ model, odoo: this.link.client.describe, match: this.match.by }, 'writing to Odoo');
    return this.shape;
  }

  /**
   * The links of the mapping (fixed records: an operation type, a location, a tax), resolved once:
   * each must name exactly one record of the field's comodel. Any that does not stops the sink
   * with every problem named (retriable: it resumes once the record exists), before anything is written.
   */
  private async resolveLinks(fields: Readonly<Record<string, FieldDescription>>, lineFields: Readonly<Record<string, Readonly<Record<string, FieldDescription>>>>): Promise<ReadonlyMap<string, number>> {
    const resolved = new Map<string, number>();
    const problems: string[] = [];
    const chainLinks = this.match.by === 'chain'
      ? this.match.steps.flatMap((step, index) => ('link' in step ? [{ field: `match.chain[${index}]`, link: step.link }] : []))
      : [];
    for (const { field, link } of [...linksOf(this.fields), ...chainLinks]) {
      const key = linkKey(link);
      if (resolved.has(key)) continue;
      const [head, sub] = field.split('.') as [string, string | undefined];
      const relation = field.startsWith('match.') ? this.config.model : sub ? lineFields[head]?.[sub]?.relation : fields[head]?.relation;
      if (!relation) {
        problems.push(`${field}: not a relational field, cannot link it to ${describeLink(link)}`);
        continue;
      }
      const outcome = await resolveLink((operation, fn) => this.link.call(operation, fn), link, relation);
      if (typeof outcome === 'number') resolved.set(key, outcome);
      else problems.push(`${field}: ${outcome}`);
    }
    if (problems.length > 0) {
      const error = new LifelineError('LL_ODOO_LINK_UNRESOLVED', `${this.context.label}: ${problems.join('; ')} (run \`lifeline odoo check\` for the fix)`, { retriable: true });
      this.context.setHealth('down', error.message.slice(0, 300));
      throw error;
    }
    return resolved;
  }

  /** Batches of (the adaptive) batch size in which no key repeats, so each key's updates apply in order; made as they are written. */
  private *chunks(records: readonly InputRecord[], failed: SinkFailure[]): Generator<Item[]> {
    let current: Item[] = [];
    let keys = new Set<string>();
    for (const record of records) {
      if (record.value === null) continue; // a tombstone asks for nothing to be written
      const key = this.keyOf(record);
      if (!key) {
        const why = this.match.key_path
          ? `its value has nothing at match.key_path ${this.match.key_path}`
          : 'it has no lifeline.idempotency-key header and no record key';
        failed.push({ record, error: new LifelineError('LL_ODOO_VALUE_INVALID', `the record cannot be matched to an Odoo record: ${why}`) });
        continue;
      }
      if (current.length >= this.batchSize || keys.has(key)) {
        yield current;
        current = [];
        keys = new Set();
      }
      current.push({ record, key, ...(this.version ? { version: versionOf(record, this.version) } : {}) });
      keys.add(key);
    }
    if (current.length > 0) yield current;
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
          ...desiredValues(item.record.value, this.fields, resolve, shape.links),
          ...(this.match.by === 'field' ? { [this.match.field]: { kind: 'scalar', value: item.key } as const } : {}),
          ...(this.version && item.version ? { [this.version.field]: { kind: 'scalar', value: item.version } as const } : {}),
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

    if (this.match.by === 'chain') {
      // Nothing to create: only what differs on the found record is written.
    } else if (this.match.by === 'external_id') await this.upsertByLoad(live, failed);
    if (this.match.by !== 'external_id') await this.upsertByField(toCreate, live.filter((item) => item.outcome === 'updated' || item.bump), failed);

    let written = live.filter((item) => item.outcome !== undefined && item.odooId !== undefined);
    await this.notify(written, shape, failed);
    written = written.filter((item) => item.outcome !== undefined);
    const writeMs = Math.round(performance.now() - started);
    for (const item of written) this.emitResult(item, writeMs);
    for (const outcome of ['created', 'updated', 'unchanged', 'skipped_older'] as const) {
      const count = written.filter((item) => item.outcome === outcome).length;
      if (count > 0) this.link.metrics.wrote(outcome, count);
    }
    const skipped = written.filter((item) => item.outcome === 'skipped_older');
    if (skipped.length > 0) this.context.logger.info({ skipped: skipped.length, keys: skipped.slice(0, 5).map((item) => item.key) }, 'older events skipped: Odoo already holds a newer version');
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
    if (this.match.by === 'chain') return this.findByChain(items, this.match.steps, fail);
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

  /**
   * Chain matching: each step in order for the items still without a record — a field search
   * (one search per step for the batch), or the fixed fallback record. An item no step finds fails
   * with what each step looked for; it is never skipped in silence.
   */
  private async findByChain(items: Item[], steps: readonly ChainStep[], fail: (item: Item, error: unknown) => void): Promise<void> {
    const { model } = this.config;
    const misses = new Map<Item, string[]>(items.map((item) => [item, []]));
    for (const [index, step] of steps.entries()) {
      const open = items.filter((item) => item.odooId === undefined);
      if (open.length === 0) break;
      if ('link' in step) {
        const id = this.shape?.links.get(linkKey(step.link));
        for (const item of open) {
          if (id !== undefined) {
            item.odooId = id;
            item.matchedBy = `fallback ${describeLink(step.link)}`;
          } else {
            misses.get(item)?.push(`step ${index + 1}: ${describeLink(step.link)} did not resolve`);
          }
        }
        continue;
      }
      const values = new Map<Item, string>();
      for (const item of open) {
        const raw = readPath(item.record.value, step.path);
        if (typeof raw === 'string' && raw.trim() !== '' || typeof raw === 'number') values.set(item, String(raw));
        else misses.get(item)?.push(`step ${index + 1}: ${step.path} is empty, no ${step.field} to search`);
      }
      if (values.size === 0) continue;
      const rows = await this.link.call(`${model}.search_read`, (client) => client.searchRead(model, [[step.field, 'in', [...new Set(values.values())]]], { fields: [step.field] }));
      const byValue = new Map<string, number[]>();
      for (const row of rows) byValue.set(String(row[step.field]), [...(byValue.get(String(row[step.field])) ?? []), row.id]);
      for (const [item, value] of values) {
        const ids = byValue.get(value) ?? [];
        if (ids.length === 1) {
          item.odooId = ids[0];
          item.matchedBy = `${step.field} = ${value}`;
        } else {
          misses.get(item)?.push(`step ${index + 1}: ${ids.length === 0 ? 'no' : `${ids.length}`} ${model} with ${step.field} = ${JSON.stringify(value)}`);
        }
      }
    }
    for (const item of items) {
      if (item.odooId !== undefined) continue;
      fail(item, new LifelineError('LL_ODOO_OWNER_MISSING', `no ${model} record found for ${item.key}: ${(misses.get(item) ?? []).join('; ')}`));
    }
  }

  /** Reads what Odoo holds for the existing ones and decides updated or unchanged. */
  private async compare(items: Item[], shape: ModelShape): Promise<void> {
    if (items.length === 0) return;
    const { model } = this.config;
    const versionField = this.version?.field;
    const fieldNames = [...Object.keys(this.comparable((items[0] as Item).desired ?? {})), ...(versionField ? [versionField] : [])];
    const rows = await this.link.call(`${model}.read`, (client) => client.read(model, items.map((item) => item.odooId as number), fieldNames.length > 0 ? fieldNames : ['id']));
    const byId = new Map(rows.map((row) => [row.id, row as Record<string, unknown>]));
    // one2many fields: replace line ids by the lines' values, read once per comodel.
    for (const [field, lineTypes] of Object.entries(shape.lineFields)) {
      const relation = shape.fields[field]?.relation as string;
      const lineIds = rows.flatMap((row) => (Array.isArray(row[field]) ? (row[field] as number[]) : []));
      const spec = this.fields[field];
      const subfields = spec && isLines(spec)
        ? [...Object.keys(spec.lines.fields), ...(spec.lines.taxes !== undefined && spec.lines.taxes !== 'product_default' ? [spec.lines.taxField] : [])]
        : [];
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
      const held = versionField && typeof current[versionField] === 'string' ? current[versionField] as string : undefined;
      if (held !== undefined && item.version !== undefined && item.version < held) {
        // Odoo holds what a newer event wrote: writing this one would move the record backward.
        item.outcome = 'skipped_older';
        continue;
      }
      item.changed = differences(this.comparable(item.desired ?? {}), current, shape.fields, shape.lineFields);
      const newer = versionField !== undefined && item.version !== undefined && (held === undefined || item.version > held);
      const stamp = newer ? { [versionField as string]: { kind: 'scalar', value: item.version as string } as const } : {};
      if (Object.keys(item.changed).length > 0) {
        item.outcome = 'updated';
        item.changed = { ...item.changed, ...stamp };
      } else {
        // Same content: nothing a reader sees changes; a newer version is still recorded (an untracked field, no chatter).
        item.outcome = 'unchanged';
        if (newer) {
          item.bump = true;
          item.changed = stamp;
        }
      }
    }
  }

  /** What an update compares and may send: the mapping without create-only fields and the version. */
  private comparable(desired: DesiredRecord): DesiredRecord {
    return Object.fromEntries(Object.entries(desired).filter(([name]) => !this.createOnly.has(name) && name !== this.version?.field));
  }

  /** What an update sends: the mapping without create-only fields (the version included). */
  private updatable(desired: DesiredRecord): DesiredRecord {
    return Object.fromEntries(Object.entries(desired).filter(([name]) => !this.createOnly.has(name)));
  }

  /**
   * External ids: one `load` creates the new records with their external ids (lines included), one
   * more updates the changed ones, each in one transaction. Changed one2many lines go by write
   * instead (load would add lines, not replace them), and update rows carry no line columns at all.
   * A row Odoo rejects fails that record; the others are loaded again.
   */
  private async upsertByLoad(items: Item[], failed: SinkFailure[]): Promise<void> {
    const lineFieldNames = this.lineFieldNames;
    const creations = items.filter((item) => item.odooId === undefined);
    const updates = items.filter((item) => item.odooId !== undefined && (item.outcome === 'updated' || item.bump));
    const lineUpdates = updates.filter((item) => Object.keys(item.changed ?? {}).some((field) => lineFieldNames.has(field)));
    const flatUpdates = updates.filter((item) => !lineUpdates.includes(item));
    await this.loadAll(creations, (item) => item.desired ?? {}, failed);
    // Updates never carry create-only fields (Odoo refuses some, e.g. a picking's operation type).
    await this.loadAll(flatUpdates, (item) => withoutFields(this.updatable(item.desired ?? {}), lineFieldNames), failed);
    await this.writeEach(lineUpdates, failed);
  }

  private async loadAll(items: Item[], valuesOf: (item: Item) => DesiredRecord, failed: SinkFailure[]): Promise<void> {
    const { model } = this.config;
    let pending = items;
    for (let round = 0; pending.length > 0 && round < 5; round++) {
      const table = loadTable(pending.map((item) => ({ externalId: item.externalId as string, desired: valuesOf(item) })));
      const started = performance.now();
      const result: LoadResult = await this.link.call(`${model}.load`, (client) => client.load(model, table.fields, table.rows));
      this.adapt(performance.now() - started, pending.length);
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
        if (!item.bump) item.outcome = 'updated';
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
    // Subscribers match a result to what they sent by the idempotency key (README: result events).
    const headers: Record<string, string> = { 'lifeline.idempotency-key': item.record.headers['lifeline.idempotency-key'] || item.key };
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

/**
 * An event's version as a fixed-width text that sorts as versions do: the version source (the
 * ingest time header by default, or a path) as epoch ms, then the input offset to order events of
 * the same millisecond (a key's events share a partition, so their offsets follow their order).
 */
export function versionOf(record: InputRecord, config: VersionConfig): string {
  const raw = config.path ? readPath(record.value, config.path) : record.headers[config.header];
  let number = typeof raw === 'number' || typeof raw === 'bigint' ? Number(raw) : Number.NaN;
  if (typeof raw === 'string') number = /^\d+$/.test(raw.trim()) ? Number(raw) : Date.parse(raw);
  if (!Number.isFinite(number) || number < 0) number = record.timestamp;
  return `${Math.trunc(number).toString().padStart(15, '0')}.${record.offset.padStart(19, '0')}`;
}

/** Runs tasks with at most `limit` at once; the first failure stops new ones and is thrown once the running ones settle. */
async function runBounded<T>(tasks: readonly T[], limit: number, run: (task: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < tasks.length) {
      const task = tasks[next++] as T;
      try {
        await run(task);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw failure.error;
}

/** How a caller makes an Odoo call (through an OdooLink's metrics, or directly). */
export type OdooCall = <T>(operation: string, fn: (client: OdooClient) => Promise<T>) => Promise<T>;

/**
 * One link to its id: an external id (of the right model), the first record a domain finds, or an
 * existing id. A text (what is wrong, for a person) when it does not resolve.
 */
export async function resolveLink(call: OdooCall, spec: LinkSpec, relation: string): Promise<number | string> {
  const link = { call };
  if (spec.external_id) {
    const dot = spec.external_id.indexOf('.');
    const [module, name] = [spec.external_id.slice(0, dot), spec.external_id.slice(dot + 1)];
    const rows = await link.call('ir.model.data.search_read', (client) => client.searchRead('ir.model.data', [['module', '=', module], ['name', '=', name]], { fields: ['model', 'res_id'] }));
    const row = rows[0];
    if (!row) return `no record has the external id ${spec.external_id} (install the app that defines it, or create it with \`lifeline odoo seed\`)`;
    if (row.model !== relation) return `${spec.external_id} is a ${String(row.model)} record, the field needs a ${relation}`;
    const exists = await link.call(`${relation}.search_count`, (client) => client.searchCount(relation, [['id', '=', Number(row.res_id)]], { active_test: false }));
    return exists === 1 ? Number(row.res_id) : `${spec.external_id} points at ${relation} id ${String(row.res_id)}, which no longer exists`;
  }
  if (spec.id !== undefined) {
    const exists = await link.call(`${relation}.search_count`, (client) => client.searchCount(relation, [['id', '=', spec.id as number]], { active_test: false }));
    return exists === 1 ? spec.id : `no ${relation} has id ${spec.id}`;
  }
  const model = spec.model as string;
  if (model !== relation) return `the link searches ${model}, the field needs a ${relation}`;
  const ids = await link.call(`${model}.search`, (client) => client.search(model, spec.domain as never, { limit: 1 }));
  return ids.length === 1 ? ids[0] as number : `no ${model} matches ${JSON.stringify(spec.domain)}`;
}

function matchOf(match: OdooSinkConfig['match']): MatchConfig {
  const keyPath = match?.key_path ? { key_path: match.key_path } : {};
  if (match?.by === 'chain') {
    if (!match.chain) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.chain is required when match.by is chain');
    const steps = match.chain.map((step, index): ChainStep => {
      if (step.link && !step.field && !step.path) return { link: step.link };
      if (step.field && step.path && !step.link) return { field: step.field, path: step.path };
      throw new LifelineError('LL_CONFIG_INVALID', `odoo_sink match.chain[${index}]: give { field, path } or { link }`);
    });
    return { by: 'chain', steps, ...keyPath };
  }
  if (match?.chain) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.chain goes with match.by: chain');
  if (match?.by === 'field') {
    if (!match.field) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.field is required when match.by is field');
    return { by: 'field', field: match.field, ...keyPath };
  }
  if (match?.field) throw new LifelineError('LL_CONFIG_INVALID', 'odoo_sink match.field goes with match.by: field');
  return { by: 'external_id', module: match?.module ?? 'lifeline', ...keyPath };
}

function placeholders(item: Item): Record<string, string | number> {
  return { key: item.key, odoo_id: item.odooId ?? '', outcome: item.outcome ?? '', matched_by: item.matchedBy ?? '' };
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
 * soon — the login refused, an access error on the model, an untrusted certificate — pauses the sink instead of
 * dead-lettering every record: operators fix the credentials or rights and the backlog drains.
 */
function pauseIfNotAboutRecords(error: unknown): unknown {
  const code = errorCode(error);
  if (!isRetriable(error) && (code === 'LL_ODOO_AUTH_FAILED' || code === 'LL_ODOO_ACCESS_DENIED' || code === 'LL_ODOO_ACCESS_ERROR' || code === 'LL_ODOO_PROTOCOL' || code === 'LL_ODOO_TLS_UNTRUSTED')) {
    return new LifelineError(code, errorMessage(error), { cause: error, retriable: true });
  }
  return error;
}

/**
 * Whether two calls of different sizes show a cost per call rather than per record: the larger one
 * took less than half the time a cost per record would give it (the smaller one's, times the size ratio).
 */
function isPerCallCost(a: { readonly records: number; readonly ms: number }, b: { readonly records: number; readonly ms: number }): boolean {
  const [small, large] = a.records < b.records ? [a, b] : [b, a];
  return large.ms < small.ms * (large.records / small.records) / 2;
}
