import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import xmlrpc from 'xmlrpc';
import { LifelineError } from '../../src/errors.ts';
import type { OdooConnection } from './odoo-connection.ts';
import { odooError } from './odoo-faults.ts';
import { trustedCas, untrustedCertificate } from '../../src/component/tls-trust.ts';
import { assertSendable, type OdooDomain, type OdooRecord, type OdooValue, type OdooValues } from './odoo-values.ts';

/**
 * A client for Odoo's external XML-RPC API (/xmlrpc/2/common and /xmlrpc/2/object), the API every
 * Odoo from 8 to 18 serves. It authenticates once, keeps connections alive, times calls out, checks
 * outgoing values (no JS Dates, 32-bit integers) and turns faults into LifelineErrors with a
 * `retriable` flag. It does not retry: callers decide, with src/retry.ts.
 */
export interface OdooClientOptions {
  readonly url: string;
  readonly database: string;
  readonly username: string;
  /** Password or API key (Odoo 14+ accepts an API key wherever the password goes). */
  readonly password: string;
  /** Per call; a call still running then fails as LL_ODOO_UNAVAILABLE (it may have been committed). */
  readonly timeoutMs?: number;
  /** Connections kept open to the server. */
  readonly maxSockets?: number;
  /** Sent as kwargs.context on every object call; `tz: 'UTC'` keeps `load` from shifting datetimes. */
  readonly context?: Readonly<Record<string, OdooValue>>;
  /** Aborts calls in flight, e.g. when the runtime stops. */
  readonly signal?: AbortSignal;
  /** PEM file of a (private) CA to trust for an https:// url, besides Node's own roots. */
  readonly caFile?: string;
}

export interface OdooVersion {
  readonly server_version: string;
  readonly server_version_info: readonly (string | number)[];
  readonly server_serie: string;
  readonly protocol_version: number;
}

export interface SearchOptions {
  readonly offset?: number;
  readonly limit?: number;
  /** e.g. `write_date asc, id asc`. */
  readonly order?: string;
  readonly context?: Readonly<Record<string, OdooValue>>;
}

export interface SearchReadOptions extends SearchOptions {
  /** Fields to return; all when absent (slow on wide models: name them). */
  readonly fields?: readonly string[];
}

export interface FieldDescription {
  readonly type: string;
  readonly string?: string;
  readonly required?: boolean;
  readonly readonly?: boolean;
  readonly relation?: string;
  readonly selection?: ReadonlyArray<readonly [string, string]>;
  readonly [attribute: string]: unknown;
}

export interface LoadMessage {
  readonly type: 'error' | 'warning' | 'info';
  readonly message: string;
  /** Index of the record (not the row) the message is about. */
  readonly record?: number;
  readonly field?: string;
  readonly rows?: { readonly from: number; readonly to: number };
}

export interface LoadResult {
  /** One id per record, in order; false when any row failed (and nothing was saved). */
  readonly ids: readonly number[] | false;
  readonly messages: readonly LoadMessage[];
  readonly nextrow: number;
}

type ClientOptions = Exclude<Parameters<typeof xmlrpc.createClient>[0], string>;

export const DEFAULT_ODOO_TIMEOUT_MS = 60_000;
const DEFAULT_CONTEXT = Object.freeze({ tz: 'UTC' });

export class OdooClient {
  private readonly agent: HttpAgent;
  private readonly secure: boolean;
  private readonly base: URL;
  private uidPromise: Promise<number> | undefined;

  constructor(private readonly options: OdooClientOptions) {
    this.base = new URL(options.url);
    this.secure = this.base.protocol === 'https:';
    const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 8 };
    this.agent = this.secure ? new HttpsAgent({ ...agentOptions, ...(options.caFile ? { ca: trustedCas(options.caFile) } : {}) }) : new HttpAgent(agentOptions);
  }

  static fromConnection(connection: OdooConnection, options: Partial<OdooClientOptions> = {}): OdooClient {
    const { ca_file: caFile, ...rest } = connection;
    return new OdooClient({ ...rest, ...(caFile ? { caFile } : {}), ...options });
  }

  /** Where calls go, without credentials: for logs and messages. */
  get describe(): string {
    return `${this.base.origin} db ${this.options.database} as ${this.options.username}`;
  }

  version(): Promise<OdooVersion> {
    return this.call<OdooVersion>('common', 'version', [], 'common.version');
  }

  /**
   * The user id. Odoo answers a wrong password or API key with `false`, not a fault; that becomes
   * LL_ODOO_AUTH_FAILED, which is permanent. Cached; `authenticate(true)` asks again.
   */
  authenticate(refresh = false): Promise<number> {
    if (refresh || !this.uidPromise) {
      const { database, username, password } = this.options;
      const attempt = this.call<number | false>('common', 'authenticate', [database, username, password, {}], 'common.authenticate')
        .then((uid) => {
          if (typeof uid !== 'number' || uid <= 0) {
            throw new LifelineError('LL_ODOO_AUTH_FAILED',
              `Odoo at ${this.describe} refused the login (authenticate returned false): check the database, username and password or API key`,
              { details: { url: this.base.origin, database, username } });
          }
          return uid;
        });
      // A failure is not cached: the next call tries again (Odoo may have been down).
      attempt.catch(() => { if (this.uidPromise === attempt) this.uidPromise = undefined; });
      this.uidPromise = attempt;
    }
    return this.uidPromise;
  }

  /** `execute_kw(db, uid, password, model, method, args, kwargs)`. */
  async executeKw<T>(model: string, method: string, args: readonly unknown[], kwargs: Readonly<Record<string, unknown>> = {}): Promise<T> {
    const uid = await this.authenticate();
    const context = { ...DEFAULT_CONTEXT, ...(this.options.context ?? {}), ...((kwargs.context as Record<string, unknown> | undefined) ?? {}) };
    const params = [this.options.database, uid, this.options.password, model, method, args, { ...kwargs, context }];
    return this.call<T>('object', 'execute_kw', params, `${model}.${method}`);
  }

  searchRead<R extends OdooRecord = OdooRecord>(model: string, domain: OdooDomain, options: SearchReadOptions = {}): Promise<R[]> {
    return this.executeKw<R[]>(model, 'search_read', [domain], searchKwargs(options, true));
  }

  /** Deleted ids are simply absent from the answer (Odoo returns no fault for them). */
  read<R extends OdooRecord = OdooRecord>(model: string, ids: readonly number[], fields?: readonly string[], context?: SearchOptions['context']): Promise<R[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.executeKw<R[]>(model, 'read', [ids], { ...(fields ? { fields } : {}), ...(context ? { context } : {}) });
  }

  search(model: string, domain: OdooDomain, options: SearchOptions = {}): Promise<number[]> {
    return this.executeKw<number[]>(model, 'search', [domain], searchKwargs(options, false));
  }

  searchCount(model: string, domain: OdooDomain, context?: SearchOptions['context']): Promise<number> {
    return this.executeKw<number>(model, 'search_count', [domain], context ? { context } : {});
  }

  fieldsGet(model: string, attributes: readonly string[] = ['type', 'string', 'required', 'readonly', 'relation', 'selection']): Promise<Record<string, FieldDescription>> {
    return this.executeKw<Record<string, FieldDescription>>(model, 'fields_get', [], { attributes });
  }

  /** One record: its id. A list: one id per record, all created in one transaction (and stamped with one write_date). */
  create(model: string, values: OdooValues): Promise<number>;
  create(model: string, values: readonly OdooValues[]): Promise<number[]>;
  async create(model: string, values: OdooValues | readonly OdooValues[]): Promise<number | number[]> {
    if (Array.isArray(values)) {
      if (values.length === 0) return [];
      const ids = await this.executeKw<number[] | number>(model, 'create', [values]);
      return Array.isArray(ids) ? ids : [ids];
    }
    const id = await this.executeKw<number | number[]>(model, 'create', [values]);
    return Array.isArray(id) ? (id[0] as number) : id;
  }

  async write(model: string, ids: readonly number[], values: OdooValues): Promise<true> {
    await this.executeKw<boolean>(model, 'write', [ids, values]);
    return true;
  }

  /**
   * `load(fields, rows)`: Odoo's import. With an `id` column (external ids) it creates or updates
   * by external id in one call and one transaction. Values are strings in import form; a row Odoo
   * rejects comes back as an error message and then nothing of the call is saved.
   */
  load(model: string, fields: readonly string[], rows: ReadonlyArray<readonly string[]>, context?: SearchOptions['context']): Promise<LoadResult> {
    return this.executeKw<LoadResult>(model, 'load', [fields, rows], context ? { context } : {});
  }

  /** Any other public model method, e.g. `message_post` (returns the message id) or `action_post`. */
  callMethod<T>(model: string, method: string, args: readonly unknown[] = [], kwargs: Readonly<Record<string, unknown>> = {}): Promise<T> {
    return this.executeKw<T>(model, method, args, kwargs);
  }

  close(): void {
    this.agent.destroy();
  }

  private call<T>(service: 'common' | 'object', method: string, params: readonly unknown[], operation: string): Promise<T> {
    assertSendable(params, operation);
    const timeout = AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_ODOO_TIMEOUT_MS);
    const signal = this.options.signal ? AbortSignal.any([timeout, this.options.signal]) : timeout;
    // http.request takes the agent and the abort signal; the xmlrpc package hands its options through.
    const clientOptions: ClientOptions & { agent: HttpAgent; signal: AbortSignal } = {
      host: this.base.hostname,
      port: Number(this.base.port) || (this.secure ? 443 : 80),
      path: `${this.base.pathname.replace(/\/$/, '')}/xmlrpc/2/${service}`,
      headers: {},
      agent: this.agent,
      signal,
    };
    const client = this.secure ? xmlrpc.createSecureClient(clientOptions) : xmlrpc.createClient(clientOptions);
    return new Promise<T>((resolve, reject) => {
      client.methodCall(method, [...params], (error: unknown, value: unknown) => {
        if (error) {
          const untrusted = untrustedCertificate(error);
          const reason = timeout.aborted
            ? new LifelineError('LL_ODOO_UNAVAILABLE', `Odoo ${operation}: no answer within ${this.options.timeoutMs ?? DEFAULT_ODOO_TIMEOUT_MS} ms`, { cause: error })
            : untrusted
              ? new LifelineError('LL_ODOO_TLS_UNTRUSTED',
                `Odoo ${operation}: the TLS certificate of ${this.base.origin} is not trusted (${untrusted.code}: ${untrusted.message}). `
                + `Fix: set connections.odoo.<name>.ca_file (e.g. "\${ODOO_CA_FILE}") to the PEM of the CA that signed Odoo's certificate${this.options.caFile ? ` (now ${this.options.caFile}, which did not sign it)` : ''}, and use a host name the certificate names.`,
                { cause: error, details: { url: this.base.origin } })
              : odooError(error, operation);
          reject(reason);
        } else {
          resolve(value as T);
        }
      });
    });
  }
}

function searchKwargs(options: SearchReadOptions, withFields: boolean): Record<string, unknown> {
  return {
    ...(withFields && options.fields ? { fields: options.fields } : {}),
    ...(options.offset ? { offset: options.offset } : {}),
    ...(options.limit !== undefined ? { limit: options.limit } : {}),
    ...(options.order ? { order: options.order } : {}),
    ...(options.context ? { context: options.context } : {}),
  };
}
