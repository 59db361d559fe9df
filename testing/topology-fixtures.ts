import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { countByKey } from '../processors/count-by-key.ts';
import { ComponentRegistry } from '../src/component/component-registry.ts';
import { defineConnectionKind, defineSink, defineSource, type ComponentDefinition } from '../src/component/component.ts';

/**
 * Topology files for tests: a temp folder holding two schemas and whatever topology text a test
 * writes, plus a registry with the real count_by_key and a stand-in source and sink (so the
 * connector checks have something to check).
 */

/** A valid topology; tests break one line of it. Line numbers matter: tests assert positions. */
export const VALID_TOPOLOGY = [
  /*  1 */ 'version: 1',
  /*  2 */ 'connections:',
  /*  3 */ '  kafka:',
  /*  4 */ '    brokers: ["127.0.0.1:9092"]',
  /*  5 */ '  registry:',
  /*  6 */ '    url: http://127.0.0.1:8081/apis/ccompat/v7',
  /*  7 */ 'topics:',
  /*  8 */ '  lab.charge.received.v1:',
  /*  9 */ '    key: account',
  /* 10 */ '    value_schema: schemas/charge.avsc',
  /* 11 */ '    partitions: 3',
  /* 12 */ '    retention: 7d',
  /* 13 */ '    owner: revenue-cycle',
  /* 14 */ '    classification: phi',
  /* 15 */ '  lab.charge_count.updated.v1:',
  /* 16 */ '    key: account',
  /* 17 */ '    value_schema: schemas/count.avsc',
  /* 18 */ '    partitions: 3',
  /* 19 */ '    compact: true',
  /* 20 */ '    owner: revenue-cycle',
  /* 21 */ '    classification: internal',
  /* 22 */ 'processors:',
  /* 23 */ '  counter:',
  /* 24 */ '    type: count_by_key',
  /* 25 */ '    inputs: [lab.charge.received.v1]',
  /* 26 */ '    outputs:',
  /* 27 */ '      counts: lab.charge_count.updated.v1',
  /* 28 */ '    config:',
  /* 29 */ '      key_field: account',
].join('\n') + '\n';

/** VALID_TOPOLOGY with 1-based line `line` replaced by `text` (which may hold several lines). */
export function withLine(line: number, text: string, base: string = VALID_TOPOLOGY): string {
  const lines = base.split('\n');
  if (line < 1 || line > lines.length) throw new RangeError(`line ${line} is outside the fixture`);
  lines[line - 1] = text;
  return lines.join('\n');
}

const CHARGE_SCHEMA = {
  type: 'record', name: 'LabCharge', namespace: 'lifeline.test',
  fields: [
    { name: 'id', type: 'string' },
    { name: 'account', type: 'string' },
    { name: 'patient_mrn', type: 'string', phi: true },
    { name: 'amount_minor', type: 'long' },
    { name: 'currency', type: 'string' },
  ],
};

const COUNT_SCHEMA = {
  type: 'record', name: 'KeyCount', namespace: 'lifeline.test',
  fields: [{ name: 'key', type: 'string' }, { name: 'count', type: 'long' }],
};

/** A fresh temp folder with schemas/charge.avsc and schemas/count.avsc. */
export function topologyFixtureDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-topology-'));
  writeFixture(dir, 'schemas/charge.avsc', JSON.stringify(CHARGE_SCHEMA, null, 2));
  writeFixture(dir, 'schemas/count.avsc', JSON.stringify(COUNT_SCHEMA, null, 2));
  return dir;
}

/** Writes `relativePath` under `dir` (creating folders) and returns its absolute path. */
export function writeFixture(dir: string, relativePath: string, text: string): string {
  const path = join(dir, relativePath);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  return path;
}

/** A kind of connection a test connector declares (`connections.test_link.<name>`), standing in for odoo. */
export const testLinkKind = defineConnectionKind({
  kind: 'test_link',
  description: 'An outside system reached over HTTP, for topology tests.',
  schema: Type.Object({
    url: Type.String({ minLength: 1, description: 'Base URL.' }),
    token: Type.String({ description: 'A secret: a ${ENV} reference.' }),
    timeout: Type.Optional(Type.String({ default: '5s', description: 'Per call.' })),
  }, { additionalProperties: false }),
  check: (connection) => (connection.url.startsWith('http') ? [] : [{ key: 'url', message: `"${connection.url}" must be an http:// or https:// URL` }]),
  summary: (connection) => connection.url,
});

/** A sink with a defaulted key and a secret, standing in for odoo_sink. */
export const testSink = defineSink({
  kind: 'sink',
  type: 'test_sink',
  description: 'Writes records nowhere; stands in for a real sink in topology tests.',
  stateful: false,
  outputs: [],
  connections: [testLinkKind],
  config: Type.Object({
    batch_size: Type.Optional(Type.Integer({ minimum: 1, default: 100, description: 'Records per write.' })),
    api_key: Type.Optional(Type.String({ description: 'A secret, to check that secrets resolve.' })),
  }, { additionalProperties: false }),
  create: () => ({ connect: async () => {}, write: async () => ({ failed: [] }), close: async () => {} }),
});

/** A source with an optional output, standing in for webhook_source. */
export const testSource = defineSource({
  kind: 'source',
  type: 'test_source',
  description: 'Produces nothing; stands in for a real source in topology tests.',
  stateful: false,
  outputs: ['records', 'rejected?'],
  config: Type.Object({}, { additionalProperties: false }),
  create: () => ({ connect: async () => {}, produce: async () => undefined, acknowledge: async () => {}, fail: async () => {}, close: async () => {} }),
});

export function testComponentRegistry(): ComponentRegistry {
  return new ComponentRegistry([
    countByKey as unknown as ComponentDefinition,
    testSink as unknown as ComponentDefinition,
    testSource as unknown as ComponentDefinition,
  ]);
}
