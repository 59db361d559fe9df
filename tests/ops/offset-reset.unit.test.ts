import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resetRow, totalToReprocess, type PartitionPosition } from '../../src/ops/offset-reset.ts';

const position = (committed: bigint | undefined, extra: Partial<PartitionPosition> = {}): PartitionPosition =>
  ({ topic: 't', partition: 0, low: 10n, high: 100n, committed, ...extra });

test('targets follow kafka-consumer-groups: earliest, latest, offset and shift are clamped to what the partition holds', () => {
  assert.equal(resetRow(position(80n), { kind: 'earliest' }).target, 10n);
  assert.equal(resetRow(position(80n), { kind: 'latest' }).target, 100n);
  assert.equal(resetRow(position(80n), { kind: 'offset', offset: 50n }).target, 50n);
  const below = resetRow(position(80n), { kind: 'offset', offset: 3n });
  assert.equal(below.target, 10n);
  assert.match(below.note ?? '', /below the earliest offset 10; set to earliest/);
  const beyond = resetRow(position(80n), { kind: 'shift', by: 500n });
  assert.equal(beyond.target, 100n);
  assert.match(beyond.note ?? '', /beyond the latest offset 100/);
  assert.equal(resetRow(position(80n), { kind: 'shift', by: -30n }).target, 50n);
});

test('a datetime reset goes to the first offset at or after the time; records to reprocess are counted from the committed offset', () => {
  const row = resetRow(position(80n, { atTimestamp: 60n }), { kind: 'datetime', at: Date.now() });
  assert.deepEqual([row.current, row.target, row.toReprocess], [80n, 60n, 20n]);
  const forward = resetRow(position(40n, { atTimestamp: 60n }), { kind: 'datetime', at: Date.now() });
  assert.equal(forward.toReprocess, -20n, 'a reset forward skips records');
  assert.equal(totalToReprocess([row, forward]), 20n, 'skipped records are not reprocessed');
});

test('shifting needs a committed offset, as in kafka-consumer-groups; without one the whole partition counts as to reprocess', () => {
  assert.throws(() => resetRow(position(undefined), { kind: 'shift', by: -5n }), { code: 'LL_OFFSETS_INVALID' });
  const row = resetRow(position(undefined), { kind: 'earliest' });
  assert.equal(row.current, undefined);
  assert.equal(row.toReprocess, 90n);
});
