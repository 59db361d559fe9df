import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * The Odoo connectors' own metrics, on the runtime's registry. Several connectors share one
 * process and registry, so each metric is registered once and reused. Labels are component
 * labels, Odoo operations (`res.partner.search_read`) and error codes — never record content.
 */
export class OdooMetrics {
  private readonly reachable: Gauge<'component'>;
  private readonly failures: Counter<'component' | 'code'>;
  private readonly calls: Histogram<'component' | 'operation'>;
  private readonly writes: Counter<'component' | 'outcome'>;

  constructor(registry: Registry, private readonly component: string) {
    this.reachable = reuse(registry, 'lifeline_odoo_reachable', () => new Gauge({
      name: 'lifeline_odoo_reachable', help: '1 while the component\'s last Odoo call got an answer, 0 while Odoo is unreachable.',
      labelNames: ['component'], registers: [registry],
    }));
    this.failures = reuse(registry, 'lifeline_odoo_call_failures_total', () => new Counter({
      name: 'lifeline_odoo_call_failures_total', help: 'Odoo calls that failed, by error code (LL_ODOO_UNAVAILABLE while Odoo is down).',
      labelNames: ['component', 'code'], registers: [registry],
    }));
    this.calls = reuse(registry, 'lifeline_odoo_call_seconds', () => new Histogram({
      name: 'lifeline_odoo_call_seconds', help: 'Duration of Odoo XML-RPC calls that answered.',
      labelNames: ['component', 'operation'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry],
    }));
    this.writes = reuse(registry, 'lifeline_odoo_writes_total', () => new Counter({
      name: 'lifeline_odoo_writes_total', help: 'Records odoo_sink upserted, by outcome (created, updated, unchanged, skipped_older: an older event than the record holds, not written).',
      labelNames: ['component', 'outcome'], registers: [registry],
    }));
    this.reachable.set({ component }, 1);
  }

  answered(operation: string, seconds: number): void {
    this.reachable.set({ component: this.component }, 1);
    this.calls.observe({ component: this.component, operation }, seconds);
  }

  failed(code: string, unreachable: boolean): void {
    this.failures.inc({ component: this.component, code });
    if (unreachable) this.reachable.set({ component: this.component }, 0);
  }

  wrote(outcome: 'created' | 'updated' | 'unchanged' | 'skipped_older', count = 1): void {
    this.writes.inc({ component: this.component, outcome }, count);
  }
}

function reuse<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}
