import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../errors.ts';
import type { Logger } from './logger.ts';
import type { RuntimeMetrics } from './metrics.ts';

/** What the host knows about its own health; /healthz answers `live`, /readyz answers `ready`. */
export interface HealthReport {
  /** False only when the process should be restarted (e.g. a component failed for good). */
  readonly live: boolean;
  /** True once every hosted component is connected and able to take traffic. */
  readonly ready: boolean;
  /** While the process waits for what it needs to start: what it waits for and why. */
  readonly starting?: string;
  /** Why the process failed for good (then `live` is false). */
  readonly failed?: string;
  readonly components: Readonly<Record<string, { readonly state: string; readonly detail?: string }>>;
}

export interface HttpServerOptions {
  /** 0 picks a free port; the resolved server reports the one it got. */
  readonly port: number;
  readonly host?: string;
  readonly metrics: RuntimeMetrics;
  readonly health: () => HealthReport;
  /** Where failures to answer a request are logged; they are also answered with 500. */
  readonly logger?: Logger;
}

export interface RunningHttpServer {
  readonly port: number;
  close(): Promise<void>;
}

/** After close, requests still in flight get this long to finish before their sockets are cut. */
const CLOSE_GRACE_MS = 2_000;

/**
 * The operational endpoints Prometheus and an orchestrator poll: GET /metrics, /healthz, /readyz.
 * Plain node:http — three fixed routes do not justify a framework.
 */
export async function startHttpServer(options: HttpServerOptions): Promise<RunningHttpServer> {
  const server = createServer((request, response) => {
    handle(request, response, options).catch((error: unknown) => {
      options.logger?.error({ err: error, path: request.url }, 'operational endpoint failed');
      if (!response.headersSent) sendJson(response, 500, { error: errorMessage(error) });
      else response.destroy();
    });
  });
  await listen(server, options.port, options.host ?? '0.0.0.0');
  const { port } = server.address() as AddressInfo;
  return { port, close: () => close(server) };
}

async function handle(request: IncomingMessage, response: ServerResponse, options: HttpServerOptions): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://localhost').pathname;
  const route = ROUTES.get(path);
  if (route === undefined) {
    sendJson(response, 404, { error: `no such endpoint: ${path}`, endpoints: [...ROUTES.keys()] });
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    sendJson(response, 405, { error: `${request.method ?? 'this method'} is not allowed on ${path}` });
    return;
  }
  await route(response, options);
}

type Route = (response: ServerResponse, options: HttpServerOptions) => Promise<void> | void;

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/metrics', async (response, { metrics }) => {
    const text = await metrics.metricsText();
    response.writeHead(200, { 'Content-Type': metrics.contentType, 'Cache-Control': 'no-store' });
    response.end(text);
  }],
  ['/healthz', (response, { health }) => {
    const report = health();
    sendJson(response, report.live ? 200 : 503, report);
  }],
  ['/readyz', (response, { health }) => {
    const report = health();
    sendJson(response, report.ready ? 200 : 503, report);
  }],
]);

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  response.end(text);
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    // Scrapers keep connections alive; without cutting them, close() would wait for their timeout.
    const cutAll = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
    cutAll.unref();
    server.close((error) => {
      clearTimeout(cutAll);
      if (error) reject(error);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
