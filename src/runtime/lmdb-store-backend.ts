import { mkdirSync, rmSync } from 'node:fs';
import { open, type Database, type RootDatabase } from 'lmdb';
import type { StoreBackend, StoreCheckpoint, StoredEntry } from './store-backend.ts';

type IndexKey = [number, string];

/**
 * Committed state on disk in LMDB (memory-mapped B+tree, prebuilt binaries on npm), so a store's
 * size is bounded by the disk, not the JS heap. One environment holds four databases written in
 * one LMDB transaction per commit: the entries, an index by expiry, an index by deadline, and the
 * changelog checkpoint. So the checkpoint always describes exactly the entries beside it, and a
 * process killed at any moment leaves a state it can resume from the checkpoint
 * (docs/architecture-state.md). `fresh` wipes the folder first (reference tables, which always
 * re-read their topic).
 */
export class LmdbStoreBackend implements StoreBackend {
  private readonly root: RootDatabase;
  private readonly db: Database<StoredEntry, string>;
  private readonly byExpiry: Database<number, IndexKey>;
  private readonly byDue: Database<number, IndexKey>;
  private readonly meta: Database<StoreCheckpoint, string>;

  constructor(private readonly path: string, private readonly options: { fresh?: boolean } = {}) {
    if (options.fresh) rmSync(path, { recursive: true, force: true });
    mkdirSync(path, { recursive: true });
    this.root = open({ path, noMemInit: true, maxDbs: 8 });
    this.db = this.root.openDB<StoredEntry, string>({ name: 'entries' });
    this.byExpiry = this.root.openDB<number, IndexKey>({ name: 'by-expiry' });
    this.byDue = this.root.openDB<number, IndexKey>({ name: 'by-due' });
    this.meta = this.root.openDB<StoreCheckpoint, string>({ name: 'meta' });
  }

  get(key: string): StoredEntry | undefined {
    return this.db.get(key);
  }

  async apply(writes: ReadonlyMap<string, StoredEntry | null>, checkpoint?: StoreCheckpoint, known?: ReadonlyMap<string, StoredEntry | undefined>): Promise<void> {
    if (writes.size === 0 && checkpoint === undefined) return;
    await this.root.transaction(() => {
      for (const [key, entry] of writes) {
        // The index entries to remove are the previous entry's: read it unless the caller just did.
        const previous = known?.has(key) ? known.get(key) : this.db.get(key);
        if (previous?.exp !== undefined) void this.byExpiry.remove([previous.exp, key]);
        if (previous?.due !== undefined) void this.byDue.remove([previous.due, key]);
        if (entry === null) {
          void this.db.remove(key);
          continue;
        }
        void this.db.put(key, entry);
        if (entry.exp !== undefined) void this.byExpiry.put([entry.exp, key], 1);
        if (entry.due !== undefined) void this.byDue.put([entry.due, key], 1);
      }
      if (checkpoint !== undefined) void this.meta.put('checkpoint', checkpoint);
    });
  }

  *entries(): Iterable<[string, StoredEntry]> {
    for (const { key, value } of this.db.getRange()) yield [key, value];
  }

  *range(from?: string, to?: string): Iterable<[string, StoredEntry]> {
    for (const { key, value } of this.db.getRange({ ...(from !== undefined ? { start: from } : {}), ...(to !== undefined ? { end: to } : {}) })) yield [key, value];
  }

  expiredKeys(now: number, limit: number): string[] {
    const out: string[] = [];
    for (const [time, key] of this.byExpiry.getKeys()) {
      if (time > now || out.length >= limit) break;
      out.push(key);
    }
    return out;
  }

  dueEntries(now: number, limit: number): Array<[string, StoredEntry]> {
    const out: Array<[string, StoredEntry]> = [];
    for (const [time, key] of this.byDue.getKeys()) {
      if (time > now || out.length >= limit) break;
      const entry = this.db.get(key);
      if (entry) out.push([key, entry]);
    }
    return out;
  }

  size(): number {
    return this.db.getCount();
  }

  checkpoint(): StoreCheckpoint | undefined {
    return this.meta.get('checkpoint');
  }

  async clear(): Promise<void> {
    // The checkpoint goes first: a crash half way leaves no checkpoint, so the next open rebuilds.
    await this.meta.clearAsync();
    await this.db.clearAsync();
    await this.byExpiry.clearAsync();
    await this.byDue.clearAsync();
  }

  async close(): Promise<void> {
    await this.root.close();
    if (this.options.fresh) rmSync(this.path, { recursive: true, force: true });
  }
}
