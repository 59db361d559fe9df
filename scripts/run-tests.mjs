// Runs the test suite in two tiers (docs/testing.md):
//   unit    tests/**/*.unit.test.ts — need no broker, no registry, no JVM (in-memory topology driver,
//           the Odoo simulator, local HTTP servers); 80-95 s of CPU in all (docs/testing.md, "How long").
//   broker  every other tests/**/*.test.ts — against the real local Kafka and schema registry, which
//           this script brings up once (reusing them if they already run) and stops again only if it
//           started them (LIFELINE_KEEP_INFRA=1 keeps them).
//
//   node scripts/run-tests.mjs                      both tiers, unit first (npm test)
//   node scripts/run-tests.mjs --tier unit          the unit tier only (npm run test:unit)
//   node scripts/run-tests.mjs --tier broker avro   broker tests whose path contains "avro"
//
// A unit test that reaches for the broker fails at once: testing/harness.ts refuses to start the
// infrastructure when LIFELINE_TEST_TIER=unit (rename the file to *.test.ts: it belongs to the broker tier).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { requireSupportedNode } from '../bin/node-version.mjs';

requireSupportedNode(new URL('../', import.meta.url));

const node = process.execPath;
const lifeline = ['bin/lifeline.mjs'];

function findTests(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return findTests(path);
    return entry.endsWith('.test.ts') ? [path] : [];
  });
}

const isUnitTest = (file) => file.endsWith('.unit.test.ts');

const args = process.argv.slice(2);
const tierIndex = args.indexOf('--tier');
const tier = tierIndex >= 0 ? args[tierIndex + 1] : 'all';
if (!['unit', 'broker', 'all'].includes(tier)) {
  console.error(`run-tests: --tier must be unit, broker or all (got ${tier})`);
  process.exit(2);
}
const filter = args.filter((_, index) => index !== tierIndex && index !== tierIndex + 1);
const selected = findTests('tests').filter((file) => filter.length === 0 || filter.some((part) => file.includes(part))).sort();
const unitFiles = tier === 'broker' ? [] : selected.filter(isUnitTest);
const brokerFiles = tier === 'unit' ? [] : selected.filter((file) => !isUnitTest(file));

// The golden path file (10,000 events through every process, twice) loads the machine enough to
// starve tests beside it: it runs on its own, after the rest.
const RUN_ALONE = ['tests/golden-path/golden-path.test.ts'];
const brokerBatches = [brokerFiles.filter((file) => !RUN_ALONE.includes(file)), brokerFiles.filter((file) => RUN_ALONE.includes(file))].filter((batch) => batch.length > 0);

function runBatch(files, concurrency, env) {
  // --test-force-exit: a test file's process ends when its tests have, even if a client it used left a
  // socket open (seen: in-process runtimes' Kafka connections after stop), rather than hanging the suite.
  const run = spawnSync(node, ['--import', 'tsx', '--test', '--test-force-exit', `--test-concurrency=${concurrency}`, '--test-reporter=spec', ...files], {
    stdio: 'inherit',
    env: { ...process.env, LIFELINE_TEST: '1', ...env },
  });
  return run.status === 0;
}

let failed = false;
if (unitFiles.length > 0) {
  const started = Date.now();
  // Unit files start no JVM and share nothing; several wait on timers or local servers, so they overlap well.
  if (!runBatch(unitFiles, Math.max(4, availableParallelism()), { LIFELINE_TEST_TIER: 'unit' })) failed = true;
  console.log(`unit tier: ${unitFiles.length} files in ${((Date.now() - started) / 1000).toFixed(1)}s${failed ? ', FAILED' : ''}`);
}

if (brokerBatches.length > 0) {
  const status = spawnSync(node, [...lifeline, 'dev', 'status'], { stdio: 'ignore' });
  const wasUp = status.status === 0;
  const stopIfStartedHere = () => {
    if (!wasUp && process.env.LIFELINE_KEEP_INFRA !== '1') spawnSync(node, [...lifeline, 'dev', 'down'], { stdio: 'ignore' }); // quietly: the test summary stays last
  };
  const up = spawnSync(node, [...lifeline, 'dev', 'up'], { stdio: 'inherit' });
  if (up.status !== 0) {
    stopIfStartedHere();
    process.exit(up.status ?? 1);
  }
  const started = Date.now();
  for (const batch of brokerBatches) if (!runBatch(batch, 2, { LIFELINE_TEST_TIER: 'broker' })) failed = true;
  console.log(`broker tier: ${brokerFiles.length} files in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  stopIfStartedHere();
}

if (unitFiles.length + brokerFiles.length === 0) {
  console.error(`run-tests: no test file matches ${filter.join(', ') || '(any)'} in tier ${tier}`);
  process.exit(1);
}
process.exit(failed ? 1 : 0);
