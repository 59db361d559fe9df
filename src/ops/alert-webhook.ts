import { createHmac } from 'node:crypto';
import { LifelineError, errorMessage } from '../errors.ts';
import { retry, type RetryPolicy } from '../retry.ts';
import type { Incident } from './incidents.ts';

/**
 * Sends an incident's alert (one when it opens, one when it resolves) to a webhook: a JSON POST
 * that a chat tool's incoming webhook (`text`), an on-call tool or a script can take as it is.
 * The payload names components, connections, flows, counts and error classes only, never a
 * record, so no PHI leaves with it. With a secret, the body is signed (HMAC-SHA256) in
 * `x-lifeline-signature: sha256=<hex>` so the receiver can check it came from Lifeline.
 */
export interface AlertWebhookOptions {
  readonly url: string;
  readonly secret?: string;
  /** Links in the alert point here (`<consoleUrl>/incidents/<id>`). */
  readonly consoleUrl?: string;
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
}

export interface AlertPayload {
  readonly version: 1;
  readonly event: 'incident.opened' | 'incident.resolved';
  readonly text: string;
  readonly incident: {
    readonly id: string;
    readonly app_id: string;
    readonly status: 'open' | 'resolved';
    readonly cause: string;
    readonly title: string;
    readonly opened_at: string;
    readonly resolved_at: string | null;
    readonly duration_ms: number | null;
    readonly affects: Incident['affects'];
    readonly count: number;
    readonly signals: Array<{ kind: string; subject: string; count: number; peak: number; first_at: string; last_at: string }>;
    readonly url: string | null;
  };
}

export function alertPayload(incident: Incident, event: AlertPayload['event'], consoleUrl?: string): AlertPayload {
  const url = consoleUrl ? `${consoleUrl.replace(/\/$/, '')}/incidents/${encodeURIComponent(incident.id)}` : null;
  return {
    version: 1,
    event,
    text: `[Lifeline ${incident.appId}] ${incident.title}${url ? ` ${url}` : ''}`,
    incident: {
      id: incident.id, app_id: incident.appId, status: incident.status, cause: incident.cause, title: incident.title,
      opened_at: new Date(incident.openedAt).toISOString(), resolved_at: incident.resolvedAt === null ? null : new Date(incident.resolvedAt).toISOString(),
      duration_ms: incident.resolvedAt === null ? null : incident.resolvedAt - incident.openedAt,
      affects: incident.affects, count: incident.count,
      signals: incident.signals.map((signal) => ({
        kind: signal.kind, subject: signal.subject, count: signal.count, peak: signal.peak,
        first_at: new Date(signal.firstAt).toISOString(), last_at: new Date(signal.lastAt).toISOString(),
      })),
      url,
    },
  };
}

export class AlertWebhook {
  constructor(private readonly options: AlertWebhookOptions) {
    let parsed: URL;
    try {
      parsed = new URL(options.url);
    } catch {
      throw new LifelineError('LL_CONFIG_INVALID', `the alert webhook URL is not a URL (got "${redact(options.url)}")`);
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new LifelineError('LL_CONFIG_INVALID', `the alert webhook URL must be http(s) (got ${parsed.protocol})`);
  }

  /** Where alerts go, without credentials or query (safe to log). */
  get target(): string {
    return redact(this.options.url);
  }

  /** Posts the alert, retrying transient failures (network, 5xx, 429); throws LL_ALERT_DELIVERY_FAILED when it cannot. */
  async send(incident: Incident, event: AlertPayload['event']): Promise<AlertPayload> {
    const payload = alertPayload(incident, event, this.options.consoleUrl);
    const body = JSON.stringify(payload);
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'lifeline-alerts/1', 'x-lifeline-event': event, 'x-lifeline-incident': incident.id };
    if (this.options.secret) headers['x-lifeline-signature'] = `sha256=${createHmac('sha256', this.options.secret).update(body).digest('hex')}`;
    try {
      await retry(async () => {
        let response: Response;
        try {
          response = await fetch(this.options.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
        } catch (error) {
          throw new LifelineError('LL_ALERT_DELIVERY_FAILED', `${this.target}: ${errorMessage(error)}`, { retriable: true, cause: error });
        }
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        throw new LifelineError('LL_ALERT_DELIVERY_FAILED', `${this.target} answered HTTP ${response.status}`, { retriable: response.status >= 500 || response.status === 429 });
      }, { retries: 4, initialDelayMs: 500, maxDelayMs: 10_000, ...this.options.retry, operation: `alert ${event} ${incident.id}` });
    } catch (error) {
      if (error instanceof LifelineError && error.code === 'LL_ALERT_DELIVERY_FAILED') throw error;
      throw new LifelineError('LL_ALERT_DELIVERY_FAILED', errorMessage(error), { cause: error });
    }
    return payload;
  }
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname.length > 1 ? '/…' : '/'}`;
  } catch {
    return '(not a URL)';
  }
}
