import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { LIFELINE_HEADERS } from '../../../src/component/record-headers.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { testKafka } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { deliver, newWebhookSecret, partnerTopics, webhookPort, writePartnerFeedTopology } from '../../../testing/partner-feed-fixture.ts';

/**
 * webhook_source under `lifeline run`, against the real broker and registry: every documented
 * answer, and for every rejection the quarantine record (committed before the answer) with the
 * raw body and the reason. Kafka being unavailable is covered in webhook-source.unit.test.ts.
 */

interface Quarantined { sha256: string; partner: string; reason_code: string; message: string; location: string | null; raw: Buffer; delivery_id: string | null; truncated: boolean; size_bytes: number; headers: Record<string, string> }
interface Charge { idempotency_key: string; delivery_id: string; total: { amount_minor: number; currency: string } | null; patient_id: string | null }

const dft = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');
const claimResponse = readFileSync('tests/fixtures/partner/public/fhir-r4/ClaimResponse-R3500.json', 'utf8');
const topics = partnerTopics();
const labSecretOld = newWebhookSecret();
const labSecret = newWebhookSecret();
const payerSecret = newWebhookSecret();
const cleanups: Array<() => Promise<void>> = [];
let port = 0;
let sourceLabel = '';
let charges: TopicCollector<Charge>;
let claims: TopicCollector<{ claim_ref: string }>;
let quarantine: TopicCollector<Quarantined>;

before(async () => {
  const topology = await writePartnerFeedTopology('webhook_source', {
    service_charges: topics.service_charges, claims: topics.claims, order_acknowledgements: topics.order_acknowledgements, quarantine: topics.quarantine,
  }, {
    host: '127.0.0.1',
    port: 0,
    tolerance: '5m',
    unauthenticated_per_minute: 6,
    partners: [
      // Two secrets: a rotation in progress.
      { name: 'acme_lab', path: '/webhooks/acme_lab', format: 'hl7v2', secrets: ['${ACME_LAB_SECRET_OLD}', '${ACME_LAB_SECRET}'], max_body_bytes: 8192 },
      { name: 'payer_x', path: '/webhooks/payer_x', format: 'fhir_r4', secrets: ['${PAYER_X_SECRET}'] },
    ],
  });
  sourceLabel = topology.label;
  const lifeline = new LifelineProcess(topology.file, [], { ACME_LAB_SECRET_OLD: labSecretOld, ACME_LAB_SECRET: labSecret, PAYER_X_SECRET: payerSecret }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  port = await webhookPort(lifeline);
  await lifeline.waitForLine(/lifeline running/);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  charges = await new TopicCollector<Charge>(kafka, topics.service_charges, serde).start();
  claims = await new TopicCollector<{ claim_ref: string }>(kafka, topics.claims, serde).start();
  quarantine = await new TopicCollector<Quarantined>(kafka, topics.quarantine, serde).start();
  cleanups.push(() => charges.stop(), () => claims.stop(), () => quarantine.stop());
}, { timeout: 120_000 });

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/**
 * A POST from a given local address (127.0.0.x: Linux routes all of 127/8 to loopback), with only
 * the headers given: a stranger on the network, who cannot sign.
 */
function postFrom(localAddress: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; body: { error?: { code: string }; quarantined?: boolean } }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest({ host: '127.0.0.1', port, path, method: 'POST', localAddress, headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as never }));
      incoming.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end(body);
  });
}

async function quarantinedFor(id: string): Promise<Quarantined> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const found = quarantine.records.find((record) => record.value.delivery_id === id);
    if (found) return found.value;
    if (Date.now() > deadline) throw new Error(`no quarantine record for ${id}`);
    await sleep(100);
  }
}

describe('webhook_source under lifeline run', { timeout: 180_000 }, () => {
  test('a signed DFT^P03 is answered 200 only after its charges are committed, with the webhook id as idempotency key', async () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const answer = await deliver(port, '/webhooks/acme_lab', dft, { secret: labSecret, traceparent });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { status: 'accepted', webhook_id: answer.id, records: 2 });
    await charges.waitForCount(2, 20_000);
    const mine = charges.records.filter((record) => record.value.delivery_id === answer.id);
    assert.equal(mine.length, 2, 'committed before the 200 was sent');
    assert.deepEqual(mine.map((record) => record.headers[LIFELINE_HEADERS.idempotencyKey]).sort(), [`${answer.id}#1`, `${answer.id}#2`]);
    for (const record of mine) {
      assert.equal(record.headers[LIFELINE_HEADERS.traceparent], traceparent, 'the partner\'s trace continues');
      assert.ok(record.headers[LIFELINE_HEADERS.source]?.startsWith('partner_webhooks_'));
      assert.equal(record.headers[LIFELINE_HEADERS.correlationId], 'ORD-777');
      assert.ok(record.headers[LIFELINE_HEADERS.ingestedAt]);
      assert.equal(record.key, `acme_lab|charge|${record.value.idempotency_key.endsWith('#FT1-1') ? 'TX-9001' : 'TX-9002'}`);
    }
    assert.deepEqual(mine.map((record) => record.value.total?.amount_minor).sort(), [3100, 4250]);
  });

  test('a secret being rotated out still verifies; a FHIR ClaimResponse goes to the claims output', async () => {
    const old = await deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', 'DFT000124'), { secret: labSecretOld });
    assert.equal(old.status, 200);
    const fhir = await deliver(port, '/webhooks/payer_x', claimResponse, { secret: payerSecret, contentType: 'application/fhir+json' });
    assert.equal(fhir.status, 200, JSON.stringify(fhir.body));
    await claims.waitForCount(1, 20_000);
    assert.equal(claims.records[0]?.value.claim_ref, 'http://www.BenefitsInc.com/fhir/oralhealthclaim/15476332402');
  });

  test('a bad signature is 401; quarantine keeps only metadata (time, path, address, reason, size, sha256), never the body', async () => {
    const answer = await deliver(port, '/webhooks/acme_lab', dft, { secret: labSecret, signature: 'v1,bm90IGEgc2lnbmF0dXJl' });
    assert.equal(answer.status, 401);
    assert.equal(answer.headers.get('content-type'), 'application/problem+json');
    assert.equal(answer.body.error?.code, 'LL_WEBHOOK_SIGNATURE_INVALID');
    assert.equal(answer.body.quarantined, true);
    const record = await quarantinedFor(answer.id);
    assert.equal(record.reason_code, 'LL_WEBHOOK_SIGNATURE_INVALID');
    assert.equal(record.partner, 'acme_lab');
    assert.equal(Buffer.from(record.raw).length, 0, 'no body is stored for an unauthenticated request');
    assert.equal(record.size_bytes, Buffer.byteLength(dft));
    assert.equal(record.sha256, createHash('sha256').update(dft).digest('hex'));
    assert.equal(record.headers['webhook-id'], answer.id);
    assert.equal(record.headers['lifeline.path'], '/webhooks/acme_lab');
    assert.match(record.headers['lifeline.source-address'] ?? '', /127\.0\.0\.1/);
    assert.ok(!record.headers['webhook-signature'], 'only descriptive headers are kept');
    // Nothing of the patient data is in the stored record, in any field.
    const stored = JSON.stringify({ ...record, raw: Buffer.from(record.raw).toString('utf8') });
    for (const phi of ['DOE^JANE', 'MRN123456', 'ACCT778899']) assert.ok(!stored.includes(phi), `${phi} is not stored`);
    const other = await deliver(port, '/webhooks/acme_lab', dft, { secret: payerSecret });
    assert.equal(other.status, 401, 'another partner\'s secret does not verify');
  });

  test('an unsigned POST from a stranger (no webhook headers at all) is 401; no byte of its body reaches Kafka, only its metadata and hash', async () => {
    const marker = `STRANGER${randomBytes(6).toString('hex').toUpperCase()}`;
    // The marker stands in for patient data: in the message id and the patient's name.
    const body = dft.replace('DFT000123', marker).replace('DOE^JANE', `${marker}^JANE`);
    const sha256 = createHash('sha256').update(body).digest('hex');
    const answer = await postFrom('127.0.0.3', '/webhooks/acme_lab', body, { 'content-type': 'x-application/hl7-v2+er7' });
    assert.equal(answer.status, 401, JSON.stringify(answer.body));
    assert.equal(answer.body.error?.code, 'LL_WEBHOOK_SIGNATURE_INVALID');
    assert.match((answer.body.error as { message?: string } | undefined)?.message ?? '', /missing headers webhook-id, webhook-timestamp, webhook-signature/);
    // Committed before the 401: found by the body's hash (a stranger sends no webhook-id).
    await quarantine.waitUntil((records) => records.some((record) => record.value.sha256 === sha256), 'the stranger\'s metadata record', 20_000);
    const record = quarantine.records.find((candidate) => candidate.value.sha256 === sha256)?.value as Quarantined;
    assert.equal(record.reason_code, 'LL_WEBHOOK_SIGNATURE_INVALID');
    assert.equal(Buffer.from(record.raw).length, 0, 'no body');
    assert.equal(record.size_bytes, Buffer.byteLength(body));
    assert.equal(record.delivery_id, null);
    assert.match(record.headers['lifeline.source-address'] ?? '', /127\.0\.0\.3$/);
    assert.equal(record.headers['lifeline.path'], '/webhooks/acme_lab');

    // Nothing else holds it either. Signed sentinels, sent after the 401, until every partition of
    // the charges topic holds one: a read-committed consumer that sees them has seen all before.
    const partitions = new Set<number>();
    for (let index = 0; partitions.size < 3 && index < 20; index++) {
      const sentinel = await deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', `DFTSENT${index}`).replaceAll('TX-900', `TX-S${index}-`), { secret: labSecret });
      assert.equal(sentinel.status, 200, JSON.stringify(sentinel.body));
      await charges.waitUntil((records) => records.filter((one) => one.value.delivery_id === sentinel.id).length === 2, 'a sentinel', 30_000);
      for (const one of charges.records) if (one.value.delivery_id === sentinel.id) partitions.add(one.partition);
    }
    assert.equal(partitions.size, 3, 'a sentinel in every charges partition');
    const holdsMarker = (one: { value: unknown; headers: Record<string, string>; key: string | null }): boolean => {
      const value = one.value as { raw?: Uint8Array } | null;
      const text = JSON.stringify({ ...(value ?? {}), raw: value?.raw ? Buffer.from(value.raw).toString('latin1') : undefined, headers: one.headers, key: one.key });
      return text.includes(marker);
    };
    for (const [name, collected] of [['charges', charges.records], ['claims', claims.records], ['quarantine', quarantine.records]] as const) {
      assert.equal((collected as ReadonlyArray<{ value: unknown; headers: Record<string, string>; key: string | null }>).filter(holdsMarker).length, 0, `no ${name} record holds the stranger's body`);
    }
    const admin = (await testKafka()).admin();
    await admin.connect();
    try {
      const dlq = await admin.fetchTopicOffsets(deadLetterTopic(sourceLabel));
      assert.equal(dlq.reduce((sum, entry) => sum + Number(entry.high), 0), 0, 'nothing dead-lettered');
    } finally {
      await admin.disconnect();
    }
  });

  test('a stale timestamp is 401 and quarantined', async () => {
    const answer = await deliver(port, '/webhooks/acme_lab', dft, { secret: labSecret, timestampSeconds: Math.floor(Date.now() / 1000) - 3600 });
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error?.code, 'LL_WEBHOOK_TIMESTAMP_STALE');
    assert.match(answer.body.error?.message ?? '', /tolerance is 300 s/);
    assert.equal((await quarantinedFor(answer.id)).reason_code, 'LL_WEBHOOK_TIMESTAMP_STALE');
  });

  test('a replayed delivery (same id and body, new timestamp) is answered 200 "duplicate" and produced once', async () => {
    const body = dft.replace('DFT000123', 'DFT000777');
    const first = await deliver(port, '/webhooks/acme_lab', body, { secret: labSecret });
    assert.equal(first.status, 200);
    const replay = await deliver(port, '/webhooks/acme_lab', body, { secret: labSecret, id: first.id, timestampSeconds: Math.floor(Date.now() / 1000) + 1 });
    assert.equal(replay.status, 200);
    assert.equal(replay.body.status, 'duplicate');
    // A sentinel instead of a sleep: the same body under a new webhook-id is a new delivery, produced
    // on the same partitions (same entity keys) after the replay was answered. Once it is in, a
    // replay that had been produced would be too.
    const sentinel = await deliver(port, '/webhooks/acme_lab', body, { secret: labSecret });
    assert.equal(sentinel.status, 200);
    await charges.waitUntil((records) => records.filter((record) => record.value.delivery_id === sentinel.id).length === 2, 'the sentinel delivery', 30_000);
    assert.equal(charges.records.filter((record) => record.value.delivery_id === first.id).length, 2, 'two FT1 charges, once');
  });

  test('an oversized body is 413; the reason and headers are quarantined (not the body)', async () => {
    const answer = await deliver(port, '/webhooks/acme_lab', `${dft}\r${'NTE|1||'.padEnd(9000, 'x')}`, { secret: labSecret });
    assert.equal(answer.status, 413);
    assert.equal(answer.body.error?.code, 'LL_WEBHOOK_BODY_TOO_LARGE');
    const record = await quarantinedFor(answer.id);
    assert.equal(record.truncated, true);
    assert.ok(record.size_bytes > 8192);
  });

  test('malformed content is 422 naming where, and quarantined: truncated HL7, non-UTF-8, empty body, wrong FHIR resource; a wrong content type is 415', async () => {
    const truncated = await deliver(port, '/webhooks/acme_lab', 'MSH|^~\\&|LABSYS|ACME_LAB|ODOO', { secret: labSecret });
    assert.equal(truncated.status, 422);
    assert.equal(truncated.body.error?.code, 'LL_FORMAT_HL7_INVALID');
    assert.equal(truncated.body.error?.location, 'message 1 (line 1) MSH-12');

    const latin1 = Buffer.concat([Buffer.from(dft.replace('DOE^JANE', 'DOE^J')), Buffer.from([0xe9])]);
    const encoding = await deliver(port, '/webhooks/acme_lab', latin1, { secret: labSecret });
    assert.equal(encoding.status, 422);
    assert.equal(encoding.body.error?.code, 'LL_FORMAT_ENCODING');

    const empty = await deliver(port, '/webhooks/acme_lab', '', { secret: labSecret });
    assert.equal(empty.status, 422);
    assert.equal(empty.body.error?.code, 'LL_FORMAT_EMPTY');

    const patient = await deliver(port, '/webhooks/payer_x', readFileSync('tests/fixtures/partner/public/fhir-r4/Patient-example.json', 'utf8'), { secret: payerSecret, contentType: 'application/fhir+json' });
    assert.equal(patient.status, 422);
    assert.equal(patient.body.error?.code, 'LL_FORMAT_UNSUPPORTED');

    const wrongType = await deliver(port, '/webhooks/payer_x', claimResponse, { secret: payerSecret, contentType: 'text/html' });
    assert.equal(wrongType.status, 415);

    for (const answer of [truncated, encoding, empty, patient, wrongType]) {
      const record = await quarantinedFor(answer.id);
      assert.equal(record.reason_code, answer.body.error?.code);
    }
    assert.deepEqual([...Buffer.from((await quarantinedFor(encoding.id)).raw)], [...latin1], 'the raw bytes as received');
  });

  test('an unknown path is 404 and a GET is 405, recording nothing', async () => {
    const unknown = await fetch(`http://127.0.0.1:${port}/webhooks/nobody`, { method: 'POST', body: 'x' });
    assert.equal(unknown.status, 404);
    const get = await fetch(`http://127.0.0.1:${port}/webhooks/acme_lab`);
    assert.equal(get.status, 405);
  });

  test('unauthenticated requests are rate-limited per source address: 429 with Retry-After, nothing recorded; signed deliveries still pass', async () => {
    // Earlier tests sent 3 unauthenticated requests (2 bad signatures, 1 oversized) from this address; the limit is 6 a minute.
    const answers = [];
    for (let index = 0; index < 6; index++) answers.push(await deliver(port, '/webhooks/acme_lab', dft, { secret: labSecret, signature: 'v1,Zm9yZ2Vk' }));
    const limited = answers.filter((answer) => answer.status === 429);
    assert.ok(limited.length >= 3, `some of them are answered 429 (${answers.map((answer) => answer.status).join(',')})`);
    assert.equal(limited[0]?.body.error?.code, 'LL_WEBHOOK_RATE_LIMITED');
    assert.ok(Number(limited[0]?.headers.get('retry-after')) >= 1);
    const signed = await deliver(port, '/webhooks/acme_lab', dft.replace('DFT000123', 'DFT000999'), { secret: labSecret });
    assert.equal(signed.status, 200, 'a partner with a valid signature is never rate-limited');
    const last = limited[limited.length - 1] as { id: string };
    const deadline = Date.now() + 20_000;
    while (!charges.records.some((record) => record.value.delivery_id === signed.id) && Date.now() < deadline) await sleep(100);
    assert.ok(charges.records.some((record) => record.value.delivery_id === signed.id), 'the signed delivery was committed');
    assert.ok(!quarantine.records.some((record) => record.value.delivery_id === last.id), 'a rate-limited request is not recorded');
    // The limit is per source address: another address, still under it, is answered 401 and recorded.
    const elsewhere = await postFrom('127.0.0.2', '/webhooks/acme_lab', dft, { 'content-type': 'x-application/hl7-v2+er7', 'webhook-id': 'msg_from_elsewhere', 'webhook-timestamp': String(Math.floor(Date.now() / 1000)), 'webhook-signature': 'v1,Zm9yZ2Vk' });
    assert.equal(elsewhere.status, 401, JSON.stringify(elsewhere.body));
    assert.equal(elsewhere.body.quarantined, true);
    assert.match((await quarantinedFor('msg_from_elsewhere')).headers['lifeline.source-address'] ?? '', /127\.0\.0\.2$/);
    const stillLimited = await deliver(port, '/webhooks/acme_lab', dft, { secret: labSecret, signature: 'v1,Zm9yZ2Vk' });
    assert.equal(stillLimited.status, 429, 'the first address is still limited');
  });
});
