import { setTimeout as sleep } from 'node:timers/promises';
import { Type, type Static } from '@sinclair/typebox';
import { LifelineError, errorCode, errorMessage } from '../../src/errors.ts';
import { retry } from '../../src/retry.ts';
import { defineSource, type Source, type SourceBatch, type SourceContext, type SourceRecord } from '../../src/component/component.ts';
import { odooConnectionKind } from './odoo-connection.ts';
import { DURATION_PATTERN, parseDuration } from '../../src/component/duration.ts';
import type { OdooClient } from './odoo-client.ts';
import { CursorState, parseCursor } from './odoo-cursor.ts';
import { OdooLink } from './odoo-link.ts';
import { OdooRecordMapper } from './odoo-record-mapper.ts';
import { shiftOdooDatetime, toOdooDatetime, type OdooDomain, type OdooRecord } from './odoo-values.ts';

const Duration = (description: string, defaultValue?: string) =>
  Type.String({ pattern: DURATION_PATTERN, description, ...(defaultValue ? { default: defaultValue } : {}) });

const OdooSourceConfig = Type.Object({
  connection: Type.String({ minLength: 1, description: 'Name of the Odoo connection under connections.odoo.', examples: ['main'] }),
  model: Type.String({ pattern: '^[a-z][a-z0-9_]*(\\.[a-z0-9_]+)*$', description: 'The Odoo model to read.', examples: ['res.partner'] }),
  fields: Type.Array(Type.String({ pattern: '^[a-z_][a-z0-9_]*$' }), {
    minItems: 1, description: 'Fields to read and emit (id and write_date always are); the output topic\'s value schema names the same fields.',
    examples: [['name', 'ref', 'email', 'parent_id', 'active']],
  }),
  domain: Type.Optional(Type.Array(Type.Unknown(), { default: [], description: 'An Odoo domain (prefix notation) the records must also match.', examples: [[['customer_rank', '>', 0]]] })),
  include_archived: Type.Optional(Type.Boolean({ default: false, description: 'Also read archived records (active = false); emit `active` to tell them apart. When off, an archived record stops appearing (and reconciliation tombstones it).' })),
  poll_interval: Type.Optional(Duration('How long to wait after a pass that reached the newest change.', '5s')),
  page_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000, default: 500, description: 'Records per search_read page, and at most per Kafka transaction.' })),
  overlap: Type.Optional(Duration(
    'How far before the newest write_date each pass starts again. Odoo stamps write_date at transaction start, so a long transaction commits rows older than the cursor: this must exceed Odoo\'s longest transaction. Rows changed within it are read again each pass and dropped if already emitted.',
    '10m',
  )),
  start_from: Type.Optional(Type.String({
    pattern: '^(beginning|now|\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2})$', default: 'beginning',
    description: 'Where the first run starts: `beginning` (every record), `now`, or a UTC datetime `YYYY-MM-DD HH:MM:SS`.',
  })),
  money_fields: Type.Optional(Type.Array(Type.String(), { default: [], description: 'Float fields holding money (e.g. list_price), emitted as exact minor units (long) like monetary fields.' })),
  money_decimals: Type.Optional(Type.Integer({ minimum: 0, maximum: 6, default: 2, description: 'Decimal places of the minor units money is emitted in (2: cents).' })),
  reconcile_interval: Type.Optional(Duration('How often to look for emitted records that were deleted, archived or no longer match the domain, and emit a tombstone (null value) for each. Off when absent.')),
  max_remembered: Type.Optional(Type.Integer({ minimum: 100, maximum: 40_000, default: 20_000, description: 'Most emitted versions remembered (in the cursor, about 25 bytes each: it must fit one Kafka message) to recognise re-read rows; beyond it the oldest are forgotten, which can repeat a record but never loses one.' })),
  timeout: Type.Optional(Duration('Time limit of one Odoo call.', '60s')),
  max_backoff: Type.Optional(Duration('Longest wait between attempts while Odoo is unreachable.', '30s')),
}, { additionalProperties: false });

export type OdooSourceConfig = Static<typeof OdooSourceConfig>;

interface SourceSettings {
  readonly connection: string;
  readonly model: string;
  readonly fields: readonly string[];
  readonly domain: OdooDomain;
  readonly includeArchived: boolean;
  readonly pollIntervalMs: number;
  readonly pageSize: number;
  readonly overlapSeconds: number;
  readonly startFrom: string;
  readonly moneyFields: readonly string[];
  readonly moneyDecimals: number;
  readonly reconcileIntervalMs: number | undefined;
  readonly maxRemembered: number;
  readonly timeoutMs: number;
  readonly maxBackoffMs: number;
}

const BEGINNING = '1970-01-01 00:00:00';
/** Ids per page when reconciliation lists the live records. */
const RECONCILE_PAGE = 5_000;

function settingsOf(config: OdooSourceConfig): SourceSettings {
  return Object.freeze({
    connection: config.connection,
    model: config.model,
    fields: config.fields,
    domain: (config.domain ?? []) as unknown as OdooDomain,
    includeArchived: config.include_archived ?? false,
    pollIntervalMs: parseDuration(config.poll_interval ?? '5s') as number,
    pageSize: config.page_size ?? 500,
    overlapSeconds: Math.ceil((parseDuration(config.overlap ?? '10m') as number) / 1000),
    startFrom: config.start_from ?? 'beginning',
    moneyFields: config.money_fields ?? [],
    moneyDecimals: config.money_decimals ?? 2,
    reconcileIntervalMs: config.reconcile_interval ? parseDuration(config.reconcile_interval) : undefined,
    maxRemembered: config.max_remembered ?? 20_000,
    timeoutMs: parseDuration(config.timeout ?? '60s') as number,
    maxBackoffMs: parseDuration(config.max_backoff ?? '30s') as number,
  });
}

/**
 * Polls one Odoo model over XML-RPC for changes, ordered `write_date asc, id asc`, and emits each
 * change once, keyed `<model>:<id>`, with the cursor committed in the same Kafka transaction.
 */
export const odooSource = defineSource({
  kind: 'source',
  type: 'odoo_source',
  description: 'Polls an Odoo model over XML-RPC (write_date, id cursor with overlap and dedupe) and emits every change exactly once, keyed <model>:<id>; optional reconciliation emits tombstones for deleted or archived records.',
  stateful: false,
  connections: [odooConnectionKind],
  outputs: ['records'],
  config: OdooSourceConfig,
  create: (config) => new OdooSource(settingsOf(config)),
});

class OdooSource implements Source {
  private context!: SourceContext;
  private link!: OdooLink;
  private state!: CursorState;
  private mapper: OdooRecordMapper | undefined;
  private hasActiveField = false;
  private passFinishedAt = 0;
  /** A cursor that must be committed before anything else (the `now` starting point). */
  private pendingCursor = false;

  constructor(private readonly settings: SourceSettings) {}

  async connect(context: SourceContext): Promise<void> {
    this.context = context;
    this.link = new OdooLink(context, this.settings.connection, this.settings.timeoutMs);
    this.state = new CursorState(parseCursor(context.cursor), this.settings.reconcileIntervalMs !== undefined);
    if (context.cursor === undefined && this.settings.startFrom !== 'beginning') {
      // Remember where "now" was, so a restart before the first change does not move it.
      this.state.highWater = this.settings.startFrom === 'now' ? toOdooDatetime(Date.now()) : this.settings.startFrom;
      this.state.pass = null;
      this.pendingCursor = true;
    }
    // Odoo is not contacted here: a source must start (and report `down`) while Odoo is unreachable.
  }

  async produce(): Promise<SourceBatch | undefined> {
    const { signal } = this.context;
    if (this.pendingCursor) {
      this.pendingCursor = false;
      return { records: [], cursor: this.state.snapshot() };
    }
    const mapper = this.mapper ?? await this.describeModel();
    if (!mapper) return undefined;
    while (!signal.aborted) {
      if (this.state.pass === null) {
        const wait = this.passFinishedAt + this.settings.pollIntervalMs - Date.now();
        if (wait > 0) {
          await sleep(wait, undefined, { signal }).catch(() => undefined);
          return undefined;
        }
        const tombstones = await this.reconcile();
        if (tombstones) return tombstones;
        this.state.pass = { after: this.passStart(), skip: 0 };
      }
      const pass = this.state.pass;
      const rows = await this.withRetry('search_read', (client) => client.searchRead(this.settings.model, [...this.settings.domain, ['write_date', '>=', pass.after]], {
        fields: mapper.readFields, order: 'write_date asc, id asc', limit: this.settings.pageSize, offset: pass.skip, ...this.searchContext(),
      }));
      if (rows === undefined) return undefined;
      const records = this.newVersions(mapper, rows);
      this.advance(pass, rows);
      if (records.length > 0) return { records, cursor: this.state.snapshot() };
    }
    return undefined;
  }

  async acknowledge(): Promise<void> {
    // The records and the cursor are committed together; nothing is left to do.
  }

  async fail(_batch: SourceBatch, error: unknown, committedCursor: unknown): Promise<void> {
    this.context.logger.warn({ err: errorMessage(error), code: errorCode(error) }, 'batch not committed; rewinding to the committed cursor');
    this.state = new CursorState(parseCursor(committedCursor), this.settings.reconcileIntervalMs !== undefined);
    this.passFinishedAt = 0;
  }

  async close(): Promise<void> {
    this.link?.close();
  }

  /** fields_get once: it checks the configured fields and decides how each one is emitted. */
  private async describeModel(): Promise<OdooRecordMapper | undefined> {
    const described = await this.withRetry('fields_get', (client) => client.fieldsGet(this.settings.model));
    if (!described) return undefined;
    this.hasActiveField = 'active' in described;
    try {
      this.mapper = new OdooRecordMapper({ model: this.settings.model, fields: this.settings.fields, moneyFields: this.settings.moneyFields, moneyDecimals: this.settings.moneyDecimals }, described);
    } catch (error) {
      this.context.setHealth('down', errorMessage(error));
      throw error;
    }
    this.context.logger.info({ model: this.settings.model, odoo: this.link.client.describe }, 'reading Odoo');
    return this.mapper;
  }

  private searchContext(): { context?: Record<string, boolean> } {
    return this.settings.includeArchived && this.hasActiveField ? { context: { active_test: false } } : {};
  }

  private passStart(): string {
    if (this.state.highWater === null) return this.settings.startFrom === 'beginning' ? BEGINNING : this.settings.startFrom;
    const start = shiftOdooDatetime(this.state.highWater, -this.settings.overlapSeconds);
    return start < BEGINNING ? BEGINNING : start;
  }

  private newVersions(mapper: OdooRecordMapper, rows: readonly OdooRecord[]): SourceRecord[] {
    const records: SourceRecord[] = [];
    for (const row of rows) {
      const value = mapper.toAvro(row);
      const writeDate = String(value.write_date);
      const hash = OdooRecordMapper.contentHash(value);
      if (this.state.alreadyEmitted(row.id, writeDate, hash)) continue;
      this.state.emitted(row.id, writeDate, hash);
      const key = `${this.settings.model}:${row.id}`;
      records.push({ output: 'records', key, value, headers: { 'lifeline.idempotency-key': `${key}@${writeDate}#${hash}` } });
    }
    return records;
  }

  /** Moves the pass past a page: on within the same second by offset, or to the last row's second. */
  private advance(pass: { after: string; skip: number }, rows: readonly OdooRecord[]): void {
    if (rows.length < this.settings.pageSize) {
      this.state.pass = null;
      this.passFinishedAt = Date.now();
    } else {
      const last = String((rows[rows.length - 1] as OdooRecord).write_date);
      const inLastSecond = rows.filter((row) => row.write_date === last).length;
      this.state.pass = last === pass.after ? { after: last, skip: pass.skip + rows.length } : { after: last, skip: inLastSecond };
    }
    const position = this.state.pass?.after;
    const overlapStart = this.passStart();
    const threshold = position !== undefined && position < overlapStart ? position : overlapStart;
    const dropped = this.state.prune(threshold, this.settings.maxRemembered);
    if (dropped > 0) {
      this.context.logger.warn({ dropped, max_remembered: this.settings.maxRemembered }, 'more versions changed within the overlap than max_remembered; the oldest were forgotten and may be emitted again');
    }
  }

  /** Tombstones for emitted records that no longer exist (or are archived, or left the domain), when it is time. */
  private async reconcile(): Promise<SourceBatch | undefined> {
    const interval = this.settings.reconcileIntervalMs;
    if (interval === undefined) return undefined;
    if (this.state.reconciledAt !== undefined && Date.now() - this.state.reconciledAt < interval) return undefined;
    const known = this.state.knownIds();
    const live = new Set<number>();
    for (let after = 0; ;) {
      const ids = await this.withRetry('search', (client) => client.search(this.settings.model, [...this.settings.domain, ['id', '>', after]], {
        order: 'id asc', limit: RECONCILE_PAGE, ...this.searchContext(),
      }));
      if (ids === undefined) return undefined;
      for (const id of ids) live.add(id);
      if (ids.length < RECONCILE_PAGE) break;
      after = ids[ids.length - 1] as number;
    }
    this.state.reconciledAt = Date.now();
    const gone = known.filter((id) => !live.has(id));
    if (gone.length === 0) return undefined;
    this.context.logger.info({ model: this.settings.model, tombstones: gone.length }, 'reconciliation: records deleted, archived or out of the domain');
    for (const id of gone) this.state.removed(id);
    return {
      records: gone.map((id) => ({ output: 'records', key: `${this.settings.model}:${id}`, value: null, headers: { 'lifeline.idempotency-key': `${this.settings.model}:${id}@deleted` } })),
      cursor: this.state.snapshot(),
    };
  }

  /** An Odoo call retried with backoff for as long as Odoo is unreachable; undefined once the runtime stops. */
  private async withRetry<T>(operation: string, call: (client: OdooClient) => Promise<T>): Promise<T | undefined> {
    const { signal, logger } = this.context;
    try {
      return await retry(() => this.link.call(`${this.settings.model}.${operation}`, call), {
        retries: Number.MAX_SAFE_INTEGER, initialDelayMs: 250, maxDelayMs: this.settings.maxBackoffMs, factor: 2, jitter: 0.5,
        operation: `${this.settings.model}.${operation}`, signal,
        onRetry: ({ attempt, delayMs, error }) => {
          if (attempt === 1 || attempt % 10 === 0) logger.warn({ attempt, delayMs, code: errorCode(error), err: errorMessage(error) }, 'Odoo call failed; retrying');
        },
      });
    } catch (error) {
      if (signal.aborted) return undefined;
      if (error instanceof LifelineError && error.code !== 'LL_RETRY_EXHAUSTED') logger.error({ code: error.code, err: error.message }, 'Odoo refused the call');
      throw error;
    }
  }
}
