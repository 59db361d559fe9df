import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REPLAY_HEADERS, replayMessage, selectForReplay, type DeadLetter } from '../../src/ops/dead-letter-replay.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { downstreamReach } from '../../src/ops/topology-lineage.ts';
import { testComponentRegistry, topologyFixtureDir, VALID_TOPOLOGY, writeFixture } from '../../testing/topology-fixtures.ts';

function letter(offset: number, extra: Partial<DeadLetter> = {}): DeadLetter {
  return {
    topic: 'ops.dlq.sink.v1', partition: 0, offset: String(offset), position: `ops.dlq.sink.v1/0@${offset}`, failedAt: 1000 + offset,
    key: `K${offset}`, value: Buffer.from([0, 0, 0, 0, 1, offset]), errorClass: 'LL_ODOO_USER_ERROR', errorMessage: 'rule', component: 'sink', attempts: 1,
    origin: { topic: 'lab.charge.received.v1', partition: 2, offset: String(500 + offset) }, replayCount: 0,
    headers: {
      'lifeline.idempotency-key': `charge-${offset}`, 'lifeline.correlation-id': `c-${offset}`,
      'lifeline.error.class': 'LL_ODOO_USER_ERROR', 'lifeline.origin.topic': 'lab.charge.received.v1', 'lifeline.error.failed-at': 'x',
    },
    ...extra,
  };
}

test('replay selection skips what was replayed, what is out of retry budget and what has no origin, and defers beyond --max', () => {
  const letters = [letter(1), letter(2), letter(3, { replayCount: 3 }), letter(4), letter(5), letter(6, { origin: { topic: '', partition: -1, offset: '' } })];
  const markers = new Map([['ops.dlq.sink.v1/0@2', { replay_id: 'r', at: 1, by: 'otto', origin_topic: 'lab.charge.received.v1' }]]);
  const selection = selectForReplay(letters, markers, { maxAttempts: 3, max: 2 });
  assert.deepEqual(selection.selected.map((item) => item.offset), ['1', '4']);
  assert.deepEqual(selection.alreadyReplayed.map((item) => item.offset), ['2']);
  assert.deepEqual(selection.budgetExhausted.map((item) => item.offset), ['3']);
  assert.deepEqual(selection.deferred.map((item) => item.offset), ['5']);
  assert.deepEqual(selection.missingOrigin.map((item) => item.offset), ['6']);
  assert.deepEqual(selectForReplay(letters, markers, { maxAttempts: 3, includeReplayed: true }).selected.map((item) => item.offset), ['1', '2', '4', '5']);
});

test('a replayed record keeps its own headers and idempotency key, drops the dead-letter headers, and goes back to its partition', () => {
  const message = replayMessage(letter(7, { replayCount: 1 }), { id: 'replay-1', by: 'otto', at: new Date(0) }, 3);
  const headers = message.headers as Record<string, string>;
  assert.equal(headers['lifeline.idempotency-key'], 'charge-7');
  assert.equal(headers['lifeline.correlation-id'], 'c-7');
  assert.equal(headers[REPLAY_HEADERS.count], '2');
  assert.equal(headers[REPLAY_HEADERS.from], 'ops.dlq.sink.v1/0@7');
  assert.equal(headers[REPLAY_HEADERS.by], 'otto');
  assert.ok(!Object.keys(headers).some((name) => name.startsWith('lifeline.error.') || name.startsWith('lifeline.origin.')));
  assert.equal(message.partition, 2);
  assert.equal(message.key, 'K7');
  assert.equal(replayMessage(letter(7), { id: 'r', by: 'o', at: new Date(0) }, 1).partition, undefined, 'a topic with fewer partitions now: by key');
});

test('a replay reaches the components downstream of the topics, and the sinks among them', () => {
  const file = writeFixture(topologyFixtureDir(), 'topology.yaml', `${VALID_TOPOLOGY}connectors:\n  count_sink:\n    type: test_sink\n    inputs: [lab.charge_count.updated.v1]\n`);
  const topology = loadTopology(file, testComponentRegistry());
  const reach = downstreamReach(topology, { topics: ['lab.charge.received.v1'] });
  assert.deepEqual(reach.components, ['count_sink', 'counter']);
  assert.deepEqual(reach.topics, ['lab.charge.received.v1', 'lab.charge_count.updated.v1']);
  assert.deepEqual(reach.sinks, ['count_sink']);
  assert.deepEqual(downstreamReach(topology, { components: ['counter'] }).sinks, ['count_sink'], 'resetting the counter reaches the sink behind it');
});
