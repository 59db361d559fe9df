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

export class RecordStore {
  private readonly tables = new Map<string, Map<number, Row>>();
  private readonly versions = new Map<string, number>();
  private readonly nextIds = new Map<string, number>();
  private readonly counters = new Map<string, number>();
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
      for (const [id, row] of rows) {
        if (row === null) table.delete(id);
        else table.set(id, row);
        const key = `${model}:${id}`;
        this.versions.set(key, (this.versions.get(key) ?? 0) + 1);
      }
    }
  }

  /** Every table emptied and sequences reset, for a fresh seed. */
  clear(): void {
    for (const table of this.tables.values()) table.clear();
    this.versions.clear();
    this.nextIds.clear();
    this.counters.clear();
  }
}

export class Transaction {
  private readonly overlay: Overlay = new Map();
  private readonly baseVersions = new Map<string, number>();

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

  /** A point to roll back to (load() undoes every row when one fails, as its savepoint does). */
  savepoint(): { overlay: Overlay; baseVersions: Map<string, number> } {
    const overlay: Overlay = new Map();
    for (const [model, rows] of this.overlay) overlay.set(model, new Map(rows));
    return { overlay, baseVersions: new Map(this.baseVersions) };
  }

  rollbackTo(point: { overlay: Overlay; baseVersions: Map<string, number> }): void {
    this.overlay.clear();
    for (const [model, rows] of point.overlay) this.overlay.set(model, new Map(rows));
    this.baseVersions.clear();
    for (const [key, version] of point.baseVersions) this.baseVersions.set(key, version);
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
    const added = [...staged.values()].filter((row): row is Row => row !== null && !committed.has(row.id));
    if (added.length === 0) return;
    const taken = new Set([...committed.values()].map((row) => `${String(row.module)}.${String(row.name)}`));
    if (added.some((row) => taken.has(`${String(row.module)}.${String(row.name)}`))) throw serializationFailure();
  }

  /** Bumped by every write of this transaction, so derived indexes know when to rebuild. */
  revision = 0;

  private stage(model: string, id: number, row: Row | null): void {
    this.revision++;
    const key = `${model}:${id}`;
    if (!this.baseVersions.has(key) && this.store.table(model).has(id)) this.baseVersions.set(key, this.store.version(model, id));
    let rows = this.overlay.get(model);
    if (!rows) {
      rows = new Map();
      this.overlay.set(model, rows);
    }
    rows.set(id, row);
  }
}
