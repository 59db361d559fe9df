import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, register as globalRegistry } from 'prom-client';
import { RuntimeMetrics } from '../../../src/observe/metrics.ts';

test('the metrics text carries every runtime metric with its labels after updates', async () => {
  const metrics = new RuntimeMetrics();
  metrics.recordIn('charge_dedup', 'partner.lab_charge.received.v1');
  metrics.recordIn('charge_dedup', 'partner.lab_charge.received.v1', 4);
  metrics.recordOut('charge_dedup', 'billing.lab_charge.deduplicated.v1', 3);
  metrics.recordDeadLetter('odoo_sink', 'LL_SERIALIZE_INVALID');
  metrics.recordRetry('odoo_sink', 'odoo.write');
  metrics.observeProcessing('charge_dedup', 0.002);
  metrics.setLag('charge_dedup', 'partner.lab_charge.received.v1', 2, 17);
  metrics.setUp('charge_dedup', true);
  metrics.setUp('odoo_sink', false);
  metrics.recordTransaction('charge_dedup', 'committed', 0.04);
  metrics.recordTransaction('charge_dedup', 'aborted');

  const text = await metrics.metricsText();
  const expectedLines = [
    'lifeline_records_in_total{component="charge_dedup",topic="partner.lab_charge.received.v1"} 5',
    'lifeline_records_out_total{component="charge_dedup",topic="billing.lab_charge.deduplicated.v1"} 3',
    'lifeline_records_dead_lettered_total{component="odoo_sink",error_class="LL_SERIALIZE_INVALID"} 1',
    'lifeline_retries_total{component="odoo_sink",operation="odoo.write"} 1',
    'lifeline_processing_seconds_bucket{le="0.0005",component="charge_dedup"} 0',
    'lifeline_processing_seconds_bucket{le="0.0025",component="charge_dedup"} 1',
    'lifeline_processing_seconds_bucket{le="10",component="charge_dedup"} 1',
    'lifeline_processing_seconds_count{component="charge_dedup"} 1',
    'lifeline_consumer_lag{group="charge_dedup",topic="partner.lab_charge.received.v1",partition="2"} 17',
    'lifeline_component_up{component="charge_dedup"} 1',
    'lifeline_component_up{component="odoo_sink"} 0',
    'lifeline_transactions_total{component="charge_dedup",result="committed"} 1',
    'lifeline_transactions_total{component="charge_dedup",result="aborted"} 1',
    // Only the committed one was timed.
    'lifeline_transaction_seconds_bucket{le="0.025",component="charge_dedup"} 0',
    'lifeline_transaction_seconds_bucket{le="0.05",component="charge_dedup"} 1',
    'lifeline_transaction_seconds_count{component="charge_dedup"} 1',
  ];
  for (const line of expectedLines) assert.ok(text.split('\n').includes(line), `missing: ${line}\n${text}`);
  assert.match(text, /^process_cpu_user_seconds_total /m, 'default process metrics are collected');
  assert.match(metrics.contentType, /^text\/plain; version=0\.0\.4/);
});

test('removing a partition\'s lag drops its series', async () => {
  const metrics = new RuntimeMetrics({ collectDefaults: false });
  metrics.setLag('enrich', 'billing.charge.v1', 0, 5);
  metrics.setLag('enrich', 'billing.charge.v1', 1, 9);
  metrics.removeLag('enrich', 'billing.charge.v1', 0);
  const text = await metrics.metricsText();
  assert.ok(!text.includes('partition="0"'), text);
  assert.ok(text.includes('lifeline_consumer_lag{group="enrich",topic="billing.charge.v1",partition="1"} 9'), text);
});

test('the processing timer observes elapsed seconds', async () => {
  const metrics = new RuntimeMetrics({ collectDefaults: false });
  const stop = metrics.startProcessingTimer('enrich');
  const seconds = stop();
  assert.ok(seconds >= 0 && seconds < 1);
  assert.match(await metrics.metricsText(), /^lifeline_processing_seconds_count\{component="enrich"\} 1$/m);
});

test('each instance owns its registry: no global state, other modules can add metrics', async () => {
  const first = new RuntimeMetrics({ collectDefaults: false });
  const second = new RuntimeMetrics({ collectDefaults: false, defaultLabels: { instance_role: 'sinks' } });
  first.recordIn('a', 't');
  assert.equal(globalRegistry.getSingleMetric('lifeline_records_in_total'), undefined);
  assert.ok(!(await second.metricsText()).includes('component="a"'));

  new Counter({ name: 'lifeline_odoo_requests_total', help: 'Odoo XML-RPC calls.', labelNames: ['method'], registers: [second.registry] }).inc({ method: 'write' });
  const text = await second.metricsText();
  assert.ok(text.includes('lifeline_odoo_requests_total{method="write",instance_role="sinks"} 1'), text);
});
