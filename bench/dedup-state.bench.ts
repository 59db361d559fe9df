// Dedup state for 1,000,000 idempotency keys: what it costs to hold (heap/RSS, disk) and how long a
// new owner takes to restore it from the compacted changelog — LMDB (the default) against the
// in-memory store as the baseline, both measured here in the same run against the real broker.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import pino from 'pino';
import { createKafka } from '../src/kafka/client.ts';
import { ensureTopics } from '../src/kafka/topic-admin.ts';
import { LmdbStoreBackend } from '../src/runtime/lmdb-store-backend.ts';
import { MemoryStoreBackend } from '../src/runtime/memory-store-backend.ts';
import type { StoreBackend } from '../src/runtime/store-backend.ts';
import { markersWrittenBy, restoreStores } from '../src/runtime/store-restorer.ts';
import { TransactionalStore } from '../src/runtime/transactional-store.ts';
import { kafkaBootstrap, localInfraSettings } from '../dev/infra/settings.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 1_000_000);
const PARTITIONS = 1; // one task's store: the worst case for a single restore
const logger = pino({ level: 'warn' });
const kafka = createKafka({ brokers: [kafkaBootstrap(localInfraSettings())], clientId: 'bench-dedup' });
const changelog = `_lifeline.bench.dedup_${Date.now().toString(36)}.seen_keys.changelog`;

const admin = kafka.admin();
await admin.connect();
await ensureTopics(admin, [{ name: changelog, partitions: PARTITIONS, cleanupPolicy: 'compact' }]);

// Fill the changelog as dedup would: key = idempotency key, value = {"v":{"hash":…},"exp":…}.
const fillStarted = performance.now();
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
await producer.connect();
const expires = Date.now() + 7 * 86_400_000;
for (let start = 0; start < KEYS; start += 2_000) {
  const messages = [];
  for (let index = start; index < Math.min(KEYS, start + 2_000); index++) {
    const key = `LAB${index % 50}|FACILITY${index % 7}|MSG${index}`;
    const hash = createHash('sha256').update(key).digest('hex');
    messages.push({ key, value: JSON.stringify({ v: { hash }, exp: expires }), partition: 0 });
  }
  await producer.send({ topic: changelog, messages, acks: -1 });
}
const fillSeconds = (performance.now() - fillStarted) / 1000;

interface Row { store: string; restoreSeconds: number; keysPerSecond: number; heapMiB: number; rssMiB: number; diskMiB: number }

async function measure(name: string, backend: StoreBackend, dir?: string): Promise<Row> {
  global.gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const store = new TransactionalStore('seen_keys', changelog, backend, undefined);
  const { restored, ms } = await restoreStores({ kafka, writeMarkers: markersWrittenBy(producer, false), partition: 0, stores: [store], logger });
  global.gc?.();
  const row: Row = {
    store: name,
    restoreSeconds: ms / 1000,
    keysPerSecond: Math.round(restored / (ms / 1000)),
    heapMiB: (process.memoryUsage().heapUsed - heapBefore) / 2 ** 20,
    rssMiB: (process.memoryUsage().rss - rssBefore) / 2 ** 20,
    diskMiB: dir ? Number(execFileSync('du', ['-sm', dir], { encoding: 'utf8' }).split('\t')[0]) : 0,
  };
  if (backend.size() !== KEYS) throw new Error(`${name}: restored ${backend.size()} keys, expected ${KEYS}`);
  await store.close();
  return row;
}

const lmdbDir = join(mkdtempSync(join(tmpdir(), 'bench-lmdb-')), 'store');
const rows = [
  await measure('memory (baseline)', new MemoryStoreBackend()),
  await measure('lmdb (default), full restore', new LmdbStoreBackend(lmdbDir), lmdbDir),
];

// A restart or a rebalance back to this process: the LMDB folder is kept with its checkpoint, and
// only what the changelog gained since (here TAIL new keys) is read.
const TAIL = 1_000;
{
  const messages = [];
  for (let index = KEYS; index < KEYS + TAIL; index++) {
    const key = `LAB${index % 50}|FACILITY${index % 7}|MSG${index}`;
    messages.push({ key, value: JSON.stringify({ v: { hash: createHash('sha256').update(key).digest('hex') }, exp: expires }), partition: 0 });
  }
  await producer.send({ topic: changelog, messages, acks: -1 });
}
{
  const store = new TransactionalStore('seen_keys', changelog, new LmdbStoreBackend(lmdbDir), undefined);
  const { restored, ms, plans } = await restoreStores({ kafka, writeMarkers: markersWrittenBy(producer, false), partition: 0, stores: [store], logger });
  if (plans[0]?.mode !== 'tail') throw new Error(`the reopened store restored in ${plans[0]?.mode} mode: ${plans[0]?.reason}`);
  if (store.committedSize() !== KEYS + TAIL) throw new Error(`tail restore holds ${store.committedSize()} keys, expected ${KEYS + TAIL}`);
  rows.push({
    store: `lmdb, reopened: tail restore (${restored.toLocaleString('en')} records read)`,
    restoreSeconds: ms / 1000, keysPerSecond: Math.round(restored / (ms / 1000)), heapMiB: 0, rssMiB: 0,
    diskMiB: Number(execFileSync('du', ['-sm', lmdbDir], { encoding: 'utf8' }).split('\t')[0]),
  });
  await store.close();
}
await producer.disconnect();
await admin.deleteTopics({ topics: [changelog] }).catch(() => undefined);
await admin.disconnect();

console.log(`dedup state: ${KEYS.toLocaleString('en')} keys in one partition's changelog (filled in ${fillSeconds.toFixed(1)} s)`);
console.log('| store | restore s | keys/s | heap growth MiB | RSS growth MiB | disk MiB |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const row of rows) {
  console.log(`| ${row.store} | ${row.restoreSeconds.toFixed(row.restoreSeconds < 1 ? 2 : 1)} | ${row.keysPerSecond.toLocaleString('en')} | ${row.heapMiB.toFixed(0)} | ${row.rssMiB.toFixed(0)} | ${row.diskMiB || '-'} |`);
}
