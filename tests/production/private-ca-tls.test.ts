// TLS to the schema registry and to Odoo with a hospital's private CA. The test makes its own CA
// (openssl) and puts TLS fronts with a certificate it signed before the shared registry and an Odoo
// simulator — as a reverse proxy would in a hospital. With the CA configured (connections.registry.ca_file,
// connections.odoo.<name>.ca_file, from the environment in topology.yaml) Lifeline connects; without
// it, or with another CA, it is refused with LL_REGISTRY_TLS_UNTRUSTED / LL_ODOO_TLS_UNTRUSTED naming
// the setting to fix, and `lifeline run` stops at start instead of waiting.
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { OdooClient } from '../../connectors/odoo/odoo-client.ts';
import { startOdooSimulator, type OdooSimulator } from '../../dev/odoo-simulator/odoo-simulator.ts';
import { errorCode } from '../../src/errors.ts';
import { loadContract } from '../../src/kafka/avro-contract.ts';
import { AvroSerde } from '../../src/kafka/avro-serde.ts';
import { runLifeline } from '../../testing/cli-runner.ts';
import { writeGoldenTopology, type GoldenTopology } from '../../testing/golden-path-fixture.ts';
import { infra, uniqueTopic } from '../../testing/harness.ts';
import { makePrivateCa, type PrivateCa } from '../../testing/private-ca.ts';
import { LifelineProcess, TEST_EVENT_SCHEMA, testEvent } from '../../testing/runtime-fixture.ts';
import { startTlsProxy, type TlsProxy } from '../../testing/tls-proxy.ts';

let ca: PrivateCa;
let otherCa: PrivateCa;
let simulator: OdooSimulator;
let registryProxy: TlsProxy;
let odooProxy: TlsProxy;
let registryHttps: string;

before(async () => {
  ca = makePrivateCa('St Mary\'s test CA');
  otherCa = makePrivateCa('Some other CA');
  const registry = new URL((await infra()).registryUrl);
  registryProxy = await startTlsProxy({ host: registry.hostname, port: Number(registry.port) }, ca);
  registryHttps = `${registryProxy.origin}${registry.pathname}`;
  simulator = await startOdooSimulator({ port: 0 });
  const odoo = new URL(simulator.url);
  odooProxy = await startTlsProxy({ host: odoo.hostname, port: Number(odoo.port) }, ca);
});

after(async () => {
  await registryProxy?.close();
  await odooProxy?.close();
  await simulator?.close();
  for (const made of [ca, otherCa]) if (made) rmSync(made.dir, { recursive: true, force: true });
});

test('the registry over HTTPS: trusted with ca_file (register, encode, decode); refused without it or with another CA, naming the fix', async () => {
  const topic = uniqueTopic('test', 'tls_registry', 'received');
  const contract = loadContract(TEST_EVENT_SCHEMA);
  const trusted = new AvroSerde({ url: registryHttps, caFile: ca.caFile });
  await trusted.register(topic, contract);
  const event = testEvent(1, 1);
  assert.deepEqual({ ...(await trusted.decode(await trusted.encode(topic, event))).value as object }, event);

  for (const [caFile, why] of [[undefined, 'no CA configured'], [otherCa.caFile, 'another CA']] as const) {
    const serde = new AvroSerde({ url: registryHttps, ...(caFile ? { caFile } : {}) });
    const error = await serde.register(topic, contract).then(() => undefined, (caught: unknown) => caught);
    assert.equal(errorCode(error), 'LL_REGISTRY_TLS_UNTRUSTED', `${why}: ${String(error)}`);
    assert.match(String((error as Error).message), new RegExp(`schema registry at ${registryProxy.origin.replace(/\./g, '\\.')}.* is not trusted .*Fix: set connections\\.registry\\.ca_file`));
    if (caFile) assert.match(String((error as Error).message), /which did not sign it/);
  }
});

test('Odoo over HTTPS: trusted with ca_file (login, calls); refused without it or with another CA, naming the fix', async () => {
  const connection = { url: odooProxy.origin, database: simulator.database, ...simulator.credentials };
  const trusted = new OdooClient({ ...connection, caFile: ca.caFile });
  try {
    assert.ok((await trusted.authenticate()) > 0);
    assert.ok((await trusted.searchCount('res.partner', [])) > 0);
  } finally {
    trusted.close();
  }
  for (const [caFile, why] of [[undefined, 'no CA configured'], [otherCa.caFile, 'another CA']] as const) {
    const client = new OdooClient({ ...connection, ...(caFile ? { caFile } : {}) });
    try {
      const error = await client.authenticate().then(() => undefined, (caught: unknown) => caught);
      assert.equal(errorCode(error), 'LL_ODOO_TLS_UNTRUSTED', `${why}: ${String(error)}`);
      assert.match(String((error as Error).message), /the TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted .*Fix: set connections\.odoo\.<name>\.ca_file/);
    } finally {
      client.close();
    }
  }
});

test('the golden topology with both CAs from the environment: `odoo check` passes the TLS step; without them `lifeline run` stops at start with LL_REGISTRY_TLS_UNTRUSTED and `odoo check` names LL_ODOO_TLS_UNTRUSTED', { timeout: 180_000 }, async () => {
  const topology: GoldenTopology = await writeGoldenTopology({
    simulator, warnAfter: '10m', breachAfter: '15m', https: { registryUrl: registryHttps, odooUrl: odooProxy.origin, caFile: '${LIFELINE_TEST_CA_FILE}' },
  });
  try {
    const withCa = { ...topology.env, ODOO_USERNAME: simulator.credentials.username, LIFELINE_TEST_CA_FILE: ca.caFile };
    const checked = await runLifeline(['odoo', 'check', '--topology', topology.file], { env: withCa });
    assert.doesNotMatch(checked.stdout + checked.stderr, /TLS_UNTRUSTED|certificate/i);
    assert.match(checked.stdout, /res\.partner|account\.move/, checked.stderr);

    // The same file, the CA variable pointing at another CA: refused, naming the setting.
    const wrongCa = { ...withCa, LIFELINE_TEST_CA_FILE: otherCa.caFile };
    const refused = await runLifeline(['odoo', 'check', '--topology', topology.file], { env: wrongCa });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /LL_ODOO_TLS_UNTRUSTED|TLS certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);

    // `lifeline run` with the registry's certificate untrusted: one fatal line, exit 1, no waiting.
    const noCa = readFileSync(topology.file, 'utf8').replace(/^\s+ca_file: .*\n/gm, '');
    const noCaFile = topology.file.replace(/\.yaml$/, '.no-ca.yaml');
    writeFileSync(noCaFile, noCa);
    const run = new LifelineProcess(noCaFile, ['--only', topology.label('charge_dedup')], withCa).start();
    try {
      await run.waitForLine(/"level":"fatal"/, 120_000).catch(() => undefined);
      for (let waited = 0; run.exitCode === undefined && waited < 20_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      await run.kill('SIGKILL');
    }
    const fatal = run.lines.filter((line) => line.includes('"level":"fatal"')).map((line) => JSON.parse(line) as { code?: string; err?: string });
    assert.equal(run.exitCode, 1, run.lines.slice(-10).join('\n'));
    assert.equal(fatal.length, 1, JSON.stringify(fatal));
    assert.equal(fatal[0]?.code, 'LL_REGISTRY_TLS_UNTRUSTED');
    assert.match(fatal[0]?.err ?? '', /Fix: set connections\.registry\.ca_file/);
  } finally {
    rmSync(topology.dir, { recursive: true, force: true });
  }
});
