import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { subjectsInfo } from '../../src/ops/registry-subjects.ts';

// The catalogue's registry columns against the real registry are checked by tests/console/console-api.test.ts;
// here: a registry that cannot be reached leaves the catalogue standing, each subject saying why.

test('an unreachable registry gives each subject the reason instead of failing the catalogue', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const info = await subjectsInfo({ url: `http://127.0.0.1:${port}/apis/ccompat/v7` }, ['partner.lab_charge.received.v1', 'billing.charge.enriched.v1']);
  assert.equal(info.size, 2);
  for (const [topic, entry] of info) {
    assert.equal(entry.subject, `${topic}-value`);
    assert.equal(entry.registered, false);
    assert.equal(entry.compatibility, null);
    assert.match(entry.error ?? '', /^LL_REGISTRY_UNAVAILABLE: /);
  }
});
