/**
 * Where a store's committed state lives. The task keeps uncommitted writes in overlays and only
 * hands a backend what Kafka has committed, so a backend never holds aborted state.
 */
export interface StoredEntry {
  readonly v: unknown;
  /** Epoch ms after which the entry is gone; absent = no expiry. */
  readonly exp?: number;
}

export interface StoreBackend {
  get(key: string): StoredEntry | undefined;
  /** Applies committed writes (null = delete) as one batch. */
  apply(writes: ReadonlyMap<string, StoredEntry | null>): Promise<void>;
  entries(): Iterable<[string, StoredEntry]>;
  size(): number;
  /** Drops every entry (before a restore from the changelog). */
  clear(): Promise<void>;
  close(): Promise<void>;
}

export function isExpired(entry: StoredEntry, now: number): boolean {
  return entry.exp !== undefined && entry.exp <= now;
}
