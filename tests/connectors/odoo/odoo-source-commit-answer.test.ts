import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { OdooClient } from '../../../connectors/odoo/odoo-client.ts';
import { startOdooSimulator } from '../../../dev/odoo-simulator/odoo-simulator.ts';
import { createTestTopics, testKafka, uniqueTopic } from '../../../testing/harness.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../../testing/runtime-fixture.ts';
import { writeOdooTopology } from './odoo-topology.ts';

const PARTNERS = 1_500;

interface PartnerValue { id: number; write_date: string; ref: string | null }

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

test('odoo_source when the answers to a fifth of its commits are lost (committed, but the process saw a time-out): the cursor is read again from Kafka, every record once', { timeout: 180_000 }, async () => {
  const simulator = await startOdooSimulator({ port: 0 });
  cleanups.push(() => simulator.close());
  const odoo = new OdooClient({ url: simulator.url, database: simulator.database, ...simulator.credentials });
  cleanups.push(async () => odoo.close());
  await odoo.create('res.partner', Array.from({ length: PARTNERS }, (_, index) => ({ name: `Answer-test provider ${index}`, ref: `AT-${index}` })));
  const topic = uniqueTopic('odoo', 'partner', 'changed');
  const topology = await writeOdooTopology({
    simulator, labelPrefix: 'partner_source',
    topics: { partners: { name: topic, schema: 'schemas/odoo/res_partner.avsc', partitions: 3, classification: 'personal' } },
    connector: {
      type: 'odoo_source', outputs: { records: topic },
      config: { connection: 'main', model: 'res.partner', fields: ['name', 'ref'], domain: [['ref', '=like', 'AT-%']], poll_interval: '100ms', page_size: 50 },
    },
  });
  const kafka = await testKafka();
  const admin = await createTestTopics(kafka, [{ name: topic, partitions: 3 }]);
  cleanups.push(() => admin.disconnect());
  const collector = await new TopicCollector<PartnerValue>(kafka, topic, await registeredSerde()).start();
  cleanups.push(() => collector.stop());
  const lifeline = new LifelineProcess(topology.file, [], { ...topology.env, LIFELINE_FAULT_LOSE_COMMIT_ANSWER: '0.2' }).start();
  cleanups.push(() => lifeline.kill());
  await lifeline.waitForLine(/lifeline running/);
  await collector.waitUntil((records) => new Set(records.map(({ value }) => value.id)).size >= PARTNERS, 'every partner', 120_000);
  // A sentinel written after everything: once it is in, a page produced twice would be in too.
  const [sentinel] = await odoo.create('res.partner', [{ name: 'Answer-test sentinel', ref: 'AT-SENTINEL' }]);
  await collector.waitUntil((records) => records.some(({ value }) => value.id === sentinel), 'the sentinel', 60_000);

  const lost = lifeline.lines.filter((line) => line.includes('fault injection: commit answer lost')).length;
  const reread = lifeline.lines.filter((line) => line.includes('cursor read again from Kafka')).length;
  assert.ok(lost >= 3, `the fault struck (${lost} commit answers lost)`);
  assert.equal(reread, lost, 'each lost answer made the source read its cursor again');
  const seen = new Map<string, number>();
  for (const { value } of collector.records) seen.set(`${value.id}@${value.write_date}`, (seen.get(`${value.id}@${value.write_date}`) ?? 0) + 1);
  const twice = [...seen].filter(([, count]) => count > 1).map(([version]) => version);
  assert.deepEqual(twice.slice(0, 5), [], `${twice.length} partner versions emitted more than once`);
  assert.equal(collector.records.length, PARTNERS + 1, 'one record per partner, and the sentinel');
});
