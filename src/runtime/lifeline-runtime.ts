import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';
import { LifelineError, errorMessage } from '../errors.ts';
import { retry, type RetryPolicy } from '../retry.ts';
import { AvroSerde } from '../kafka/avro-serde.ts';
import { createKafka, errorChain, kafkaAccessProblem } from '../kafka/client.ts';
import { ensureTopics, type TopicSpec } from '../kafka/topic-admin.ts';
import { startHttpServer, type HealthReport, type RunningHttpServer } from '../observe/http-server.ts';
import { kafkaLogCreator } from '../observe/logger.ts';
import { RuntimeMetrics } from '../observe/metrics.ts';
import { deadLetterTopic, type ComponentDeclaration, type Topology } from '../topology/model.ts';
import type { ComponentRegistry } from '../component/component-registry.ts';
import type { ProcessorDefinition, SinkDefinition, SourceDefinition } from '../component/component.ts';
import { ControlListener } from './control-listener.ts';
import { CONTROL_TOPIC, CONTROL_TOPIC_RETENTION_MS } from './control-protocol.ts';
import { ProcessorHost } from './processor-host.ts';
import { SinkHost } from './sink-host.ts';
import { SOURCE_OFFSETS_TOPIC, SourceHost } from './source-host.ts';
import { claimStateDirectory, type ClaimedStateDirectory } from './state-directory.ts';
import { STATUS_TOPIC, StatusPublisher } from './status-publisher.ts';

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
/** 16 MiB: dead letters include records too large for their own topic. */
const DEAD_LETTER_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * `lifeline run`: prepares Kafka for the selected components (declared topics, dead-letter and
 * changelog topics, registered schemas), hosts them, and serves /metrics, /healthz, /readyz.
 */
export class LifelineRuntime {
  readonly metrics = new RuntimeMetrics();
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private serde: AvroSerde | undefined;
  private readonly hosts = new Map<string, ComponentHost>();
  private http: RunningHttpServer | undefined;
  private control: ControlListener | undefined;
  private status: StatusPublisher | undefined;
  private stopping: Promise<void> | undefined;
  private readonly stopRequested = new AbortController();
  /** Start steps still waiting, with why (what /healthz and /readyz show as `starting`). */
  private readonly waiting = new Map<string, string>();
  private startingReason: string | undefined;
  private started = false;
  private fatal: Error | undefined;
  private readonly fatalListeners: Array<(error: Error) => void> = [];
  private stateDirectory: ClaimedStateDirectory | undefined;

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

  /**
   * Serves /healthz and /readyz at once, then waits for what the components need: Kafka (topics,
   * configs) and the schema registry (schemas), retrying with backoff while they cannot be reached
   * (health says `starting`, with the reason), then starts every component, each retried on its own
   * until it runs. Resolves when all run; rejects (and health turns not-live) when something fails
   * in a way waiting will not fix: invalid config, an incompatible schema, refused credentials.
   */
  async start(): Promise<void> {
    const { topology, registry, logger } = this.options;
    const components = this.selected();
    this.startingReason = 'starting';
    this.http = await startHttpServer({
      port: this.options.httpPort ?? topology.runtime.httpPort,
      metrics: this.metrics,
      health: () => this.health(),
      logger,
    });
    logger.info({ port: this.http.port }, 'serving /metrics, /healthz and /readyz');
    for (const warning of topology.warnings ?? []) logger.info({ path: warning.path, line: warning.line }, `topology warning: ${warning.message}`);
    // One serde for the whole process: schema ids registered at start are cached for every
    // component, so a registry outage later does not stop encoding what was registered.
    this.serde = new AvroSerde(topology.registry);
    // On-disk stores: this process's own slot of state_dir, so processes sharing a topology.yaml on one host never share a folder.
    // Per-process transactions claim one too, for its number: a transactional id stable per slot lets a
    // restarted process fence its crashed predecessor's open transaction at once, not after its time-out.
    const slotNeeded = topology.runtime.storeKind === 'lmdb' || topology.runtime.transactions === 'per_process';
    if (slotNeeded && components.some((component) => registry.get(component.type).kind === 'processor')) {
      this.stateDirectory ??= claimStateDirectory(topology.runtime.stateDir);
      logger.info({ stateDir: this.stateDirectory.dir }, 'state directory claimed');
    }
    try {
      for (const component of components) registry.get(component.type); // unknown types fail before any wait
      await this.untilStarted('kafka', 'preparing Kafka topics and registering schemas', async () => {
        const admin = this.kafka.admin();
        try {
          await admin.connect();
          this.admin = admin;
          for (const component of components) this.hosts.set(component.label, this.createHost(component, admin));
          await this.prepareKafka(components);
        } catch (error) {
          this.hosts.clear();
          this.admin = undefined;
          await admin.disconnect().catch(() => undefined);
          throw error;
        }
      });
      // Listening before any group is joined, so an operator's pause never finds a host deaf to it.
      await this.untilStarted('control', 'listening for operators\' pause/resume commands', async () => {
        const control = new ControlListener({
          kafka: this.kafka, admin: this.admin as Admin, logger, appId: topology.runtime.appId,
          hosts: () => [...this.hosts.values()].filter((host) => host instanceof ProcessorHost || host instanceof SinkHost),
        });
        this.control = control;
        try {
          await control.start();
        } catch (error) {
          await control.stop().catch(() => undefined);
          throw error;
        }
      });
      this.startingReason = 'starting components';
      await Promise.all(components.map((component) => this.untilStarted(component.label, `starting ${component.label}`, async () => {
        const host = this.hosts.get(component.label) as ComponentHost;
        try {
          await host.start();
        } catch (error) {
          await host.stop().catch(() => undefined);
          // A host is started once: the next attempt gets a fresh one.
          if (!this.stopRequested.signal.aborted) this.hosts.set(component.label, this.createHost(component, this.admin as Admin));
          throw error;
        }
      })));
      // Each process tells the fleet (and the console) what it hosts, on the compacted _lifeline.status topic.
      await this.untilStarted('status', 'publishing the process status', async () => {
        const status = new StatusPublisher({ kafka: this.kafka, admin: this.admin as Admin, metrics: this.metrics, logger, appId: topology.runtime.appId, health: () => this.health() });
        await status.start();
        this.status = status;
      });
    } catch (error) {
      if (this.stopRequested.signal.aborted) return; // stopped while starting: not a failure
      const failure = error instanceof Error ? error : new Error(String(error));
      this.raiseFatal(failure);
      throw failure;
    } finally {
      this.startingReason = undefined;
    }
    if (this.stopRequested.signal.aborted) return;
    this.started = true;
    logger.info({ components: components.map((component) => component.label) }, 'lifeline running');
  }

  /**
   * Runs one start step until it succeeds, waiting with backoff (src/retry.ts) while it fails for a
   * reason that may pass (a broker or registry not reachable yet); anything else is thrown at once.
   */
  private async untilStarted(step: string, what: string, attempt: () => Promise<void>): Promise<void> {
    const { logger } = this.options;
    const signal = this.stopRequested.signal;
    this.waiting.set(step, what);
    // An attempt that neither ends nor fails is said out loud (every 30 s), not waited on in silence.
    const startedAt = Date.now();
    const stillWaiting = setInterval(() => {
      logger.warn({ step, waitingMs: Date.now() - startedAt }, `still waiting to start: ${what}`);
    }, 30_000);
    stillWaiting.unref();
    try {
      await retry(async () => {
        if (signal.aborted) throw new LifelineError('LL_CONFIG_INVALID', 'stopped while starting', { retriable: false });
        try {
          await attempt();
        } catch (error) {
          // Refused credentials, an untrusted certificate, a missing ACL: one message naming the fix.
          throw kafkaAccessProblem(error, this.options.topology.kafka, what) ?? error;
        }
      }, {
        ...START_RETRY_POLICY,
        operation: what,
        signal,
        shouldRetry: (error) => !signal.aborted && !startFailureIsFinal(error),
        onRetry: ({ attempt: number, delayMs, error }) => {
          this.waiting.set(step, `${what}: ${errorMessage(error)} (attempt ${number}, next in ${(delayMs / 1000).toFixed(1)} s)`);
          logger.warn({ step, attempt: number, retryInMs: delayMs, err: errorMessage(error) }, `waiting to start: ${what}`);
        },
      });
    } finally {
      clearInterval(stillWaiting);
      this.waiting.delete(step);
    }
  }

  private createHost(component: ComponentDeclaration, admin: Admin): ComponentHost {
    const { topology, registry, logger } = this.options;
    const definition = registry.get(component.type);
    const common = {
      kafka: this.kafka,
      serde: this.serde as AvroSerde,
      metrics: this.metrics,
      logger,
      topology,
      declaration: component,
      onFatal: (error: Error) => this.raiseFatal(error),
      ...(this.options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: this.options.sessionTimeoutMs } : {}),
    };
    if (definition.kind === 'processor') {
      return new ProcessorHost({ ...common, admin, definition: definition as ProcessorDefinition, ...(this.stateDirectory ? { stateDir: this.stateDirectory.dir } : {}) });
    }
    if (definition.kind === 'source') return new SourceHost({ ...common, definition: definition as SourceDefinition });
    return new SinkHost({ ...common, definition: definition as SinkDefinition });
  }

  /** Every topic the selected components need: declared, dead-letter, changelog, internal and control topics. */
  private topicSpecs(components: readonly ComponentDeclaration[]): TopicSpec[] {
    const { topology } = this.options;
    const specs: TopicSpec[] = Object.values(topology.topics).map((topic) => ({
      name: topic.name,
      partitions: topic.partitions,
      ...(topic.compact ? { cleanupPolicy: 'compact' as const } : {}),
      ...(topic.retentionMs !== undefined ? { retentionMs: topic.retentionMs } : {}),
    }));
    for (const component of components) {
      // Larger than any topic's default limit, so a record dead-lettered as too large still fits.
      specs.push({ name: deadLetterTopic(component.label), partitions: 1, retentionMs: DEAD_LETTER_RETENTION_MS, config: { 'max.message.bytes': String(DEAD_LETTER_MAX_MESSAGE_BYTES) } });
    }
    for (const host of this.hosts.values()) {
      if (!(host instanceof ProcessorHost)) continue;
      for (const changelog of host.changelogTopics()) specs.push({ name: changelog.name, partitions: changelog.partitions, cleanupPolicy: 'compact' });
      for (const internal of host.internalTopics()) specs.push({ name: internal.name, partitions: internal.partitions, retentionMs: 7 * 24 * 3600 * 1000 });
    }
    specs.push({ name: CONTROL_TOPIC, partitions: 1, retentionMs: CONTROL_TOPIC_RETENTION_MS });
    specs.push({ name: STATUS_TOPIC, partitions: 1, cleanupPolicy: 'compact' });
    if ([...this.hosts.values()].some((host) => host instanceof SourceHost)) {
      specs.push({ name: SOURCE_OFFSETS_TOPIC, partitions: 1, cleanupPolicy: 'compact' });
    }
    return specs;
  }

  /**
   * What `lifeline apply` sets up for this runtime, computed without starting anything: the topics
   * (as prepareKafka ensures them) and the resource names the runtime principal reads and writes.
   */
  setupPlan(admin: Admin): { topics: TopicSpec[]; groupPrefixes: string[]; transactionalIdPrefix: string } {
    const components = this.selected();
    this.hosts.clear();
    for (const component of components) this.hosts.set(component.label, this.createHost(component, admin));
    const topics = this.topicSpecs(components);
    this.hosts.clear();
    const appId = this.options.topology.runtime.appId;
    return { topics, groupPrefixes: [`${appId}.`, '_lifeline.'], transactionalIdPrefix: `${appId}.` };
  }


  private async prepareKafka(components: readonly ComponentDeclaration[]): Promise<void> {
    const { topology, logger } = this.options;
    const specs = this.topicSpecs(components);
    const result = await ensureTopics(this.admin as Admin, specs).catch(async (error: unknown) => {
      const denied = kafkaAccessProblem(error, topology.kafka, 'creating or configuring topics');
      if (!denied) throw error;
      // The runtime principal may not create topics (as it should not): say which are missing.
      const existing = new Set(await (this.admin as Admin).listTopics().catch(() => [] as string[]));
      const missing = specs.map((spec) => spec.name).filter((name) => !existing.has(name));
      if (missing.length === 0) throw denied;
      throw new LifelineError('LL_KAFKA_NOT_AUTHORISED',
        `${missing.length} topic(s) do not exist and user "${topology.kafka.sasl?.username ?? '(none)'}" may not create them: ${missing.join(', ')}. `
        + 'Fix: create them with `lifeline apply --execute` run with the admin principal (LIFELINE_KAFKA_ADMIN_USERNAME / LIFELINE_KAFKA_ADMIN_PASSWORD); `lifeline run` never needs to create topics.', { cause: error });
    });
    if (result.created.length > 0) logger.info({ created: result.created }, 'topics created');
    if (result.updated.length > 0) logger.info({ updated: result.updated }, 'topic configuration updated');
    const serde = this.serde as AvroSerde;
    // A registry that cannot be reached is LL_REGISTRY_UNAVAILABLE (retriable): untilStarted waits for it.
    for (const topic of Object.values(topology.topics)) await serde.register(topic.name, topic.contract);
  }

  health(): HealthReport {
    const components: Record<string, { state: string; detail?: string }> = {};
    for (const [label, host] of this.hosts) components[label] = host.describe();
    for (const [step, reason] of this.waiting) if (components[step]) components[step] = { state: 'starting', detail: reason };
    // A connector whose target is down reports it in describe(): the process is live but not ready.
    const states = Object.values(components).map((component) => component.state);
    const starting = this.startingReason === undefined ? undefined : [...this.waiting.values()].join('; ') || this.startingReason;
    return {
      live: this.fatal === undefined,
      ready: this.fatal === undefined && this.started && states.length > 0 && states.every((state) => state === 'running'),
      ...(starting !== undefined ? { starting } : {}),
      ...(this.fatal !== undefined ? { failed: this.fatal.message } : {}),
      components,
    };
  }

  private raiseFatal(error: Error): void {
    if (this.fatal) return;
    this.fatal = error;
    for (const listener of this.fatalListeners) listener(error);
  }

  /**
   * Stops within STOP_DEADLINE_MS: waiting to start ends, every component stops at the same time
   * (transactions in flight commit or abort, consumers leave their groups, connections close), and
   * whatever has not finished by the deadline is logged and left to the broker's session timeout.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const { logger } = this.options;
      const started = Date.now();
      this.stopRequested.abort();
      const pending = new Set<string>();
      const stopOne = async (label: string, stop: () => Promise<void>): Promise<void> => {
        pending.add(label);
        await stop().catch((error: unknown) => logger.error({ component: label, err: errorMessage(error) }, 'stopping a component failed'));
        pending.delete(label);
      };
      const all = Promise.all([
        stopOne('status', async () => { await this.status?.stop(); }),
        stopOne('control', async () => { await this.control?.stop(); }),
        ...[...this.hosts].map(([label, host]) => stopOne(label, () => host.stop())),
      ]);
      const deadline = new Promise<'deadline'>((resolve) => setTimeout(resolve, STOP_DEADLINE_MS, 'deadline').unref());
      if (await Promise.race([all.then(() => 'stopped' as const), deadline]) === 'deadline') {
        logger.warn({ components: [...pending], deadlineMs: STOP_DEADLINE_MS }, 'components did not stop in time; leaving them to the session timeout');
      }
      await Promise.race([this.admin?.disconnect().catch(() => undefined), sleep(500)]);
      this.stateDirectory?.release();
      this.stateDirectory = undefined;
      await this.http?.close();
      logger.info({ ms: Date.now() - started }, 'stopped');
    })();
    return this.stopping;
  }
}

/** Waiting for a broker or registry at start: soon at first, then every 15 s at most, for ever. */
const START_RETRY_POLICY: Partial<RetryPolicy> = { retries: Number.MAX_SAFE_INTEGER, initialDelayMs: 500, maxDelayMs: 15_000, factor: 2, jitter: 0.2 };

/** The budget of a graceful stop (an orchestrator's default grace period is 10 s or more). */
const STOP_DEADLINE_MS = 4_000;

/**
 * Whether a start failure will not pass by waiting: invalid configuration or schemas (LifelineErrors
 * that are not retriable), refused credentials or permissions, a certificate that is not trusted,
 * a programming error. Unreachable brokers and registries (and errors wrapping them) are worth waiting for.
 */
export function startFailureIsFinal(error: unknown): boolean {
  for (const current of errorChain(error)) {
    const { code, type } = current as { code?: unknown; type?: unknown };
    if (current instanceof LifelineError && current.code !== 'LL_RETRY_EXHAUSTED') return !current.retriable;
    if (/SASL|Authentication/i.test(current.name)) return true;
    if (typeof type === 'string' && /AUTHORIZATION_FAILED|SASL_AUTHENTICATION_FAILED|UNSUPPORTED_SASL_MECHANISM/.test(type)) return true;
    if (typeof code === 'string' && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code)) return true;
    if ([TypeError, RangeError, ReferenceError, SyntaxError].some((kind) => current.constructor === kind)) return true;
  }
  return false;
}
