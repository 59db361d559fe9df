import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { writeOdooTopology } from './odoo-topology.ts';

const CHANGES = 5_000;
const KILLS = 5;
const MAX_RECORDS = 1_500;

interface PartnerValue { id: number; write_date: string; name: string | null; ref: string | null; email: string | null }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test(`odoo_source under lifeline run, SIGKILLed ${KILLS} times during ${CHANGES} changes: every change exactly once, in write order per record`, { timeout: 240_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  const topic = uniqueTopic('odoo', 'partner', 'changed');
  const topology = await writeOdooTopology({
    simulator, labelPrefix: 'partner_source',
    topics: { partners: { name: topic, schema: 'schemas/odoo/res_partner.avsc', partitions: 3, classification: 'personal' } },
    connector: {
      type: 'odoo_source', outputs: { records: topic },
      config: { connection: 'main', model: 'res.partner', fields: ['name', 'ref', 'email'], domain: [['ref', '=like', 'KT-%']], poll_interval: '100ms', page_size: 250, overlap: '1m' },
    },
  });
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: topic, partitions: 3 }]);
  cleanups.push(() => admin.disconnect());
  const serde = await registeredSerde();
  const collector = await new TopicCollector<PartnerValue>(kafka, topic, serde).start();
  cleanups.push(() => collector.stop());

  // Besides the kills from outside, the process kills itself in 2% of its transactions after
  // sending records and cursor but before committing.
  const lifeline = new LifelineProcess(topology.file, [], { ...topology.env, LIFELINE_FAULT_KILL_BEFORE_COMMIT: '0.02' }).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);
  let supervising = true;
  let restarts = 0;
  const supervisor = (async () => {
    while (supervising) {
      if (lifeline.exitCode !== undefined) {
        restarts++;
        lifeline.start();
      }
      await sleep(100);
    }
  })();

  // The writer: creates partners (list creates share one write_date) and updates those whose
  // latest version the topic already shows, so every version is one a poll can see. Versions are
  // counted in the email: v<n>@kt.example.
  const written = new Map<number, number>();
  let changes = 0;
  let stopWriting = false;
  cleanups.push(async () => { stopWriting = true; });
  let index = 0;
  // Twice the simulator's clock stands still: every change meanwhile shares one write_date second,
  // and records are changed again within it (after their previous version reached the topic),
  // until 100 such second changes happened or 20 s passed — however slow the machine is.
  const freezeAt = [1_500, 3_500];
  let freeze: { since: number; touched: Set<number>; again: number } | undefined;
  let freezes = 0;
  let changedAgainWhileFrozen = 0;
  const writing = (async () => {
    while (changes < CHANGES && !stopWriting) {
      if (!freeze && freezes < freezeAt.length && changes >= (freezeAt[freezes] as number)) {
        simulator.control.freezeClock(true);
        freeze = { since: Date.now(), touched: new Set(), again: 0 };
      }
      if (freeze && (freeze.again >= 100 || Date.now() - freeze.since > 20_000)) {
        simulator.control.freezeClock(false);
        changedAgainWhileFrozen += freeze.again;
        freeze = undefined;
        freezes++;
      }
      const seen = latestSeen(collector.records);
      const ready = [...written].filter(([id, version]) => seen.get(id) === version).map(([id]) => id);
      const updates = ready.sort(() => Math.random() - 0.5).slice(0, Math.min(80, CHANGES - changes));
      await Promise.all(updates.map(async (id) => {
        const version = (written.get(id) as number) + 1;
        await odoo.write('res.partner', [id], { email: `v${version}@kt.example` });
        written.set(id, version);
        if (freeze) {
          if (freeze.touched.has(id)) freeze.again++;
          freeze.touched.add(id);
        }
      }));
      changes += updates.length;
      const creates = Math.min(written.size < MAX_RECORDS ? 60 : 0, CHANGES - changes);
      if (creates > 0) {
        const ids = await odoo.create('res.partner', Array.from({ length: creates }, () => ({ name: `Kill-test provider ${index}`, ref: `KT-${index++}`, email: 'v0@kt.example' })));
        for (const id of ids) {
          written.set(id, 0);
          freeze?.touched.add(id);
        }
        changes += creates;
      }
      await sleep(updates.length === 0 && creates === 0 ? 100 : 20);
    }
  })();

  for (let kill = 0; kill < KILLS; kill++) {
    await sleep(1500 + Math.floor(Math.random() * 2500));
    await lifeline.kill('SIGKILL');
    while (lifeline.exitCode !== undefined) await sleep(50);
    await lifeline.waitForLine(/lifeline running|fault injection/, 60_000, Math.max(0, lifeline.lines.length - 1)).catch(() => undefined);
  }
  const progress = (): string => `${changes} changes written, ${collector.records.length} records in the topic; last log lines:\n${lifeline.lines.slice(-15).join('\n')}`;
  const writerStalled = setTimeout(() => console.log(`still writing after 150 s: ${progress()}`), 150_000);
  await writing;
  simulator.control.freezeClock(false);
  changedAgainWhileFrozen += freeze?.again ?? 0;
  clearTimeout(writerStalled);
  await collector.waitForCount(CHANGES, 60_000).catch((error: unknown) => {
    throw new Error(`${String(error)}; ${progress()}`);
  });
  // Sentinels instead of a sleep: partners created after every change, on every partition of the
  // topic. The source reads in (write_date, id) order and each partition is read in order: once
  // every sentinel is in, a change emitted twice by a restart would be in too.
  const sentinelIds = await odoo.create('res.partner', Array.from({ length: 12 }, (_, n) => ({ name: `Kill-test sentinel ${n}`, ref: `KT-SENTINEL-${n}`, email: 'sentinel@kt.example' })));
  const isSentinel = (value: PartnerValue): boolean => value.ref?.startsWith('KT-SENTINEL-') ?? false;
  await collector.waitUntil((records) => records.filter(({ value }) => isSentinel(value)).length >= sentinelIds.length, 'the sentinel partners', 60_000);
  assert.equal(new Set(collector.records.filter(({ value }) => isSentinel(value)).map(({ partition }) => partition)).size, 3, 'the sentinels cover every partition');
  const records = collector.records.filter(({ value }) => !isSentinel(value));
  supervising = false;
  await supervisor;
  const injected = lifeline.lines.filter((line) => line.includes('fault injection')).length;

  // Every change exactly once, per record in write order.
  const versionsById = new Map<number, number[]>();
  for (const { value } of records) versionsById.set(value.id, [...(versionsById.get(value.id) ?? []), versionOf(value.email)]);
  assert.equal(records.length, CHANGES, 'one record per change');
  for (const [id, last] of written) {
    assert.deepEqual(versionsById.get(id), Array.from({ length: last + 1 }, (_, version) => version), `partner ${id}: versions 0..${last} once each, in order`);
  }
  // The last value of each record is what Odoo holds.
  const finalById = new Map(records.map(({ value }) => [value.id, value]));
  const current = await odoo.searchRead('res.partner', [['ref', '=like', 'KT-%'], ['ref', 'not like', 'KT-SENTINEL-']], { fields: ['email', 'write_date', 'name'] });
  assert.equal(current.length, written.size);
  for (const row of current) {
    const emitted = finalById.get(row.id);
    assert.equal(emitted?.email, row.email, `partner ${row.id}: last email`);
    assert.equal(emitted?.write_date, row.write_date, `partner ${row.id}: last write_date`);
  }
  const sameSecond = countSameSecondPairs(records.map(({ value }) => value));
  console.log(`changes: ${CHANGES} on ${written.size} partners; restarts: ${restarts} (${KILLS} kills, ${injected} crashes before commit); consecutive versions sharing a write_date second: ${sameSecond} (${changedAgainWhileFrozen} changed again under a frozen clock)`);
  assert.ok(restarts >= KILLS, 'restarted after every kill');
  assert.ok(sameSecond > 0, 'some records changed twice within one second');
});

function versionOf(email: string | null): number {
  const match = /^v(\d+)@/.exec(email ?? '');
  return match ? Number(match[1]) : -1;
}

function latestSeen(records: ReadonlyArray<{ value: PartnerValue }>): Map<number, number> {
  const seen = new Map<number, number>();
  for (const { value } of records) seen.set(value.id, Math.max(seen.get(value.id) ?? -1, versionOf(value.email)));
  return seen;
}

function countSameSecondPairs(values: readonly PartnerValue[]): number {
  const last = new Map<number, string>();
  let pairs = 0;
  for (const value of values) {
    if (last.get(value.id) === value.write_date) pairs++;
    last.set(value.id, value.write_date);
  }
  return pairs;
}
