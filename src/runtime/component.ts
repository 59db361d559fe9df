import type { Static, TObject } from '@sinclair/typebox';
import type { Logger } from 'pino';

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
  /** The decoded Avro value (null for a tombstone). */
  readonly value: V;
  readonly headers: Readonly<RecordHeaders>;
}

export interface OutputRecord<V = unknown> {
  readonly key: string | null;
  /** Encoded with the output topic's registered schema; null produces a tombstone. */
  readonly value: V;
  readonly headers?: RecordHeaders;
  /** Defaults to the input record's partition when the output is co-partitioned, else by key hash. */
  readonly partition?: number;
}

/** A key-value store scoped to one processor, one store name and one partition. */
export interface KeyValueStore<V = unknown> {
  get(key: string): V | undefined;
  /** ttlMs overrides the store's default time to live for this entry. */
  put(key: string, value: V, options?: { ttlMs?: number }): void;
  delete(key: string): void;
  /** Live (unexpired) entries, including writes not yet committed by this task. */
  entries(): Iterable<[string, V]>;
}

export interface StoreSpec {
  readonly name: string;
  /** Default time to live of an entry in ms; undefined keeps entries until deleted. */
  readonly ttlMs?: number;
}

export interface ProcessorContext {
  /** The processor's label in topology.yaml. */
  readonly label: string;
  /** The partition this task owns (the same number on every co-partitioned input). */
  readonly partition: number;
  readonly logger: Logger;
  store<V = unknown>(name: string): KeyValueStore<V>;
  /** Sends to a named output (a key of the processor's `outputs` in topology.yaml), inside the task's transaction. */
  forward<V = unknown>(output: string, record: OutputRecord<V>): void;
  /**
   * Wall-clock punctuation for this partition: the callback runs every intervalMs and whatever it
   * forwards or stores is committed in a transaction of its own.
   */
  schedule(intervalMs: number, callback: (now: number) => Promise<void> | void): void;
}

export interface Processor {
  init?(context: ProcessorContext): Promise<void> | void;
  process(record: InputRecord, context: ProcessorContext): Promise<void> | void;
  close?(): Promise<void> | void;
}

/** A source brings records in from outside (Odoo, webhooks, files). */
export interface SourceRecordBatch {
  readonly records: ReadonlyArray<{ readonly output: string } & OutputRecord>;
  /** The source's position after this batch; committed in the same transaction as the records. */
  readonly cursor: unknown;
}

export interface SourceContext {
  readonly label: string;
  readonly logger: Logger;
  /** The last committed cursor, or undefined on the first run. */
  readonly cursor: unknown;
  readonly signal: AbortSignal;
}

export interface Source {
  connect(context: SourceContext): Promise<void>;
  /** Resolves with the next batch (possibly empty after a poll interval), or undefined when closed. */
  produce(): Promise<SourceRecordBatch | undefined>;
  /** Called once the batch and its cursor are committed to Kafka. */
  acknowledge(batch: SourceRecordBatch): Promise<void>;
  close(): Promise<void>;
}

export interface SinkContext {
  readonly label: string;
  readonly logger: Logger;
  readonly signal: AbortSignal;
}

export interface Sink {
  connect(context: SinkContext): Promise<void>;
  /** Writes a batch; throws a retriable error to pause and retry, a permanent one to dead-letter. */
  write(records: readonly InputRecord[]): Promise<void>;
  close(): Promise<void>;
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
