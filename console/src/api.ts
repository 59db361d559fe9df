/** The console's JSON API (served by `lifeline console` under /api; OpenAPI at /api/openapi.json). */

export interface Session {
  authenticated: boolean;
  identity?: string;
  roles?: string[];
  csrfToken?: string;
  permissions?: Record<string, boolean>;
}

export type Health = 'ok' | 'warn' | 'error' | 'unknown';

export interface FlowNode {
  id: string;
  kind: 'source' | 'processor' | 'sink' | 'topic' | 'external';
  label: string;
  type: string;
  description: string;
  health: Health;
  why: string;
  state: string;
  rateIn: number;
  rateOut: number;
  recordsIn: number;
  recordsOut: number;
  lag: number;
  deadLetters: number;
  lastRecordAt: number | null;
  instances: string[];
}

export interface FlowEdge { from: string; to: string; topic: string; health: Health; lag: number }

export interface Flows {
  refreshedAt: number;
  appId: string;
  nodes: FlowNode[];
  edges: FlowEdge[];
  processes: Array<{ instance: string; host: string; pid: number; version: string; at: number; stale: boolean; ready: boolean; components: string[] }>;
}

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let csrfToken: string | undefined;

export function setCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-csrf-token'] = csrfToken;
  const response = await fetch(path, { method, headers, credentials: 'same-origin', ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await response.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!response.ok) {
    const error = parsed as { code?: string; message?: string } | undefined;
    throw new ApiError(response.status, error?.code ?? 'HTTP', error?.message ?? `${response.status} ${response.statusText}`);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => call<T>('GET', path),
  post: <T>(path: string, body: unknown) => call<T>('POST', path, body),
  delete: <T>(path: string) => call<T>('DELETE', path),
};
