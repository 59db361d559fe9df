import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { uniqueTopic } from './harness.ts';
import type { LifelineProcess } from './runtime-fixture.ts';
import { writeTestTopology, uniqueLabel, type TestComponentSpec } from './topology-writer.ts';

/** Topics for the partner-feed outputs a test needs, each under a unique name. */
export function partnerTopics(): Record<'service_charges' | 'pharmacy_dispenses' | 'claims' | 'order_acknowledgements' | 'quarantine', string> {
  return {
    service_charges: uniqueTopic('partner', 'lab_charge', 'received'),
    pharmacy_dispenses: uniqueTopic('partner', 'pharmacy_dispense', 'received'),
    claims: uniqueTopic('partner', 'claim', 'received'),
    order_acknowledgements: uniqueTopic('partner', 'order_ack', 'received'),
    quarantine: uniqueTopic('ops', 'quarantine', 'received'),
  };
}

const SCHEMA_OF_OUTPUT: Readonly<Record<string, string>> = {
  service_charges: 'schemas/partner/service_charge.avsc',
  pharmacy_dispenses: 'schemas/partner/pharmacy_dispense.avsc',
  claims: 'schemas/partner/claim.avsc',
  order_acknowledgements: 'schemas/partner/order_acknowledgement.avsc',
  quarantine: 'schemas/ops/quarantine.avsc',
};

/** A topology with one partner-feed source writing the given outputs. */
export async function writePartnerFeedTopology(type: 'webhook_source' | 'file_source', outputs: Readonly<Record<string, string>>, config: Record<string, unknown>, partitions = 3): Promise<{ file: string; dir: string; label: string }> {
  const label = uniqueLabel(type === 'webhook_source' ? 'partner_webhooks' : 'partner_files');
  const connector: TestComponentSpec = { type, outputs, config };
  const topics = Object.fromEntries(Object.entries(outputs).map(([output, topic]) => [topic, {
    schema: SCHEMA_OF_OUTPUT[output] as string, partitions, key: 'entity_key', classification: 'phi' as const,
  }]));
  const written = await writeTestTopology({ topics, connectors: { [label]: connector } });
  return { ...written, label };
}

/** A fresh Standard Webhooks secret. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

export interface DeliveryOptions {
  readonly secret: string;
  readonly id?: string;
  readonly timestampSeconds?: number;
  readonly contentType?: string;
  readonly signature?: string;
  readonly traceparent?: string;
}

export interface DeliveryAnswer {
  readonly status: number;
  readonly body: { status: string; webhook_id?: string; records?: number; quarantined?: boolean; error?: { code: string; message: string; location?: string } };
  readonly headers: Headers;
  readonly id: string;
}

/**
 * POSTs a body signed with the `standardwebhooks` package — the reference implementation, not
 * Lifeline's verifier — so the two are held to the same wire format. (Bodies that are not UTF-8
 * are signed over their raw bytes by hand: that package would sign a re-encoded string.)
 */
export async function deliver(port: number, path: string, body: string | Buffer, options: DeliveryOptions): Promise<DeliveryAnswer> {
  const id = options.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const timestamp = options.timestampSeconds ?? Math.floor(Date.now() / 1000);
  const signature = options.signature ?? (typeof body === 'string'
    ? new Webhook(options.secret).sign(id, new Date(timestamp * 1000), body)
    : (await import('../connectors/webhook/standard-webhooks.ts')).signWebhook(Buffer.from(options.secret.slice('whsec_'.length), 'base64'), id, timestamp, body));
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : new Uint8Array(body),
    headers: {
      'content-type': options.contentType ?? 'x-application/hl7-v2+er7',
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signature,
      ...(options.traceparent ? { traceparent: options.traceparent } : {}),
    },
  });
  return { status: response.status, body: await response.json() as DeliveryAnswer['body'], headers: response.headers, id };
}

/** The port a webhook source chose (port 0), from its log line. */
export async function webhookPort(lifeline: LifelineProcess): Promise<number> {
  const line = await lifeline.waitForLine(/webhook source listening/);
  return (JSON.parse(line) as { port: number }).port;
}
