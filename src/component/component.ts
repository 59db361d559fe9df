import type { Static, TObject } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/**
 * The component API. A component is one file exporting a definition: its type name, a config
 * schema (TypeBox = JSON Schema with descriptions and defaults; it validates topology.yaml and
 * generates docs/components.md), the stores it needs, and a factory. Processors only read and
 * write topics through this API; they never import kafkajs or a connector.
 */

export type ComponentKind = 'processor' | 'source' | 'sink';

/** Headers travel as strings; binary headers are not used by Lifeline. */
export type RecordHeaders = Record<string, string>;

export interface InputRecord<V = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: string | null;
  /**
   * The decoded Avro value (null for a tombstone). Read-only, deep down: forwarding this very object
   * passes the record's original bytes on when the output has the same schema; build a new value to change it.
   */
  readonly value: V;
  readonly headers: Readonly<RecordHeaders>;
  /**
   * Set when the record came back through one of the processor's repartition topics: the name of
   * that repartition. `topic` is then still the topic the record first arrived on.
   */
  readonly via?: string;
  /** The value's bytes as they arrived (for dead letters and holding records back). */
  readonly rawValue: Buffer | null;
}

export interface OutputRecord<V = unknown> {
  readonly key: string | null;
  /** Encoded with the output topic's registered schema; null produces a tombstone. */
  readonly value: V;
  readonly headers?: RecordHeaders;
  /**
   * Defaults to the partition Kafka's default partitioner (murmur2) gives the key, so key → partition
   * holds for every consumer; the input's partition when the processor declares preservesPartitioning
   * (or the key is null and the output has as many partitions as the input).
   */
  readonly partition?: number;
}

export interface PutOptions {
  /** Overrides the store's default time to live for this entry; Infinity keeps it until deleted. */
  readonly ttlMs?: number;
  /**
   * Schedules the entry for a timer: `due(now)` returns it once now >= dueAt (epoch ms). Putting the
   * entry again without dueAt unschedules it.
   */
  readonly dueAt?: number;
}

/**
 * A key-value store scoped to one processor, one store name and one partition. Expiry (TTL) and
 * deadlines (`dueAt`) are indexed by time, so expiring entries and finding what a timer must handle
 * costs what is due, not what is stored.
 */
export interface KeyValueStore<V = unknown> {
  get(key: string): V | undefined;
  put(key: string, value: V, options?: PutOptions): void;
  delete(key: string): void;
  /** Live entries whose dueAt <= now, earliest first, at most `limit` (an index read). */
  due(now: number, limit: number): Array<[string, V]>;
  /** Live entries with keys in [from, to), in key order (either bound may be left out). */
  range(from?: string, to?: string): Iterable<[string, V]>;
  /** Every live (unexpired) entry, including writes not yet committed by this task: a full scan. */
  entries(): Iterable<[string, V]>;
}

/** A read-only view of a reference table (a compacted topic materialised on every instance). */
export interface ReferenceTableView<V = unknown> {
  get(key: string): V | undefined;
  readonly size: number;
}

/** A reference table a component reads: the latest value per key of a compacted topic. */
export interface TableSpec {
  readonly name: string;
  readonly topic: string;
  /** Key the table by this value field (e.g. a product's default_code) instead of the record key. */
  readonly keyField?: string;
}

export interface StoreSpec {
  readonly name: string;
  /** Default time to live of an entry in ms; undefined keeps entries until deleted. */
  readonly ttlMs?: number;
}

/** A gauge each partition task reports; the process exposes the sum or the maximum over its partitions. */
export interface PartitionGaugeSpec {
  /** Prometheus metric name, e.g. lifeline_sla_open_transactions. */
  readonly name: string;
  readonly help: string;
  /** Labels beside `component` (added by the runtime); values must be constants from config, never record data. */
  readonly labelNames?: readonly string[];
  /** `sum` for counts (open transactions), `max` for ages (oldest open). */
  readonly aggregate: 'sum' | 'max';
}

export interface PartitionGauge {
  /** This partition's value for the series with these labels. */
  set(labels: Record<string, string>, value: number): void;
}

export interface ProcessorContext {
  /** The processor's label in topology.yaml. */
  readonly label: string;
  /** The partition this task owns (the same number on every co-partitioned input). */
  readonly partition: number;
  readonly logger: Logger;
  /**
   * The runtime's Prometheus registry, for the processor's own metrics. Every task of the process
   * shares it, so register each metric once (reuse `registry.getSingleMetric(name)` when present).
   * Labels must never carry record content.
   */
  readonly metricsRegistry?: Registry;
  store<V = unknown>(name: string): KeyValueStore<V>;
  /** Sends to a named output (a key of the processor's `outputs` in topology.yaml), inside the task's transaction. */
  forward<V = unknown>(output: string, record: OutputRecord<V>): void;
  /**
   * Wall-clock punctuation for this partition: the callback runs every intervalMs and whatever it
   * forwards or stores is committed in a transaction of its own. Read what is due with a store's
   * `due(now, limit)` and return true when the limit was reached: the runtime commits and calls
   * again at once (bounded transactions, like record batches), up to a cap per tick.
   */
  schedule(intervalMs: number, callback: (now: number) => Promise<void | boolean> | void | boolean): void;
  /** A reference table declared by the definition's `tables`, kept current as its topic changes. */
  table<V = unknown>(name: string): ReferenceTableView<V>;
  /**
   * Sends the record being processed, unchanged, through the named repartition topic keyed by
   * `key`, so that it comes back (with `via` set) on the partition that owns `key`: how inputs keyed
   * differently meet on one partition.
   */
  repartition(name: string, key: string): void;
  /**
   * Dead-letters a record the processor gives up on later (e.g. held back until a timeout), with its
   * raw bytes, in the current transaction. Records whose process() throws are dead-lettered by the host.
   */
  deadLetter(record: InputRecord, error: Error): void;
  /** Whether topology.yaml maps the named (optional) output. */
  hasOutput(output: string): boolean;
  /**
   * A gauge this partition reports and the runtime aggregates over the process's partitions (sum or
   * max), dropping the partition's share when its task closes. Optional only so hand-made test
   * contexts may omit it; the runtime and the topology test driver always provide it.
   */
  partitionGauge?(spec: PartitionGaugeSpec): PartitionGauge;
  /** Counts a decision (`lifeline_processor_events_total{component,event}`); `event` must be a constant, never record data. */
  count(event: string, n?: number): void;
  /**
   * Wall-clock time in epoch ms. Use it rather than Date.now(): the topology test driver
   * (src/testing) moves this clock, and timers receive the same time as their argument.
   */
  now(): number;
}

export interface Processor {
  init?(context: ProcessorContext): Promise<void> | void;
  process(record: InputRecord, context: ProcessorContext): Promise<void> | void;
  close?(): Promise<void> | void;
}

/** What a connector tells operators about its link to the outside world (/readyz, metrics). */
export type ConnectorHealth = 'up' | 'degraded' | 'down';

/** Shared by source and sink contexts. */
export interface ConnectorContext {
  readonly label: string;
  readonly logger: Logger;
  /** Aborted when the runtime stops. */
  readonly signal: AbortSignal;
  /**
   * The connections topology.yaml declares under `connections.<kind>.<name>`, for every kind a
   * registered component declares (see `ConnectionKind`): validated by that kind's schema, defaults
   * applied, secrets resolved. The core hands them over untyped; the connector that declared the kind
   * knows their shape (e.g. `connections.odoo.main`).
   */
  readonly connections: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
  /** The runtime's Prometheus registry, for the connector's own metrics. */
  readonly metricsRegistry: Registry;
  /** Reports the link's state; anything but `up` makes /readyz say so, with the detail. */
  setHealth(state: ConnectorHealth, detail?: string): void;
  /**
   * Whether topology.yaml maps the named (optional) output; records for an unmapped one belong in
   * quarantine. Always set by the runtime's hosts (optional only so hand-made test contexts may omit it).
   */
  hasOutput?(output: string): boolean;
}

/**
 * A source brings records in from outside (Odoo, webhooks, files). The host loops: `produce()` a
 * batch, encode its records, and commit them together with the batch's cursor in one Kafka
 * transaction (the cursor lives in `_lifeline.source-offsets`); then `acknowledge(batch)`, or
 * `fail(batch, error)` when the commit did not happen.
 */
export interface SourceRecord<V = unknown> extends OutputRecord<V> {
  /** A key of the source's `outputs` in topology.yaml. */
  readonly output: string;
}

export interface SourceBatch {
  readonly records: readonly SourceRecord[];
  /** The position after this batch (JSON-serialisable); undefined leaves the stored cursor as it is. */
  readonly cursor?: unknown;
}

/** A record of a committed batch that was dead-lettered instead of written to its output. */
export interface SourceRecordFailure {
  /** Its index in `batch.records`. */
  readonly index: number;
  /** An LL_* code, e.g. LL_RECORD_TOO_LARGE (details: size, limit), LL_SERIALIZE_INVALID. */
  readonly code: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What the host did with a committed batch's records, beside writing them. */
export interface SourceBatchOutcome {
  readonly deadLettered: readonly SourceRecordFailure[];
}

export interface SourceContext extends ConnectorContext {
  /** The last committed cursor, or undefined on the first run. */
  readonly cursor: unknown;
}

export interface Source {
  connect(context: SourceContext): Promise<void>;
  /**
   * The next batch, or undefined when there is nothing now (the host asks again at once, so wait
   * inside — e.g. the poll interval — and return early when `context.signal` aborts).
   */
  produce(): Promise<SourceBatch | undefined>;
  /** The batch and its cursor are committed in Kafka: e.g. answer the webhook 2xx, archive the file. */
  acknowledge(batch: SourceBatch, outcome?: SourceBatchOutcome): Promise<void>;
  /**
   * The batch was not committed (Kafka unavailable, a record that does not encode). `committedCursor`
   * is the last cursor that was; a polling source rewinds to it, a webhook answers 503.
   */
  fail(batch: SourceBatch, error: unknown, committedCursor: unknown): Promise<void>;
  close(): Promise<void>;
  /**
   * How many batches the host may commit at once, each in its own transaction (default 1). Only
   * for batches that carry no cursor and whose outcomes are their own — a webhook's deliveries, each
   * answered after its own commit. A batch with a cursor is always committed alone and in order.
   */
  readonly batchesInFlight?: number;
}

export interface SinkContext extends ConnectorContext {
  /**
   * Emits a record (e.g. a write-back result event) to a named output, from within `write`: it is
   * sent with that call's batch (once, after the write succeeded), before its input offsets commit.
   */
  forward<V = unknown>(output: string, record: OutputRecord<V>): void;
}

/** A record the sink could not write for good (e.g. Odoo rejected its values): it is dead-lettered. */
export interface SinkFailure {
  readonly record: InputRecord;
  readonly error: unknown;
}

export interface Sink {
  connect(context: SinkContext): Promise<void>;
  /**
   * Writes a batch idempotently (the host is at-least-once; a replay must change nothing). Throw a
   * retriable error (isRetriable) to pause consumption and retry the batch with backoff; return
   * permanent per-record failures to dead-letter them while the rest of the batch counts as written.
   */
  write(records: readonly InputRecord[]): Promise<{ readonly failed: readonly SinkFailure[] }>;
  close(): Promise<void>;
  /**
   * How many partitions the host may write at once (default 1). Each call of `write` then holds
   * the records of one partition, in offset order, and a partition is never written by two calls
   * at once; calls for different partitions overlap, so `write` must be safe to run concurrently.
   * Read once, after `connect`.
   */
  readonly maxInFlight?: number;
}

/**
 * A kind of connection to an outside system (e.g. `odoo`), declared by the connectors that use it:
 * topology.yaml then accepts `connections.<kind>.<name>: {…}`, validates each against `schema`
 * before anything connects, and hands the result to the connector as `context.connections[kind][name]`.
 * Definitions that share a kind share one ConnectionKind object.
 */
export interface ConnectionKind<S extends TObject = TObject> {
  /** The key under `connections:` in topology.yaml, e.g. `odoo`. */
  readonly kind: string;
  readonly description: string;
  /** TypeBox schema of one named connection (descriptions and defaults document it). */
  readonly schema: S;
  /** Checks beyond the schema (e.g. that a URL is http(s)); each problem names the key it is about. */
  check?(connection: Static<S>): Array<{ readonly key: string; readonly message: string }>;
  /** One line for `lifeline topology describe`, without credentials. */
  summary?(connection: Static<S>): string;
}

/** Keeps a connection kind's type tied to its schema. */
export function defineConnectionKind<S extends TObject>(kind: ConnectionKind<S>): ConnectionKind<S> {
  return Object.freeze(kind);
}

interface DefinitionBase<K extends ComponentKind, C extends TObject> {
  readonly kind: K;
  /** The `type:` used in topology.yaml, e.g. `dedup`, `odoo_source`. */
  readonly type: string;
  readonly description: string;
  readonly config: C;
  /** Names of outputs the component forwards to; `?` suffix marks an optional one. */
  readonly outputs: readonly string[];
  /** Whether the component needs its inputs co-partitioned (it keeps per-key state). */
  readonly stateful: boolean;
  stores?(config: Static<C>): StoreSpec[];
  /** Reference tables (compacted topics, materialised on every instance) the component reads. */
  tables?(config: Static<C>): TableSpec[];
  /** Names of internal repartition topics; inputs may then be keyed differently. */
  repartitions?(config: Static<C>): string[];
  /**
   * Processors only: every output record is keyed so that it belongs on the partition of the input
   * it came from, so the runtime keeps the input's partition instead of placing it by key (Kafka's
   * default partitioner). Topology validation then requires outputs partitioned like the inputs.
   */
  preservesPartitioning?(config: Static<C>): boolean;
  /** Kinds of connection (`connections.<kind>` in topology.yaml) the component uses. */
  readonly connections?: readonly ConnectionKind[];
  /**
   * Things `topology validate` should warn about (the topology is still valid), e.g. a partner
   * whose format can produce a record kind no output maps. `path` is relative to `config`.
   */
  warnings?(config: Static<C>, outputs: { has(output: string): boolean }): ComponentWarning[];
}

export interface ComponentWarning {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

export interface ProcessorDefinition<C extends TObject = TObject> extends DefinitionBase<'processor', C> {
  create(config: Static<C>): Processor;
}

export interface SourceDefinition<C extends TObject = TObject> extends DefinitionBase<'source', C> {
  create(config: Static<C>): Source;
}

export interface SinkDefinition<C extends TObject = TObject> extends DefinitionBase<'sink', C> {
  create(config: Static<C>): Sink;
}

export type ComponentDefinition = ProcessorDefinition<TObject> | SourceDefinition<TObject> | SinkDefinition<TObject>;

/** Helpers that keep a definition's config type tied to its schema. */
export function defineProcessor<C extends TObject>(definition: ProcessorDefinition<C>): ProcessorDefinition<C> {
  return Object.freeze(definition);
}
export function defineSource<C extends TObject>(definition: SourceDefinition<C>): SourceDefinition<C> {
  return Object.freeze(definition);
}
export function defineSink<C extends TObject>(definition: SinkDefinition<C>): SinkDefinition<C> {
  return Object.freeze(definition);
}
