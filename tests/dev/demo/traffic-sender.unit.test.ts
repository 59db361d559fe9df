import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Delivery } from '../../../dev/demo/partner-traffic.ts';
import { sendTraffic } from '../../../dev/demo/traffic-sender.ts';

test('onSend fires when a delivery goes out, after the pacing a file\'s rows impose; beforeDelivery fires before it', async () => {
  const requests: number[] = [];
  const server = createServer((request, response) => {
    requests.push(Date.now());
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"accepted"}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const inboxDir = mkdtempSync(join(tmpdir(), 'lifeline-sender-'));
  try {
    const rate = 100;
    const deliveries: Delivery[] = [
      { kind: 'file', partner: 'walgreens', fileName: 'rows.csv', body: 'a\n', newRows: 40, repeatedRows: 0, droppedTwice: false },
      { kind: 'webhook', partner: 'quest_lab', contentType: 'application/hl7-v2', body: 'MSH|', webhookId: 'msg_1', role: 'original', entityKey: 'k1' },
    ];
    const before: number[] = [];
    const sent: number[] = [];
    const stats = await sendTraffic(deliveries, {
      webhookUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      secrets: { quest_lab: `whsec_${Buffer.alloc(32, 7).toString('base64')}` },
      inboxDir, ratePerSecond: rate,
      beforeDelivery: () => { before.push(Date.now()); },
      onSend: () => { sent.push(Date.now()); },
    });
    assert.equal(stats.accepted, 1);
    assert.equal(sent.length, 2);
    // The file's 40 rows at 100 events/s hold the webhook back 400 ms: beforeDelivery is called before that wait, onSend after it.
    const held = (sent[1] as number) - (sent[0] as number);
    assert.ok(held >= 380, `the webhook went ${held} ms after the file`);
    assert.ok((sent[1] as number) - (before[1] as number) >= 350, 'beforeDelivery came before the pacing wait');
    assert.ok((requests[0] as number) - (sent[1] as number) < 300, 'the request follows onSend at once');
  } finally {
    server.close();
    rmSync(inboxDir, { recursive: true, force: true });
  }
});
