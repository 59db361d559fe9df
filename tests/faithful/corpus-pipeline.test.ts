import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { OUTPUT_OF_KIND, type CanonicalRecord } from '../../connectors/formats/canonical.ts';
import { decodeDelivery, type PartnerFormatConfig } from '../../connectors/formats/partner-format.ts';
import { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { externalName } from '../../connectors/odoo/odoo-sink.ts';
import { corpusPartner, corpusTable, csvMappingName, type CorpusRow } from '../connectors/formats/corpus-table.ts';
import { infra, testKafka, uniqueName, uniqueTopic } from '../../testing/harness.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { useOdooSimulator } from '../../testing/odoo-simulator-fixture.ts';
import { LifelineProcess, TopicCollector, registeredSerde } from '../../testing/runtime-fixture.ts';
import { deliver, newWebhookSecret, webhookPort } from '../../testing/partner-feed-fixture.ts';

/**
 * Issue 12, item 5, on the real broker and registry with the Odoo simulator: every sample of the
 * corpus (the table in docs/formats.md) is POSTed to a real webhook_source AND dropped into a real
 * file_source inbox, under separate partner names per channel. Each delivery must end where the
 * table says — its records on the table's output (every canonical output is mapped) or its
 * quarantine code — and the records that the golden path writes to Odoo go through dedup and the
 * golden path's own sink mappings (charge_bills, dispense_bills, delivery_receipts, read from
 * topology.yaml; enrich is left out, so the fields it adds — partner and product ids — are too, and
 * receipts' moves point at one fixed product): the bill and receipt lines in Odoo are the table's,
 * for both channels, each bill in its total's currency (EUR activated, as a multi-currency Odoo has it), and a record the sink refuses (a FHIR MedicationDispense has no price) is the
 * table's dead letter, never a 0.00 bill.
 */

let odoo: OdooClient;
let simulator: { url: string; database: string; username: string; password: string };
useOdooSimulator(({ simulator: started, odoo: client }) => {
  odoo = client;
  simulator = { url: started.url, database: started.database, username: started.credentials.username, password: started.credentials.password };
});

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

type Channel = 'hook' | 'file';
const CHANNELS: readonly Channel[] = ['hook', 'file'];

/**
 * Which partner (per channel) a sample is sent as: one per format and CSV mapping, and one per
 * csv-spectrum file — those files share their keys (`a` = 1 in most), and one partner's rows with
 * the same key are versions of one entity, not separate receipts.
 */
function partnerKey(sample: string): string {
  const file = sample.split('/').at(-1) as string;
  if (file.endsWith('.hl7')) return 'hl7';
  if (file.endsWith('.json') || file.endsWith('.ndjson')) return 'fhir';
  const mapping = csvMappingName(file);
  return mapping === 'spectrum' ? `spectrum_${file.slice('csv-spectrum-'.length, -'.csv'.length).toLowerCase()}` : mapping;
}
const contentType = (sample: string): string => (sample.endsWith('.hl7') ? 'x-application/hl7-v2+er7' : sample.endsWith('.csv') ? 'text/csv' : 'application/fhir+json');
const partnerName = (channel: Channel, key: string): string => `${channel}_${key}`;
/** The partner config a sample is read with (format and CSV mapping as in the corpus unit test), under a channel's name. */
const partnerOf = (sample: string, channel: Channel): PartnerFormatConfig => corpusPartner(sample, partnerName(channel, partnerKey(sample)));
/** A sample's file name in its inbox (folders flattened, extension kept). */
const dropName = (sample: string): string => sample.replace(/\//g, '__');
const secretVariable = (key: string): string => `CORPUS_SECRET_${key.toUpperCase()}`;

interface Envelope { partner: string; delivery_id: string; entity_key: string }
interface Quarantined { partner: string; reason_code: string; delivery_id: string | null }
interface Line { name: string; amount: number; currency?: string }

const run = randomBytes(3).toString('hex');
const OUTPUTS = [...Object.values(OUTPUT_OF_KIND)];
const SCHEMA_OF_OUTPUT: Record<string, string> = {
  service_charges: 'schemas/partner/service_charge.avsc', pharmacy_dispenses: 'schemas/partner/pharmacy_dispense.avsc',
  supply_deliveries: 'schemas/partner/supply_delivery.avsc', orders: 'schemas/partner/order.avsc',
  order_acknowledgements: 'schemas/partner/order_acknowledgement.avsc', claims: 'schemas/partner/claim.avsc',
  visit_references: 'schemas/partner/visit_reference.avsc',
};
const outputTopic = Object.fromEntries(OUTPUTS.map((output) => [output, uniqueTopic('partner', output, 'received')]));
const quarantineTopic = uniqueTopic('ops', 'quarantine', 'received');
/** The golden path's sinks, by the output whose deduplicated records they write. */
const SINKS = { service_charges: 'charge_bills', pharmacy_dispenses: 'dispense_bills', supply_deliveries: 'delivery_receipts' } as const;
type SinkOutput = keyof typeof SINKS;
const label = (name: string): string => `${name}_${run}`;
/** Every sample's partner key, and one sample of each (to read its format config). */
const PARTNERS = new Map(corpusTable().map((row) => [partnerKey(row.sample), row.sample]));
const secrets = new Map([...PARTNERS.keys()].map((key) => [key, newWebhookSecret()]));

let lifeline: LifelineProcess;
let topologyFile = '';
let inboxDir = '';
let port = 0;

interface GoldenFieldSpec { path?: string; link?: unknown; lines?: { path: string; fields: Record<string, GoldenFieldSpec> } & Record<string, unknown> }
interface GoldenSink { config: { connection: string; fields: Record<string, GoldenFieldSpec> } & Record<string, unknown> }

/** A golden path sink's config from topology.yaml, without the fields only enrich fills (Odoo ids). */
function goldenSinkConfig(name: string, productId: number): GoldenSink['config'] {
  const document = parse(readFileSync('topology.yaml', 'utf8')) as { connectors: Record<string, GoldenSink> };
  const config = structuredClone(document.connectors[name]?.config);
  assert.ok(config, `topology.yaml has the sink ${name}`);
  const strip = (fields: Record<string, GoldenFieldSpec>): void => {
    for (const [field, spec] of Object.entries(fields)) {
      if (spec.path?.startsWith('odoo_')) delete fields[field];
      if (spec.lines) strip(spec.lines.fields);
    }
  };
  strip(config.fields);
  // A receipt's stock move needs a product (required in Odoo): one fixed product stands in for enrich's.
  const moves = config.fields.move_ids?.lines;
  if (moves) moves.fields.product_id = { link: { id: productId } };
  return config;
}

before(async () => {
  const { brokers, registryUrl } = await infra();
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-corpus-'));
  inboxDir = join(dir, 'inbox');
  const [product] = await odoo.searchRead('product.product', [['type', '!=', 'service']], { fields: ['id'], limit: 1 });
  assert.ok(product, 'the simulator has a stockable product');
  // A multi-currency Odoo: the corpus bills in USD and EUR (the R4 examples), and a bill keeps its currency.
  // Activated by the administrator (the simulator's admin/admin), as in Settings → Currencies.
  const admin = new OdooClient({ url: simulator.url, database: simulator.database, username: 'admin', password: 'admin' });
  try {
    const euro = await admin.search('res.currency', [['name', '=', 'EUR'], ['active', '=', false]]);
    if (euro.length > 0) await admin.write('res.currency', euro, { active: true });
  } finally {
    admin.close();
  }
  const topic = (schema: string) => ({ key: 'entity_key', value_schema: resolve(schema), partitions: 3, retention: '1d', owner: 'tests', description: 'test topic', classification: 'phi' });
  const topics: Record<string, unknown> = {
    // Written by both sources (each partner's records keyed by their own partner-scoped keys).
    ...Object.fromEntries(OUTPUTS.map((output) => [outputTopic[output] as string, { ...topic(SCHEMA_OF_OUTPUT[output] as string), shared_writers: true }])),
    [quarantineTopic]: { ...topic('schemas/ops/quarantine.avsc'), key: '<partner>|<delivery>', partitions: 1, shared_writers: true },
  };
  const processors: Record<string, unknown> = {};
  const connectors: Record<string, unknown> = {};
  for (const [output, sink] of Object.entries(SINKS)) {
    const received = outputTopic[output] as string;
    const unique = received.replace('.received.v1', '.deduplicated.v1');
    const conflicts = received.replace('.received.v1', '.conflicts.v1');
    const written = uniqueTopic('billing', sink, 'written');
    topics[unique] = topic(SCHEMA_OF_OUTPUT[output] as string);
    topics[conflicts] = topic(SCHEMA_OF_OUTPUT[output] as string);
    topics[written] = { ...topic('schemas/odoo/writeback_result.avsc'), classification: 'internal' };
    // As the golden path's dedups: keyed by the record's idempotency key, conflicts to their own output.
    processors[label(`dedup_${output}`)] = { type: 'dedup', inputs: [received], outputs: { unique, conflicts }, config: { key_path: 'idempotency_key', ttl: '1d', repartition: false } };
    connectors[label(sink)] = { type: 'odoo_sink', inputs: [unique], outputs: { results: written }, config: goldenSinkConfig(sink, Number(product.id)) };
  }
  const sourceOutputs = { ...Object.fromEntries(OUTPUTS.map((output) => [output, outputTopic[output]])), quarantine: quarantineTopic };
  const format = (channel: Channel, key: string): Record<string, unknown> => {
    const { name, format: kind, csv } = corpusPartner(PARTNERS.get(key) as string, partnerName(channel, key));
    return { name, format: kind, ...(csv ? { csv } : {}) };
  };
  connectors[label('webhooks')] = {
    type: 'webhook_source', outputs: sourceOutputs,
    config: { host: '127.0.0.1', port: 0, partners: [...PARTNERS.keys()].map((key) => ({ ...format('hook', key), path: `/webhooks/${key}`, secrets: [`\${${secretVariable(key)}}`] })) },
  };
  connectors[label('files')] = {
    type: 'file_source', outputs: sourceOutputs,
    config: { poll_interval: '200ms', settle_time: '300ms', partners: [...PARTNERS.keys()].map((key) => ({ ...format('file', key), inbox: join(inboxDir, key) })) },
  };
  const document = {
    version: 1,
    app_id: uniqueName('app').replace(/\./g, '_'),
    connections: {
      kafka: { brokers, client_id: 'lifeline-test' }, registry: { url: registryUrl },
      odoo: { main: { url: simulator.url, database: simulator.database, username: simulator.username, password: '${CORPUS_ODOO_KEY}' } },
    },
    runtime: { http_port: 0, state_dir: join(dir, 'state'), store: 'memory', commit_max_records: 200, commit_interval: '200ms' },
    topics, connectors, processors,
  };
  for (const key of PARTNERS.keys()) mkdirSync(join(inboxDir, key), { recursive: true });
  topologyFile = join(dir, 'topology.yaml');
  writeFileSync(topologyFile, stringify(document));
  lifeline = new LifelineProcess(topologyFile, [], {
    CORPUS_ODOO_KEY: simulator.password,
    ...Object.fromEntries([...secrets].map(([key, secret]) => [secretVariable(key), secret])),
  }).start();
  cleanups.push(() => lifeline.kill('SIGTERM'));
  port = await webhookPort(lifeline);
  await lifeline.waitForLine(/lifeline running/, 120_000);
}, { timeout: 180_000 });

/** The lines Odoo holds for a record written by a golden path sink: [name, price_unit] of a bill, [name, quantity] of a receipt. */
async function odooLines(output: SinkOutput, entityKey: string): Promise<Line[] | undefined> {
  const model = output === 'supply_deliveries' ? 'stock.picking' : 'account.move';
  const [data] = await odoo.searchRead('ir.model.data', [['module', '=', 'lifeline'], ['model', '=', model], ['name', '=', externalName(entityKey)]], { fields: ['res_id'] });
  if (!data) return undefined;
  if (model === 'stock.picking') {
    const moves = await odoo.searchRead('stock.move', [['picking_id', '=', Number(data.res_id)]], { fields: ['name', 'product_uom_qty'] });
    return moves.map((move) => ({ name: String(move.name), amount: Number(move.product_uom_qty) }));
  }
  const [move] = await odoo.read('account.move', [Number(data.res_id)], ['currency_id']);
  const currency = (move?.currency_id as [number, string] | false | undefined) || undefined;
  const lines = await odoo.searchRead('account.move.line', [['move_id', '=', Number(data.res_id)]], { fields: ['name', 'quantity', 'price_unit'] });
  assert.ok(lines.every((line) => Number(line.quantity) === 1), `${entityKey}: bill lines of quantity 1`);
  return lines.map((line) => ({ name: String(line.name), amount: Number(line.price_unit), currency: currency?.[1] }));
}

test('every corpus sample, through a real webhook source and a real file source, ends where docs/formats.md says, with the lines it says in Odoo', { timeout: 420_000 }, async () => {
  const table = corpusTable();
  assert.ok(table.length >= 51, `the whole corpus (${table.length} samples)`);
  const kafka = await testKafka();
  const serde = await registeredSerde();
  const collectors = new Map<string, TopicCollector<Envelope>>();
  for (const output of OUTPUTS) {
    const collector = await new TopicCollector<Envelope>(kafka, outputTopic[output] as string, serde).start();
    cleanups.push(() => collector.stop());
    collectors.set(output, collector);
  }
  const quarantine = await new TopicCollector<Quarantined>(kafka, quarantineTopic, serde).start();
  cleanups.push(() => quarantine.stop());

  // Each sample: a webhook delivery (its id) and a file drop (its name).
  const deliveries = new Map<string, string>();
  for (const row of table) {
    const key = partnerKey(row.sample);
    const bytes = readFileSync(`tests/fixtures/partner/${row.sample}`);
    const answer = await deliver(port, `/webhooks/${key}`, bytes, { secret: secrets.get(key) as string, contentType: contentType(row.sample) });
    if (row.endsIn.startsWith('quarantine')) {
      assert.ok(answer.status >= 400 && answer.status < 500, `${row.sample}: refused with a 4xx (got ${answer.status})`);
      assert.equal(`quarantine ${answer.body.error?.code}`, row.endsIn, `${row.sample}: the webhook answer names the code`);
    } else {
      assert.equal(answer.status, 200, `${row.sample}: ${JSON.stringify(answer.body)}`);
    }
    deliveries.set(row.sample, answer.id);
    copyFileSync(`tests/fixtures/partner/${row.sample}`, join(inboxDir, key, dropName(row.sample)));
  }

  const recordsOf = (row: CorpusRow, channel: Channel): Array<{ output: string; value: Envelope }> => {
    const partner = partnerName(channel, partnerKey(row.sample));
    const mine = (value: Envelope): boolean => value.partner === partner
      && (channel === 'hook' ? value.delivery_id === deliveries.get(row.sample) : value.delivery_id.startsWith(`${dropName(row.sample)}@`));
    return [...collectors].flatMap(([output, collector]) => collector.records.filter((record) => mine(record.value)).map((record) => ({ output, value: record.value })));
  };
  const quarantinedOf = (row: CorpusRow, channel: Channel): Quarantined[] => quarantine.records.map((record) => record.value).filter((value) =>
    value.partner === partnerName(channel, partnerKey(row.sample)) && value.delivery_id === (channel === 'hook' ? deliveries.get(row.sample) : dropName(row.sample)));
  const settled = (row: CorpusRow, channel: Channel): boolean => (row.endsIn.startsWith('quarantine') ? quarantinedOf(row, channel).length > 0 : recordsOf(row, channel).length >= row.records);

  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && !table.every((row) => CHANNELS.every((channel) => settled(row, channel)))) await sleep(250);
  for (const row of table) {
    for (const channel of CHANNELS) {
      const where = `${row.sample} via ${channel === 'hook' ? 'webhook' : 'file'}`;
      if (row.endsIn.startsWith('quarantine')) {
        assert.deepEqual(quarantinedOf(row, channel).map((value) => `quarantine ${value.reason_code}`), [row.endsIn], where);
        assert.equal(recordsOf(row, channel).length, 0, `${where}: no records`);
      } else {
        const records = recordsOf(row, channel);
        assert.equal(records.length, row.records, `${where}: records`);
        assert.deepEqual([...new Set(records.map((record) => record.output))], [row.endsIn], `${where}: output`);
        assert.equal(quarantinedOf(row, channel).length, 0, `${where}: nothing quarantined`);
      }
    }
  }

  // Odoo: the lines the table lists, for the records of both channels; the table's dead letters.
  const expected: Array<{ output: SinkOutput; entityKey: string; lines: Line[] | undefined; where: string }> = [];
  let expectedDeadLetters = 0;
  for (const row of table) {
    if (!(row.endsIn in SINKS)) {
      assert.equal(row.odooLines, undefined, `${row.sample}: no golden path sink writes ${row.endsIn}, so the table lists no Odoo lines`);
      continue;
    }
    for (const channel of CHANNELS) {
      const records: CanonicalRecord[] = decodeDelivery(readFileSync(`tests/fixtures/partner/${row.sample}`), partnerOf(row.sample, channel), {
        partner: partnerName(channel, partnerKey(row.sample)), channel: channel === 'hook' ? 'WEBHOOK' : 'FILE', deliveryId: 'x', receivedAt: 0, defaultCurrency: 'USD',
      });
      if (row.odooDeadLetter) {
        expectedDeadLetters += records.length;
        for (const record of records) expected.push({ output: row.endsIn as SinkOutput, entityKey: record.value.entity_key, lines: undefined, where: `${row.sample} via ${channel}` });
        continue;
      }
      assert.ok(row.odooLines, `${row.sample}: the table lists its Odoo lines`);
      assert.equal(records.length, row.odooLines.length, `${row.sample}: one Odoo line per record`);
      records.forEach((record, index) => {
        const [name, amount] = row.odooLines?.[index] as readonly [string, number];
        // A bill is in the currency of the record's total; a receipt carries no money.
        const currency = row.endsIn === 'supply_deliveries' ? {} : { currency: (record.value as { total: { currency: string } }).total.currency };
        expected.push({ output: row.endsIn as SinkOutput, entityKey: record.value.entity_key, lines: [{ name, amount, ...currency }], where: `${row.sample} via ${channel}` });
      });
    }
  }
  const written = expected.filter((entry) => entry.lines !== undefined);
  const odooDeadline = Date.now() + 120_000;
  let found = new Map<string, Line[]>();
  while (Date.now() < odooDeadline) {
    found = new Map();
    for (const entry of written) {
      const lines = await odooLines(entry.output, entry.entityKey);
      if (lines) found.set(entry.entityKey, lines);
    }
    if (found.size === written.length) break;
    await sleep(500);
  }
  assert.equal(found.size, written.length, `every record the golden path writes is in Odoo (missing: ${written.filter((entry) => !found.has(entry.entityKey)).map((entry) => entry.where).join('; ')})`);
  for (const entry of written) assert.deepEqual(found.get(entry.entityKey), entry.lines, `${entry.where}: ${entry.entityKey}`);

  // A record the sink cannot write faithfully is its dead letter (visible in `lifeline dlq`), not a 0.00 line.
  const letters: Array<{ errorClass: string; idempotencyKey: string | null; message?: string; errorMessage?: string }> = [];
  const dlqDeadline = Date.now() + 60_000;
  while (Date.now() < dlqDeadline) {
    letters.length = 0;
    const shown = await runLifeline(['dlq', 'show', label('dispense_bills'), '--json', '--topology', topologyFile], { env: { CORPUS_ODOO_KEY: 'unused', ...Object.fromEntries([...secrets].map(([key, secret]) => [secretVariable(key), secret])) } });
    if (shown.code === 0 && shown.stdout.trim()) letters.push(...shown.stdout.trim().split('\n').map((line) => JSON.parse(line) as (typeof letters)[number]));
    if (letters.length >= expectedDeadLetters) break;
    await sleep(1000);
  }
  assert.equal(letters.length, expectedDeadLetters, 'the table\'s dead letters, each once');
  const deadLetterCodes = new Set(table.filter((row) => row.odooDeadLetter).map((row) => row.odooDeadLetter));
  for (const letter of letters) assert.ok(deadLetterCodes.has(letter.errorClass), `dead letter ${letter.errorClass}`);
  for (const entry of expected.filter((item) => item.lines === undefined)) {
    assert.equal(await odooLines(entry.output, entry.entityKey), undefined, `${entry.where}: nothing written to Odoo`);
  }
  // No sample's records collide with another's: nothing on the conflicts outputs (checked last, after everything was written).
  const conflicts = await Promise.all(Object.keys(SINKS).map(async (output) => {
    const topicName = (outputTopic[output] as string).replace('.received.v1', '.conflicts.v1');
    const admin = kafka.admin();
    await admin.connect();
    try {
      return (await admin.fetchTopicOffsets(topicName)).reduce((sum, partition) => sum + Number(partition.high), 0);
    } finally {
      await admin.disconnect();
    }
  }));
  assert.deepEqual(conflicts, [0, 0, 0], 'no conflicts');
});
