import { createHmac, timingSafeEqual } from 'node:crypto';
import { LifelineError } from '../../src/errors.ts';

/**
 * Standard Webhooks (standardwebhooks.com) verification: `webhook-signature` carries one or more
 * space-separated `v1,<base64 HMAC-SHA256>` over `<webhook-id>.<webhook-timestamp>.<raw body>`,
 * keyed by a `whsec_<base64>` secret. Several secrets are tried, so a partner's secret can be
 * rotated without downtime.
 *
 * Why not the `standardwebhooks` package's `verify`: it turns the body into a UTF-8 string before
 * signing (so a non-UTF-8 body can never verify, and Lifeline must verify before it can say the
 * body's encoding is wrong) and its tolerance is fixed at 5 minutes. The tests sign with that
 * package, so the two implementations are held to the same wire format.
 */

export interface SignedHeaders {
  readonly id: string | undefined;
  readonly timestamp: string | undefined;
  readonly signature: string | undefined;
}

/** Decodes `whsec_<base64>` (or bare base64) secrets; an empty or malformed one is a config error. */
export function decodeWebhookSecret(secret: string, where: string): Buffer {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
    throw new LifelineError('LL_CONFIG_INVALID', `${where}: a webhook secret must be "whsec_" followed by base64`);
  }
  return key;
}

export function signWebhook(key: Buffer, id: string, timestampSeconds: number, body: Buffer): string {
  return `v1,${createHmac('sha256', key).update(`${id}.${timestampSeconds}.`).update(body).digest('base64')}`;
}

/**
 * Verifies a delivery; returns its id and timestamp or throws LL_WEBHOOK_SIGNATURE_INVALID /
 * LL_WEBHOOK_TIMESTAMP_STALE. The signature is checked before the timestamp, so a forged request
 * learns nothing about the clock.
 */
export function verifyWebhook(headers: SignedHeaders, body: Buffer, keys: readonly Buffer[], toleranceMs: number, now: number = Date.now()): { id: string; timestampSeconds: number } {
  const missing = (['id', 'timestamp', 'signature'] as const).filter((name) => !headers[name]).map((name) => `webhook-${name}`);
  if (missing.length > 0) throw new LifelineError('LL_WEBHOOK_SIGNATURE_INVALID', `missing header${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  const id = headers.id as string;
  const timestampText = (headers.timestamp as string).trim();
  if (!/^\d{1,12}$/.test(timestampText)) throw new LifelineError('LL_WEBHOOK_SIGNATURE_INVALID', 'webhook-timestamp must be whole seconds since the epoch');
  const timestampSeconds = Number(timestampText);
  const offered = (headers.signature as string).split(' ')
    .map((entry) => entry.split(','))
    .filter(([version, value]) => version === 'v1' && value)
    .map(([, value]) => Buffer.from(value as string, 'base64'));
  const matches = keys.some((key) => {
    const expected = createHmac('sha256', key).update(`${id}.${timestampSeconds}.`).update(body).digest();
    return offered.some((signature) => signature.length === expected.length && timingSafeEqual(signature, expected));
  });
  if (!matches) throw new LifelineError('LL_WEBHOOK_SIGNATURE_INVALID', 'no v1 signature in webhook-signature matches any configured secret for this partner');
  const skewMs = Math.abs(now - timestampSeconds * 1000);
  if (skewMs > toleranceMs) {
    throw new LifelineError('LL_WEBHOOK_TIMESTAMP_STALE', `webhook-timestamp is ${Math.round(skewMs / 1000)} s from this server's clock; the tolerance is ${Math.round(toleranceMs / 1000)} s`);
  }
  return { id, timestampSeconds };
}
