import { TimeIndex, type StoreBackend, type StoreCheckpoint, type StoredEntry } from './store-backend.ts';

/** Committed state in a Map: fast, bounded by the heap; for small stores and tests. Nothing survives the process. */
export class MemoryStoreBackend implements StoreBackend {
  private readonly map = new Map<string, StoredEntry>();
  private readonly byExpiry = new TimeIndex();
  private readonly byDue = new TimeIndex();

  get(key: string): StoredEntry | undefined {
    return this.map.get(key);
  }

  async apply(writes: ReadonlyMap<string, StoredEntry | null>): Promise<void> {
    for (const [key, entry] of writes) {
      const previous = this.map.get(key);
      if (previous?.exp !== undefined) this.byExpiry.remove(previous.exp, key);
      if (previous?.due !== undefined) this.byDue.remove(previous.due, key);
      if (entry === null) {
        this.map.delete(key);
        continue;
      }
      this.map.set(key, entry);
      if (entry.exp !== undefined) this.byExpiry.add(entry.exp, key);
      if (entry.due !== undefined) this.byDue.add(entry.due, key);
    }
  }

  entries(): Iterable<[string, StoredEntry]> {
    return this.map.entries();
  }

  /** Sorts the keys on each call: fine for the small stores this backend is for. */
  *range(from?: string, to?: string): Iterable<[string, StoredEntry]> {
    const keys = [...this.map.keys()].filter((key) => (from === undefined || key >= from) && (to === undefined || key < to)).sort();
    for (const key of keys) {
      const entry = this.map.get(key);
      if (entry) yield [key, entry];
    }
  }

  expiredKeys(now: number, limit: number): string[] {
    return this.byExpiry.due(now, limit);
  }

  dueEntries(now: number, limit: number): Array<[string, StoredEntry]> {
    return this.byDue.due(now, limit).map((key) => [key, this.map.get(key) as StoredEntry]);
  }

  size(): number {
    return this.map.size;
  }

  checkpoint(): StoreCheckpoint | undefined {
    return undefined;
  }

  async clear(): Promise<void> {
    this.map.clear();
    this.byExpiry.clear();
    this.byDue.clear();
  }

  async close(): Promise<void> {
    await this.clear();
  }
}
