import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Builds the console page from the sources under test (the project's own toolchain: tsc, then vite)
 * into a folder of this test's own, and returns it. Not into console/dist: the runner runs two test
 * files at once, and a second `vite build --emptyOutDir` there empties the folder a first test's
 * server is serving from (seen in CI: the page loaded without its script and never showed the login).
 */
export function buildConsolePage(): string {
  const outDir = mkdtempSync(join(tmpdir(), 'lifeline-console-page-'));
  const typecheck = spawnSync('npx', ['--no-install', 'tsc', '-p', 'console/tsconfig.json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (typecheck.status !== 0) throw new Error(`the console's sources do not type-check:\n${typecheck.stdout}\n${typecheck.stderr}`);
  const build = spawnSync('npx', ['--no-install', 'vite', 'build', 'console', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (build.status !== 0) throw new Error(`vite build of the console failed:\n${build.stdout}\n${build.stderr}`);
  return outDir;
}
