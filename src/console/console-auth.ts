import { randomBytes, timingSafeEqual } from 'node:crypto';
import { authenticate, isAllowed, type ControlAction, type Operator, type OperatorDirectory, type Role } from '../ops/operator-identity.ts';

/**
 * Who is using the console. The same operators file and roles as the CLI: a person logs in with
 * their identity and operator token and gets a session cookie (HttpOnly, SameSite=Strict, Secure
 * behind TLS); a script sends the identity and token on each request (x-lifeline-operator and
 * x-lifeline-token headers); behind a reverse proxy that verifies people itself, a configured
 * header names the identity and the operators file gives its roles.
 *
 * Sessions live in memory only (the console keeps no database): a restart asks people to log in
 * again. Each session has a CSRF token that every state-changing request must echo in
 * x-csrf-token; requests authenticated by headers carry no ambient credential and need none.
 */
export const SESSION_COOKIE = 'lifeline_console';
export const CSRF_HEADER = 'x-csrf-token';
export const OPERATOR_HEADER = 'x-lifeline-operator';
export const TOKEN_HEADER = 'x-lifeline-token';

export interface ConsoleSession {
  readonly id: string;
  readonly operator: Operator;
  readonly csrfToken: string;
  readonly createdAt: number;
  expiresAt: number;
}

export interface Caller {
  readonly operator: Operator;
  /** How the caller proved who they are: a cookie session needs the CSRF token on changes. */
  readonly via: 'session' | 'headers' | 'proxy';
  readonly session?: ConsoleSession;
}

export type Authenticated = { readonly ok: true; readonly caller: Caller } | { readonly ok: false; readonly claimed: string; readonly why: string };

export interface ConsoleAuthOptions {
  readonly directory: () => OperatorDirectory | undefined;
  /** A header set by a trusted reverse proxy with the verified identity (e.g. x-forwarded-user); off when undefined. */
  readonly trustedIdentityHeader?: string;
  /** Idle time after which a session ends. */
  readonly sessionIdleMs?: number;
  /** Sessions kept at most (oldest dropped first): bounded like everything else. */
  readonly maxSessions?: number;
}

const DEFAULT_IDLE_MS = 8 * 3600 * 1000;
const DEFAULT_MAX_SESSIONS = 1000;

export class ConsoleAuth {
  private readonly sessions = new Map<string, ConsoleSession>();

  constructor(private readonly options: ConsoleAuthOptions) {}

  /** Checks identity and token against the operators file and opens a session. */
  login(identity: string, token: string): { ok: true; session: ConsoleSession } | { ok: false; why: string } {
    const result = authenticate(this.options.directory(), { identity, token });
    if (!result.ok) return { ok: false, why: result.why };
    this.expire();
    while (this.sessions.size >= (this.options.maxSessions ?? DEFAULT_MAX_SESSIONS)) {
      const oldest = this.sessions.keys().next().value;
      if (oldest === undefined) break;
      this.sessions.delete(oldest);
    }
    const now = Date.now();
    const session: ConsoleSession = {
      id: randomBytes(32).toString('base64url'), operator: result.operator, csrfToken: randomBytes(24).toString('base64url'),
      createdAt: now, expiresAt: now + (this.options.sessionIdleMs ?? DEFAULT_IDLE_MS),
    };
    this.sessions.set(session.id, session);
    return { ok: true, session };
  }

  logout(sessionId: string | undefined): void {
    if (sessionId) this.sessions.delete(sessionId);
  }

  /** Who sent a request: a proxy header (when configured), the operator headers, or the session cookie. */
  identify(headers: Readonly<Record<string, string | string[] | undefined>>, sessionId: string | undefined): Authenticated {
    const header = (name: string): string | undefined => {
      const value = headers[name.toLowerCase()];
      return Array.isArray(value) ? value[0] : value;
    };
    const proxyHeader = this.options.trustedIdentityHeader;
    if (proxyHeader) {
      const identity = header(proxyHeader);
      if (identity) {
        const entry = this.options.directory()?.operators.get(identity);
        if (!entry) return { ok: false, claimed: identity, why: `${identity} (from ${proxyHeader}) is not in the operators file` };
        return { ok: true, caller: { operator: { identity, roles: entry.roles }, via: 'proxy' } };
      }
    }
    const identity = header(OPERATOR_HEADER);
    const token = header(TOKEN_HEADER);
    if (identity !== undefined || token !== undefined) {
      const result = authenticate(this.options.directory(), { ...(identity ? { identity } : {}), ...(token ? { token } : {}) });
      if (!result.ok) return { ok: false, claimed: result.claimed, why: result.why };
      return { ok: true, caller: { operator: result.operator, via: 'headers' } };
    }
    if (sessionId) {
      const session = this.sessions.get(sessionId);
      if (session && session.expiresAt > Date.now()) {
        session.expiresAt = Date.now() + (this.options.sessionIdleMs ?? DEFAULT_IDLE_MS);
        return { ok: true, caller: { operator: session.operator, via: 'session', session } };
      }
      if (session) this.sessions.delete(sessionId);
      return { ok: false, claimed: 'anonymous', why: 'the session has expired: log in again' };
    }
    return { ok: false, claimed: 'anonymous', why: 'log in with your operator identity and token' };
  }

  /** A cookie session must echo its CSRF token on every change; other callers carry no ambient credential. */
  csrfValid(caller: Caller, sent: string | undefined): boolean {
    if (caller.via !== 'session' || !caller.session) return true;
    if (!sent) return false;
    const expected = Buffer.from(caller.session.csrfToken);
    const given = Buffer.from(sent);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}

/** What the page may offer this operator: a viewer sees no button it may not use. */
export function permissionsOf(operator: Operator, actions: readonly ControlAction[]): Record<string, boolean> {
  return Object.fromEntries(actions.map((action) => [action, isAllowed(operator, action)]));
}

export type { Operator, Role };
