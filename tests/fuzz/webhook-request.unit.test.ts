import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { webhookSource } from '../../connectors/webhook/webhook-source.ts';
import { signWebhook } from '../../connectors/webhook/standard-webhooks.ts';
import type { Source, SourceContext, SourceRecord } from '../../src/component/component.ts';
import { newWebhookSecret } from '../../testing/partner-feed-fixture.ts';
import { cleanOutcome, deepJson, fuzzParameters, fuzzTimeout, mutated, seedFiles } from './fuzz-kit.ts';

/**
 * The webhook request path under fast-check, at unit level (the source driven as the host drives
 * it, acknowledging every batch; no broker): random and mutated bodies, content types and
 * signature headers are answered 200 with valid canonical records, or a 4xx — never a 5xx or a
 * dropped connection — and every 4xx delivery's raw body is kept in a quarantine record.
 */

const secret = newWebhookSecret();
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
let source: Source;
let port = 0;
let pumping = true;
const produced: SourceRecord[] = [];
let pump: Promise<void>;

before(async () => {
  const config = Value.Default(webhookSource.config, {
    host: '127.0.0.1', port: 0, max_body_bytes: 2 * 1024 * 1024,
    // Every unauthenticated request recorded: past the limit they are answered 429 and, by design, not recorded.
    unauthenticated_per_minute: 1_000_000,
    partners: [
      { name: 'lab', path: '/webhooks/lab', format: 'hl7v2', secrets: [secret] },
      { name: 'payer', path: '/webhooks/payer', format: 'fhir_r4', secrets: [secret] },
      { name: 'pharmacy', path: '/webhooks/pharmacy', format: 'csv', secrets: [secret], csv: {
        record_type: 'pharmacy_dispense',
        columns: { pharmacy_id: 'NCPDP', rx_number: 'RxNumber', fill_number: 'Fill', occurred_at: 'DispenseDate', product_code: 'NDC', quantity: 'Qty', total: 'Total' },
        key_columns: ['NCPDP', 'RxNumber', 'Fill', 'DispenseDate'],
      } },
    ],
  });
  source = webhookSource.create(config as never);
  const lines: string[] = [];
  const context: SourceContext = {
    label: 'fuzz_webhooks', logger: pino({ level: 'info' }, { write: (line: string) => lines.push(line) }), signal: new AbortController().signal,
    connections: {}, metricsRegistry: new Registry(), cursor: undefined, setHealth: () => undefined, hasOutput: () => true,
  };
  await source.connect(context);
  port = (JSON.parse(lines.find((line) => line.includes('webhook source listening')) as string) as { port: number }).port;
  pump = (async () => {
    while (pumping) {
      const batch = await source.produce();
      if (!batch) continue;
      produced.push(...batch.records);
      await source.acknowledge(batch);
    }
  })();
});

after(async () => {
  pumping = false;
  await source.close();
  await pump.catch(() => undefined);
});

const CONTENT_TYPES: Record<string, readonly string[]> = {
  lab: ['x-application/hl7-v2+er7', 'application/hl7-v2; charset=utf-8', 'text/plain', 'application/json', ''],
  payer: ['application/fhir+json', 'application/json+fhir', 'application/json; charset=utf-8', 'text/csv', ''],
  pharmacy: ['text/csv', 'application/csv', 'application/fhir+json'],
};

test('fuzz: every webhook request ends 200 with valid records, or a 4xx with its raw body in quarantine', { timeout: fuzzTimeout(120_000) }, async () => {
  const hl7 = seedFiles((name) => name.endsWith('.hl7'));
  const fhir = seedFiles((name) => name.endsWith('.json'));
  const csv = seedFiles((name) => name.startsWith('pharmacy') && name.endsWith('.csv'));
  const request = fc.record({
    partner: fc.constantFrom('lab', 'payer', 'pharmacy'),
    hl7: mutated(hl7, 4), fhir: fc.oneof(mutated(fhir, 4), deepJson), csv: mutated(csv, 4),
    contentType: fc.nat(),
    signature: fc.constantFrom('good', 'good', 'good', 'wrong', 'missing', 'stale'),
  });
  const statuses = new Map<number, number>();
  await fc.assert(fc.asyncProperty(request, async (input) => {
    const body = input.partner === 'lab' ? input.hl7 : input.partner === 'payer' ? input.fhir : input.csv;
    const types = CONTENT_TYPES[input.partner] as readonly string[];
    const contentType = types[input.contentType % types.length] as string;
    const id = `msg_${randomBytes(8).toString('hex')}`;
    const timestamp = Math.floor(Date.now() / 1000) - (input.signature === 'stale' ? 3600 : 0);
    const headers: Record<string, string> = { 'webhook-id': id, 'webhook-timestamp': String(timestamp) };
    if (contentType) headers['content-type'] = contentType;
    if (input.signature !== 'missing') headers['webhook-signature'] = input.signature === 'wrong' ? `v1,${randomBytes(32).toString('base64')}` : signWebhook(key, id, timestamp, body);
    const response = await fetch(`http://127.0.0.1:${port}/webhooks/${input.partner}`, { method: 'POST', body: new Uint8Array(body), headers });
    const answer = await response.json() as { status: string; error?: { code: string } };
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    assert.ok(response.status === 200 || (response.status >= 400 && response.status < 500), `answered ${response.status}: ${JSON.stringify(answer)}`);
    const mine = produced.filter((record) => (record.output === 'quarantine' ? (record.value as { delivery_id: string | null }).delivery_id === id : record.headers?.['lifeline.idempotency-key']?.startsWith(id)));
    if (response.status === 200) {
      assert.ok(mine.length > 0 && mine.every((record) => record.output !== 'quarantine'), 'accepted deliveries produce records');
      cleanOutcome(() => mine.map((record) => ({ kind: kindOf(record.output), value: record.value }) as never), []);
      return;
    }
    assert.ok(answer.error?.code?.startsWith('LL_'), `a 4xx names its LL_ code: ${JSON.stringify(answer)}`);
    const quarantined = mine.filter((record) => record.output === 'quarantine');
    assert.ok(quarantined.length > 0, `a ${response.status} delivery is quarantined`);
    if (answer.error?.code === 'LL_WEBHOOK_SIGNATURE_INVALID') {
      // Unauthenticated input is not stored: metadata and the body's hash only.
      const sha256 = createHash('sha256').update(body).digest('hex');
      assert.ok(quarantined.every((record) => (record.value as { raw: Buffer; sha256: string }).raw.length === 0 && (record.value as { sha256: string }).sha256 === sha256), 'an unauthenticated body is kept as its hash only');
    } else if (response.status !== 413) {
      const raw = Buffer.concat(quarantined.map((record) => (record.value as { raw: Buffer }).raw));
      assert.ok(raw.equals(body), 'the raw body is kept whole');
    }
  }), fuzzParameters(60));
  // Random cases may all be refused (mutations, wrong signatures): that a valid delivery is accepted
  // is checked with one that is valid by construction, not left to the dice.
  assert.ok([...statuses.keys()].some((status) => status >= 400), `refusals seen: ${JSON.stringify([...statuses])}`);
  const body = hl7.find((seed) => seed.toString('latin1').includes('DFT^P03')) as Buffer;
  const id = `msg_${randomBytes(8).toString('hex')}`;
  const timestamp = Math.floor(Date.now() / 1000);
  const valid = await fetch(`http://127.0.0.1:${port}/webhooks/lab`, {
    method: 'POST', body: new Uint8Array(body),
    headers: { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'content-type': 'x-application/hl7-v2+er7', 'webhook-signature': signWebhook(key, id, timestamp, body) },
  });
  assert.equal(valid.status, 200, `an unmutated seed message, signed: ${await valid.text()}`);
});

function kindOf(output: string): string {
  return ({ service_charges: 'service_charge', pharmacy_dispenses: 'pharmacy_dispense', supply_deliveries: 'supply_delivery', orders: 'order', order_acknowledgements: 'order_acknowledgement', claims: 'claim', visit_references: 'visit_reference' } as Record<string, string>)[output] ?? output;
}
