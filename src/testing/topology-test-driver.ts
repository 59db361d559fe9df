import { Value } from '@sinclair/typebox/value';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type {
  ComponentDefinition, ConnectorHealth, InputRecord, KeyValueStore, OutputRecord, Processor, ProcessorContext, ProcessorDefinition, ReferenceTableView,
  Sink, SinkDefinition, Source, SourceBatch, SourceDefinition, StoreSpec, TableSpec,
} from '../component/component.ts';
import { LIFELINE_HEADERS, withIngestHeaders } from '../component/record-headers.ts';
import { readPath } from '../component/value-path.ts';
import { LifelineError, errorCode, errorMessage, isRetriable } from '../errors.ts';
import { compileContract, loadContract, type AvroContract } from '../kafka/avro-contract.ts';
import { createLogger } from '../observe/logger.ts';
import { RuntimeMetrics } from '../observe/metrics.ts';
import { scrubPhiFromText } from '../observe/phi-scrub.ts';
import { DEAD_LETTER_HEADERS, deadLetterMessage, headersAsStrings } from '../runtime/dead-letter.ts';
import { MemoryStoreBackend } from '../runtime/memory-store-backend.ts';
import { PartitionGauges } from '../runtime/partition-gauges.ts';
import { ProcessingHaltedError, REPARTITION_ORIGIN_HEADER, partitionForKey } from '../runtime/processor-task.ts';
import { TransactionalStore } from '../runtime/transactional-store.ts';
import { loadTopology } from '../topology/load-topology.ts';
import { deadLetterTopic, repartitionTopic, type ErrorPolicy, type Topology } from '../topology/model.ts';

/**
 * The topology test driver (after Kafka Streams' TopologyTestDriver): runs a topology's processors,
 * or one processor with its config, in memory — no broker, no registry, no timers of its own.
 *
 * - Records piped into a topic are Avro-encoded with the topic's schema (the real avsc type, in the
 *   Confluent wire format with a local schema id) and decoded again on the way in, exactly as the
 *   runtime does; a value the schema refuses fails the pipe.
 * - Each record is handled as the runtime's processor task handles it: stores written through the
 *   same per-record overlay, outputs encoded with the output topic's schema, a failure dead-lettered
 *   (with its raw bytes and the error headers), skipped or halting as `on_error` says. A processor's
 *   outputs are delivered, in order, to every processor that reads them (so a whole topology runs).
 * - Time is the driver's: `now()` in the context, store TTLs and timers all read the driver clock,
 *   which moves only with `advanceWallClockTime`; timers fire in due order, each at its own time.
 *   Stream time is the largest record timestamp seen (`streamTime`). So a run is deterministic.
 *
 * Sources and sinks run only when the test turns them: `pollSource(label)` takes one batch (cursor
 * kept as the runtime keeps it, `restartSource` reconnects with it), `runSink(label)` writes what
 * its inputs hold. So a topology whose connectors talk to the outside world loads without touching
 * it; pipe into the topics a source would write, read the topics a sink would read.
 */

/** A topic in the driver: its schema and partition count. */
export interface DriverTopic {
  readonly name: string;
  readonly contract: AvroContract;
  readonly partitions: number;
}

/** One record to pipe in. `timestamp` defaults to the driver clock. */
export interface TestRecord<V = unknown> {
  readonly key?: string | null;
  readonly value: V;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timestamp?: number;
  /** Defaults to the partition Kafka's default partitioner picks for the key (0 for a null key). */
  readonly partition?: number;
}

/** A record as it sits in a driver topic, decoded. */
export interface TestOutputRecord<V = unknown> {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: string | null;
  readonly value: V;
  readonly headers: Readonly<Record<string, string>>;
}

/** A dead letter as `ops.dlq.<label>.v1` holds it: the input's raw bytes and headers, plus what failed. */
export interface TestDeadLetter {
  readonly component: string;
  readonly key: string | null;
  /** The input value decoded with its topic's schema, or undefined when the bytes do not decode. */
  readonly value: unknown;
  readonly rawValue: Buffer | null;
  /** The input's headers plus the `lifeline.error.*` and `lifeline.origin.*` headers. */
  readonly headers: Readonly<Record<string, string>>;
  readonly errorClass: string;
  readonly errorMessage: string;
  readonly origin: { readonly topic: string; readonly partition: number; readonly offset: string };
}

interface StoredRecord {
  readonly partition: number;
  readonly offset: string;
  readonly timestamp: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  readonly headers: Record<string, string>;
}

interface ComponentModel<D extends ComponentDefinition = ComponentDefinition> {
  readonly label: string;
  readonly definition: D;
  readonly config: Record<string, unknown>;
  readonly inputs: readonly string[];
  /** Output name -> topic. */
  readonly outputs: Readonly<Record<string, string>>;
  readonly onError: ErrorPolicy;
}

type ProcessorModel = ComponentModel<ProcessorDefinition>;

interface DriverModel {
  readonly appId: string;
  readonly topics: ReadonlyMap<string, DriverTopic>;
  readonly processors: readonly ProcessorModel[];
  /** Sources and sinks: connected the first time a test polls or runs them, never on their own. */
  readonly connectors: readonly ComponentModel[];
  readonly connections: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
}

export interface DriverOptions {
  /** Where the driver clock starts (epoch ms); default 2026-01-05T08:00:00Z, so runs repeat exactly. */
  readonly startTime?: number;
  /** Logs of the processors; default: errors only. */
  readonly logger?: Logger;
}

export interface TopologyDriverOptions extends DriverOptions {
  /** Run only these processor labels (default: every processor of the topology). */
  readonly only?: readonly string[];
}

export interface ComponentDriverOptions extends DriverOptions {
  /** The component's label (default: its type); names its dead-letter topic and metrics. */
  readonly label?: string;
  /** The component's config as topology.yaml would give it: checked against its schema, defaults applied. */
  readonly config?: Record<string, unknown>;
  /** Every topic the component reads, writes or materialises: a schema file (or contract) and partitions (default 1). */
  readonly topics: Readonly<Record<string, { readonly schema: string | AvroContract; readonly partitions?: number }>>;
  /** Topics it reads (a source reads none). */
  readonly inputs?: readonly string[];
  /** For a connector: `connections.<kind>.<name>` as topology.yaml would declare them (not validated here). */
  readonly connections?: Readonly<Record<string, Readonly<Record<string, Readonly<Record<string, unknown>>>>>>;
  /** Output name (as the processor forwards to it) -> topic. */
  readonly outputs?: Readonly<Record<string, string>>;
  readonly onError?: ErrorPolicy;
}

/** @deprecated-free alias: the options of {@link TopologyTestDriver.forProcessor}. */
export type ProcessorDriverOptions = ComponentDriverOptions & { readonly inputs: readonly string[] };

export const DEFAULT_START_TIME = Date.parse('2026-01-05T08:00:00Z');

export class TopologyTestDriver {
  /** The metrics the processors and the driver record (`lifeline_processor_events_total`, …). */
  readonly metricsRegistry: Registry;
  private readonly metrics: RuntimeMetrics;
  private clock: number;
  private maxTimestamp = Number.NEGATIVE_INFINITY;
  /** Per topic: the partitions' logs, and every record in the order it was appended (what readers see). */
  private readonly logs = new Map<string, StoredRecord[][]>();
  private readonly appended = new Map<string, StoredRecord[]>();
  private readonly schemaIds = new Map<string, number>();
  private readonly typesById: AvroContract[] = [];
  private readonly tasks: DriverTask[] = [];
  private readonly timers: DriverTimer[] = [];
  private readonly topics = new Map<string, DriverTopic>();
  private readonly tables: DriverTable[] = [];
  private readonly readPositions = new Map<string, number>();
  private readonly queue: Array<{ topic: string; record: StoredRecord }> = [];
  private draining = false;
  private timerSequence = 0;
  private closed = false;

  private constructor(private readonly model: DriverModel, private readonly logger: Logger, startTime: number) {
    this.clock = startTime;
    this.metrics = new RuntimeMetrics({ collectDefaults: false });
    this.metricsRegistry = this.metrics.registry;
    for (const topic of model.topics.values()) this.addTopic(topic);
  }

  /** Loads topology.yaml (validated as `lifeline topology validate` does) and runs its processors. */
  static async fromFile(file: string, registry: ComponentRegistry, options: TopologyDriverOptions & { readonly env?: NodeJS.ProcessEnv } = {}): Promise<TopologyTestDriver> {
    return TopologyTestDriver.fromTopology(loadTopology(file, registry, options.env ?? process.env), registry, options);
  }

  /** Runs the processors of a loaded topology (sources and sinks do not run). */
  static async fromTopology(topology: Topology, registry: ComponentRegistry, options: TopologyDriverOptions = {}): Promise<TopologyTestDriver> {
    const processors: ProcessorModel[] = [];
    const connectors: ComponentModel[] = [];
    for (const declaration of Object.values(topology.components)) {
      if (options.only && !options.only.includes(declaration.label)) continue;
      const model: ComponentModel = {
        label: declaration.label,
        definition: registry.get(declaration.type),
        config: declaration.config as Record<string, unknown>,
        inputs: declaration.inputs,
        outputs: declaration.outputs,
        onError: declaration.onError,
      };
      if (declaration.kind === 'processor') processors.push(model as ProcessorModel);
      else connectors.push(model);
    }
    if (options.only) {
      const missing = options.only.filter((label) => ![...processors, ...connectors].some((component) => component.label === label));
      if (missing.length > 0) throw new Error(`the topology has no component ${missing.join(', ')}`);
    }
    const topics = new Map(Object.values(topology.topics).map((topic) => [topic.name, { name: topic.name, contract: topic.contract, partitions: topic.partitions }]));
    return TopologyTestDriver.start({ appId: topology.runtime.appId, topics, processors, connectors, connections: topology.connections }, options);
  }

  /** Runs one processor definition with its config, on the topics given. */
  static async forProcessor(definition: ProcessorDefinition, options: ProcessorDriverOptions): Promise<TopologyTestDriver> {
    return TopologyTestDriver.forComponent(definition as unknown as ComponentDefinition, options);
  }

  /**
   * Runs one component definition — a processor, or a source or sink the test drives with
   * `pollSource` / `runSink` — with its config, on the topics given.
   */
  static async forComponent(definition: ComponentDefinition, options: ComponentDriverOptions): Promise<TopologyTestDriver> {
    const label = options.label ?? definition.type;
    const config = Value.Default(definition.config, Value.Clone(options.config ?? {})) as Record<string, unknown>;
    const problems = [...Value.Errors(definition.config, config)].map((error) => `${error.path || '/'} ${error.message}`);
    if (problems.length > 0) throw new LifelineError('LL_CONFIG_INVALID', `${label}: config does not match the ${definition.type} schema: ${problems.join('; ')}`);
    const topics = new Map<string, DriverTopic>();
    for (const [name, topic] of Object.entries(options.topics)) {
      topics.set(name, { name, contract: typeof topic.schema === 'string' ? loadContract(topic.schema) : topic.schema, partitions: topic.partitions ?? 1 });
    }
    const outputs = options.outputs ?? {};
    const inputs = options.inputs ?? [];
    if (definition.kind === 'processor' && inputs.length === 0) throw new Error(`${label}: a processor needs at least one input`);
    for (const topic of [...inputs, ...Object.values(outputs)]) {
      if (!topics.has(topic)) throw new Error(`${label}: topic ${topic} has no schema; add it to topics`);
    }
    const known = definition.outputs.map((output) => output.replace(/\?$/, ''));
    for (const output of Object.keys(outputs)) {
      if (!known.includes(output)) throw new Error(`${label}: ${definition.type} has no output "${output}"; it has: ${known.join(', ')}`);
    }
    const model: ComponentModel = { label, definition, config, inputs, outputs, onError: options.onError ?? 'dlq' };
    return TopologyTestDriver.start({
      appId: 'lifeline', topics, connections: options.connections ?? {},
      processors: definition.kind === 'processor' ? [model as ProcessorModel] : [],
      connectors: definition.kind === 'processor' ? [] : [model],
    }, options);
  }

  private static async start(model: DriverModel, options: DriverOptions): Promise<TopologyTestDriver> {
    const driver = new TopologyTestDriver(model, options.logger ?? createLogger({ level: 'error' }), options.startTime ?? DEFAULT_START_TIME);
    for (const processor of model.processors) await driver.startProcessor(processor);
    for (const connector of model.connectors) driver.addTopic({ name: deadLetterTopic(connector.label), contract: driver.anyContract(), partitions: 1 });
    return driver;
  }

  /** The driver clock (epoch ms): what `context.now()`, store TTLs and timers see. */
  now(): number {
    return this.clock;
  }

  /** The largest timestamp of any record piped in or produced so far. */
  get streamTime(): number {
    return this.maxTimestamp;
  }

  /** Pipes records into a topic and runs every processor they reach until nothing is left to do. */
  input<V = unknown>(topic: string): TestInputTopic<V> {
    this.topic(topic);
    return new TestInputTopic<V>(this, topic);
  }

  /** Reads a topic: records piped in or produced there, decoded with the topic's schema. */
  output<V = unknown>(topic: string): TestOutputTopic<V> {
    this.topic(topic);
    return new TestOutputTopic<V>(this, topic);
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way, in time order
   * (ties in the order they were scheduled), each called with its own due time.
   */
  async advanceWallClockTime(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new Error(`advanceWallClockTime needs a duration >= 0 (got ${ms})`);
    const target = this.clock + ms;
    for (;;) {
      const due = this.timers.filter((timer) => timer.next <= target).sort((a, b) => a.next - b.next || a.sequence - b.sequence)[0];
      if (!due) break;
      this.clock = Math.max(this.clock, due.next);
      due.next += due.intervalMs;
      await due.task.punctuate(due.callback, this.clock);
      await this.drain();
    }
    this.clock = target;
    for (const task of this.tasks) await task.expireStores();
  }

  /**
   * One store of a processor across all its partitions: `get` finds a key on whichever partition
   * holds it, `entries` lists every live entry. Reads committed state, as after each record.
   */
  store<V = unknown>(label: string, name: string): TestStoreView<V> {
    const stores = this.tasksOf(label).map((task) => task.storeNamed(name));
    return {
      get: (key) => stores.map((store) => store.get(key) as V | undefined).find((value) => value !== undefined),
      entries: () => stores.flatMap((store) => [...store.entries()] as Array<[string, V]>),
      get size() {
        return stores.reduce((sum, store) => sum + [...store.entries()].length, 0);
      },
    };
  }

  /** The dead letters of one processor (or of all), oldest first. */
  deadLetters(label?: string): TestDeadLetter[] {
    const labels = label ? [label] : [...this.model.processors, ...this.model.connectors].map((component) => component.label);
    return labels.flatMap((name) => this.storedRecords(deadLetterTopic(name)).map((record) => this.deadLetterOf(name, record)));
  }

  /** The decisions a processor counted with `context.count(event)`, by event. */
  async processorEvents(label: string): Promise<Record<string, number>> {
    const metric = await this.metricsRegistry.getSingleMetric('lifeline_processor_events_total')?.get();
    const counts: Record<string, number> = {};
    for (const value of metric?.values ?? []) {
      if (value.labels.component === label) counts[String(value.labels.event)] = (counts[String(value.labels.event)] ?? 0) + value.value;
    }
    return counts;
  }

  /** Everything in the metrics registry, in the Prometheus text format. */
  metricsText(): Promise<string> {
    return this.metricsRegistry.metrics();
  }

  /**
   * Takes one partition away from a processor, as a rebalance does: its processor is closed, its
   * timers stop and records for that partition are no longer processed (they stay in the topic).
   */
  async revokePartition(label: string, partition: number): Promise<void> {
    const task = this.tasksOf(label).find((candidate) => candidate.partition === partition);
    if (!task) throw new Error(`processor ${label} has no partition ${partition}`);
    this.tasks.splice(this.tasks.indexOf(task), 1);
    for (let index = this.timers.length - 1; index >= 0; index--) if (this.timers[index]?.task === task) this.timers.splice(index, 1);
    await task.close();
  }

  /**
   * One turn of a source, as the source host takes it: `produce()` a batch, encode its records
   * into their topics (a record its schema refuses is dead-lettered as JSON), keep the cursor, then
   * `acknowledge(batch)`. The source connects on its first poll, with the last cursor it committed.
   * Returns the batch's records (none when the source had nothing). Processors reading the topics run.
   */
  async pollSource(label: string): Promise<number> {
    const connector = await this.connector(label, 'source');
    const source = connector.instance as Source;
    const batch: SourceBatch | undefined = await source.produce();
    if (!batch) return 0;
    const ingestedAt = new Date(this.clock);
    for (const record of batch.records) {
      const topic = connector.model.outputs[record.output];
      if (!topic) throw new Error(`source ${label} emitted to output "${record.output}", which is not mapped; mapped: ${Object.keys(connector.model.outputs).join(', ')}`);
      const headers = this.deterministicIngestHeaders(record.headers, label, ingestedAt);
      const key = record.key ?? null;
      try {
        const value = this.encode(topic, record.value);
        this.append(topic, { partition: record.partition ?? this.partitionFor(topic, key), key, value, timestamp: this.clock, headers });
        this.metrics.recordOut(label, topic);
      } catch (error) {
        if (isRetriable(error)) throw error;
        const letter = deadLetterMessage({ component: label, error, attempts: 1, origin: { topic, partition: -1, offset: '-1' }, key, value: Buffer.from(JSON.stringify(record.value)), headers });
        this.append(deadLetterTopic(label), { partition: 0, key, value: letter.value as Buffer, timestamp: this.clock, headers: headersAsStrings(letter.headers) });
        this.metrics.recordDeadLetter(label, errorCode(error));
      }
    }
    // Kept as the runtime keeps it: JSON, committed with the records.
    if (batch.cursor !== undefined) this.committedCursors.set(label, JSON.parse(JSON.stringify(batch.cursor)) as unknown);
    await source.acknowledge(batch);
    await this.drain();
    return batch.records.length;
  }

  /**
   * One turn of a sink, as the sink host takes it: every record of its input topics it has not
   * written yet goes to `write()` in one batch; permanent failures are dead-lettered, forwarded
   * results produced. A retriable error (the target is down) is thrown to the test, and the same
   * records are offered again on the next call. Returns how many records were offered.
   */
  async runSink(label: string): Promise<number> {
    const connector = await this.connector(label, 'sink');
    const sink = connector.instance as Sink;
    const pending = connector.model.inputs.flatMap((topic) => {
      const all = this.appendOrder(topic);
      const from = connector.positions.get(topic) ?? 0;
      return all.slice(from).map((record) => ({ topic, record }));
    });
    if (pending.length === 0) return 0;
    const records: InputRecord[] = pending.map(({ topic, record }) => ({
      topic, partition: record.partition, offset: record.offset, timestamp: record.timestamp, key: record.key,
      value: this.decode(record.value), headers: record.headers, rawValue: record.value,
    }));
    connector.forwards = [];
    const { failed } = await sink.write(records);
    for (const topic of connector.model.inputs) connector.positions.set(topic, this.appendOrder(topic).length);
    for (const { record, error } of failed) {
      const text = scrubPhiFromText(errorMessage(error), record.value, this.topic(record.topic).contract.phiPaths);
      const letter = deadLetterMessage({
        component: label, error, errorText: text, attempts: 1, origin: { topic: record.topic, partition: record.partition, offset: record.offset },
        key: record.key, value: record.rawValue, headers: { ...record.headers },
      });
      this.append(deadLetterTopic(label), { partition: 0, key: record.key, value: record.rawValue, timestamp: this.clock, headers: headersAsStrings(letter.headers) });
      this.metrics.recordDeadLetter(label, errorCode(error));
    }
    for (const { output, record } of connector.forwards) {
      const topic = connector.model.outputs[output] as string;
      this.append(topic, { partition: record.partition ?? this.partitionFor(topic, record.key), key: record.key, value: this.encode(topic, record.value), timestamp: this.clock, headers: { ...(record.headers ?? {}) } });
      this.metrics.recordOut(label, topic);
    }
    connector.forwards = [];
    await this.drain();
    return records.length;
  }

  /** What a connector last reported with `setHealth` (`up` until it says otherwise). */
  connectorHealth(label: string): { readonly state: ConnectorHealth; readonly detail?: string } {
    return this.connectors.get(label)?.health ?? { state: 'up' };
  }

  /** The cursor a source last committed (undefined before its first batch with one). */
  sourceCursor(label: string): unknown {
    return this.committedCursors.get(label);
  }

  /**
   * Stops a source and starts it again, as a restart does: `close()`, then a new instance connects
   * with the cursor the old one committed (nothing uncommitted survives).
   */
  async restartSource(label: string): Promise<void> {
    const connector = this.connectors.get(label);
    if (!connector) return;
    connector.abort.abort();
    await (connector.instance as Source).close();
    this.connectors.delete(label);
    await this.connector(label, 'source');
  }

  /** Closes every processor and connector (their `close()`); the driver cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const task of this.tasks) await task.close();
    for (const connector of this.connectors.values()) {
      connector.abort.abort();
      await (connector.instance as Source | Sink).close();
    }
  }

  private readonly connectors = new Map<string, ConnectorState>();
  private readonly committedCursors = new Map<string, unknown>();
  private ingestSequence = 0;

  private async connector(label: string, kind: 'source' | 'sink'): Promise<ConnectorState> {
    const existing = this.connectors.get(label);
    if (existing) return existing;
    const model = this.model.connectors.find((connector) => connector.label === label);
    if (!model || model.definition.kind !== kind) {
      const known = this.model.connectors.filter((connector) => connector.definition.kind === kind).map((connector) => connector.label);
      throw new Error(`the driver has no ${kind} ${label}; ${kind}s: ${known.join(', ') || 'none'}`);
    }
    const abort = new AbortController();
    const state: ConnectorState = {
      model, abort, positions: new Map(), forwards: [], health: { state: 'up' },
      instance: undefined as unknown as Source | Sink,
    };
    const base = {
      label, logger: this.logger.child({ component: label }), signal: abort.signal, connections: this.model.connections,
      metricsRegistry: this.metricsRegistry,
      setHealth: (health: ConnectorHealth, detail?: string) => { state.health = detail === undefined ? { state: health } : { state: health, detail }; },
      hasOutput: (output: string) => model.outputs[output] !== undefined,
    };
    if (kind === 'source') {
      const source = (model.definition as SourceDefinition).create(model.config as never);
      state.instance = source;
      await source.connect({ ...base, cursor: this.committedCursors.get(label) });
    } else {
      const sink = (model.definition as SinkDefinition).create(model.config as never);
      state.instance = sink;
      await sink.connect({
        ...base,
        forward: (output, record) => {
          if (model.outputs[output] === undefined) throw new Error(`sink ${label} forwarded to output "${output}", which is not mapped`);
          state.forwards.push({ output, record });
        },
      });
    }
    this.connectors.set(label, state);
    return state;
  }

  /** The runtime's ingest headers, with the random parts (correlation id, trace) numbered instead, so runs repeat. */
  private deterministicIngestHeaders(headers: Readonly<Record<string, string>> | undefined, label: string, at: Date): Record<string, string> {
    const sequence = (this.ingestSequence++).toString(16).padStart(12, '0');
    return withIngestHeaders({
      [LIFELINE_HEADERS.correlationId]: `${label}-${sequence}`,
      [LIFELINE_HEADERS.traceparent]: `00-${sequence.padStart(32, '0')}-${sequence.padStart(16, '0')}-01`,
      ...(headers ?? {}),
    }, label, at);
  }

  private anyContract(): AvroContract {
    return compileContract('bytes');
  }

  // ---- internals shared with the input/output topics and the tasks ----

  /** @internal */
  topic(name: string): DriverTopic {
    const topic = this.topics.get(name);
    if (!topic) throw new Error(`the driver has no topic ${name}; known: ${[...this.topics.keys()].sort().join(', ')}`);
    return topic;
  }

  /** @internal Encodes a value in the Confluent wire format with the topic's schema (and a local schema id). */
  encode(topic: string, value: unknown): Buffer | null {
    if (value === null) return null;
    const contract = this.topic(topic).contract;
    const id = this.schemaIdOf(contract);
    const invalid: string[] = [];
    contract.type.isValid(value, {
      errorHook: (path, fieldValue, fieldType) => {
        invalid.push(`${path.join('.') || '(value)'}: expected ${fieldType.typeName}${fieldType.name ? ` ${fieldType.name}` : ''}, got ${fieldValue === undefined ? 'nothing' : typeof fieldValue}`);
      },
    });
    if (invalid.length > 0) {
      throw new LifelineError('LL_SERIALIZE_INVALID', `value for ${topic} does not match schema ${contract.fullName}: ${invalid.join('; ')}`, { details: { topic, fields: invalid } });
    }
    const header = Buffer.alloc(5);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, contract.type.toBuffer(value)]);
  }

  /** @internal */
  decode(bytes: Buffer | null): unknown {
    if (bytes === null) return null;
    if (bytes.length < 5 || bytes[0] !== 0) throw new LifelineError('LL_DESERIALIZE_NOT_AVRO', `record value is not Confluent Avro wire format (first byte ${bytes[0]}, length ${bytes.length})`);
    const contract = this.typesById[bytes.readInt32BE(1) - 1];
    if (!contract) throw new LifelineError('LL_DESERIALIZE_NOT_AVRO', `record value names schema id ${bytes.readInt32BE(1)}, which the driver never issued`);
    return contract.type.fromBuffer(bytes.subarray(5));
  }

  /** @internal Appends a record to a topic log and queues its delivery to the processors reading the topic. */
  append(topic: string, record: Omit<StoredRecord, 'offset'>): StoredRecord {
    const partitions = this.logs.get(topic) as StoredRecord[][];
    const log = partitions[record.partition];
    if (!log) throw new Error(`topic ${topic} has no partition ${record.partition} (it has ${partitions.length})`);
    const stored = { ...record, offset: String(log.length) };
    log.push(stored);
    this.appendOrder(topic).push(stored);
    this.maxTimestamp = Math.max(this.maxTimestamp, record.timestamp);
    for (const table of this.tables) if (table.topic === topic) table.apply(record.key, this.decode(record.value));
    this.queue.push({ topic, record: stored });
    return stored;
  }

  /** @internal Delivers queued records, oldest first, until none is left (outputs queue more). */
  async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      for (let next = this.queue.shift(); next; next = this.queue.shift()) {
        for (const task of this.tasks) if (task.reads(next.topic) && task.partition === next.record.partition) await task.handle(next.topic, next.record);
      }
    } finally {
      this.draining = false;
    }
  }

  /** @internal */
  storedRecords(topic: string): StoredRecord[] {
    const partitions = this.logs.get(topic) ?? [];
    return partitions.flat().sort((a, b) => a.timestamp - b.timestamp || a.partition - b.partition || Number(a.offset) - Number(b.offset));
  }

  /** @internal Records of a topic in the order they were appended (across partitions). */
  readFrom(topic: string): StoredRecord[] {
    const position = this.readPositions.get(topic) ?? 0;
    const all = this.appendOrder(topic);
    this.readPositions.set(topic, all.length);
    return all.slice(position);
  }

  /** @internal */
  unread(topic: string): number {
    return this.appendOrder(topic).length - (this.readPositions.get(topic) ?? 0);
  }

  /** @internal */
  partitionFor(topic: string, key: string | null): number {
    const partitions = this.topic(topic).partitions;
    return key === null ? 0 : partitionForKey(key, partitions);
  }

  /** @internal */
  recordTimer(timer: Omit<DriverTimer, 'sequence' | 'next'>): void {
    this.timers.push({ ...timer, next: this.clock + timer.intervalMs, sequence: this.timerSequence++ });
  }

  private appendOrder(topic: string): StoredRecord[] {
    return this.appended.get(topic) ?? [];
  }

  private addTopic(topic: DriverTopic): void {
    this.topics.set(topic.name, topic);
    this.logs.set(topic.name, Array.from({ length: topic.partitions }, () => []));
    this.appended.set(topic.name, []);
  }

  private schemaIdOf(contract: AvroContract): number {
    const key = JSON.stringify(contract.json);
    let id = this.schemaIds.get(key);
    if (id === undefined) {
      this.typesById.push(contract);
      id = this.typesById.length;
      this.schemaIds.set(key, id);
    }
    return id;
  }

  private tasksOf(label: string): DriverTask[] {
    const tasks = this.tasks.filter((task) => task.label === label);
    if (tasks.length === 0) throw new Error(`the driver runs no processor ${label}; it runs: ${this.model.processors.map((processor) => processor.label).join(', ')}`);
    return tasks;
  }

  private deadLetterOf(label: string, record: StoredRecord): TestDeadLetter {
    let value: unknown;
    try {
      value = plain(this.decode(record.value));
    } catch {
      value = undefined;
    }
    return {
      component: label,
      key: record.key,
      value,
      rawValue: record.value,
      headers: record.headers,
      errorClass: record.headers[DEAD_LETTER_HEADERS.errorClass] ?? '',
      errorMessage: record.headers[DEAD_LETTER_HEADERS.errorMessage] ?? '',
      origin: {
        topic: record.headers[DEAD_LETTER_HEADERS.originTopic] ?? '',
        partition: Number(record.headers[DEAD_LETTER_HEADERS.originPartition]),
        offset: record.headers[DEAD_LETTER_HEADERS.originOffset] ?? '',
      },
    };
  }

  private async startProcessor(processor: ProcessorModel): Promise<void> {
    const { definition, config, label } = processor;
    const inputPartitions = Math.max(...processor.inputs.map((input) => this.topic(input).partitions));
    const repartitions = new Map((definition.repartitions?.(config as never) ?? []).map((name) => [name, repartitionTopic(this.model.appId, label, name)]));
    const firstInput = this.topic(processor.inputs[0] as string);
    for (const topic of repartitions.values()) this.addTopic({ name: topic, contract: firstInput.contract, partitions: inputPartitions });
    this.addTopic({ name: deadLetterTopic(label), contract: firstInput.contract, partitions: 1 });
    const tables = new Map<string, DriverTable>();
    for (const spec of definition.tables?.(config as never) ?? []) {
      this.topic(spec.topic);
      const table = new DriverTable(spec);
      this.tables.push(table);
      tables.set(spec.name, table);
      // Records already in the topic are in the table from the start, as a materialised table would be.
      for (const record of this.appendOrder(spec.topic)) table.apply(record.key, this.decode(record.value));
    }
    const phiPaths = new Map([...this.topics.values()].map((topic) => [topic.name, topic.contract.phiPaths]));
    for (let partition = 0; partition < inputPartitions; partition++) {
      const task = new DriverTask(this, {
        ...processor, partition, inputPartitions, repartitions, tables, phiPaths,
        stores: definition.stores?.(config as never) ?? [],
        logger: this.logger.child({ component: label, partition }),
        metrics: this.metrics,
      });
      this.tasks.push(task);
      await task.open();
    }
  }
}

/** Reads of one store across a processor's partitions. */
export interface TestStoreView<V> {
  get(key: string): V | undefined;
  entries(): Array<[string, V]>;
  readonly size: number;
}

export class TestInputTopic<V = unknown> {
  constructor(private readonly driver: TopologyTestDriver, readonly name: string) {}

  /** Pipes one record (a value alone is piped with a null key) and processes everything it leads to. */
  async pipe(record: TestRecord<V> | V): Promise<void> {
    await this.pipeAll([record]);
  }

  async pipeAll(records: ReadonlyArray<TestRecord<V> | V>): Promise<void> {
    for (const entry of records) {
      const record = isTestRecord<V>(entry) ? entry : { value: entry as V };
      const key = record.key ?? null;
      const partition = record.partition ?? this.driver.partitionFor(this.name, key);
      this.driver.append(this.name, {
        partition, key, timestamp: record.timestamp ?? this.driver.now(),
        value: this.driver.encode(this.name, record.value), headers: { ...(record.headers ?? {}) },
      });
      await this.driver.drain();
    }
  }
}

/** Decoded Avro records are instances of generated classes; tests compare plain objects. */
function plain(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (value === null || typeof value !== 'object' || Buffer.isBuffer(value) || value instanceof Date) return value;
  return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, plain(field)]));
}

function isTestRecord<V>(value: unknown): value is TestRecord<V> {
  return value !== null && typeof value === 'object' && 'value' in value && Object.keys(value).every((key) => ['key', 'value', 'headers', 'timestamp', 'partition'].includes(key));
}

export class TestOutputTopic<V = unknown> {
  constructor(private readonly driver: TopologyTestDriver, readonly name: string) {}

  /** Records not read yet through this topic's readers, in the order they were produced; marks them read. */
  readRecords(): Array<TestOutputRecord<V>> {
    return this.driver.readFrom(this.name).map((record) => ({
      topic: this.name, partition: record.partition, offset: record.offset, timestamp: record.timestamp,
      key: record.key, value: plain(this.driver.decode(record.value)) as V, headers: record.headers,
    }));
  }

  readValues(): V[] {
    return this.readRecords().map((record) => record.value);
  }

  readKeyValues(): Array<[string | null, V]> {
    return this.readRecords().map((record) => [record.key, record.value]);
  }

  /** Every record the topic holds, read or not, oldest timestamp first. */
  allRecords(): Array<TestOutputRecord<V>> {
    return this.driver.storedRecords(this.name).map((record) => ({
      topic: this.name, partition: record.partition, offset: record.offset, timestamp: record.timestamp,
      key: record.key, value: plain(this.driver.decode(record.value)) as V, headers: record.headers,
    }));
  }

  get queueSize(): number {
    return this.driver.unread(this.name);
  }

  isEmpty(): boolean {
    return this.queueSize === 0;
  }
}

interface ConnectorState {
  readonly model: ComponentModel;
  readonly abort: AbortController;
  instance: Source | Sink;
  /** Sink: how far into each input topic's records it has written. */
  readonly positions: Map<string, number>;
  forwards: Array<{ output: string; record: OutputRecord }>;
  health: { readonly state: ConnectorHealth; readonly detail?: string };
}

interface DriverTimer {
  readonly task: DriverTask;
  readonly intervalMs: number;
  readonly callback: (now: number) => Promise<void | boolean> | void | boolean;
  next: number;
  readonly sequence: number;
}

/** A reference table fed from its topic's records as they are appended (latest value per key; tombstones delete). */
class DriverTable implements ReferenceTableView {
  readonly topic: string;
  private readonly byKey = new Map<string, unknown>();
  /** Keyed by a value field: record key -> the field value it is indexed under. */
  private readonly fieldOf = new Map<string, string>();

  constructor(private readonly spec: TableSpec) {
    this.topic = spec.topic;
  }

  apply(key: string | null, value: unknown): void {
    if (key === null) return;
    if (!this.spec.keyField) {
      if (value === null) this.byKey.delete(key);
      else this.byKey.set(key, value);
      return;
    }
    const previous = this.fieldOf.get(key);
    if (previous !== undefined) this.byKey.delete(previous);
    this.fieldOf.delete(key);
    const field = value === null ? undefined : readPath(value, this.spec.keyField);
    if (field === undefined || field === null || field === false) return;
    this.byKey.set(String(field), value);
    this.fieldOf.set(key, String(field));
  }

  get(key: string): unknown {
    return this.byKey.get(key);
  }

  get size(): number {
    return this.byKey.size;
  }
}

interface TaskSettings extends ProcessorModel {
  readonly partition: number;
  readonly inputPartitions: number;
  readonly repartitions: ReadonlyMap<string, string>;
  readonly tables: ReadonlyMap<string, DriverTable>;
  readonly stores: readonly StoreSpec[];
  readonly phiPaths: ReadonlyMap<string, readonly string[]>;
  readonly logger: Logger;
  readonly metrics: RuntimeMetrics;
}

/** One partition of one processor, handled as src/runtime/processor-task.ts handles it, with each record its own transaction. */
class DriverTask {
  readonly label: string;
  readonly partition: number;
  private readonly stores = new Map<string, TransactionalStore>();
  private processor!: Processor;
  private forwards: Array<{ topic: string; record: OutputRecord }> = [];
  private repartitioned: Array<{ topic: string; record: Omit<StoredRecord, 'offset'> }> = [];
  private deadLettered: Array<Omit<StoredRecord, 'offset'>> = [];
  private current: { input: InputRecord; raw: StoredRecord; origin: string } | undefined;
  private readonly repartitionNames: ReadonlyMap<string, string>;
  readonly context: ProcessorContext;

  constructor(private readonly driver: TopologyTestDriver, private readonly settings: TaskSettings) {
    this.label = settings.label;
    this.partition = settings.partition;
    this.repartitionNames = new Map([...settings.repartitions].map(([name, topic]) => [topic, name]));
    const task = this;
    this.context = {
      label: settings.label,
      partition: settings.partition,
      logger: settings.logger,
      metricsRegistry: settings.metrics.registry,
      store<V>(name: string): KeyValueStore<V> {
        return task.storeNamed(name) as unknown as KeyValueStore<V>;
      },
      forward(output, record) {
        const topic = settings.outputs[output];
        if (!topic) throw new Error(`processor ${settings.label} forwarded to output "${output}", which is not mapped; mapped: ${Object.keys(settings.outputs).join(', ')}`);
        task.forwards.push({ topic, record });
      },
      table<V>(name: string): ReferenceTableView<V> {
        const table = settings.tables.get(name);
        if (!table) throw new Error(`processor ${settings.label} did not declare a table named ${name}; declared: ${[...settings.tables.keys()].join(', ') || 'none'}`);
        return table as ReferenceTableView<V>;
      },
      hasOutput: (output) => settings.outputs[output] !== undefined,
      count: (event, n = 1) => settings.metrics.recordProcessorEvent(settings.label, event, n),
      partitionGauge: (spec) => PartitionGauges.of(settings.metrics.registry).gauge(spec, settings.label, settings.partition),
      now: () => driver.now(),
      deadLetter(record, error) {
        const text = scrubPhiFromText(error.message, record.value, settings.phiPaths.get(record.topic) ?? []);
        task.deadLettered.push(task.deadLetterRecord(error, text, record.topic, { partition: record.partition, offset: record.offset, key: record.key, value: record.rawValue, headers: { ...record.headers } }));
      },
      repartition(name, key) {
        const topic = settings.repartitions.get(name);
        if (!topic) throw new Error(`processor ${settings.label} did not declare a repartition named ${name}`);
        const current = task.current;
        if (!current) throw new Error('repartition() sends the record being processed; call it from process()');
        task.repartitioned.push({
          topic,
          record: {
            partition: partitionForKey(key, settings.inputPartitions), key, value: current.raw.value, timestamp: current.raw.timestamp,
            headers: { ...current.input.headers, [REPARTITION_ORIGIN_HEADER]: current.origin },
          },
        });
      },
      schedule(intervalMs, callback) {
        if (!(intervalMs > 0)) throw new Error(`schedule needs an interval > 0 ms (got ${intervalMs})`);
        driver.recordTimer({ task, intervalMs, callback });
      },
    };
  }

  reads(topic: string): boolean {
    return this.settings.inputs.includes(topic) || this.repartitionNames.has(topic);
  }

  storeNamed(name: string): TransactionalStore {
    const store = this.stores.get(name);
    if (!store) throw new Error(`processor ${this.label} did not declare a store named ${name}; declared: ${[...this.stores.keys()].join(', ') || 'none'}`);
    return store;
  }

  async open(): Promise<void> {
    for (const spec of this.settings.stores) {
      const changelog = `_lifeline.test.${this.label}.${spec.name}.changelog`;
      this.stores.set(spec.name, new TransactionalStore(spec.name, changelog, new MemoryStoreBackend(), spec.ttlMs, () => this.driver.now()));
    }
    this.processor = this.settings.definition.create(this.settings.config as never);
    await this.processor.init?.(this.context);
  }

  async handle(topic: string, raw: StoredRecord): Promise<void> {
    const via = this.repartitionNames.get(topic);
    const origin = via === undefined ? topic : raw.headers[REPARTITION_ORIGIN_HEADER] ?? topic;
    let input: InputRecord | undefined;
    try {
      const value = this.driver.decode(raw.value);
      input = {
        topic: origin, partition: this.partition, offset: raw.offset, timestamp: raw.timestamp, key: raw.key, value, headers: raw.headers,
        rawValue: raw.value, ...(via !== undefined ? { via } : {}),
      };
      this.current = { input, raw, origin };
      await this.processor.process(input, this.context);
      await this.accept(raw.headers);
    } catch (error) {
      this.discard();
      if (isRetriable(error)) {
        // The runtime would retry the whole transaction; in the driver the test decides.
        throw error;
      }
      const text = scrubPhiFromText(errorMessage(error), input?.value, this.settings.phiPaths.get(topic) ?? []);
      this.applyErrorPolicy(error, text, topic, raw);
    } finally {
      this.current = undefined;
    }
    this.settings.metrics.recordIn(this.label, topic);
  }

  /** As the runtime: a callback returning true has more due and is called again (each call its own transaction). */
  async punctuate(callback: (now: number) => Promise<void | boolean> | void | boolean, now: number): Promise<void> {
    for (let chunk = 0; chunk < 1000; chunk++) {
      let more: void | boolean;
      try {
        more = await callback(now);
        await this.accept({});
      } catch (error) {
        this.discard();
        throw error;
      }
      if (more !== true) return;
    }
  }

  async expireStores(): Promise<void> {
    for (const store of this.stores.values()) if (store.expire(Number.MAX_SAFE_INTEGER) > 0) await store.commitTransaction();
  }

  async close(): Promise<void> {
    await this.processor.close?.();
    PartitionGauges.of(this.settings.metrics.registry).forget(this.label, this.partition);
    for (const store of this.stores.values()) await store.close();
  }

  /** The record (or timer) succeeded: its outputs are produced and its store writes committed. */
  private async accept(inputHeaders: Record<string, string>): Promise<void> {
    // Encode everything first: one output that does not match its schema fails the whole record, as in the runtime.
    const encoded = this.forwards.map(({ topic, record }) => {
      const partitions = this.driver.topic(topic).partitions;
      // As the runtime places outputs (processor-task.ts placement()): by key, unless the processor preserves partitioning.
      const same = partitions === this.settings.inputPartitions;
      const preserves = this.settings.definition.preservesPartitioning?.(this.settings.config as never) ?? false;
      const partition = record.partition ?? ((preserves && same) || (record.key === null && same) ? this.partition : this.driver.partitionFor(topic, record.key));
      return { topic, record: { partition, key: record.key, value: this.driver.encode(topic, record.value), timestamp: this.driver.now(), headers: { ...inputHeaders, ...(record.headers ?? {}) } } };
    });
    for (const { topic, record } of encoded) {
      this.driver.append(topic, record);
      this.settings.metrics.recordOut(this.label, topic);
    }
    for (const { topic, record } of this.repartitioned) this.driver.append(topic, record);
    for (const record of this.deadLettered) this.driver.append(deadLetterTopic(this.label), record);
    this.forwards = [];
    this.repartitioned = [];
    this.deadLettered = [];
    for (const store of this.stores.values()) {
      store.acceptRecord();
      await store.commitTransaction();
    }
  }

  private discard(): void {
    this.forwards = [];
    this.repartitioned = [];
    this.deadLettered = [];
    for (const store of this.stores.values()) store.discardRecord();
  }

  private applyErrorPolicy(error: unknown, text: string, topic: string, raw: StoredRecord): void {
    const code = errorCode(error);
    if (this.settings.onError === 'fail') {
      throw new ProcessingHaltedError(`${this.label}: record ${topic}/${this.partition}@${raw.offset} failed (${code}) and on_error is fail: ${text}`);
    }
    if (this.settings.onError === 'continue') return;
    this.driver.append(deadLetterTopic(this.label), this.deadLetterRecord(error, text, topic, raw));
  }

  private deadLetterRecord(error: unknown, text: string, topic: string, raw: Pick<StoredRecord, 'partition' | 'offset' | 'key' | 'value' | 'headers'>): Omit<StoredRecord, 'offset'> {
    const message = deadLetterMessage({
      component: this.label, error, errorText: text, attempts: 1,
      origin: { topic, partition: raw.partition, offset: raw.offset },
      key: raw.key, value: raw.value, headers: raw.headers,
    });
    const headers = headersAsStrings(message.headers);
    headers[DEAD_LETTER_HEADERS.failedAt] = new Date(this.driver.now()).toISOString();
    this.settings.metrics.recordDeadLetter(this.label, errorCode(error));
    return { partition: 0, key: raw.key, value: raw.value, timestamp: this.driver.now(), headers };
  }
}
