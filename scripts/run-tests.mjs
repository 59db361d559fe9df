// Runs the whole suite: brings the local Kafka and schema registry up once (reusing them if they
// already run), runs every tests/**/*.test.ts with node's test runner, and stops the
// infrastructure again only if this run started it (LIFELINE_KEEP_INFRA=1 keeps it).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const node = process.execPath;
const lifeline = ['bin/lifeline.mjs'];

function findTests(dir) {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return findTests(path);
    return entry.endsWith('.test.ts') ? [path] : [];
  });
}

const filter = process.argv.slice(2);
// The golden path file (10,000 events through every process, twice) loads the machine enough to
// starve tests beside it: it runs on its own, after the rest.
const RUN_ALONE = ['tests/golden-path/golden-path.test.ts'];
const selected = findTests('tests').filter((file) => filter.length === 0 || filter.some((part) => file.includes(part))).sort();
const batches = [selected.filter((file) => !RUN_ALONE.includes(file)), selected.filter((file) => RUN_ALONE.includes(file))].filter((batch) => batch.length > 0);

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

let failed = false;
for (const batch of batches) {
  const run = spawnSync(node, ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...batch], {
    stdio: 'inherit',
    env: { ...process.env, LIFELINE_TEST: '1' },
  });
  if (run.status !== 0) failed = true;
}

stopIfStartedHere();
process.exit(failed ? 1 : 0);
