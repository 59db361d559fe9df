import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LmdbStoreBackend } from '../src/runtime/lmdb-store-backend.ts';
import { TransactionalStore } from '../src/runtime/transactional-store.ts';

/**
 * Timer tick cost against store size, on LMDB (the default backend): an sla-like store with N open
 * transactions scheduled in the future (nothing due) plus N finished markers, and a tick that reads
 * what is due (the deadline index) and the oldest open start (a range read of the start index),
 * against the old tick (a scan of every entry). Runs in seconds; prints one row per size.
 */
const SIZES = (process.env.BENCH_TICK_SIZES ?? '5000,100000,500000').split(',').map(Number);
/** Indexed ticks are cheap: many, for a stable mean; full scans are slow: a few. */
const TICKS = 500;
const SCAN_TICKS = 5;

async function fill(store: TransactionalStore, size: number, now: number): Promise<void> {
  for (let start = 0; start < size; start += 10_000) {
    for (let index = start; index < Math.min(size, start + 10_000); index++) {
      store.put(`charge_to_invoice:C${index}`, { state: 'open', started_at: now - index, warned: false }, { dueAt: now + 600_000 + index });
      store.put(`start:charge_to_invoice:${String(now - index).padStart(15, '0')}:C${index}`, 1);
      store.put(`finished:C${index}`, { state: 'finished' }, { ttlMs: 3_600_000 });
    }
    store.acceptRecord();
    await store.commitTransaction(String(start));
  }
}

function timeTicks(tick: () => void, ticks: number): number {
  tick();
  const started = performance.now();
  for (let index = 0; index < ticks; index++) tick();
  return (performance.now() - started) / ticks;
}

const rows: Array<Record<string, string | number>> = [];
for (const size of SIZES) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-tick-'));
  const store = new TransactionalStore('transactions', 'changelog', new LmdbStoreBackend(join(dir, 'store')), undefined);
  const now = Date.now();
  await fill(store, size, now);
  const indexed = timeTicks(() => {
    store.due(now, 500);
    for (const entry of store.range('start:charge_to_invoice:', 'start:charge_to_invoice:\uffff')) { void entry; break; }
  }, TICKS);
  const scanned = timeTicks(() => {
    let open = 0;
    for (const [, value] of store.entries()) if ((value as { state?: string }).state === 'open') open++;
    void open;
  }, SCAN_TICKS);
  rows.push({ entries: size * 3, 'indexed tick (ms)': indexed.toFixed(3), 'full-scan tick (ms)': scanned.toFixed(1) });
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
console.log('timer tick cost on LMDB (sla-like store: N open, N start-index keys, N finished markers; nothing due)');
console.table(rows);
