import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { buildComponentRegistry } from '../../src/cli/component-list.ts';
import { LifelineError } from '../../src/errors.ts';
import { loadTopology } from '../../src/topology/load-topology.ts';
import { fuzzParameters, fuzzTimeout, mutated } from './fuzz-kit.ts';

/**
 * The topology loader under fast-check: the golden path's topology.yaml mutated (truncated,
 * tokens and bytes inserted, stretches repeated, BOMs, huge scalars, deep nesting) either loads or
 * is refused with a clean validation error (LL_TOPOLOGY_INVALID and the configuration codes) —
 * never an exception from inside the loader.
 */

const dir = mkdtempSync(join(tmpdir(), 'lifeline-fuzz-topology-'));
symlinkSync(resolve('schemas'), join(dir, 'schemas'));
after(() => rmSync(dir, { recursive: true, force: true }));

const env = {
  ODOO_API_KEY: 'key', ODOO_USERNAME: 'lifeline-integration', LIFELINE_WEBHOOK_SECRET_QUEST_LAB: 'whsec_a', LIFELINE_WEBHOOK_SECRET_LABCORP: 'whsec_b',
  LIFELINE_WEBHOOK_SECRET_MCKESSON: 'whsec_c', LIFELINE_WEBHOOK_SECRET_MEDLINE: 'whsec_d',
};
const CLEAN_CODES = ['LL_TOPOLOGY_INVALID', 'LL_CONFIG_INVALID', 'LL_SECRET_MISSING', 'LL_COMPONENT_UNKNOWN', 'LL_SCHEMA_NOT_FOUND', 'LL_SCHEMA_INVALID'];

test('fuzz: a mutated topology.yaml loads or is refused with a clean validation error', { timeout: fuzzTimeout(120_000) }, async () => {
  const registry = buildComponentRegistry();
  const golden = readFileSync('topology.yaml');
  assert.ok(loadTopology(join(dir, write('golden.yaml', golden)), registry, env), 'the seed itself loads');
  const nested = fc.integer({ min: 50, max: 20_000 }).map((depth) => Buffer.concat([golden, Buffer.from(`\nextra: ${'['.repeat(depth)}${']'.repeat(depth)}\n`)]));
  let index = 0;
  const outcomes = { loaded: 0, refused: 0 };
  await fc.assert(fc.asyncProperty(fc.oneof({ weight: 5, arbitrary: mutated([golden], 5) }, { weight: 1, arbitrary: nested }), async (bytes) => {
    const file = join(dir, write(`case-${index++}.yaml`, bytes));
    try {
      loadTopology(file, registry, env);
      outcomes.loaded++;
    } catch (error) {
      if (!(error instanceof LifelineError)) throw new Error(`not a clean error: ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`, { cause: error });
      assert.ok(CLEAN_CODES.includes(error.code), `unexpected ${error.code}: ${error.message.slice(0, 300)}`);
      outcomes.refused++;
    } finally {
      rmSync(file, { force: true });
    }
  }), fuzzParameters(30));
  assert.ok(outcomes.refused > 0, JSON.stringify(outcomes));
});

function write(name: string, bytes: Buffer): string {
  writeFileSync(join(dir, name), bytes);
  return name;
}
