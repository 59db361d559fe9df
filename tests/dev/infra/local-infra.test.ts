import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { infraStatus } from '../../../dev/infra/local-infra.ts';
import { assertPortFree } from '../../../dev/infra/java-process.ts';
import { infra } from '../../../testing/harness.ts';

test('status reports both the broker and the registry answering', async () => {
  await infra();
  const status = await infraStatus();
  assert.equal(status.length, 2);
  for (const component of status) assert.equal(component.answering, true, `${component.name} answers`);
});

test('a port taken by another program is reported clearly', async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  try {
    await assert.rejects(assertPortFree('127.0.0.1', port, 'Kafka broker'), new RegExp(`port 127\\.0\\.0\\.1:${port} \\(Kafka broker\\) is already in use`));
  } finally {
    server.close();
  }
});
