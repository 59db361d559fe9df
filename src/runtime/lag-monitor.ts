import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { errorMessage } from '../errors.ts';
import { BacklogReader } from '../kafka/committed-backlog.ts';
import type { RuntimeMetrics } from '../observe/metrics.ts';

/** How often a host refreshes lifeline_consumer_lag, whether records arrive or not. */
export const LAG_REFRESH_MS = 5000;

/**
 * Keeps `lifeline_consumer_lag` true for the partitions a host owns: per group and partition, the
 * records between the group's committed offset and the last stable offset, transaction markers and
 * aborted records excluded (committed-backlog.ts) — the same numbers `lifeline groups` shows. It is
 * refreshed on a timer, so a host that is not fetching (a sink paused while Odoo is down, a
 * partition with nothing new) still reports its backlog; a partition that leaves loses its series.
 */
export class LagMonitor {
  private timer: NodeJS.Timeout | undefined;
  private readonly reader: BacklogReader;
  private readonly reported = new Set<string>();
  private running: Promise<void> | undefined;

  constructor(private readonly options: {
    kafka: Kafka;
    /** Reads the group's committed offsets; one of its own when absent. */
    admin?: Admin;
    groupId: string;
    metrics: RuntimeMetrics;
    logger: Logger;
    /** The topic partitions this host owns now. */
    owned: () => ReadonlyArray<{ topic: string; partition: number }>;
    intervalMs?: number;
  }) {
    this.reader = new BacklogReader(options.kafka);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => { void this.refresh(); }, this.options.intervalMs ?? LAG_REFRESH_MS);
    this.timer.unref();
  }

  /** One refresh now (also what the timer runs); never throws. */
  refresh(): Promise<void> {
    this.running ??= this.read().finally(() => { this.running = undefined; });
    return this.running;
  }

  private ownAdmin: Admin | undefined;

  private async adminClient(): Promise<Admin> {
    if (this.options.admin) return this.options.admin;
    if (!this.ownAdmin) {
      const admin = this.options.kafka.admin();
      await admin.connect();
      this.ownAdmin = admin;
    }
    return this.ownAdmin;
  }

  private async read(): Promise<void> {
    const { groupId, metrics } = this.options;
    const owned = this.options.owned();
    try {
      const topics = [...new Set(owned.map((entry) => entry.topic))];
      const committed = new Map<string, bigint>();
      if (topics.length > 0) {
        const admin = await this.adminClient();
        for (const { topic, partitions } of await admin.fetchOffsets({ groupId, topics })) {
          for (const { partition, offset } of partitions) if (Number(offset) >= 0) committed.set(`${topic}:${partition}`, BigInt(offset));
        }
      }
      const backlog = await this.reader.read(owned.map(({ topic, partition }) => ({ topic, partition, from: committed.get(`${topic}:${partition}`) ?? null })));
      const now = new Set<string>();
      for (const entry of backlog) {
        const id = `${entry.topic}:${entry.partition}`;
        now.add(id);
        metrics.setLag(groupId, entry.topic, entry.partition, Number(entry.records));
      }
      for (const id of this.reported) {
        if (now.has(id)) continue;
        const at = id.lastIndexOf(':');
        metrics.removeLag(groupId, id.slice(0, at), Number(id.slice(at + 1)));
      }
      this.reported.clear();
      for (const id of now) this.reported.add(id);
    } catch (error) {
      this.options.logger.debug({ err: errorMessage(error) }, 'consumer lag not refreshed this time');
      await this.reader.close();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
    for (const id of this.reported) {
      const at = id.lastIndexOf(':');
      this.options.metrics.removeLag(this.options.groupId, id.slice(0, at), Number(id.slice(at + 1)));
    }
    this.reported.clear();
    await this.reader.close();
    await this.ownAdmin?.disconnect().catch(() => undefined);
    this.ownAdmin = undefined;
  }
}
