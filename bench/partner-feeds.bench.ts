// Partner feeds: webhook requests/s and latency (autocannon in this process, `lifeline run` in another,
// over loopback), and file rows/s (a 100,000-row CSV from drop to archive), against the real broker.
// `npm run bench -- partner` runs only this. BENCH_WEBHOOK_SECONDS / BENCH_FILE_ROWS shorten it;
// BENCH_WEBHOOK_MORE_LANES=8,12 adds runs with that many transactions in flight. The default (4 in flight) also runs
// with group_commit_wait 0ms, to show what waiting for fuller transactions gives.
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, readFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import { Webhook } from 'standardwebhooks';
import { LifelineProcess } from '../testing/runtime-fixture.ts';
import { newWebhookSecret, partnerTopics, webhookPort, writePartnerFeedTopology } from '../testing/partner-feed-fixture.ts';

const WEBHOOK_SECONDS = Number(process.env.BENCH_WEBHOOK_SECONDS ?? 20);
const CONNECTIONS = Number(process.env.BENCH_WEBHOOK_CONNECTIONS ?? 50);
const FILE_ROWS = Number(process.env.BENCH_FILE_ROWS ?? 100_000);
/** The memory budget README.md recommends for a process ingesting large files. */
const FILE_NODE_OPTIONS = '--max-semi-space-size=2 --max-old-space-size=128';

const rows: Array<[string, string]> = [];

async function webhookBenchmark(lanes: number, label: string, groupCommitWait?: string): Promise<void> {
  const topics = partnerTopics();
  const secret = newWebhookSecret();
  const topology = await writePartnerFeedTopology('webhook_source', { service_charges: topics.service_charges, quarantine: topics.quarantine }, {
    host: '127.0.0.1', port: 0, max_pending_deliveries: 5000, transactions_in_flight: lanes, ...(groupCommitWait ? { group_commit_wait: groupCommitWait } : {}),
    partners: [{ name: 'acme_lab', path: '/webhooks/acme_lab', format: 'hl7v2', secrets: ['${BENCH_SECRET}'] }],
  });
  const lifeline = new LifelineProcess(topology.file, [], { BENCH_SECRET: secret }).start();
  try {
    const port = await webhookPort(lifeline);
    await lifeline.waitForLine(/lifeline running/);
    const body = readFileSync('tests/fixtures/partner/own/dft-p03.hl7', 'utf8');
    const signer = new Webhook(secret);
    const result = await autocannon({
      url: `http://127.0.0.1:${port}/webhooks/acme_lab`,
      connections: CONNECTIONS,
      duration: WEBHOOK_SECONDS,
      requests: [{
        method: 'POST',
        // Every request is a new delivery: its own webhook-id, a fresh signature.
        setupRequest: (request) => {
          const id = `msg_${randomBytes(8).toString('hex')}`;
          const now = new Date();
          return { ...request, body, headers: {
            'content-type': 'x-application/hl7-v2+er7', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signer.sign(id, now, body),
          } };
        },
      }],
    });
    const non2xx = result.non2xx + result.errors + result.timeouts;
    rows.push(
      [`webhook, ${label}: deliveries accepted per second (2 FT1 charges each)`, `${Math.round(result.requests.average)} (${CONNECTIONS} connections, ${WEBHOOK_SECONDS} s)`],
      [`webhook, ${label}: latency p50 / p99 / max (request → 200 after commit)`, `${result.latency.p50} / ${result.latency.p99} / ${result.latency.max} ms`],
      [`webhook, ${label}: answers other than 2xx, errors, timeouts`, String(non2xx)],
    );
  } finally {
    await lifeline.kill('SIGTERM');
  }
}

async function fileBenchmark(): Promise<void> {
  const topics = partnerTopics();
  const root = join(tmpdir(), `lifeline-bench-files-${Date.now()}`);
  const inbox = join(root, 'inbox');
  mkdirSync(inbox, { recursive: true });
  const topology = await writePartnerFeedTopology('file_source', { service_charges: topics.service_charges, quarantine: topics.quarantine }, {
    poll_interval: '100ms', settle_time: '1ms',
    partners: [{ name: 'clinic', format: 'csv', inbox, csv: {
      record_type: 'service_charge', columns: { occurred_at: 'date', service_code: 'code', total: 'amount', account_ref: 'account', patient_id: 'mrn' }, key_columns: ['charge_id'],
    } }],
  });
  const file = join(root, 'charges.csv');
  const out = createWriteStream(file);
  out.write('charge_id,date,code,amount,account,mrn\n');
  for (let row = 0; row < FILE_ROWS; row++) out.write(`CH${row},2024-11-05,${80000 + (row % 100)},${(row % 5000) + 1}.${String(row % 100).padStart(2, '0')},ACC${row % 997},MRN${row % 9973}\n`);
  await new Promise<void>((resolveEnd) => out.end(resolveEnd));
  const size = readFileSync(file).length;
  const lifeline = new LifelineProcess(topology.file, [], { NODE_OPTIONS: FILE_NODE_OPTIONS }).start();
  try {
    const pid = (JSON.parse(await lifeline.waitForLine(/"pid":\d+/)) as { pid: number }).pid;
    await lifeline.waitForLine(/lifeline running/);
    const started = performance.now();
    copyFileSync(file, join(inbox, 'charges.csv'));
    const past = new Date(Date.now() - 10_000);
    utimesSync(join(inbox, 'charges.csv'), past, past);
    while (!existsSync(join(inbox, 'archive', 'charges.csv'))) await sleep(50);
    const seconds = (performance.now() - started) / 1000;
    const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
    rows.push(
      [`file: ${FILE_ROWS.toLocaleString('en')}-row CSV (${(size / 1048576).toFixed(1)} MiB), drop → archived`, `${seconds.toFixed(1)} s = ${Math.round(FILE_ROWS / seconds).toLocaleString('en')} rows/s`],
      ['file: peak RSS of the lifeline process', `${peak.toFixed(0)} MiB (NODE_OPTIONS="${FILE_NODE_OPTIONS}")`],
      ['file: content hash (sanity)', createHash('sha256').update(readFileSync(join(inbox, 'archive', 'charges.csv'))).digest('hex').slice(0, 12)],
    );
  } finally {
    await lifeline.kill('SIGTERM');
  }
}

// Baseline: one transaction at a time (as before transactions_in_flight); then the default, 4.
await webhookBenchmark(1, '1 transaction in flight (baseline)');
await webhookBenchmark(4, '4 transactions in flight, no group commit (group_commit_wait 0ms)', '0ms');
await webhookBenchmark(4, '4 transactions in flight (default)');
for (const lanes of (process.env.BENCH_WEBHOOK_MORE_LANES ?? '').split(',').filter(Boolean).map(Number)) await webhookBenchmark(lanes, `${lanes} transactions in flight`);
await fileBenchmark();
const width = Math.max(...rows.map(([name]) => name.length));
console.log(`\n| ${'measure'.padEnd(width)} | result |\n| ${'-'.repeat(width)} | --- |`);
for (const [name, value] of rows) console.log(`| ${name.padEnd(width)} | ${value} |`);
process.exit(0);
