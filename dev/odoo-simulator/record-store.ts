import { serializationFailure } from './odoo-fault.ts';
import { MODELS, type StoredValue } from './model-definitions.ts';

/**
 * The simulator's database: one table per model, and transactions the way Odoo uses PostgreSQL.
 * Every execute_kw is one transaction; its records are stamped with the transaction's start time
 * (`cr.now()`, microseconds), and what it writes becomes visible to others only when it commits —
 * which a `slow` switch can delay, to play the long transaction that commits rows older than a
 * cursor that has already moved on. Ids come from sequences, which (as in PostgreSQL) are not
 * rolled back. Two transactions that write the same row, or create the same external id: the later
 * commit fails with a serialization failure.
 */
export type Row = { id: number } & Record<string, StoredValue>;

type Overlay = Map<string, Map<number, Row | null>>;

/** A stored value as an index key: scalars only (lists are not indexed). */
export type IndexKey = string | number | boolean | null;

/**
 * An equality index of one field over the committed rows of one table (PostgreSQL's btree on a
 * column): value → ids. Built on first use, kept up to date by every commit.
 */
class FieldIndex {
  private readonly byValue = new Map<IndexKey, Set<number>>();

  constructor(readonly field: string, rows: Iterable<Row>) {
    for (const row of rows) this.add(row);
  }

  ids(value: IndexKey): ReadonlySet<number> | undefined {
    return this.byValue.get(value);
  }

  add(row: Row): void {
    const key = keyOf(row[this.field]);
    if (key === undefined) return;
    let ids = this.byValue.get(key);
    if (!ids) {
      ids = new Set();
      this.byValue.set(key, ids);
    }
    ids.add(row.id);
  }

  remove(row: Row): void {
    const key = keyOf(row[this.field]);
    if (key === undefined) return;
    const ids = this.byValue.get(key);
    if (!ids) return;
    ids.delete(row.id);
    if (ids.size === 0) this.byValue.delete(key);
  }
}

function keyOf(value: StoredValue | undefined): IndexKey | undefined {
  if (value === undefined) return null;
  return Array.isArray(value) ? undefined : (value as IndexKey);
}

export class RecordStore {
  private readonly tables = new Map<string, Map<number, Row>>();
  private readonly versions = new Map<string, number>();
  private readonly nextIds = new Map<string, number>();
  private readonly counters = new Map<string, number>();
  private readonly indexes = new Map<string, Map<string, FieldIndex>>();
  private lastMicros = 0;

  /** `clockFrozen`: time stands still (one microsecond per transaction) until it is false again. */
  constructor(private readonly clockFrozen: () => boolean = () => false) {
    for (const model of MODELS) this.tables.set(model.name, new Map());
  }

  /** Epoch microseconds, strictly increasing: PostgreSQL's now() resolution. */
  nowMicros(): number {
    const candidate = this.clockFrozen() && this.lastMicros > 0 ? this.lastMicros : Math.floor((performance.timeOrigin + performance.now()) * 1000);
    this.lastMicros = Math.max(this.lastMicros + 1, candidate);
    return this.lastMicros;
  }

  begin(uid: number): Transaction {
    return new Transaction(this, uid, this.nowMicros());
  }

  table(model: string): Map<number, Row> {
    let table = this.tables.get(model);
    if (!table) {
      table = new Map();
      this.tables.set(model, table);
    }
    return table;
  }

  nextId(model: string): number {
    const id = this.nextIds.get(model) ?? 1;
    this.nextIds.set(model, id + 1);
    return id;
  }

  /** Skips ids (seed data starts partners at 7, as a fresh Odoo with admin and a company would). */
  reserveIdsBelow(model: string, next: number): void {
    if ((this.nextIds.get(model) ?? 1) < next) this.nextIds.set(model, next);
  }

  /** The next number of a named sequence (S00042, INV/2026/00007). */
  nextNumber(sequence: string): number {
    const value = (this.counters.get(sequence) ?? 0) + 1;
    this.counters.set(sequence, value);
    return value;
  }

  /** The committed ids whose `field` equals `value`, from the field's index (built on first use). */
  idsWhere(model: string, field: string, value: IndexKey): ReadonlySet<number> {
    let byField = this.indexes.get(model);
    if (!byField) {
      byField = new Map();
      this.indexes.set(model, byField);
    }
    let index = byField.get(field);
    if (!index) {
      index = new FieldIndex(field, this.table(model).values());
      byField.set(field, index);
    }
    return index.ids(value) ?? EMPTY;
  }

  version(model: string, id: number): number {
    return this.versions.get(`${model}:${id}`) ?? 0;
  }

  /** Applies a transaction's writes, or fails it when a row it wrote changed since it read it. */
  apply(overlay: Overlay, baseVersions: ReadonlyMap<string, number>): void {
    for (const [key, base] of baseVersions) {
      if ((this.versions.get(key) ?? 0) !== base) throw serializationFailure();
    }
    for (const [model, rows] of overlay) {
      const table = this.table(model);
      const indexes = [...(this.indexes.get(model)?.values() ?? [])];
      for (const [id, row] of rows) {
        const before = table.get(id);
        if (before) for (const index of indexes) index.remove(before);
        if (row === null) table.delete(id);
        else table.set(id, row);
        if (row) for (const index of indexes) index.add(row);
        const key = `${model}:${id}`;
        this.versions.set(key, (this.versions.get(key) ?? 0) + 1);
      }
    }
  }

  /** Every table emptied and sequences reset, for a fresh seed. */
  clear(): void {
    for (const table of this.tables.values()) table.clear();
    this.indexes.clear();
    this.versions.clear();
    this.nextIds.clear();
    this.counters.clear();
  }
}

const EMPTY: ReadonlySet<number> = new Set();

interface JournalEntry {
  readonly model: string;
  readonly id: number;
  /** The staged row before this write (undefined: none was staged). */
  readonly previous: Row | null | undefined;
  readonly addedBase: boolean;
}

export class Transaction {
  private readonly overlay: Overlay = new Map();
  private readonly baseVersions = new Map<string, number>();
  private readonly journal: JournalEntry[] = [];
  private readonly stagedIndexes = new Map<string, Map<string, FieldIndex>>();

  constructor(readonly store: RecordStore, readonly uid: number, readonly now: number) {}

  get(model: string, id: number): Row | undefined {
    const staged = this.overlay.get(model)?.get(id);
    if (staged !== undefined) return staged ?? undefined;
    return this.store.table(model).get(id);
  }

  /** All rows visible to this transaction: committed ones plus its own writes. */
  *rows(model: string): Iterable<Row> {
    const staged = this.overlay.get(model);
    for (const [id, row] of this.store.table(model)) {
      if (staged?.has(id)) continue;
      yield row;
    }
    if (staged) for (const row of staged.values()) if (row) yield row;
  }

  /**
   * The rows visible to this transaction whose `field` may equal one of `values`: the committed
   * ones the index names (unless this transaction changed them) plus every row this transaction
   * wrote in the model. A superset: callers filter with the full condition.
   */
  *candidates(model: string, field: string, values: readonly IndexKey[]): Iterable<Row> {
    const staged = this.overlay.get(model);
    const table = this.store.table(model);
    const seen = new Set<number>();
    for (const value of values) {
      for (const id of this.store.idsWhere(model, field, value)) {
        if (seen.has(id) || staged?.has(id)) continue;
        seen.add(id);
        const row = table.get(id);
        if (row) yield row;
      }
    }
    if (!staged) return;
    const index = this.stagedIndex(model, field, staged);
    for (const value of values) {
      for (const id of index.ids(value) ?? EMPTY) {
        const row = staged.get(id);
        if (row) yield row;
      }
    }
  }

  /** The same equality index over this transaction's own rows of a model (built on first use). */
  private stagedIndex(model: string, field: string, staged: Map<number, Row | null>): FieldIndex {
    let byField = this.stagedIndexes.get(model);
    if (!byField) {
      byField = new Map();
      this.stagedIndexes.set(model, byField);
    }
    let index = byField.get(field);
    if (!index) {
      index = new FieldIndex(field, [...staged.values()].filter((row): row is Row => row !== null));
      byField.set(field, index);
    }
    return index;
  }

  insert(model: string, row: Row): void {
    this.stage(model, row.id, row);
  }

  update(model: string, id: number, changes: Readonly<Record<string, StoredValue>>): void {
    const current = this.get(model, id);
    if (!current) return;
    this.stage(model, id, { ...current, ...changes, id });
  }

  remove(model: string, id: number): void {
    this.stage(model, id, null);
  }

  get touched(): number {
    let count = 0;
    for (const rows of this.overlay.values()) count += rows.size;
    return count;
  }

  /**
   * A point to roll back to (load() undoes every row when one fails, as its savepoint does): a
   * position in the undo journal, so taking one costs nothing however much the transaction wrote.
   */
  savepoint(): number {
    return this.journal.length;
  }

  rollbackTo(point: number): void {
    while (this.journal.length > point) {
      const entry = this.journal.pop() as JournalEntry;
      const rows = this.overlay.get(entry.model) as Map<number, Row | null>;
      if (entry.previous === undefined) rows.delete(entry.id);
      else rows.set(entry.id, entry.previous);
      if (entry.addedBase) this.baseVersions.delete(`${entry.model}:${entry.id}`);
    }
    this.stagedIndexes.clear();
    this.revision++;
  }

  commit(): void {
    this.checkExternalIdsStillFree();
    this.store.apply(this.overlay, this.baseVersions);
  }

  /**
   * ir.model.data is unique on (module, name). Odoo inserts external ids with ON CONFLICT DO
   * UPDATE under REPEATABLE READ, so when another transaction committed the same external id
   * meanwhile (two loads of one record racing), this one fails with a serialization failure — and
   * a retry then finds the record instead of creating a second one.
   */
  private checkExternalIdsStillFree(): void {
    const staged = this.overlay.get('ir.model.data');
    if (!staged) return;
    const committed = this.store.table('ir.model.data');
    for (const row of staged.values()) {
      if (row === null || committed.has(row.id)) continue;
      for (const id of this.store.idsWhere('ir.model.data', 'name', row.name as IndexKey)) {
        if (id !== row.id && committed.get(id)?.module === row.module) throw serializationFailure();
      }
    }
  }

  /** Bumped by every write of this transaction, so derived indexes know when to rebuild. */
  revision = 0;

  private stage(model: string, id: number, row: Row | null): void {
    this.revision++;
    const key = `${model}:${id}`;
    const addedBase = !this.baseVersions.has(key) && this.store.table(model).has(id);
    if (addedBase) this.baseVersions.set(key, this.store.version(model, id));
    let rows = this.overlay.get(model);
    if (!rows) {
      rows = new Map();
      this.overlay.set(model, rows);
    }
    const previous = rows.get(id);
    this.journal.push({ model, id, previous, addedBase });
    rows.set(id, row);
    for (const index of this.stagedIndexes.get(model)?.values() ?? []) {
      if (previous) index.remove(previous);
      if (row) index.add(row);
    }
  }
}
