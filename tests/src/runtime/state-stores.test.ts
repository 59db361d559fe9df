import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import type { Consumer, Kafka } from 'kafkajs';
import { buildComponentRegistry } from '../../../src/cli/component-list.ts';
import { createLogger } from '../../../src/observe/logger.ts';
import { LifelineRuntime } from '../../../src/runtime/lifeline-runtime.ts';
import { partitionForKey } from '../../../src/runtime/processor-task.ts';
import { loadTopology } from '../../../src/topology/load-topology.ts';
import { changelogTopic } from '../../../src/topology/model.ts';
import { committedBacklog } from '../../../src/kafka/committed-backlog.ts';
import { testKafka, uniqueName } from '../../../testing/harness.ts';
import { TopicCollector, testEvent, testEventTopic, writeCounterTopology, type CounterTopology } from '../../../testing/runtime-fixture.ts';

interface KeyCount { key: string; count: number; origin_topic: string; origin_partition: number; origin_offset: number }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** Edits the generated topology.yaml (count_by_key config, runtime settings, another state_dir). */
function editTopology(file: string, edit: (text: string) => string, target = file): string {
  writeFileSync(target, edit(readFileSync(file, 'utf8')));
  return target;
}

const withConfig = (config: string) => (text: string): string => text.replace(/    guarantee: (\w+)\n/, `    guarantee: $1\n    config:\n${config}`);

async function startRuntime(file: string): Promise<LifelineRuntime> {
  const registry = buildComponentRegistry();
  const runtime = new LifelineRuntime({ topology: loadTopology(file, registry), registry, logger: createLogger({ level: 'warn' }), httpPort: 0, sessionTimeoutMs: 6000 });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  return runtime;
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

/** Reads a changelog (committed records only) and keeps each key's latest value and every offset seen. */
class ChangelogReader {
  readonly latest = new Map<string, Buffer | null>();
  readonly records: Array<{ partition: number; offset: bigint; key: string }> = [];
  private consumer: Consumer | undefined;

  constructor(private readonly kafka: Kafka, private readonly topic: string) {}

  async start(): Promise<this> {
    this.consumer = this.kafka.consumer({ groupId: uniqueName('changelog-reader'), readUncommitted: false, maxWaitTimeInMs: 100 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ message, partition }) => {
        const key = message.key?.toString() ?? '';
        if (key === '__lifeline.restore-marker') return;
        this.latest.set(key, message.value);
        this.records.push({ partition, offset: BigInt(message.offset), key });
      },
    });
    cleanups.push(() => this.stop());
    return this;
  }

  live(): number {
    return [...this.latest.values()].filter((value) => value !== null).length;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

async function metric(runtime: LifelineRuntime, pattern: RegExp): Promise<number> {
  const text = await runtime.metrics.metricsText();
  const match = pattern.exec(text);
  return match ? Number(match[1]) : 0;
}

test('TTL expiry deletes every key that is due at 300 new keys/s on one partition (the old sweep managed ~33/s)', { timeout: 120_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 1, store: 'lmdb' });
  editTopology(topology.file, withConfig('      ttl: 3s\n'));
  const input = await testEventTopic(topology.input, 1);
  cleanups.push(() => input.close());
  const runtime = await startRuntime(topology.file);
  const kafka = await testKafka();
  const changelog = await new ChangelogReader(kafka, changelogTopic(topology.appId, topology.label, 'counts')).start();
  const KEYS = 1500;
  for (let start = 0; start < KEYS; start += 150) {
    await input.send(Array.from({ length: 150 }, (_, index) => testEvent(start + index, 1_000_000))); // every account new
    await sleep(500);
  }
  const sentAt = Date.now();
  await until(() => changelog.latest.size >= KEYS, 60_000, 'every key in the changelog');
  await until(() => changelog.live() === 0, 30_000, `every key expired (live: ${changelog.live()})`);
  const tookMs = Date.now() - sentAt;
  assert.equal(changelog.latest.size, KEYS);
  assert.ok(tookMs < 3000 + 15_000, `all ${KEYS} keys tombstoned ${tookMs} ms after the last was written (TTL 3 s)`);
  assert.equal(await metric(runtime, /lifeline_transactions_total\{component="[^"]+",result="aborted"\} (\d+)/), 0);
});

test('a restart restores only the changelog tail written since its local checkpoint; counts stay exact', { timeout: 180_000 }, async () => {
  const topology: CounterTopology = await writeCounterTopology({ partitions: 2, store: 'lmdb' });
  const input = await testEventTopic(topology.input, 2);
  cleanups.push(() => input.close());
  const kafka = await testKafka();
  // Process A (state in the topology's state_dir) counts 200 records and stops cleanly.
  const first = await startRuntime(topology.file);
  const outputs = await new TopicCollector<KeyCount>(kafka, topology.output, input.serde).start();
  cleanups.push(() => outputs.stop());
  const changelogName = changelogTopic(topology.appId, topology.label, 'counts');
  let sent = 0;
  const send = async (count: number): Promise<void> => {
    await input.send(Array.from({ length: count }, (_, index) => testEvent(sent + index, 40)));
    sent += count;
    await outputs.waitForCount(sent, 60_000);
  };

  await send(200);
  await first.stop();
  const endAfterA = new Map((await input.admin.fetchTopicOffsets(changelogName)).map((entry) => [entry.partition, BigInt(entry.high)]));

  // Process B, with a state directory of its own (another host), takes over and counts 100 more.
  const otherHost = editTopology(topology.file, (text) => text.replace(/state_dir: .*\n/, `state_dir: ${JSON.stringify(join(topology.dir, 'other-host'))}\n`), join(topology.dir, 'other.yaml'));
  const second = await startRuntime(otherHost);
  await send(100);
  assert.ok(await metric(second, /lifeline_store_restored_records_total\{component="[^"]+",mode="full"\} (\d+)/) > 0, 'B had no checkpoint: a full restore');
  await second.stop();

  // A again: its checkpoint is where it stopped, so it reads exactly what B wrote since.
  // Read to the end, not for a while: nothing committed is left after the last record read on each partition.
  const changelog = await new ChangelogReader(kafka, changelogName).start();
  const partitions = (await input.admin.fetchTopicOffsets(changelogName)).map((entry) => entry.partition);
  const readUpTo = (partition: number): bigint | null => changelog.records.filter((record) => record.partition === partition).reduce<bigint | null>((last, record) => (last === null || record.offset > last ? record.offset : last), null);
  await until(async () => (await committedBacklog(kafka, partitions.map((partition) => ({ topic: changelogName, partition, from: ((last) => (last === null ? null : last + 1n))(readUpTo(partition)) }))))
    .every((entry) => entry.records === 0n), 30_000, 'the changelog read to its end');
  const writtenByB = changelog.records.filter((record) => record.offset >= (endAfterA.get(record.partition) ?? 0n)).length;
  const total = changelog.records.length;
  const third = await startRuntime(topology.file);
  await send(50);
  const tail = await metric(third, /lifeline_store_restored_records_total\{component="[^"]+",mode="tail"\} (\d+)/);
  const full = await metric(third, /lifeline_store_restored_records_total\{component="[^"]+",mode="full"\} (\d+)/);
  assert.equal(full, 0, 'no full restore');
  assert.equal(tail, writtenByB, `read the ${writtenByB} records B wrote, not all ${total} in the changelog`);
  assert.ok(writtenByB > 0 && writtenByB < total);

  const expected = new Map<string, number>();
  for (let index = 0; index < sent; index++) expected.set(testEvent(index, 40).account, (expected.get(testEvent(index, 40).account) ?? 0) + 1);
  const last = new Map<string, number>();
  for (const { value } of outputs.records) last.set(value.key, Math.max(last.get(value.key) ?? 0, value.count));
  assert.deepEqual(last, expected, 'every count exact across three owners');
});

test('a restore past runtime.restore_timeout marks the process not ready and says why', { timeout: 90_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 1, store: 'lmdb' });
  editTopology(topology.file, (text) => text.replace('  commit_interval: 200ms\n', '  commit_interval: 200ms\n  restore_timeout: 1ms\n'));
  const input = await testEventTopic(topology.input, 1);
  cleanups.push(() => input.close());
  const runtime = await startRuntime(topology.file);
  await until(() => runtime.health().components[topology.label]?.state === 'restore_failed', 60_000, 'the restore deadline to pass');
  const report = runtime.health();
  assert.equal(report.ready, false);
  assert.match(report.components[topology.label]?.detail ?? '', /partition 0: .*passed its deadline of 0 s/);
});

test('outputs land on the partition of their own key (Kafka\'s default partitioner), not their input\'s', { timeout: 90_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 3, keyField: 'id' });
  const input = await testEventTopic(topology.input, 3);
  cleanups.push(() => input.close());
  await startRuntime(topology.file);
  const outputs = await new TopicCollector<KeyCount>(input.kafka, topology.output, input.serde).start();
  cleanups.push(() => outputs.stop());
  await input.send(Array.from({ length: 120 }, (_, index) => testEvent(index, 7)));
  await outputs.waitForCount(120, 60_000);
  for (const record of outputs.records) assert.equal(record.partition, partitionForKey(record.key as string, 3), `${record.key}`);
  assert.ok(outputs.records.some((record) => record.partition !== record.value.origin_partition), 'keyed unlike their input, some moved partition');
});

function ownedPartitions(runtime: LifelineRuntime, label: string): number[] {
  const match = /\[([\d,]*)\]/.exec(runtime.health().components[label]?.detail ?? '');
  return match?.[1] ? match[1].split(',').map(Number) : [];
}

test('a membership change keeps the partitions that can stay where they are', { timeout: 180_000 }, async () => {
  const topology = await writeCounterTopology({ partitions: 6 });
  const input = await testEventTopic(topology.input, 6);
  cleanups.push(() => input.close());
  const runtimes = [await startRuntime(topology.file), await startRuntime(topology.file), await startRuntime(topology.file)];
  const owned = (): number[][] => runtimes.map((runtime) => ownedPartitions(runtime, topology.label));
  await until(() => owned().every((partitions) => partitions.length === 2) && new Set(owned().flat()).size === 6, 90_000, `an even spread (${JSON.stringify(owned())})`);
  const before = owned();
  const [first, leaving, third] = runtimes as [LifelineRuntime, LifelineRuntime, LifelineRuntime];
  await leaving.stop();
  const survivors = (): number[][] => [ownedPartitions(first, topology.label), ownedPartitions(third, topology.label)];
  await until(() => survivors().every((partitions) => partitions.length === 3), 90_000, `the leaver's partitions shared out (${JSON.stringify(survivors())})`);
  const [firstAfter, thirdAfter] = survivors() as [number[], number[]];
  assert.ok(before[0]?.every((partition) => firstAfter.includes(partition)), `first kept ${before[0]?.join(',')}: now ${firstAfter.join(',')}`);
  assert.ok(before[2]?.every((partition) => thirdAfter.includes(partition)), `third kept ${before[2]?.join(',')}: now ${thirdAfter.join(',')}`);
});
