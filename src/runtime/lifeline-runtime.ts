import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { LifelineError, errorMessage } from '../errors.ts';
import { AvroSerde } from '../kafka/avro-serde.ts';
import { createKafka } from '../kafka/client.ts';
import { ensureTopics, type TopicSpec } from '../kafka/topic-admin.ts';
import { startHttpServer, type HealthReport, type RunningHttpServer } from '../observe/http-server.ts';
import { kafkaLogCreator } from '../observe/logger.ts';
import { RuntimeMetrics } from '../observe/metrics.ts';
import { deadLetterTopic, type ComponentDeclaration, type Topology } from '../topology/model.ts';
import type { ComponentRegistry } from './component-registry.ts';
import type { ProcessorDefinition, SinkDefinition, SourceDefinition } from './component.ts';
import { ControlListener } from './control-listener.ts';
import { CONTROL_TOPIC, CONTROL_TOPIC_RETENTION_MS } from './control-protocol.ts';
import { ProcessorHost } from './processor-host.ts';
import { SinkHost } from './sink-host.ts';
import { SOURCE_OFFSETS_TOPIC, SourceHost } from './source-host.ts';
import { StatusPublisher } from './status-publisher.ts';

/** What the runtime needs of a processor, source or sink host. */
interface ComponentHost {
  readonly state: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  describe(): { state: string; detail: string };
}

export interface RuntimeOptions {
  readonly topology: Topology;
  readonly registry: ComponentRegistry;
  readonly logger: Logger;
  /** Labels to run; all components when empty. */
  readonly only?: readonly string[];
  /** Overrides runtime.http_port (0 = any free port). */
  readonly httpPort?: number;
  readonly sessionTimeoutMs?: number;
}

/** Dead letters are kept a month: long enough to fix the cause and replay. */
const DEAD_LETTER_RETENTION_MS = 30 * 24 * 3600 * 1000;

/**
 * `lifeline run`: prepares Kafka for the selected components (declared topics, dead-letter and
 * changelog topics, registered schemas), hosts them, and serves /metrics, /healthz, /readyz.
 */
export class LifelineRuntime {
  readonly metrics = new RuntimeMetrics();
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private readonly hosts = new Map<string, ComponentHost>();
  private http: RunningHttpServer | undefined;
  private control: ControlListener | undefined;
  private status: StatusPublisher | undefined;
  private stopping: Promise<void> | undefined;
  private fatal: Error | undefined;
  private readonly fatalListeners: Array<(error: Error) => void> = [];

  constructor(private readonly options: RuntimeOptions) {
    this.kafka = createKafka(options.topology.kafka, kafkaLogCreator(options.logger));
  }

  selected(): ComponentDeclaration[] {
    const all = Object.values(this.options.topology.components);
    const only = this.options.only ?? [];
    if (only.length === 0) return all;
    const unknown = only.filter((label) => !this.options.topology.components[label]);
    if (unknown.length > 0) {
      throw new LifelineError('LL_CONFIG_INVALID', `--only names unknown component(s) ${unknown.join(', ')}; known: ${all.map((c) => c.label).join(', ')}`);
    }
    return all.filter((component) => only.includes(component.label));
  }

  onFatal(listener: (error: Error) => void): void {
    this.fatalListeners.push(listener);
  }

  get port(): number | undefined {
    return this.http?.port;
  }

  async start(): Promise<void> {
    const { topology, registry, logger } = this.options;
    const components = this.selected();
    this.http = await startHttpServer({
      port: this.options.httpPort ?? topology.runtime.httpPort,
      metrics: this.metrics,
      health: () => this.health(),
      logger,
    });
    logger.info({ port: this.http.port }, 'serving /metrics, /healthz and /readyz');

    this.admin = this.kafka.admin();
    await this.admin.connect();
    for (const component of components) {
      const definition = registry.get(component.type);
      const common = {
        kafka: this.kafka,
        serde: new AvroSerde(topology.registry),
        metrics: this.metrics,
        logger,
        topology,
        declaration: component,
        onFatal: (error: Error) => this.raiseFatal(error),
        ...(this.options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.options.sessionTimeoutMs } : {}),
      };
      if (definition.kind === 'processor') {
        this.hosts.set(component.label, new ProcessorHost({ ...common, admin: this.admin, definition: definition as ProcessorDefinition }));
      } else if (definition.kind === 'source') {
        this.hosts.set(component.label, new SourceHost({ ...common, definition: definition as SourceDefinition }));
      } else {
        this.hosts.set(component.label, new SinkHost({ ...common, definition: definition as SinkDefinition }));
      }
    }

    await this.prepareKafka(components);
    // Listening before any group is joined, so an operator's pause never finds a host deaf to it.
    this.control = new ControlListener({
      kafka: this.kafka, admin: this.admin, logger, appId: topology.runtime.appId,
      hosts: () => [...this.hosts.values()].filter((host) => host instanceof ProcessorHost || host instanceof SinkHost),
    });
    await this.control.start();
    for (const host of this.hosts.values()) await host.start();
    this.status = new StatusPublisher({ kafka: this.kafka, admin: this.admin, metrics: this.metrics, logger, appId: topology.runtime.appId, health: () => this.health() });
    await this.status.start();
    logger.info({ components: components.map((component) => component.label) }, 'lifeline running');
  }

  /** Declared topics, dead-letter topics and store changelogs exist; every declared schema is registered. */
  private async prepareKafka(components: readonly ComponentDeclaration[]): Promise<void> {
    const { topology, logger } = this.options;
    const specs: TopicSpec[] = Object.values(topology.topics).map((topic) => ({
      name: topic.name,
      partitions: topic.partitions,
      ...(topic.compact ? { cleanupPolicy: 'compact' as const } : {}),
      ...(topic.retentionMs !== undefined ? { retentionMs: topic.retentionMs } : {}),
    }));
    for (const component of components) {
      specs.push({ name: deadLetterTopic(component.label), partitions: 1, retentionMs: DEAD_LETTER_RETENTION_MS });
    }
    for (const host of this.hosts.values()) {
      if (!(host instanceof ProcessorHost)) continue;
      for (const changelog of host.changelogTopics()) specs.push({ name: changelog.name, partitions: changelog.partitions, cleanupPolicy: 'compact' });
      for (const internal of host.internalTopics()) specs.push({ name: internal.name, partitions: internal.partitions, retentionMs: 7 * 24 * 3600 * 1000 });
    }
    specs.push({ name: CONTROL_TOPIC, partitions: 1, retentionMs: CONTROL_TOPIC_RETENTION_MS });
    if ([...this.hosts.values()].some((host) => host instanceof SourceHost)) {
      specs.push({ name: SOURCE_OFFSETS_TOPIC, partitions: 1, cleanupPolicy: 'compact' });
    }
    const result = await ensureTopics(this.admin as Admin, specs);
    if (result.created.length > 0) logger.info({ created: result.created }, 'topics created');
    if (result.updated.length > 0) logger.info({ updated: result.updated }, 'topic configuration updated');
    const serde = new AvroSerde(topology.registry);
    for (const topic of Object.values(topology.topics)) await serde.register(topic.name, topic.contract);
  }

  health(): HealthReport {
    const components: Record<string, { state: string; detail?: string }> = {};
    for (const [label, host] of this.hosts) components[label] = host.describe();
    // A connector whose target is down reports it in describe(): the process is live but not ready.
    const states = Object.values(components).map((component) => component.state);
    return {
      live: this.fatal === undefined,
      ready: this.fatal === undefined && states.length > 0 && states.every((state) => state === 'running'),
      components,
    };
  }

  private raiseFatal(error: Error): void {
    if (this.fatal) return;
    this.fatal = error;
    for (const listener of this.fatalListeners) listener(error);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.status?.stop();
      await this.control?.stop();
      for (const host of this.hosts.values()) {
        await host.stop().catch((error: unknown) => this.options.logger.error({ err: errorMessage(error) }, 'stopping a processor failed'));
      }
      await this.admin?.disconnect().catch(() => undefined);
      await this.http?.close();
    })();
    return this.stopping;
  }
}
