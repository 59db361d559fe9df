import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { ensureTopics } from '../kafka/topic-admin.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';

/**
 * Each `lifeline run` publishes what it hosts to the compacted `_lifeline.status` topic, keyed by
 * its instance id, so the console sees the whole fleet across machines without scraping each one.
 * Values are JSON (an internal topic read only by Lifeline). A clean stop writes a tombstone; a
 * crashed process's last status stays and ages (the console marks it stale after a few periods).
 * Counts come from the runtime's own metrics registry, so they are the same numbers /metrics shows.
 */
export const STATUS_TOPIC = '_lifeline.status';
export const DEFAULT_STATUS_INTERVAL_MS = 5000;

export interface ComponentStatus {
  readonly state: string;
  readonly detail: string;
  readonly records_in: number;
  readonly records_out: number;
  readonly dead_lettered: number;
  /** Records per second over the last publishing period. */
  readonly rate_in: number;
  readonly rate_out: number;
  /** When this process last saw the component read or write a record (epoch ms), null if never. */
  readonly last_record_at: number | null;
}

export interface ProcessStatus {
  readonly instance: string;
  readonly app_id: string;
  readonly host: string;
  readonly pid: number;
  readonly version: string;
  readonly started_at: number;
  readonly at: number;
  readonly interval_ms: number;
  readonly live: boolean;
  readonly ready: boolean;
  readonly components: Readonly<Record<string, ComponentStatus>>;
}

export interface StatusPublisherOptions {
  readonly kafka: Kafka;
  readonly admin: Admin;
  readonly metrics: RuntimeMetrics;
  readonly logger: Logger;
  readonly appId: string;
  /** Defaults to package.json's version. */
  readonly version?: string;
  readonly health: () => { live: boolean; ready: boolean; components: Record<string, { state: string; detail?: string }> };
  readonly intervalMs?: number;
}

/** Sums a counter's values per component label. */
async function perComponent(metrics: RuntimeMetrics, name: string): Promise<Map<string, number>> {
  const sums = new Map<string, number>();
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return sums;
  const { values } = await metric.get();
  for (const entry of values) {
    const component = entry.labels.component;
    if (typeof component !== 'string') continue;
    sums.set(component, (sums.get(component) ?? 0) + entry.value);
  }
  return sums;
}

export class StatusPublisher {
  readonly instance: string;
  private producer: Producer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private previous: { at: number; in: Map<string, number>; out: Map<string, number> } | undefined;
  private readonly lastRecordAt = new Map<string, number>();
  private publishing: Promise<void> = Promise.resolve();

  constructor(private readonly options: StatusPublisherOptions) {
    this.instance = `${options.appId}@${hostname()}:${process.pid}`;
  }

  private get intervalMs(): number {
    return this.options.intervalMs ?? DEFAULT_STATUS_INTERVAL_MS;
  }

  async start(): Promise<void> {
    await ensureTopics(this.options.admin, [{ name: STATUS_TOPIC, partitions: 1, cleanupPolicy: 'compact' }]);
    this.producer = this.options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
    await this.publish();
    this.timer = setInterval(() => {
      this.publishing = this.publishing.then(() => this.publish()).catch((error: unknown) => {
        // Status is best effort: a missed period shows as an older "at", never as a stopped flow.
        this.options.logger.warn({ err: errorMessage(error) }, 'publishing the process status failed');
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  /** The status as it would be published now. */
  async snapshot(): Promise<ProcessStatus> {
    const now = Date.now();
    const [recordsIn, recordsOut, deadLettered] = await Promise.all([
      perComponent(this.options.metrics, 'lifeline_records_in_total'),
      perComponent(this.options.metrics, 'lifeline_records_out_total'),
      perComponent(this.options.metrics, 'lifeline_records_dead_lettered_total'),
    ]);
    const health = this.options.health();
    const seconds = this.previous ? Math.max(0.001, (now - this.previous.at) / 1000) : 0;
    const components: Record<string, ComponentStatus> = {};
    for (const [label, component] of Object.entries(health.components)) {
      const inNow = recordsIn.get(label) ?? 0;
      const outNow = recordsOut.get(label) ?? 0;
      const inBefore = this.previous?.in.get(label) ?? 0;
      const outBefore = this.previous?.out.get(label) ?? 0;
      if (inNow > inBefore || outNow > outBefore) this.lastRecordAt.set(label, now);
      components[label] = {
        state: component.state,
        detail: component.detail ?? '',
        records_in: inNow,
        records_out: outNow,
        dead_lettered: deadLettered.get(label) ?? 0,
        rate_in: seconds > 0 ? round((inNow - inBefore) / seconds) : 0,
        rate_out: seconds > 0 ? round((outNow - outBefore) / seconds) : 0,
        last_record_at: this.lastRecordAt.get(label) ?? null,
      };
    }
    this.previous = { at: now, in: recordsIn, out: recordsOut };
    return {
      instance: this.instance, app_id: this.options.appId, host: hostname(), pid: process.pid, version: this.options.version ?? packageVersion(),
      started_at: this.startedAt, at: now, interval_ms: this.intervalMs, live: health.live, ready: health.ready, components,
    };
  }

  private async publish(): Promise<void> {
    if (!this.producer) return;
    const status = await this.snapshot();
    await this.producer.send({ topic: STATUS_TOPIC, messages: [{ key: this.instance, value: JSON.stringify(status) }] });
  }

  /** Stops publishing and leaves a tombstone, so the console no longer lists this process. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.publishing.catch(() => undefined);
    if (!this.producer) return;
    await this.producer.send({ topic: STATUS_TOPIC, messages: [{ key: this.instance, value: null }] }).catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
    this.producer = undefined;
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

let version: string | undefined;
function packageVersion(): string {
  if (version === undefined) {
    version = 'unknown';
    // From the sources (src/runtime/) or the build (dist/src/runtime/).
    for (const path of ['../../package.json', '../../../package.json']) {
      try {
        version = (JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { name?: string; version?: string }).version ?? 'unknown';
        break;
      } catch {
        // try the next
      }
    }
  }
  return version;
}
