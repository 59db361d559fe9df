import type { KeyValueStore } from '../component/component.ts';
import { isExpired, type StoreBackend, type StoredEntry } from './store-backend.ts';

export interface ChangelogWrite {
  readonly key: string;
  /** JSON of the StoredEntry, or null for a delete (a tombstone in the compacted changelog). */
  readonly value: Buffer | null;
}

/**
 * A processor's view of one store on one partition. Writes land in a per-record overlay, which
 * joins the transaction's overlay when the record succeeds and is dropped when it fails; the
 * transaction's overlay becomes changelog records inside the Kafka transaction and reaches the
 * backend only after the commit. So aborted work never touches committed state.
 */
export class TransactionalStore<V = unknown> implements KeyValueStore<V> {
  private recordWrites = new Map<string, StoredEntry | null>();
  private transactionWrites = new Map<string, StoredEntry | null>();

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

  put(key: string, value: V, options: { ttlMs?: number } = {}): void {
    const ttl = options.ttlMs ?? this.defaultTtlMs;
    this.recordWrites.set(key, ttl === undefined ? { v: value } : { v: value, exp: this.now() + ttl });
  }

  delete(key: string): void {
    this.recordWrites.set(key, null);
  }

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

  changelogWrites(): ChangelogWrite[] {
    return [...this.transactionWrites].map(([key, entry]) => ({ key, value: entry === null ? null : Buffer.from(JSON.stringify(entry)) }));
  }

  /** After the Kafka transaction committed: make its writes the committed state. */
  async commitTransaction(): Promise<void> {
    const writes = this.transactionWrites;
    this.transactionWrites = new Map();
    await this.backend.apply(writes);
  }

  abortTransaction(): void {
    this.recordWrites.clear();
    this.transactionWrites.clear();
  }

  /** Queues deletes for expired committed entries (at most `limit`), so the changelog forgets them too. */
  expire(limit: number): number {
    const now = this.now();
    let expired = 0;
    for (const [key, entry] of this.backend.entries()) {
      if (expired >= limit) break;
      if (isExpired(entry, now) && !this.transactionWrites.has(key)) {
        this.transactionWrites.set(key, null);
        expired++;
      }
    }
    return expired;
  }

  /** Applies one changelog record during a restore. */
  restoreBuffer(): RestoreBuffer {
    return new RestoreBuffer(this.backend, this.now);
  }

  async close(): Promise<void> {
    this.abortTransaction();
    await this.backend.close();
  }

  private lookup(key: string): StoredEntry | null | undefined {
    if (this.recordWrites.has(key)) return this.recordWrites.get(key);
    if (this.transactionWrites.has(key)) return this.transactionWrites.get(key);
    return this.backend.get(key);
  }
}

/** Batches restored changelog records into the backend. */
export class RestoreBuffer {
  private readonly pending = new Map<string, StoredEntry | null>();
  restored = 0;

  constructor(private readonly backend: StoreBackend, private readonly now: () => number) {}

  async add(key: string, value: Buffer | null): Promise<void> {
    if (value === null) {
      this.pending.set(key, null);
    } else {
      const entry = JSON.parse(value.toString('utf8')) as StoredEntry;
      this.pending.set(key, isExpired(entry, this.now()) ? null : entry);
    }
    this.restored++;
    if (this.pending.size >= 10_000) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = new Map(this.pending);
    this.pending.clear();
    await this.backend.apply(batch);
  }
}
