import type { KeyValueStore, PutOptions } from '../component/component.ts';
import { isExpired, STORE_FORMAT, type StoreBackend, type StoreCheckpoint, type StoredEntry } from './store-backend.ts';

export interface ChangelogWrite {
  readonly key: string;
  /** JSON of the StoredEntry, or null for a delete (a tombstone in the compacted changelog). */
  readonly value: Buffer | null;
}

type Overlay = Map<string, StoredEntry | null>;

/**
 * A processor's view of one store on one partition. Writes land in a per-record overlay, which
 * joins the transaction's overlay when the record succeeds and is dropped when it fails; the
 * transaction's overlay becomes changelog records inside the Kafka transaction and reaches the
 * backend only after the commit, with the changelog offset it reaches (the checkpoint). So aborted
 * work never touches committed state, and the local state always knows how far it is.
 */
export class TransactionalStore<V = unknown> implements KeyValueStore<V> {
  private recordWrites: Overlay = new Map();
  private transactionWrites: Overlay = new Map();
  /** Committed entries read during the open transaction (the backend changes only when it commits). */
  private committedReads = new Map<string, StoredEntry | undefined>();

  constructor(
    readonly name: string,
    readonly changelogTopic: string,
    private readonly backend: StoreBackend,
    private readonly defaultTtlMs: number | undefined,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const entry = this.lookup(key);
    if (!entry || isExpired(entry, this.now())) return undefined;
    return entry.v as V;
  }

  put(key: string, value: V, options: PutOptions = {}): void {
    const ttl = options.ttlMs ?? this.defaultTtlMs;
    this.recordWrites.set(key, {
      v: value,
      ...(ttl === undefined || ttl === Infinity ? {} : { exp: this.now() + ttl }),
      ...(options.dueAt === undefined ? {} : { due: options.dueAt }),
    });
  }

  delete(key: string): void {
    this.recordWrites.set(key, null);
  }

  /** Every live entry: a full scan. Timers use due(), lookups get() or range(). */
  *entries(): Iterable<[string, V]> {
    const now = this.now();
    const seen = new Set<string>();
    for (const layer of [this.recordWrites, this.transactionWrites]) {
      for (const [key, entry] of layer) {
        if (seen.has(key)) continue;
        seen.add(key);
        if (entry && !isExpired(entry, now)) yield [key, entry.v as V];
      }
    }
    for (const [key, entry] of this.backend.entries()) {
      if (!seen.has(key) && !isExpired(entry, now)) yield [key, entry.v as V];
    }
  }

  /** Live entries with keys in [from, to), in key order, uncommitted writes included. */
  *range(from?: string, to?: string): Iterable<[string, V]> {
    const now = this.now();
    const inRange = (key: string): boolean => (from === undefined || key >= from) && (to === undefined || key < to);
    const overlay = new Map<string, StoredEntry | null>();
    for (const layer of [this.transactionWrites, this.recordWrites]) {
      for (const [key, entry] of layer) if (inRange(key)) overlay.set(key, entry);
    }
    const pending = [...overlay.keys()].sort();
    let next = 0;
    const live = (entry: StoredEntry | null | undefined): entry is StoredEntry => !!entry && !isExpired(entry, now);
    for (const [key, entry] of this.backend.range(from, to)) {
      while (next < pending.length && (pending[next] as string) < key) {
        const overlayKey = pending[next++] as string;
        const written = overlay.get(overlayKey);
        if (live(written)) yield [overlayKey, written.v as V];
      }
      if (overlay.has(key)) continue;
      if (live(entry)) yield [key, entry.v as V];
    }
    while (next < pending.length) {
      const overlayKey = pending[next++] as string;
      const written = overlay.get(overlayKey);
      if (live(written)) yield [overlayKey, written.v as V];
    }
  }

  /**
   * Live entries whose `dueAt` has come, earliest first, at most `limit`: a timer touches only
   * these (an index read, not a scan). Put an entry again with a later dueAt (or none) once handled.
   */
  due(now: number, limit: number): Array<[string, V]> {
    const clock = this.now();
    const found: Array<[string, StoredEntry]> = [];
    const overlaid = new Set<string>();
    for (const layer of [this.recordWrites, this.transactionWrites]) {
      for (const [key, entry] of layer) {
        if (overlaid.has(key)) continue;
        overlaid.add(key);
        if (entry && entry.due !== undefined && entry.due <= now && !isExpired(entry, clock)) found.push([key, entry]);
      }
    }
    for (const [key, entry] of this.backend.dueEntries(now, limit + overlaid.size)) {
      if (!overlaid.has(key) && !isExpired(entry, clock)) found.push([key, entry]);
    }
    found.sort((a, b) => (a[1].due as number) - (b[1].due as number));
    return found.slice(0, limit).map(([key, entry]) => [key, entry.v as V]);
  }

  /** Committed entries, for metrics and tests. */
  committedSize(): number {
    return this.backend.size();
  }

  acceptRecord(): void {
    for (const [key, entry] of this.recordWrites) this.transactionWrites.set(key, entry);
    this.recordWrites.clear();
  }

  discardRecord(): void {
    this.recordWrites.clear();
  }

  hasPendingWrites(): boolean {
    return this.transactionWrites.size > 0;
  }

  pendingWriteCount(): number {
    return this.transactionWrites.size;
  }

  changelogWrites(): ChangelogWrite[] {
    return [...this.transactionWrites].map(([key, entry]) => ({ key, value: entry === null ? null : Buffer.from(JSON.stringify(entry)) }));
  }

  /**
   * After the Kafka transaction committed: its writes become the committed state, together with
   * `nextOffset`, the changelog offset after the last record this transaction wrote (the checkpoint).
   */
  async commitTransaction(nextOffset?: string): Promise<void> {
    if (this.transactionWrites.size === 0 && nextOffset === undefined) {
      this.committedReads.clear();
      return;
    }
    const writes = this.transactionWrites;
    const known = this.committedReads;
    this.transactionWrites = new Map();
    this.committedReads = new Map();
    await this.backend.apply(writes, nextOffset === undefined ? undefined : { offset: nextOffset, at: Date.now(), format: STORE_FORMAT }, known);
  }

  abortTransaction(): void {
    this.recordWrites.clear();
    this.transactionWrites.clear();
    this.committedReads.clear();
  }

  /**
   * Queues deletes for at most `limit` committed entries that have expired, read from the expiry
   * index (soonest first), so the changelog forgets them too. Returns how many it queued.
   */
  expire(limit: number): number {
    const now = this.now();
    let expired = 0;
    for (const key of this.backend.expiredKeys(now, limit + this.transactionWrites.size)) {
      if (expired >= limit) break;
      if (this.transactionWrites.has(key)) continue;
      this.transactionWrites.set(key, null);
      expired++;
    }
    return expired;
  }

  checkpoint(): StoreCheckpoint | undefined {
    return this.backend.checkpoint();
  }

  /** Drops the local state (its checkpoint is missing or stale): a full restore follows. */
  async wipe(): Promise<void> {
    this.committedReads.clear();
    await this.backend.clear();
  }

  /** Applies changelog records during a restore. */
  restoreBuffer(): RestoreBuffer {
    return new RestoreBuffer(this.backend, this.now);
  }

  /** A clean close: the local state is current with the changelog as of now. */
  async close(): Promise<void> {
    this.abortTransaction();
    const checkpoint = this.backend.checkpoint();
    if (checkpoint) await this.backend.apply(new Map(), { ...checkpoint, at: Date.now() }).catch(() => undefined);
    await this.backend.close();
  }

  private lookup(key: string): StoredEntry | null | undefined {
    if (this.recordWrites.has(key)) return this.recordWrites.get(key);
    if (this.transactionWrites.has(key)) return this.transactionWrites.get(key);
    const committed = this.backend.get(key);
    this.committedReads.set(key, committed);
    return committed;
  }
}

/** Batches restored changelog records into the backend, with the checkpoint they reach. */
export class RestoreBuffer {
  private readonly pending = new Map<string, StoredEntry | null>();
  private nextOffset: string | undefined;
  restored = 0;

  constructor(private readonly backend: StoreBackend, private readonly now: () => number) {}

  async add(key: string, value: Buffer | null, offset?: string): Promise<void> {
    if (value === null) {
      this.pending.set(key, null);
    } else {
      const entry = JSON.parse(value.toString('utf8')) as StoredEntry;
      this.pending.set(key, isExpired(entry, this.now()) ? null : entry);
    }
    this.restored++;
    if (offset !== undefined) this.nextOffset = (BigInt(offset) + 1n).toString();
    if (this.pending.size >= 10_000) await this.flush();
  }

  /** The restore has read up to (not including) `offset`; the next flush records it. */
  reached(offset: string): void {
    this.nextOffset = offset;
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0 && this.nextOffset === undefined) return;
    const batch = new Map(this.pending);
    this.pending.clear();
    const checkpoint = this.nextOffset === undefined ? undefined : { offset: this.nextOffset, at: Date.now(), format: STORE_FORMAT };
    await this.backend.apply(batch, checkpoint);
  }
}
