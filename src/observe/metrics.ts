import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Lifeline's Prometheus metrics, on a registry of their own rather than prom-client's global one,
 * so several runtimes (and tests) in one process never collide or share counts. Connectors and
 * processors add their own metrics to {@link RuntimeMetrics.registry}.
 *
 * Label values only ever come from component labels, topic names, consumer group names, partition
 * numbers, operation names and error codes — never from record content. Record fields may be PHI,
 * and a label value is visible to anyone who can scrape /metrics (and costs a time series each).
 */

export type TransactionResult = 'committed' | 'aborted';

/** Seconds; from half a millisecond (an in-memory transform) to ten seconds (a slow Odoo write). */
export const PROCESSING_SECONDS_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface RuntimeMetricsOptions {
  /** Process and Node.js metrics (CPU, memory, event loop lag, GC); on by default. */
  readonly collectDefaults?: boolean;
  /** Labels added to every series, e.g. `{ instance_role: 'processors' }`. */
  readonly defaultLabels?: Readonly<Record<string, string>>;
}

/**
 * A metric's labelled child, kept: for the metrics written on every record, so prom-client hashes
 * their labels once, not per record (as many children as components × events: bounded by the topology).
 */
function cachedChild<C>(children: Map<string, C>, key: string, create: () => C): C {
  let child = children.get(key);
  if (child === undefined) {
    child = create();
    children.set(key, child);
  }
  return child;
}

export class RuntimeMetrics {
  readonly registry: Registry;
  private readonly recordsIn: Counter<'component' | 'topic'>;
  private readonly recordsOut: Counter<'component' | 'topic'>;
  private readonly recordsDeadLettered: Counter<'component' | 'error_class'>;
  private readonly retries: Counter<'component' | 'operation'>;
  private readonly processingSeconds: Histogram<'component'>;
  private readonly consumerLag: Gauge<'group' | 'topic' | 'partition'>;
  private readonly componentUp: Gauge<'component'>;
  private readonly transactions: Counter<'component' | 'result'>;
  private readonly transactionSeconds: Histogram<'component'>;
  private readonly transactionSecondsChildren = new Map<string, Histogram.Internal<'component'>>();
  private readonly processorEvents: Counter<'component' | 'event'>;
  /** Labelled children of the per-record metrics (cachedChild). */
  private readonly processorEventChildren = new Map<string, Counter.Internal>();
  private readonly processingChildren = new Map<string, Histogram.Internal<'component'>>();
  private readonly tableRecords: Gauge<'component' | 'table'>;
  private readonly restoredRecords: Counter<'component' | 'mode'>;

  constructor(options: RuntimeMetricsOptions = {}) {
    this.registry = new Registry();
    if (options.defaultLabels) this.registry.setDefaultLabels({ ...options.defaultLabels });
    if (options.collectDefaults ?? true) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];

    this.recordsIn = new Counter({
      name: 'lifeline_records_in_total', help: 'Records a component read, by topic.', labelNames: ['component', 'topic'], registers,
    });
    this.recordsOut = new Counter({
      name: 'lifeline_records_out_total', help: 'Records a component produced, by topic.', labelNames: ['component', 'topic'], registers,
    });
    this.recordsDeadLettered = new Counter({
      name: 'lifeline_records_dead_lettered_total', help: 'Records a component sent to its dead-letter topic, by error code.',
      labelNames: ['component', 'error_class'], registers,
    });
    this.retries = new Counter({
      name: 'lifeline_retries_total', help: 'Retries of a failed operation after a retriable error.', labelNames: ['component', 'operation'], registers,
    });
    this.processingSeconds = new Histogram({
      name: 'lifeline_processing_seconds', help: 'Time a component spent processing one record or batch.',
      labelNames: ['component'], buckets: [...PROCESSING_SECONDS_BUCKETS], registers,
    });
    this.consumerLag = new Gauge({
      name: 'lifeline_consumer_lag', help: 'Records in a partition not yet consumed by a group (high watermark minus committed offset).',
      labelNames: ['group', 'topic', 'partition'], registers,
    });
    this.componentUp = new Gauge({
      name: 'lifeline_component_up', help: '1 while a component is running and connected, 0 otherwise.', labelNames: ['component'], registers,
    });
    this.transactions = new Counter({
      name: 'lifeline_transactions_total', help: 'Kafka transactions a component ended, by result.', labelNames: ['component', 'result'], registers,
    });
    this.transactionSeconds = new Histogram({
      name: 'lifeline_transaction_seconds',
      help: 'Time a committed Kafka transaction took, from its first request to the broker\'s answer to its commit (retries included): most of what an exactly-once hop adds to latency.',
      labelNames: ['component'], buckets: [...PROCESSING_SECONDS_BUCKETS], registers,
    });
    this.restoredRecords = new Counter({
      name: 'lifeline_store_restored_records_total',
      help: 'Changelog records a component read to restore its state stores, by mode (tail: since the local checkpoint; full: after a wipe).',
      labelNames: ['component', 'mode'], registers,
    });
    this.processorEvents = new Counter({
      name: 'lifeline_processor_events_total',
      help: 'What a processor decided, by a fixed event name from its code (e.g. dedup: first, duplicates, updates).',
      labelNames: ['component', 'event'], registers,
    });
    this.tableRecords = new Gauge({
      name: 'lifeline_reference_table_records',
      help: 'Records a reference table holds now (the latest per key of its compacted topic), by processor and table.',
      labelNames: ['component', 'table'], registers,
    });
  }

  /** The Content-Type to serve {@link metricsText} with. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** Everything in the registry in the Prometheus text exposition format. */
  metricsText(): Promise<string> {
    return this.registry.metrics();
  }

  recordIn(component: string, topic: string, count = 1): void {
    this.recordsIn.inc({ component, topic }, count);
  }

  recordOut(component: string, topic: string, count = 1): void {
    this.recordsOut.inc({ component, topic }, count);
  }

  /** `errorClass` is an error code (see `errorCode` in errors.ts), never an error message. */
  recordDeadLetter(component: string, errorClass: string): void {
    this.recordsDeadLettered.inc({ component, error_class: errorClass });
  }

  /** `event` is a constant from the processor's code, never a value from a record. */
  recordProcessorEvent(component: string, event: string, count = 1): void {
    cachedChild(this.processorEventChildren, `${component}\u0000${event}`, () => this.processorEvents.labels({ component, event })).inc(count);
  }

  recordRetry(component: string, operation: string): void {
    this.retries.inc({ component, operation });
  }

  observeProcessing(component: string, seconds: number): void {
    cachedChild(this.processingChildren, component, () => this.processingSeconds.labels({ component })).observe(seconds);
  }

  /** Starts timing one unit of work; call the returned function when it is done. */
  startProcessingTimer(component: string): () => number {
    return this.processingSeconds.startTimer({ component });
  }

  recordRestore(component: string, mode: 'tail' | 'full', records: number): void {
    this.restoredRecords.inc({ component, mode }, records);
  }

  setLag(group: string, topic: string, partition: number, lag: number): void {
    this.consumerLag.set({ group, topic, partition: String(partition) }, lag);
  }

  /** Drops a partition's lag series once the group no longer owns it, so a stale value cannot alert. */
  removeLag(group: string, topic: string, partition: number): void {
    this.consumerLag.remove({ group, topic, partition: String(partition) });
  }

  setTableRecords(component: string, table: string, records: number): void {
    this.tableRecords.set({ component, table }, records);
  }

  setUp(component: string, up: boolean): void {
    this.componentUp.set({ component }, up ? 1 : 0);
  }

  /** `seconds`: how long a committed transaction took, from its first request to the commit's answer. */
  recordTransaction(component: string, result: TransactionResult, seconds?: number): void {
    this.transactions.inc({ component, result });
    if (seconds !== undefined) cachedChild(this.transactionSecondsChildren, component, () => this.transactionSeconds.labels({ component })).observe(seconds);
  }
}
