import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { PartitionGauges } from '../../../src/runtime/partition-gauges.ts';

async function value(registry: Registry, name: string, labels: string): Promise<number | undefined> {
  const match = new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, 'm').exec(await registry.metrics());
  return match ? Number(match[1]) : undefined;
}

test('partition gauges show the sum or the maximum over the partitions a process owns, and drop a partition that leaves', async () => {
  const registry = new Registry();
  const gauges = PartitionGauges.of(registry);
  const open = { name: 'test_open', help: 'open', labelNames: ['flow'], aggregate: 'sum' as const };
  const oldest = { name: 'test_oldest_seconds', help: 'oldest', labelNames: ['flow'], aggregate: 'max' as const };
  gauges.gauge(open, 'sla', 0).set({ flow: 'a' }, 3);
  gauges.gauge(open, 'sla', 1).set({ flow: 'a' }, 4);
  gauges.gauge(open, 'other', 0).set({ flow: 'a' }, 100);
  gauges.gauge(oldest, 'sla', 0).set({ flow: 'a' }, 10);
  gauges.gauge(oldest, 'sla', 1).set({ flow: 'a' }, 25);
  assert.equal(await value(registry, 'test_open', 'component="sla",flow="a"'), 7);
  assert.equal(await value(registry, 'test_open', 'component="other",flow="a"'), 100, 'components apart');
  assert.equal(await value(registry, 'test_oldest_seconds', 'component="sla",flow="a"'), 25);
  gauges.gauge(open, 'sla', 1).set({ flow: 'a' }, 1);
  assert.equal(await value(registry, 'test_open', 'component="sla",flow="a"'), 4, 'a partition replaces its own value');
  gauges.forget('sla', 1);
  assert.equal(await value(registry, 'test_open', 'component="sla",flow="a"'), 3);
  assert.equal(await value(registry, 'test_oldest_seconds', 'component="sla",flow="a"'), 10);
  gauges.forget('sla', 0);
  assert.equal(await value(registry, 'test_open', 'component="sla",flow="a"'), 0, 'no partition left: 0, not a stale value');
  assert.equal(PartitionGauges.of(registry), gauges, 'one per registry');
  assert.throws(() => gauges.gauge({ ...open, aggregate: 'max' }, 'sla', 0), /both sum and max/);
});
