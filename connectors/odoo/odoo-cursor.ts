import { LifelineError } from '../../src/errors.ts';

/**
 * The odoo_source position, committed in Kafka with the records it produced.
 *
 * Odoo stamps `write_date` with the *transaction start* and sends it truncated to the second, so a
 * cursor cannot be a single timestamp: a long transaction commits rows older than a cursor that has
 * moved on, and several versions of one record can share a second. Each polling pass therefore
 * starts `overlap` before the high-water mark and pages through `write_date >= <second>` with an
 * offset inside that second; what was emitted already is recognised by (id, write_date, content
 * hash) and dropped, and a second change within the same second differs in its hash. A pass that
 * misses a row (a row moved while paging) sees it in the next pass, which starts before it again.
 */
export interface OdooCursor {
  readonly version: 1;
  /** The latest write_date (truncated, UTC) of any row emitted; null before the first. */
  readonly highWater: string | null;
  /** The pass under way: rows with write_date >= `after`, skipping the first `skip` of that second. */
  readonly pass: { readonly after: string; readonly skip: number } | null;
  /** Rows emitted within the overlap window: write_date → { id → content hash }. */
  readonly seen: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Ids emitted and not since tombstoned, as inclusive ranges (for reconciliation); absent when it is off. */
  readonly known?: ReadonlyArray<readonly [number, number]>;
  /** Epoch ms of the last reconciliation. */
  readonly reconciledAt?: number;
}

export const EMPTY_CURSOR: OdooCursor = Object.freeze({ version: 1, highWater: null, pass: null, seen: {} });

/** The cursor the host stored, checked; a shape this code does not know fails loudly rather than re-reading everything. */
export function parseCursor(stored: unknown): OdooCursor {
  if (stored === undefined || stored === null) return EMPTY_CURSOR;
  const candidate = stored as Partial<OdooCursor>;
  if (candidate.version !== 1 || typeof candidate.seen !== 'object' || candidate.seen === null) {
    throw new LifelineError('LL_CONFIG_INVALID', `the stored odoo_source cursor has an unknown shape (version ${String(candidate.version)}); reset it rather than guess`);
  }
  return structuredClone(candidate as OdooCursor);
}

/**
 * A mutable working copy of a cursor: the source changes it while it reads a page and hands out
 * frozen snapshots with each batch (the host keeps the batch's cursor object until it commits).
 */
export class CursorState {
  highWater: string | null;
  pass: { after: string; skip: number } | null;
  reconciledAt: number | undefined;
  private readonly seenBySecond = new Map<string, Map<number, string>>();
  private readonly secondById = new Map<number, string>();
  private readonly known: KnownIds | undefined;

  constructor(cursor: OdooCursor, trackKnownIds: boolean) {
    this.highWater = cursor.highWater;
    this.pass = cursor.pass ? { ...cursor.pass } : null;
    this.reconciledAt = cursor.reconciledAt;
    for (const [second, ids] of Object.entries(cursor.seen)) {
      for (const [id, hash] of Object.entries(ids)) this.remember(Number(id), second, hash);
    }
    this.known = trackKnownIds ? new KnownIds(cursor.known ?? []) : undefined;
  }

  /** Whether this exact version of the row was emitted already. */
  alreadyEmitted(id: number, writeDate: string, hash: string): boolean {
    return this.seenBySecond.get(writeDate)?.get(id) === hash;
  }

  /** Records an emitted version; it replaces what was remembered for the id. */
  emitted(id: number, writeDate: string, hash: string): void {
    this.remember(id, writeDate, hash);
    if (this.highWater === null || writeDate > this.highWater) this.highWater = writeDate;
    this.known?.add(id);
  }

  /** A tombstone went out: forget the id. */
  removed(id: number): void {
    const second = this.secondById.get(id);
    if (second !== undefined) this.seenBySecond.get(second)?.delete(id);
    this.secondById.delete(id);
    this.known?.delete(id);
  }

  knownIds(): number[] {
    return this.known?.list() ?? [];
  }

  get remembered(): number {
    return this.secondById.size;
  }

  /**
   * Forgets versions older than `threshold` (they can no longer be read again: every query starts
   * at or after it), and the oldest beyond `maxEntries`, which risks a duplicate, never a miss.
   */
  prune(threshold: string, maxEntries: number): number {
    let dropped = 0;
    const seconds = [...this.seenBySecond.keys()].sort();
    for (const second of seconds) {
      const ids = this.seenBySecond.get(second) as Map<number, string>;
      if (second >= threshold && this.secondById.size <= maxEntries) break;
      for (const id of ids.keys()) this.secondById.delete(id);
      this.seenBySecond.delete(second);
      if (second >= threshold) dropped += ids.size;
    }
    return dropped;
  }

  snapshot(): OdooCursor {
    const seen: Record<string, Record<string, string>> = {};
    for (const [second, ids] of this.seenBySecond) {
      if (ids.size === 0) continue;
      seen[second] = Object.fromEntries([...ids].map(([id, hash]) => [String(id), hash]));
    }
    return Object.freeze({
      version: 1 as const,
      highWater: this.highWater,
      pass: this.pass ? { ...this.pass } : null,
      seen,
      ...(this.known ? { known: this.known.ranges() } : {}),
      ...(this.reconciledAt !== undefined ? { reconciledAt: this.reconciledAt } : {}),
    });
  }

  private remember(id: number, second: string, hash: string): void {
    const previous = this.secondById.get(id);
    if (previous !== undefined && previous !== second) this.seenBySecond.get(previous)?.delete(id);
    let ids = this.seenBySecond.get(second);
    if (!ids) {
      ids = new Map();
      this.seenBySecond.set(second, ids);
    }
    ids.set(id, hash);
    this.secondById.set(id, second);
  }
}

/** A set of ids kept as sorted inclusive ranges: Odoo ids are dense, so a million ids are a few ranges. */
export class KnownIds {
  private readonly ids: Set<number>;

  constructor(ranges: ReadonlyArray<readonly [number, number]>) {
    this.ids = new Set();
    for (const [from, to] of ranges) for (let id = from; id <= to; id++) this.ids.add(id);
  }

  add(id: number): void {
    this.ids.add(id);
  }

  delete(id: number): void {
    this.ids.delete(id);
  }

  list(): number[] {
    return [...this.ids].sort((a, b) => a - b);
  }

  ranges(): Array<[number, number]> {
    const ranges: Array<[number, number]> = [];
    for (const id of this.list()) {
      const last = ranges[ranges.length - 1];
      if (last && last[1] === id - 1) last[1] = id;
      else ranges.push([id, id]);
    }
    return ranges;
  }
}
