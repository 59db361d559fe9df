/**
 * What a test can break in the simulator, in-process or over its control endpoint:
 * - down: connections are reset (`refuse`), or every call answers HTTP 503 (`http_503`, a proxy
 *   in front of a stopped Odoo);
 * - slow: every object call (or only those that write) holds its transaction open this long
 *   before committing (a long transaction: its rows carry the start time but appear only at the end);
 * - fail next N calls: with a serialization failure (fault 1), HTTP 503, a connection reset, or a
 *   plain fault 1;
 * - freeze the clock: every transaction until the thaw gets the same second (microseconds still
 *   increase), so a test can make a record change twice "within one second" at its own pace;
 * - reject a field value: create/write/load with `field = value` on `model` fails the way a
 *   Python constraint does (ValidationError, fault 2), with the given message, or (`transient`)
 *   with a serialization failure, as a row locked by another transaction does;
 * - cost like a real Odoo: each object call takes `callMs`, plus `rowMs` per record it creates or
 *   writes (real Odoo 17: ~2 s for a `load` of 200 one-line bills, ~10 ms a record) and
 *   `readRowMs` per record it reads, on at most `workers` calls at once (Odoo's worker processes;
 *   the others queue).
 */
export interface CostModel {
  readonly callMs: number;
  readonly rowMs: number;
  readonly readRowMs?: number;
  readonly workers: number;
}

export type DownMode = 'refuse' | 'http_503';
export type SlowScope = 'all' | 'writes';
export type InjectedFailure = 'serialization' | 'http_503' | 'reset' | 'application';

export interface ValueRejection {
  readonly model: string;
  readonly field: string;
  readonly value: string | number | boolean;
  readonly message?: string;
  /**
   * Instead of a constraint: the record is locked by another transaction for as long as the rule
   * stands (a user editing it, a long job), so every call that writes the value fails with a
   * serialization failure (fault 1) — a transient fault, retried, never a rejection.
   */
  readonly transient?: boolean;
}

export interface SwitchState {
  readonly down: DownMode | false;
  readonly slowMs: number;
  readonly slowScope: SlowScope;
  readonly failNext: { readonly count: number; readonly kind: InjectedFailure };
  readonly rejections: readonly ValueRejection[];
  readonly clockFrozen: boolean;
  readonly cost: CostModel | false;
}

export class FailureSwitches {
  private state: { down: DownMode | false; slowMs: number; slowScope: SlowScope; failNext: { count: number; kind: InjectedFailure }; rejections: ValueRejection[]; clockFrozen: boolean; cost: CostModel | false } = {
    down: false, slowMs: 0, slowScope: 'all', failNext: { count: 0, kind: 'serialization' }, rejections: [], clockFrozen: false, cost: false,
  };

  /** Real Odoo's cost per call and per record, on a number of workers (false: answer at once). */
  setCost(cost: CostModel | false): void {
    this.state.cost = cost ? { callMs: Math.max(0, cost.callMs), rowMs: Math.max(0, cost.rowMs), readRowMs: Math.max(0, cost.readRowMs ?? cost.rowMs / 20), workers: Math.max(1, Math.floor(cost.workers)) } : false;
  }

  get cost(): CostModel | false {
    return this.state.cost;
  }

  setDown(down: boolean, mode: DownMode = 'refuse'): void {
    this.state.down = down ? mode : false;
  }

  setSlow(ms: number, scope: SlowScope = 'all'): void {
    this.state.slowMs = Math.max(0, ms);
    this.state.slowScope = scope;
  }

  failNext(count: number, kind: InjectedFailure = 'serialization'): void {
    this.state.failNext = { count: Math.max(0, count), kind };
  }

  rejectValue(rejection: ValueRejection): void {
    this.state.rejections.push(rejection);
  }

  freezeClock(frozen: boolean): void {
    this.state.clockFrozen = frozen;
  }

  get clockFrozen(): boolean {
    return this.state.clockFrozen;
  }

  clearRejections(): void {
    this.state.rejections = [];
  }

  reset(): void {
    this.state = { down: false, slowMs: 0, slowScope: 'all', failNext: { count: 0, kind: 'serialization' }, rejections: [], clockFrozen: false, cost: false };
  }

  get down(): DownMode | false {
    return this.state.down;
  }

  /** How long a call holds its transaction open, given whether it wrote anything. */
  holdMs(wrote: boolean): number {
    return this.state.slowScope === 'writes' && !wrote ? 0 : this.state.slowMs;
  }

  /** Consumes one injected failure, if any is armed. */
  takeFailure(): InjectedFailure | undefined {
    if (this.state.failNext.count <= 0) return undefined;
    this.state.failNext.count--;
    return this.state.failNext.kind;
  }

  rejectionFor(model: string, field: string, value: unknown): ValueRejection | undefined {
    return this.state.rejections.find((rule) => rule.model === model && rule.field === field && rule.value === value);
  }

  snapshot(): SwitchState {
    return structuredClone(this.state);
  }
}
