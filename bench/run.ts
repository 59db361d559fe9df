// `npm run bench` runs every bench/*.bench.ts; `npm run bench -- dedup` only those whose name contains "dedup".
// Each benchmark prints its own table and compares against a baseline measured in the same run.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';

const filters = process.argv.slice(2);
const benches = readdirSync('bench').filter((file) => file.endsWith('.bench.ts')).filter((file) => filters.length === 0 || filters.some((filter) => file.includes(filter))).sort();
if (benches.length === 0) {
  console.error(`no benchmark matches ${filters.join(', ')}`);
  process.exit(1);
}
spawnSync(process.execPath, ['bin/lifeline.mjs', 'dev', 'up'], { stdio: 'inherit' });
let failed = 0;
for (const bench of benches) {
  console.log(`\n## ${bench}`);
  const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', `bench/${bench}`], { stdio: 'inherit' });
  if (run.status !== 0) failed++;
}
process.exit(failed === 0 ? 0 : 1);
