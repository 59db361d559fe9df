/**
 * Where a store's committed state lives. The task keeps uncommitted writes in overlays and only
 * hands a backend what Kafka has committed, so a backend never holds aborted state.
 *
 * Every backend keeps two time indexes beside the entries, updated in the same batch as them:
 * entries by expiry (`exp`) and entries by deadline (`due`). Both are ordered, so TTL expiry and
 * timers read only what is due — the cost of a sweep or a timer tick does not grow with the store.
 */
export interface StoredEntry {
  readonly v: unknown;
  /** Epoch ms after which the entry is gone; absent = no expiry. */
  readonly exp?: number;
  /** Epoch ms at which a timer wants to see the entry again; absent = not scheduled. */
  readonly due?: number;
}

/** How far the local state has applied its changelog (see docs/architecture-state.md). */
export interface StoreCheckpoint {
  /** The next changelog offset to read: everything before it is in the local state. */
  readonly offset: string;
  /** Epoch ms when the local state was last known current with the changelog. */
  readonly at: number;
  /** Bumped when the on-disk layout changes; another value means the state is rebuilt. */
  readonly format: number;
}

export const STORE_FORMAT = 2;

export interface StoreBackend {
  get(key: string): StoredEntry | undefined;
  /**
   * Applies committed writes (null = delete) as one batch, with the checkpoint they reach when given.
   * `known`: the committed entries (undefined = none) of keys the caller read since the last apply,
   * so they need not be read again.
   */
  apply(writes: ReadonlyMap<string, StoredEntry | null>, checkpoint?: StoreCheckpoint, known?: ReadonlyMap<string, StoredEntry | undefined>): Promise<void>;
  entries(): Iterable<[string, StoredEntry]>;
  /** Entries with keys in [from, to) in key order (either bound may be left out). */
  range(from?: string, to?: string): Iterable<[string, StoredEntry]>;
  /** Keys of entries whose `exp` <= now, soonest first, at most `limit`. */
  expiredKeys(now: number, limit: number): string[];
  /** Entries whose `due` <= now, earliest first, at most `limit`. */
  dueEntries(now: number, limit: number): Array<[string, StoredEntry]>;
  size(): number;
  /** The last checkpoint applied, if the state has one (persistent backends only). */
  checkpoint(): StoreCheckpoint | undefined;
  /** Drops every entry and the checkpoint (before a full restore from the changelog). */
  clear(): Promise<void>;
  close(): Promise<void>;
}

export function isExpired(entry: StoredEntry, now: number): boolean {
  return entry.exp !== undefined && entry.exp <= now;
}

/**
 * An in-memory ordered index of (time, key) pairs: binary search to insert and remove, a prefix
 * read for what is due. Used by the memory backend (small stores and tests).
 */
export class TimeIndex {
  private readonly times: number[] = [];
  private readonly keys: string[] = [];

  get size(): number {
    return this.keys.length;
  }

  add(time: number, key: string): void {
    const at = this.position(time, key);
    this.times.splice(at, 0, time);
    this.keys.splice(at, 0, key);
  }

  remove(time: number, key: string): void {
    const at = this.position(time, key);
    if (this.times[at] === time && this.keys[at] === key) {
      this.times.splice(at, 1);
      this.keys.splice(at, 1);
    }
  }

  /** Keys with time <= now, in time order, at most limit. */
  due(now: number, limit: number): string[] {
    const out: string[] = [];
    for (let index = 0; index < this.keys.length && out.length < limit; index++) {
      if ((this.times[index] as number) > now) break;
      out.push(this.keys[index] as string);
    }
    return out;
  }

  clear(): void {
    this.times.length = 0;
    this.keys.length = 0;
  }

  private position(time: number, key: string): number {
    let low = 0;
    let high = this.keys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const t = this.times[middle] as number;
      const k = this.keys[middle] as string;
      if (t < time || (t === time && k < key)) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}
