import type { StoreBackend, StoredEntry } from './store-backend.ts';

/** Committed state in a Map: fast, bounded by the heap; for small stores and tests. */
export class MemoryStoreBackend implements StoreBackend {
  private readonly map = new Map<string, StoredEntry>();

  get(key: string): StoredEntry | undefined {
    return this.map.get(key);
  }

  async apply(writes: ReadonlyMap<string, StoredEntry | null>): Promise<void> {
    for (const [key, entry] of writes) {
      if (entry === null) this.map.delete(key);
      else this.map.set(key, entry);
    }
  }

  entries(): Iterable<[string, StoredEntry]> {
    return this.map.entries();
  }

  size(): number {
    return this.map.size;
  }

  async clear(): Promise<void> {
    this.map.clear();
  }

  async close(): Promise<void> {
    this.map.clear();
  }
}
