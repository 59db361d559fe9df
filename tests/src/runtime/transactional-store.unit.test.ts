import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbStoreBackend } from '../../../src/runtime/lmdb-store-backend.ts';
import { MemoryStoreBackend } from '../../../src/runtime/memory-store-backend.ts';
import { STORE_FORMAT, type StoreBackend } from '../../../src/runtime/store-backend.ts';
import { staleReason } from '../../../src/runtime/store-restorer.ts';
import { TransactionalStore } from '../../../src/runtime/transactional-store.ts';

const backends: Array<[string, () => StoreBackend]> = [
  ['memory', () => new MemoryStoreBackend()],
  ['lmdb', () => new LmdbStoreBackend(join(mkdtempSync(join(tmpdir(), 'lifeline-lmdb-')), 'store'))],
];

for (const [kind, makeBackend] of backends) {
  test(`${kind}: a failed record's writes vanish; accepted writes reach the backend only after commit`, async () => {
    const backend = makeBackend();
    const store = new TransactionalStore<number>('counts', 'changelog', backend, undefined);
    store.put('a', 1);
    store.acceptRecord();
    store.put('b', 2);
    assert.equal(store.get('b'), 2, 'a record reads its own writes');
    store.discardRecord();
    assert.equal(store.get('b'), undefined, 'the failed record left nothing');
    assert.equal(store.get('a'), 1, 'the transaction reads its own writes');
    assert.equal(backend.get('a'), undefined, 'nothing committed yet');
    assert.deepEqual(store.changelogWrites().map((write) => [write.key, JSON.parse(String(write.value))]), [['a', { v: 1 }]]);
    await store.commitTransaction();
    assert.deepEqual(backend.get('a'), { v: 1 });
    store.delete('a');
    store.acceptRecord();
    assert.deepEqual(store.changelogWrites(), [{ key: 'a', value: null }], 'a delete is a changelog tombstone');
    store.abortTransaction();
    assert.equal(store.get('a'), 1, 'an aborted transaction leaves committed state alone');
    await store.close();
  });

  test(`${kind}: entries expire after their TTL and expiry writes tombstones`, async () => {
    let now = 1_000_000;
    const backend = makeBackend();
    const store = new TransactionalStore<string>('seen', 'changelog', backend, 60_000, () => now);
    store.put('old', 'x');
    store.put('forever', 'y', { ttlMs: 10 * 60_000 });
    store.acceptRecord();
    await store.commitTransaction();
    now += 61_000;
    assert.equal(store.get('old'), undefined, 'expired');
    assert.equal(store.get('forever'), 'y');
    assert.deepEqual([...store.entries()], [['forever', 'y']]);
    assert.equal(store.expire(100), 1);
    assert.deepEqual(store.changelogWrites(), [{ key: 'old', value: null }]);
    await store.commitTransaction();
    assert.equal(backend.get('old'), undefined);
    await store.close();
  });

  test(`${kind}: a rewritten key moves in the expiry index, also when its last read was in an earlier, read-only transaction`, async () => {
    let now = 1_000_000;
    const backend = makeBackend();
    const store = new TransactionalStore<string>('seen', 'changelog', backend, 60_000, () => now);
    store.put('k', 'first');
    store.acceptRecord();
    await store.commitTransaction('1');
    // Read-only transactions: what they read is forgotten at their commit, never handed to a later one.
    now += 30_000;
    assert.equal(store.get('k'), 'first');
    await store.commitTransaction();
    // Written again elsewhere (a restore batch) after that read: the next commit must see this entry, not the forgotten read.
    await backend.apply(new Map([['k', { v: 'restored', exp: now + 60_000 }]])); // expires at 1,090,000
    now += 10_000;
    store.put('k', 'later'); // written without a read: the commit must read the restored entry itself
    store.acceptRecord();
    await store.commitTransaction('2'); // expires at 1,100,000
    now += 55_000; // 1,095,000: past the first write's expiry and the restored one's, not the last one's
    assert.deepEqual(backend.expiredKeys(now, 10), [], 'no index entry of an older expiry is left behind');
    assert.equal(store.get('k'), 'later');
    now += 10_000;
    assert.deepEqual(backend.expiredKeys(now, 10), ['k'], 'due at its last expiry');
    assert.equal(store.expire(10), 1);
    await store.commitTransaction('3');
    assert.equal(backend.get('k'), undefined);
    assert.deepEqual(backend.expiredKeys(now + 3_600_000, 10), [], 'the index is empty once the entry is gone');
    await store.close();
  });

  test(`${kind}: restoring from changelog records skips entries that expired meanwhile`, async () => {
    const backend = makeBackend();
    const store = new TransactionalStore<number>('counts', 'changelog', backend, undefined, () => 5000);
    const restore = store.restoreBuffer();
    await restore.add('a', Buffer.from(JSON.stringify({ v: 1 })));
    await restore.add('b', Buffer.from(JSON.stringify({ v: 2, exp: 4000 })));
    await restore.add('c', Buffer.from(JSON.stringify({ v: 3 })));
    await restore.add('c', null);
    await restore.flush();
    assert.equal(restore.restored, 4);
    assert.equal(store.get('a'), 1);
    assert.equal(store.get('b'), undefined);
    assert.equal(store.get('c'), undefined);
    assert.equal(backend.size(), 1);
    await store.close();
  });
}

/** Counts what a store reads from its backend: a tick or a sweep must read what is due, not the store. */
function counting(backend: StoreBackend): { backend: StoreBackend; scanned: () => number } {
  let scanned = 0;
  const wrapped: StoreBackend = Object.create(backend) as StoreBackend;
  wrapped.entries = function* () {
    for (const entry of backend.entries()) {
      scanned++;
      yield entry;
    }
  };
  wrapped.range = function* (from?: string, to?: string) {
    for (const entry of backend.range(from, to)) {
      scanned++;
      yield entry;
    }
  };
  wrapped.expiredKeys = (now, limit) => {
    const keys = backend.expiredKeys(now, limit);
    scanned += keys.length;
    return keys;
  };
  wrapped.dueEntries = (now, limit) => {
    const entries = backend.dueEntries(now, limit);
    scanned += entries.length;
    return entries;
  };
  return { backend: wrapped, scanned: () => scanned };
}

for (const [kind, makeBackend] of backends) {
  test(`${kind}: expiry deletes exactly what is due, at any rate (200 keys/s for 60 s, far above the old 33/s ceiling)`, async () => {
    let now = 1_000_000;
    const { backend, scanned } = counting(makeBackend());
    const store = new TransactionalStore<string>('seen', 'changelog', backend, 30_000, () => now);
    // 12,000 keys arriving at 200/s, each kept 30 s; plus 500 kept for a day.
    for (let second = 0; second < 60; second++) {
      for (let index = 0; index < 200; index++) store.put(`k${second}-${index}`, 'x');
      store.acceptRecord();
      await store.commitTransaction();
      now += 1000;
    }
    for (let index = 0; index < 500; index++) store.put(`long-${index}`, 'y', { ttlMs: 86_400_000 });
    store.acceptRecord();
    await store.commitTransaction();
    // now = start + 60 s: the first 30 s of keys (6,000) are due, the rest not yet.
    const before = scanned();
    let deleted = 0;
    for (let chunk = store.expire(2000); chunk > 0; chunk = store.expire(2000)) {
      deleted += chunk;
      await store.commitTransaction();
    }
    assert.equal(deleted, 6000 + 200, 'every key whose TTL passed (the keys of seconds 0-30), no other');
    assert.equal(scanned() - before, 6200, 'the sweep read the expiry index only as far as what was due');
    assert.equal(backend.size(), 12_000 + 500 - 6200);
    now += 31_000;
    for (let chunk = store.expire(2000); chunk > 0; chunk = store.expire(2000)) await store.commitTransaction();
    assert.equal(backend.size(), 500, 'only the day-long keys are left');
    const idle = scanned();
    assert.equal(store.expire(2000), 0);
    assert.equal(scanned(), idle, 'nothing due: nothing read');
    await store.close();
  });

  test(`${kind}: due() returns what a timer must handle, earliest first, uncommitted writes included; finished entries never come back`, async () => {
    const { backend, scanned } = counting(makeBackend());
    const store = new TransactionalStore<{ n: number }>('timers', 'changelog', backend, undefined, () => 0);
    for (let index = 0; index < 1000; index++) store.put(`t${String(index).padStart(4, '0')}`, { n: index }, { dueAt: 10_000 + index });
    store.put('finished', { n: -1 });
    store.acceptRecord();
    await store.commitTransaction();
    const before = scanned();
    assert.deepEqual(store.due(10_002, 100).map(([key]) => key), ['t0000', 't0001', 't0002']);
    assert.equal(scanned() - before, 3, 'read only the due entries');
    store.put('t0001', { n: 1 }, { dueAt: 50_000 }); // handled: next deadline later
    store.put('new', { n: 5 }, { dueAt: 5 });
    store.acceptRecord();
    assert.deepEqual(store.due(10_002, 100).map(([key]) => key), ['new', 't0000', 't0002'], 'the overlay counts before the commit');
    assert.deepEqual(store.due(20_000, 2).map(([key]) => key), ['new', 't0000'], 'limited, earliest first');
    await store.commitTransaction();
    assert.deepEqual(store.due(10_002, 100).map(([key]) => key), ['new', 't0000', 't0002']);
    assert.deepEqual([...store.range('t0997', 'u')].map(([key]) => key), ['t0997', 't0998', 't0999']);
    store.delete('t0998');
    store.put('t09975', { n: 0 });
    store.acceptRecord();
    assert.deepEqual([...store.range('t0997', 'u')].map(([key]) => key), ['t0997', 't09975', 't0999'], 'range merges uncommitted writes in key order');
    await store.close();
  });
}

test('lmdb: state and its changelog checkpoint survive a close and reopen; a wipe drops both', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'lifeline-lmdb-')), 'store');
  const first = new TransactionalStore<number>('counts', 'changelog', new LmdbStoreBackend(path), 60_000);
  first.put('a', 1, { dueAt: 5 });
  first.acceptRecord();
  await first.commitTransaction('42');
  await first.close();
  const reopened = new TransactionalStore<number>('counts', 'changelog', new LmdbStoreBackend(path), 60_000);
  assert.equal(reopened.get('a'), 1);
  assert.equal(reopened.checkpoint()?.offset, '42');
  assert.deepEqual(reopened.due(10, 10), [['a', 1]], 'the deadline index survives too');
  await reopened.wipe();
  assert.equal(reopened.get('a'), undefined);
  assert.equal(reopened.checkpoint(), undefined);
  await reopened.close();
});

test('a checkpoint is used unless missing, of another format, outside the changelog, or older than the tombstone retention margin', () => {
  const now = Date.now();
  const good = { offset: '100', at: now - 1000, format: STORE_FORMAT };
  assert.equal(staleReason(good, 0n, 150n, now), undefined);
  assert.match(staleReason(undefined, 0n, 150n, now) ?? '', /no local checkpoint/);
  assert.match(staleReason({ ...good, format: 1 }, 0n, 150n, now) ?? '', /format/);
  assert.match(staleReason(good, 120n, 150n, now) ?? '', /before the changelog's first offset/);
  assert.match(staleReason(good, 0n, 90n, now) ?? '', /beyond the changelog's end/);
  assert.match(staleReason({ ...good, at: now - 13 * 3600 * 1000 }, 0n, 150n, now) ?? '', /13 h old/);
});
