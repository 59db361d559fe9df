import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { LmdbStoreBackend } from '../../../src/runtime/lmdb-store-backend.ts';
import { MemoryStoreBackend } from '../../../src/runtime/memory-store-backend.ts';
import type { StoreBackend } from '../../../src/runtime/store-backend.ts';
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
