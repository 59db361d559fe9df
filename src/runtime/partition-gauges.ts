import { Gauge, type Registry } from 'prom-client';
import type { PartitionGauge, PartitionGaugeSpec } from '../component/component.ts';

/**
 * Gauges a stateful processor reports per partition, exposed per process: every task sets its own
 * partition's value, and the series shows the sum (counts) or the maximum (ages) over the
 * partitions this process owns. A partition that leaves (rebalance, stop) stops counting at once.
 * The series carry the component label and the processor's own labels, never a partition label
 * (Prometheus sums over processes). One instance per registry, shared by every task.
 */
export class PartitionGauges {
  private static readonly byRegistry = new WeakMap<Registry, PartitionGauges>();

  static of(registry: Registry): PartitionGauges {
    let gauges = PartitionGauges.byRegistry.get(registry);
    if (!gauges) {
      gauges = new PartitionGauges(registry);
      PartitionGauges.byRegistry.set(registry, gauges);
    }
    return gauges;
  }

  private readonly gauges = new Map<string, { gauge: Gauge<string>; aggregate: 'sum' | 'max' }>();
  /** metric -> series (labels as JSON) -> partition owner (`component/partition`) -> value. */
  private readonly values = new Map<string, Map<string, Map<string, number>>>();

  private constructor(private readonly registry: Registry) {}

  /** The gauge for `spec`, registered once; `component` and `partition` say whose values `set` reports. */
  gauge(spec: PartitionGaugeSpec, component: string, partition: number): PartitionGauge {
    let entry = this.gauges.get(spec.name);
    if (!entry) {
      const existing = this.registry.getSingleMetric(spec.name);
      if (existing !== undefined) throw new Error(`metric ${spec.name} is already registered by something other than a partition gauge`);
      entry = {
        gauge: new Gauge({ name: spec.name, help: spec.help, labelNames: ['component', ...(spec.labelNames ?? [])], registers: [this.registry] }),
        aggregate: spec.aggregate,
      };
      this.gauges.set(spec.name, entry);
    } else if (entry.aggregate !== spec.aggregate) {
      throw new Error(`partition gauge ${spec.name} is declared with both ${entry.aggregate} and ${spec.aggregate}`);
    }
    const owner = `${component}/${partition}`;
    return {
      set: (labels, value) => this.set(spec.name, { ...labels, component }, owner, value),
    };
  }

  /** The partition no longer counts here (its task closed): every series it reported is recomputed. */
  forget(component: string, partition: number): void {
    const owner = `${component}/${partition}`;
    for (const [name, series] of this.values) {
      for (const [key, owners] of series) {
        if (owners.delete(owner)) this.publish(name, key, owners);
      }
    }
  }

  private set(name: string, labels: Record<string, string>, owner: string, value: number): void {
    let series = this.values.get(name);
    if (!series) {
      series = new Map();
      this.values.set(name, series);
    }
    const key = JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
    let owners = series.get(key);
    if (!owners) {
      owners = new Map();
      series.set(key, owners);
    }
    owners.set(owner, value);
    this.publish(name, key, owners);
  }

  private publish(name: string, key: string, owners: ReadonlyMap<string, number>): void {
    const entry = this.gauges.get(name);
    if (!entry) return;
    const labels = Object.fromEntries(JSON.parse(key) as Array<[string, string]>);
    const values = [...owners.values()];
    const value = entry.aggregate === 'sum' ? values.reduce((sum, each) => sum + each, 0) : Math.max(0, ...values);
    entry.gauge.set(labels, value);
  }
}
