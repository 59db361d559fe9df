import { mkdirSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { StoreBackend, StoredEntry } from './store-backend.ts';

/**
 * Committed state on disk in LMDB (memory-mapped B+tree, prebuilt binaries on npm), so a store's
 * size is bounded by the disk, not the JS heap. The folder is wiped on open: the changelog, not
 * the local file, is the source of truth, and a crash may have left uncommitted state behind.
 */
export class LmdbStoreBackend implements StoreBackend {
  private readonly root: RootDatabase;
  private readonly db: Database<StoredEntry, string>;

  constructor(private readonly path: string) {
    rmSync(path, { recursive: true, force: true });
    mkdirSync(path, { recursive: true });
    this.root = open({ path, noSync: true, noMemInit: true });
    this.db = this.root.openDB<StoredEntry, string>({ name: 'entries' });
  }

  get(key: string): StoredEntry | undefined {
    return this.db.get(key);
  }

  async apply(writes: ReadonlyMap<string, StoredEntry | null>): Promise<void> {
    if (writes.size === 0) return;
    await this.db.transaction(() => {
      for (const [key, entry] of writes) {
        if (entry === null) void this.db.remove(key);
        else void this.db.put(key, entry);
      }
    });
  }

  *entries(): Iterable<[string, StoredEntry]> {
    for (const { key, value } of this.db.getRange()) yield [key, value];
  }

  size(): number {
    return this.db.getCount();
  }

  async clear(): Promise<void> {
    await this.db.clearAsync();
  }

  async close(): Promise<void> {
    await this.root.close();
    rmSync(this.path, { recursive: true, force: true });
  }
}
