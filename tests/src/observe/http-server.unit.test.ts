import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HealthReport } from '../../../src/observe/http-server.ts';
import { startHttpServer } from '../../../src/observe/http-server.ts';
import { RuntimeMetrics } from '../../../src/observe/metrics.ts';

describe('the operational HTTP server', () => {
  const metrics = new RuntimeMetrics({ collectDefaults: false });
  let report: HealthReport = { live: true, ready: false, components: { charge_dedup: { state: 'starting', detail: 'restoring store from changelog' } } };
  let server: { port: number; close(): Promise<void> };
  let base: string;

  before(async () => {
    server = await startHttpServer({ port: 0, host: '127.0.0.1', metrics, health: () => report });
    base = `http://127.0.0.1:${server.port}`;
  });
  after(async () => server.close());

  test('port 0 resolves to the port actually bound', () => {
    assert.ok(server.port > 0);
  });

  test('GET /metrics answers the registry\'s text with its content type', async () => {
    metrics.recordIn('charge_dedup', 'partner.lab_charge.received.v1', 2);
    const response = await fetch(`${base}/metrics`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), metrics.contentType);
    assert.match(await response.text(), /^lifeline_records_in_total\{component="charge_dedup",topic="partner\.lab_charge\.received\.v1"\} 2$/m);
  });

  test('/healthz and /readyz answer 200 or 503 from the report, with the report as JSON', async () => {
    const live = await fetch(`${base}/healthz`);
    assert.equal(live.status, 200);
    assert.match(String(live.headers.get('content-type')), /^application\/json/);
    assert.deepEqual(await live.json(), report);

    const notReady = await fetch(`${base}/readyz`);
    assert.equal(notReady.status, 503);
    assert.deepEqual(await notReady.json(), report);

    report = { live: true, ready: true, components: { charge_dedup: { state: 'running' } } };
    const ready = await fetch(`${base}/readyz?verbose=1`);
    assert.equal(ready.status, 200, 'a query string does not change the route');
    assert.deepEqual(await ready.json(), report);

    report = { live: false, ready: false, components: { charge_dedup: { state: 'failed', detail: 'LL_KAFKA_UNAVAILABLE' } } };
    const dead = await fetch(`${base}/healthz`);
    assert.equal(dead.status, 503);
    assert.deepEqual(await dead.json(), report);
  });

  test('an unknown path is 404 JSON; another method is 405', async () => {
    const missing = await fetch(`${base}/console`);
    assert.equal(missing.status, 404);
    assert.match(String((await missing.json() as { error: string }).error), /\/console/);

    const posted = await fetch(`${base}/metrics`, { method: 'POST' });
    assert.equal(posted.status, 405);
    assert.equal(posted.headers.get('allow'), 'GET, HEAD');
    await posted.body?.cancel();
  });

  test('a failing health callback answers 500 instead of crashing the process', async () => {
    // Without a host, so the default (0.0.0.0) is exercised too.
    const failing = await startHttpServer({ port: 0, metrics, health: () => { throw new Error('store closed'); } });
    try {
      const response = await fetch(`http://127.0.0.1:${failing.port}/healthz`);
      assert.equal(response.status, 500);
      assert.deepEqual(await response.json(), { error: 'store closed' });
    } finally {
      await failing.close();
    }
  });

  test('close() returns promptly although the client keeps its connection alive', async () => {
    const shortLived = await startHttpServer({ port: 0, host: '127.0.0.1', metrics, health: () => report });
    await (await fetch(`http://127.0.0.1:${shortLived.port}/metrics`)).text();
    const started = Date.now();
    await shortLived.close();
    assert.ok(Date.now() - started < 1_000, `close took ${Date.now() - started} ms`);
    await assert.rejects(fetch(`http://127.0.0.1:${shortLived.port}/metrics`));
  });
});
