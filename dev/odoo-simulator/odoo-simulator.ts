import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { FailureSwitches, type CostModel, type DownMode, type InjectedFailure, type SlowScope } from './failure-switches.ts';
import { modelNamed } from './model-definitions.ts';
import { OdooFault, accessDenied, applicationError, serializationFailure } from './odoo-fault.ts';
import { Orm } from './orm.ts';
import { RecordStore } from './record-store.ts';
import { SIMULATOR_API_KEY, SIMULATOR_USERS, seedDatabase, type SimulatorUser } from './seed-data.ts';
import { faultResponse, methodResponse, readMethodCall } from './xmlrpc-wire.ts';

/**
 * An HTTP server that speaks Odoo 17's external XML-RPC API (/xmlrpc/2/common, /xmlrpc/2/object,
 * /xmlrpc/2/db) over an in-memory database, for tests and local runs. Lifeline's Odoo connectors
 * cannot tell it from a real Odoo for what they use; pointing them at a real one changes only
 * connection settings. Failure switches (down, slow, fail next N, reject a value) are reachable
 * in-process (`control`) and over HTTP (`POST /__simulator/control`, `GET /__simulator/state`).
 */
export interface OdooSimulatorOptions {
  /** 0 picks a free port. */
  readonly port?: number;
  readonly host?: string;
  readonly database?: string;
  /** Start with the healthcare seed data (default true). */
  readonly seed?: boolean;
}

export interface OdooSimulator {
  readonly url: string;
  readonly port: number;
  readonly database: string;
  /** A user with an API key, for connectors. */
  readonly credentials: { readonly username: string; readonly password: string };
  readonly control: FailureSwitches;
  readonly store: RecordStore;
  /** execute_kw calls answered, by `model.method`. */
  stats(): Record<string, number>;
  /**
   * The last execute_kw calls (at most 10,000), each with when it started and ended (ms since
   * epoch): a test sees from them how many calls a client had in flight at once.
   */
  callLog(): readonly CallSpan[];
  /**
   * `commit` ({ model, method, rows }) right after a writing call committed and before its answer
   * is sent: the moment to kill a client to leave Odoo ahead of what the client knows.
   */
  readonly events: EventEmitter<{ commit: [{ model: string; method: string; rows: number }] }>;
  close(): Promise<void>;
}

export const DEFAULT_SIMULATOR_DATABASE = 'stmarys';

export interface CallSpan {
  readonly model: string;
  readonly method: string;
  readonly startedAt: number;
  readonly endedAt: number;
  /** Rows the call wrote (0 for a read). */
  readonly rows: number;
}

const CALL_LOG_LIMIT = 10_000;

/** The most calls in flight at one moment among `spans` (a call ending at t does not overlap one starting at t). */
export function peakConcurrency(spans: readonly CallSpan[]): number {
  const edges = spans.flatMap((span) => [{ at: span.startedAt, delta: 1 }, { at: span.endedAt, delta: -1 }]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let now = 0;
  let peak = 0;
  for (const edge of edges) {
    now += edge.delta;
    peak = Math.max(peak, now);
  }
  return peak;
}

const VERSION = {
  server_version: '17.0',
  server_version_info: [17, 0, 0, 'final', 0, ''],
  server_serie: '17.0',
  protocol_version: 1,
};

const XMLRPC_PATHS = new Set(['/xmlrpc/2/common', '/xmlrpc/2/object', '/xmlrpc/2/db']);

export async function startOdooSimulator(options: OdooSimulatorOptions = {}): Promise<OdooSimulator> {
  const database = options.database ?? DEFAULT_SIMULATOR_DATABASE;
  const control = new FailureSwitches();
  const freshStore = (): RecordStore => {
    const created = new RecordStore(() => control.clockFrozen);
    if (options.seed ?? true) seedDatabase(created);
    return created;
  };
  let store = freshStore();
  const calls = new Map<string, number>();
  const callLog: CallSpan[] = [];
  const workers = new WorkerPool();
  const events = new EventEmitter<{ commit: [{ model: string; method: string; rows: number }] }>();

  const server = createServer((request, response) => {
    void handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) response.writeHead(500, { 'Content-Type': 'text/plain' });
      response.end(String(error));
    });
  });
  // Keep-alive clients must never see a socket closed under a request they just sent.
  server.keepAliveTimeout = 65_000;

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? '/').split('?')[0] as string;
    if (path.startsWith('/__simulator/')) return controlEndpoint(path, request, response);
    if (control.down === 'refuse') {
      request.socket.destroy();
      return;
    }
    if (control.down === 'http_503') return serviceUnavailable(response);
    if (request.method !== 'POST' || !XMLRPC_PATHS.has(path)) {
      response.writeHead(404, { 'Content-Type': 'text/html; charset=utf-8' });
      response.end('<!DOCTYPE html><html><head><title>404: Not Found | Odoo</title></head><body><h1>404: Page not found</h1></body></html>');
      return;
    }
    const call = await readMethodCall(request);
    const service = path.slice('/xmlrpc/2/'.length);
    if (service === 'object') {
      const injected = control.takeFailure();
      if (injected) return injectFailure(injected, request, response);
    }
    try {
      const result = await dispatch(service, call.method, call.params);
      send(response, methodResponse(result));
    } catch (error) {
      const fault = error instanceof OdooFault ? error : applicationError(`${error instanceof Error ? error.name : 'Exception'}: ${error instanceof Error ? error.message : String(error)}`);
      send(response, faultResponse(fault.faultCode, fault.faultString));
    }
  }

  async function dispatch(service: string, method: string, params: unknown[]): Promise<unknown> {
    if (service === 'common') {
      if (method === 'version') return VERSION;
      if (method === 'authenticate' || method === 'login') {
        const [db, login, password] = params;
        checkDatabase(db);
        // A wrong password or key answers false, not a fault.
        return userByCredentials(login, password)?.uid ?? false;
      }
      if (method === 'about') return 'See http://openerp.com';
      throw applicationError(`NameError: Method not available ${method}`);
    }
    if (service === 'db') {
      if (method === 'list') return [database];
      if (method === 'server_version') return VERSION.server_version;
      throw applicationError(`KeyError: '${method}'`);
    }
    if (method !== 'execute_kw') throw applicationError(`NameError: Method not available ${method}`);
    const [db, uid, password, model, modelMethod, args = [], kwargs = {}] = params as [unknown, unknown, unknown, unknown, unknown, unknown, unknown];
    checkDatabase(db);
    const user = SIMULATOR_USERS.find((candidate) => candidate.uid === uid && (candidate.password === password || candidate.apiKeys.includes(String(password))));
    if (!user) throw accessDenied();
    if (typeof model !== 'string' || typeof modelMethod !== 'string') throw applicationError('TypeError: execute_kw() model and method must be strings');
    const key = `${model}.${modelMethod}`;
    calls.set(key, (calls.get(key) ?? 0) + 1);
    const keywords = (kwargs && typeof kwargs === 'object' && !Array.isArray(kwargs) ? kwargs : {}) as Record<string, unknown>;
    const { context = {}, ...rest } = keywords;
    const cost = control.cost;
    // Under a cost model a call waits for a free worker before its transaction starts.
    const release = cost ? await workers.acquire(cost.workers) : undefined;
    const startedAt = Date.now();
    let rows = 0;
    try {
      const txn = store.begin(user.uid);
      const orm = new Orm({
        uid: user.uid, txn, switches: control, groups: new Set(user.groups), authorPartnerId: user.partnerId,
        context: (context && typeof context === 'object' ? context : {}) as Record<string, unknown>,
      });
      const result = orm.call(model, modelMethod, Array.isArray(args) ? args : [args], rest);
      // The transaction stays open (its rows invisible to others) for as long as it is slow.
      const holdMs = control.holdMs(txn.touched > 0) + (cost ? costOf(cost, modelMethod, result) : 0);
      if (holdMs > 0) await sleep(holdMs);
      rows = txn.touched;
      if (txn.touched > 0) {
        txn.commit();
        events.emit('commit', { model, method: modelMethod, rows: txn.touched });
      }
      return result;
    } finally {
      release?.();
      callLog.push({ model, method: modelMethod, startedAt, endedAt: Date.now(), rows });
      if (callLog.length > CALL_LOG_LIMIT + 1_000) callLog.splice(0, callLog.length - CALL_LOG_LIMIT);
    }
  }

  /** What a call costs under the cost model: per call, per record written, per record read. */
  function costOf(cost: CostModel, method: string, result: unknown): number {
    const list = Array.isArray(result) ? result.length : 1;
    if (method === 'load') return cost.callMs + cost.rowMs * (Array.isArray((result as { ids?: unknown }).ids) ? ((result as { ids: unknown[] }).ids).length : 0);
    if (method === 'create' || method === 'write' || method === 'unlink') return cost.callMs + cost.rowMs * list;
    if (method === 'read' || method === 'search_read' || method === 'search') return cost.callMs + (cost.readRowMs ?? 0) * list;
    return cost.callMs;
  }

  function checkDatabase(db: unknown): void {
    if (db !== database) {
      throw applicationError(`psycopg2.OperationalError: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: FATAL:  database "${String(db)}" does not exist`);
    }
  }

  function userByCredentials(login: unknown, password: unknown): SimulatorUser | undefined {
    return SIMULATOR_USERS.find((user) => user.login === login && (user.password === password || user.apiKeys.includes(String(password))));
  }

  function injectFailure(kind: InjectedFailure, request: IncomingMessage, response: ServerResponse): void {
    switch (kind) {
      case 'reset': request.socket.destroy(); return;
      case 'http_503': serviceUnavailable(response); return;
      case 'application': {
        const fault = applicationError('RuntimeError: injected failure');
        send(response, faultResponse(fault.faultCode, fault.faultString));
        return;
      }
      default: {
        const fault = serializationFailure();
        send(response, faultResponse(fault.faultCode, fault.faultString));
      }
    }
  }

  async function controlEndpoint(path: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const reply = (status: number, body: unknown): void => {
      response.writeHead(status, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify(body));
    };
    if (path === '/__simulator/state' && request.method === 'GET') return reply(200, state());
    if (path !== '/__simulator/control' || request.method !== 'POST') return reply(404, { error: 'GET /__simulator/state or POST /__simulator/control' });
    let body: ControlRequest;
    try {
      body = JSON.parse(await readBody(request)) as ControlRequest;
    } catch {
      return reply(400, { error: 'the body must be JSON' });
    }
    if (body.reset) control.reset();
    // A new database with the seed data only (the same ids as at start); calls in flight finish on the old one.
    if (body.reset_data) store = freshStore();
    if (body.down !== undefined) control.setDown(body.down, body.down_mode ?? 'refuse');
    if (body.slow_ms !== undefined) control.setSlow(body.slow_ms, body.slow_scope ?? 'all');
    if (body.fail_next) control.failNext(body.fail_next.count, body.fail_next.kind ?? 'serialization');
    if (body.freeze_clock !== undefined) control.freezeClock(body.freeze_clock);
    if (body.clear_rejections) control.clearRejections();
    if (body.reject) control.rejectValue(body.reject);
    if (body.cost !== undefined) control.setCost(body.cost);
    return reply(200, state());
  }

  function state(): Record<string, unknown> {
    const counts: Record<string, number> = {};
    for (const name of ['res.partner', 'product.product', 'sale.order', 'account.move', 'stock.picking', 'ir.model.data', 'mail.message', 'mail.tracking.value', 'mail.activity']) {
      if (modelNamed(name)) counts[name] = store.table(name).size;
    }
    return { database, switches: control.snapshot(), records: counts, calls: Object.fromEntries(calls) };
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = options.host && options.host !== '0.0.0.0' ? options.host : '127.0.0.1';
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    database,
    credentials: { username: 'lifeline', password: SIMULATOR_API_KEY },
    control,
    get store() {
      return store;
    },
    stats: () => Object.fromEntries(calls),
    callLog: () => [...callLog],
    events,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface ControlRequest {
  readonly reset?: boolean;
  /** Empty the database back to its seed data (the server, its port and its connections stay). */
  readonly reset_data?: boolean;
  readonly down?: boolean;
  readonly down_mode?: DownMode;
  readonly slow_ms?: number;
  readonly slow_scope?: SlowScope;
  readonly fail_next?: { readonly count: number; readonly kind?: InjectedFailure };
  readonly reject?: { readonly model: string; readonly field: string; readonly value: string | number | boolean; readonly message?: string; readonly transient?: boolean };
  readonly clear_rejections?: boolean;
  readonly freeze_clock?: boolean;
  /** Real Odoo's cost per call and per record ({ callMs, rowMs, workers }), or false. */
  readonly cost?: { readonly callMs: number; readonly rowMs: number; readonly workers: number } | false;
}

/** Odoo's worker processes under a cost model: at most N calls at once, the others wait their turn. */
class WorkerPool {
  private busy = 0;
  private readonly waiting: Array<() => void> = [];

  async acquire(limit: number): Promise<() => void> {
    while (this.busy >= limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.busy++;
    return () => {
      this.busy--;
      this.waiting.shift()?.();
    };
  }
}

function send(response: ServerResponse, xml: string): void {
  response.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': Buffer.byteLength(xml) });
  response.end(xml);
}

function serviceUnavailable(response: ServerResponse): void {
  response.writeHead(503, { 'Content-Type': 'text/html' });
  response.end('<html><head><title>503 Service Temporarily Unavailable</title></head><body><center><h1>503 Service Temporarily Unavailable</h1></center><hr><center>nginx</center></body></html>');
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}
