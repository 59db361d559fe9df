import assert from 'node:assert/strict';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import kafkajs from 'kafkajs';
import { DEAD_LETTER_HEADERS } from '../../../src/runtime/dead-letter.ts';
import { deadLetterTopic } from '../../../src/topology/model.ts';
import { testKafka } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { partnerTopics, writePartnerFeedTopology } from '../../../testing/partner-feed-fixture.ts';

/**
 * file_source takes a file only when it is complete (issue 12): a file renamed into the inbox
 * while its writer still appends is ingested whole, once; a partner with a ready marker is read
 * only once the marker is there; a file that grows after it was taken is reported (LL_FILE_CHANGED),
 * never half-ingested in silence (by its sha256: a same-size rewrite is caught, a touch is not a change);
 * spreadsheet exports with trailing rows of commas are ingested; a record type no output maps is
 * quarantined with LL_PARTNER_TYPE_UNROUTED; a row larger than the partner's max_record_bytes
 * rejects its file with LL_FILE_RECORD_TOO_LARGE, and a row Kafka refuses as too large is
 * dead-lettered while the rest of its file is ingested (issue 11).
 */

interface Charge { idempotency_key: string; delivery_id: string; total: { amount_minor: number } | null; partner: string }
interface Quarantined { partner: string; reason_code: string; message: string; raw: Buffer; delivery_id: string | null }

const mapping = {
  record_type: 'service_charge',
  columns: { occurred_at: 'date', service_code: 'code', total: 'amount', service_description: 'description' },
  key_columns: ['charge_id'],
};
const header = 'charge_id,date,code,description,amount\n';
const row = (id: string, cents: number): string => `${id},2024-11-05,CPT-85025,Blood count,${(cents / 100).toFixed(2)}\n`;

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

const topics = partnerTopics();
let dir = '';
let sourceLabel = '';
const inbox = (partner: string): string => join(dir, 'inbox', partner);
let lifeline: LifelineProcess;
let charges: TopicCollector<Charge>;
let quarantine: TopicCollector<Quarantined>;

before(async () => {
  const topology = await writePartnerFeedTopology('file_source', { service_charges: topics.service_charges, quarantine: topics.quarantine }, {
    poll_interval: '200ms',
    settle_time: '1500ms',
    watch_after_ingest: '30s',
    partners: [
      { name: 'slow_lab', format: 'csv', inbox: '${FILES_DIR}/inbox/slow_lab', csv: mapping },
      { name: 'marker_lab', format: 'csv', inbox: '${FILES_DIR}/inbox/marker_lab', csv: mapping, ready_marker: '.done' },
      { name: 'sheet_lab', format: 'csv', inbox: '${FILES_DIR}/inbox/sheet_lab', csv: mapping, settle_time: '500ms' },
      { name: 'tiny_lab', format: 'csv', inbox: '${FILES_DIR}/inbox/tiny_lab', csv: mapping, settle_time: '500ms', max_record_bytes: 3000 },
      { name: 'pharmacy', format: 'csv', inbox: '${FILES_DIR}/inbox/pharmacy', settle_time: '500ms', csv: {
        record_type: 'pharmacy_dispense',
        columns: { occurred_at: 'date', pharmacy_id: 'pharmacy', rx_number: 'rx', product_code: 'ndc', quantity: 'qty', total: 'amount' },
        key_columns: ['pharmacy', 'rx'],
      } },
    ],
  });
  dir = topology.dir;
  sourceLabel = topology.label;
  for (const partner of ['slow_lab', 'marker_lab', 'sheet_lab', 'pharmacy', 'tiny_lab']) mkdirSync(inbox(partner), { recursive: true });
  mkdirSync(join(dir, 'staging'), { recursive: true });
  lifeline = new LifelineProcess(topology.file, [], { FILES_DIR: dir }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  await lifeline.waitForLine(/lifeline running/, 90_000);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  charges = await new TopicCollector<Charge>(kafka, topics.service_charges, serde).start();
  quarantine = await new TopicCollector<Quarantined>(kafka, topics.quarantine, serde).start();
  cleanups.push(() => charges.stop(), () => quarantine.stop());
}, { timeout: 120_000 });

async function until(what: string, condition: () => boolean, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${lifeline.lines.slice(-12).join('\n')}`);
    await sleep(100);
  }
}

const chargesOf = (partner: string, prefix: string): Charge[] => charges.records.map((record) => record.value).filter((charge) => charge.partner === partner && charge.delivery_id.startsWith(prefix));

test('a file renamed into the inbox while its writer still appends is ingested whole, once', { timeout: 90_000 }, async () => {
  // Written elsewhere long ago (an old mtime, as a rename keeps it), moved in, and still appended to.
  const staging = join(dir, 'staging', 'slow.csv');
  writeFileSync(staging, header + row('S-1', 1000));
  const past = new Date(Date.now() - 60_000);
  utimesSync(staging, past, past);
  const target = join(inbox('slow_lab'), 'slow.csv');
  renameSync(staging, target);
  const fd = openSync(target, 'a');
  for (let index = 2; index <= 12; index++) {
    await sleep(300); // well under the settle time: the file never looks stable while written
    writeSync(fd, row(`S-${index}`, 1000 + index));
  }
  closeSync(fd);
  await until('the slow file archived', () => existsSync(join(inbox('slow_lab'), 'archive', 'slow.csv')));
  await until('its 12 charges', () => chargesOf('slow_lab', 'slow.csv').length >= 12);
  // A sentinel file after it: once the sentinel is in, nothing more of slow.csv is coming.
  writeFileSync(join(inbox('slow_lab'), 'sentinel.csv'), header + row('SENT-1', 1));
  await until('the sentinel', () => chargesOf('slow_lab', 'sentinel.csv').length === 1);
  const slow = chargesOf('slow_lab', 'slow.csv');
  assert.equal(slow.length, 12, 'every row once');
  assert.equal(new Set(slow.map((charge) => charge.idempotency_key)).size, 12);
  assert.equal(quarantine.records.filter((record) => record.value.partner === 'slow_lab').length, 0, 'nothing reported: it was taken once complete');
});

test('a partner with a ready marker: the file is taken only once its marker exists, and the marker moves with it', { timeout: 90_000 }, async () => {
  writeFileSync(join(inbox('marker_lab'), 'batch.csv'), header + row('M-1', 500) + row('M-2', 600));
  // A sentinel through another partner, well after the settle time: the marker file's content must not be in yet.
  await sleep(1600);
  writeFileSync(join(inbox('sheet_lab'), 'sentinel-m.csv'), header + row('SM-1', 1));
  await until('the sentinel', () => chargesOf('sheet_lab', 'sentinel-m.csv').length === 1);
  await sleep(1600);
  writeFileSync(join(inbox('sheet_lab'), 'sentinel-m2.csv'), header + row('SM-2', 1));
  await until('the second sentinel', () => chargesOf('sheet_lab', 'sentinel-m2.csv').length === 1);
  assert.equal(chargesOf('marker_lab', 'batch.csv').length, 0, 'not taken without its marker');
  writeFileSync(join(inbox('marker_lab'), 'batch.csv.done'), '');
  await until('the marked file', () => chargesOf('marker_lab', 'batch.csv').length === 2);
  await until('file and marker archived', () => existsSync(join(inbox('marker_lab'), 'archive', 'batch.csv')) && existsSync(join(inbox('marker_lab'), 'archive', 'batch.csv.done')));
  assert.ok(!existsSync(join(inbox('marker_lab'), 'batch.csv.done')));
});

test('a file that grows after it was taken is reported as LL_FILE_CHANGED (quarantine and failed/), not half-ingested in silence', { timeout: 90_000 }, async () => {
  const target = join(inbox('slow_lab'), 'paused.csv');
  writeFileSync(target, header + row('P-1', 700) + row('P-2', 800));
  const fd = openSync(target, 'a');
  await until('the first part ingested', () => chargesOf('slow_lab', 'paused.csv').length === 2);
  // The writer resumes after a pause longer than the settle time (the file already moved to archive/).
  writeSync(fd, row('P-3', 900));
  closeSync(fd);
  await until('the change reported', () => quarantine.records.some((record) => record.value.reason_code === 'LL_FILE_CHANGED'));
  const reported = quarantine.records.find((record) => record.value.reason_code === 'LL_FILE_CHANGED')?.value as Quarantined;
  assert.equal(reported.partner, 'slow_lab');
  assert.match(reported.message, /2 record\(s\) of its earlier content/);
  assert.ok(Buffer.from(reported.raw).toString('utf8').includes('P-3'), 'the changed content is kept in quarantine');
  await until('the report in failed/', () => readdirSync(join(inbox('slow_lab'), 'failed')).some((name) => name === 'paused.csv.error.json'));
  const report = JSON.parse(readFileSync(join(inbox('slow_lab'), 'failed', 'paused.csv.error.json'), 'utf8')) as { problems: Array<{ code: string }> };
  assert.equal(report.problems[0]?.code, 'LL_FILE_CHANGED');
  // Dropping the complete file again ingests it: its earlier rows come with the same keys (dedup's duplicates).
  writeFileSync(join(inbox('slow_lab'), 'paused-again.csv'), header + row('P-1', 700) + row('P-2', 800) + row('P-3', 900));
  await until('the complete file', () => chargesOf('slow_lab', 'paused-again.csv').length === 3);
  const keys = new Set(chargesOf('slow_lab', 'paused.csv').map((charge) => charge.idempotency_key));
  assert.equal(chargesOf('slow_lab', 'paused-again.csv').filter((charge) => keys.has(charge.idempotency_key)).length, 2, 'the rows already taken have the same idempotency keys');
});

test('after it was taken, a file rewritten in place at the same size is reported by its hash; one only touched (same content) is not', { timeout: 90_000 }, async () => {
  writeFileSync(join(inbox('sheet_lab'), 'touched.csv'), header + row('T-1', 700));
  writeFileSync(join(inbox('sheet_lab'), 'rewritten.csv'), header + row('R-1', 700) + row('R-2', 800));
  await until('both ingested', () => chargesOf('sheet_lab', 'touched.csv').length === 1 && chargesOf('sheet_lab', 'rewritten.csv').length === 2);
  const archived = (name: string): string => join(inbox('sheet_lab'), 'archive', name);
  await until('both archived', () => existsSync(archived('touched.csv')) && existsSync(archived('rewritten.csv')));
  // Touched: a new modification time, the same bytes — the hash says nothing changed.
  const later = new Date(Date.now() + 5_000);
  utimesSync(archived('touched.csv'), later, later);
  // A sentinel file taken after the touch: every scan before it also checked the archived files.
  writeFileSync(join(inbox('sheet_lab'), 'sentinel-t.csv'), header + row('ST-1', 1));
  await until('the sentinel', () => chargesOf('sheet_lab', 'sentinel-t.csv').length === 1);
  // Rewritten in place: one amount changed, the size the same — only the hash can tell.
  const before = readFileSync(archived('rewritten.csv'));
  const after = Buffer.from(before.toString('utf8').replace('8.00', '9.00'));
  assert.equal(after.length, before.length);
  assert.ok(!after.equals(before));
  writeFileSync(archived('rewritten.csv'), after);
  await until('the rewrite reported', () => quarantine.records.some((record) => record.value.reason_code === 'LL_FILE_CHANGED' && record.value.delivery_id === 'rewritten.csv'));
  const reported = quarantine.records.find((record) => record.value.delivery_id === 'rewritten.csv')?.value as Quarantined;
  assert.match(reported.message, new RegExp(`2 record\\(s\\) of its earlier content \\(sha256 [0-9a-f]{16}…, ${before.length} bytes\\) were ingested, the content it has now \\(sha256 [0-9a-f]{16}…, ${after.length} bytes\\)`));
  assert.ok(Buffer.from(reported.raw).equals(after), 'the changed content is kept in quarantine');
  assert.equal(quarantine.records.filter((record) => record.value.delivery_id === 'touched.csv').length, 0, 'a touch alone is no change');
  assert.ok(existsSync(archived('touched.csv')), 'the touched file stays archived');
});

test('a spreadsheet export with trailing rows of only commas is ingested; a record type no output maps is quarantined with LL_PARTNER_TYPE_UNROUTED', { timeout: 90_000 }, async () => {
  writeFileSync(join(inbox('sheet_lab'), 'export.csv'), `${header}${row('X-1', 1234)}${row('X-2', 4321)},,,,\r\n,,,,\r\n,,,,\r\n`);
  await until('the export', () => chargesOf('sheet_lab', 'export.csv').length === 2);
  assert.deepEqual(chargesOf('sheet_lab', 'export.csv').map((charge) => charge.total?.amount_minor).sort(), [1234, 4321]);

  writeFileSync(join(inbox('pharmacy'), 'fills.csv'), 'date,pharmacy,rx,ndc,qty,amount\n2024-11-05,PH1,RX1,00093-7146-56,30,12.50\n');
  await until('the unrouted file quarantined', () => quarantine.records.some((record) => record.value.partner === 'pharmacy'));
  const unrouted = quarantine.records.find((record) => record.value.partner === 'pharmacy')?.value as Quarantined;
  assert.equal(unrouted.reason_code, 'LL_PARTNER_TYPE_UNROUTED');
  assert.match(unrouted.message, /pharmacy_dispenses/);
  await until('moved to failed/', () => existsSync(join(inbox('pharmacy'), 'failed', 'fills.csv')));
});

test('a row that becomes a record larger than the partner\'s max_record_bytes rejects its file (LL_FILE_RECORD_TOO_LARGE, where, size, limit); rows under it are ingested', { timeout: 90_000 }, async () => {
  const big = `B-2,2024-11-05,CPT-85025,${'x'.repeat(5000)},12.00\n`;
  writeFileSync(join(inbox('tiny_lab'), 'big-row.csv'), `${header}${row('B-1', 1100)}${big}${row('B-3', 1300)}`);
  await until('the file with the big row in failed/', () => existsSync(join(inbox('tiny_lab'), 'failed', 'big-row.csv.error.json')));
  const report = JSON.parse(readFileSync(join(inbox('tiny_lab'), 'failed', 'big-row.csv.error.json'), 'utf8')) as { problems: Array<{ code: string; message: string; location: string }> };
  assert.equal(report.problems.length, 1, JSON.stringify(report.problems));
  assert.equal(report.problems[0]?.code, 'LL_FILE_RECORD_TOO_LARGE');
  assert.equal(report.problems[0]?.location, 'line 3');
  assert.match(report.problems[0]?.message ?? '', /line 3 becomes a service_charge record of about \d{4} bytes; partner tiny_lab accepts 3000 bytes a record at most \(max_record_bytes\)/);
  await until('the rejected file quarantined', () => quarantine.records.some((record) => record.value.partner === 'tiny_lab' && record.value.reason_code === 'LL_FILE_RECORD_TOO_LARGE'));
  // Rows under the limit are ingested; sent after, so once they are in, a row of the rejected file would be too.
  writeFileSync(join(inbox('tiny_lab'), 'small-rows.csv'), `${header}${row('OK-1', 500)}${row('OK-2', 600)}`);
  await until('the small rows', () => chargesOf('tiny_lab', 'small-rows.csv').length === 2);
  assert.equal(chargesOf('tiny_lab', 'big-row.csv').length, 0, 'none of the rejected file\'s records produced');
});

test('Kafka refuses a row as too large (the topic\'s limit lowered while running): that row is dead-lettered, the rest of the file ingested and archived', { timeout: 120_000 }, async () => {
  const LOWERED = 8192;
  const kafka = await testKafka();
  const admin = kafka.admin();
  await admin.connect();
  const serde = await registeredSerde();
  const setLimit = async (value: string | undefined): Promise<void> => {
    // AlterConfigs replaces a topic's overrides: keep the others.
    const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topics.service_charges }] });
    const kept = (described.resources[0]?.configEntries ?? []).filter((entry) => !entry.isDefault && !entry.readOnly && entry.configName !== 'max.message.bytes').map((entry) => ({ name: entry.configName, value: entry.configValue }));
    await admin.alterConfigs({ validateOnly: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topics.service_charges, configEntries: [...kept, ...(value === undefined ? [] : [{ name: 'max.message.bytes', value }])] }] });
  };
  const deadLetters = await new TopicCollector(kafka, deadLetterTopic(sourceLabel)).start();
  try {
    await setLimit(String(LOWERED));
    // Until the broker enforces it: a valid 12 KB charge (delivery "probe") is refused.
    const template = charges.records[0]?.value as unknown as Record<string, unknown>;
    const probeValue = await serde.encode(topics.service_charges, { ...template, delivery_id: 'probe', service_description: 'p'.repeat(12_000) });
    const probe = kafka.producer();
    await probe.connect();
    try {
      const deadline = Date.now() + 30_000;
      for (;;) {
        try {
          await probe.send({ topic: topics.service_charges, acks: -1, messages: [{ key: 'probe', value: probeValue }] });
        } catch {
          break;
        }
        if (Date.now() > deadline) throw new Error('the broker never enforced the lowered limit');
        await sleep(100);
      }
    } finally {
      await probe.disconnect();
    }
    writeFileSync(join(inbox('sheet_lab'), 'with-big-row.csv'), `${header}${row('BR-1', 100)}BR-2,2024-11-05,CPT-85025,${'x'.repeat(12_000)},12.00\n${row('BR-3', 300)}`);
    await until('the file archived', () => existsSync(join(inbox('sheet_lab'), 'archive', 'with-big-row.csv')), 60_000);
    await until('its two other rows', () => chargesOf('sheet_lab', 'with-big-row.csv').length === 2);
    await until('the big row dead-lettered', () => deadLetters.records.some((letter) => letter.headers[DEAD_LETTER_HEADERS.errorClass] === 'LL_RECORD_TOO_LARGE'));
    const letter = deadLetters.records.find((one) => one.headers[DEAD_LETTER_HEADERS.errorClass] === 'LL_RECORD_TOO_LARGE') as { headers: Record<string, string> };
    assert.match(letter.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '', new RegExp(`max\\.message\\.bytes ${LOWERED}`), 'judged by the limit the topic has now');
    assert.ok(!existsSync(join(inbox('sheet_lab'), 'failed', 'with-big-row.csv')), 'the file is not rejected');
    assert.ok(lifeline.lines.some((line) => line.includes('records of a file were dead-lettered') && line.includes('with-big-row.csv')), 'the file\'s dead-lettered record is said');
    assert.deepEqual(chargesOf('sheet_lab', 'with-big-row.csv').map((charge) => charge.total?.amount_minor).sort((a, b) => (a ?? 0) - (b ?? 0)), [100, 300]);
  } finally {
    await setLimit(undefined).catch(() => undefined);
    await deadLetters.stop();
    await admin.disconnect();
  }
});
