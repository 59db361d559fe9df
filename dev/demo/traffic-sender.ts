import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { decodeWebhookSecret, signWebhook } from '../../connectors/webhook/standard-webhooks.ts';
import type { Delivery, FileDelivery, WebhookDelivery } from './partner-traffic.ts';

/**
 * Sends planned partner traffic the way partners do: webhooks signed with the partner's Standard
 * Webhooks secret and retried (same webhook-id, fresh timestamp) on 5xx or a lost connection until
 * answered, honouring Retry-After; files written under a temporary name and renamed into the
 * partner's inbox, so the file source never sees half a file.
 */
export interface SendOptions {
  /** Where partner_webhooks listens, e.g. http://127.0.0.1:8088. */
  readonly webhookUrl: string;
  /** Partner → "whsec_…" secret. */
  readonly secrets: Readonly<Record<string, string>>;
  /** Folder holding one inbox folder per pharmacy partner. */
  readonly inboxDir: string;
  /** Webhook requests in flight at once (default 64). */
  readonly concurrency?: number;
  /** Partner events per second at most (a file counts its rows); unlimited when absent. */
  readonly ratePerSecond?: number;
  /** Give up on a delivery after retrying this long (default 10 minutes). */
  readonly retryForMs?: number;
  /** Called before each delivery with its index, e.g. to change conditions mid-run (before the rate's pacing: it may wait). */
  readonly beforeDelivery?: (index: number, delivery: Delivery) => Promise<void> | void;
  /**
   * Called as each delivery goes out: after beforeDelivery, the rate's pacing and the concurrency limit,
   * right before a webhook's first request is made or a file is dropped. Time a delivery from here: a
   * file of N rows holds the next delivery back N / ratePerSecond seconds, which is the sender's wait,
   * not the receiver's.
   */
  readonly onSend?: (index: number, delivery: Delivery) => void;
  readonly signal?: AbortSignal;
}

export interface SendStats {
  /** Webhook deliveries answered 200 accepted / 200 duplicate (a retry of an accepted delivery). */
  accepted: number;
  duplicateAnswers: number;
  /** Attempts answered 5xx or lost (each retried). */
  retriedAttempts: number;
  /** Deliveries answered 4xx, or given up on. */
  failed: Array<{ webhookId: string; status: number | string; body: string }>;
  files: number;
  events: number;
  elapsedMs: number;
}

/** Environment variable holding a partner's webhook secret (as topology.yaml references it). */
export function webhookSecretVariable(partner: string): string {
  return `LIFELINE_WEBHOOK_SECRET_${partner.toUpperCase()}`;
}

export async function sendTraffic(deliveries: readonly Delivery[], options: SendOptions): Promise<SendStats> {
  const started = Date.now();
  const stats: SendStats = { accepted: 0, duplicateAnswers: 0, retriedAttempts: 0, failed: [], files: 0, events: 0, elapsedMs: 0 };
  const keys = new Map<string, Buffer>();
  const keyOf = (partner: string): Buffer => {
    let key = keys.get(partner);
    if (!key) {
      const secret = options.secrets[partner];
      if (!secret) throw new Error(`no webhook secret for partner ${partner} (set ${webhookSecretVariable(partner)})`);
      key = decodeWebhookSecret(secret, `secret of ${partner}`);
      keys.set(partner, key);
    }
    return key;
  };
  const inFlight = new Set<Promise<void>>();
  const concurrency = options.concurrency ?? 64;
  let sentEvents = 0;
  for (const [index, delivery] of deliveries.entries()) {
    options.signal?.throwIfAborted();
    await options.beforeDelivery?.(index, delivery);
    if (delivery.barrier || delivery.kind === 'file') await Promise.all(inFlight);
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (options.ratePerSecond) {
      const due = started + (sentEvents * 1000) / options.ratePerSecond;
      if (due > Date.now()) await sleep(due - Date.now());
    }
    const events = delivery.kind === 'file' ? delivery.newRows + delivery.repeatedRows : 1;
    sentEvents += events;
    options.onSend?.(index, delivery);
    if (delivery.kind === 'file') {
      dropFile(delivery, options.inboxDir);
      stats.files++;
      stats.events += events;
      continue;
    }
    const sending = postWebhook(delivery, keyOf(delivery.partner), options, stats).then(() => {
      stats.events += events;
    });
    const tracked = sending.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  await Promise.all(inFlight);
  stats.elapsedMs = Date.now() - started;
  return stats;
}

function dropFile(file: FileDelivery, inboxDir: string): void {
  const inbox = join(inboxDir, file.partner);
  mkdirSync(inbox, { recursive: true });
  const temporary = join(inbox, `.${file.fileName}.partial`);
  writeFileSync(temporary, file.body);
  renameSync(temporary, join(inbox, file.fileName));
}

async function postWebhook(delivery: WebhookDelivery, key: Buffer, options: SendOptions, stats: SendStats): Promise<void> {
  const url = `${options.webhookUrl.replace(/\/$/, '')}/webhooks/${delivery.partner}`;
  const body = Buffer.from(delivery.body, 'utf8');
  const deadline = Date.now() + (options.retryForMs ?? 600_000);
  for (let attempt = 0; ; attempt++) {
    options.signal?.throwIfAborted();
    const timestamp = Math.floor(Date.now() / 1000);
    let status: number | string;
    let text = '';
    let retryAfterMs: number | undefined;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: {
          'content-type': delivery.contentType,
          'webhook-id': delivery.webhookId,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signWebhook(key, delivery.webhookId, timestamp, body),
        },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      status = response.status;
      text = await response.text();
      const retryAfter = Number(response.headers.get('retry-after'));
      if (Number.isFinite(retryAfter) && retryAfter > 0) retryAfterMs = retryAfter * 1000;
    } catch (error) {
      status = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
    }
    if (status === 200) {
      if (text.includes('"duplicate"')) stats.duplicateAnswers++;
      else stats.accepted++;
      return;
    }
    if (typeof status === 'number' && status >= 400 && status < 500) {
      stats.failed.push({ webhookId: delivery.webhookId, status, body: text.slice(0, 500) });
      return;
    }
    if (Date.now() > deadline) {
      stats.failed.push({ webhookId: delivery.webhookId, status, body: `gave up after ${attempt + 1} attempts: ${text.slice(0, 300)}` });
      return;
    }
    stats.retriedAttempts++;
    await sleep(Math.min(retryAfterMs ?? 250 * 2 ** Math.min(attempt, 4), 5_000));
  }
}
